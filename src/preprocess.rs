//! Preprocessing fitted on the training part only, then applied to any data: imputation of
//! missing values now; categorical encoders plug in here as further column steps.

use ndarray::Array2;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::params::ImputeStrategy;
use crate::schema::{ColumnType, Schema};

/// What to do with one feature column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureStep {
    pub name: String,
    /// Value substituted for a missing cell (a statistic of the training part).
    pub fill: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    pub impute: ImputeStrategy,
    pub features: Vec<FeatureStep>,
}

/// Numeric values of a column (missing and NaN as `None`).
fn numeric(col: &Column, part: &str) -> Result<Vec<Option<f64>>> {
    let values = match col.dtype() {
        DataType::Int64 => col.i64().expect("dtype").iter().map(|v| v.map(|i| i as f64)).collect(),
        DataType::Float64 => col.f64().expect("dtype").iter().map(|v| v.filter(|f| !f.is_nan())).collect(),
        other => {
            return Err(Error::artifact(
                part,
                format!("feature `{}` holds {other}, not numbers: run the validate stage first", col.name()),
            ))
        }
    };
    Ok(values)
}

fn statistic(strategy: ImputeStrategy, mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match strategy {
        ImputeStrategy::Mean => v.iter().sum::<f64>() / v.len() as f64,
        ImputeStrategy::Median => {
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        }
        ImputeStrategy::MostFrequent => {
            // Sorted, so equal values are adjacent; ties go to the smallest value.
            let (mut best, mut best_n, mut i) = (v[0], 0, 0);
            while i < v.len() {
                let j = v[i..].iter().position(|&x| x != v[i]).map_or(v.len(), |p| i + p);
                if j - i > best_n {
                    best = v[i];
                    best_n = j - i;
                }
                i = j;
            }
            best
        }
    }
}

impl Preprocessor {
    /// Fit on the training part. `part` names the file in errors.
    pub fn fit(schema: &Schema, train: &DataFrame, strategy: ImputeStrategy, part: &str) -> Result<Self> {
        let mut features = Vec::new();
        for spec in schema.features() {
            if !spec.kind.is_numeric() {
                return Err(Error::artifact(
                    part,
                    format!(
                        "feature `{}` is {}: only numeric features are supported so far (encoders are planned)",
                        spec.name, spec.kind
                    ),
                ));
            }
            let col = train
                .column(&spec.name)
                .map_err(|_| Error::artifact(part, format!("feature `{}` is missing", spec.name)))?;
            let present: Vec<f64> = numeric(col, part)?.into_iter().flatten().collect();
            if present.is_empty() {
                return Err(Error::artifact(
                    part,
                    format!("feature `{}` has no values to learn imputation from", spec.name),
                ));
            }
            let mut fill = statistic(strategy, present);
            if spec.kind == ColumnType::Integer && strategy != ImputeStrategy::Mean {
                fill = fill.round();
            }
            features.push(FeatureStep { name: spec.name.clone(), fill });
        }
        Ok(Preprocessor { impute: strategy, features })
    }

    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }

    /// Feature matrix of a frame, and how many cells were imputed.
    pub fn transform(&self, df: &DataFrame, part: &str) -> Result<(Array2<f64>, usize)> {
        let mut x = Array2::<f64>::zeros((df.height(), self.features.len()));
        let mut imputed = 0;
        for (j, step) in self.features.iter().enumerate() {
            let col = df
                .column(&step.name)
                .map_err(|_| Error::artifact(part, format!("feature `{}` is missing", step.name)))?;
            for (i, v) in numeric(col, part)?.into_iter().enumerate() {
                x[[i, j]] = v.unwrap_or_else(|| {
                    imputed += 1;
                    step.fill
                });
            }
        }
        Ok((x, imputed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        assert_eq!(statistic(ImputeStrategy::Median, vec![3.0, 1.0, 2.0, 10.0]), 2.5);
        assert_eq!(statistic(ImputeStrategy::Mean, vec![1.0, 2.0, 6.0]), 3.0);
        assert_eq!(statistic(ImputeStrategy::MostFrequent, vec![1.0, 2.0, 2.0, -1.0, -1.0, 2.0]), 2.0);
        assert_eq!(statistic(ImputeStrategy::MostFrequent, vec![0.0, 1.0]), 0.0);
    }
}
