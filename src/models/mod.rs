//! Model families. Each family is one file: its unchecked params (what `params.yaml` holds)
//! implement [`checked::Validate`], its checked params implement [`Family`] (linfa's `Fit`
//! through [`checked::Seeded`]), its fitted model [`Classifier`]. To add a family: write the
//! file, then register it here: one variant in [`Unchecked`], [`ModelSpec`] and [`Model`], its
//! name in [`FAMILIES`], and one arm per `match` below (the compiler lists them). The family
//! file invokes `checked::param_guard!` and `checked::predict_inplace!` for its own types.
//!
//! The tree-based families share our histogram CART learner in [`tree`].

pub mod adaboost;
pub mod bagging;
mod check;
pub mod checked;
pub mod decision_tree;
pub mod explain;
pub mod gbm;
pub mod logistic;
pub mod random_forest;
pub mod tree;

use ndarray::{Array1, ArrayView2};
use serde::{Deserialize, Serialize};

use self::checked::Checked;
use crate::error::Result;

/// A fitted binary classifier. Scores are the probability of the threat class.
pub trait Classifier {
    fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array1<f64>;
    /// Non-negative importance per feature, in feature order.
    fn feature_importance(&self) -> Vec<f64>;
}

/// Hyperparameters of one family: they fit a model. Every random choice uses `seed`.
pub trait Family {
    type Model: Classifier;
    fn fit(&self, x: ArrayView2<'_, f64>, y: &[bool], seed: u64) -> Result<Self::Model>;
}

/// A family with hyperparameters as written in `params.yaml`, not yet checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "family", content = "params", rename_all = "snake_case")]
enum Unchecked {
    Logistic(logistic::LogisticParams),
    DecisionTree(decision_tree::DecisionTreeParams),
    RandomForest(random_forest::RandomForestParams),
    #[serde(rename = "adaboost")]
    AdaBoost(adaboost::AdaBoostParams),
    Gbm(gbm::GbmParams),
    Bagging(bagging::BaggingParams),
}

/// A family with checked hyperparameters: the only spec that fits.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "family", content = "params", rename_all = "snake_case")]
pub enum ModelSpec {
    Logistic(Checked<logistic::LogisticParams>),
    DecisionTree(Checked<decision_tree::DecisionTreeParams>),
    RandomForest(Checked<random_forest::RandomForestParams>),
    #[serde(rename = "adaboost")]
    AdaBoost(Checked<adaboost::AdaBoostParams>),
    Gbm(Checked<gbm::GbmParams>),
    Bagging(Checked<bagging::BaggingParams>),
}

/// A fitted model of any family, as stored in a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", content = "model", rename_all = "snake_case")]
pub enum Model {
    Logistic(logistic::LogisticModel),
    DecisionTree(decision_tree::DecisionTreeModel),
    RandomForest(random_forest::RandomForestModel),
    #[serde(rename = "adaboost")]
    AdaBoost(adaboost::AdaBoostModel),
    Gbm(gbm::GbmModel),
    Bagging(bagging::BaggingModel),
}

pub const FAMILIES: &[&str] = &["logistic", "decision_tree", "random_forest", "adaboost", "gbm", "bagging"];

impl ModelSpec {
    /// A family by name with hyperparameters given as a JSON object (missing keys take the
    /// family's defaults; unknown keys are an error).
    pub fn from_json(family: &str, params: serde_json::Value) -> std::result::Result<Self, String> {
        if !FAMILIES.contains(&family) {
            return Err(format!("unknown family `{family}` (known: {})", FAMILIES.join(", ")));
        }
        let spec: Unchecked = serde_json::from_value(serde_json::json!({ "family": family, "params": params }))
            .map_err(|e| format!("{family}: {e}"))?;
        ModelSpec::check(spec).map_err(|e| match e {
            linfa::Error::Parameters(m) => format!("{family}: {m}"),
            e => format!("{family}: {e}"),
        })
    }

    /// linfa's `ParamGuard::check` for whichever family it is.
    fn check(spec: Unchecked) -> std::result::Result<ModelSpec, linfa::Error> {
        use linfa::ParamGuard;
        Ok(match spec {
            Unchecked::Logistic(p) => ModelSpec::Logistic(p.check()?),
            Unchecked::DecisionTree(p) => ModelSpec::DecisionTree(p.check()?),
            Unchecked::RandomForest(p) => ModelSpec::RandomForest(p.check()?),
            Unchecked::AdaBoost(p) => ModelSpec::AdaBoost(p.check()?),
            Unchecked::Gbm(p) => ModelSpec::Gbm(p.check()?),
            Unchecked::Bagging(p) => ModelSpec::Bagging(p.check()?),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Logistic(_) => "logistic",
            ModelSpec::DecisionTree(_) => "decision_tree",
            ModelSpec::RandomForest(_) => "random_forest",
            ModelSpec::AdaBoost(_) => "adaboost",
            ModelSpec::Gbm(_) => "gbm",
            ModelSpec::Bagging(_) => "bagging",
        }
    }

    /// The hyperparameters as a JSON object (all of them, defaults included).
    pub fn params_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("specs serialize");
        v["params"].take()
    }

