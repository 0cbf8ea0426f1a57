//! Batch scoring of a CSV, Parquet or Zeek log file with bounded memory: rows are read, scored and
//! written in chunks, so a file of any size needs memory for one chunk only.

use std::path::Path;
use std::time::Instant;

use ndarray::{Array2, ArrayView2};
use serde::Serialize;

use super::block::Kept;
use super::sink::Sink;
use super::zeek::ZeekBatch;
use super::Loaded;
use crate::artifact::write_output;
use crate::data::records::line;
use crate::data::zeek::ZeekReader;
use crate::data::{column_keys, Format, Records};
use crate::error::{Error, Result};
use crate::preprocess::{Preprocessor, Raw};

#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchSummary {
    pub rows: u64,
    pub threats: u64,
    /// Categorical cells holding a value never seen in training (scored as unknown).
    pub unseen_category_cells: u64,
    /// Numeric cells outside their column's schema domain (scored unless strict).
    pub out_of_domain_cells: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
}

/// How `predict` scores a file (its flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// Rows per chunk: memory use is bounded by one chunk.
    pub chunk: usize,
    /// Write to the target of the output when it is a symbolic link.
    pub follow_symlinks: bool,
    /// A value outside its column's schema domain stops the run with an error naming the row
    /// and column.
    pub strict: bool,
    /// This many top contributions per row as extra columns (0: none).
    pub explain: usize,
    /// Text for programs: cells as read, every bit of a score (see [`Sink`]).
    pub exact: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { chunk: 65_536, follow_symlinks: false, strict: false, explain: 0, exact: false }
    }
}

/// Scores, labels and output of one chunk.
struct Writer<'a, 'f> {
    out: Box<dyn Sink + 'f>,
    model: &'a Loaded,
    opts: &'a Options,
    summary: BatchSummary,
}

impl<'a, 'f> Writer<'a, 'f> {
    /// A writer of `output` into `file`, with the kept `columns` (then the explanation's).
    fn new(
        model: &'a Loaded,
        opts: &'a Options,
        output: &Path,
        file: &'f mut dyn std::io::Write,
        columns: Vec<String>,
    ) -> Result<Self> {
        let out = <dyn Sink>::for_path(output, file, with_reasons(columns, opts.explain), opts.exact)?;
        Ok(Writer { out, model, opts, summary: BatchSummary::default() })
    }

    fn chunk(&mut self, x: Array2<f64>, cells: &Kept) -> Result<()> {
        let scores = self.model.score(&x);
        self.each(&scores, x.view(), |r, rec| rec.extend(cells.row(r)))
    }

    /// Write row `r` of `scores` (scored from row `r` of `x`) with the cells `fill(r, ..)`
    /// puts in, then its explanation's columns when asked for.
    fn each<'c>(
        &mut self,
        scores: &[f64],
        x: ArrayView2<'_, f64>,
        mut fill: impl FnMut(usize, &mut Vec<&'c str>),
    ) -> Result<()> {
        let t = self.model.bundle.threshold;
        let k = self.opts.explain;
        // The chunk's explanations, on every core (TreeSHAP costs far more than scoring).
        let reasons: Vec<Vec<String>> = if k == 0 {
            Vec::new()
        } else {
            use rayon::prelude::*;
            let model = self.model;
            (0..scores.len()).into_par_iter().map(|r| reasons(model, x.row(r).to_vec(), k)).collect::<Result<_>>()?
        };
        let mut rec: Vec<&str> = Vec::new();
        for (r, &s) in scores.iter().enumerate() {
            self.summary.threats += u64::from(crate::metrics::is_threat(s, t));
            rec.clear();
            fill(r, &mut rec);
            if k == 0 {
                self.out.row(&rec, s, crate::metrics::label(s, t))?;
                continue;
            }
            let row: Vec<&str> = rec.iter().copied().chain(reasons[r].iter().map(String::as_str)).collect();
            self.out.row(&row, s, crate::metrics::label(s, t))?;
        }
        self.summary.rows += scores.len() as u64;
        self.out.flush_chunk()?;
        crate::fault::kill_point("predict:chunk-written");
        Ok(())
    }
}

