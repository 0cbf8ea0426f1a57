//! CSV: each input row as it came, then `threat_score` and `prediction`.

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
        // The row's bytes, line end trimmed: nothing is re-quoted or allocated per row.
        for (row, raw) in v.raw.iter().enumerate() {
            let len = raw.iter().rposition(|&b| b != b'\n' && b != b'\r').map_or(0, |i| i + 1);
            out.extend_from_slice(&raw[..len]);
            let _ = writeln!(out, ",{:.6},{}", v.scores[row], v.label(row));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{render, sample};
    use super::*;

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
