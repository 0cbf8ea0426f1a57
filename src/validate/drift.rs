//! Drift of a batch against the profile of the training data.
//!
//! The same code serves the pipeline (test part vs training part) and monitoring (a new batch
//! vs the stored profile): the profile keeps, per feature, what the tests need — the empirical
//! CDF of a numeric feature (exact when it has few distinct values, a 1,024-point sketch
//! otherwise), its PSI bins, or the counts of a categorical feature.

use std::collections::{BTreeMap, BTreeSet};

use polars_core::prelude::*;
use serde::{Deserialize, Serialize};

use super::stats::{benjamini_hochberg, chi2_sf, ks_p_value};
use crate::data::column_keys;
use crate::schema::Schema;

/// Numeric features with at most this many distinct values keep their exact CDF.
const EXACT_DISTINCT: usize = 1024;
/// ... and with at most this many, one PSI bin per value (else deciles).
const PSI_PER_VALUE: usize = 20;
/// Floor of a bin proportion in PSI, so an empty bin does not make it infinite.
const PSI_FLOOR: f64 = 1e-4;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub dataset: String,
    pub schema: Schema,
    pub rows: usize,
    pub features: Vec<FeatureProfile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureProfile {
    pub column: String,
    #[serde(flatten)]
    pub dist: Distribution,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Distribution {
    Numeric {
        n: usize,
        /// Ascending points of the empirical CDF and its value there.
        values: Vec<f64>,
        cdf: Vec<f64>,
        /// Upper edges of the PSI bins but the last (which is open), and the training share
        /// of each bin (one more than edges).
        bins: Vec<f64>,
        expected: Vec<f64>,
    },
    Categorical {
        n: usize,
        counts: BTreeMap<String, usize>,
    },
}

/// One row of the drift table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub column: String,
    /// `ks` (numeric) or `chi2` (categorical).
    pub test: String,
    pub statistic: f64,
    pub p_value: f64,
    /// Benjamini-Hochberg adjusted over all features tested together.
    pub p_adjusted: f64,
    pub psi: f64,
    pub drifted: bool,
}

/// Finite numeric values of a column, or `None` if it is not numeric.
pub fn numeric_values(col: &Column) -> Option<Vec<f64>> {
    match col.dtype() {
        DataType::Int64 => Some(col.i64().ok()?.iter().flatten().map(|v| v as f64).collect()),
        DataType::Float64 => Some(col.f64().ok()?.iter().flatten().filter(|v| v.is_finite()).collect()),
        _ => None,
    }
}

fn fraction_le(sorted: &[f64], x: f64) -> f64 {
    sorted.partition_point(|&v| v <= x) as f64 / sorted.len() as f64
}

fn numeric_profile(mut v: Vec<f64>) -> Distribution {
    v.sort_by(f64::total_cmp);
    let mut distinct = v.clone();
    distinct.dedup();
    let values: Vec<f64> = if distinct.len() <= EXACT_DISTINCT {
        distinct.clone()
    } else {
        let mut q: Vec<f64> =
            (1..=EXACT_DISTINCT).map(|i| v[((i * v.len()).div_ceil(EXACT_DISTINCT)).saturating_sub(1)]).collect();
        q.dedup();
        q
    };
    let cdf = values.iter().map(|&x| fraction_le(&v, x)).collect();
    let mut bins: Vec<f64> = if distinct.len() <= PSI_PER_VALUE {
        distinct[..distinct.len() - 1].to_vec()
    } else {
        (1..10).map(|d| v[(d * v.len() / 10).min(v.len() - 1)]).collect()
    };
    bins.dedup();
    let expected = bin_shares(&bins, &v);
    Distribution::Numeric { n: v.len(), values, cdf, bins, expected }
}

fn bin_shares(bins: &[f64], values: &[f64]) -> Vec<f64> {
    let mut counts = vec![0usize; bins.len() + 1];
    for &x in values {
        counts[bins.partition_point(|&e| e < x)] += 1;
    }
    counts.iter().map(|&c| c as f64 / values.len().max(1) as f64).collect()
}

fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(PSI_FLOOR), a.max(PSI_FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

impl Profile {
    /// Profile the features of a (training) frame.
    pub fn build(dataset: &str, schema: &Schema, df: &DataFrame) -> Profile {
        let mut features = Vec::new();
        for spec in schema.features() {
            let Ok(col) = df.column(&spec.name) else { continue };
            let dist = if spec.kind.is_numeric() {
                match numeric_values(col) {
                    Some(v) if !v.is_empty() => numeric_profile(v),
                    _ => continue,
                }
            } else {
                let mut counts = BTreeMap::new();
                let keys = column_keys(col);
                for k in keys.iter().flatten() {
                    *counts.entry(k.clone()).or_insert(0) += 1;
                }
                Distribution::Categorical { n: counts.values().sum(), counts }
            };
            features.push(FeatureProfile { column: spec.name.clone(), dist });
        }
        Profile { dataset: dataset.to_owned(), schema: schema.clone(), rows: df.height(), features }
    }

    /// Test every profiled feature of `df` for drift; `alpha` applies to the BH-adjusted p.
    pub fn compare(&self, df: &DataFrame, alpha: f64) -> Vec<FeatureDrift> {
        let mut rows: Vec<FeatureDrift> = Vec::new();
        for f in &self.features {
            let Ok(col) = df.column(&f.column) else { continue };
            let tested = match &f.dist {
                Distribution::Numeric { n, values, cdf, bins, expected } => numeric_values(col)
                    .filter(|v| !v.is_empty())
                    .map(|v| numeric_drift(*n, values, cdf, bins, expected, v)),
                Distribution::Categorical { n, counts } => categorical_drift(*n, counts, col),
            };
            if let Some((test, statistic, p_value, psi)) = tested {
                rows.push(FeatureDrift {
                    column: f.column.clone(),
                    test: test.into(),
                    statistic,
                    p_value,
                    p_adjusted: 1.0,
                    psi,
                    drifted: false,
                });
            }
        }
        let adjusted = benjamini_hochberg(&rows.iter().map(|r| r.p_value).collect::<Vec<_>>());
        for (r, q) in rows.iter_mut().zip(adjusted) {
            r.p_adjusted = q;
            r.drifted = q < alpha;
        }
        rows
    }
}

fn numeric_drift(
    n: usize,
    values: &[f64],
    cdf: &[f64],
    bins: &[f64],
    expected: &[f64],
    mut cur: Vec<f64>,
) -> (&'static str, f64, f64, f64) {
    cur.sort_by(f64::total_cmp);
    let reference = |x: f64| match values.partition_point(|&v| v <= x) {
        0 => 0.0,
        i => cdf[i - 1],
    };
    // Both CDFs are right-continuous steps: the largest gap sits at a jump of one of them.
    let d_cur = cur.iter().map(|&x| (fraction_le(&cur, x) - reference(x)).abs());
    let d_ref = values.iter().zip(cdf).map(|(&x, &f)| (fraction_le(&cur, x) - f).abs());
    let d = d_cur.chain(d_ref).fold(0.0, f64::max);
    let p = ks_p_value(d, n as f64, cur.len() as f64);
    ("ks", d, p, psi(expected, &bin_shares(bins, &cur)))
}

fn categorical_drift(
    n: usize,
    reference: &BTreeMap<String, usize>,
    col: &Column,
) -> Option<(&'static str, f64, f64, f64)> {
    let mut current: BTreeMap<String, usize> = BTreeMap::new();
    for k in column_keys(col).into_iter().flatten() {
        *current.entry(k).or_insert(0) += 1;
    }
    let m: usize = current.values().sum();
    if m == 0 || n == 0 {
        return None;
    }
    let categories: BTreeSet<&String> = reference.keys().chain(current.keys()).collect();
    let total = (n + m) as f64;
    let (mut chi2, mut expected_share, mut actual_share) = (0.0, Vec::new(), Vec::new());
    for c in &categories {
        let r = *reference.get(*c).unwrap_or(&0) as f64;
        let a = *current.get(*c).unwrap_or(&0) as f64;
        let col_total = r + a;
        for (observed, row_total) in [(r, n as f64), (a, m as f64)] {
            let e = row_total * col_total / total;
            if e > 0.0 {
                chi2 += (observed - e).powi(2) / e;
            }
        }
        expected_share.push(r / n as f64);
        actual_share.push(a / m as f64);
    }
    let df = categories.len().saturating_sub(1) as f64;
    Some(("chi2", chi2, chi2_sf(chi2, df), psi(&expected_share, &actual_share)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks(a: Vec<f64>, b: Vec<f64>) -> (f64, f64) {
        match numeric_profile(a) {
            Distribution::Numeric { n, values, cdf, bins, expected } => {
                let (_, d, p, _) = numeric_drift(n, &values, &cdf, &bins, &expected, b);
                (d, p)
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn identical_samples_do_not_drift() {
        let a: Vec<f64> = (0..500).map(|i| (i % 7) as f64).collect();
        assert_eq!(ks(a.clone(), a), (0.0, 1.0));
    }

    #[test]
    fn shifted_sample_drifts() {
        let a: Vec<f64> = (0..1000).map(|i| (i % 100) as f64).collect();
        let b: Vec<f64> = a.iter().map(|x| x + 30.0).collect();
        let (d, p) = ks(a, b);
        assert!((d - 0.3).abs() < 1e-9, "d = {d}");
        assert!(p < 1e-10, "p = {p}");
    }

    #[test]
    fn ks_p_value_matches_known_value() {
        // D = 0.1 with n = m = 200: lambda = (10 + 0.12 + 0.011) * 0.1, Q ≈ 0.2564.
        let a: Vec<f64> = (0..200).map(f64::from).collect();
        let b: Vec<f64> = (20..220).map(f64::from).collect();
        let (d, p) = ks(a, b);
        assert!((d - 0.1).abs() < 1e-12);
        assert!((p - 0.2564).abs() < 2e-3, "p = {p}");
    }

    #[test]
    fn sketch_of_many_distinct_values_stays_close_to_exact() {
        let a: Vec<f64> = (0..50_000).map(|i| ((i * 7919) % 50_000) as f64).collect();
        let b: Vec<f64> = (0..20_000).map(|i| ((i * 104_729) % 50_000) as f64 + 2_500.0).collect();
        let (d, _) = ks(a, b);
        assert!((d - 0.05).abs() < 2e-3, "d = {d}");
    }

    #[test]
    fn psi_is_zero_for_same_shares_and_grows_with_shift() {
        assert_eq!(psi(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
        assert!(psi(&[0.5, 0.5], &[0.9, 0.1]) > 0.5);
    }

    #[test]
    fn categorical_shift_is_flagged_and_same_mix_is_not() {
        let schema: Schema = serde_yaml_ng::from_str(
            "name: t\ntarget: {column: y, threat: [1]}\ncolumns:\n  - {name: proto, type: categorical}\n  - {name: y, type: integer, role: target}\n",
        )
        .unwrap();
        let frame = |tcp: usize, udp: usize, icmp: usize| {
            let mut v: Vec<&str> = vec!["tcp"; tcp];
            v.extend(vec!["udp"; udp]);
            v.extend(vec!["icmp"; icmp]);
            let y: Vec<i64> = (0..v.len() as i64).map(|i| i % 2).collect();
            DataFrame::new(v.len(), vec![Column::new("proto".into(), v), Column::new("y".into(), y)]).unwrap()
        };
        let profile = Profile::build("t", &schema, &frame(600, 300, 100));
        let same = profile.compare(&frame(300, 150, 50), 0.01);
        assert_eq!(same[0].test, "chi2");
        assert!(!same[0].drifted && same[0].psi < 1e-9, "{same:?}");
        let shifted = profile.compare(&frame(150, 300, 50), 0.01);
        assert!(shifted[0].drifted && shifted[0].psi > 0.2, "{shifted:?}");
    }
}
