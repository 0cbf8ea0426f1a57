//! Zeek (Bro) logs, such as `conn.log`: the TSV form with its `#` header lines, or Zeek's JSON
//! form (one object per line, the same field names); gzip allowed (see [`super::open`]).
//!
//! The TSV header gives the separator, the set separator, the spellings of an empty set and of
//! an unset value, the field names and their Zeek types. `-` (unset) is a missing value,
//! `(empty)` an empty set. Zeek types map to schema types (see [`ZeekType::column_type`]).
//!
//! Published labeled logs are not uniform: IoT-23 joins `tunnel_parents`, `label` and
//! `detailed-label` with three spaces inside the last tab field, in the header and in every
//! row. That form is accepted; any other deviation is refused, naming the line and the field.
//!
//! [`ZeekParser`] works line by line, so the same code reads a whole file ([`ZeekReader`],
//! [`ZeekSource`]), an upload, and a log that Zeek is still appending to (`predict --follow`).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use polars_core::prelude::*;

use super::column::{parse_cell, Cell, ColumnBuilder};
use super::open::open;
use super::records::RecordError;
use super::{csv_error, Layout, Source, ROW};
use crate::error::{Error, Result};
use crate::schema::ColumnType;

/// The identity of a connection in `conn.log`: kept beside each verdict, never a feature.
pub const CONN_ID: [&str; 6] = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"];

/// Separators a Zeek TSV log may declare.
const SEPARATORS: [(u8, &str); 4] = [(b'\t', "tab"), (b',', "comma"), (b';', "semicolon"), (b'|', "pipe")];

/// How IoT-23 joins its last fields (`tunnel_parents   label   detailed-label`).
const THREE_SPACES: &str = "   ";

/// A Zeek field type, as `#types` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeekType {
    /// count, int, port: whole numbers.
    Integer,
    /// interval, double, time: numbers.
    Float,
    /// enum, string, bool: a category.
    Category,
    /// addr, subnet, sets, vectors and anything else: text.
    Text,
}

impl ZeekType {
    fn parse(name: &str) -> ZeekType {
        match name {
            "count" | "int" | "port" => ZeekType::Integer,
            "interval" | "double" | "time" => ZeekType::Float,
            "enum" | "string" | "bool" => ZeekType::Category,
            _ => ZeekType::Text,
        }
    }

    /// The schema type a column of this Zeek type has.
    pub fn column_type(self) -> ColumnType {
        match self {
            ZeekType::Integer => ColumnType::Integer,
            ZeekType::Float => ColumnType::Float,
            ZeekType::Category => ColumnType::Categorical,
            ZeekType::Text => ColumnType::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Tsv,
    Json,
}

/// Reads a Zeek log one line at a time; after [`ZeekParser::line`] returns `true`, the record
/// is readable through [`ZeekParser::get`] and [`ZeekParser::cell`].
#[derive(Debug)]
pub struct ZeekParser {
    dialect: Option<Dialect>,
    separator: u8,
    set_separator: String,
    empty: String,
    unset: String,
    fields: Vec<String>,
    /// Zeek types of the TSV fields (`None` until `#types`; JSON infers from the values).
    types: Option<Vec<ZeekType>>,
    index: HashMap<String, usize>,
    /// The current record: its text, and per field the span of its value (`None`: unset).
    text: String,
    spans: Vec<Option<(usize, usize)>>,
    /// JSON only: which values were JSON numbers.
    numeric: Vec<bool>,
    /// Per field of the current record: its value as a number when the field is numeric
    /// (a TSV count/int/port/interval/double/time, or a JSON number) and set; else NaN.
    numbers: Vec<f64>,
    /// Lines that held records so far.
    pub records: u64,
    /// Moves whenever the field list changes (a header block, a new JSON key).
    generation: u64,
}

impl Default for ZeekParser {
    fn default() -> Self {
        ZeekParser {
            dialect: None,
            separator: b'\t',
            set_separator: ",".into(),
            empty: "(empty)".into(),
            unset: "-".into(),
            fields: Vec::new(),
            types: None,
            index: HashMap::new(),
            text: String::new(),
            spans: Vec::new(),
            numeric: Vec::new(),
            numbers: Vec::new(),
            records: 0,
            generation: 0,
        }
    }
}

impl ZeekParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The field names (for JSON: every key seen so far, in order of first appearance).
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The Zeek type of field `i`, when the log declares types (TSV).
    pub fn zeek_type(&self, i: usize) -> Option<ZeekType> {
        self.types.as_ref().and_then(|t| t.get(i).copied())
    }

    /// A number that changes whenever [`Self::fields`] does.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether a header (TSV) or a first object (JSON) has been read.
    pub fn started(&self) -> bool {
        !self.fields.is_empty()
    }

    /// Value of field `i` of the current record; `None` when unset or absent.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.spans.get(i).copied().flatten().map(|(s, e)| &self.text[s..e])
    }

