//! Model selection on the training part only: stratified k-fold cross-validation.

use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::data::split::stratified_folds;
use crate::error::Result;
use crate::metrics::{roc_auc, Confusion};
use crate::models::{Classifier, ModelSpec};

/// Mean and standard deviation of the fold scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvScores {
    pub folds: usize,
    pub f1_mean: f64,
    pub f1_std: f64,
    pub accuracy_mean: f64,
    pub accuracy_std: f64,
    pub roc_auc_mean: f64,
    pub roc_auc_std: f64,
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn rows(x: ArrayView2<'_, f64>, idx: &[usize]) -> Array2<f64> {
    x.select(Axis(0), idx)
}

/// Cross-validated scores at the 0.5 threshold. Folds and model fits take their seed from
/// `seed`, so the scores are reproducible.
pub fn cross_validate(spec: &ModelSpec, x: ArrayView2<'_, f64>, y: &[bool], k: usize, seed: u64) -> Result<CvScores> {
    let fold_of = stratified_folds(y, k, seed);
    let (mut f1, mut acc, mut auc) = (Vec::new(), Vec::new(), Vec::new());
    for fold in 0..k {
        let (test, train): (Vec<usize>, Vec<usize>) = (0..y.len()).partition(|&i| fold_of[i] == fold);
        let y_train: Vec<bool> = train.iter().map(|&i| y[i]).collect();
        let y_test: Vec<bool> = test.iter().map(|&i| y[i]).collect();
        let model = spec.fit(rows(x, &train).view(), &y_train, seed.wrapping_add(fold as u64))?;
        let scores = model.predict_proba(rows(x, &test).view()).to_vec();
        let c = Confusion::at(&scores, &y_test, 0.5);
        f1.push(c.f1());
        acc.push(c.accuracy());
        auc.push(roc_auc(&scores, &y_test));
        tracing::debug!(fold, f1 = c.f1(), "fold done");
    }
    let (f1_mean, f1_std) = mean_std(&f1);
    let (accuracy_mean, accuracy_std) = mean_std(&acc);
    let (roc_auc_mean, roc_auc_std) = mean_std(&auc);
    Ok(CvScores { folds: k, f1_mean, f1_std, accuracy_mean, accuracy_std, roc_auc_mean, roc_auc_std })
}
