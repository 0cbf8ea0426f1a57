//! AdaBoost (SAMME, two classes) over shallow trees of our learner, as scikit-learn 1.9 does.
//! Scores follow the additive logistic reading of boosting: P(threat) = σ(2 Σ αₘ hₘ(x)),
//! hₘ = ±1; the ranking (ROC) and the 0.5 decision are those of the weighted vote.

use ndarray::{Array1, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::checked::{Checked, Validate};
use super::decision_tree::{check_rows, group_stats, SplitCriterion};
use super::tree::{add_leaves, grow, normalized, Binned, GrowParams, Grown, Leaves, ScorerCache, Tree};
use super::{Classifier, Family};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaBoostParams {
    pub n_estimators: usize,
    pub learning_rate: f64,
    /// Depth of each weak learner (1 = stumps, scikit-learn's default).
    pub max_depth: usize,
    pub criterion: SplitCriterion,
    pub max_bins: usize,
}

impl Default for AdaBoostParams {
    fn default() -> Self {
        AdaBoostParams {
            n_estimators: 50,
            learning_rate: 1.0,
            max_depth: 1,
            criterion: SplitCriterion::Gini,
            max_bins: 255,
        }
    }
}

impl Validate for AdaBoostParams {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.n_estimators == 0 || self.learning_rate <= 0.0 || self.max_depth == 0 {
            return Err("n_estimators, learning_rate and max_depth must be positive".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaBoostModel {
    pub trees: Vec<Tree>,
    pub alphas: Vec<f64>,
    pub importance: Vec<f64>,
    #[serde(skip)]
    scorer: ScorerCache,
}

super::checked::param_guard!(AdaBoostParams);
super::checked::predict_inplace!(AdaBoostModel);

impl Family for Checked<AdaBoostParams> {
    type Model = AdaBoostModel;

    fn fit(&self, x: ArrayView2<'_, f64>, y: &[bool], seed: u64) -> Result<AdaBoostModel> {
        check_rows(x, y)?;
        let data = Binned::new(x, self.max_bins);
        let (group_of, reps) = data.groups();
        let n = y.len();
        let grow_params = GrowParams {
            criterion: self.criterion.criterion(),
            max_depth: self.max_depth,
            min_samples_split: 2,
            min_samples_leaf: 1,
            min_child_weight: 0.0,
            features_per_split: x.ncols(),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut w = vec![1.0 / n as f64; n];
        let (mut trees, mut alphas) = (Vec::new(), Vec::new());
        let mut importance = vec![0.0; x.ncols()];
        for _ in 0..self.n_estimators {
            let (stats, mut rows) = group_stats(n, &group_of, &reps, y, |r| (w[r], 1.0));
            let Grown { tree, gains, .. } = grow(&data, &mut rows, stats.view(), &grow_params, &mut rng);
            // One prediction per group: its rows are identical to the tree.
            let says_threat: Vec<bool> =
                reps.iter().map(|&r| tree.predict_binned(data.row(r as usize)) >= 0.5).collect();
            let wrong: Vec<bool> = (0..n).map(|r| says_threat[group_of[r] as usize] != y[r]).collect();
            let total: f64 = w.iter().sum();
            let err = w.iter().zip(&wrong).filter(|(_, &m)| m).map(|(w, _)| w).sum::<f64>() / total;
            if err <= 0.0 {
                // A perfect learner: keep it with a large weight and stop, as scikit-learn does.
                trees.push(tree);
                alphas.push(1.0);
                break;
            }
            if err >= 0.5 {
                break;
            }
            let alpha = self.learning_rate * ((1.0 - err) / err).ln();
            for (wi, &m) in w.iter_mut().zip(&wrong) {
                if m {
                    *wi *= alpha.exp();
                }
            }
            let total: f64 = w.iter().sum();
            w.iter_mut().for_each(|wi| *wi /= total);
            importance.iter_mut().zip(normalized(gains)).for_each(|(i, g)| *i += alpha * g);
            trees.push(tree);
            alphas.push(alpha);
        }
        if trees.is_empty() {
            return Err(crate::error::Error::Model("adaboost: the first weak learner is no better than chance".into()));
        }
        Ok(AdaBoostModel { trees, alphas, importance: normalized(importance), scorer: ScorerCache::default() })
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl AdaBoostModel {
    pub fn staged_proba(&self, x: ArrayView2<'_, f64>, stages: &[usize]) -> Vec<Array1<f64>> {
        let mut f = vec![0.0; x.nrows()];
        let mut out = Vec::with_capacity(stages.len());
        let mut done = 0;
        for &k in stages {
            let k = k.min(self.trees.len());
            // Each weak learner votes its weight for the class its leaf holds.
            add_leaves(&self.trees, &self.scorer, Leaves::Vote(&self.alphas), x, done..k, &mut f);
            done = k;
            out.push(f.iter().map(|&z| sigmoid(2.0 * z)).collect());
        }
        out
    }
}

impl Classifier for AdaBoostModel {
    fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        self.staged_proba(x, &[self.trees.len()]).pop().expect("one stage")
    }

    fn feature_importance(&self) -> Vec<f64> {
        self.importance.clone()
    }
}