    /// Field `i` of the current record as a number, when it is a set numeric field (parsed
    /// once, while the record was checked).
    pub fn number(&self, i: usize) -> Option<f64> {
        self.numbers.get(i).copied().filter(|v| !v.is_nan())
    }

    /// Field `i` of the current record as a typed cell.
    pub fn cell(&self, i: usize) -> Cell {
        let Some(v) = self.get(i) else { return Cell::Missing };
        match (self.dialect, self.zeek_type(i)) {
            (Some(Dialect::Tsv), Some(ZeekType::Integer)) => v.parse().map_or(Cell::Missing, Cell::Int),
            (Some(Dialect::Tsv), Some(ZeekType::Float)) => v.parse().map_or(Cell::Missing, Cell::Float),
            (Some(Dialect::Json), _) if self.numeric.get(i).copied().unwrap_or(false) => parse_cell(v),
            _ => Cell::Str(v.to_owned()),
        }
    }

    /// Read one line (without its line end). `Ok(true)`: it was a record. Header lines, blank
    /// lines and `#close` give `Ok(false)`.
    pub fn line(&mut self, bytes: &[u8], lineno: u64) -> std::result::Result<bool, RecordError> {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.contains(&0) {
            return Err(RecordError::at(lineno, None, "binary data (a NUL byte): not a Zeek log"));
        }
        let line = std::str::from_utf8(bytes)
            .map_err(|_| RecordError::at(lineno, None, "not valid UTF-8 text: not a Zeek log"))?;
        if bytes.first().is_none_or(u8::is_ascii_whitespace) && line.trim().is_empty() {
            return Ok(false);
        }
        match self.dialect {
            None if line.starts_with("#separator") => {
                self.dialect = Some(Dialect::Tsv);
                self.header(line, lineno)
            }
            None if line.starts_with('{') => {
                self.dialect = Some(Dialect::Json);
                self.json(line, lineno)
            }
            None => Err(RecordError::at(
                lineno,
                None,
                "not a Zeek log: expected a `#separator` header line (TSV) or a JSON object per line",
            )),
            Some(Dialect::Tsv) if line.starts_with('#') => self.header(line, lineno),
            Some(Dialect::Tsv) => self.tsv(line, lineno),
            Some(Dialect::Json) => self.json(line, lineno),
        }
    }

    fn header(&mut self, line: &str, lineno: u64) -> std::result::Result<bool, RecordError> {
        let bad = |m: String| RecordError::at(lineno, None, m);
        if let Some(rest) = line.strip_prefix("#separator") {
            let value = rest.trim();
            let byte = unescape(value).ok_or_else(|| bad(format!("`#separator {value}`: unreadable value")))?;
            if !SEPARATORS.iter().any(|(b, _)| *b == byte) {
                let known: Vec<String> = SEPARATORS.iter().map(|(b, n)| format!("\\x{b:02x} ({n})")).collect();
                return Err(bad(format!("unknown `#separator {value}`: expected one of {}", known.join(", "))));
            }
            // A new header block (logs concatenated, or rotated into one file) starts afresh.
            *self = ZeekParser {
                records: self.records,
                dialect: self.dialect,
                generation: self.generation + 1,
                ..ZeekParser::default()
            };
            self.separator = byte;
            return Ok(false);
        }
        let sep = self.separator as char;
        let (key, value) = line.split_once(sep).unwrap_or((line, ""));
        match key {
            "#set_separator" => self.set_separator = value.to_owned(),
            "#empty_field" => self.empty = value.to_owned(),
            "#unset_field" => self.unset = value.to_owned(),
            "#fields" => {
                let fields = split_fields(value, sep);
                let mut index = HashMap::new();
                for (i, f) in fields.iter().enumerate() {
                    if f.is_empty() {
                        return Err(bad(format!("`#fields`: field {} has no name", i + 1)));
                    }
                    if index.insert(f.clone(), i).is_some() {
                        return Err(bad(format!("`#fields`: field `{f}` is listed twice")));
                    }
                }
                self.fields = fields;
                self.index = index;
                self.types = None;
                self.generation += 1;
            }
            "#types" => {
                if self.fields.is_empty() {
                    return Err(bad("`#types` comes before `#fields`".into()));
                }
                let types = split_fields(value, sep);
                if types.len() != self.fields.len() {
                    return Err(bad(format!(
                        "`#types` lists {} types but `#fields` {} fields",
                        types.len(),
                        self.fields.len()
                    )));
                }
                self.types = Some(types.iter().map(|t| ZeekType::parse(t)).collect());
            }
            // #path, #open, #close and comments.
            _ => {}
        }
        Ok(false)
    }