/// The `k` largest contributions of an encoded row, by input feature: name and value pairs
/// (empty when there are fewer), then the base value.
fn reasons(model: &Loaded, row: Vec<f64>, k: usize) -> Result<Vec<String>> {
    let bundle = &model.bundle;
    let e = bundle.model.explain(&row).map_err(|m| Error::Model(format!("--explain: {m}")))?;
    let top = bundle.preprocessor.contributions_by_input(&e.contributions, k);
    let mut out = Vec::with_capacity(2 * k + 1);
    for i in 0..k {
        match top.get(i) {
            Some((name, v)) => {
                out.push((*name).to_owned());
                out.push(format!("{v:.6}"));
            }
            None => out.extend([String::new(), String::new()]),
        }
    }
    out.push(format!("{:.6}", e.base));
    Ok(out)
}

/// The output's kept columns, then the explanation's columns for `k` reasons.
fn with_reasons(mut columns: Vec<String>, k: usize) -> Vec<String> {
    if k > 0 {
        for i in 1..=k {
            columns.push(format!("reason_{i}"));
            columns.push(format!("contribution_{i}"));
        }
        columns.push("explain_base".into());
    }
    columns
}

/// Encode one row of text cells (`cell(k)` for input column k) onto the end of `values`.
fn encode<'a>(
    pre: &Preprocessor,
    cell: impl Fn(usize) -> &'a str,
    values: &mut Vec<f64>,
    summary: &mut BatchSummary,
    strict: bool,
    path: &Path,
    row: u64,
) -> Result<()> {
    let start = values.len();
    values.resize(start + pre.width(), 0.0);
    let mut unseen = Vec::new();
    pre.encode_row(|k, _| Ok(Raw::Text(cell(k))), &mut values[start..], &mut unseen).map_err(|(k, message)| {
        Error::Row { path: path.to_path_buf(), row, column: Some(pre.inputs()[k].name.clone()), message }
    })?;
    summary.unseen_category_cells += unseen.len() as u64;
    let (outside, first) = pre.domain_report(&values[start..]);
    summary.out_of_domain_cells += outside;
    match first {
        Some((name, why)) if strict => Err(Error::Row {
            path: path.to_path_buf(),
            row,
            column: Some(name.to_owned()),
            message: format!("{why} (--strict)"),
        }),
        _ => Ok(()),
    }
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

/// Score `input` (CSV, optionally gzip, Parquet, or a Zeek log) into `output`, `chunk` rows
/// at a time. The output (CSV, JSON Lines or Parquet, by its extension: see [`Sink`]) holds
/// the input columns (for a Zeek log: the connection's identity, `data::zeek::CONN_ID`), then
/// `threat_score` and `prediction`. It appears only when complete.
///
/// `input` `-` is standard input (CSV, a Zeek log or URLs; not Parquet, which needs to seek),
/// and `output` `-` standard output (CSV): `predict - - --exact` is a filter a Spark job or a
/// shell pipe can run.
pub fn score_file(model: &Loaded, input: &Path, output: &Path, opts: &Options) -> Result<BatchSummary> {
    let started = Instant::now();
    let pre = &model.bundle.preprocessor;
    let opts = &Options { chunk: opts.chunk.max(1), ..opts.clone() };
    let mut summary = None;
    // A name that tells nothing (`/dev/stdin`, `scores.out`) is read as CSV: predict has no
    // `format:` setting, and a Zeek log is told by its content anyway.
    let format = match Format::from_path(input) {
        Err(Error::File { .. }) => Format::Csv,
        other => other?,
    };
    write_output(output, opts.follow_symlinks, |file| {
        let url_model = super::urls::url_column(pre).is_some();
        let s = match format {
            Format::Parquet => parquet_chunks(model, opts, file, input, output)?,
            // A URL model reads a text file of URLs, one per line.
            _ if url_model => url_chunks(model, opts, file, input, output)?,
            Format::Zeek => zeek_chunks(model, opts, file, input, output)?,
            _ => csv_chunks(model, opts, file, input, output)?,
        };
        summary = Some(s);
        Ok(())
    })?;
    let mut s = summary.expect("written");
    s.seconds = started.elapsed().as_secs_f64();
    s.rows_per_second = s.rows as f64 / s.seconds.max(1e-9);
    Ok(s)
}

/// URLs, one per line (a header line naming the column is skipped): the URL and its verdict.
fn url_chunks(
    model: &Loaded,
    opts: &Options,
    file: &mut dyn std::io::Write,
    input: &Path,
    output: &Path,
) -> Result<BatchSummary> {
    use std::io::BufRead;
    let column = super::urls::url_column(&model.bundle.preprocessor).expect("a URL model").to_owned();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, crate::data::open::open(input)?);
    let mut w = Writer::new(model, opts, output, file, vec![column.clone()])?;
    let mut batch = super::urls::UrlBatch::new(model);
    let flush = |batch: &mut super::urls::UrlBatch<'_>, w: &mut Writer<'_, '_>| -> Result<()> {
        w.summary.unseen_category_cells += std::mem::take(&mut batch.block.unseen_cells);
        let (x, urls, _) = batch.take();
        let scores = model.score(&x);
        w.each(&scores, x.view(), |r, rec| rec.push(urls[r].as_str()))?;
        batch.block.recycle(x);
        Ok(())
    };
    let block = block_rows(model.bundle.preprocessor.width());
    let mut buf = Vec::new();
    let mut lineno = 0;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(|e| Error::io(input, e))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        // Bytes that are not UTF-8 are replaced (U+FFFD): such a URL still gets a verdict.
        let line = String::from_utf8_lossy(&buf);
        if let Some(url) = super::urls::url_of(&line, &column, lineno) {
            batch.push(url, lineno);
        }
        if batch.len() == opts.chunk.min(block) {
            flush(&mut batch, &mut w)?;
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut w)?;
    }
    if w.summary.rows == 0 {
        return Err(Error::file(input, "has no URLs (one per line)"));
    }
    w.out.finish()?;
    Ok(w.summary)
}

