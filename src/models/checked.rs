//! Hyperparameters as linfa models them: unchecked params (what `params.yaml` holds) become
//! [`Checked`] params through linfa's [`ParamGuard`], and only checked params fit. The checked
//! type has a private field, so no code outside this module can make one without the check.
//!
//! [`Seeded`] bridges our families to linfa's [`Fit`] (linfa's `fit` takes no seed; ours take
//! every random choice from `params.yaml`), so `DatasetBase::cross_validate` and
//! linfa-ensemble's `EnsembleLearner` can drive them.

use std::ops::Deref;

use linfa::prelude::*;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use serde::Serialize;

type Result<T, E> = std::result::Result<T, E>;

use super::Family;

/// Range checks of one family's hyperparameters. The message names the key.
pub trait Validate {
    fn validate(&self) -> std::result::Result<(), String>;
}

/// Hyperparameters that passed [`Validate`]. Serializes as the params themselves.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
#[repr(transparent)]
pub struct Checked<P>(P);

impl<P> Deref for Checked<P> {
    type Target = P;
    fn deref(&self) -> &P {
        &self.0
    }
}

impl<P> Checked<P> {
    /// Only for `param_guard!`, right after the check.
    #[doc(hidden)]
    pub fn new_unchecked(p: P) -> Checked<P> {
        Checked(p)
    }
}

impl<P: Validate + Clone> Checked<P> {
    /// Checked params with a change applied, checked again.
    pub fn with(&self, change: impl FnOnce(&mut P)) -> std::result::Result<Checked<P>, String> {
        let mut p = self.0.clone();
        change(&mut p);
        p.validate()?;
        Ok(Checked(p))
    }
}

/// `ParamGuard` for a family's unchecked params (a foreign trait needs one impl per type):
/// each family file invokes it for its own params type.
macro_rules! param_guard {
    ($($t:ty),* $(,)?) => {$(
        impl linfa::ParamGuard for $t {
            type Checked = $crate::models::checked::Checked<$t>;
            type Error = linfa::Error;

            fn check_ref(&self) -> std::result::Result<&Self::Checked, linfa::Error> {
                $crate::models::checked::Validate::validate(self).map_err(linfa::Error::Parameters)?;
                // SAFETY: `Checked<P>` is `#[repr(transparent)]` over `P`, so a `&P` is a
                // valid `&Checked<P>`; the check above is what the type promises.
                Ok(unsafe { &*(self as *const $t as *const Self::Checked) })
            }

            fn check(self) -> std::result::Result<Self::Checked, linfa::Error> {
                $crate::models::checked::Validate::validate(&self).map_err(linfa::Error::Parameters)?;
                Ok($crate::models::checked::Checked::new_unchecked(self))
            }
        }
    )*};
}

pub(crate) use param_guard;

/// Checked params with the seed of their random choices: a linfa [`Fit`] on
/// `DatasetBase<Array2<f64>, Array1<bool>>` (true = threat).
#[derive(Debug, Clone, PartialEq)]
pub struct Seeded<F> {
    pub params: F,
    pub seed: u64,
}

impl<F: Family> Seeded<F> {
    fn fit_view(&self, x: ArrayView2<'_, f64>, y: impl Iterator<Item = bool>) -> Result<F::Model, linfa::Error> {
        let y: Vec<bool> = y.collect();
        self.params.fit(x, &y, self.seed).map_err(|e| linfa::Error::Parameters(e.to_string()))
    }
}

impl<F: Family> Fit<Array2<f64>, Array1<bool>, linfa::Error> for Seeded<F> {
    type Object = F::Model;

    fn fit(&self, dataset: &DatasetBase<Array2<f64>, Array1<bool>>) -> Result<F::Model, linfa::Error> {
        self.fit_view(dataset.records.view(), dataset.targets.iter().copied())
    }
}

/// Views, as `DatasetBase::cross_validate` hands each fold.
impl<'a, F: Family> Fit<ArrayView2<'a, f64>, ArrayView1<'a, bool>, linfa::Error> for Seeded<F> {
    type Object = F::Model;

    fn fit(&self, dataset: &DatasetBase<ArrayView2<'a, f64>, ArrayView1<'a, bool>>) -> Result<F::Model, linfa::Error> {
        self.fit_view(dataset.records.view(), dataset.targets.iter().copied())
    }
}

/// linfa's `PredictInplace` for a fitted model: labels at 0.5 (`Array1<bool>`), or the
/// probability of the threat class (`Array1<f64>`). Served models use the bundle's threshold.
/// Each family file invokes it for its own model type.
macro_rules! predict_inplace {
    ($($t:ty),* $(,)?) => {$(
        impl linfa::traits::PredictInplace<ndarray::Array2<f64>, ndarray::Array1<bool>> for $t {
            fn predict_inplace(&self, x: &ndarray::Array2<f64>, y: &mut ndarray::Array1<bool>) {
                let p = $crate::models::Classifier::predict_proba(self, x.view());
                y.iter_mut().zip(p.iter()).for_each(|(y, p)| *y = *p >= 0.5);
            }
            fn default_target(&self, x: &ndarray::Array2<f64>) -> ndarray::Array1<bool> {
                ndarray::Array1::from_elem(x.nrows(), false)
            }
        }

        impl<'a> linfa::traits::PredictInplace<ndarray::ArrayView2<'a, f64>, ndarray::Array1<bool>> for $t {
            fn predict_inplace(&self, x: &ndarray::ArrayView2<'a, f64>, y: &mut ndarray::Array1<bool>) {
                let p = $crate::models::Classifier::predict_proba(self, x.view());
                y.iter_mut().zip(p.iter()).for_each(|(y, p)| *y = *p >= 0.5);
            }
            fn default_target(&self, x: &ndarray::ArrayView2<'a, f64>) -> ndarray::Array1<bool> {
                ndarray::Array1::from_elem(x.nrows(), false)
            }
        }

        impl linfa::traits::PredictInplace<ndarray::Array2<f64>, ndarray::Array1<f64>> for $t {
            fn predict_inplace(&self, x: &ndarray::Array2<f64>, y: &mut ndarray::Array1<f64>) {
                y.assign(&$crate::models::Classifier::predict_proba(self, x.view()));
            }
            fn default_target(&self, x: &ndarray::Array2<f64>) -> ndarray::Array1<f64> {
                ndarray::Array1::zeros(x.nrows())
            }
        }
    )*};
}

pub(crate) use predict_inplace;
