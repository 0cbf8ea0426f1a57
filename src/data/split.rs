//! Seeded train/test splits. The seed comes from `params.yaml`; the same seed and data give
//! the same split on every machine (ChaCha is platform-independent).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use serde::{Deserialize, Serialize};

use crate::params::{in_open_unit, Check};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SplitStrategy {
    /// Same class balance in both parts.
    Stratified,
    /// Plain shuffled split.
    Random,
    /// Stratified, and rows with identical feature vectors always land on the same side, so
    /// no test row has a twin in the training part.
    StratifiedGrouped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestParams {
    pub split: SplitStrategy,
    pub test_size: f64,
    pub seed: u64,
    /// What one input file may cost (see [`super::limits`]); defaults when absent.
    #[serde(default)]
    pub limits: super::limits::InputLimits,
}

impl Check for IngestParams {
    fn check(&self) -> std::result::Result<(), String> {
        in_open_unit("test_size", self.test_size)
    }
}

/// Row indices of the two parts, each in ascending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// Split rows with binary labels `labels`; `test_size` is the fraction that goes to test.
/// `groups` gives each row's group (its feature vector), used by the grouped strategy only.
pub fn split(labels: &[bool], groups: &[usize], strategy: SplitStrategy, test_size: f64, seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let groups: Vec<Vec<usize>> = match strategy {
        SplitStrategy::Random => vec![(0..labels.len()).collect()],
        SplitStrategy::Stratified => {
            [false, true].iter().map(|&class| (0..labels.len()).filter(|&i| labels[i] == class).collect()).collect()
        }
        SplitStrategy::StratifiedGrouped => return grouped(labels, groups, test_size, &mut rng),
    };
    let mut train = Vec::with_capacity(labels.len());
    let mut test = Vec::new();
    for mut group in groups {
        group.shuffle(&mut rng);
        let n_test = (group.len() as f64 * test_size).round() as usize;
        test.extend_from_slice(&group[..n_test]);
        train.extend_from_slice(&group[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Split { train, test }
}

/// Whole groups go to one side. Each group counts for its majority class (ties: threat);
/// per class, shuffled groups fill the test part until it holds `test_size` of the class.
fn grouped(labels: &[bool], groups: &[usize], test_size: f64, rng: &mut ChaCha8Rng) -> Split {
    let n_groups = groups.iter().max().map_or(0, |&g| g + 1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_groups];
    for (i, &g) in groups.iter().enumerate() {
        members[g].push(i);
    }
    let mut test = Vec::new();
    for class in [false, true] {
        let mut class_groups: Vec<usize> = (0..n_groups)
            .filter(|&g| {
                let threats = members[g].iter().filter(|&&i| labels[i]).count();
                !members[g].is_empty() && (2 * threats >= members[g].len()) == class
            })
            .collect();
        class_groups.shuffle(rng);
        let class_rows: usize = class_groups.iter().map(|&g| members[g].len()).sum();
        let target = (class_rows as f64 * test_size).round() as usize;
        let mut taken = 0;
        for g in class_groups {
            if taken >= target {
                break;
            }
            taken += members[g].len();
            test.extend_from_slice(&members[g]);
        }
    }
    test.sort_unstable();
    let mut in_test = vec![false; labels.len()];
    test.iter().for_each(|&i| in_test[i] = true);
    let train = (0..labels.len()).filter(|&i| !in_test[i]).collect();
    Split { train, test }
}

/// Stratified k-fold assignment: fold index per row, classes spread evenly over folds.
pub fn stratified_folds(labels: &[bool], k: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold = vec![0; labels.len()];
    let mut next = 0;
    for class in [false, true] {
        let mut idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        idx.shuffle(&mut rng);
        for i in idx {
            fold[i] = next % k;
            next += 1;
        }
    }
    fold
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<bool> {
        (0..1000).map(|i| i % 10 < 3).collect()
    }

    #[test]
    fn stratified_split_keeps_class_balance_and_partitions_rows() {
        let y = labels();
        let s = split(&y, &[], SplitStrategy::Stratified, 0.2, 7);
        assert_eq!(s.train.len() + s.test.len(), y.len());
        assert_eq!(s.test.len(), 200);
        assert_eq!(s.test.iter().filter(|&&i| y[i]).count(), 60);
        let mut all: Vec<_> = s.train.iter().chain(&s.test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn split_depends_on_seed_only() {
        let y = labels();
        assert_eq!(split(&y, &[], SplitStrategy::Random, 0.25, 1), split(&y, &[], SplitStrategy::Random, 0.25, 1));
        assert_ne!(split(&y, &[], SplitStrategy::Random, 0.25, 1), split(&y, &[], SplitStrategy::Random, 0.25, 2));
    }

    #[test]
    fn grouped_split_keeps_each_group_on_one_side() {
        let y = labels();
        let groups: Vec<usize> = (0..y.len()).map(|i| i % 97).collect();
        let s = split(&y, &groups, SplitStrategy::StratifiedGrouped, 0.2, 5);
        assert_eq!(s.train.len() + s.test.len(), y.len());
        let test_groups: std::collections::HashSet<usize> = s.test.iter().map(|&i| groups[i]).collect();
        assert!(s.train.iter().all(|&i| !test_groups.contains(&groups[i])));
        let share = s.test.len() as f64 / y.len() as f64;
        assert!((0.15..0.3).contains(&share), "test share {share}");
    }

    #[test]
    fn folds_are_balanced() {
        let y = labels();
        let f = stratified_folds(&y, 5, 3);
        for k in 0..5 {
            let members: Vec<_> = (0..y.len()).filter(|&i| f[i] == k).collect();
            assert_eq!(members.len(), 200);
            assert_eq!(members.iter().filter(|&&i| y[i]).count(), 60);
        }
    }
}
