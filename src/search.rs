//! Model selection on the training part only: candidates from a search space, scored by
//! stratified k-fold cross-validation, in parallel.
//!
//! Ensembles whose candidates differ only in size (`n_estimators`) share one fit per fold:
//! a forest of 32 trees is the first 32 trees of the forest of 256 (each tree draws from its
//! own seeded stream), and a boosted model of 64 rounds is the first 64 rounds of the one of
//! 256. Scores are exactly those of separate fits, for a fraction of the work.

use std::collections::BTreeMap;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::split::stratified_folds;
use crate::error::{Error, Result};
use crate::metrics::{average_precision, roc_auc, Confusion, MeanStd, ThresholdPolicy};
use crate::models::ModelSpec;
use crate::params::{in_open_unit, Check};

/// Metrics computed on every validation fold (threshold 0.5 where one is needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchKind {
    /// Every combination of the listed values.
    Grid,
    /// `budget` combinations drawn (seeded) from the grid.
    Random,
}

/// The cross-validated score that picks the winner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionMetric {
    F1,
    RocAuc,
    PrAuc,
    BalancedAccuracy,
}

impl SelectionMetric {
    pub fn name(self) -> &'static str {
        match self {
            SelectionMetric::F1 => "f1",
            SelectionMetric::RocAuc => "roc_auc",
            SelectionMetric::PrAuc => "pr_auc",
            SelectionMetric::BalancedAccuracy => "balanced_accuracy",
        }
    }
}

/// A search space: per family, hyperparameter -> a value or a list of values.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Space {
    /// Overrides `train.cv_folds` for this space.
    #[serde(default)]
    pub cv_folds: Option<usize>,
    pub families: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    pub seed: u64,
    /// Folds of the stratified cross-validation on the training part.
    pub cv_folds: usize,
    pub metric: SelectionMetric,
    pub search: SearchKind,
    /// Candidates drawn by random search.
    pub budget: usize,
    /// Which entry of `spaces` to search; `auto` = the dataset's own `space`, else `default`.
    pub space: String,
    pub spaces: BTreeMap<String, Space>,
    /// Decision threshold of the saved model.
    pub threshold: ThresholdPolicy,
}

impl Check for TrainParams {
    fn check(&self) -> std::result::Result<(), String> {
        if self.budget == 0 {
            return Err("`budget` must be at least 1".into());
        }
        match self.threshold {
            ThresholdPolicy::TargetRecall { recall: v } | ThresholdPolicy::Fixed { value: v } => {
                in_open_unit("threshold", v)?
            }
            ThresholdPolicy::MaxF1 => {}
        }
        if self.space == AUTO {
            if self.cv_folds < 2 {
                return Err(format!("`cv_folds` must be at least 2, got {}", self.cv_folds));
            }
            return Ok(()); // the space is checked once the dataset is known: see `Plan::resolve`
        }
        Plan::resolve(self, None, 0).map(|_| ())
    }
}

/// `train.space` value that defers to the dataset's `space`.
pub const AUTO: &str = "auto";

/// What `train` searches, resolved once from `train` params and the dataset: the space, its
/// candidates, the folds and the threads. Nothing else re-derives these.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The space searched (never `auto`).
    pub space: String,
    pub candidates: Vec<ModelSpec>,
    pub folds: usize,
    pub threads: usize,
    pub seed: u64,
    pub metric: SelectionMetric,
    pub search: SearchKind,
    pub threshold: ThresholdPolicy,
}

