//! Output formats: one file per format, each implementing [`Format`] for the data it can show.
//!
//! - [`Verdicts`]: what scoring answers (the server's CSV upload, `predict`): CSV, JSON, HTML
//!   table, Markdown;
//! - [`Ranking`]: the leaderboard of a search: Markdown (and JSON through serde, by `train`).
//!
//! Add a format: one file here implementing `Format<Verdicts<'_>>` (and `Format<Ranking<'_>>`
//! if it can show a ranking), then one line in [`for_accept`] so the server offers it.

pub mod csv;
pub mod html;
pub mod json;
pub mod markdown;

use crate::metrics::MeanStd;

/// One output format for data of type `T`.
pub trait Format<T: ?Sized>: Sync {
    /// The HTTP media type of what [`Format::write`] writes.
    fn media_type(&self) -> &'static str;
    /// Append the rendering of `data` to `out`.
    fn write(&self, data: &T, out: &mut Vec<u8>);
}

pub use crate::metrics::{is_threat, label};

/// Scored rows of an uploaded or read table. Rows are kept as the input gave them: `raw` is
/// each row's bytes (CSV echoes them unchanged, with no per-row allocation), `fields` its
/// parsed cells (for formats that show them cell by cell; may be empty).
pub struct Verdicts<'a> {
    /// Input column names.
    pub columns: &'a [String],
    /// Per row: its line in the input.
    pub lines: &'a [u64],
    /// Per row: its bytes in the input, line end included or not.
    pub raw: &'a [&'a [u8]],
    /// Per row: its cells (or empty when the format does not need them).
    pub fields: &'a [Vec<String>],
    pub scores: &'a [f64],
    pub threshold: f64,
    pub model_version: &'a str,
    /// Per row (the first rows, or none): its top reasons as text, for the formats that
    /// show them (HTML).
    pub reasons: &'a [String],
}

impl Verdicts<'_> {
    pub fn threats(&self) -> usize {
        self.scores.iter().filter(|&&s| is_threat(s, self.threshold)).count()
    }

    pub fn label(&self, row: usize) -> &'static str {
        label(self.scores[row], self.threshold)
    }
}

/// One candidate of a model search, as ranked.
pub struct Ranked<'a> {
    pub family: &'a str,
    /// `key=value` pairs of its hyperparameters.
    pub params: String,
    /// Per metric (in [`Ranking::metrics`] order): mean and std over the folds.
    pub scores: Vec<&'a MeanStd>,
    pub fit_seconds: f64,
    pub shared_fit: bool,
}

/// A model search's leaderboard.
pub struct Ranking<'a> {
    pub metric: &'a str,
    pub folds: usize,
    pub metrics: &'a [&'a str],
    pub rows: Vec<Ranked<'a>>,
}

/// The verdict formats the server offers, chosen by the `Accept` header (CSV when it names
/// none of them).
pub fn for_accept(accept: &str) -> &'static dyn for<'a> Format<Verdicts<'a>> {
    let offered: [&'static dyn for<'a> Format<Verdicts<'a>>; 3] = [&html::Html, &json::Json, &markdown::Markdown];
    let essence = |f: &&'static dyn for<'a> Format<Verdicts<'a>>| f.media_type().split(';').next().unwrap_or("");
    offered.into_iter().find(|f| accept.contains(essence(f))).unwrap_or(&csv::Csv)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two rows, one with a quoted field and one with markup, scored around the threshold.
    pub fn sample(f: impl FnOnce(&Verdicts<'_>)) {
        let columns = vec!["a".to_string(), "note".to_string()];
        let raw: Vec<&[u8]> = vec![b"1,\"x, <b>\"\n", b"2,plain\r\n"];
        let fields = vec![vec!["1".to_string(), "x, <b>".to_string()], vec!["2".to_string(), "plain".to_string()]];
        f(&Verdicts {
            columns: &columns,
            lines: &[2, 3],
            raw: &raw,
            fields: &fields,
            scores: &[0.91, 0.125],
            threshold: 0.5,
            model_version: "v1-<abc>",
            reasons: &[],
        })
    }

    pub fn render<T>(format: &dyn Format<T>, data: &T) -> String {
        let mut out = Vec::new();
        format.write(data, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_server_offers_each_verdict_format_by_accept() {
        assert_eq!(for_accept("text/html,application/xhtml+xml").media_type(), "text/html; charset=utf-8");
        assert_eq!(for_accept("application/json").media_type(), "application/json");
        assert_eq!(for_accept("text/markdown").media_type(), "text/markdown; charset=utf-8");
        assert_eq!(for_accept("*/*").media_type(), "text/csv; charset=utf-8");
    }

    #[test]
    fn one_threshold_rule() {
        assert!(is_threat(0.5, 0.5) && !is_threat(0.4999, 0.5));
        assert_eq!((label(0.5, 0.5), label(0.1, 0.5)), ("threat", "benign"));
    }
}
