//! Parquet: the format of every table a stage writes, and an accepted raw format.

use std::fs::File;
use std::path::Path;

use polars_core::prelude::*;
use polars_io::prelude::*;

use super::{Layout, Source, ROW};
use crate::artifact::atomic_write;
use crate::error::{Error, Result};

pub struct ParquetSource;

impl Source for ParquetSource {
    fn read(&self, path: &Path, _opts: &Layout) -> Result<DataFrame> {
        let mut df = read_parquet(path)?;
        // Narrow numeric types are widened so every later stage sees Int64, Float64 or String.
        let widened: Vec<Column> = df
            .columns()
            .iter()
            .map(|c| match c.dtype() {
                dt if dt.is_integer() || dt.is_bool() => c.cast(&DataType::Int64),
                dt if dt.is_float() => c.cast(&DataType::Float64),
                DataType::String => Ok(c.clone()),
                other => Err(polars_err!(ComputeError: "column `{}` has unsupported type {other}", c.name())),
            })
            .collect::<PolarsResult<_>>()
            .map_err(|e| Error::polars(path, e))?;
        let height = df.height();
        df = DataFrame::new(height, widened).map_err(|e| Error::polars(path, e))?;
        if df.column(ROW).is_err() {
            let rows: Vec<i64> = (1..=height as i64).collect();
            df.with_column(Column::new(ROW.into(), rows)).map_err(|e| Error::polars(path, e))?;
        }
        Ok(df)
    }
}

pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    ParquetReader::new(file).finish().map_err(|e| Error::polars(path, e))
}

/// Write a frame as Parquet through a temporary file, so a failed run leaves no half file.
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    atomic_write(path, |file| {
        ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(df)
            .map(|_| ())
            .map_err(|e| Error::polars(path, e))
    })
}
