//! Building typed columns from cells whose type is discovered while reading.

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

#[derive(Debug)]
enum Values {
    Int(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Str(Vec<Option<String>>),
}

/// Accumulates one column. It starts as integers and widens to float, then to text, as
/// values demand; widening to text keeps every earlier value as its canonical text, so the
/// validate stage can still point at the rows that were not numbers.
#[derive(Debug)]
pub struct ColumnBuilder {
    name: String,
    values: Values,
}

impl ColumnBuilder {
    pub fn new(name: impl Into<String>) -> Self {
        ColumnBuilder { name: name.into(), values: Values::Int(Vec::new()) }
    }

    /// A builder that already holds `n` missing values (a JSON key first seen at row n+1).
    pub fn with_missing(name: impl Into<String>, n: usize) -> Self {
        ColumnBuilder { name: name.into(), values: Values::Int(vec![None; n]) }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn len(&self) -> usize {
        match &self.values {
            Values::Int(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, cell: Cell) {
        match (&mut self.values, cell) {
            (Values::Int(v), Cell::Missing) => v.push(None),
            (Values::Float(v), Cell::Missing) => v.push(None),
            (Values::Str(v), Cell::Missing) => v.push(None),
            (Values::Int(v), Cell::Int(i)) => v.push(Some(i)),
            (Values::Float(v), Cell::Int(i)) => v.push(Some(i as f64)),
            (Values::Float(v), Cell::Float(f)) => v.push(Some(f)),
            (Values::Str(v), Cell::Int(i)) => v.push(Some(i.to_string())),
            (Values::Str(v), Cell::Float(f)) => v.push(Some(f.to_string())),
            (Values::Str(v), Cell::Str(s)) => v.push(Some(s)),
            (Values::Int(v), cell @ Cell::Float(_)) => {
                self.values = Values::Float(v.iter().map(|o| o.map(|i| i as f64)).collect());
                self.push(cell);
            }
            (Values::Int(v), cell @ Cell::Str(_)) => {
                self.values = Values::Str(v.iter().map(|o| o.map(|i| i.to_string())).collect());
                self.push(cell);
            }
            (Values::Float(v), cell @ Cell::Str(_)) => {
                self.values = Values::Str(v.iter().map(|o| o.map(|f| f.to_string())).collect());
                self.push(cell);
            }
        }
    }

    pub fn finish(self) -> Column {
        let name = PlSmallStr::from(self.name.as_str());
        match self.values {
            Values::Int(v) => Column::new(name, v),
            Values::Float(v) => Column::new(name, v),
            Values::Str(v) => Column::new(name, v),
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