/// Records (Zeek connections, URLs) encoded before they are scored as one block: a few
/// thousand, fewer for wide rows (a URL's 1,472 features), so that the block stays near the
/// CPU's caches from its encoding to its scoring. Measured with the URL model: 4,096 rows
/// (48 MB) a block scored 35k URLs/s, 512 rows 55k.
fn block_rows(width: usize) -> usize {
    const BYTES: usize = 4 << 20;
    (BYTES / (8 * width.max(1))).clamp(256, 4096)
}

/// A Zeek log: the connection's identity and the verdict per record.
fn zeek_chunks(
    model: &Loaded,
    opts: &Options,
    file: &mut dyn std::io::Write,
    input: &Path,
    output: &Path,
) -> Result<BatchSummary> {
    let at = |e| crate::data::csv_error(input, e);
    let mut reader = ZeekReader::new(std::io::BufReader::with_capacity(1 << 20, crate::data::open::open(input)?));
    let mut batch = ZeekBatch::new(model);
    let block = block_rows(model.bundle.preprocessor.width());
    let mut w: Option<Writer<'_, '_>> = None;
    let mut out_file = Some(file);
    loop {
        let more = reader.next_record().map_err(at)?;
        if more {
            batch.push(&reader.parser, reader.line()).map_err(at)?;
        }
        // Scored a few thousand at a time: the block stays in the CPU's caches.
        if (!more && !batch.is_empty()) || batch.len() == opts.chunk.min(block) {
            if w.is_none() {
                w = Some(Writer::new(model, opts, output, out_file.take().expect("once"), batch.id_columns())?);
            }
            let w = w.as_mut().expect("set");
            w.summary.unseen_category_cells += std::mem::take(&mut batch.block.unseen_cells);
            let (x, kept, _) = batch.take();
            let scores = model.score(&x);
            w.each(&scores, x.view(), |r, rec| rec.extend(kept.row(r)))?;
            batch.block.recycle(x);
        }
        if !more {
            break;
        }
    }
    match w {
        Some(w) => {
            w.out.finish()?;
            Ok(w.summary)
        }
        None if reader.parser.started() => Err(Error::file(input, "has a Zeek header but no records (0 connections)")),
        None => Err(Error::file(input, "file is empty: no Zeek header and no records")),
    }
}