    fn tsv(&mut self, line: &str, lineno: u64) -> std::result::Result<bool, RecordError> {
        if self.fields.is_empty() {
            return Err(RecordError::at(lineno, None, "a record before the `#fields` header line"));
        }
        let Some(types) = &self.types else {
            return Err(RecordError::at(lineno, None, "the log has `#fields` but no `#types` header line"));
        };
        self.text.clear();
        self.text.push_str(line);
        self.spans.clear();
        let n = self.fields.len();
        let sep = self.separator;
        let mut start = 0;
        for (i, b) in line.bytes().enumerate() {
            if b == sep {
                self.spans.push(Some((start, i)));
                start = i + 1;
            }
        }
        self.spans.push(Some((start, line.len())));
        if self.spans.len() < n {
            // IoT-23: the last fields joined by three spaces inside the last tab field.
            let (s, e) = self.spans.pop().flatten().expect("one span at least");
            let mut at = s;
            for part in line[s..e].split(THREE_SPACES) {
                self.spans.push(Some((at, at + part.len())));
                at += part.len() + THREE_SPACES.len();
            }
        }
        if self.spans.len() != n {
            let got = self.spans.len();
            let field = if got < n { &self.fields[got] } else { &self.fields[n - 1] };
            let message = if got < n {
                format!("{got} fields, but `#fields` names {n}: `{field}` and after are missing")
            } else {
                format!("{got} fields, but `#fields` names {n}")
            };
            return Err(RecordError::at(lineno, Some(field.clone()), message));
        }
        self.numbers.clear();
        self.numbers.resize(n, f64::NAN);
        let (unset, empty) = (self.unset.as_bytes(), self.empty.as_bytes());
        for (i, span) in self.spans.iter_mut().enumerate() {
            let (s, e) = span.expect("set above");
            let v = &line[s..e];
            let b = v.as_bytes();
            // Most values are neither: compare the first byte before the whole spelling.
            if b.first() == unset.first() && b == unset {
                *span = None;
            } else if b.first() == empty.first() && b == empty {
                *span = Some((s, s));
            } else {
                let parsed = match types[i] {
                    ZeekType::Integer => v.parse::<i64>().ok().map(|x| x as f64),
                    ZeekType::Float => super::number::parse_f64(v).filter(|x| x.is_finite()),
                    _ => Some(f64::NAN),
                };
                if let Some(x) = parsed {
                    self.numbers[i] = x;
                } else {
                    let kind = if types[i] == ZeekType::Integer { "a whole number" } else { "a number" };
                    return Err(RecordError::at(
                        lineno,
                        Some(self.fields[i].clone()),
                        format!("expected {kind} (its `#types` entry), found {v:?}"),
                    ));
                }
            }
        }
        self.records += 1;
        Ok(true)
    }

    fn json(&mut self, line: &str, lineno: u64) -> std::result::Result<bool, RecordError> {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| RecordError::at(lineno, None, format!("not a JSON object: {e}")))?;
        let serde_json::Value::Object(object) = value else {
            return Err(RecordError::at(lineno, None, "expected a JSON object per line"));
        };
        self.text.clear();
        self.spans.clear();
        self.spans.resize(self.fields.len(), None);
        self.numeric.clear();
        self.numeric.resize(self.fields.len(), false);
        self.numbers.clear();
        self.numbers.resize(self.fields.len(), f64::NAN);
        for (key, value) in object {
            let i = match self.index.get(&key) {
                Some(&i) => i,
                None => {
                    self.index.insert(key.clone(), self.fields.len());
                    self.fields.push(key.clone());
                    self.generation += 1;
                    self.spans.push(None);
                    self.numeric.push(false);
                    self.numbers.push(f64::NAN);
                    self.fields.len() - 1
                }
            };
            let start = self.text.len();
            match value {
                serde_json::Value::Null => continue,
                serde_json::Value::Bool(b) => self.text.push(if b { 'T' } else { 'F' }),
                serde_json::Value::Number(n) => {
                    self.text.push_str(&n.to_string());
                    self.numeric[i] = true;
                    self.numbers[i] = n.as_f64().filter(|x| x.is_finite()).unwrap_or(f64::NAN);
                }
                serde_json::Value::String(s) => self.text.push_str(&s),
                serde_json::Value::Array(items) => {
                    for (k, item) in items.iter().enumerate() {
                        if k > 0 {
                            self.text.push_str(&self.set_separator);
                        }
                        match item {
                            serde_json::Value::String(s) => self.text.push_str(s),
                            other => self.text.push_str(&other.to_string()),
                        }
                    }
                }
                serde_json::Value::Object(_) => {
                    return Err(RecordError::at(
                        lineno,
                        Some(key),
                        "a nested object: Zeek JSON logs have flat field names such as `id.orig_h`",
                    ))
                }
            }
            self.spans[i] = Some((start, self.text.len()));
        }
        self.records += 1;
        Ok(true)
    }
}

