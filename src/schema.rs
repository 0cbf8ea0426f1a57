//! Dataset schemas: one YAML file per dataset under `schemas/`.
//!
//! A schema names every column in order, its type, its allowed values or range, whether it may
//! be empty, and its role. It also says which target values mean "threat", so the rest of the
//! pipeline only ever sees a binary label: 1 = threat, 0 = benign.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Whether text files start with a header row. Without one, `columns` gives the names.
    #[serde(default = "yes")]
    pub header: bool,
    /// Field delimiter of text files.
    #[serde(default = "comma")]
    pub delimiter: char,
    pub target: TargetSpec,
    pub columns: Vec<ColumnSpec>,
    /// Features derived from raw fields (see `features`), such as `zeek_conn`: computed the
    /// same way in `transform`, `predict` and the server, stored in the bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derive: Vec<String>,
    /// Where the raw files are (`source:`, or `train:` and `test:`; `format:`, `space:`), read
    /// by `data::dataset`. Not part of the schema's hash: moving a file keeps models valid.
    #[serde(default, skip_serializing)]
    pub data: Option<serde_yaml_ng::Value>,
}

fn yes() -> bool {
    true
}

fn comma() -> char {
    ','
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub column: String,
    /// Values that mean "threat"; every other value is benign.
    #[serde(default)]
    pub threat: Option<Vec<Scalar>>,
    /// Values that mean "benign"; every other value is a threat (for data whose attack
    /// names are open-ended, such as NSL-KDD).
    #[serde(default)]
    pub benign: Option<Vec<Scalar>>,
    /// Values that are neither: rows not labeled (such as CTU's `Background`). `ingest` leaves
    /// them out of training and every metric, and counts them; they are never taken as benign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<Scalar>>,
    /// A column naming the kind of each threat (`detailedlabel`): never a feature; `evaluate`
    /// reports the recall per value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Integer,
    Float,
    Categorical,
    Text,
    /// A URL: never a feature itself; `transform` expands it into the lexical features of
    /// `features::url` (the same in `predict` and the server).
    Url,
}

impl ColumnType {
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Integer | ColumnType::Float)
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::Categorical => "categorical",
            ColumnType::Text => "text",
            ColumnType::Url => "url",
        })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    #[default]
    Feature,
    Target,
    /// An identifier: kept with predictions, never a feature.
    Id,
    /// Present in the file, ignored by the pipeline (metadata, leaky columns).
    Drop,
    /// Read by a derived feature (`derive:`), not a feature by itself (Zeek's `history`).
    Input,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub nullable: bool,
    /// The complete set of values the column may take.
    #[serde(default)]
    pub allowed: Option<Vec<Scalar>>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

/// A value written in a schema file: compared with data cells through [`Scalar::key`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Str(String),
}

impl Scalar {
    /// Canonical text of the value, the same one `data::cell_key` gives a data cell.
    pub fn key(&self) -> String {
        match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => float_key(*f),
            Scalar::Str(s) => s.clone(),
        }
    }
}

