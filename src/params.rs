//! `params.yaml`: the file, and strict reading of one section of it.
//!
//! This module is plain configuration plumbing and imports nothing of the crate: each section's
//! type lives with the module that uses it (`data::split::IngestParams`,
//! `preprocess::TransformParams`, `search::TrainParams`, ...), so editing a stage's settings
//! never touches a layer below it, and no on-disk format depends on this file.
//!
//! Each stage reads only its own section and is strict about it: an unknown key is an error
//! (a typo such as `max_iter` would otherwise silently train with the default), and so is a
//! value out of range.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A key of `params.yaml` is missing, unknown or out of range.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct ParamsError {
    pub path: PathBuf,
    pub message: String,
}

impl ParamsError {
    pub fn new(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ParamsError { path: path.into(), message: message.into() }
    }
}

type Result<T> = std::result::Result<T, ParamsError>;

/// The parsed file, from which stages take their sections.
#[derive(Debug, Clone)]
pub struct ParamsFile {
    path: PathBuf,
    root: serde_yaml_ng::Mapping,
}

impl ParamsFile {
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let text = std::fs::read_to_string(&path).map_err(|e| ParamsError::new(&path, e.to_string()))?;
        let value: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).map_err(|e| ParamsError::new(&path, format!("not valid YAML: {e}")))?;
        match value {
            serde_yaml_ng::Value::Mapping(root) => Ok(ParamsFile { path, root }),
            _ => Err(ParamsError::new(&path, "expected a mapping of sections at the top level")),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error about this file.
    pub fn error(&self, message: impl Into<String>) -> ParamsError {
        ParamsError::new(&self.path, message)
    }

    fn raw(&self, key: &str) -> Result<&serde_yaml_ng::Value> {
        self.root.get(key).ok_or_else(|| self.error(format!("missing section `{key}`")))
    }

    /// Deserialize section `key` strictly, then check its ranges.
    pub fn section<T: DeserializeOwned + Check>(&self, key: &str) -> Result<T> {
        let value = self.raw(key)?.clone();
        let section: T = serde_yaml_ng::from_value(value).map_err(|e| self.error(format!("section `{key}`: {e}")))?;
        section.check().map_err(|m| self.error(format!("section `{key}`: {m}")))?;
        Ok(section)
    }

    /// The section as JSON, recorded in model bundles so a model says how it was made.
    pub fn section_json(&self, key: &str) -> Result<serde_json::Value> {
        serde_json::to_value(self.raw(key)?).map_err(|e| self.error(format!("section `{key}`: {e}")))
    }
}

/// Range checks that serde cannot express. The message names the key.
pub trait Check {
    fn check(&self) -> std::result::Result<(), String> {
        Ok(())
    }
}

impl<V: Check> Check for BTreeMap<String, V> {
    fn check(&self) -> std::result::Result<(), String> {
        self.iter().try_for_each(|(k, v)| v.check().map_err(|m| format!("{k}: {m}")))
    }
}

/// `v` strictly between 0 and 1, or an error naming `key`.
pub fn in_open_unit(key: &str, v: f64) -> std::result::Result<(), String> {
    if v > 0.0 && v < 1.0 {
        Ok(())
    } else {
        Err(format!("`{key}` must be between 0 and 1 (exclusive), got {v}"))
    }
}
