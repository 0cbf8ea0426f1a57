//! `params.yaml`: one section per stage, plus the dataset registry.
//!
//! Each stage reads only its own section and is strict about it: an unknown key is an error
//! (a typo such as `max_iter` would otherwise silently train with the default), and so is a
//! value out of range.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The parsed file, from which stages take their sections.
#[derive(Debug, Clone)]
pub struct ParamsFile {
    path: PathBuf,
    root: serde_yaml_ng::Mapping,
}

impl ParamsFile {
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let value: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).map_err(|e| Error::params(&path, format!("not valid YAML: {e}")))?;
        match value {
            serde_yaml_ng::Value::Mapping(root) => Ok(ParamsFile { path, root }),
            _ => Err(Error::params(&path, "expected a mapping of sections at the top level")),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn raw(&self, key: &str) -> Result<&serde_yaml_ng::Value> {
        self.root.get(key).ok_or_else(|| Error::params(&self.path, format!("missing section `{key}`")))
    }

    /// Deserialize section `key` strictly, then check its ranges.
    pub fn section<T: DeserializeOwned + Check>(&self, key: &str) -> Result<T> {
        let value = self.raw(key)?.clone();
        let section: T =
            serde_yaml_ng::from_value(value).map_err(|e| Error::params(&self.path, format!("section `{key}`: {e}")))?;
        section.check().map_err(|m| Error::params(&self.path, format!("section `{key}`: {m}")))?;
        Ok(section)
    }

    /// The section as JSON, recorded in model bundles so a model says how it was made.
    pub fn section_json(&self, key: &str) -> Result<serde_json::Value> {
        serde_json::to_value(self.raw(key)?).map_err(|e| Error::params(&self.path, format!("section `{key}`: {e}")))
    }

    /// The dataset selected by the top-level `dataset` key, from the `datasets` registry.
    pub fn dataset(&self) -> Result<Dataset> {
        let name: String = serde_yaml_ng::from_value(self.raw("dataset")?.clone())
            .map_err(|e| Error::params(&self.path, format!("`dataset`: {e}")))?;
        let registry: BTreeMap<String, DatasetParams> = self.section("datasets")?;
        let params = registry.get(&name).cloned().ok_or_else(|| {
            let known: Vec<_> = registry.keys().cloned().collect();
            Error::params(&self.path, format!("`dataset: {name}` is not in `datasets` (known: {})", known.join(", ")))
        })?;
        Ok(Dataset { name, params })
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

fn in_open_unit(key: &str, v: f64) -> std::result::Result<(), String> {
    if v > 0.0 && v < 1.0 {
        Ok(())
    } else {
        Err(format!("`{key}` must be between 0 and 1 (exclusive), got {v}"))
    }
}

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
    pub format: Option<crate::data::Format>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitStrategy {
    /// Same class balance in both parts.
    Stratified,
    /// Plain shuffled split.
    Random,
    /// Stratified, and rows with identical feature vectors always land on the same side, so
    /// no test row has a twin in the training part.
    StratifiedGrouped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestParams {
    pub split: SplitStrategy,
    pub test_size: f64,
    pub seed: u64,
}

impl Check for IngestParams {
    fn check(&self) -> std::result::Result<(), String> {
        in_open_unit("test_size", self.test_size)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateParams {
    /// Significance level of the per-feature drift tests, after the Benjamini-Hochberg
    /// correction across features.
    pub drift_alpha: f64,
    /// Treat drift as an error (non-zero exit) instead of a warning.
    #[serde(default)]
    pub fail_on_drift: bool,
}

impl Default for ValidateParams {
    fn default() -> Self {
        ValidateParams { drift_alpha: 0.01, fail_on_drift: false }
    }
}

impl Check for ValidateParams {
    fn check(&self) -> std::result::Result<(), String> {
        in_open_unit("drift_alpha", self.drift_alpha)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImputeStrategy {
    Median,
    Mean,
    MostFrequent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformParams {
    pub impute: ImputeStrategy,
    /// How categorical features become numbers (fitted on the training part only).
    #[serde(default)]
    pub encode: Encoding,
}

/// Encoding of categorical features.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// One 0/1 feature per category seen in training; an unseen category sets none of them.
    #[default]
    OneHot,
    /// One feature holding the category's index (categories sorted); unseen categories get -1.
    Ordinal,
}

impl Check for TransformParams {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchKind {
    /// Every combination of the listed values.
    Grid,
    /// `budget` combinations drawn (seeded) from the grid.
    Random,
}

/// The cross-validated score that picks the winner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionMetric {
    F1,
    RocAuc,
    PrAuc,
    BalancedAccuracy,
}

impl SelectionMetric {
    pub fn name(self) -> &'static str {
        match self {
            SelectionMetric::F1 => "f1",
            SelectionMetric::RocAuc => "roc_auc",
            SelectionMetric::PrAuc => "pr_auc",
            SelectionMetric::BalancedAccuracy => "balanced_accuracy",
        }
    }
}

/// How the decision threshold is chosen, on out-of-fold scores of the training part.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum ThresholdPolicy {
    /// The threshold with the best F1 for the threat class.
    MaxF1,
    /// The highest threshold that still catches `recall` of the threats.
    TargetRecall { recall: f64 },
    /// A fixed threshold.
    Fixed { value: f64 },
}

/// A search space: per family, hyperparameter -> a value or a list of values.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Space {
    /// Overrides `train.cv_folds` for this space.
    #[serde(default)]
    pub cv_folds: Option<usize>,
    pub families: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    pub seed: u64,
    /// Folds of the stratified cross-validation on the training part.
    pub cv_folds: usize,
    pub metric: SelectionMetric,
    pub search: SearchKind,
    /// Candidates drawn by random search.
    pub budget: usize,
    /// Worker threads; 0 = one per core. The NETSEC_THREADS environment variable overrides.
    pub threads: usize,
    /// Which entry of `spaces` to search; `auto` = the dataset's own `space`, else `default`.
    pub space: String,
    pub spaces: BTreeMap<String, Space>,
    /// Decision threshold of the saved model.
    pub threshold: ThresholdPolicy,
}

impl Check for TrainParams {
    fn check(&self) -> std::result::Result<(), String> {
        if self.folds() < 2 {
            return Err(format!("`cv_folds` must be at least 2, got {}", self.folds()));
        }
        if self.budget == 0 {
            return Err("`budget` must be at least 1".into());
        }
        match self.threshold {
            ThresholdPolicy::TargetRecall { recall: v } | ThresholdPolicy::Fixed { value: v } => {
                in_open_unit("threshold", v)?
            }
            ThresholdPolicy::MaxF1 => {}
        }
        if self.space == AUTO {
            return Ok(()); // checked once the dataset is known: see `resolve_space`
        }
        crate::search::candidates(self).map(|_| ())
    }
}

/// `train.space` value that defers to the dataset's `space`.
pub const AUTO: &str = "auto";

impl TrainParams {
    /// Replace `auto` by the dataset's space (or `default`), then check the space.
    pub fn resolve_space(&mut self, dataset: &DatasetParams) -> std::result::Result<(), String> {
        if self.space == AUTO {
            self.space = dataset.space.clone().unwrap_or_else(|| "default".into());
        }
        if self.folds() < 2 {
            return Err(format!("`cv_folds` must be at least 2, got {}", self.folds()));
        }
        crate::search::candidates(self).map(|_| ())
    }

    pub fn chosen_space(&self) -> std::result::Result<&Space, String> {
        self.spaces.get(&self.space).ok_or_else(|| {
            let known: Vec<&str> = self.spaces.keys().map(String::as_str).collect();
            format!("`space: {}` is not in `spaces` (known: {})", self.space, known.join(", "))
        })
    }

    /// Folds for the chosen space.
    pub fn folds(&self) -> usize {
        self.chosen_space().ok().and_then(|s| s.cv_folds).unwrap_or(self.cv_folds)
    }

    /// Threads: NETSEC_THREADS, else `threads`, else one per core.
    pub fn thread_count(&self) -> usize {
        std::env::var("NETSEC_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or(self.threads)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateParams {
    /// Features shown in the importance chart.
    pub importance_top: usize,
}

impl Check for EvaluateParams {
    fn check(&self) -> std::result::Result<(), String> {
        if self.importance_top == 0 {
            return Err("`importance_top` must be at least 1".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteParams {
    /// Per gated metric (see `registry::GATED`): `min`, `min_delta` (default 0),
    /// `min_rel_delta`.
    pub rules: BTreeMap<String, crate::registry::Rule>,
}

impl Check for PromoteParams {
    fn check(&self) -> std::result::Result<(), String> {
        use crate::registry::GATED;
        if self.rules.is_empty() {
            return Err("`rules` must name at least one metric".into());
        }
        match self.rules.keys().find(|m| !GATED.contains(&m.as_str())) {
            Some(m) => Err(format!("`{m}` cannot be gated (gated metrics: {})", GATED.join(", "))),
            None => Ok(()),
        }
    }
}
