//! The pipeline stages, one module each. A stage binary in `src/bin/` parses its arguments
//! and calls the `run` of its module; everything else happens here.

pub mod evaluate;
pub mod ingest;
pub mod promote;
pub mod snapshot;
pub mod train;
pub mod transform;
pub mod validate;

use std::path::Path;

use ndarray::Array2;
use polars_core::prelude::*;

use serde::Serialize;

use crate::artifact::write_json;
use crate::data::{column_keys, source_rows, ROW};
use crate::error::{Error, Result};
use crate::schema::Schema;

/// Write a stage's figures: every one to `details` (a report), and the `headline` ones to
/// `metrics`, the flat file whose keys become `dvc exp show` columns. Few headline keys keep
/// that table readable; `dvc metrics diff` still compares them across commits.
pub fn write_metrics<T: Serialize + ?Sized>(metrics: &Path, details: &Path, all: &T, headline: &[&str]) -> Result<()> {
    let value = serde_json::to_value(all).map_err(|e| Error::artifact(details, e.to_string()))?;
    let serde_json::Value::Object(map) = &value else {
        return Err(Error::artifact(details, "stage figures must be a flat JSON object"));
    };
    let head: serde_json::Map<String, serde_json::Value> =
        headline.iter().filter_map(|k| map.get(*k).map(|v| ((*k).to_owned(), v.clone()))).collect();
    write_json(details, &value)?;
    write_json(metrics, &head)
}

/// Column of the feature tables holding the binary label (1 = threat).
pub const LABEL: &str = "__label";

/// The binary label of every row, from the schema's target rule.
pub fn labels(df: &DataFrame, schema: &Schema, path: &Path) -> Result<Vec<bool>> {
    let target = &schema.target.column;
    let col = df.column(target).map_err(|_| {
        let names: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).filter(|n| n != ROW).collect();
        Error::file(path, format!("target column `{target}` not found (columns: {})", names.join(", ")))
    })?;
    let rows = source_rows(df);
    column_keys(col)
        .into_iter()
        .enumerate()
        .map(|(i, key)| match key {
            Some(k) if schema.is_known_label(&k) => Ok(schema.is_threat(&k)),
            Some(k) => Err(Error::Row {
                path: path.to_path_buf(),
                row: rows[i] as u64,
                column: Some(target.clone()),
                message: format!("`{k}` is not a label of the schema (target.threat, benign or ignore)"),
            }),
            None => Err(Error::Row {
                path: path.to_path_buf(),
                row: rows[i] as u64,
                column: Some(target.clone()),
                message: "the target is empty".into(),
            }),
        })
        .collect()
}

/// A feature table written by transform: the matrix (columns in `names` order) and labels.
pub fn read_features(path: &Path, names: &[String]) -> Result<(Array2<f64>, Vec<bool>)> {
    let df = crate::data::read_parquet(path)?;
    let mut x = Array2::<f64>::zeros((df.height(), names.len()));
    for (j, name) in names.iter().enumerate() {
        let col = df.column(name).and_then(|c| c.f64().cloned()).map_err(|_| {
            Error::artifact(path, format!("feature `{name}` is missing or not Float64: re-run transform"))
        })?;
        for (i, v) in col.iter().enumerate() {
            x[[i, j]] = v.unwrap_or(f64::NAN);
        }
    }
    let labels = df
        .column(LABEL)
        .and_then(|c| c.i64().cloned())
        .map_err(|_| Error::artifact(path, format!("column `{LABEL}` is missing: re-run transform")))?
        .iter()
        .map(|v| v == Some(1))
        .collect();
    Ok((x, labels))
}

/// Write a feature table: one Float64 column per feature, the label, the source row.
pub fn write_features(path: &Path, names: &[String], x: &Array2<f64>, labels: &[bool], rows: &[i64]) -> Result<()> {
    let mut columns: Vec<Column> =
        names.iter().enumerate().map(|(j, name)| Column::new(name.as_str().into(), x.column(j).to_vec())).collect();
    columns.push(Column::new(LABEL.into(), labels.iter().map(|&t| t as i64).collect::<Vec<i64>>()));
    columns.push(Column::new(ROW.into(), rows.to_vec()));
    let mut df = DataFrame::new(x.nrows(), columns).map_err(|e| Error::polars(path, e))?;
    crate::data::write_parquet(&mut df, path)
}