/// `\x09` and friends, as Zeek writes the separator; a single literal character is accepted.
fn unescape(value: &str) -> Option<u8> {
    if let Some(hex) = value.strip_prefix("\\x") {
        return u8::from_str_radix(hex, 16).ok().filter(|_| hex.len() == 2);
    }
    match value.as_bytes() {
        [b] => Some(*b),
        _ => None,
    }
}

/// The names of a `#fields` or `#types` line, with IoT-23's three-space joins split.
fn split_fields(value: &str, sep: char) -> Vec<String> {
    value.split(sep).flat_map(|f| f.split(THREE_SPACES)).map(str::to_owned).collect()
}

/// A whole Zeek log read with [`ZeekParser`], one record at a time.
pub struct ZeekReader<R: BufRead> {
    input: R,
    pub parser: ZeekParser,
    buf: Vec<u8>,
    line: u64,
}

impl<R: BufRead> ZeekReader<R> {
    pub fn new(input: R) -> Self {
        ZeekReader { input, parser: ZeekParser::new(), buf: Vec::new(), line: 0 }
    }

    /// The line of the current record (1-based).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Advance to the next record; `Ok(false)` at the end of the input.
    pub fn next_record(&mut self) -> std::result::Result<bool, RecordError> {
        loop {
            self.buf.clear();
            let n = self
                .input
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| RecordError::at(self.line + 1, None, format!("cannot read: {e}")))?;
            if n == 0 {
                return Ok(false);
            }
            self.line += 1;
            let bytes = self.buf.strip_suffix(b"\n").unwrap_or(&self.buf);
            if self.parser.line(bytes, self.line)? {
                return Ok(true);
            }
        }
    }
}

/// Whether the start of an input looks like a Zeek log: a `#separator` line, or a JSON object
/// whose keys include Zeek's connection fields.
pub fn sniff(head: &[u8]) -> bool {
    head.starts_with(b"#separator") || (head.starts_with(b"{") && head.windows(9).any(|w| w == b"\"id.orig_"))
}

/// Zeek logs as a [`Source`]: one column per field, typed from `#types` (TSV) or the values
/// (JSON); unset values are missing.
pub struct ZeekSource;

