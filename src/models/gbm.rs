//! Gradient-boosted trees for the logistic loss, second order (Newton leaves with an L2
//! penalty, as XGBoost), on our histogram learner; optional row subsampling per tree
//! (stochastic gradient boosting, scikit-learn's `subsample`).

use ndarray::{Array1, ArrayView2};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::decision_tree::check_rows;
use super::tree::{grow, normalized, Grown, Binned, Criterion, GrowParams, Tree};
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

impl GbmParams {
    pub fn check(&self) -> std::result::Result<(), String> {
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

impl Family for GbmParams {
    type Model = GbmModel;

    fn fit(&self, x: ArrayView2<'_, f64>, y: &[bool], seed: u64) -> Result<GbmModel> {
        check_rows(x, y)?;
        let data = Binned::new(x, self.max_bins);
        let n = y.len();
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
        let mut score = vec![init; n];
        let (mut g, mut h) = (vec![0.0; n], vec![0.0; n]);
        let mut trees = Vec::with_capacity(self.n_estimators);
        let mut importance = vec![0.0; x.ncols()];
        let take = ((self.subsample * n as f64).round() as usize).clamp(1, n);
        for _ in 0..self.n_estimators {
            // Selection sampling (Knuth's algorithm S): exactly `take` rows, already in order.
            // One ChaCha draw seeds a SplitMix64 stream for the per-row draws: ChaCha per row
            // was a fifth of the boosting time.
            let mut rows: Vec<u32> = Vec::with_capacity(take);
            let mut mix = SplitMix64(rng.next_u64());
            for i in 0..n {
                let remaining = (n - i) as u64;
                if take == n || ((mix.next() >> 32) * remaining) >> 32 < (take - rows.len()) as u64 {
                    rows.push(i as u32);
                }
            }
            // Gradients are needed for the sampled rows only.
            for &r in &rows {
                let i = r as usize;
                let p = sigmoid(score[i]);
                g[i] = p - if y[i] { 1.0 } else { 0.0 };
                h[i] = (p * (1.0 - p)).max(1e-16);
            }
            let Grown { mut tree, gains, leaves } = grow(&data, &mut rows, &g, &h, &grow_params, &mut rng);
            tree.scale_leaves(self.learning_rate);
            // Sampled rows: add their leaf's value directly; the others walk the tree.
            let mut in_sample = vec![take == n; if take == n { 0 } else { n }];
            for &(start, end, leaf) in &leaves {
                let v = tree.nodes[leaf as usize].value;
                for &r in &rows[start..end] {
                    score[r as usize] += v;
                    if take < n {
                        in_sample[r as usize] = true;
                    }
                }
            }
            if take < n {
                for (i, s) in score.iter_mut().enumerate().filter(|(i, _)| !in_sample[*i]) {
                    *s += tree.predict_binned(data.row(i));
                }
            }
            importance.iter_mut().zip(&gains).for_each(|(i, g)| *i += g);
            trees.push(tree);
        }
        Ok(GbmModel { init, trees, importance: normalized(importance) })
    }
}

impl GbmModel {
    pub fn staged_proba(&self, x: ArrayView2<'_, f64>, stages: &[usize]) -> Vec<Array1<f64>> {
        let mut f = vec![self.init; x.nrows()];
        let mut out = Vec::with_capacity(stages.len());
        let mut done = 0;
        for &k in stages {
            let k = k.min(self.trees.len());
            for (i, row) in x.rows().into_iter().enumerate() {
                f[i] += self.trees[done..k].iter().map(|t| t.predict_row(|j| row[j])).sum::<f64>();
            }
            done = k;
            out.push(f.iter().map(|&z| sigmoid(z)).collect());
        }
        out
    }
}

impl Classifier for GbmModel {
    fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        let out: Vec<f64> = x
            .rows()
            .into_iter()
            .map(|row| sigmoid(self.init + self.trees.iter().map(|t| t.predict_row(|j| row[j])).sum::<f64>()))
            .collect();
        Array1::from(out)
    }

    fn feature_importance(&self) -> Vec<f64> {
        self.importance.clone()
    }
}
