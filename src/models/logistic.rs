//! Logistic regression, fitted with linfa-logistic (L-BFGS, L2 penalty).
//!
//! Features are standardized for the fit (unscaled byte counts would stall the solver) and
//! the scaling is folded back into the coefficients, so the stored model is plain
//! `sigmoid(intercept + x·w)` on raw features. linfa's positive class is the most frequent
//! label, not necessarily the threat: the sign is fixed here so scores are always P(threat).

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::checked::{Checked, Validate};
use super::{Classifier, Family};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogisticParams {
    /// L2 penalty strength (linfa's `alpha`).
    pub alpha: f64,
    pub max_iterations: u64,
    /// Stop when the gradient of the MEAN log-loss is this small. (linfa minimizes the summed
    /// loss, whose gradient grows with the row count: the tolerance is scaled by it, so the
    /// solver stops at the same precision on 8k rows as on 126k.)
    pub gradient_tolerance: f64,
}

impl Default for LogisticParams {
    fn default() -> Self {
        LogisticParams { alpha: 1.0, max_iterations: 200, gradient_tolerance: 1e-3 }
    }
}

impl Validate for LogisticParams {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.alpha < 0.0 || self.max_iterations == 0 || self.gradient_tolerance <= 0.0 {
            return Err("alpha must be >= 0, max_iterations and gradient_tolerance > 0".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub intercept: f64,
    pub coefficients: Vec<f64>,
    /// |coefficient| on standardized features.
    pub importance: Vec<f64>,
}

super::checked::param_guard!(LogisticParams);
super::checked::predict_inplace!(LogisticModel);

impl Family for Checked<LogisticParams> {
    type Model = LogisticModel;

    fn fit(&self, x: ArrayView2<'_, f64>, y: &[bool], _seed: u64) -> Result<LogisticModel> {
        let mean = x.mean_axis(Axis(0)).ok_or_else(|| Error::Model("no training rows".into()))?;
        let std = x.std_axis(Axis(0), 0.0).mapv(|s| if s > 1e-12 { s } else { 1.0 });
        let scaled: Array2<f64> = (&x - &mean) / &std;
        let dataset = Dataset::new(scaled, Array1::from(y.to_vec()));
        let fitted = LogisticRegression::default()
            .alpha(self.alpha)
            .max_iterations(self.max_iterations)
            .gradient_tolerance(self.gradient_tolerance * y.len() as f64)
            .fit(&dataset)
            .map_err(|e| Error::Model(format!("logistic regression: {e}")))?;
        let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
        let w_std = fitted.params().mapv(|w| w * sign);
        let coefficients: Vec<f64> = w_std.iter().zip(&std).map(|(w, s)| w / s).collect();
        let shift: f64 = coefficients.iter().zip(&mean).map(|(w, m)| w * m).sum();
        Ok(LogisticModel {
            intercept: fitted.intercept() * sign - shift,
            coefficients,
            importance: w_std.iter().map(|w| w.abs()).collect(),
        })
    }
}

impl Classifier for LogisticModel {
    fn predict_proba(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        let w = ndarray::ArrayView1::from(&self.coefficients);
        (x.dot(&w) + self.intercept).mapv(|z| 1.0 / (1.0 + (-z).exp()))
    }

    fn feature_importance(&self) -> Vec<f64> {
        self.importance.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn scores_are_threat_probabilities_whatever_the_majority() {
        // Threat (true) is the MINORITY: linfa would call `false` positive.
        let x = array![[0.0, 100.0], [0.1, 110.0], [0.2, 90.0], [0.3, 95.0], [0.9, 1000.0], [1.0, 1200.0]];
        let y = [false, false, false, false, true, true];
        let p = LogisticParams { alpha: 0.1, max_iterations: 200, gradient_tolerance: 1e-6 };
        let m = linfa::ParamGuard::check(p).unwrap().fit(x.view(), &y, 0).unwrap();
        let s = m.predict_proba(x.view());
        assert!(s[5] > 0.5 && s[0] < 0.5, "scores {s}");
        assert_eq!(m.feature_importance().len(), 2);
    }
}