/// Integral floats print as integers, so `1.0` in a float column matches `1` in a schema.
pub fn float_key(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

impl Schema {
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let schema: Schema = serde_yaml_ng::from_str(&text)
            .map_err(|e| Error::Schema { path: path.to_path_buf(), message: e.to_string() })?;
        schema.check().map_err(|message| Error::Schema { path: path.to_path_buf(), message })?;
        Ok(schema)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let mut seen = HashSet::new();
        for c in &self.columns {
            if !seen.insert(c.name.as_str()) {
                return Err(format!("column `{}` is listed twice", c.name));
            }
            if let (Some(lo), Some(hi)) = (c.min, c.max) {
                if lo > hi {
                    return Err(format!("column `{}`: min {lo} is above max {hi}", c.name));
                }
            }
        }
        let targets: Vec<_> = self.columns.iter().filter(|c| c.role == Role::Target).collect();
        match targets.as_slice() {
            [t] if t.name == self.target.column => {}
            [t] => {
                return Err(format!(
                    "target.column is `{}` but the column with role target is `{}`",
                    self.target.column, t.name
                ))
            }
            [] => return Err(format!("no column has role target (target.column is `{}`)", self.target.column)),
            _ => return Err("more than one column has role target".into()),
        }
        match (&self.target.threat, &self.target.benign) {
            (Some(v), None) | (None, Some(v)) if !v.is_empty() => {}
            (Some(t), Some(b)) if !t.is_empty() && !b.is_empty() => {}
            _ => return Err("target needs `threat` or `benign` (or both), with at least one value".into()),
        }
        if let Some(ignore) = &self.target.ignore {
            let listed =
                self.target.threat.iter().chain(&self.target.benign).flatten().map(Scalar::key).collect::<Vec<_>>();
            if let Some(v) = ignore.iter().find(|v| listed.contains(&v.key())) {
                return Err(format!("target value `{}` is both ignored and a class", v.key()));
            }
        }
        if let Some(detail) = &self.target.detail {
            match self.column(detail) {
                Some(c) if c.role == Role::Drop || c.role == Role::Id => {}
                Some(_) => {
                    return Err(format!("target.detail `{detail}` must have role drop or id: it names the answer"))
                }
                None => return Err(format!("target.detail `{detail}` is not a column")),
            }
        }
        for name in &self.derive {
            let Some(d) = crate::features::Derivation::named(name) else {
                return Err(format!("derive: unknown `{name}` (known: {})", crate::features::NAMES.join(", ")));
            };
            for (input, _) in d.get().inputs() {
                if self.column(&input).is_none() {
                    return Err(format!("derive `{name}` reads column `{input}`, which is not listed"));
                }
            }
        }
        if self.features().next().is_none() && self.derivations().is_empty() {
            return Err("no column has role feature".into());
        }
        Ok(())
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The columns that are features as they are (a `url` column is one through the features
    /// derived from it: see [`Self::derivations`]).
    pub fn features(&self) -> impl Iterator<Item = &ColumnSpec> {
        self.columns.iter().filter(|c| c.role == Role::Feature && c.kind != ColumnType::Url)
    }

    /// The derivations of this schema: those named in `derive:`, then one per `url` column.
    pub fn derivations(&self) -> Vec<crate::features::Derivation> {
        let mut all = crate::features::Derivation::all_named(&self.derive);
        all.extend(
            self.columns.iter().filter(|c| c.kind == ColumnType::Url && c.role == Role::Feature).map(|c| {
                crate::features::Derivation::Url(crate::features::url::UrlFeatures { column: c.name.clone() })
            }),
        );
        all
    }

    pub fn column_names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Whether a target cell (by its key) means "not labeled": left out, never benign.
    pub fn is_ignored(&self, key: &str) -> bool {
        self.target.ignore.as_ref().is_some_and(|v| v.iter().any(|v| v.key() == key))
    }

    /// Whether a target cell (by its key) is a value the schema knows: always, unless both
    /// `threat` and `benign` are listed, which then make a closed list (with `ignore`).
    pub fn is_known_label(&self, key: &str) -> bool {
        match (&self.target.threat, &self.target.benign) {
            (Some(t), Some(b)) => t.iter().chain(b).any(|v| v.key() == key) || self.is_ignored(key),
            _ => true,
        }
    }

    /// Whether a target cell (by its key) means "threat".
    pub fn is_threat(&self, key: &str) -> bool {
        match (&self.target.threat, &self.target.benign) {
            (Some(threat), _) => threat.iter().any(|v| v.key() == key),
            (None, Some(benign)) => !benign.iter().any(|v| v.key() == key),
            (None, None) => false,
        }
    }

    /// sha256 of the schema's canonical JSON form: unchanged by comments or formatting.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).expect("a schema always serializes");
        hex(&Sha256::digest(json))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}