impl Plan {
    /// `dataset_space` is the dataset's own `space` entry, used when `train.space` is `auto`.
    /// `threads` is a machine setting (0 = one per core), not a param: the model is the same
    /// whatever the count.
    pub fn resolve(p: &TrainParams, dataset_space: Option<&str>, threads: usize) -> std::result::Result<Plan, String> {
        let space = if p.space == AUTO { dataset_space.unwrap_or("default").to_owned() } else { p.space.clone() };
        let chosen = p.spaces.get(&space).ok_or_else(|| {
            let known: Vec<&str> = p.spaces.keys().map(String::as_str).collect();
            format!("`space: {space}` is not in `spaces` (known: {})", known.join(", "))
        })?;
        let folds = chosen.cv_folds.unwrap_or(p.cv_folds);
        if folds < 2 {
            return Err(format!("`cv_folds` must be at least 2, got {folds}"));
        }
        let candidates = candidates(&space, chosen, p.search, p.budget, p.seed)?;
        Ok(Plan {
            space,
            candidates,
            folds,
            threads,
            seed: p.seed,
            metric: p.metric,
            search: p.search,
            threshold: p.threshold,
        })
    }
}

pub const CV_METRICS: &[&str] = &["f1", "roc_auc", "pr_auc", "balanced_accuracy", "accuracy"];

/// One candidate's cross-validated result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateResult {
    pub id: usize,
    pub family: String,
    pub params: serde_json::Value,
    pub scores: BTreeMap<String, MeanStd>,
    /// Wall seconds of its fits over all folds; for ensembles that share a fit with larger
    /// candidates (see the module doc), the shared fit's time.
    pub fit_seconds: f64,
    pub shared_fit: bool,
    /// Out-of-fold scores: each training row scored by the fit that did not see it. The
    /// decision threshold is chosen on these, without refitting.
    #[serde(skip)]
    pub oof: Vec<f64>,
}

/// Expand the chosen space into candidates (grid, or a seeded random draw of `budget`).
fn candidates(
    name: &str,
    space: &Space,
    search: SearchKind,
    budget: usize,
    seed: u64,
) -> std::result::Result<Vec<ModelSpec>, String> {
    let mut all = Vec::new();
    for (family, grid) in &space.families {
        let mut combos: Vec<serde_json::Map<String, serde_json::Value>> = vec![serde_json::Map::new()];
        for (key, value) in grid {
            let values = match value {
                serde_json::Value::Array(vs) if vs.is_empty() => return Err(format!("{family}.{key}: empty list")),
                serde_json::Value::Array(vs) => vs.clone(),
                v => vec![v.clone()],
            };
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.insert(key.clone(), v.clone());
                        c
                    })
                })
                .collect();
        }
        for c in combos {
            all.push(ModelSpec::from_json(family, serde_json::Value::Object(c))?);
        }
    }
    if all.is_empty() {
        return Err(format!("space `{name}` has no families"));
    }
    if search == SearchKind::Random && budget < all.len() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut idx: Vec<usize> = (0..all.len()).collect();
        idx.shuffle(&mut rng);
        let mut keep: Vec<usize> = idx[..budget].to_vec();
        keep.sort_unstable();
        all = keep.into_iter().map(|i| all[i].clone()).collect();
    }
    Ok(all)
}

/// Validation-fold scores for each metric in [`CV_METRICS`].
pub fn fold_scores(scores: &[f64], y: &[bool]) -> [f64; 5] {
    let c = Confusion::at(scores, y, 0.5);
    [c.f1(), roc_auc(scores, y), average_precision(scores, y), c.balanced_accuracy(), c.accuracy()]
}

struct Fold {
    /// Rows of the validation part, in the full training matrix.
    val: Vec<usize>,
    x_train: Array2<f64>,
    y_train: Vec<bool>,
    x_val: Array2<f64>,
    y_val: Vec<bool>,
}

/// Candidates that share fits: same family and parameters but for the ensemble size.
struct Group {
    /// (candidate index, ensemble size), sizes ascending.
    members: Vec<(usize, usize)>,
    spec: ModelSpec,
}

