//! The training profile as a served model carries it: per raw input, the bins of its training
//! distribution and each bin's share, plus the share of missing values; and the bins of the
//! out-of-fold score distribution. The server sorts every record it scores into these bins
//! and compares its recent window with them (PSI, see `serving::monitor`).
//!
//! Built by `train` from `validate`'s [`Profile`] of the training part (never the test part).
//! It is written into the bundle, so it is part of the bundle format (see `bundle`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::drift::{Distribution, Profile};
use crate::features::Raw;
use crate::schema::float_key;

/// Categorical columns with more distinct training values than this are not monitored: their
/// "unseen" rate would have to come from a truncated list.
pub const MAX_CATEGORIES: usize = 1000;
/// Floor of a bin share in PSI, so an empty bin does not make it infinite (as in `drift`).
pub const PSI_FLOOR: f64 = 1e-4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// Training rows the shares come from.
    pub rows: usize,
    pub features: Vec<FeatureReference>,
    /// Bins of the out-of-fold threat scores on the training part.
    pub score: Bins,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureReference {
    pub column: String,
    /// Share of training rows where the column is missing.
    pub missing: f64,
    #[serde(flatten)]
    pub bins: Bins,
}

/// Shares of the non-missing training values in each bin (they sum to 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Bins {
    /// Bin `i` holds values `edges[i-1] < x <= edges[i]`; the last bin is open above.
    Numeric { edges: Vec<f64>, shares: Vec<f64> },
    /// One bin per category seen in training, then one for any other value (unseen: its
    /// training share is 0).
    Categorical { categories: Vec<String>, shares: Vec<f64> },
}

impl Bins {
    /// Bins, the "other" bin of a categorical column included (not the missing bin).
    pub fn len(&self) -> usize {
        match self {
            Bins::Numeric { shares, .. } => shares.len(),
            Bins::Categorical { categories, .. } => categories.len() + 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Training share of bin `i` (the "other" bin of a categorical column has 0).
    pub fn share(&self, i: usize) -> f64 {
        match self {
            Bins::Numeric { shares, .. } | Bins::Categorical { shares, .. } => shares.get(i).copied().unwrap_or(0.0),
        }
    }

    /// Numeric bins of `values` at their deciles (one bin per value when there are at most 20).
    pub fn numeric(values: &[f64]) -> Bins {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return Bins::Numeric { edges: vec![], shares: vec![1.0] };
        }
        let mut distinct = v.clone();
        distinct.dedup();
        let mut edges: Vec<f64> = if distinct.len() <= 20 {
            distinct[..distinct.len() - 1].to_vec()
        } else {
            (1..10).map(|d| v[(d * v.len() / 10).min(v.len() - 1)]).collect()
        };
        edges.dedup();
        let mut counts = vec![0usize; edges.len() + 1];
        for &x in &v {
            counts[edges.partition_point(|&e| e < x)] += 1;
        }
        let shares = counts.iter().map(|&c| c as f64 / v.len() as f64).collect();
        Bins::Numeric { edges, shares }
    }

    /// The bin of a number.
    pub fn of_number(&self, x: f64) -> usize {
        match self {
            Bins::Numeric { edges, .. } => edges.partition_point(|&e| e < x),
            Bins::Categorical { .. } => unreachable!("numbers of categorical columns go through of_text"),
        }
    }
}

impl Reference {
    /// The reference of the profiled columns of `profile`, and the score bins of `oof`.
    pub fn build(profile: &Profile, oof: &[f64]) -> Reference {
        let rows = profile.rows.max(1);
        let features = profile
            .features
            .iter()
            .filter_map(|f| {
                let (n, bins) = match &f.dist {
                    Distribution::Numeric { n, bins, expected, .. } => {
                        (*n, Bins::Numeric { edges: bins.clone(), shares: expected.clone() })
                    }
                    Distribution::Categorical { n, counts } => {
                        if counts.len() > MAX_CATEGORIES || *n == 0 {
                            return None;
                        }
                        let categories: Vec<String> = counts.keys().cloned().collect();
                        let shares = counts.values().map(|&c| c as f64 / *n as f64).collect();
                        (*n, Bins::Categorical { categories, shares })
                    }
                };
                let missing = 1.0 - n as f64 / rows as f64;
                Some(FeatureReference { column: f.column.clone(), missing: missing.max(0.0), bins })
            })
            .collect();
        Reference { rows: profile.rows, features, score: Bins::numeric(oof) }
    }
}

/// Sorts a column's raw values into its reference bins (built once per served model).
#[derive(Debug, Clone)]
pub struct Binner {
    bins: Bins,
    index: HashMap<String, u16>,
}

impl Binner {
    pub fn new(bins: &Bins) -> Binner {
        let index = match bins {
            Bins::Categorical { categories, .. } => {
                categories.iter().enumerate().map(|(i, c)| (c.clone(), i as u16)).collect()
            }
            Bins::Numeric { .. } => HashMap::new(),
        };
        Binner { bins: bins.clone(), index }
    }

