//! transform: fit preprocessing on the training part only, apply it to both parts.

use std::path::PathBuf;

use serde::Serialize;

use crate::artifact::write_json;
use crate::data::{source_rows, ParquetSource, ReadOptions, Source};
use crate::error::Result;
use crate::params::{ParamsFile, TransformParams};
use crate::preprocess::Preprocessor;
use crate::schema::Schema;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "artifacts/split/train.parquet")]
    pub train: PathBuf,
    #[arg(long, default_value = "artifacts/split/test.parquet")]
    pub test: PathBuf,
    /// Training features (Parquet: one Float64 column per feature, `__label`, `__row`).
    #[arg(long, default_value = "artifacts/features/train.parquet")]
    pub train_out: PathBuf,
    #[arg(long, default_value = "artifacts/features/test.parquet")]
    pub test_out: PathBuf,
    /// The fitted preprocessor (JSON).
    #[arg(long, default_value = "artifacts/preprocessor.json")]
    pub preprocessor: PathBuf,
    /// Flat metrics (JSON).
    #[arg(long, default_value = "metrics/transform.json")]
    pub metrics: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransformMetrics {
    pub features: usize,
    pub imputed_train_cells: usize,
    pub imputed_test_cells: usize,
}

pub fn run(params: &ParamsFile, args: &Args) -> Result<TransformMetrics> {
    let dataset = params.dataset()?;
    let p: TransformParams = params.section("transform")?;
    let schema = Schema::load(&dataset.params.schema)?;
    let opts = ReadOptions::from_schema(&schema);
    let train = ParquetSource.read(&args.train, &opts)?;
    let test = ParquetSource.read(&args.test, &opts)?;

    let pre = Preprocessor::fit(&schema, &train, p.impute, &args.train.display().to_string())?;
    let names = pre.feature_names();
    let mut imputed = Vec::new();
    for (df, path, out) in [(&train, &args.train, &args.train_out), (&test, &args.test, &args.test_out)] {
        let (x, n) = pre.transform(df, &path.display().to_string())?;
        let labels = super::labels(df, &schema, path)?;
        super::write_features(out, &names, &x, &labels, &source_rows(df))?;
        imputed.push(n);
    }
    write_json(&args.preprocessor, &pre)?;
    let metrics =
        TransformMetrics { features: names.len(), imputed_train_cells: imputed[0], imputed_test_cells: imputed[1] };
    write_json(&args.metrics, &metrics)?;
    tracing::info!(
        features = metrics.features,
        imputed_train = imputed[0],
        imputed_test = imputed[1],
        "features written"
    );
    Ok(metrics)
}
