//! Model families. Each family is one file implementing [`Family`]; its fitted model
//! implements [`Classifier`]. To add a family: write the file, then add one variant to
//! [`ModelSpec`] and [`Model`] and one arm to each `match` below (the compiler lists them).
//!
//! The tree-based families share our histogram CART learner in [`tree`].

pub mod adaboost;
pub mod decision_tree;
pub mod gbm;
pub mod logistic;
pub mod random_forest;
pub mod tree;

use ndarray::{Array1, ArrayView2};
use serde::{Deserialize, Serialize};

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

/// A family with its hyperparameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", content = "params", rename_all = "snake_case")]
pub enum ModelSpec {
    Logistic(logistic::LogisticParams),
    DecisionTree(decision_tree::DecisionTreeParams),
    RandomForest(random_forest::RandomForestParams),
    #[serde(rename = "adaboost")]
    AdaBoost(adaboost::AdaBoostParams),
    Gbm(gbm::GbmParams),
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
}

pub const FAMILIES: &[&str] = &["logistic", "decision_tree", "random_forest", "adaboost", "gbm"];

impl ModelSpec {
    /// A family by name with hyperparameters given as a JSON object (missing keys take the
    /// family's defaults; unknown keys are an error).
    pub fn from_json(family: &str, params: serde_json::Value) -> std::result::Result<Self, String> {
        if !FAMILIES.contains(&family) {
            return Err(format!("unknown family `{family}` (known: {})", FAMILIES.join(", ")));
        }
        let spec: ModelSpec = serde_json::from_value(serde_json::json!({ "family": family, "params": params }))
            .map_err(|e| format!("{family}: {e}"))?;
        spec.check().map_err(|e| format!("{family}: {e}"))?;
        Ok(spec)
    }

    pub fn check(&self) -> std::result::Result<(), String> {
        match self {
            ModelSpec::Logistic(p) => p.check(),
            ModelSpec::DecisionTree(p) => p.check(),
            ModelSpec::RandomForest(p) => p.check(),
            ModelSpec::AdaBoost(p) => p.check(),
            ModelSpec::Gbm(p) => p.check(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Logistic(_) => "logistic",
            ModelSpec::DecisionTree(_) => "decision_tree",
            ModelSpec::RandomForest(_) => "random_forest",
            ModelSpec::AdaBoost(_) => "adaboost",
            ModelSpec::Gbm(_) => "gbm",
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
            ModelSpec::Logistic(_) | ModelSpec::DecisionTree(_) => None,
        }
    }

    /// The same spec with another ensemble size.
    pub fn with_stages(&self, n: usize) -> ModelSpec {
        let mut s = self.clone();
        match &mut s {
            ModelSpec::RandomForest(p) => p.n_estimators = n,
            ModelSpec::AdaBoost(p) => p.n_estimators = n,
            ModelSpec::Gbm(p) => p.n_estimators = n,
            ModelSpec::Logistic(_) | ModelSpec::DecisionTree(_) => {}
        }
        s
    }

    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[bool], seed: u64) -> Result<Model> {
        Ok(match self {
            ModelSpec::Logistic(p) => Model::Logistic(p.fit(x, y, seed)?),
            ModelSpec::DecisionTree(p) => Model::DecisionTree(p.fit(x, y, seed)?),
            ModelSpec::RandomForest(p) => Model::RandomForest(p.fit(x, y, seed)?),
            ModelSpec::AdaBoost(p) => Model::AdaBoost(p.fit(x, y, seed)?),
            ModelSpec::Gbm(p) => Model::Gbm(p.fit(x, y, seed)?),
        })
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
        }
    }

    fn feature_importance(&self) -> Vec<f64> {
        match self {
            Model::Logistic(m) => m.feature_importance(),
            Model::DecisionTree(m) => m.feature_importance(),
            Model::RandomForest(m) => m.feature_importance(),
            Model::AdaBoost(m) => m.feature_importance(),
            Model::Gbm(m) => m.feature_importance(),
        }
    }
}

#[cfg(test)]
mod tests;
