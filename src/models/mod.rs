//! Model families. Each family is one file implementing [`Family`]; its fitted model
//! implements [`Classifier`]. To add a family: write the file, then add one variant to
//! [`ModelSpec`] and [`Model`] and one arm to each `match` below.

pub mod logistic;

use ndarray::{Array1, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::params::TrainParams;

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

/// A family with its hyperparameters, as chosen in `params.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", content = "params", rename_all = "snake_case")]
pub enum ModelSpec {
    Logistic(logistic::LogisticParams),
}

/// A fitted model of any family, as stored in a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "family", content = "model", rename_all = "snake_case")]
pub enum Model {
    Logistic(logistic::LogisticModel),
}

pub const FAMILIES: &[&str] = &["logistic"];

impl ModelSpec {
    pub fn from_params(p: &TrainParams) -> std::result::Result<Self, String> {
        let missing = |name: &str| format!("`family: {name}` needs a `{name}` section with its hyperparameters");
        match p.family.as_str() {
            "logistic" => p.logistic.clone().map(ModelSpec::Logistic).ok_or_else(|| missing("logistic")),
            other => Err(format!("unknown family `{other}` (known: {})", FAMILIES.join(", "))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ModelSpec::Logistic(_) => "logistic",
        }
    }

    pub fn fit(&self, x: ArrayView2<'_, f64>, y: &[bool], seed: u64) -> Result<Model> {
        match self {
            ModelSpec::Logistic(p) => p.fit(x, y, seed).map(Model::Logistic),
        }
    }
}

impl Classifier for Model {
    fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        match self {
            Model::Logistic(m) => m.predict_proba(x),
        }
    }

    fn feature_importance(&self) -> Vec<f64> {
        match self {
            Model::Logistic(m) => m.feature_importance(),
        }
    }
}
