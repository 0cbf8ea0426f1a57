//! CSV: each input row as it came, then `threat_score` and `prediction`. A cell a spreadsheet
//! would run as a formula (`=HYPERLINK(...)`, `+cmd`, `@SUM`, `-2+3`) is prefixed with `'`,
//! as spreadsheet-safe exports do (OWASP "CSV injection"); numbers such as `-1` are left as
//! they are.

use std::borrow::Cow;
use std::io::Write as _;

use super::{Format, Verdicts};

pub struct Csv;

impl Format<Verdicts<'_>> for Csv {
    fn media_type(&self) -> &'static str {
        "text/csv; charset=utf-8"
    }

    fn write(&self, v: &Verdicts<'_>, out: &mut Vec<u8>) {
        out.reserve(v.raw.iter().map(|r| r.len() + 24).sum::<usize>() + 64);
        let mut w = ::csv::Writer::from_writer(std::mem::take(out));
        let _ = w.write_record(v.columns.iter().map(String::as_str).chain(["threat_score", "prediction"]));
        *out = w.into_inner().unwrap_or_default();
        // The row's bytes, line end trimmed: nothing is re-quoted or allocated per row, unless
        // a cell may be a formula.
        for (row, raw) in v.raw.iter().enumerate() {
            let len = raw.iter().rposition(|&b| b != b'\n' && b != b'\r').map_or(0, |i| i + 1);
            let raw = &raw[..len];
            if may_hold_formula(raw) {
                escape_row(raw, out);
            } else {
                out.extend_from_slice(raw);
            }
            let _ = writeln!(out, ",{:.6},{}", v.scores[row], v.label(row));
        }
    }
}

/// Whether a cell would be read as a formula by a spreadsheet: it starts with `=`, `+`, `@`,
/// a tab or a carriage return, or with `-` and is not a number.
pub fn is_formula(cell: &str) -> bool {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'@' | b'\t' | b'\r') => cell.parse::<f64>().is_err(),
        Some(b'-') => cell.parse::<f64>().is_err(),
        _ => false,
    }
}

/// The cell, prefixed with `'` if it would be read as a formula.
pub fn formula_safe(cell: &str) -> Cow<'_, str> {
    if is_formula(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// A quick look at a row's bytes: false when no cell can start a formula (most rows), true
/// when one might (then the row is parsed and checked cell by cell). Searches for the few
/// bytes that matter at memory speed; a `-` matters only before something other than a digit.
fn may_hold_formula(raw: &[u8]) -> bool {
    if memchr::memchr3(b'=', b'+', b'@', raw).is_some() || memchr::memchr2(b'\t', b'\r', raw).is_some() {
        return true;
    }
    memchr::memchr_iter(b'-', raw).any(|at| !matches!(raw.get(at + 1), Some(b'0'..=b'9' | b'.')))
}

/// Write the row with each formula cell prefixed (see [`formula_safe`]), re-quoted as needed.
fn escape_row(raw: &[u8], out: &mut Vec<u8>) {
    let mut reader = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(raw);
    let mut record = ::csv::StringRecord::new();
    if !matches!(reader.read_record(&mut record), Ok(true)) {
        out.extend_from_slice(raw);
        return;
    }
    let mut w = ::csv::WriterBuilder::new().terminator(::csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    for cell in record.iter() {
        let _ = w.write_field(formula_safe(cell).as_bytes());
    }
    let _ = w.write_record(std::iter::empty::<&[u8]>());
    let mut text = w.into_inner().unwrap_or_default();
    text.pop();
    out.extend_from_slice(&text);
}

#[cfg(test)]
mod tests {
    use super::super::tests::{render, sample};
    use super::*;

    #[test]
    fn formula_cells_are_prefixed_and_numbers_kept() {
        assert!(is_formula("=HYPERLINK(\"http://x\")") && is_formula("+cmd") && is_formula("@SUM(A1)"));
        assert!(
            is_formula("-2+3") && !is_formula("-1") && !is_formula("-0.5") && !is_formula("+1") && !is_formula("a=b")
        );
        let mut out = Vec::new();
        escape_row(b"-1,\"=HYPERLINK(\"\"http://x\"\")\",ok", &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "-1,\"'=HYPERLINK(\"\"http://x\"\")\",ok");
        assert!(!may_hold_formula(b"-1,0,1,-0.5,abc"));
        assert!(may_hold_formula(b"1,\"@x\""));
    }

    #[test]
    fn snapshot() {
        sample(|v| {
            assert_eq!(
                render(&Csv, v),
                "a,note,threat_score,prediction\n1,\"x, <b>\",0.910000,threat\n2,plain,0.125000,benign\n"
            )
        });
    }
}
