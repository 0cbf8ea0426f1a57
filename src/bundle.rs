//! The model bundle: everything needed to score raw records, in one JSON file.
//!
//! JSON, not pickle: loading it runs no code. The layout is versioned (`format`, `version`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::artifact::{atomic_write, read_json};
use crate::error::{Error, Result};
use crate::models::Model;
use crate::preprocess::Preprocessor;
use crate::schema::TargetSpec;
use std::collections::BTreeMap;

use crate::search::MeanStd;

pub const FORMAT: &str = "netsec-model-bundle";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    pub format: String,
    pub version: u32,
    pub dataset: String,
    /// [`crate::schema::Schema::hash`] of the schema the model was trained under.
    pub schema_hash: String,
    pub target: TargetSpec,
    pub feature_names: Vec<String>,
    pub preprocessor: Preprocessor,
    pub model: Model,
    /// The winning candidate's hyperparameters (all of them, defaults included).
    pub hyperparameters: serde_json::Value,
    /// The `train` section of `params.yaml` that produced the model.
    pub params: serde_json::Value,
    /// The winner's cross-validated scores on the training part.
    pub cv: BTreeMap<String, MeanStd>,
}

impl Bundle {
    /// Compact JSON: the same model always gives the same bytes (no timestamps inside).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec(self).map_err(|e| Error::Model(format!("cannot serialize bundle: {e}")))?;
        bytes.push(b'\n');
        atomic_write(path, |f| std::io::Write::write_all(f, &bytes).map_err(|e| Error::io(path, e)))
    }

    pub fn load(path: &Path) -> Result<Self> {
        let raw: serde_json::Value = read_json(path)?;
        let format = raw.get("format").and_then(|v| v.as_str()).unwrap_or_default();
        let version = raw.get("version").and_then(|v| v.as_u64()).unwrap_or_default();
        if format != FORMAT {
            return Err(Error::artifact(path, format!("not a model bundle (format `{format}`, expected `{FORMAT}`)")));
        }
        if version != u64::from(VERSION) {
            return Err(Error::artifact(path, format!("bundle version {version} is not supported (this build reads version {VERSION})")));
        }
        serde_json::from_value(raw).map_err(|e| Error::artifact(path, format!("malformed bundle: {e}")))
    }
}