fn groups(cands: &[ModelSpec]) -> Vec<Group> {
    let mut by_key: BTreeMap<String, Group> = BTreeMap::new();
    for (i, spec) in cands.iter().enumerate() {
        let key = match spec.stages() {
            Some(_) => serde_json::to_string(&spec.with_stages(0)).expect("specs serialize"),
            None => format!("single-{i}"),
        };
        let g = by_key.entry(key).or_insert_with(|| Group { members: Vec::new(), spec: spec.clone() });
        g.members.push((i, spec.stages().unwrap_or(1)));
    }
    let mut out: Vec<Group> = by_key.into_values().collect();
    for g in &mut out {
        g.members.sort_by_key(|&(i, n)| (n, i));
        let largest = g.members.last().expect("non-empty").1;
        g.spec = g.spec.with_stages(largest);
    }
    out.sort_by_key(|g| g.members[0].0);
    out
}

/// Cross-validate every candidate. Results come back in candidate order; the same seed,
/// data and candidates give the same scores whatever the thread count.
pub fn cross_validate(
    cands: &[ModelSpec],
    x: ArrayView2<'_, f64>,
    y: &[bool],
    k: usize,
    seed: u64,
    threads: usize,
) -> Result<Vec<CandidateResult>> {
    let fold_of = stratified_folds(y, k, seed);
    let folds: Vec<Fold> = (0..k)
        .map(|f| {
            let (val, train): (Vec<usize>, Vec<usize>) = (0..y.len()).partition(|&i| fold_of[i] == f);
            Fold {
                x_train: x.select(Axis(0), &train),
                y_train: train.iter().map(|&i| y[i]).collect(),
                x_val: x.select(Axis(0), &val),
                y_val: val.iter().map(|&i| y[i]).collect(),
                val,
            }
        })
        .collect();
    let groups = groups(cands);
    let tasks: Vec<(usize, usize)> = (0..groups.len()).flat_map(|g| (0..k).map(move |f| (g, f))).collect();

    let bar = ProgressBar::new(tasks.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} fits, {elapsed}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("cross-validating {} candidates x {k} folds", cands.len()));

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Model(format!("thread pool: {e}")))?;
    // Per task: (group, fold, seconds, per member: fold scores).
    // Per task: (group, fold, seconds, per member: fold scores and validation predictions).
    type TaskOut = (usize, usize, f64, Vec<([f64; 5], Vec<f64>)>);
    let results: Vec<TaskOut> = pool.install(|| {
        tasks
            .par_iter()
            .map(|&(g, f)| {
                let group = &groups[g];
                let fold = &folds[f];
                let started = Instant::now();
                let model = group.spec.fit(fold.x_train.view(), &fold.y_train, seed.wrapping_add(f as u64))?;
                let secs = started.elapsed().as_secs_f64();
                let sizes: Vec<usize> = group.members.iter().map(|&(_, n)| n).collect();
                let staged = model.staged_proba(fold.x_val.view(), &sizes);
                let scores = staged
                    .into_iter()
                    .map(|s| {
                        let s = s.to_vec();
                        (fold_scores(&s, &fold.y_val), s)
                    })
                    .collect();
                bar.inc(1);
                Ok((g, f, secs, scores))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    bar.finish_and_clear();

    let mut per_cand: Vec<Vec<[f64; 5]>> = vec![Vec::new(); cands.len()];
    let mut oof: Vec<Vec<f64>> = vec![vec![0.0; y.len()]; cands.len()];
    let mut seconds = vec![0.0; cands.len()];
    for (g, f, secs, scores) in results {
        for (&(c, _), (s, pred)) in groups[g].members.iter().zip(scores) {
            per_cand[c].push(s);
            seconds[c] += secs;
            for (&row, p) in folds[f].val.iter().zip(pred) {
                oof[c][row] = p;
            }
        }
    }
    let shared: Vec<bool> = {
        let mut v = vec![false; cands.len()];
        for g in &groups {
            for &(c, _) in &g.members {
                v[c] = g.members.len() > 1;
            }
        }
        v
    };
    Ok(cands
        .iter()
        .zip(oof)
        .enumerate()
        .map(|(c, (spec, oof))| {
            let scores = CV_METRICS
                .iter()
                .enumerate()
                .map(|(m, name)| {
                    let v: Vec<f64> = per_cand[c].iter().map(|s| s[m]).collect();
                    let mean = v.iter().sum::<f64>() / v.len() as f64;
                    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
                    (name.to_string(), MeanStd { mean, std })
                })
                .collect();
            CandidateResult {
                id: c,
                family: spec.name().to_owned(),
                params: spec.params_json(),
                scores,
                fit_seconds: seconds[c],
                shared_fit: shared[c],
                oof,
            }
        })
        .collect())
}

/// Candidates best first by `metric` (mean), ties by candidate order.
pub fn rank(mut results: Vec<CandidateResult>, metric: &str) -> Vec<CandidateResult> {
    // An undefined score (a fold with one class) ranks last, never first.
    let key = |r: &CandidateResult| Some(r.scores[metric].mean).filter(|v| !v.is_nan()).unwrap_or(f64::NEG_INFINITY);
    results.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.id.cmp(&b.id)));
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(yaml: &str) -> TrainParams {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn plan(p: &TrainParams) -> std::result::Result<Plan, String> {
        Plan::resolve(p, None, 1)
    }

    const REFERENCE: &str = "
seed: 1
cv_folds: 5
metric: f1
search: grid
budget: 10
space: reference
threshold: {policy: max_f1}
spaces:
  reference:
    cv_folds: 3
    families:
      decision_tree: {criterion: [gini, entropy, log_loss]}
      random_forest: {n_estimators: [8, 16, 32, 128, 256]}
      gbm: {learning_rate: [0.1, 0.01, 0.05, 0.001], subsample: [0.6, 0.7, 0.75, 0.85, 0.9], n_estimators: [8, 16, 32, 64, 128, 256]}
      logistic: {}
      adaboost: {learning_rate: [0.1, 0.01, 0.001], n_estimators: [8, 16, 32, 64, 128, 256]}
";

    #[test]
    fn the_reference_space_has_the_reference_candidates() {
        let p = params(REFERENCE);
        let plan = plan(&p).unwrap();
        let c = plan.candidates;
        assert_eq!(c.len(), 3 + 5 + 120 + 1 + 18);
        assert_eq!(plan.folds, 3);
        // 147 candidates share fits: 3 trees + 1 forest + 20 boosted + 1 logistic + 3 adaboost.
        assert_eq!(groups(&c).len(), 3 + 1 + 20 + 1 + 3);
    }

    #[test]
    fn random_search_draws_its_budget_reproducibly() {
        let p = params(&REFERENCE.replace("search: grid", "search: random"));
        let a = plan(&p).unwrap().candidates;
        assert_eq!(a.len(), 10);
        assert_eq!(a, plan(&p).unwrap().candidates);
        let other = params(&REFERENCE.replace("search: grid", "search: random").replace("seed: 1", "seed: 2"));
        assert_ne!(a, plan(&other).unwrap().candidates);
    }

    #[test]
    fn bad_hyperparameters_are_named() {
        let p = params(&REFERENCE.replace("logistic: {}", "logistic: {alpha: [1.0], max_iter: 5}"));
        assert!(plan(&p).unwrap_err().contains("logistic: unknown field `max_iter`"));
        let p = params(&REFERENCE.replace("space: reference", "space: nope"));
        assert!(plan(&p).unwrap_err().contains("`space: nope` is not in `spaces`"));
    }

    #[test]
    fn ranking_puts_undefined_scores_last() {
        let r = |id, f1: f64| CandidateResult {
            id,
            family: "x".into(),
            params: serde_json::Value::Null,
            scores: BTreeMap::from([("f1".to_string(), MeanStd { mean: f1, std: 0.0 })]),
            fit_seconds: 0.0,
            shared_fit: false,
            oof: vec![],
        };
        let ranked = rank(vec![r(0, f64::NAN), r(1, 0.5), r(2, 0.9), r(3, 0.9)], "f1");
        assert_eq!(ranked.iter().map(|c| c.id).collect::<Vec<_>>(), [2, 3, 1, 0]);
    }
}
