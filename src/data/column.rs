//! Building typed columns from cells whose type is discovered while reading.

use polars_arrow::bitmap::{Bitmap, MutableBitmap};
use polars_core::prelude::*;

/// One parsed cell of a text or JSON source.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Missing,
    Int(i64),
    Float(f64),
    Str(String),
}

/// Spellings of a missing value in text files.
const MISSING: &[&str] = &["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"];

/// Parse a text cell: missing, integer, float, or text (trimmed).
pub fn parse_cell(raw: &str) -> Cell {
    let t = raw.trim();
    if MISSING.contains(&t) {
        Cell::Missing
    } else if let Ok(i) = t.parse::<i64>() {
        Cell::Int(i)
    } else if let Ok(f) = t.parse::<f64>() {
        Cell::Float(f)
    } else {
        Cell::Str(t.to_owned())
    }
}

/// A column's values so far, compact: numbers unboxed beside a validity bitmap, text as codes
/// into the column's distinct values (network data repeats a few protocols, services and
/// labels millions of times). A cell costs about 8 bytes, not the 16 to 40 of `Option`s.
#[derive(Debug)]
enum Values {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Str(Texts),
}

/// Text cells as codes into their distinct values.
#[derive(Debug, Default)]
struct Texts {
    codes: Vec<u32>,
    distinct: Vec<Box<str>>,
    index: std::collections::HashMap<Box<str>, u32>,
}

impl Texts {
    fn push(&mut self, s: &str) {
        let code = match self.index.get(s) {
            Some(&c) => c,
            None => {
                let c = self.distinct.len() as u32;
                self.distinct.push(s.into());
                self.index.insert(s.into(), c);
                c
            }
        };
        self.codes.push(code);
    }

    /// A missing cell (its code is never read: the validity bitmap says missing).
    fn push_missing(&mut self) {
        self.codes.push(u32::MAX);
    }
}

/// Accumulates one column. It starts as integers and widens to float, then to text, as
/// values demand; widening to text keeps every earlier value as its canonical text, so the
/// validate stage can still point at the rows that were not numbers.
#[derive(Debug)]
pub struct ColumnBuilder {
    name: String,
    values: Values,
    valid: MutableBitmap,
}

impl ColumnBuilder {
    pub fn new(name: impl Into<String>) -> Self {
        ColumnBuilder { name: name.into(), values: Values::Int(Vec::new()), valid: MutableBitmap::new() }
    }

    /// A builder that already holds `n` missing values (a JSON key first seen at row n+1).
    pub fn with_missing(name: impl Into<String>, n: usize) -> Self {
        let mut valid = MutableBitmap::with_capacity(n);
        valid.extend_constant(n, false);
        ColumnBuilder { name: name.into(), values: Values::Int(vec![0; n]), valid }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn len(&self) -> usize {
        self.valid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Push a text cell as [`parse_cell`] reads it, without allocating for text already seen.
    pub fn push_text(&mut self, raw: &str) {
        let t = raw.trim();
        if MISSING.contains(&t) {
            return self.push(Cell::Missing);
        }
        if let Ok(i) = t.parse::<i64>() {
            return self.push(Cell::Int(i));
        }
        if let Ok(f) = t.parse::<f64>() {
            return self.push(Cell::Float(f));
        }
        self.widen_to_text();
        if let Values::Str(v) = &mut self.values {
            v.push(t);
        }
        self.valid.push(true);
    }

    pub fn push(&mut self, cell: Cell) {
        let present = !matches!(cell, Cell::Missing);
        match (&mut self.values, cell) {
            (Values::Int(v), Cell::Missing) => v.push(0),
            (Values::Float(v), Cell::Missing) => v.push(0.0),
            (Values::Str(v), Cell::Missing) => v.push_missing(),
            (Values::Int(v), Cell::Int(i)) => v.push(i),
            (Values::Float(v), Cell::Int(i)) => v.push(i as f64),
            (Values::Float(v), Cell::Float(f)) => v.push(f),
            (Values::Str(v), Cell::Int(i)) => v.push(&i.to_string()),
            (Values::Str(v), Cell::Float(f)) => v.push(&f.to_string()),
            (Values::Str(v), Cell::Str(s)) => v.push(&s),
            (Values::Int(v), cell @ Cell::Float(_)) => {
                self.values = Values::Float(v.iter().map(|&i| i as f64).collect());
                return self.push(cell);
            }
            (Values::Int(_) | Values::Float(_), cell @ Cell::Str(_)) => {
                self.widen_to_text();
                return self.push(cell);
            }
        }
        self.valid.push(present);
    }

    /// Turn the numbers so far into their canonical text (missing cells stay missing).
    fn widen_to_text(&mut self) {
        let valid = &self.valid;
        let mut texts = Texts::default();
        let mut put = |i: usize, text: String| {
            if valid.get(i) {
                texts.push(&text)
            } else {
                texts.push_missing()
            }
        };
        match &self.values {
            Values::Int(v) => v.iter().enumerate().for_each(|(i, x)| put(i, x.to_string())),
            Values::Float(v) => v.iter().enumerate().for_each(|(i, x)| put(i, x.to_string())),
            Values::Str(_) => return,
        }
        self.values = Values::Str(texts);
    }

    pub fn finish(self) -> Column {
        let name = PlSmallStr::from(self.name.as_str());
        let validity: Option<Bitmap> = (self.valid.unset_bits() > 0).then(|| self.valid.into());
        match self.values {
            Values::Int(v) => Int64Chunked::from_vec_validity(name, v, validity).into_column(),
            Values::Float(v) => Float64Chunked::from_vec_validity(name, v, validity).into_column(),
            Values::Str(t) => {
                let Texts { codes, distinct, index } = t;
                drop(index);
                let present = |i: usize| validity.as_ref().is_none_or(|b| b.get_bit(i));
                let cells = codes.iter().enumerate().map(|(i, &c)| present(i).then(|| &*distinct[c as usize]));
                StringChunked::from_iter_options(name, cells).into_column()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_parse_by_shape() {
        assert_eq!(parse_cell(" -1 "), Cell::Int(-1));
        assert_eq!(parse_cell("0.5"), Cell::Float(0.5));
        assert_eq!(parse_cell("NaN"), Cell::Missing);
        assert_eq!(parse_cell(""), Cell::Missing);
        assert_eq!(parse_cell("tcp"), Cell::Str("tcp".into()));
    }

    #[test]
    fn builder_widens_and_keeps_earlier_values() {
        let mut b = ColumnBuilder::new("x");
        b.push(Cell::Int(1));
        b.push(Cell::Missing);
        b.push(Cell::Float(2.5));
        assert_eq!(b.len(), 3);
        let col = b.finish();
        assert_eq!(col.dtype(), &DataType::Float64);
        let mut b = ColumnBuilder::new("y");
        b.push(Cell::Int(1));
        b.push(Cell::Str("abc".into()));
        let col = b.finish();
        let v: Vec<_> = col.str().unwrap().iter().map(|o| o.map(str::to_owned)).collect();
        assert_eq!(v, vec![Some("1".to_owned()), Some("abc".to_owned())]);
    }
}
