//! evaluate: score the held-out test part with the saved bundle.

use std::path::PathBuf;

use serde::Serialize;

use crate::artifact::{round, write_json};
use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::metrics::{roc_auc, roc_curve, thin_curve, Confusion, RocPoint};
use crate::models::Classifier;
use crate::params::{EvaluateParams, ParamsFile};
use crate::schema::Schema;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "artifacts/features/test.parquet")]
    pub test: PathBuf,
    #[arg(long, default_value = "models/model.json")]
    pub model: PathBuf,
    /// Flat metrics (JSON).
    #[arg(long, default_value = "metrics/eval.json")]
    pub metrics: PathBuf,
    /// ROC curve points for `dvc plots` (JSON).
    #[arg(long, default_value = "plots/roc.json")]
    pub roc: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct EvalMetrics {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub roc_auc: f64,
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

#[derive(Serialize)]
struct RocFile {
    roc: Vec<RocPoint>,
}

pub fn run(params: &ParamsFile, args: &Args) -> Result<EvalMetrics> {
    let dataset = params.dataset()?;
    let p: EvaluateParams = params.section("evaluate")?;
    let schema = Schema::load(&dataset.params.schema)?;
    let bundle = Bundle::load(&args.model)?;
    if bundle.schema_hash != schema.hash() {
        return Err(Error::artifact(
            &args.model,
            format!("was trained under another version of schema `{}`: re-run train", schema.name),
        ));
    }
    let (x, y) = super::read_features(&args.test, &bundle.feature_names)?;
    let scores = bundle.model.predict_proba(x.view()).to_vec();
    let c = Confusion::at(&scores, &y, p.threshold);
    let metrics = EvalMetrics {
        accuracy: round(c.accuracy(), 4),
        precision: round(c.precision(), 4),
        recall: round(c.recall(), 4),
        f1: round(c.f1(), 4),
        roc_auc: round(roc_auc(&scores, &y), 4),
        tp: c.tp,
        fp: c.fp,
        tn: c.tn,
        fn_: c.fn_,
    };
    write_json(&args.metrics, &metrics)?;
    let roc = thin_curve(roc_curve(&scores, &y), 0.005)
        .into_iter()
        .map(|pt| RocPoint { threshold: round(pt.threshold.min(1.0), 6), fpr: round(pt.fpr, 6), tpr: round(pt.tpr, 6) })
        .collect();
    write_json(&args.roc, &RocFile { roc })?;
    tracing::info!(accuracy = metrics.accuracy, f1 = metrics.f1, roc_auc = metrics.roc_auc, "evaluated on the test part");
    Ok(metrics)
}
