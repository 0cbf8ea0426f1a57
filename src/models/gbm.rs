//! Gradient-boosted trees for the logistic loss, second order (Newton leaves with an L2
//! penalty, as XGBoost), on our histogram learner; optional row subsampling per tree
//! (stochastic gradient boosting, scikit-learn's `subsample`).

use ndarray::{Array1, ArrayView2};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::checked::{Checked, Validate};
use super::decision_tree::check_rows;
use super::tree::{
    add_leaves, grow, normalized, Binned, Criterion, GrowParams, Grown, Leaves, ScorerCache, Stats, Tree,
};
use super::{Classifier, Family};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbmParams {
    pub n_estimators: usize,
    pub learning_rate: f64,
    pub max_depth: usize,
    /// Fraction of the rows each tree sees (drawn without replacement).
    pub subsample: f64,
    /// L2 penalty on leaf values.
    pub lambda: f64,
    /// Minimum hessian sum in a child.
    pub min_child_weight: f64,
    pub min_samples_leaf: usize,
    pub max_bins: usize,
}

impl Default for GbmParams {
    fn default() -> Self {
        GbmParams {
            n_estimators: 100,
            learning_rate: 0.1,
            max_depth: 3,
            subsample: 1.0,
            lambda: 1.0,
            min_child_weight: 1e-3,
            min_samples_leaf: 1,
            max_bins: 255,
        }
    }
}

impl Validate for GbmParams {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.n_estimators == 0 || self.learning_rate <= 0.0 || self.max_depth == 0 {
            return Err("n_estimators, learning_rate and max_depth must be positive".into());
        }
        if !(self.subsample > 0.0 && self.subsample <= 1.0) {
            return Err(format!("subsample must be in (0, 1], got {}", self.subsample));
        }
        if self.lambda < 0.0 {
            return Err("lambda must be >= 0".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbmModel {
    /// Log-odds before the first tree.
    pub init: f64,
    /// Trees with the learning rate already applied to their leaves.
    pub trees: Vec<Tree>,
    pub importance: Vec<f64>,
    #[serde(skip)]
    scorer: ScorerCache,
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny, fast generator for bulk draws.
struct SplitMix64(u64);

impl SplitMix64 {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

super::checked::param_guard!(GbmParams);
super::checked::predict_inplace!(GbmModel);

impl Family for Checked<GbmParams> {
    type Model = GbmModel;

    fn fit(&self, x: ArrayView2<'_, f64>, y: &[bool], seed: u64) -> Result<GbmModel> {
        check_rows(x, y)?;
        let data = Binned::new(x, self.max_bins);
        let n = y.len();
        // Identical rows get identical scores: boost per group of identical rows (see
        // `Binned::groups`), with each group's sampled rows summed into its statistics.
        let (group_of, reps) = data.groups();
        let groups = reps.len();
        let rate = (y.iter().filter(|&&t| t).count() as f64 / n as f64).clamp(1e-6, 1.0 - 1e-6);
        let init = (rate / (1.0 - rate)).ln();
        let grow_params = GrowParams {
            criterion: Criterion::Newton { lambda: self.lambda },
            max_depth: self.max_depth,
            min_samples_split: 2,
            min_samples_leaf: self.min_samples_leaf,
            min_child_weight: self.min_child_weight,
            features_per_split: x.ncols(),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut score = vec![init; groups];
        // Per group: sampled rows and sampled threats in this round.
        let (mut count, mut threats) = (vec![0u32; groups], vec![0u32; groups]);
        // Statistics at the representative rows, as the tree learner reads them.
        // Per representative row: gradient and hessian of the log-loss, and the rows drawn.
        let (mut gradient, mut hessian, mut drawn_rows) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        let mut trees = Vec::with_capacity(self.n_estimators);
        let mut importance = vec![0.0; x.ncols()];
        let take = ((self.subsample * n as f64).round() as usize).clamp(1, n);
        for _ in 0..self.n_estimators {
            count.iter_mut().for_each(|v| *v = 0);
            threats.iter_mut().for_each(|v| *v = 0);
            if take == n {
                for (i, &g) in group_of.iter().enumerate() {
                    count[g as usize] += 1;
                    threats[g as usize] += y[i] as u32;
                }
            } else {
                // Selection sampling (Knuth's algorithm S): exactly `take` rows. One ChaCha
                // draw seeds a SplitMix64 stream for the per-row draws (ChaCha per row was a
                // fifth of the boosting time).
                let mut mix = SplitMix64(rng.next_u64());
                let mut taken = 0usize;
                for (i, &g) in group_of.iter().enumerate() {
                    let remaining = (n - i) as u64;
                    // Branch-free: whether a row is drawn is a coin flip to the CPU.
                    let drawn = (((mix.next() >> 32) * remaining) >> 32 < (take - taken) as u64) as u32;
                    taken += drawn as usize;
                    count[g as usize] += drawn;
                    threats[g as usize] += drawn & y[i] as u32;
                }
            }
            let mut rows: Vec<u32> = Vec::with_capacity(groups);
            for (g, &rep) in reps.iter().enumerate() {
                if count[g] == 0 {
                    continue;
                }
                let (k, p) = (f64::from(count[g]), sigmoid(score[g]));
                let r = rep as usize;
                gradient[r] = k * p - f64::from(threats[g]);
                hessian[r] = k * (p * (1.0 - p)).max(1e-16);
                drawn_rows[r] = k;
                rows.push(rep);
            }
            let Grown { mut tree, gains, leaves } = grow(
                &data,
                &mut rows,
                Stats { gradient: &gradient, hessian: &hessian, count: &drawn_rows },
                &grow_params,
                &mut rng,
            );
            tree.scale_leaves(self.learning_rate);
            // Sampled groups: add their leaf's value directly; the others walk the tree.
            let mut updated = vec![false; groups];
            for &(start, end, leaf) in &leaves {
                let v = tree.nodes[leaf as usize].value;
                for &r in &rows[start..end] {
                    let g = group_of[r as usize] as usize;
                    score[g] += v;
                    updated[g] = true;
                }
            }
            for (g, &rep) in reps.iter().enumerate() {
                if !updated[g] {
                    score[g] += tree.predict_binned(data.row(rep as usize));
                }
            }
            importance.iter_mut().zip(&gains).for_each(|(i, g)| *i += g);
            trees.push(tree);
        }
        Ok(GbmModel { init, trees, importance: normalized(importance), scorer: ScorerCache::default() })
    }
}

impl GbmModel {
    pub fn staged_proba(&self, x: ArrayView2<'_, f64>, stages: &[usize]) -> Vec<Array1<f64>> {
        let mut f = vec![self.init; x.nrows()];
        let mut out = Vec::with_capacity(stages.len());
        let mut done = 0;
        for &k in stages {
            let k = k.min(self.trees.len());
            add_leaves(&self.trees, &self.scorer, Leaves::AsIs, x, done..k, &mut f);
            done = k;
            out.push(f.iter().map(|&z| sigmoid(z)).collect());
        }
        out
    }
}

impl Classifier for GbmModel {
    fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        let mut f = vec![self.init; x.nrows()];
        add_leaves(&self.trees, &self.scorer, Leaves::AsIs, x, 0..self.trees.len(), &mut f);
        Array1::from_iter(f.into_iter().map(sigmoid))
    }

    fn feature_importance(&self) -> Vec<f64> {
        self.importance.clone()
    }
}
