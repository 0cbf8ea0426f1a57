//! transform: fit preprocessing (imputation, categorical encoders) on the training part only,
//! apply it to both parts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::artifact::write_json;
use crate::data::{source_rows, Layout, ParquetSource, Source};
use crate::error::Result;
use crate::params::ParamsFile;
use crate::preprocess::Preprocessor;
use crate::preprocess::{Encoding, TransformParams};
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
    /// Unseen categories per column (JSON).
    #[arg(long, default_value = "reports/encoding.json")]
    pub report: PathBuf,
    /// Headline metrics (flat JSON, a few numbers: the columns of `dvc exp show`).
    #[arg(long, default_value = "metrics/transform.json")]
    pub metrics: PathBuf,
    /// Every figure of the stage (flat JSON), the headline ones included.
    #[arg(long, default_value = "reports/transform.json")]
    pub details: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransformMetrics {
    /// Columns of the feature matrix (after one-hot encoding).
    pub features: usize,
    pub categorical_features: usize,
    pub imputed_train_cells: usize,
    pub imputed_test_cells: usize,
    /// Test cells holding a category never seen in training (encoded as unknown).
    pub unseen_category_test_cells: usize,
    pub unseen_category_test_rows: usize,
}

/// `reports/encoding.json`: which columns met unseen categories in the test part.
#[derive(Serialize)]
struct EncodingReport<'a> {
    encoding: Encoding,
    unseen_in_test: &'a BTreeMap<String, usize>,
}

pub fn run(params: &ParamsFile, args: &Args) -> Result<TransformMetrics> {
    let dataset = crate::data::dataset::Dataset::selected(params)?;
    let p: TransformParams = params.section("transform")?;
    let schema = Schema::load(&dataset.params.schema)?;
    let opts = Layout::from_schema(&schema);
    let train = ParquetSource.read(&args.train, &opts)?;
    let test = ParquetSource.read(&args.test, &opts)?;

    let pre = Preprocessor::fit(&schema, &train, &p, &args.train.display().to_string())?;
    let names = pre.feature_names();
    let mut stats = Vec::new();
    for (df, path, out) in [(&train, &args.train, &args.train_out), (&test, &args.test, &args.test_out)] {
        let (x, s) = pre.transform(df, &path.display().to_string())?;
        let labels = super::labels(df, &schema, path)?;
        super::write_features(out, &names, &x, &labels, &source_rows(df))?;
        stats.push(s);
    }
    let test = &stats[1];
    for (column, n) in &test.unseen {
        tracing::warn!(column = %column, cells = n, "test part: categories never seen in training (encoded as unknown)");
    }
    let metrics = TransformMetrics {
        features: names.len(),
        categorical_features: pre.features.iter().filter(|f| f.is_categorical()).count(),
        imputed_train_cells: stats[0].imputed,
        imputed_test_cells: test.imputed,
        unseen_category_test_cells: test.unseen.values().sum(),
        unseen_category_test_rows: test.unseen_rows,
    };
    write_json(&args.preprocessor, &pre)?;
    write_json(&args.report, &EncodingReport { encoding: p.encode, unseen_in_test: &test.unseen })?;
    super::write_metrics(&args.metrics, &args.details, &metrics, &["features"])?;
    tracing::info!(
        features = metrics.features,
        imputed_train = metrics.imputed_train_cells,
        imputed_test = metrics.imputed_test_cells,
        unseen_test_cells = metrics.unseen_category_test_cells,
        "features written"
    );
    Ok(metrics)
}