    /// Ensemble size, for families whose smaller ensembles are prefixes of larger ones.
    pub fn stages(&self) -> Option<usize> {
        match self {
            ModelSpec::RandomForest(p) => Some(p.n_estimators),
            ModelSpec::AdaBoost(p) => Some(p.n_estimators),
            ModelSpec::Gbm(p) => Some(p.n_estimators),
            ModelSpec::Logistic(_) | ModelSpec::DecisionTree(_) | ModelSpec::Bagging(_) => None,
        }
    }

    /// The same spec with another ensemble size.
    /// The same spec with another ensemble size (0 stands for "any": a grouping key).
    pub fn with_stages(&self, n: usize) -> ModelSpec {
        let size = |v: &mut usize| *v = n.max(1);
        let keyed = |r: std::result::Result<ModelSpec, String>| r.expect("a size of at least 1 keeps params valid");
        match self {
            ModelSpec::RandomForest(p) => keyed(p.with(|p| size(&mut p.n_estimators)).map(ModelSpec::RandomForest)),
            ModelSpec::AdaBoost(p) => keyed(p.with(|p| size(&mut p.n_estimators)).map(ModelSpec::AdaBoost)),
            ModelSpec::Gbm(p) => keyed(p.with(|p| size(&mut p.n_estimators)).map(ModelSpec::Gbm)),
            ModelSpec::Logistic(_) | ModelSpec::DecisionTree(_) | ModelSpec::Bagging(_) => self.clone(),
        }
    }

    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[bool], seed: u64) -> Result<Model> {
        Ok(match self {
            ModelSpec::Logistic(p) => Model::Logistic(p.fit(x, y, seed)?),
            ModelSpec::DecisionTree(p) => Model::DecisionTree(p.fit(x, y, seed)?),
            ModelSpec::RandomForest(p) => Model::RandomForest(p.fit(x, y, seed)?),
            ModelSpec::AdaBoost(p) => Model::AdaBoost(p.fit(x, y, seed)?),
            ModelSpec::Gbm(p) => Model::Gbm(p.fit(x, y, seed)?),
            ModelSpec::Bagging(p) => Model::Bagging(p.fit(x, y, seed)?),
        })
    }
}

checked::predict_inplace!(Model);

/// Any family's checked spec fits like the family itself (so a list of mixed specs is one
/// linfa `Fit` type through [`checked::Seeded`]).
impl Family for ModelSpec {
    type Model = Model;
    fn fit(&self, x: ArrayView2<'_, f64>, y: &[bool], seed: u64) -> Result<Model> {
        ModelSpec::fit(self, x, y, seed)
    }
}

impl Model {
    pub fn family(&self) -> &'static str {
        match self {
            Model::Logistic(_) => "logistic",
            Model::DecisionTree(_) => "decision_tree",
            Model::RandomForest(_) => "random_forest",
            Model::AdaBoost(_) => "adaboost",
            Model::Gbm(_) => "gbm",
            Model::Bagging(_) => "bagging",
        }
    }

    /// Scores of the first `k` ensemble members for each `k` in `stages` (ascending); models
    /// that are not ensembles give their one prediction for every `k`.
    pub fn staged_proba(&self, x: ArrayView2<'_, f64>, stages: &[usize]) -> Vec<Array1<f64>> {
        match self {
            Model::RandomForest(m) => m.staged_proba(x, stages),
            Model::AdaBoost(m) => m.staged_proba(x, stages),
            Model::Gbm(m) => m.staged_proba(x, stages),
            other => {
                let p = other.predict_proba(x);
                stages.iter().map(|_| p.clone()).collect()
            }
        }
    }
}

impl Classifier for Model {
    fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        match self {
            Model::Logistic(m) => m.predict_proba(x),
            Model::DecisionTree(m) => m.predict_proba(x),
            Model::RandomForest(m) => m.predict_proba(x),
            Model::AdaBoost(m) => m.predict_proba(x),
            Model::Gbm(m) => m.predict_proba(x),
            Model::Bagging(m) => m.predict_proba(x),
        }
    }

    fn feature_importance(&self) -> Vec<f64> {
        match self {
            Model::Logistic(m) => m.feature_importance(),
            Model::DecisionTree(m) => m.feature_importance(),
            Model::RandomForest(m) => m.feature_importance(),
            Model::AdaBoost(m) => m.feature_importance(),
            Model::Gbm(m) => m.feature_importance(),
            Model::Bagging(m) => m.feature_importance(),
        }
    }
}

#[cfg(test)]
mod tests;
