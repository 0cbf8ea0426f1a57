//! Delimited text files (CSV, TSV, header-less KDD files), gzip allowed, read through the one
//! record reader ([`super::records`]) into columns.

use std::path::Path;

use polars_core::prelude::*;

use super::column::ColumnBuilder;
use super::open::open;
use super::records::{line, RecordError, Records};
use super::{Layout, Source, ROW};
use crate::error::{Error, Result};

pub struct CsvSource;

impl Source for CsvSource {
    fn read(&self, path: &Path, layout: &Layout) -> Result<DataFrame> {
        let records = Records::new(open(path)?, layout).map_err(|e| at(path, e))?;
        frame(records, path)?.ok_or_else(|| Error::file(path, "has a header but no data rows"))
    }
}

/// Every record of `records` as a table (each column's type inferred from its cells), with
/// the [`ROW`] column of their lines; `None` when there is no record. Errors name `path`.
pub fn frame<R: std::io::Read>(mut records: Records<R>, path: &Path) -> Result<Option<DataFrame>> {
    let mut builders: Vec<ColumnBuilder> = records.columns().iter().map(ColumnBuilder::new).collect();
    let mut rows: Vec<i64> = Vec::new();
    let mut record = ::csv::ByteRecord::new();
    while records.next_record(&mut record).map_err(|e| at(path, e))? {
        let fields = records.fields(&record).map_err(|e| at(path, e))?;
        for (i, builder) in builders.iter_mut().enumerate() {
            builder.push_text(fields.get(i));
        }
        rows.push(line(&record) as i64);
    }
    if rows.is_empty() {
        return Ok(None);
    }
    let mut columns: Vec<Column> = builders.into_iter().map(ColumnBuilder::finish).collect();
    columns.push(Column::new(ROW.into(), rows));
    DataFrame::new_infer_height(columns).map(Some).map_err(|e| Error::polars(path, e))
}

/// A record error of a file, as the command line shows it: the file, the row, the column.
pub fn at(path: &Path, e: RecordError) -> Error {
    match e.line {
        Some(row) => Error::Row { path: path.to_path_buf(), row, column: e.column, message: e.message },
        None => Error::file(path, e.message),
    }
}