fn csv_chunks(
    model: &Loaded,
    opts: &Options,
    file: &mut dyn std::io::Write,
    input: &Path,
    output: &Path,
) -> Result<BatchSummary> {
    let (pre, chunk) = (&model.bundle.preprocessor, opts.chunk);
    // The one record reader, laid out as the model's dataset (delimiter, header or names).
    let at = |e| crate::data::csv_error(input, e);
    let mut records = Records::new(crate::data::open::open(input)?, &model.bundle.input).map_err(at)?;
    let header = records.columns().to_vec();
    let index = positions(pre, &header, input)?;
    let mut w = Writer::new(model, opts, output, file, header.clone())?;
    let width = pre.width();
    let mut values = Vec::with_capacity(chunk.min(1 << 16) * width);
    let mut cells = Kept::new(header.len(), chunk.min(1 << 16));
    let mut record = csv::ByteRecord::new();
    while records.next_record(&mut record).map_err(at)? {
        let fields = records.fields(&record).map_err(at)?;
        (0..fields.len()).for_each(|i| cells.push(fields.get(i)));
        encode(pre, |k| cells.last(index[k]), &mut values, &mut w.summary, opts.strict, input, line(&record))?;
        if cells.len() == chunk {
            let x = Array2::from_shape_vec((cells.len(), width), std::mem::take(&mut values)).expect("shape");
            w.chunk(x, &cells)?;
            cells.clear();
        }
    }
    if !cells.is_empty() {
        let x = Array2::from_shape_vec((cells.len(), width), values).expect("shape");
        w.chunk(x, &cells)?;
    }
    if w.summary.rows == 0 {
        return Err(Error::file(input, "has a header but no data rows"));
    }
    w.out.finish()?;
    Ok(w.summary)
}

fn parquet_chunks(
    model: &Loaded,
    opts: &Options,
    file: &mut dyn std::io::Write,
    input: &Path,
    output: &Path,
) -> Result<BatchSummary> {
    let (pre, chunk) = (&model.bundle.preprocessor, opts.chunk);
    use polars_io::prelude::*;
    let rows = ParquetReader::new(std::fs::File::open(input).map_err(|e| Error::io(input, e))?)
        .num_rows()
        .map_err(|e| Error::polars(input, e))?;
    let mut out_file = Some(file);
    let mut w: Option<Writer<'_, '_>> = None;
    let mut offset = 0;
    while offset < rows {
        let file = std::fs::File::open(input).map_err(|e| Error::io(input, e))?;
        let df =
            ParquetReader::new(file).with_slice(Some((offset, chunk))).finish().map_err(|e| Error::polars(input, e))?;
        let header: Vec<String> =
            df.get_column_names().iter().map(|n| n.to_string()).filter(|n| n != crate::data::ROW).collect();
        if w.is_none() {
            w = Some(Writer::new(model, opts, output, out_file.take().expect("once"), header.clone())?);
        }
        let w = w.as_mut().expect("set");
        let keys: Vec<Vec<Option<String>>> =
            header.iter().map(|h| column_keys(df.column(h).expect("listed"))).collect();
        let n = df.height();
        let index = positions(pre, &header, input)?;
        let mut values = Vec::with_capacity(n * pre.width());
        let summary = &mut w.summary;
        (0..n).try_for_each(|i| {
            let cell = |k: usize| keys[index[k]][i].as_deref().unwrap_or("");
            encode(pre, cell, &mut values, summary, opts.strict, input, (offset + i + 1) as u64)
        })?;
        let x = Array2::from_shape_vec((n, pre.width()), values).expect("shape");
        let mut cells = Kept::new(keys.len(), n);
        (0..n).for_each(|i| keys.iter().for_each(|c| cells.push(c[i].as_deref().unwrap_or(""))));
        w.chunk(x, &cells)?;
        offset += n.max(1);
    }
    let w = w.ok_or_else(|| Error::file(input, "has no rows"))?;
    w.out.finish()?;
    Ok(w.summary)
}
