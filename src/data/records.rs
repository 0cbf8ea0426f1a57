//! The one reader of delimited records, driven by the dataset's layout (delimiter, header or
//! the schema's column names). `ingest` (through [`super::CsvSource`]), `predict` and the
//! server's CSV upload all read through it, so a file one of them accepts, the others accept
//! too. Its error, [`RecordError`], says where (line, column) and what; each caller renders it:
//! file, line and column for the command line, JSON with a 4xx over HTTP.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use serde::{Deserialize, Serialize};

/// How a dataset's text files are laid out: stored in model bundles, so that what scores a
/// file reads it as `ingest` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub delimiter: char,
    /// Whether the first line names the columns. Without it, `columns` names them in order.
    pub header: bool,
    /// The schema's column names, in file order.
    pub columns: Vec<String>,
}

impl Default for Layout {
    /// A CSV file with a header row: what bundles before layouts were recorded were given.
    fn default() -> Self {
        Layout { delimiter: ',', header: true, columns: Vec::new() }
    }
}

/// What is wrong with the input, and where: the line (1-based, the header being line 1), and
/// the column when one is at fault. `line` is `None` for the input as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    pub line: Option<u64>,
    pub column: Option<String>,
    pub message: String,
}

impl RecordError {
    pub fn whole(message: impl Into<String>) -> Self {
        RecordError { line: None, column: None, message: message.into() }
    }

    pub fn at(line: u64, column: Option<String>, message: impl Into<String>) -> Self {
        RecordError { line: Some(line), column, message: message.into() }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "row {line}")?;
            if let Some(c) = &self.column {
                write!(f, ", column `{c}`")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Records of one input, each checked to have one field per column.
pub struct Records<R: Read> {
    reader: csv::Reader<R>,
    columns: Vec<String>,
    delimiter: u8,
    /// The first data record when the file has no header (read while checking the input).
    pending: Option<csv::ByteRecord>,
}

impl<R: Read> Records<R> {
    /// Start reading: the header is read and checked now (names, duplicates, a delimiter
    /// that looks wrong); an empty input is an error.
    pub fn new(input: R, layout: &Layout) -> Result<Self, RecordError> {
        let delimiter = layout.delimiter as u8;
        let mut reader =
            csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(input);
        let mut first = csv::ByteRecord::new();
        if !reader.read_byte_record(&mut first).map_err(read_error)? {
            return Err(RecordError::whole("file is empty"));
        }
        let max_fields = super::limits::get().max_fields;
        if first.len() > max_fields {
            return Err(RecordError::at(
                1,
                None,
                format!("{} fields; the limit is {max_fields} (fields per row)", first.len()),
            ));
        }
        let (columns, pending) = if layout.header || names_known_columns(&first, &layout.columns) {
            // A header-less dataset's files may still come with a header row naming its
            // columns (a scoring file cut from the data): such a row is read as the header.
            (parse_header(&first, delimiter)?, None)
        } else {
            (layout.columns.clone(), Some(first))
        };
        Ok(Records { reader, columns, delimiter, pending })
    }

    /// The column names: the header's, or the layout's.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The next record into `record` (false at the end). Its line and byte offset are in
    /// `record.position()`.
    pub fn next_record(&mut self, record: &mut csv::ByteRecord) -> Result<bool, RecordError> {
        if let Some(first) = self.pending.take() {
            *record = first;
        } else if !self.reader.read_byte_record(record).map_err(read_error)? {
            return Ok(false);
        }
        if record.len() != self.columns.len() {
            return Err(RecordError::at(
                line(record),
                None,
                field_count_message(self.columns.len(), record, self.delimiter),
            ));
        }
        Ok(true)
    }

    /// Every field of a record as text, checked as UTF-8 in one pass.
    pub fn fields<'r>(&self, record: &'r csv::ByteRecord) -> Result<Fields<'r>, RecordError> {
        match std::str::from_utf8(record.as_slice()) {
            Ok(all) => {
                let fields = Fields { all, record };
                // A character split across two fields leaves each invalid on its own.
                match (0..record.len()).find(|&i| fields.try_get(i).is_none()) {
                    None => Ok(fields),
                    Some(i) => Err(self.text(record, i).err().unwrap_or_else(|| {
                        RecordError::at(line(record), Some(self.columns[i].clone()), "not valid UTF-8 text")
                    })),
                }
            }
            Err(_) => {
                for i in 0..record.len() {
                    self.text(record, i)?;
                }
                Err(RecordError::at(line(record), None, "not valid UTF-8 text"))
            }
        }
    }

    /// Field `i` of a record as text.
    pub fn text<'r>(&self, record: &'r csv::ByteRecord, i: usize) -> Result<&'r str, RecordError> {
        std::str::from_utf8(&record[i])
            .map_err(|_| RecordError::at(line(record), Some(self.columns[i].clone()), "not valid UTF-8 text"))
    }
}

/// The fields of one record, checked as text (see [`Records::fields`]).
pub struct Fields<'r> {
    all: &'r str,
    record: &'r csv::ByteRecord,
}

