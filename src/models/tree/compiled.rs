//! Scoring a tree ensemble on many rows at once, with row sets as bit masks.
//!
//! Walking each row down each tree costs one dependent load and one unpredictable branch per
//! level, and a forest of 256 full-grown trees does that a quarter of a million times per
//! 1000 rows. Here up to 1024 rows go down a tree together: every split node receives the
//! set of rows that reach it (16 `u64` words, one bit per row) and hands its children that
//! set ANDed with the rows that go left there and with those that go right. That is the
//! same few word operations at every node, with no branch on the data, which the compiler
//! turns into SIMD; the tree is read once per 1024 rows instead of once per row. Then each
//! leaf adds its value to the rows in its set.
//!
//! The "rows that go left" sets come from one pass over the rows per feature: every
//! threshold the ensemble uses on a feature is ranked once at compile time, each row's value
//! gets its rank among them (the number of thresholds below it), and then `x <= threshold_k`
//! holds exactly when `rank <= k`. So each split's set is a prefix OR of per-rank buckets,
//! exact for any `f64`, NaN included (NaN ranks past every threshold and goes right, as
//! `NaN <= t` is false).
//!
//! Each row still adds its trees' leaf values in tree order, so the sums are bit-identical to
//! walking the trees one row at a time (tested).

use std::ops::Range;
use std::sync::OnceLock;

use ndarray::ArrayView2;

use super::{Tree, LEAF};

/// A split node: the rows at mask `node` go to masks `left` and `right` by split id `split`.
#[derive(Debug, Clone, Copy)]
struct Split {
    node: u32,
    split: u32,
    left: u32,
    right: u32,
}

/// A leaf: the rows at mask `node` add `value`.
#[derive(Debug, Clone, Copy)]
struct Leaf {
    node: u32,
    value: f64,
}

/// Work space of [`Compiled::add_leaves`]: the leaves that rows reach, their non-empty words
/// (value, first row, rows), and each row's value.
#[derive(Default)]
struct LeafScratch {
    reached: Vec<u32>,
    words: Vec<(f64, usize, u64)>,
    values: Vec<f64>,
}

/// One tree: its splits parents first, its leaves, and how many nodes it has.
#[derive(Debug, Clone)]
struct CompiledTree {
    splits: Range<usize>,
    leaves: Range<usize>,
    nodes: usize,
}

/// A tree ensemble prepared for block scoring. Built once per model (see [`ScorerCache`]).
#[derive(Debug)]
pub struct Compiled {
    /// Per feature: the distinct thresholds used on it, ascending.
    cuts: Vec<Vec<f64>>,
    /// Per feature: the split id of its first threshold.
    base: Vec<usize>,
    splits: usize,
    split_nodes: Vec<Split>,
    leaves: Vec<Leaf>,
    trees: Vec<CompiledTree>,
    widest: usize,
}

impl Compiled {
    /// `leaf(t, v)` is what tree `t` adds for a leaf of value `v`. None when a threshold is
    /// NaN or a tree is malformed (no bundle of ours), so the caller walks the trees instead.
    pub fn new(trees: &[Tree], leaf: impl Fn(usize, f64) -> f64) -> Option<Compiled> {
        let splitting = || trees.iter().flat_map(|t| &t.nodes).filter(|n| n.feature != LEAF);
        let features = splitting().map(|n| n.feature as usize + 1).max().unwrap_or(0);
        let mut cuts = vec![Vec::new(); features];
        for n in splitting() {
            if n.threshold.is_nan() {
                return None;
            }
            cuts[n.feature as usize].push(n.threshold);
        }
        let mut base = Vec::with_capacity(features);
        let mut splits = 0;
        for c in &mut cuts {
            c.sort_by(f64::total_cmp);
            c.dedup();
            base.push(splits);
            splits += c.len();
        }
        let mut split_nodes = Vec::new();
        let mut leaves = Vec::new();
        let mut compiled = Vec::with_capacity(trees.len());
        let mut order = std::collections::VecDeque::new();
        for (t, tree) in trees.iter().enumerate() {
            if tree.nodes.is_empty() || tree.nodes.len() >= u32::MAX as usize {
                return None;
            }
            // Breadth first, so that a node's mask is written before it is read.
            let (first_split, first_leaf) = (split_nodes.len(), leaves.len());
            let mut numbered = 1;
            order.push_back((0usize, 0u32));
            while let Some((old, at)) = order.pop_front() {
                let n = tree.nodes.get(old)?;
                if n.feature == LEAF {
                    leaves.push(Leaf { node: at, value: leaf(t, n.value) });
                } else {
                    let f = n.feature as usize;
                    let k = cuts[f].partition_point(|&c| c < n.threshold);
                    let (left, right) = (numbered, numbered + 1);
                    numbered += 2;
                    if numbered > tree.nodes.len() as u32 {
                        return None; // not a tree: some node is reached twice
                    }
                    split_nodes.push(Split { node: at, split: (base[f] + k) as u32, left, right });
                    order.push_back((n.left as usize, left));
                    order.push_back((n.right as usize, right));
                }
            }
            compiled.push(CompiledTree {
                splits: first_split..split_nodes.len(),
                leaves: first_leaf..leaves.len(),
                nodes: numbered as usize,
            });
        }
        let widest = compiled.iter().map(|t| t.nodes).max().unwrap_or(0);
        Some(Compiled { cuts, base, splits, split_nodes, leaves, trees: compiled, widest })
    }

