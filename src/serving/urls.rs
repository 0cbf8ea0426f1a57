//! Scoring URLs given one per line (a text file, a plain-text upload, the page's text box):
//! for a model whose only input is a `url` column. A first line that is the column's name is
//! a header and skipped; blank lines are skipped; a line in double quotes loses them (a
//! one-column CSV). Any string is a URL to score: one that does not parse gets the documented
//! values of `features::url` (`parse_error` = 1), never an error.

use ndarray::Array2;

use super::Loaded;
use crate::features::{Derivation, Raw};
use crate::preprocess::Preprocessor;

/// The URL column when the model reads nothing but one URL.
pub fn url_column(pre: &Preprocessor) -> Option<&str> {
    match (pre.derive.as_slice(), pre.inputs()) {
        ([Derivation::Url(u)], [input]) if input.name == u.column => Some(&input.name),
        _ => None,
    }
}

/// The URL of a line, or `None` for a line that holds none (blank, or the header).
pub fn url_of<'l>(line: &'l str, column: &str, lineno: u64) -> Option<&'l str> {
    let t = line.trim_end_matches(['\r', '\n']).trim();
    if t.is_empty() || (lineno == 1 && t.eq_ignore_ascii_case(column)) {
        return None;
    }
    Some(t.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(t))
}

/// URLs encoded so far, waiting to be scored as one block.
pub struct UrlBatch<'m> {
    model: &'m Loaded,
    values: Vec<f64>,
    derived: Vec<crate::features::Value>,
    unseen: Vec<usize>,
    pub unseen_cells: u64,
    pub urls: Vec<String>,
    pub lines: Vec<u64>,
}

impl<'m> UrlBatch<'m> {
    pub fn new(model: &'m Loaded) -> Self {
        UrlBatch {
            model,
            values: Vec::new(),
            derived: Vec::new(),
            unseen: Vec::new(),
            unseen_cells: 0,
            urls: Vec::new(),
            lines: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Encode one URL (from line `lineno`).
    pub fn push(&mut self, url: &str, lineno: u64) {
        let pre = &self.model.bundle.preprocessor;
        let start = self.values.len();
        self.values.resize(start + pre.width(), 0.0);
        self.unseen.clear();
        // A URL is text: no value can be refused.
        let encoded = pre.encode_row_with(
            |_, _| Ok(Raw::Text(url)),
            &mut self.values[start..],
            &mut self.unseen,
            &mut self.derived,
        );
        debug_assert!(encoded.is_ok(), "{encoded:?}");
        self.unseen_cells += self.unseen.len() as u64;
        self.urls.push(url.to_owned());
        self.lines.push(lineno);
    }

    /// Hand back a scored block's matrix: its memory holds the next block (a wide row, such
    /// as a URL's thousand-odd features, makes a block tens of MB: page faults otherwise).
    pub fn recycle(&mut self, x: Array2<f64>) {
        if self.values.is_empty() {
            let (mut v, _) = x.into_raw_vec_and_offset();
            v.clear();
            self.values = v;
        }
    }

    /// What was pushed, unscored, and start afresh: the feature matrix, the URLs, the lines.
    pub fn take(&mut self) -> (Array2<f64>, Vec<String>, Vec<u64>) {
        let n = self.lines.len();
        let width = self.model.bundle.preprocessor.width();
        let x = Array2::from_shape_vec((n, width), std::mem::take(&mut self.values)).expect("one value per feature");
        (x, std::mem::take(&mut self.urls), std::mem::take(&mut self.lines))
    }
}
