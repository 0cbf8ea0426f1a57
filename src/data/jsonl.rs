//! JSON Lines: one object per line, keys are column names; gzip allowed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use polars_core::prelude::*;

use super::column::{Cell, ColumnBuilder};
use super::open::open;
use super::{Layout, Source, ROW};
use crate::error::{Error, Result};

pub struct JsonLinesSource;

impl Source for JsonLinesSource {
    fn read(&self, path: &Path, _opts: &Layout) -> Result<DataFrame> {
        let reader = BufReader::new(open(path)?);
        let mut builders: Vec<ColumnBuilder> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut rows: Vec<i64> = Vec::new();
        let mut saw_line = false;

        for (i, line) in reader.lines().enumerate() {
            let lineno = i as u64 + 1;
            let row_error = |column: Option<String>, message: String| Error::Row {
                path: path.to_path_buf(),
                row: lineno,
                column,
                message,
            };
            let line = line.map_err(|e| row_error(None, format!("cannot read line: {e}")))?;
            saw_line = true;
            if line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| row_error(None, format!("not valid JSON: {e}")))?;
            let serde_json::Value::Object(object) = value else {
                return Err(row_error(None, "expected a JSON object per line".into()));
            };
            let n = rows.len();
            for (key, value) in object {
                let cell = match value {
                    serde_json::Value::Null => Cell::Missing,
                    serde_json::Value::Bool(b) => Cell::Int(b as i64),
                    serde_json::Value::Number(num) => match num.as_i64() {
                        Some(i) => Cell::Int(i),
                        None => Cell::Float(num.as_f64().unwrap_or(f64::NAN)),
                    },
                    serde_json::Value::String(s) => Cell::Str(s),
                    _ => return Err(row_error(Some(key), "nested arrays and objects are not supported".into())),
                };
                let at = *index.entry(key.clone()).or_insert_with(|| {
                    builders.push(ColumnBuilder::with_missing(key.clone(), n));
                    builders.len() - 1
                });
                builders[at].push(cell);
            }
            // Keys absent from this object are missing values.
            for b in builders.iter_mut().filter(|b| b.len() == n) {
                b.push(Cell::Missing);
            }
            rows.push(lineno as i64);
        }
        if !saw_line {
            return Err(Error::file(path, "file is empty"));
        }
        let mut columns: Vec<Column> = builders.into_iter().map(ColumnBuilder::finish).collect();
        columns.push(Column::new(ROW.into(), rows));
        DataFrame::new_infer_height(columns).map_err(|e| Error::polars(path, e))
    }
}
