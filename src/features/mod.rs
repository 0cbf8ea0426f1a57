//! Features derived from raw fields: what turns a record a user has (a Zeek `conn.log` line,
//! later a URL) into numbers a model reads. A schema lists its derivations (`derive:`); the
//! fitted preprocessor stores them in the model bundle, so `transform`, `predict` and the
//! server all derive through the same [`Derive::derive`], from the raw fields alone.
//!
//! Add a derivation: one file here implementing [`Derive`], one [`Derivation`] variant, one
//! name in [`Derivation::named`].

pub mod url;
pub mod zeek_conn;

use serde::{Deserialize, Serialize};

/// One raw input value, as a client or a file gives it.
#[derive(Debug, Clone, Copy)]
pub enum Raw<'a> {
    Missing,
    Number(f64),
    /// Text: parsed for numeric features, taken as the category for categorical ones.
    Text(&'a str),
}

/// What a derivation reads or writes: a number, or a category (text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Numeric,
    Categorical,
}

/// A derived value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Missing,
    Number(f64),
    /// A category from a fixed list (no allocation per record).
    Static(&'static str),
    Text(String),
}

impl Value {
    pub fn raw(&self) -> Raw<'_> {
        match self {
            Value::Missing => Raw::Missing,
            Value::Number(v) => Raw::Number(*v),
            Value::Static(t) => Raw::Text(t),
            Value::Text(t) => Raw::Text(t),
        }
    }
}

/// One derivation: raw fields in, features out.
pub trait Derive {
    /// The raw fields it reads, in order, with the kind each must have.
    fn inputs(&self) -> Vec<(String, Kind)>;
    /// The features it writes, in order.
    fn outputs(&self) -> Vec<(String, Kind)>;
    /// Derive one record: `inputs` in [`Derive::inputs`] order, `out` in [`Derive::outputs`]
    /// order. An error names the index of the input at fault.
    fn derive(&self, inputs: &[Raw<'_>], out: &mut [Value]) -> Result<(), (usize, String)>;

    /// How many leading outputs are numbers that are never missing. An encoder whose row
    /// takes them as they are (consecutive numeric features) has [`Derive::derive_direct`]
    /// write them straight into the row: a URL's thousand-odd counts skip the [`Value`] slots.
    fn direct(&self) -> usize {
        0
    }

    /// [`Derive::derive`], with the first [`Derive::direct`] outputs written to `numbers` and
    /// the rest to `rest`.
    fn derive_direct(
        &self,
        inputs: &[Raw<'_>],
        numbers: &mut [f64],
        rest: &mut [Value],
    ) -> Result<(), (usize, String)> {
        let mut all = vec![Value::Missing; numbers.len() + rest.len()];
        self.derive(inputs, &mut all)?;
        let (first, last) = all.split_at_mut(numbers.len());
        for (n, v) in numbers.iter_mut().zip(first.iter()) {
            *n = match v {
                Value::Number(x) => *x,
                _ => f64::NAN,
            };
        }
        rest.iter_mut().zip(last.iter_mut()).for_each(|(r, v)| *r = std::mem::replace(v, Value::Missing));
        Ok(())
    }
}

/// The derivations a bundle can hold (the bundle's format: see `bundle`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Derivation {
    ZeekConn(zeek_conn::ZeekConn),
    /// Made by a column of type `url` (not named in `derive:`).
    Url(url::UrlFeatures),
}

/// The names a schema's `derive:` list may use.
pub const NAMES: [&str; 1] = ["zeek_conn"];

impl Derivation {
    /// The derivation a schema names, with its defaults.
    pub fn named(name: &str) -> Option<Derivation> {
        match name {
            "zeek_conn" => Some(Derivation::ZeekConn(zeek_conn::ZeekConn::default())),
            _ => None,
        }
    }

    /// The derivations of a schema's `derive:` list (names checked when the schema loads;
    /// an unknown one is skipped here).
    pub fn all_named(names: &[String]) -> Vec<Derivation> {
        names.iter().filter_map(|n| Derivation::named(n)).collect()
    }

    pub fn get(&self) -> &dyn Derive {
        match self {
            Derivation::ZeekConn(d) => d,
            Derivation::Url(d) => d,
        }
    }
}

/// A number from a raw value: `None` when missing; an error for text that is not a number.
pub fn number(raw: Raw<'_>) -> Result<Option<f64>, String> {
    match raw {
        Raw::Missing => Ok(None),
        Raw::Number(v) if v.is_finite() => Ok(Some(v)),
        Raw::Number(_) => Err("not a finite number".into()),
        Raw::Text(t) => {
            let t = t.trim();
            if t.is_empty() || t == "-" {
                return Ok(None);
            }
            match t.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Some(v)),
                _ => Err(format!("expected a number, found {t:?}")),
            }
        }
    }
}
