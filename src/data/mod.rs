//! Reading raw data into a [`DataFrame`], one [`Source`] per file format, and the seeded split.
//!
//! Every reader adds a [`ROW`] column holding the row's position in the source file (the line
//! number for text formats), so that later stages can name the offending row of the file the
//! user actually has, even after the split shuffled the rows.

mod column;
mod csv;
pub mod dataset;
mod jsonl;
pub mod limits;
pub mod number;
pub(crate) mod open;
mod parquet;
pub mod records;
pub mod split;
pub mod sql;
pub mod zeek;

use std::path::Path;

use polars_core::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schema::{float_key, Schema};

pub use self::column::{parse_cell, Cell, ColumnBuilder};
pub use self::csv::{at as csv_error, CsvSource};
pub use self::jsonl::JsonLinesSource;
pub use self::parquet::{read_parquet, write_parquet, ParquetSource};
pub use self::records::{Layout, RecordError, Records};
pub use self::zeek::ZeekSource;

/// Name of the column that carries each row's position in its source file.
pub const ROW: &str = "__row";

impl Layout {
    /// How the dataset's text files are laid out, from its schema.
    pub fn from_schema(schema: &Schema) -> Self {
        Layout { delimiter: schema.delimiter, header: schema.header, columns: schema.column_names() }
    }
}

/// One input format. Adding a format = one file implementing this + one [`Format`] variant.
pub trait Source {
    fn read(&self, path: &Path, layout: &Layout) -> Result<DataFrame>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Parquet,
    Jsonl,
    /// A Zeek log (TSV with `#` headers, or Zeek's JSON lines).
    Zeek,
}

impl Format {
    /// Tell from the content (a Zeek header or Zeek JSON, which any extension may carry:
    /// `conn.log`, `conn.log.labeled`, `conn.00:00:00-01:00:00.log.gz`), else from the file
    /// name, ignoring a trailing `.gz`.
    pub fn from_path(path: &Path) -> Result<Format> {
        if zeek::sniff(&open::head(path, 4096)?) {
            return Ok(Format::Zeek);
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        match ext {
            "csv" | "txt" | "tsv" => Ok(Format::Csv),
            "parquet" | "pq" => Ok(Format::Parquet),
            "jsonl" | "ndjson" | "json" => Ok(Format::Jsonl),
            "log" | "labeled" => Ok(Format::Zeek),
            _ => Err(Error::file(
                path,
                "cannot tell the format from the file name; set `format: csv|parquet|jsonl|zeek` in the dataset's `data:` block",
            )),
        }
    }

    pub fn source(self) -> &'static dyn Source {
        match self {
            Format::Csv => &CsvSource,
            Format::Parquet => &ParquetSource,
            Format::Jsonl => &JsonLinesSource,
            Format::Zeek => &ZeekSource,
        }
    }
}

/// Read a raw data file in the given (or guessed) format.
pub fn read_table(path: &Path, format: Option<Format>, opts: &Layout) -> Result<DataFrame> {
    let format = match format {
        Some(f) => f,
        None => Format::from_path(path)?,
    };
    let df = format.source().read(path, opts)?;
    if df.height() == 0 {
        return Err(Error::file(path, "has no data rows"));
    }
    Ok(df)
}

/// Several frames as one, rows in order. A column typed differently in two files (all
/// missing in one, say) takes the wider type: Float64 for numbers, else text.
pub fn concat(frames: Vec<DataFrame>, path: &Path) -> Result<DataFrame> {
    let mut frames = frames.into_iter();
    let Some(mut all) = frames.next() else { return Err(Error::file(path, "no files")) };
    for mut df in frames {
        let names: Vec<String> = all.get_column_names().iter().map(|n| n.to_string()).collect();
        let theirs: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).collect();
        let (mut a, mut b) = (names.clone(), theirs.clone());
        a.sort();
        b.sort();
        if a != b {
            return Err(Error::file(
                path,
                format!("its columns differ from the first file's: {theirs:?} vs {names:?}"),
            ));
        }
        let df_ordered = df.select(names.iter().map(|n| n.as_str())).map_err(|e| Error::polars(path, e))?;
        df = df_ordered;
        for name in &names {
            let (x, y) =
                (all.column(name).expect("listed").dtype().clone(), df.column(name).expect("listed").dtype().clone());
            if x == y {
                continue;
            }
            let numeric = |t: &DataType| matches!(t, DataType::Int64 | DataType::Float64 | DataType::Null);
            let wide = if numeric(&x) && numeric(&y) { DataType::Float64 } else { DataType::String };
            for frame in [&mut all, &mut df] {
                let cast = frame.column(name).expect("listed").cast(&wide).map_err(|e| Error::polars(path, e))?;
                frame.with_column(cast).map_err(|e| Error::polars(path, e))?;
            }
        }
        all.vstack_mut(&df).map_err(|e| Error::polars(path, e))?;
    }
    all.align_chunks();
    Ok(all)
}

