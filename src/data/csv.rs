//! Delimited text files (CSV, TSV, header-less KDD files), gzip allowed.
//!
//! Parsed with the `csv` crate rather than polars' reader so that every problem is reported
//! with the file, the line and the column.

use std::collections::HashMap;
use std::path::Path;

use polars::prelude::*;

use super::column::{parse_cell, ColumnBuilder};
use super::open::open;
use super::{ReadOptions, Source, ROW};
use crate::error::{Error, Result};

pub struct CsvSource;

impl Source for CsvSource {
    fn read(&self, path: &Path, opts: &ReadOptions) -> Result<DataFrame> {
        let mut reader = ::csv::ReaderBuilder::new()
            .delimiter(opts.delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(open(path)?);
        let mut record = ::csv::ByteRecord::new();
        let mut names: Option<Vec<String>> = (!opts.header).then(|| opts.column_names.clone());
        let mut builders: Vec<ColumnBuilder> = Vec::new();
        let mut rows: Vec<i64> = Vec::new();
        let mut saw_any_record = false;

        loop {
            let more = reader.read_byte_record(&mut record).map_err(|e| match e.kind() {
                ::csv::ErrorKind::Io(_) => Error::file(path, format!("cannot read: {e}")),
                _ => Error::file(path, e.to_string()),
            })?;
            if !more {
                break;
            }
            saw_any_record = true;
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            let Some(names) = names.as_ref() else {
                let header = parse_header(path, &record, opts.delimiter)?;
                builders = header.iter().map(ColumnBuilder::new).collect();
                names = Some(header);
                continue;
            };
            if builders.is_empty() {
                builders = names.iter().map(ColumnBuilder::new).collect();
            }
            if record.len() != names.len() {
                return Err(Error::Row {
                    path: path.to_path_buf(),
                    row: line,
                    column: None,
                    message: field_count_message(names.len(), &record, opts.delimiter),
                });
            }
            for (field, builder) in record.iter().zip(builders.iter_mut()) {
                let text = std::str::from_utf8(field).map_err(|_| Error::Row {
                    path: path.to_path_buf(),
                    row: line,
                    column: Some(builder.name().to_owned()),
                    message: "not valid UTF-8 text".into(),
                })?;
                builder.push(parse_cell(text));
            }
            rows.push(line as i64);
        }

        if !saw_any_record {
            return Err(Error::file(path, "file is empty"));
        }
        if rows.is_empty() {
            return Err(Error::file(path, "has a header but no data rows"));
        }
        let mut columns: Vec<Column> = builders.into_iter().map(ColumnBuilder::finish).collect();
        columns.push(Column::new(ROW.into(), rows));
        DataFrame::new_infer_height(columns).map_err(|e| Error::polars(path, e))
    }
}

fn parse_header(path: &Path, record: &::csv::ByteRecord, delimiter: u8) -> Result<Vec<String>> {
    let mut names = Vec::with_capacity(record.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, field) in record.iter().enumerate() {
        let text = std::str::from_utf8(field)
            .map_err(|_| Error::file(path, format!("header: column {} is not valid UTF-8 text", i + 1)))?;
        // UTF-8 byte order mark, as in the UNSW-NB15 files.
        let name = text.trim_start_matches('\u{feff}').trim().to_owned();
        if name.is_empty() {
            return Err(Error::file(path, format!("header: column {} has an empty name", i + 1)));
        }
        if let Some(first) = seen.insert(name.clone(), i + 1) {
            return Err(Error::file(
                path,
                format!("header: column name `{name}` appears twice (columns {first} and {})", i + 1),
            ));
        }
        names.push(name);
    }
    if names.len() == 1 {
        if let Some(d) = other_delimiter(names[0].as_bytes(), delimiter) {
            return Err(Error::file(
                path,
                format!(
                    "header has a single column `{}`: the file seems to be delimited by {} but the schema says {}",
                    names[0],
                    show(d),
                    show(delimiter)
                ),
            ));
        }
    }
    Ok(names)
}

fn field_count_message(expected: usize, record: &::csv::ByteRecord, delimiter: u8) -> String {
    let found = record.len();
    let mut message = format!("expected {expected} fields, found {found}");
    if found < expected {
        message.push_str(" (truncated row?)");
    }
    if found == 1 {
        if let Some(d) = other_delimiter(&record[0], delimiter) {
            message.push_str(&format!(
                "; the row seems to be delimited by {} but the schema says {}",
                show(d),
                show(delimiter)
            ));
        }
    }
    message
}

fn other_delimiter(text: &[u8], delimiter: u8) -> Option<u8> {
    [b';', b'\t', b'|', b','].into_iter().find(|&d| d != delimiter && text.contains(&d))
}

fn show(d: u8) -> String {
    match d {
        b'\t' => "a tab".into(),
        d => format!("'{}'", d as char),
    }
}
