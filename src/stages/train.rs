//! train: cross-validate the configured family on the training part, fit it on the whole
//! training part, save the model bundle.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use crate::artifact::{read_json, round, write_json};
use crate::bundle::{Bundle, FORMAT, VERSION};
use crate::error::Result;
use crate::params::{ParamsFile, TrainParams};
use crate::preprocess::Preprocessor;
use crate::schema::Schema;
use crate::search::cross_validate;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "artifacts/features/train.parquet")]
    pub train: PathBuf,
    #[arg(long, default_value = "artifacts/preprocessor.json")]
    pub preprocessor: PathBuf,
    /// The model bundle (JSON).
    #[arg(long, default_value = "models/model.json")]
    pub model: PathBuf,
    /// Flat metrics (JSON).
    #[arg(long, default_value = "metrics/train.json")]
    pub metrics: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainMetrics {
    pub cv_f1: f64,
    pub cv_f1_std: f64,
    pub cv_accuracy: f64,
    pub cv_roc_auc: f64,
}

pub fn run(params: &ParamsFile, args: &Args) -> Result<TrainMetrics> {
    let dataset = params.dataset()?;
    let p: TrainParams = params.section("train")?;
    let spec = p.model_spec().expect("checked when the section was read");
    let schema = Schema::load(&dataset.params.schema)?;
    let pre: Preprocessor = read_json(&args.preprocessor)?;
    let names = pre.feature_names();
    let (x, y) = super::read_features(&args.train, &names)?;

    let started = Instant::now();
    let cv = cross_validate(&spec, x.view(), &y, p.cv_folds, p.seed)?;
    tracing::info!(family = spec.name(), folds = p.cv_folds, f1 = cv.f1_mean, secs = started.elapsed().as_secs_f64(), "cross-validated");
    let started = Instant::now();
    let model = spec.fit(x.view(), &y, p.seed)?;
    tracing::info!(rows = x.nrows(), secs = started.elapsed().as_secs_f64(), "fitted on the training part");

    let bundle = Bundle {
        format: FORMAT.into(),
        version: VERSION,
        dataset: dataset.name.clone(),
        schema_hash: schema.hash(),
        target: schema.target.clone(),
        feature_names: names,
        preprocessor: pre,
        model,
        params: params.section_json("train")?,
        cv: cv.clone(),
    };
    bundle.save(&args.model)?;
    let metrics = TrainMetrics {
        cv_f1: round(cv.f1_mean, 4),
        cv_f1_std: round(cv.f1_std, 4),
        cv_accuracy: round(cv.accuracy_mean, 4),
        cv_roc_auc: round(cv.roc_auc_mean, 4),
    };
    write_json(&args.metrics, &metrics)?;
    Ok(metrics)
}
