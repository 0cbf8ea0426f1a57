//! Scoring URLs given one per line (a text file, a plain-text upload, the page's text box):
//! for a model whose only input is a `url` column. A first line that is the column's name is
//! a header and skipped; blank lines are skipped; a line in double quotes loses them (a
//! one-column CSV). Any string is a URL to score: one that does not parse gets the documented
//! values of `features::url` (`parse_error` = 1), never an error.

use ndarray::Array2;

use super::block::Block;
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
    /// The encoded URLs and their lines.
    pub block: Block<'m>,
    pub urls: Vec<String>,
}

impl<'m> UrlBatch<'m> {
    pub fn new(model: &'m Loaded) -> Self {
        UrlBatch { block: Block::new(model), urls: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.block.len()
    }

    pub fn is_empty(&self) -> bool {
        self.block.is_empty()
    }

    /// Encode one URL (from line `lineno`).
    pub fn push(&mut self, url: &str, lineno: u64) {
        // A URL is text: no value can be refused.
        let encoded = self.block.push(|_, _| Ok(Raw::Text(url)), lineno);
        debug_assert!(encoded.is_ok(), "{encoded:?}");
        self.urls.push(url.to_owned());
    }

    /// What was pushed, unscored, and start afresh: the feature matrix, the URLs, the lines.
    pub fn take(&mut self) -> (Array2<f64>, Vec<String>, Vec<u64>) {
        let (x, lines) = self.block.take();
        (x, std::mem::take(&mut self.urls), lines)
    }
}
