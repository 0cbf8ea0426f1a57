//! Random forest: bootstrap samples, a fresh random feature subset at EVERY split (unlike
//! linfa-ensemble's one subset per tree), probabilities averaged over trees. Trees grow in
//! parallel; each draws from its own ChaCha stream, so the forest is the same whatever the
//! thread count.

use ndarray::{Array1, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::decision_tree::{check_rows, group_stats, FeatureRule, MaxFeatures, SplitCriterion};
use super::tree::{add_leaves, grow, normalized, Binned, GrowParams, Grown, ScorerCache, Tree};
use super::{Classifier, Family};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomForestParams {
    pub n_estimators: usize,
    pub criterion: SplitCriterion,
    pub max_depth: Option<usize>,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    pub max_features: MaxFeatures,
    pub bootstrap: bool,
    pub max_bins: usize,
}

impl Default for RandomForestParams {
    fn default() -> Self {
        RandomForestParams {
            n_estimators: 100,
            criterion: SplitCriterion::Gini,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: MaxFeatures::Rule(FeatureRule::Sqrt),
            bootstrap: true,
            max_bins: 255,
        }
    }
}

impl RandomForestParams {
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.n_estimators == 0 {
            return Err("n_estimators must be >= 1".into());
        }
        if self.min_samples_leaf == 0 || self.min_samples_split < 2 {
            return Err("min_samples_leaf must be >= 1 and min_samples_split >= 2".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomForestModel {
    pub trees: Vec<Tree>,
    pub importance: Vec<f64>,
    #[serde(skip)]
    scorer: ScorerCache,
}

impl Family for RandomForestParams {
    type Model = RandomForestModel;

    fn fit(&self, x: ArrayView2<'_, f64>, y: &[bool], seed: u64) -> Result<RandomForestModel> {
        check_rows(x, y)?;
        let data = Binned::new(x, self.max_bins);
        let (group_of, reps) = data.groups();
        let n = y.len();
        let grow_params = GrowParams {
            criterion: self.criterion.criterion(),
            max_depth: self.max_depth.unwrap_or(usize::MAX),
            min_samples_split: self.min_samples_split,
            min_samples_leaf: self.min_samples_leaf,
            min_child_weight: 0.0,
            features_per_split: self.max_features.count(x.ncols()),
        };
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
                let ([a, b, c], mut rows) = group_stats(n, &group_of, &reps, y, |r| (draws[r], draws[r]));
                let Grown { tree, gains, .. } = grow(&data, &mut rows, [&a, &b, &c], &grow_params, &mut rng);
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
        add_leaves(&self.trees, &self.scorer, |_, v| v, x, trees, sum);
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
