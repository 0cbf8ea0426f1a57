//! The dataset registry of `params.yaml` (`dataset:` picks one entry of `datasets:`): which
//! schema describes a dataset and where its raw files are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Format;
use crate::params::{Check, ParamsError, ParamsFile};

/// A named dataset: which schema describes it and where its raw file is.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub name: String,
    pub params: DatasetParams,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetParams {
    /// Schema file (see `schemas/`).
    pub schema: PathBuf,
    /// One raw data file (CSV, Parquet or JSON Lines, optionally gzip-compressed), split by
    /// the `ingest` section.
    #[serde(default)]
    pub source: Option<PathBuf>,
    /// A dataset published already split (such as NSL-KDD): its training part. Give `train`
    /// and `test` instead of `source`; `ingest` then keeps the official split as it is.
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// The published test part (with `train`).
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// Overrides the format guessed from the file names.
    #[serde(default)]
    pub format: Option<Format>,
    /// The entry of `train.spaces` searched on this dataset when `train.space` is `auto`
    /// (a grid sized for the dataset: 126k rows need a smaller one than 9k).
    #[serde(default)]
    pub space: Option<String>,
}

/// Where a dataset's rows come from.
#[derive(Debug, Clone, Copy)]
pub enum Sources<'a> {
    /// One file, split by `ingest`.
    One(&'a Path),
    /// The publisher's own split.
    PreSplit { train: &'a Path, test: &'a Path },
}

impl DatasetParams {
    pub fn sources(&self) -> Sources<'_> {
        match (&self.source, &self.train, &self.test) {
            (Some(s), _, _) => Sources::One(s),
            (None, Some(train), Some(test)) => Sources::PreSplit { train, test },
            _ => unreachable!("checked by DatasetParams::check"),
        }
    }
}

impl Check for DatasetParams {
    fn check(&self) -> std::result::Result<(), String> {
        match (&self.source, &self.train, &self.test) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => Ok(()),
            (Some(_), _, _) => Err("give either `source` (split by `ingest`) or `train` and `test`, not both".into()),
            (None, None, None) => Err("missing `source` (or `train` and `test` for a pre-split dataset)".into()),
            (None, _, _) => Err("a pre-split dataset needs both `train` and `test`".into()),
        }
    }
}

impl Dataset {
    /// The dataset selected by the top-level `dataset` key, from the `datasets` registry.
    pub fn selected(params: &ParamsFile) -> Result<Dataset, ParamsError> {
        let name: String = params.section::<DatasetName>("dataset")?.0;
        let registry: BTreeMap<String, DatasetParams> = params.section("datasets")?;
        let dp = registry.get(&name).cloned().ok_or_else(|| {
            let known: Vec<_> = registry.keys().cloned().collect();
            params.error(format!("`dataset: {name}` is not in `datasets` (known: {})", known.join(", ")))
        })?;
        Ok(Dataset { name, params: dp })
    }
}

#[derive(Deserialize)]
struct DatasetName(String);

impl Check for DatasetName {}
