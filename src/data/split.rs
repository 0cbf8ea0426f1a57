//! Seeded train/test splits. The seed comes from `params.yaml`; the same seed and data give
//! the same split on every machine (ChaCha is platform-independent).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::params::SplitStrategy;

/// Row indices of the two parts, each in ascending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// Split rows with binary labels `labels`; `test_size` is the fraction that goes to test.
pub fn split(labels: &[bool], strategy: SplitStrategy, test_size: f64, seed: u64) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let groups: Vec<Vec<usize>> = match strategy {
        SplitStrategy::Random => vec![(0..labels.len()).collect()],
        SplitStrategy::Stratified => [false, true]
            .iter()
            .map(|&class| (0..labels.len()).filter(|&i| labels[i] == class).collect())
            .collect(),
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
        let s = split(&y, SplitStrategy::Stratified, 0.2, 7);
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
        assert_eq!(split(&y, SplitStrategy::Random, 0.25, 1), split(&y, SplitStrategy::Random, 0.25, 1));
        assert_ne!(split(&y, SplitStrategy::Random, 0.25, 1), split(&y, SplitStrategy::Random, 0.25, 2));
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