impl Source for ZeekSource {
    fn read(&self, path: &Path, _layout: &Layout) -> Result<DataFrame> {
        let mut reader = ZeekReader::new(std::io::BufReader::with_capacity(1 << 16, open(path)?));
        let at = |e: RecordError| csv_error(path, e);
        let mut builders: Vec<ColumnBuilder> = Vec::new();
        let mut rows: Vec<i64> = Vec::new();
        let mut header: Option<Vec<String>> = None;
        while reader.next_record().map_err(at)? {
            let fields = reader.parser.fields();
            // A TSV log has one header for all its records; a JSON log may add keys as it goes.
            if header.as_deref() != Some(fields) {
                if let Some(old) = &header {
                    if !fields.starts_with(old) {
                        return Err(Error::Row {
                            path: path.to_path_buf(),
                            row: reader.line(),
                            column: None,
                            message: "a second header block with other fields; split the log at it".into(),
                        });
                    }
                }
                for name in &fields[builders.len()..] {
                    builders.push(ColumnBuilder::with_missing(name.clone(), rows.len()));
                }
                header = Some(fields.to_vec());
            }
            for (i, b) in builders.iter_mut().enumerate() {
                b.push(reader.parser.cell(i));
            }
            rows.push(reader.line() as i64);
        }
        if !reader.parser.started() {
            return Err(Error::file(path, "file is empty: no Zeek header and no records"));
        }
        if rows.is_empty() {
            return Err(Error::file(path, "has a Zeek header but no records (0 connections)"));
        }
        // A text column must stay text even when every value looks like a number (`service`
        // unset everywhere, an `enum` of digits).
        let types: Vec<Option<ZeekType>> = (0..builders.len()).map(|i| reader.parser.zeek_type(i)).collect();
        let mut columns: Vec<Column> = Vec::with_capacity(builders.len() + 1);
        for (b, t) in builders.into_iter().zip(types) {
            let col = b.finish();
            let want = match t {
                Some(ZeekType::Category | ZeekType::Text) => Some(DataType::String),
                Some(ZeekType::Float) => Some(DataType::Float64),
                Some(ZeekType::Integer) => Some(DataType::Int64),
                None => None,
            };
            let col = match want {
                Some(dtype) if col.dtype() != &dtype => col.cast(&dtype).map_err(|e| Error::polars(path, e))?,
                _ => col,
            };
            columns.push(col);
        }
        columns.push(Column::new(ROW.into(), rows));
        DataFrame::new_infer_height(columns).map_err(|e| Error::polars(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> std::result::Result<Vec<Vec<Option<String>>>, RecordError> {
        let mut r = ZeekReader::new(text.as_bytes());
        let mut out = Vec::new();
        while r.next_record()? {
            out.push((0..r.parser.fields().len()).map(|i| r.parser.get(i).map(str::to_owned)).collect());
        }
        Ok(out)
    }

    const HEAD: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n";

    #[test]
    fn tsv_unset_and_empty() {
        let log = format!("{HEAD}#fields\ta\tb\tc\n#types\tcount\tstring\tset[string]\n1\t-\t(empty)\n#close\tx\n");
        assert_eq!(read(&log).unwrap(), vec![vec![Some("1".into()), None, Some(String::new())]]);
    }

    #[test]
    fn iot23_three_spaces() {
        let log = format!(
            "{HEAD}#fields\ta\ttunnel_parents   label   detailed-label\n#types\tcount\tset[string]   string   string\n7\t(empty)   Malicious   PartOfAHorizontalPortScan\n"
        );
        let rows = read(&log).unwrap();
        assert_eq!(rows[0][2].as_deref(), Some("Malicious"));
        assert_eq!(rows[0][3].as_deref(), Some("PartOfAHorizontalPortScan"));
    }

    #[test]
    fn refusals_name_line_and_field() {
        let e = read(&format!("{HEAD}#fields\ta\tb\n2\tx\n")).unwrap_err();
        assert_eq!(e.line, Some(6));
        assert!(e.message.contains("no `#types`"), "{e}");
        let e = read(&format!("{HEAD}#fields\ta\tb\n#types\tcount\tstring\n2\n")).unwrap_err();
        assert_eq!((e.line, e.column.as_deref()), (Some(7), Some("b")));
        let e = read(&format!("{HEAD}#fields\ta\tb\n#types\tcount\tstring\nx2\ty\n")).unwrap_err();
        assert_eq!((e.line, e.column.as_deref()), (Some(7), Some("a")));
        let e = read("#separator \\x41\n").unwrap_err();
        assert!(e.message.contains("unknown `#separator"), "{e}");
        assert!(read("\u{0}\u{1}ELF").unwrap_err().message.contains("binary"));
        assert!(read("a,b\n1,2\n").unwrap_err().message.contains("not a Zeek log"));
    }

    #[test]
    fn json_lines() {
        let mut r = ZeekReader::new(
            "{\"ts\":1.5,\"uid\":\"C1\",\"id.orig_p\":80,\"local_orig\":false,\"tunnel_parents\":[\"a\",\"b\"]}\n{\"uid\":\"C2\",\"service\":\"dns\"}\n"
                .as_bytes(),
        );
        assert!(r.next_record().unwrap());
        let p = &r.parser;
        let get = |name: &str| p.position(name).and_then(|i| p.get(i)).map(str::to_owned);
        assert_eq!(get("local_orig").as_deref(), Some("F"));
        assert_eq!(get("tunnel_parents").as_deref(), Some("a,b"));
        assert_eq!(p.cell(p.position("id.orig_p").unwrap()), Cell::Int(80));
        assert!(r.next_record().unwrap());
        let p = &r.parser;
        assert_eq!(p.position("ts").and_then(|i| p.get(i)), None);
        assert_eq!(p.position("service").and_then(|i| p.get(i)), Some("dns"));
    }
}