impl<'r> Fields<'r> {
    fn try_get(&self, i: usize) -> Option<&'r str> {
        self.all.get(self.record.range(i)?)
    }

    /// Field `i` (an index below the record's length).
    pub fn get(&self, i: usize) -> &'r str {
        self.try_get(i).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.record.len()
    }

    pub fn is_empty(&self) -> bool {
        self.record.is_empty()
    }
}

/// Whether every field of `record` is the name of one of `columns` (each at most once).
fn names_known_columns(record: &csv::ByteRecord, columns: &[String]) -> bool {
    let mut seen = std::collections::HashSet::new();
    !columns.is_empty()
        && record.iter().all(|f| {
            let name = std::str::from_utf8(f).unwrap_or("").trim_start_matches('\u{feff}').trim();
            columns.iter().any(|c| c == name) && seen.insert(name.to_owned())
        })
}

/// A record's line in the input.
pub fn line(record: &csv::ByteRecord) -> u64 {
    record.position().map(|p| p.line()).unwrap_or(0)
}

fn read_error(e: csv::Error) -> RecordError {
    let at = e.position().map(|p| p.line());
    let message = match e.kind() {
        csv::ErrorKind::Io(_) => format!("cannot read: {e}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 text".into(),
        _ => e.to_string(),
    };
    RecordError { line: at, column: None, message }
}

fn parse_header(record: &csv::ByteRecord, delimiter: u8) -> Result<Vec<String>, RecordError> {
    let mut names = Vec::with_capacity(record.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, field) in record.iter().enumerate() {
        let text = std::str::from_utf8(field)
            .map_err(|_| RecordError::whole(format!("header: column {} is not valid UTF-8 text", i + 1)))?;
        // UTF-8 byte order mark, as in the UNSW-NB15 files.
        let name = text.trim_start_matches('\u{feff}').trim().to_owned();
        if name.is_empty() {
            return Err(RecordError::whole(format!("header: column {} has an empty name", i + 1)));
        }
        if let Some(first) = seen.insert(name.clone(), i + 1) {
            return Err(RecordError::whole(format!(
                "header: column name `{name}` appears twice (columns {first} and {})",
                i + 1
            )));
        }
        names.push(name);
    }
    if names.len() == 1 {
        if let Some(d) = other_delimiter(names[0].as_bytes(), delimiter) {
            return Err(RecordError::whole(format!(
                "header has a single column `{}`: the file seems to be delimited by {} but the schema says {}",
                names[0],
                show(d),
                show(delimiter)
            )));
        }
    }
    Ok(names)
}

fn field_count_message(expected: usize, record: &csv::ByteRecord, delimiter: u8) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, layout: &Layout) -> Result<Vec<(u64, Vec<String>)>, RecordError> {
        let mut r = Records::new(text.as_bytes(), layout)?;
        let mut rec = csv::ByteRecord::new();
        let mut out = Vec::new();
        while r.next_record(&mut rec)? {
            let cells = (0..rec.len()).map(|i| r.text(&rec, i).map(str::to_owned)).collect::<Result<_, _>>()?;
            out.push((line(&rec), cells));
        }
        Ok(out)
    }

    #[test]
    fn header_or_schema_names_and_lines() {
        let csv = Layout::default();
        assert_eq!(
            read("a,b\n1,2\n3,4\n", &csv).unwrap(),
            [(2, vec!["1".into(), "2".into()]), (3, vec!["3".into(), "4".into()])]
        );
        let bare = Layout { delimiter: '\t', header: false, columns: vec!["a".into(), "b".into()] };
        let mut r = Records::new("1\t2\n".as_bytes(), &bare).unwrap();
        assert_eq!(r.columns(), ["a", "b"]);
        let mut rec = csv::ByteRecord::new();
        assert!(r.next_record(&mut rec).unwrap());
        assert_eq!((line(&rec), r.text(&rec, 1).unwrap()), (1, "2"));
        // A header row naming the schema's columns is taken as a header, even without one
        // in the layout (a file to score cut from header-less data); a data row is not.
        let named = Records::new("b\ta\n2\t1\n".as_bytes(), &bare).unwrap();
        assert_eq!(named.columns(), ["b", "a"]);
        let data = Records::new("a\t1\n".as_bytes(), &bare).unwrap();
        assert_eq!(data.columns(), ["a", "b"]);
    }

    #[test]
    fn errors_say_where() {
        let csv = Layout::default();
        assert_eq!(read("", &csv).unwrap_err(), RecordError::whole("file is empty"));
        let e = read("a,b\n1,2\n3\n", &csv).unwrap_err();
        assert_eq!((e.line, e.to_string()), (Some(3), "row 3: expected 2 fields, found 1 (truncated row?)".into()));
        assert!(read("a;b\n1;2\n", &csv).unwrap_err().message.contains("delimited by ';'"));
        assert!(read("a,a\n1,2\n", &csv).unwrap_err().message.contains("appears twice"));
        let mut r = Records::new(&b"a,b\n1,\xffx\n"[..], &csv).unwrap();
        let mut rec = csv::ByteRecord::new();
        assert!(r.next_record(&mut rec).unwrap());
        let e = r.text(&rec, 1).unwrap_err();
        assert_eq!(e.to_string(), "row 2, column `b`: not valid UTF-8 text");
    }
}
