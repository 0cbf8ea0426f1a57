//! Batch scoring of a CSV or Parquet file with bounded memory: rows are read, scored and
//! written in chunks, so a file of any size needs memory for one chunk only.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use ndarray::Array2;
use serde::Serialize;

use super::Loaded;
use crate::artifact::atomic_write;
use crate::data::records::line;
use crate::data::{column_keys, Format, Records};
use crate::error::{Error, Result};
use crate::preprocess::{Preprocessor, Raw};

#[derive(Debug, Clone, Serialize)]
pub struct BatchSummary {
    pub rows: u64,
    pub threats: u64,
    /// Categorical cells holding a value never seen in training (scored as unknown).
    pub unseen_category_cells: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
}

/// Scores, labels and output of one chunk.
struct Writer<'a, W: Write> {
    out: csv::Writer<W>,
    model: &'a Loaded,
    summary: BatchSummary,
}

impl<W: Write> Writer<'_, W> {
    /// The input's columns, then the two this stage adds.
    fn header(&mut self, input_columns: &[String], path: &Path) -> Result<()> {
        let head = input_columns.iter().map(String::as_str).chain(["threat_score", "prediction"]);
        self.out.write_record(head).map_err(|e| Error::file(path, format!("cannot write: {e}")))
    }

    fn chunk(&mut self, x: Array2<f64>, cells: &[Vec<String>], path: &Path) -> Result<()> {
        let scores = self.model.score(&x);
        let t = self.model.bundle.threshold;
        for (row, &s) in cells.iter().zip(&scores) {
            let label = crate::metrics::label(s, t);
            self.summary.threats += u64::from(crate::metrics::is_threat(s, t));
            let mut rec: Vec<&str> = row.iter().map(String::as_str).collect();
            let score = format!("{s:.6}");
            rec.push(&score);
            rec.push(label);
            self.out.write_record(&rec).map_err(|e| Error::file(path, format!("cannot write: {e}")))?;
        }
        self.summary.rows += scores.len() as u64;
        Ok(())
    }
}

/// Encode one row of text cells (`cell(k)` for input column k) onto the end of `values`.
fn encode<'a>(
    pre: &Preprocessor,
    cell: impl Fn(usize) -> &'a str,
    values: &mut Vec<f64>,
    unseen_cells: &mut u64,
    path: &Path,
    row: u64,
) -> Result<()> {
    let start = values.len();
    values.resize(start + pre.width(), 0.0);
    let mut unseen = Vec::new();
    pre.encode_row(|k, _| Ok(Raw::Text(cell(k))), &mut values[start..], &mut unseen).map_err(|(k, message)| {
        Error::Row { path: path.to_path_buf(), row, column: Some(pre.inputs()[k].name.clone()), message }
    })?;
    *unseen_cells += unseen.len() as u64;
    Ok(())
}

/// Where each input column of the model sits in a file's header.
fn positions(pre: &Preprocessor, header: &[String], input: &Path) -> Result<Vec<usize>> {
    pre.inputs()
        .iter()
        .map(|i| {
            header
                .iter()
                .position(|h| *h == i.name)
                .ok_or_else(|| Error::file(input, format!("missing column `{}` (an input of the model)", i.name)))
        })
        .collect()
}

/// Score `input` (CSV, optionally gzip, or Parquet) into `output` (CSV: the input columns,
/// `threat_score`, `prediction`), `chunk` rows at a time. The output appears only when complete.
pub fn score_file(model: &Loaded, input: &Path, output: &Path, chunk: usize) -> Result<BatchSummary> {
    let started = Instant::now();
    let pre = &model.bundle.preprocessor;
    let chunk = chunk.max(1);
    let mut summary = None;
    atomic_write(output, |file| {
        let out = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file));
        let mut w = Writer {
            out,
            model,
            summary: BatchSummary { rows: 0, threats: 0, unseen_category_cells: 0, seconds: 0.0, rows_per_second: 0.0 },
        };
        match Format::from_path(input)? {
            Format::Parquet => parquet_chunks(&mut w, input, output, pre, chunk)?,
            _ => csv_chunks(&mut w, input, output, pre, chunk)?,
        }
        w.out.flush().map_err(|e| Error::io(output, e))?;
        summary = Some(w.summary);
        Ok(())
    })?;
    let mut s = summary.expect("written");
    s.seconds = started.elapsed().as_secs_f64();
    s.rows_per_second = s.rows as f64 / s.seconds.max(1e-9);
    Ok(s)
}