/// The canonical text of every cell of a column (`None` for missing), comparable with
/// [`crate::schema::Scalar::key`].
pub fn column_keys(col: &Column) -> Vec<Option<String>> {
    let mut keys = Vec::with_capacity(col.len());
    for_each_key(col, &mut String::new(), |k| keys.push(k.map(str::to_owned)));
    keys
}

/// Write a frame as CSV with a header (missing cells empty), leaving out the [`ROW`] column.
pub fn write_csv(df: &DataFrame, path: &Path) -> Result<()> {
    let names: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).filter(|n| n != ROW).collect();
    let columns: Vec<Vec<Option<String>>> = names
        .iter()
        .map(|n| df.column(n).map(column_keys))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::polars(path, e))?;
    crate::artifact::atomic_write(path, |file| {
        let mut w = ::csv::Writer::from_writer(std::io::BufWriter::new(file));
        let fail = |e: ::csv::Error| Error::file(path, format!("cannot write CSV: {e}"));
        w.write_record(&names).map_err(fail)?;
        for i in 0..df.height() {
            w.write_record(columns.iter().map(|c| c[i].as_deref().unwrap_or(""))).map_err(fail)?;
        }
        w.flush().map_err(|e| Error::io(path, e))
    })
}

/// Source row numbers of a frame written by ingest (1-based); positions if the column is absent.
pub fn source_rows(df: &DataFrame) -> Vec<i64> {
    match df.column(ROW).ok().and_then(|c| c.i64().ok()) {
        Some(ca) => ca.iter().enumerate().map(|(i, v)| v.unwrap_or(i as i64 + 1)).collect(),
        None => (1..=df.height() as i64).collect(),
    }
}

/// A 128-bit key per row over the given columns, for duplicate and twin detection: two rows
/// get the same key when their cells have the same canonical text ([`column_keys`]), column by
/// column (a collision among a billion distinct rows has odds below 1 in 10^20). 16 bytes per
/// row, built column by column, where the text of whole rows took tens of bytes per cell.
pub fn row_hashes(df: &DataFrame, columns: &[String]) -> Result<Vec<u128>, PolarsError> {
    use std::hash::{Hash, Hasher};
    let mut keys = vec![(0u64, 0x9e37_79b9_7f4a_7c15u64); df.height()];
    let mut text = String::new();
    for name in columns {
        let col = df.column(name)?;
        let mut r = 0;
        for_each_key(col, &mut text, |cell| {
            // Two hashes of the cell under different seeds, folded into the row's two halves.
            let mut a = std::collections::hash_map::DefaultHasher::new();
            let mut b = std::collections::hash_map::DefaultHasher::new();
            0xa5u8.hash(&mut b);
            cell.hash(&mut a);
            cell.hash(&mut b);
            let (h1, h2) = &mut keys[r];
            *h1 = (*h1 ^ a.finish()).wrapping_mul(0x100_0000_01b3).rotate_left(29);
            *h2 = (*h2 ^ b.finish()).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(31);
            r += 1;
        });
    }
    Ok(keys.into_iter().map(|(h1, h2)| (u128::from(h1) << 64) | u128::from(h2)).collect())
}

/// Call `f` with the canonical text of each cell of a column (`None`: missing; NaN is
/// missing), comparable with [`crate::schema::Scalar::key`], without keeping the texts (`buf`
/// is reused). [`column_keys`] keeps them.
fn for_each_key(col: &Column, buf: &mut String, mut f: impl FnMut(Option<&str>)) {
    use std::fmt::Write as _;
    match col.dtype() {
        DataType::Int64 => col.i64().expect("dtype checked").iter().for_each(|v| match v {
            Some(i) => {
                buf.clear();
                let _ = write!(buf, "{i}");
                f(Some(buf))
            }
            None => f(None),
        }),
        DataType::Float64 => col.f64().expect("dtype checked").iter().for_each(|v| match v {
            Some(x) if !x.is_nan() => {
                buf.clear();
                buf.push_str(&float_key(x));
                f(Some(buf))
            }
            _ => f(None),
        }),
        DataType::String => col.str().expect("dtype checked").iter().for_each(f),
        _ => {
            let s = col.as_materialized_series();
            for i in 0..s.len() {
                match s.get(i) {
                    Ok(AnyValue::Null) | Err(_) => f(None),
                    Ok(v) => {
                        buf.clear();
                        let _ = write!(buf, "{v}");
                        f(Some(buf))
                    }
                }
            }
        }
    }
}
