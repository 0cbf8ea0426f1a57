//! Random forest: bootstrap samples, a fresh random feature subset at EVERY split (unlike
//! linfa-ensemble's one subset per tree), probabilities averaged over trees. Trees grow in
//! parallel; each draws from its own ChaCha stream, so the forest is the same whatever the
//! thread count.

use ndarray::{Array1, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::checked::{Checked, Validate};
use super::decision_tree::{check_rows, group_stats, DecisionTreeParams, FeatureRule, MaxFeatures, SplitCriterion};
use super::tree::{add_leaves, grow, normalized, Binned, Grown, Leaves, ScorerCache, Tree};
use super::{Classifier, Family};
use crate::error::Result;

/// A forest *contains* its trees' params (as linfa-ensemble's `EnsembleLearnerParams` does),
/// so every check of a tree's params applies to a forest's too. In `params.yaml` they are one
/// flat mapping (`n_estimators`, `bootstrap` and the tree's keys), as in scikit-learn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Flat", into = "Flat")]
pub struct RandomForestParams {
    pub n_estimators: usize,
    pub bootstrap: bool,
    pub tree: DecisionTreeParams,
}

impl Default for RandomForestParams {
    fn default() -> Self {
        RandomForestParams {
            n_estimators: 100,
            bootstrap: true,
            // A forest's trees look at sqrt(features) per split by default, a lone tree at all.
            tree: DecisionTreeParams { max_features: MaxFeatures::Rule(FeatureRule::Sqrt), ..Default::default() },
        }
    }
}

impl Validate for RandomForestParams {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.n_estimators == 0 {
            return Err("n_estimators must be >= 1".into());
        }
        self.tree.validate()
    }
}

/// The flat form of [`RandomForestParams`] in `params.yaml`, bundles and leaderboards.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Flat {
    n_estimators: usize,
    criterion: SplitCriterion,
    max_depth: Option<usize>,
    min_samples_split: usize,
    min_samples_leaf: usize,
    max_features: MaxFeatures,
    bootstrap: bool,
    max_bins: usize,
}

impl Default for Flat {
    fn default() -> Self {
        RandomForestParams::default().into()
    }
}

impl From<RandomForestParams> for Flat {
    fn from(p: RandomForestParams) -> Flat {
        let t = p.tree;
        Flat {
            n_estimators: p.n_estimators,
            criterion: t.criterion,
            max_depth: t.max_depth,
            min_samples_split: t.min_samples_split,
            min_samples_leaf: t.min_samples_leaf,
            max_features: t.max_features,
            bootstrap: p.bootstrap,
            max_bins: t.max_bins,
        }
    }
}

impl From<Flat> for RandomForestParams {
    fn from(f: Flat) -> RandomForestParams {
        RandomForestParams {
            n_estimators: f.n_estimators,
            bootstrap: f.bootstrap,
            tree: DecisionTreeParams {
                criterion: f.criterion,
                max_depth: f.max_depth,
                min_samples_split: f.min_samples_split,
                min_samples_leaf: f.min_samples_leaf,
                max_features: f.max_features,
                max_bins: f.max_bins,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomForestModel {
    pub trees: Vec<Tree>,
    pub importance: Vec<f64>,
    #[serde(skip)]
    scorer: ScorerCache,
}

super::checked::param_guard!(RandomForestParams);
super::checked::predict_inplace!(RandomForestModel);

impl Family for Checked<RandomForestParams> {
    type Model = RandomForestModel;

    fn fit(&self, x: ArrayView2<'_, f64>, y: &[bool], seed: u64) -> Result<RandomForestModel> {
        check_rows(x, y)?;
        let data = Binned::new(x, self.tree.max_bins);
        let (group_of, reps) = data.groups();
        let n = y.len();
        let grow_params = self.tree.grow_params(x.ncols());
        let fitted: Vec<(Tree, Vec<f64>)> = (0..self.n_estimators)
            .into_par_iter()
            .map(|t| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(t as u64 + 1);
                let mut draws = vec![0.0; n];
                if self.bootstrap {
                    for _ in 0..n {
                        draws[rng.gen_range(0..n)] += 1.0;
                    }
                } else {
                    draws.iter_mut().for_each(|w| *w = 1.0);
                }
                let (stats, mut rows) = group_stats(n, &group_of, &reps, y, |r| (draws[r], draws[r]));
                let Grown { tree, gains, .. } = grow(&data, &mut rows, stats.view(), &grow_params, &mut rng);
                (tree, normalized(gains))
            })
            .collect();
        let mut importance = vec![0.0; x.ncols()];
        for (_, g) in &fitted {
            importance.iter_mut().zip(g).for_each(|(i, g)| *i += g);
        }
        Ok(RandomForestModel {
            trees: fitted.into_iter().map(|(t, _)| t).collect(),
            importance: normalized(importance),
            scorer: ScorerCache::default(),
        })
    }
}

impl RandomForestModel {
    fn add(&self, x: ArrayView2<'_, f64>, trees: std::ops::Range<usize>, sum: &mut [f64]) {
        add_leaves(&self.trees, &self.scorer, Leaves::AsIs, x, trees, sum);
    }

    /// Mean probability over the first `k` trees, for each `k` in `stages` (ascending).
    pub fn staged_proba(&self, x: ArrayView2<'_, f64>, stages: &[usize]) -> Vec<Array1<f64>> {
        let mut sum = vec![0.0; x.nrows()];
        let mut out = Vec::with_capacity(stages.len());
        let mut done = 0;
        for &k in stages {
            let k = k.min(self.trees.len());
            self.add(x, done..k, &mut sum);
            done = k;
            out.push(sum.iter().map(|s| s / done.max(1) as f64).collect());
        }
        out
    }
}

impl Classifier for RandomForestModel {
    fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        let mut sum = vec![0.0; x.nrows()];
        self.add(x, 0..self.trees.len(), &mut sum);
        let n = self.trees.len() as f64;
        Array1::from_iter(sum.into_iter().map(|s| s / n))
    }

    fn feature_importance(&self) -> Vec<f64> {
        self.importance.clone()
    }
}
