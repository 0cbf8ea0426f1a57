//! Our CART learner, shared by the tree-based families.
//!
//! Why our own and not linfa-trees: linfa-trees 0.8.1 under-splits on tied features (it
//! compares a candidate threshold with the next row of the whole dataset instead of the next
//! row within the node; depth 3 and accuracy 0.889 on the phishing data where scikit-learn's
//! tree reaches 0.967), and even with that fixed it fits 25× slower than scikit-learn. This
//! learner bins features once and finds splits on histograms (with the parent-minus-sibling
//! subtraction), which is what makes a 441-fit grid search take seconds.

mod bins;
mod compiled;
mod grow;

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

pub use bins::Binned;
pub use compiled::{Compiled, ScorerCache};
pub use grow::{grow, Criterion, GrowParams, Grown, StatColumns, Stats, Sums};

/// A node: a split (`feature`, `threshold`, children) or a leaf (`feature == LEAF`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub feature: u32,
    /// Go left when `x[feature] <= threshold`.
    pub threshold: f64,
    /// The bin of the split on the training data (for fast updates while boosting).
    #[serde(skip)]
    pub bin: u8,
    pub left: u32,
    pub right: u32,
    /// Leaf output: P(threat) for classification trees, a score for boosting trees.
    pub value: f64,
    /// Training rows (their sample weight) that reached the node: what TreeSHAP weighs the
    /// branches of an unknown feature by (`models::explain`). 0 in bundles written before it
    /// was recorded (not written then, so those bundles re-serialize byte for byte).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cover: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

pub const LEAF: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// From the root to a leaf, going left where `goes_left` says so; the leaf's value.
    #[inline]
    fn walk(&self, goes_left: impl Fn(&Node) -> bool) -> f64 {
        let mut i = 0usize;
        loop {
            let n = &self.nodes[i];
            if n.feature == LEAF {
                return n.value;
            }
            // Select the child by index rather than by branch: the direction is a coin flip
            // to the CPU, and a mispredicted branch per level cost more than the walk.
            i = [n.right, n.left][usize::from(goes_left(n))] as usize;
        }
    }

    #[inline]
    pub fn predict_slice(&self, x: &[f64]) -> f64 {
        self.walk(|n| x[n.feature as usize] <= n.threshold)
    }

    /// Leaf value for a row of the binned training matrix (used while boosting).
    #[inline]
    pub fn predict_binned(&self, codes: &[u8]) -> f64 {
        self.walk(|n| codes[n.feature as usize] <= n.bin)
    }

    pub fn scale_leaves(&mut self, factor: f64) {
        for n in self.nodes.iter_mut().filter(|n| n.feature == LEAF) {
            n.value *= factor;
        }
    }
}

/// What a leaf of value `v` in tree `t` adds to a row's score.
#[derive(Debug, Clone, Copy)]
pub enum Leaves<'a> {
    /// `v` itself (forests average, boosting sums).
    AsIs,
    /// AdaBoost: tree `t` votes `±weights[t]` for the class its leaf holds (`v >= 0.5`: threat).
    Vote(&'a [f64]),
}

impl Leaves<'_> {
    #[inline]
    fn value(self, t: usize, v: f64) -> f64 {
        match self {
            Leaves::AsIs => v,
            Leaves::Vote(w) if v >= 0.5 => w[t],
            Leaves::Vote(w) => -w[t],
        }
    }

    /// Identifies the leaf values a compiled scorer bakes in (the cache's key).
    fn key(self) -> u64 {
        match self {
            Leaves::AsIs => 0,
            Leaves::Vote(w) => {
                w.iter().fold(0xcbf2_9ce4_8422_2325, |h, x| (h ^ x.to_bits()).wrapping_mul(0x100_0000_01b3)) | 1
            }
        }
    }
}

/// Rows from which [`add_leaves`] scores in parallel, and the rows of one parallel task.
const PARALLEL_ROWS: usize = 16_384;
const PARALLEL_BLOCK: usize = 8_192;

/// Add to `out` what the trees in `range` give every row of `x` (see [`Leaves`]). Uses the
/// trees' compiled block scorer, built into `cache` on first use; walks them row by row only
/// if they cannot be compiled.
pub fn add_leaves(
    trees: &[Tree],
    cache: &ScorerCache,
    leaves: Leaves<'_>,
    x: ArrayView2<'_, f64>,
    range: std::ops::Range<usize>,
    out: &mut [f64],
) {
    let build = || Compiled::new(trees, |t, v| leaves.value(t, v));
    cache.with(leaves.key(), build, |compiled| match compiled {
        // Many rows (a batch file's chunk, an in-memory table): blocks on every core of the
        // current rayon pool. Each row still adds its trees in order, so the sums are the same
        // bits; requests of a server (a few rows to a few thousand) stay on their own thread.
        Some(compiled) if x.nrows() >= PARALLEL_ROWS && rayon::current_num_threads() > 1 => {
            use rayon::prelude::*;
            out.par_chunks_mut(PARALLEL_BLOCK).enumerate().for_each(|(i, o)| {
                let start = i * PARALLEL_BLOCK;
                compiled.add_fast::<16>(x.slice(ndarray::s![start..start + o.len(), ..]), range.clone(), o)
            })
        }
        // Below a few dozen rows, walking each row is cheaper than a pass over every node.
        Some(compiled) if x.nrows() >= 512 => compiled.add_fast::<16>(x, range, out),
        Some(compiled) if x.nrows() >= 32 => compiled.add_fast::<4>(x, range, out),
        _ => {
            let x = x.as_standard_layout();
            for (o, row) in out.iter_mut().zip(x.rows()) {
                let row = row.to_slice().expect("standard layout");
                for t in range.clone() {
                    *o += leaves.value(t, trees[t].predict_slice(row));
                }
            }
        }
    })
}

/// Normalize importances to sum 1 (all zeros stay zeros).
pub fn normalized(mut v: Vec<f64>) -> Vec<f64> {
    let total: f64 = v.iter().sum();
    if total > 0.0 {
        v.iter_mut().for_each(|x| *x /= total);
    }
    v
}
