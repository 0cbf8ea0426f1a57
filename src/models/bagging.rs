//! Bagging: linfa-ensemble's `EnsembleLearner` over our decision tree, fitted through linfa's
//! traits (`ParamGuard`, `Fit`, `PredictInplace`). Each tree sees a bootstrap sample of
//! `max_samples` × rows and, as linfa-ensemble draws them, `max_features` × features drawn with
//! replacement. P(threat) is the share of trees that vote threat (linfa's majority vote is
//! P ≥ 0.5).
//!
//! Unlike our random forest, the trees are fitted one after another (linfa-ensemble's loop),
//! from one ChaCha stream seeded by `train.seed`, so the ensemble is reproducible.

use linfa::prelude::*;
use linfa::ParamGuard;
use linfa_ensemble::EnsembleLearnerParams;
use ndarray::{Array1, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::checked::{Checked, Seeded, Validate};
use super::decision_tree::{check_rows, DecisionTreeModel, DecisionTreeParams};
use super::tree::normalized;
use super::{Classifier, Family};
use crate::error::{Error, Result};

/// The ensemble contains its base learner's params (`tree`), as linfa-ensemble does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaggingParams {
    pub n_estimators: usize,
    /// Bootstrap sample size as a share of the rows, in (0, 1].
    pub max_samples: f64,
    /// Features per tree as a share of the features, in (0, 1] (drawn with replacement).
    pub max_features: f64,
    /// The decision tree's own params (see `decision_tree`).
    pub tree: DecisionTreeParams,
}

impl Default for BaggingParams {
    fn default() -> Self {
        BaggingParams { n_estimators: 50, max_samples: 1.0, max_features: 1.0, tree: DecisionTreeParams::default() }
    }
}

impl Validate for BaggingParams {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.n_estimators == 0 {
            return Err("n_estimators must be >= 1".into());
        }
        for (key, v) in [("max_samples", self.max_samples), ("max_features", self.max_features)] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(format!("{key} must be in (0, 1], got {v}"));
            }
        }
        self.tree.validate().map_err(|m| format!("tree: {m}"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaggingModel {
    pub trees: Vec<DecisionTreeModel>,
    /// Per tree, the columns it was fitted on (in its own column order).
    pub features: Vec<Vec<usize>>,
    pub importance: Vec<f64>,
}

super::checked::param_guard!(BaggingParams);
super::checked::predict_inplace!(BaggingModel);

impl Family for Checked<BaggingParams> {
    type Model = BaggingModel;

    fn fit(&self, x: ArrayView2<'_, f64>, y: &[bool], seed: u64) -> Result<BaggingModel> {
        // linfa-ensemble unwraps each tree's fit: refuse what a tree would refuse up front.
        check_rows(x, y)?;
        let bad = |e: linfa::Error| Error::Model(format!("bagging: {e}"));
        let tree = Seeded { params: self.tree.clone().check().map_err(bad)?, seed };
        let dataset = DatasetBase::new(x.to_owned(), Array1::from(y.to_vec()));
        let learner = EnsembleLearnerParams::new_fixed_rng(tree, ChaCha8Rng::seed_from_u64(seed))
            .ensemble_size(self.n_estimators)
            .bootstrap_proportion(self.max_samples)
            .feature_proportion(self.max_features)
            .check()
            .map_err(bad)?
            .fit(&dataset)
            .map_err(bad)?;
        let mut importance = vec![0.0; x.ncols()];
        for (tree, cols) in learner.models.iter().zip(&learner.model_features) {
            for (g, &c) in tree.feature_importance().iter().zip(cols) {
                importance[c] += g;
            }
        }
        Ok(BaggingModel { trees: learner.models, features: learner.model_features, importance: normalized(importance) })
    }
}

impl Classifier for BaggingModel {
    fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        let mut votes = Array1::<f64>::zeros(x.nrows());
        for (tree, cols) in self.trees.iter().zip(&self.features) {
            let p = tree.predict_proba(x.select(Axis(1), cols).view());
            votes.zip_mut_with(&p, |v, p| *v += f64::from(u8::from(*p >= 0.5)));
        }
        votes / self.trees.len().max(1) as f64
    }

    fn feature_importance(&self) -> Vec<f64> {
        self.importance.clone()
    }
}
