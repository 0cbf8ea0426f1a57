//! A single CART classification tree (our histogram learner, see [`super::tree`]).

use ndarray::{Array1, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::checked::{Checked, Validate};
use super::tree::{
    add_leaves, grow, normalized, Binned, Criterion, GrowParams, Grown, Leaves, ScorerCache, StatColumns, Tree,
};
use super::{Classifier, Family};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitCriterion {
    Gini,
    Entropy,
    /// Same as entropy (scikit-learn's name for it since 1.1).
    LogLoss,
}

impl SplitCriterion {
    pub fn criterion(self) -> Criterion {
        match self {
            SplitCriterion::Gini => Criterion::Gini,
            SplitCriterion::Entropy | SplitCriterion::LogLoss => Criterion::Entropy,
        }
    }
}

/// How many features a split may look at.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MaxFeatures {
    /// `sqrt`, `log2` or `all`.
    Rule(FeatureRule),
    /// A fraction of the features (0, 1].
    Fraction(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureRule {
    Sqrt,
    Log2,
    All,
}

impl MaxFeatures {
    pub fn count(self, n: usize) -> usize {
        let k = match self {
            MaxFeatures::Rule(FeatureRule::Sqrt) => (n as f64).sqrt().floor() as usize,
            MaxFeatures::Rule(FeatureRule::Log2) => (n as f64).log2().floor() as usize,
            MaxFeatures::Rule(FeatureRule::All) => n,
            MaxFeatures::Fraction(f) => (f * n as f64).round() as usize,
        };
        k.clamp(1, n.max(1))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecisionTreeParams {
    pub criterion: SplitCriterion,
    /// `None`: grow until leaves are pure.
    pub max_depth: Option<usize>,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    pub max_features: MaxFeatures,
    pub max_bins: usize,
}

impl Default for DecisionTreeParams {
    fn default() -> Self {
        DecisionTreeParams {
            criterion: SplitCriterion::Gini,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: MaxFeatures::Rule(FeatureRule::All),
            max_bins: 255,
        }
    }
}

impl Validate for DecisionTreeParams {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.min_samples_leaf == 0 || self.min_samples_split < 2 {
            return Err("min_samples_leaf must be >= 1 and min_samples_split >= 2".into());
        }
        if let MaxFeatures::Fraction(f) = self.max_features {
            if !(f > 0.0 && f <= 1.0) {
                return Err(format!("max_features fraction must be in (0, 1], got {f}"));
            }
        }
        Ok(())
    }
}

impl DecisionTreeParams {
    pub(crate) fn grow_params(&self, n_features: usize) -> GrowParams {
        GrowParams {
            criterion: self.criterion.criterion(),
            max_depth: self.max_depth.unwrap_or(usize::MAX),
            min_samples_split: self.min_samples_split,
            min_samples_leaf: self.min_samples_leaf,
            min_child_weight: 0.0,
            features_per_split: self.max_features.count(n_features),
        }
    }
}

/// Classification statistics summed per group of identical rows, stored at each group's
/// representative row: gradient Σ weight × is_threat, hessian Σ weight, and Σ count. `weight_of(row)` gives a
/// row's weight and count (a bootstrap draws a row several times: weight = count = draws).
/// Returns the stats and the representatives with positive weight, ascending.
pub(crate) fn group_stats(
    n: usize,
    group_of: &[u32],
    reps: &[u32],
    y: &[bool],
    weight_of: impl Fn(usize) -> (f64, f64),
) -> (StatColumns, Vec<u32>) {
    let mut s = StatColumns::zeros(n);
    for r in 0..n {
        let (w, count) = weight_of(r);
        if w == 0.0 && count == 0.0 {
            continue;
        }
        let rep = reps[group_of[r] as usize] as usize;
        if y[r] {
            s.gradient[rep] += w;
        }
        s.hessian[rep] += w;
        s.count[rep] += count;
    }
    let rows = reps.iter().copied().filter(|&r| s.count[r as usize] > 0.0).collect();
    (s, rows)
}

pub(crate) fn check_rows(x: ArrayView2<'_, f64>, y: &[bool]) -> Result<()> {
    if x.nrows() == 0 || x.nrows() != y.len() {
        return Err(Error::Model(format!("{} rows of features but {} labels", x.nrows(), y.len())));
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(Error::Model("features contain NaN or infinity".into()));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionTreeModel {
    pub tree: Tree,
    pub importance: Vec<f64>,
    #[serde(skip)]
    scorer: ScorerCache,
}

super::checked::param_guard!(DecisionTreeParams);
super::checked::predict_inplace!(DecisionTreeModel);

impl Family for Checked<DecisionTreeParams> {
    type Model = DecisionTreeModel;

    fn fit(&self, x: ArrayView2<'_, f64>, y: &[bool], seed: u64) -> Result<DecisionTreeModel> {
        check_rows(x, y)?;
        let data = Binned::new(x, self.max_bins);
        let (group_of, reps) = data.groups();
        let (stats, mut rows) = group_stats(y.len(), &group_of, &reps, y, |_| (1.0, 1.0));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let Grown { tree, gains, .. } = grow(&data, &mut rows, stats.view(), &self.grow_params(x.ncols()), &mut rng);
        Ok(DecisionTreeModel { tree, importance: normalized(gains), scorer: ScorerCache::default() })
    }
}

impl Classifier for DecisionTreeModel {
    fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        let mut p = vec![0.0; x.nrows()];
        add_leaves(std::slice::from_ref(&self.tree), &self.scorer, Leaves::AsIs, x, 0..1, &mut p);
        Array1::from(p)
    }

    fn feature_importance(&self) -> Vec<f64> {
        self.importance.clone()
    }
}