    /// [`Compiled::add`], compiled for AVX2 when the CPU has it (the mask operations then
    /// work on 256 bits at a time instead of 128).
    pub fn add_fast<const W: usize>(&self, x: ArrayView2<'_, f64>, trees: Range<usize>, out: &mut [f64]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.add_avx2::<W>(x, trees, out) };
        }
        self.add::<W>(x, trees, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn add_avx2<const W: usize>(&self, x: ArrayView2<'_, f64>, trees: Range<usize>, out: &mut [f64]) {
        self.add::<W>(x, trees, out)
    }

    /// Add to `out[i]` the leaf values of the trees in `trees` for every row `i` of `x`, in
    /// chunks of `64 * W` rows.
    #[inline(always)]
    pub fn add<const W: usize>(&self, x: ArrayView2<'_, f64>, trees: Range<usize>, out: &mut [f64]) {
        assert_eq!(x.nrows(), out.len(), "one output per row");
        assert!(x.ncols() >= self.cuts.len(), "the model uses {} features, rows have {}", self.cuts.len(), x.ncols());
        let rows = 64 * W;
        // Per split id: the chunk's rows that go left, then those that go right.
        let mut sets = vec![[[0u64; W]; 2]; self.splits];
        let mut masks = vec![[0u64; W]; self.widest];
        let mut scratch = LeafScratch::default();
        for start in (0..x.nrows()).step_by(rows) {
            let end = (start + rows).min(x.nrows());
            let mut all = [0u64; W];
            for r in 0..end - start {
                all[r / 64] |= 1 << (r % 64);
            }
            self.row_sets(x.slice(ndarray::s![start..end, ..]), &all, &mut sets);
            let out = &mut out[start..end];
            for tree in &self.trees[trees.clone()] {
                masks[0] = all;
                for s in &self.split_nodes[tree.splits.clone()] {
                    let here = masks[s.node as usize];
                    let [go_left, go_right] = &sets[s.split as usize];
                    masks[s.left as usize] = std::array::from_fn(|w| here[w] & go_left[w]);
                    masks[s.right as usize] = std::array::from_fn(|w| here[w] & go_right[w]);
                }
                self.add_leaves(&masks, tree.leaves.clone(), &mut scratch, out);
            }
        }
    }

    /// Each leaf of a tree adds its value to the rows in its mask. Done without branching on
    /// the data, which made this the slow part: list the leaves with any row (and which of
    /// their words hold rows), spread those words into one list, then take one row per step,
    /// moving to the next word when the current one runs out.
    #[inline(always)]
    fn add_leaves<const W: usize>(
        &self,
        masks: &[[u64; W]],
        leaves: Range<usize>,
        scratch: &mut LeafScratch,
        out: &mut [f64],
    ) {
        let LeafScratch { reached, words, values } = scratch;
        let leaves = &self.leaves[leaves];
        reached.resize(leaves.len() + 1, 0);
        let mut n = 0;
        for (i, leaf) in leaves.iter().enumerate() {
            let any = masks[leaf.node as usize].iter().fold(0, |a, w| a | w);
            reached[n] = i as u32;
            n += (any != 0) as usize;
        }
        // Every word of the reached leaves goes in; the position moves on past non-empty ones.
        words.resize(n * W + 1, (0.0, 0, 0));
        let mut m = 0;
        for &i in &reached[..n] {
            let leaf = leaves[i as usize];
            for (w, &word) in masks[leaf.node as usize].iter().enumerate() {
                words[m] = (leaf.value, 64 * w, word);
                m += (word != 0) as usize;
            }
        }
        words[m] = (0.0, 0, 0);
        // Each row's value of this tree, then added to all rows at once (a store per row
        // instead of a read-modify-write chain).
        values.resize(out.len(), 0.0);
        let (mut value, mut at, mut word) = words[0];
        let mut next = 1;
        for _ in 0..out.len() {
            values[at + word.trailing_zeros() as usize] = value;
            word &= word.wrapping_sub(1);
            let (v, a, w) = words[next.min(m)];
            let done = word == 0;
            next += done as usize;
            (value, at, word) = if done { (v, a, w) } else { (value, at, word) };
        }
        out.iter_mut().zip(values.iter()).for_each(|(o, v)| *o += v);
    }

    /// For every split id, the rows of the chunk (`all`) that go left and those that go
    /// right.
    #[inline(always)]
    fn row_sets<const W: usize>(&self, chunk: ArrayView2<'_, f64>, all: &[u64; W], sets: &mut [[[u64; W]; 2]]) {
        sets.iter_mut().for_each(|s| *s = [[0; W]; 2]);
        for (f, cuts) in self.cuts.iter().enumerate() {
            if cuts.is_empty() {
                continue;
            }
            let ids = self.base[f]..self.base[f] + cuts.len();
            // Bucket each row by its rank (how many thresholds lie below its value; NaN
            // ranks past them all), in the left set of the split with that rank.
            for (r, &x) in chunk.column(f).iter().enumerate() {
                let rank = if x.is_nan() { cuts.len() } else { cuts.partition_point(|&c| c < x) };
                if rank < cuts.len() {
                    sets[ids.start + rank][0][r / 64] |= 1 << (r % 64);
                }
            }
            // Rows go left at split k when their rank is at most k: a running OR.
            let mut left = [0u64; W];
            for id in ids {
                let [go_left, go_right] = &mut sets[id];
                for w in 0..W {
                    left[w] |= go_left[w];
                    go_left[w] = left[w];
                    go_right[w] = all[w] & !left[w];
                }
            }
        }
    }
}

/// A model's compiled scorer, built on first use and never serialized. Clones start empty
/// and equality ignores it: it is a cache of the trees, not part of the model.
#[derive(Default)]
pub struct ScorerCache(OnceLock<Option<Compiled>>);

impl ScorerCache {
    pub fn get(&self, build: impl FnOnce() -> Option<Compiled>) -> Option<&Compiled> {
        self.0.get_or_init(build).as_ref()
    }
}

impl Clone for ScorerCache {
    fn clone(&self) -> Self {
        ScorerCache::default()
    }
}

impl PartialEq for ScorerCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for ScorerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "ScorerCache(built)" } else { "ScorerCache(empty)" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tree::{accumulate, Node as TreeNode};
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random full tree of the given depth over `d` features with thresholds from `pool`.
    fn random_tree(rng: &mut ChaCha8Rng, d: usize, depth: usize, pool: &[f64]) -> Tree {
        fn build(rng: &mut ChaCha8Rng, d: usize, depth: usize, pool: &[f64], nodes: &mut Vec<TreeNode>) -> u32 {
            let at = nodes.len() as u32;
            let leaf = depth == 0 || rng.gen_bool(0.15);
            nodes.push(TreeNode {
                feature: if leaf { LEAF } else { rng.gen_range(0..d) as u32 },
                threshold: pool[rng.gen_range(0..pool.len())],
                bin: 0,
                left: 0,
                right: 0,
                value: rng.gen::<f64>(),
            });
            if !leaf {
                let l = build(rng, d, depth - 1, pool, nodes);
                let r = build(rng, d, depth - 1, pool, nodes);
                nodes[at as usize].left = l;
                nodes[at as usize].right = r;
            }
            at
        }
        let mut nodes = Vec::new();
        build(rng, d, depth, pool, &mut nodes);
        Tree { nodes }
    }