fn csv_chunks<W: Write>(
    w: &mut Writer<'_, W>,
    input: &Path,
    output: &Path,
    pre: &Preprocessor,
    chunk: usize,
) -> Result<()> {
    // The one record reader, laid out as the model's dataset (delimiter, header or names).
    let at = |e| crate::data::csv_error(input, e);
    let mut records = Records::new(crate::data::open::open(input)?, &w.model.bundle.input).map_err(at)?;
    let header = records.columns().to_vec();
    let index = positions(pre, &header, input)?;
    w.header(&header, output)?;
    let width = pre.width();
    let (mut values, mut cells) = (Vec::with_capacity(chunk * width), Vec::with_capacity(chunk));
    let mut record = csv::ByteRecord::new();
    while records.next_record(&mut record).map_err(at)? {
        let fields = records.fields(&record).map_err(at)?;
        let row: Vec<String> = (0..fields.len()).map(|i| fields.get(i).to_owned()).collect();
        encode(
            pre,
            |k| row[index[k]].as_str(),
            &mut values,
            &mut w.summary.unseen_category_cells,
            input,
            line(&record),
        )?;
        cells.push(row);
        if cells.len() == chunk {
            let x = Array2::from_shape_vec((cells.len(), width), std::mem::take(&mut values)).expect("shape");
            w.chunk(x, &cells, output)?;
            cells.clear();
        }
    }
    if !cells.is_empty() {
        let x = Array2::from_shape_vec((cells.len(), width), values).expect("shape");
        w.chunk(x, &cells, output)?;
    }
    if w.summary.rows == 0 {
        return Err(Error::file(input, "has a header but no data rows"));
    }
    Ok(())
}

fn parquet_chunks<W: Write>(
    w: &mut Writer<'_, W>,
    input: &Path,
    output: &Path,
    pre: &Preprocessor,
    chunk: usize,
) -> Result<()> {
    use polars_io::prelude::*;
    let rows = ParquetReader::new(std::fs::File::open(input).map_err(|e| Error::io(input, e))?)
        .num_rows()
        .map_err(|e| Error::polars(input, e))?;
    let mut wrote_header = false;
    let mut offset = 0;
    while offset < rows {
        let file = std::fs::File::open(input).map_err(|e| Error::io(input, e))?;
        let df =
            ParquetReader::new(file).with_slice(Some((offset, chunk))).finish().map_err(|e| Error::polars(input, e))?;
        let header: Vec<String> =
            df.get_column_names().iter().map(|n| n.to_string()).filter(|n| n != crate::data::ROW).collect();
        if !wrote_header {
            w.header(&header, output)?;
            wrote_header = true;
        }
        let keys: Vec<Vec<Option<String>>> =
            header.iter().map(|h| column_keys(df.column(h).expect("listed"))).collect();
        let n = df.height();
        let index = positions(pre, &header, input)?;
        let mut values = Vec::with_capacity(n * pre.width());
        let unseen = &mut w.summary.unseen_category_cells;
        (0..n).try_for_each(|i| {
            let cell = |k: usize| keys[index[k]][i].as_deref().unwrap_or("");
            encode(pre, cell, &mut values, unseen, input, (offset + i + 1) as u64)
        })?;
        let x = Array2::from_shape_vec((n, pre.width()), values).expect("shape");
        let cells: Vec<Vec<String>> =
            (0..n).map(|i| keys.iter().map(|c| c[i].clone().unwrap_or_default()).collect()).collect();
        w.chunk(x, &cells, output)?;
        offset += n.max(1);
    }
    Ok(())
}
