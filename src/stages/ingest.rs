//! ingest: read the configured raw source, count duplicates, split with a seed, write Parquet.

use std::collections::HashSet;
use std::path::PathBuf;

use polars::prelude::*;
use serde::Serialize;

use crate::artifact::{round, write_json};
use crate::data::split::split;
use crate::data::{read_table, row_keys, write_parquet, ReadOptions, ROW};
use crate::error::{Error, Result};
use crate::params::{IngestParams, ParamsFile};
use crate::schema::Schema;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Training part (Parquet).
    #[arg(long, default_value = "artifacts/split/train.parquet")]
    pub train_out: PathBuf,
    /// Test part (Parquet).
    #[arg(long, default_value = "artifacts/split/test.parquet")]
    pub test_out: PathBuf,
    /// Flat metrics (JSON).
    #[arg(long, default_value = "metrics/ingest.json")]
    pub metrics: PathBuf,
}

/// Flat metrics of the stage.
#[derive(Debug, Clone, Serialize)]
pub struct IngestMetrics {
    pub rows: usize,
    pub duplicate_rows: usize,
    pub train_rows: usize,
    pub test_rows: usize,
    pub threat_share: f64,
    /// Test rows whose feature vector also appears in the training part: their scores are
    /// closer to memorisation than to generalisation.
    pub test_rows_with_train_twin: usize,
}

pub fn run(params: &ParamsFile, args: &Args) -> Result<IngestMetrics> {
    let dataset = params.dataset()?;
    let p: IngestParams = params.section("ingest")?;
    let schema = Schema::load(&dataset.params.schema)?;
    let source = &dataset.params.source;
    tracing::info!(dataset = %dataset.name, source = %source.display(), "reading");

    let df = read_table(source, dataset.params.format, &ReadOptions::from_schema(&schema))?;
    let labels = super::labels(&df, &schema, source)?;
    let all: Vec<String> =
        df.get_column_names().iter().map(|n| n.to_string()).filter(|n| n != ROW).collect();
    let features: Vec<String> =
        schema.features().map(|c| c.name.clone()).filter(|n| all.contains(n)).collect();
    let by_row = row_keys(&df, &all).map_err(|e| Error::polars(source, e))?;
    let distinct: HashSet<&String> = by_row.iter().collect();
    let duplicate_rows = df.height() - distinct.len();

    let parts = split(&labels, p.split, p.test_size, p.seed);
    let by_features = row_keys(&df, &features).map_err(|e| Error::polars(source, e))?;
    let train_vectors: HashSet<&String> = parts.train.iter().map(|&i| &by_features[i]).collect();
    let twins = parts.test.iter().filter(|&&i| train_vectors.contains(&by_features[i])).count();

    for (idx, path) in [(&parts.train, &args.train_out), (&parts.test, &args.test_out)] {
        let take = IdxCa::from_vec("idx".into(), idx.iter().map(|&i| i as IdxSize).collect());
        let mut part = df.take(&take).map_err(|e| Error::polars(path, e))?;
        write_parquet(&mut part, path)?;
    }

    let metrics = IngestMetrics {
        rows: df.height(),
        duplicate_rows,
        train_rows: parts.train.len(),
        test_rows: parts.test.len(),
        threat_share: round(labels.iter().filter(|&&t| t).count() as f64 / labels.len() as f64, 4),
        test_rows_with_train_twin: twins,
    };
    write_json(&args.metrics, &metrics)?;
    tracing::info!(
        rows = metrics.rows,
        duplicates = metrics.duplicate_rows,
        train = metrics.train_rows,
        test = metrics.test_rows,
        test_twins = twins,
        "split written"
    );
    Ok(metrics)
}