    #[test]
    fn block_scores_equal_row_walks_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let d = 6;
        // Few distinct thresholds and values (ties on every threshold), plus continuous ones.
        let pool: Vec<f64> = [-0.5, 0.5, 1.0, 2.5, -3.25, 0.0, f64::INFINITY]
            .into_iter()
            .chain((0..40).map(|_| rng.gen_range(-5.0..5.0)))
            .collect();
        let trees: Vec<Tree> = (0..40).map(|_| random_tree(&mut rng, d, 9, &pool)).collect();
        // 200 rows: three full blocks and a partial one; values hit thresholds exactly.
        let mut x = Array2::from_shape_fn((200, d), |_| {
            if rng.gen_bool(0.5) {
                pool[rng.gen_range(0..pool.len())]
            } else {
                rng.gen_range(-6.0..6.0)
            }
        });
        x[[3, 2]] = f64::NAN;
        x[[70, 0]] = f64::NEG_INFINITY;
        x[[71, 1]] = -0.0;
        let compiled = Compiled::new(&trees, |_, v| v).expect("no NaN thresholds");
        for range in [0..40, 0..1, 13..29] {
            let mut walked = vec![0.25; 200];
            accumulate(trees[range.clone()].iter(), x.view(), &mut walked);
            let mut blocked = vec![0.25; 200];
            compiled.add::<2>(x.view(), range.clone(), &mut blocked);
            for (i, (a, b)) in walked.iter().zip(&blocked).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "row {i}, trees {range:?}: walk {a} vs block {b}");
            }
        }
        let one_row = x.slice(ndarray::s![5..6, ..]);
        let mut blocked = vec![0.0];
        compiled.add::<1>(one_row, 0..40, &mut blocked);
        let walked: f64 = trees.iter().fold(0.0, |s, t| s + t.predict_slice(one_row.row(0).as_slice().unwrap()));
        assert_eq!(walked.to_bits(), blocked[0].to_bits());
    }

    #[test]
    fn a_nan_threshold_falls_back_to_walking() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut tree = random_tree(&mut rng, 3, 3, &[0.5]);
        tree.nodes[0].feature = 0;
        tree.nodes[0].threshold = f64::NAN;
        assert!(Compiled::new(&[tree], |_, v| v).is_none());
    }
}