    /// Bins plus one for missing values.
    pub fn codes(&self) -> usize {
        self.bins.len() + 1
    }

    /// The code of a missing value.
    pub fn missing(&self) -> u16 {
        self.bins.len() as u16
    }

    /// The code of the "other" (unseen) bin of a categorical column.
    pub fn other(&self) -> Option<u16> {
        matches!(self.bins, Bins::Categorical { .. }).then(|| self.bins.len() as u16 - 1)
    }

    /// The code of a raw value (a numeric column's text that is not a number counts as missing:
    /// the record is refused by the encoder anyway).
    pub fn code(&self, raw: &Raw<'_>) -> u16 {
        match (&self.bins, raw) {
            (_, Raw::Missing) => self.missing(),
            (Bins::Numeric { .. }, Raw::Number(x)) => self.bins.of_number(*x) as u16,
            (Bins::Numeric { .. }, Raw::Text(t)) => {
                let t = t.trim();
                if t.is_empty() {
                    return self.missing();
                }
                t.parse::<f64>().map_or(self.missing(), |x| self.bins.of_number(x) as u16)
            }
            (Bins::Categorical { .. }, Raw::Text(t)) => self.category(t),
            (Bins::Categorical { .. }, Raw::Number(x)) => self.category(&float_key(*x)),
        }
    }

    fn category(&self, t: &str) -> u16 {
        if t.is_empty() {
            return self.missing();
        }
        self.index.get(t).copied().unwrap_or(self.bins.len() as u16 - 1)
    }

    /// Training share of each code (bins, then missing), given the column's missing share.
    pub fn expected(&self, missing: f64) -> Vec<f64> {
        (0..self.bins.len()).map(|i| self.bins.share(i) * (1.0 - missing)).chain([missing]).collect()
    }
}

/// Population stability index of `actual` counts against `expected` shares (same length).
pub fn psi(expected: &[f64], actual: &[u64]) -> f64 {
    let total: u64 = actual.iter().sum();
    if total == 0 {
        return 0.0;
    }
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(PSI_FLOOR), (a as f64 / total as f64).max(PSI_FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_on_the_training_shares_and_large_on_a_shift() {
        let bins = Bins::numeric(&(0..1000).map(|i| i as f64).collect::<Vec<_>>());
        let b = Binner::new(&bins);
        let expected = b.expected(0.0);
        let mut same = vec![0u64; b.codes()];
        for i in 0..1000 {
            same[b.code(&Raw::Number(i as f64)) as usize] += 1;
        }
        assert!(psi(&expected, &same) < 1e-9, "{}", psi(&expected, &same));
        let mut shifted = vec![0u64; b.codes()];
        for i in 0..1000 {
            shifted[b.code(&Raw::Number(i as f64 + 500.0)) as usize] += 1;
        }
        assert!(psi(&expected, &shifted) > 1.0);
    }

    #[test]
    fn categories_unseen_and_missing_have_their_own_codes() {
        let bins = Bins::Categorical { categories: vec!["tcp".into(), "udp".into()], shares: vec![0.75, 0.25] };
        let b = Binner::new(&bins);
        assert_eq!(b.code(&Raw::Text("udp")), 1);
        assert_eq!(b.code(&Raw::Text("icmp")), 2);
        assert_eq!(b.other(), Some(2));
        assert_eq!(b.code(&Raw::Missing), 3);
        let e = b.expected(0.2);
        assert!(e.iter().zip([0.6, 0.2, 0.0, 0.2]).all(|(a, b)| (a - b).abs() < 1e-12), "{e:?}");
    }
}
