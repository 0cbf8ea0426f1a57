//! Where `predict` writes its verdicts, chosen by the output file's extension: CSV (default),
//! JSON Lines (`.jsonl`, `.ndjson`, `.json`) or Parquet (`.parquet`, `.pq`). Each takes rows
//! of text cells (the kept input columns) plus the score and the label, in chunks.
//!
//! Add a format: one implementation of [`Sink`] here and one arm in [`Sink::for_path`].
//!
//! Text is written for people by default: scores to 6 decimals, and a CSV cell a spreadsheet
//! would run as a formula prefixed with `'`. `exact` writes for programs (`predict --exact`,
//! the Spark job): cells as they were read and every bit of a score (the shortest text that
//! parses back to the same f64).

use std::io::{BufWriter, Write};
use std::path::Path;

use polars_core::prelude::*;
use polars_io::prelude::{BatchedWriter, ParquetCompression, ParquetWriter};

use crate::error::{Error, Result};

/// One output format of `predict`.
pub trait Sink {
    /// One verdict: the kept cells (in the order of the columns given at creation).
    fn row(&mut self, cells: &[&str], score: f64, label: &'static str) -> Result<()>;
    /// End of a chunk (a place to write a Parquet row group).
    fn flush_chunk(&mut self) -> Result<()> {
        Ok(())
    }
    /// Write what is buffered; the file is complete after it.
    fn finish(self: Box<Self>) -> Result<()>;
}

impl dyn Sink {
    /// The sink for `path`'s extension, writing into `file` (the temporary file of an atomic
    /// write), with the given kept columns.
    pub fn for_path<'f>(
        path: &Path,
        file: &'f mut dyn Write,
        columns: Vec<String>,
        exact: bool,
    ) -> Result<Box<dyn Sink + 'f>> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        Ok(match ext {
            "parquet" | "pq" => Box::new(ParquetSink::new(path, file, columns)?),
            "jsonl" | "ndjson" | "json" => Box::new(JsonLinesSink {
                out: BufWriter::with_capacity(1 << 20, file),
                columns,
                path: path.into(),
                exact,
            }),
            _ => {
                let mut out = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file));
                let head = columns.iter().map(String::as_str).chain(["threat_score", "prediction"]);
                out.write_record(head).map_err(|e| write_error(path, e))?;
                Box::new(CsvSink { out, path: path.into(), line: String::new(), exact })
            }
        })
    }
}

/// A CSV writer's error: an I/O error stays one (a closed pipe is told apart by its kind).
fn write_error(path: &Path, e: csv::Error) -> Error {
    let message = format!("cannot write: {e}");
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        _ => Error::file(path, message),
    }
}

struct CsvSink<W: Write> {
    out: csv::Writer<W>,
    path: std::path::PathBuf,
    line: String,
    exact: bool,
}

impl<W: Write> Sink for CsvSink<W> {
    fn row(&mut self, cells: &[&str], score: f64, label: &'static str) -> Result<()> {
        use std::fmt::Write as _;
        self.line.clear();
        let err = |e: csv::Error| write_error(&self.path, e);
        if self.exact {
            let _ = write!(self.line, "{score}");
            for cell in cells {
                self.out.write_field(cell.as_bytes()).map_err(err)?;
            }
        } else {
            let _ = write!(self.line, "{score:.6}");
            // A cell a spreadsheet would run as a formula is prefixed with `'` (see output::csv).
            for cell in cells {
                self.out.write_field(crate::output::csv::formula_safe(cell).as_bytes()).map_err(err)?;
            }
        }
        self.out.write_record([self.line.as_str(), label]).map_err(err)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}

struct JsonLinesSink<W: Write> {
    out: W,
    columns: Vec<String>,
    path: std::path::PathBuf,
    exact: bool,
}

impl<W: Write> Sink for JsonLinesSink<W> {
    fn row(&mut self, cells: &[&str], score: f64, label: &'static str) -> Result<()> {
        let mut obj = serde_json::Map::with_capacity(cells.len() + 2);
        for (c, v) in self.columns.iter().zip(cells) {
            obj.insert(c.clone(), serde_json::Value::String((*v).to_owned()));
        }
        let score = if self.exact { score } else { crate::artifact::round(score, 6) };
        obj.insert("threat_score".into(), serde_json::json!(score));
        obj.insert("prediction".into(), serde_json::Value::String(label.to_owned()));
        serde_json::to_writer(&mut self.out, &obj).map_err(|e| Error::file(&self.path, e.to_string()))?;
        self.out.write_all(b"\n").map_err(|e| Error::io(&self.path, e))
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// Parquet: the kept columns as text, `threat_score` as Float64, one row group per chunk.
struct ParquetSink<'f> {
    writer: BatchedWriter<&'f mut dyn Write>,
    columns: Vec<String>,
    cells: Vec<Vec<String>>,
    scores: Vec<f64>,
    labels: Vec<&'static str>,
    path: std::path::PathBuf,
}

impl<'f> ParquetSink<'f> {
    fn new(path: &Path, file: &'f mut dyn Write, columns: Vec<String>) -> Result<Self> {
        let mut fields: Vec<Field> = columns.iter().map(|c| Field::new(c.as_str().into(), DataType::String)).collect();
        fields.push(Field::new("threat_score".into(), DataType::Float64));
        fields.push(Field::new("prediction".into(), DataType::String));
        let schema = Schema::from_iter(fields);
        let writer = ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .batched(&schema)
            .map_err(|e| Error::polars(path, e))?;
        let cells = vec![Vec::new(); columns.len()];
        Ok(ParquetSink { writer, columns, cells, scores: Vec::new(), labels: Vec::new(), path: path.into() })
    }
}

impl Sink for ParquetSink<'_> {
    fn row(&mut self, cells: &[&str], score: f64, label: &'static str) -> Result<()> {
        for (col, v) in self.cells.iter_mut().zip(cells) {
            col.push((*v).to_owned());
        }
        self.scores.push(score);
        self.labels.push(label);
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<()> {
        if self.scores.is_empty() {
            return Ok(());
        }
        let n = self.scores.len();
        let mut columns: Vec<Column> = self
            .columns
            .iter()
            .zip(self.cells.iter_mut())
            .map(|(name, v)| Column::new(name.as_str().into(), std::mem::take(v)))
            .collect();
        columns.push(Column::new("threat_score".into(), std::mem::take(&mut self.scores)));
        columns.push(Column::new("prediction".into(), std::mem::take(&mut self.labels)));
        let df = DataFrame::new(n, columns).map_err(|e| Error::polars(&self.path, e))?;
        self.writer.write_batch(&df).map_err(|e| Error::polars(&self.path, e))
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.flush_chunk()?;
        self.writer.finish().map(|_| ()).map_err(|e| Error::polars(&self.path, e))
    }
}
