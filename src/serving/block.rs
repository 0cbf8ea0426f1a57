//! Records encoded into one block of the feature matrix and scored together: what `predict`,
//! `predict --follow` and the uploads share for Zeek logs and URLs. The block keeps its buffers
//! (derived values, unseen categories) across records, and its matrix memory across blocks
//! ([`Block::recycle`]): a wide row (a URL's thousand-odd features) makes a block tens of MB.

use ndarray::Array2;

use super::Loaded;
use crate::features::{Raw, Value};
use crate::preprocess::Input;

/// Records encoded from `model`'s raw inputs, not scored yet.
pub struct Block<'m> {
    pub model: &'m Loaded,
    /// The encoded rows, then what is left of the longest block so far: rows are written
    /// over it, not zeroed first (an encoder writes every cell of its row).
    values: Vec<f64>,
    /// Cells of `values` holding this block's rows.
    used: usize,
    derived: Vec<Value>,
    unseen: Vec<usize>,
    /// Categorical cells holding a value never seen in training, since the last read.
    pub unseen_cells: u64,
    /// Per record: its line in the input.
    pub lines: Vec<u64>,
    /// The records' drift codes, when the model is monitored (see `monitor`).
    codes: Vec<u16>,
}

impl<'m> Block<'m> {
    pub fn new(model: &'m Loaded) -> Self {
        Block {
            model,
            values: Vec::new(),
            used: 0,
            derived: Vec::new(),
            unseen: Vec::new(),
            unseen_cells: 0,
            lines: Vec::new(),
            codes: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Encode one record, read from `line`, whose raw inputs `raw` gives. On an error (the
    /// index of the input at fault and why) nothing of the record stays.
    pub fn push<'a>(
        &mut self,
        mut raw: impl FnMut(usize, &Input) -> Result<Raw<'a>, String>,
        line: u64,
    ) -> Result<(), (usize, String)> {
        let pre = &self.model.bundle.preprocessor;
        let (start, end) = (self.used, self.used + pre.width());
        if self.values.len() < end {
            self.values.resize(end, 0.0);
        }
        self.unseen.clear();
        let monitor = self.model.monitor.as_ref();
        let codes = &mut self.codes;
        if let Some(m) = monitor {
            m.begin(codes);
        }
        let watched = |k: usize, input: &Input| {
            let r = raw(k, input);
            if let (Some(m), Ok(v)) = (monitor, &r) {
                m.observe(codes, k, v);
            }
            r
        };
        if let Err(e) = pre.encode_row_with(watched, &mut self.values[start..end], &mut self.unseen, &mut self.derived)
        {
            if let Some(m) = monitor {
                m.abandon(&mut self.codes);
            }
            return Err(e);
        }
        self.unseen_cells += self.unseen.len() as u64;
        self.used = end;
        self.lines.push(line);
        Ok(())
    }

    /// What was pushed, unscored, and start afresh: the feature matrix and the lines.
    pub fn take(&mut self) -> (Array2<f64>, Vec<u64>) {
        let n = self.lines.len();
        let width = self.model.bundle.preprocessor.width();
        let mut values = std::mem::take(&mut self.values);
        values.truncate(std::mem::take(&mut self.used));
        let x = Array2::from_shape_vec((n, width), values).expect("one value per feature");
        (x, std::mem::take(&mut self.lines))
    }

    /// The drift codes of the records taken (empty when the model is not monitored): give
    /// them, with the scores, to [`crate::serving::monitor::Monitor::record`].
    pub fn take_codes(&mut self) -> Vec<u16> {
        std::mem::take(&mut self.codes)
    }

    /// Hand back a scored block's matrix: its memory holds the next block.
    pub fn recycle(&mut self, x: Array2<f64>) {
        if self.values.is_empty() {
            self.values = x.into_raw_vec_and_offset().0;
        }
    }
}

/// Cells kept beside scored records for the output (a Zeek connection's identity, a CSV
/// row as read), in one buffer: no allocation per cell.
#[derive(Debug, Default)]
pub struct Kept {
    text: String,
    /// End of each cell in `text`, row after row.
    ends: Vec<usize>,
    width: usize,
}

impl Kept {
    /// Room for `rows` records of `width` cells.
    pub fn new(width: usize, rows: usize) -> Self {
        Kept { text: String::new(), ends: Vec::with_capacity(rows * width), width }
    }

    /// Cells per record (a buffer taken with `std::mem::take` starts at 0).
    pub fn set_width(&mut self, width: usize) {
        self.width = width;
    }

    /// The next cell of the current record.
    pub fn push(&mut self, cell: &str) {
        self.text.push_str(cell);
        self.ends.push(self.text.len());
    }

    /// Cell `c` of the last record pushed.
    pub fn last(&self, c: usize) -> &str {
        let j = self.ends.len() - self.width + c;
        let start = if j == 0 { 0 } else { self.ends[j - 1] };
        &self.text[start..self.ends[j]]
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    pub fn len(&self) -> usize {
        self.ends.len().checked_div(self.width).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cells of row `r`.
    pub fn row(&self, r: usize) -> impl Iterator<Item = &str> + '_ {
        let cells = &self.ends[r * self.width..(r + 1) * self.width];
        let first = if r == 0 { 0 } else { self.ends[r * self.width - 1] };
        cells.iter().scan(first, move |start, &end| {
            let cell = &self.text[*start..end];
            *start = end;
            Some(cell)
        })
    }

    /// Every row as owned cells (for small answers that show them cell by cell).
    pub fn to_rows(&self) -> Vec<Vec<String>> {
        (0..self.len()).map(|r| self.row(r).map(str::to_owned).collect()).collect()
    }
}
