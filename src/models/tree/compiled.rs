//! Scoring a tree ensemble on many rows at once, with row sets as bit masks.
//!
//! Walking each row down each tree costs one dependent load and one unpredictable branch per
//! level, and a forest of 256 full-grown trees does that a quarter of a million times per
//! 1000 rows. Here up to 1024 rows go down a tree together: every split node receives the
//! set of rows that reach it (16 `u64` words, one bit per row) and hands its children that
//! set ANDed with the rows that go left there and with those that go right. That is the
//! same few word operations at every node, with no branch on the data, which the compiler
//! turns into SIMD; the tree is read once per 1024 rows instead of once per row.
//!
//! The splits run in depth-first order, and a node's mask is dropped once its children have
//! theirs, so a tree needs about as many masks as it is deep and they all stay in the
//! fastest cache.
//!
//! Leaves then give their rows their value. In a fully grown forest most leaves hold 0 or 1,
//! so such a tree keeps one more mask, the union of the rows that reach a leaf of its second
//! most common value (built in the same pass: a split ORs in the rows it sends to such a
//! leaf); a row gets one value or the other by its bit, and only the few leaves with other
//! values list their rows one by one. Trees whose leaves all differ (boosting) find each
//! row's leaf by its path instead, when they are shallow: the splits also set, per depth, the
//! rows that went right there, which spells every row's path in bits, and the row takes the
//! value at its path from the tree's table; deeper ones list the rows of every leaf.
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

/// A split node: the rows in mask `node` go to masks `left` and `right` by the sets of split
/// id `split`, and those of them bound for a leaf of the tree's marked value also to the
/// marked union, by set `marked` (see [`Compiled::add`]). In a [`Path`] tree the rows going
/// right also set bit `level` of their path.
#[derive(Debug, Clone, Copy)]
struct Split {
    node: u32,
    split: u32,
    left: u32,
    right: u32,
    marked: u32,
    level: u32,
}

/// A leaf whose rows are listed: the rows in mask `node` get `value`.
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

/// One tree: its splits in depth-first order, the leaves whose rows are listed, and, when
/// most of its leaves hold one of two values, those values; or, when its leaves all differ
/// and it is shallow, where its leaves' values are by path.
#[derive(Debug, Clone)]
struct CompiledTree {
    splits: Range<usize>,
    leaves: Range<usize>,
    common: Option<Common>,
    path: Option<Path>,
}

/// A shallow tree whose leaves are told apart by path (boosting's, at most [`PATH_DEPTH`]
/// deep): bit `d` of a row's path is whether it went right at depth `d`, 0 past its leaf.
/// The splits build the paths as bit planes (one mask per depth, the rows that went right
/// there), eight rows' paths come out of the planes at once as bytes, and each row takes
/// its value from the tree's table at its path. No leaf keeps a mask or a list of rows.
#[derive(Debug, Clone, Copy)]
struct Path {
    depth: usize,
    /// The tree's table in [`Compiled::tables`]: `1 << depth` values, at each leaf's path.
    table: usize,
}

/// The deepest tree scored by [`Path`]: a path fits a byte.
const PATH_DEPTH: usize = 8;

/// `SPREAD[b]` has byte `i` equal to bit `i` of `b`: eight rows' bits of one plane become
/// one bit in each of their path bytes.
const SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let mut i = 0;
        while i < 8 {
            t[b] |= (((b >> i) & 1) as u64) << (8 * i);
            i += 1;
        }
        b += 1;
    }
    t
};

/// The two values most leaves of a tree hold. A row gets `marked` when it is in the marked
/// union, else `usual`, unless one of the tree's listed leaves (holding some other value)
/// has it.
#[derive(Debug, Clone, Copy)]
struct Common {
    usual: f64,
    marked: Option<f64>,
}

impl Common {
    /// The two values most of these leaf values are, if at most a quarter are something else.
    /// Values are told apart by their bits, so every row still gets exactly its leaf's value.
    fn of(values: &[f64]) -> Option<Common> {
        let mut counts: Vec<(u64, usize)> = Vec::new();
        for v in values {
            let full = counts.len() == 64;
            match counts.iter_mut().find(|(bits, _)| *bits == v.to_bits()) {
                Some((_, n)) => *n += 1,
                None if full => return None, // many values (boosting): list all
                None => counts.push((v.to_bits(), 1)),
            }
        }
        // Most leaves first; the sort is stable, so ties keep tree order.
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        let others: usize = counts.iter().skip(2).map(|c| c.1).sum();
        if others * 4 > values.len() {
            return None;
        }
        Some(Common { usual: f64::from_bits(counts.first()?.0), marked: counts.get(1).map(|c| f64::from_bits(c.0)) })
    }

    fn is_usual(&self, v: f64) -> bool {
        v.to_bits() == self.usual.to_bits()
    }

    fn is_marked(&self, v: f64) -> bool {
        self.marked.is_some_and(|m| m.to_bits() == v.to_bits())
    }
}

/// Mask 0 takes the rows of leaves that need no list of them; it is never read.
const DISCARD: u32 = 0;
/// Mask 1 holds the root's rows, all of the chunk.
const ROOT: u32 = 1;
/// Marks a listed leaf's mask while its tree is compiled; it goes after the working masks.
const LISTED: u32 = 1 << 31;

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
    /// The leaf tables of [`Path`] trees.
    tables: Vec<f64>,
    /// The most masks a tree needs.
    masks: usize,
    /// The features with thresholds, ascending, and per such feature the rank of each small
    /// whole value `0..SMALL` (counts are most of a wide table's cells: no search for them).
    used: Vec<usize>,
    small: Vec<[u32; SMALL]>,
    /// Per feature: its index in `used`, or [`UNUSED`].
    slot: Vec<u32>,
    /// The used features as bits, 64 features a word (feature `f`: bit `f % 64` of word `f / 64`).
    used_bits: Vec<u64>,
}

const UNUSED: u32 = u32::MAX;

/// Whole values below this get their rank from a table (see [`Compiled::rank`]).
const SMALL: usize = 16;

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
        // Sets 2k and 2k + 1 are split id k's rows going left and right; then no rows, all.
        let (none, all) = (2 * splits as u32, 2 * splits as u32 + 1);
        let mut compiled = Compiled {
            cuts,
            base,
            splits,
            split_nodes: vec![],
            leaves: vec![],
            trees: vec![],
            tables: vec![],
            masks: 2,
            used: vec![],
            small: vec![],
            slot: vec![],
            used_bits: vec![],
        };
        compiled.used = (0..features).filter(|&f| !compiled.cuts[f].is_empty()).collect();
        compiled.small = compiled
            .used
            .iter()
            .map(|&f| std::array::from_fn(|k| compiled.cuts[f].partition_point(|&c| c < k as f64) as u32))
            .collect();
        compiled.slot = vec![UNUSED; features];
        compiled.used_bits = vec![0; features.div_ceil(64)];
        for (j, &f) in compiled.used.iter().enumerate() {
            compiled.slot[f] = j as u32;
            compiled.used_bits[f / 64] |= 1 << (f % 64);
        }
        for (t, tree) in trees.iter().enumerate() {
            let nodes = &tree.nodes;
            if nodes.is_empty() || nodes.len() >= LISTED as usize {
                return None;
            }
            // Depth first, left before right; a node reached twice means it is not a tree. Each
            // node's depth, and its path: bit d set when it lies right of its depth-d ancestor.
            let mut order = Vec::with_capacity(nodes.len());
            let mut seen = vec![false; nodes.len()];
            let (mut depth, mut path) = (vec![0usize; nodes.len()], vec![0usize; nodes.len()]);
            let mut todo = vec![(0usize, 0usize, 0usize)];
            while let Some((i, d, p)) = todo.pop() {
                let n = nodes.get(i)?;
                if std::mem::replace(&mut seen[i], true) {
                    return None;
                }
                order.push(i);
                (depth[i], path[i]) = (d, p);
                if n.feature != LEAF {
                    let right = if d < PATH_DEPTH { p | 1 << d } else { p };
                    todo.extend([(n.right as usize, d + 1, right), (n.left as usize, d + 1, p)]);
                }
            }
            let value = |i: usize| leaf(t, nodes[i].value);
            let leaf_nodes = || order.iter().copied().filter(|&i| nodes[i].feature == LEAF);
            let values: Vec<f64> = leaf_nodes().map(value).collect();
            let common = Common::of(&values);
            let deepest = leaf_nodes().map(|i| depth[i]).max().unwrap_or(0);
            let by_path = (common.is_none() && deepest <= PATH_DEPTH).then(|| {
                let table = compiled.tables.len();
                compiled.tables.resize(table + (1 << deepest), 0.0);
                for i in leaf_nodes() {
                    compiled.tables[table + path[i]] = value(i);
                }
                Path { depth: deepest, table }
            });
            let listed = |v: f64| by_path.is_none() && common.is_none_or(|c| !c.is_usual(v) && !c.is_marked(v));
            // Masks: a split's own is free again once its children have theirs, so the left
            // child takes it over; listed leaves keep theirs to the end of the tree.
            let (first_split, first_leaf) = (compiled.split_nodes.len(), compiled.leaves.len());
            let mut mask = vec![DISCARD; nodes.len()];
            mask[0] = ROOT;
            let (mut free, mut working, mut kept) = (Vec::new(), ROOT + 1, 0);
            for &i in &order {
                let n = &nodes[i];
                if n.feature == LEAF {
                    if listed(value(i)) {
                        compiled.leaves.push(Leaf { node: mask[i], value: value(i) });
                    }
                    continue;
                }
                free.push(mask[i]);
                let mut take = |c: usize| {
                    if nodes[c].feature != LEAF {
                        free.pop().unwrap_or_else(|| {
                            working += 1;
                            working - 1
                        })
                    } else if listed(value(c)) {
                        kept += 1;
                        LISTED | (kept - 1)
                    } else {
                        DISCARD
                    }
                };
                let (l, r) = (n.left as usize, n.right as usize);
                mask[l] = take(l);
                mask[r] = take(r);
                let f = n.feature as usize;
                let k = (compiled.base[f] + compiled.cuts[f].partition_point(|&c| c < n.threshold)) as u32;
                let marked = |c: usize| common.is_some_and(|m| nodes[c].feature == LEAF && m.is_marked(value(c)));
                let marked = match (marked(l), marked(r)) {
                    (false, false) => none,
                    (true, false) => 2 * k,
                    (false, true) => 2 * k + 1,
                    (true, true) => all,
                };
                let (node, left, right, level) = (mask[i], mask[l], mask[r], depth[i] as u32);
                compiled.split_nodes.push(Split { node, split: k, left, right, marked, level });
            }
            // Listed leaves' masks go after the working ones.
            let place = |m: &mut u32| {
                if *m & LISTED != 0 {
                    *m = working + (*m & !LISTED);
                }
            };
            for s in &mut compiled.split_nodes[first_split..] {
                place(&mut s.left);
                place(&mut s.right);
            }
            compiled.leaves[first_leaf..].iter_mut().for_each(|l| place(&mut l.node));
            compiled.masks = compiled.masks.max((working + kept) as usize);
            compiled.trees.push(CompiledTree {
                splits: first_split..compiled.split_nodes.len(),
                leaves: first_leaf..compiled.leaves.len(),
                common,
                path: by_path,
            });
        }
        Some(compiled)
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
        // Per split id: the chunk's rows that go left, then those that go right; then the
        // pair (no rows, all rows).
        let mut sets = vec![[[0u64; W]; 2]; self.splits + 1];
        let mut masks = vec![[0u64; W]; self.masks];
        let mut planes = [[0u64; W]; PATH_DEPTH];
        let mut scratch = LeafScratch::default();
        let mut columns = Vec::new();
        for start in (0..x.nrows()).step_by(rows) {
            let end = (start + rows).min(x.nrows());
            let mut all = [0u64; W];
            for r in 0..end - start {
                all[r / 64] |= 1 << (r % 64);
            }
            self.row_sets(x.slice(ndarray::s![start..end, ..]), &all, &mut sets[..self.splits], &mut columns);
            sets[self.splits] = [[0; W], all];
            let sets = sets.as_flattened();
            let out = &mut out[start..end];
            for tree in &self.trees[trees.clone()] {
                masks[ROOT as usize] = all;
                let splits = &self.split_nodes[tree.splits.clone()];
                let leaves = &self.leaves[tree.leaves.clone()];
                match (tree.common, tree.path) {
                    (Some(common), _) => {
                        let marked = Self::split::<W, true>(splits, sets, &mut masks);
                        Self::add_common(&masks, &marked, common, leaves, &mut scratch.values, out);
                    }
                    (None, Some(path)) => {
                        let planes = &mut planes[..path.depth];
                        Self::split_paths(splits, sets, &mut masks, planes);
                        Self::add_paths(planes, &self.tables[path.table..path.table + (1 << path.depth)], out);
                    }
                    (None, None) => {
                        Self::split::<W, false>(splits, sets, &mut masks);
                        Self::add_leaves(&masks, leaves, &mut scratch, out);
                    }
                }
            }
        }
    }

    /// Send a tree's rows down its splits; with `MARK`, also return the union of the rows
    /// that reach a leaf of the marked value.
    #[inline(always)]
    fn split<const W: usize, const MARK: bool>(
        splits: &[Split],
        sets: &[[u64; W]],
        masks: &mut [[u64; W]],
    ) -> [u64; W] {
        // Four unions, ORed at the end: the compiler keeps them in memory (in registers they
        // would be split into scalar words), and one alone would make each split wait for the
        // previous one's store.
        let mut marked = [[0u64; W]; 4];
        for (i, s) in splits.iter().enumerate() {
            let (here, _) = Self::send(s, sets, masks);
            if MARK {
                let (to, acc) = (&sets[s.marked as usize], &mut marked[i % 4]);
                *acc = std::array::from_fn(|w| acc[w] | (here[w] & to[w]));
            }
        }
        std::array::from_fn(|w| marked[0][w] | marked[1][w] | marked[2][w] | marked[3][w])
    }

    /// One split hands its children their rows; returns its own rows and those it sent right.
    #[inline(always)]
    fn send<const W: usize>(s: &Split, sets: &[[u64; W]], masks: &mut [[u64; W]]) -> ([u64; W], [u64; W]) {
        let here = masks[s.node as usize];
        let (go_left, go_right) = (&sets[2 * s.split as usize], &sets[2 * s.split as usize + 1]);
        let right = std::array::from_fn(|w| here[w] & go_right[w]);
        masks[s.left as usize] = std::array::from_fn(|w| here[w] & go_left[w]);
        masks[s.right as usize] = right;
        (here, right)
    }

    /// Send a [`Path`] tree's rows down its splits, setting in `planes[d]` the rows that go
    /// right at depth `d`.
    #[inline(always)]
    fn split_paths<const W: usize>(
        splits: &[Split],
        sets: &[[u64; W]],
        masks: &mut [[u64; W]],
        planes: &mut [[u64; W]],
    ) {
        planes.iter_mut().for_each(|p| *p = [0; W]);
        for s in splits {
            let (_, right) = Self::send(s, sets, masks);
            let plane = &mut planes[s.level as usize];
            *plane = std::array::from_fn(|w| plane[w] | right[w]);
        }
    }

    /// Each row adds the value at its path in `table`, eight rows' paths at a time: byte `i`
    /// of `paths` is row `i`'s, one bit from each plane.
    #[inline(always)]
    fn add_paths<const W: usize>(planes: &[[u64; W]], table: &[f64], out: &mut [f64]) {
        for (g, rows) in out.chunks_mut(8).enumerate() {
            let (w, shift) = (g / 8, 8 * (g % 8));
            let mut paths = 0u64;
            for (d, plane) in planes.iter().enumerate() {
                paths |= SPREAD[((plane[w] >> shift) & 0xff) as usize] << d;
            }
            for (i, o) in rows.iter_mut().enumerate() {
                *o += table[((paths >> (8 * i)) & 0xff) as usize];
            }
        }
    }

    /// A [`Common`] tree's leaves give their values: every row the usual or the marked one by
    /// its bit in the marked union, then the listed leaves overwrite theirs.
    #[inline(always)]
    fn add_common<const W: usize>(
        masks: &[[u64; W]],
        marked: &[u64; W],
        common: Common,
        listed: &[Leaf],
        values: &mut Vec<f64>,
        out: &mut [f64],
    ) {
        values.resize(64 * W, 0.0);
        let other = common.marked.unwrap_or(common.usual);
        for (w, chunk) in values.chunks_exact_mut(64).enumerate() {
            let bits = marked[w];
            for (b, v) in chunk.iter_mut().enumerate() {
                *v = if (bits >> b) & 1 != 0 { other } else { common.usual };
            }
        }
        for leaf in listed {
            let mask = &masks[leaf.node as usize];
            if mask.iter().fold(0, |a, w| a | w) == 0 {
                continue;
            }
            for (w, &word) in mask.iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    values[64 * w + bits.trailing_zeros() as usize] = leaf.value;
                    bits &= bits - 1;
                }
            }
        }
        out.iter_mut().zip(values.iter()).for_each(|(o, v)| *o += v);
    }

    /// Each listed leaf gives its value to the rows in its mask. Done without branching on
    /// the data: list the leaves with any row (and which of their words hold rows), spread
    /// those words into one list, then take one row per step, moving to the next word when
    /// the current one runs out.
    #[inline(always)]
    fn add_leaves<const W: usize>(masks: &[[u64; W]], leaves: &[Leaf], scratch: &mut LeafScratch, out: &mut [f64]) {
        let LeafScratch { reached, words, values } = scratch;
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

    /// A value's rank among the thresholds of used feature `j` (`cuts`): how many lie below
    /// it; NaN ranks past them all.
    #[inline(always)]
    fn rank(&self, j: usize, cuts: &[f64], x: f64) -> usize {
        // `x as usize` saturates (negatives and NaN to 0), so the test holds only for whole
        // values in 0..SMALL; -0.0 ranks as 0.0 does (`c < -0.0` iff `c < 0.0`).
        let k = x as usize;
        if k < SMALL && k as f64 == x {
            self.small[j][k] as usize
        } else if x.is_nan() {
            cuts.len()
        } else {
            cuts.partition_point(|&c| c < x)
        }
    }

    /// For every split id, the rows of the chunk (`all`) that go left and those that go
    /// right. Each row's rank per used feature comes from a scan of its non-zero cells when
    /// most cells are 0, else from the used features' columns copied into `columns`.
    #[inline(always)]
    fn row_sets<const W: usize>(
        &self,
        chunk: ArrayView2<'_, f64>,
        all: &[u64; W],
        sets: &mut [[[u64; W]; 2]],
        columns: &mut Vec<f64>,
    ) {
        sets.iter_mut().for_each(|s| *s = [[0; W]; 2]);
        let rows = chunk.nrows();
        match chunk.as_slice() {
            Some(cells) if self.mostly_zero(cells, chunk.ncols(), rows) => {
                self.sparse_ranks(cells, chunk.ncols(), rows, all, sets)
            }
            cells => {
                columns.resize(self.used.len() * rows, 0.0);
                self.transpose(cells, chunk, columns);
                self.column_ranks(columns, rows, sets);
            }
        }
        // Rows go left at split k when their rank is at most k: a running OR.
        for (&f, cuts) in self.used.iter().map(|f| (f, &self.cuts[*f])) {
            let mut left = [0u64; W];
            for [go_left, go_right] in &mut sets[self.base[f]..self.base[f] + cuts.len()] {
                for w in 0..W {
                    left[w] |= go_left[w];
                    go_left[w] = left[w];
                    go_right[w] = all[w] & !left[w];
                }
            }
        }
    }

    /// Whether most of the used features' cells of the chunk's first rows are 0 (counts,
    /// hashed n-grams, one-hot columns): then [`Compiled::sparse_ranks`] reads the rows.
    fn mostly_zero(&self, cells: &[f64], width: usize, rows: usize) -> bool {
        let sample = rows.min(8);
        let zeros: usize =
            (0..sample).map(|r| self.used.iter().filter(|&&f| cells[r * width + f] == 0.0).count()).sum();
        2 * zeros > sample * self.used.len()
    }

    /// Ranks of rows whose cells are mostly 0: every row starts in the bucket of 0's rank,
    /// and only its non-zero cells move it, so a row costs a scan for non-zeros instead of a
    /// search per used feature.
    #[inline(always)]
    fn sparse_ranks<const W: usize>(
        &self,
        cells: &[f64],
        width: usize,
        rows: usize,
        all: &[u64; W],
        sets: &mut [[[u64; W]; 2]],
    ) {
        let features = self.cuts.len();
        for (j, &f) in self.used.iter().enumerate() {
            let zero = self.small[j][0] as usize;
            if zero < self.cuts[f].len() {
                sets[self.base[f] + zero][0] = *all;
            }
        }
        for r in 0..rows {
            let row = &cells[r * width..r * width + features];
            let (w, bit) = (r / 64, 1u64 << (r % 64));
            for (k, cells) in row.chunks(64).enumerate() {
                // The used features with a value other than 0 (-0.0 ranks as 0.0 does; NaN is
                // not 0 and ranks past every threshold), found eight cells at a time.
                let mut bits = nonzero(cells) & self.used_bits[k];
                while bits != 0 {
                    let f = 64 * k + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    self.rank_sparse(f, row[f], w, bit, sets);
                }
            }
        }
    }

    /// A row's value `x` (not 0) of used feature `f` moves the row (bit `bit` of word `w`)
    /// from the bucket of 0's rank to that of `x`'s rank.
    #[inline(always)]
    fn rank_sparse<const W: usize>(&self, f: usize, x: f64, w: usize, bit: u64, sets: &mut [[[u64; W]; 2]]) {
        let j = self.slot[f] as usize;
        let cuts = &self.cuts[f];
        let zero = self.small[j][0] as usize;
        if zero < cuts.len() {
            sets[self.base[f] + zero][0][w] &= !bit;
        }
        let rank = self.rank(j, cuts, x);
        if rank < cuts.len() {
            sets[self.base[f] + rank][0][w] |= bit;
        }
    }

    /// Copy the used features' columns of `chunk` into `columns` (one run per feature):
    /// eight rows at a time from a contiguous chunk, whose columns read in place would touch
    /// a cache line per row and value.
    fn transpose(&self, cells: Option<&[f64]>, chunk: ArrayView2<'_, f64>, columns: &mut [f64]) {
        let rows = chunk.nrows();
        match cells {
            Some(cells) => {
                let width = chunk.ncols();
                for r0 in (0..rows).step_by(8) {
                    let r1 = (r0 + 8).min(rows);
                    for (j, &f) in self.used.iter().enumerate() {
                        for r in r0..r1 {
                            columns[j * rows + r] = cells[r * width + f];
                        }
                    }
                }
            }
            None => {
                for (j, &f) in self.used.iter().enumerate() {
                    columns[j * rows..(j + 1) * rows].iter_mut().zip(chunk.column(f)).for_each(|(c, &x)| *c = x);
                }
            }
        }
    }

    /// Ranks from the used features' columns: each row in the left set of the split with its
    /// rank.
    #[inline(always)]
    fn column_ranks<const W: usize>(&self, columns: &[f64], rows: usize, sets: &mut [[[u64; W]; 2]]) {
        for (j, &f) in self.used.iter().enumerate() {
            let cuts = &self.cuts[f];
            let start = self.base[f];
            for (r, &x) in columns[j * rows..(j + 1) * rows].iter().enumerate() {
                let rank = self.rank(j, cuts, x);
                if rank < cuts.len() {
                    sets[start + rank][0][r / 64] |= 1 << (r % 64);
                }
            }
        }
    }
}

/// Bit `i` set when `cells[i]` is not 0 (NaN included), for up to 64 cells. A full word's
/// cells in one branch-free loop, which the compiler makes vector compares.
#[inline(always)]
fn nonzero(cells: &[f64]) -> u64 {
    match <&[f64; 64]>::try_from(cells) {
        Ok(full) => {
            let mut bits = 0u64;
            for (i, &x) in full.iter().enumerate() {
                bits |= u64::from(x != 0.0) << i;
            }
            bits
        }
        Err(_) => cells.iter().enumerate().fold(0, |bits, (i, &x)| bits | (u64::from(x != 0.0) << i)),
    }
}

/// A model's compiled scorer, built on first use and never serialized. Clones start empty
/// and equality ignores it: it is a cache of the trees, not part of the model.
///
/// A compiled scorer bakes in the leaf values it was built with, so the cache remembers their
/// key (see `tree::Leaves::key`) and only hands the scorer to a caller with the same key; any
/// other caller gets a scorer built for its own leaves.
#[derive(Default)]
pub struct ScorerCache(OnceLock<(u64, Option<Compiled>)>);

impl ScorerCache {
    pub fn with<R>(
        &self,
        key: u64,
        build: impl Fn() -> Option<Compiled>,
        score: impl FnOnce(Option<&Compiled>) -> R,
    ) -> R {
        let (cached_key, compiled) = self.0.get_or_init(|| (key, build()));
        if *cached_key == key {
            score(compiled.as_ref())
        } else {
            score(build().as_ref())
        }
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
    use crate::models::tree::Node as TreeNode;
    use ndarray::{Array2, ArrayView2};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::ops::Range;

    /// A random tree of at most the given depth over `d` features with thresholds from
    /// `pool`; most leaf values come from `common` (all of them random when it is empty).
    fn random_tree(rng: &mut ChaCha8Rng, d: usize, depth: usize, pool: &[f64], common: &[f64]) -> Tree {
        fn build(
            rng: &mut ChaCha8Rng,
            d: usize,
            depth: usize,
            pool: &[f64],
            common: &[f64],
            nodes: &mut Vec<TreeNode>,
        ) -> u32 {
            let at = nodes.len() as u32;
            let leaf = depth == 0 || rng.gen_bool(0.15);
            nodes.push(TreeNode {
                feature: if leaf { LEAF } else { rng.gen_range(0..d) as u32 },
                threshold: pool[rng.gen_range(0..pool.len())],
                bin: 0,
                left: 0,
                right: 0,
                value: if !common.is_empty() && rng.gen_bool(0.9) {
                    common[rng.gen_range(0..common.len())]
                } else {
                    rng.gen::<f64>()
                },
                cover: 0.0,
            });
            if !leaf {
                let l = build(rng, d, depth - 1, pool, common, nodes);
                let r = build(rng, d, depth - 1, pool, common, nodes);
                nodes[at as usize].left = l;
                nodes[at as usize].right = r;
            }
            at
        }
        let mut nodes = Vec::new();
        build(rng, d, depth, pool, common, &mut nodes);
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
        // Trees whose leaves are mostly 0 or 1 (as a forest's), some with -0.0 among them
        // too, some with all values distinct (as boosting's: deep ones with their leaves
        // listed, shallow ones by path, up to the deepest a path byte holds), and a lone leaf.
        let mut trees: Vec<Tree> = (0..39)
            .map(|t| match t % 3 {
                0 => random_tree(&mut rng, d, 9, &pool, &[0.0, 1.0]),
                1 => random_tree(&mut rng, d, 9, &pool, &[1.0, 0.0, -0.0, 1.0, 0.0, 0.0, 1.0]),
                _ => random_tree(&mut rng, d, [12, 5, 8][t % 9 / 3], &pool, &[]),
            })
            .collect();
        trees.push(random_tree(&mut rng, d, 0, &pool, &[0.5]));
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
        let common = compiled.trees.iter().filter(|t| t.common.is_some()).count();
        assert!((20..40).contains(&common), "{common} of 40 trees scored by common values: both ways are tested");
        assert!(compiled.trees.iter().any(|t| t.common.is_some() && !t.leaves.is_empty()), "some listed leaves");
        let by_path: Vec<usize> = compiled.trees.iter().filter_map(|t| t.path.map(|p| p.depth)).collect();
        assert!(by_path.len() >= 5 && by_path.contains(&PATH_DEPTH), "trees by path, depths {by_path:?}");
        assert!(compiled.trees.iter().any(|t| t.common.is_none() && t.path.is_none()), "deep trees listing leaves");
        for range in [0..40, 0..1, 13..29] {
            // Each row walks each tree, adding in tree order.
            let walked: Vec<f64> = x
                .rows()
                .into_iter()
                .map(|row| trees[range.clone()].iter().fold(0.25, |s, t| s + t.predict_slice(row.as_slice().unwrap())))
                .collect();
            // The portable block path, and the ones production takes (AVX2 where the CPU has
            // it, as on the machines the benchmarks ran on) at both block widths.
            type Path = fn(&Compiled, ArrayView2<'_, f64>, Range<usize>, &mut [f64]);
            let paths: [(&str, Path); 3] = [
                ("add::<2>", |c, x, r, o| c.add::<2>(x, r, o)),
                ("add_fast::<4>", |c, x, r, o| c.add_fast::<4>(x, r, o)),
                ("add_fast::<16>", |c, x, r, o| c.add_fast::<16>(x, r, o)),
            ];
            for (name, path) in paths {
                let mut blocked = vec![0.25; 200];
                path(&compiled, x.view(), range.clone(), &mut blocked);
                for (i, (a, b)) in walked.iter().zip(&blocked).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{name}: row {i}, trees {range:?}: walk {a} vs block {b}");
                }
            }
        }
        let one_row = x.slice(ndarray::s![5..6, ..]);
        let mut blocked = vec![0.0];
        compiled.add::<1>(one_row, 0..40, &mut blocked);
        let walked: f64 = trees.iter().fold(0.0, |s, t| s + t.predict_slice(one_row.row(0).as_slice().unwrap()));
        assert_eq!(walked.to_bits(), blocked[0].to_bits());
    }

    /// Wide rows that are mostly 0 (a URL's hashed trigram counts) take the sparse path: the
    /// same bits as walking, for counts, fractions, negatives, NaN, -0.0, and features past
    /// the first word of 64 that no tree uses.
    #[test]
    fn mostly_zero_wide_rows_score_as_row_walks_bit_for_bit() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let d = 150;
        let pool: Vec<f64> = [0.0, 0.5, 1.0, 1.5, 2.5, 3.0, 15.5, 16.0, 40.0, -1.0].into_iter().collect();
        let trees: Vec<Tree> = (0..30)
            .map(|t| {
                let mut tree = random_tree(&mut rng, d, 6, &pool, if t % 2 == 0 { &[] } else { &[0.0, 1.0] });
                // Features 100..150 are never split on.
                tree.nodes.iter_mut().filter(|n| n.feature != LEAF).for_each(|n| n.feature %= 100);
                tree
            })
            .collect();
        let mut x = Array2::from_shape_fn((300, d), |_| match rng.gen_range(0..20) {
            0 => rng.gen_range(0..20) as f64,
            1 => pool[rng.gen_range(0..pool.len())],
            2 => rng.gen_range(-2.0..20.0),
            _ => 0.0,
        });
        x[[4, 7]] = f64::NAN;
        x[[5, 8]] = -0.0;
        x[[6, 9]] = f64::INFINITY;
        x[[7, 10]] = -3.0;
        let compiled = Compiled::new(&trees, |_, v| v).expect("no NaN thresholds");
        let cells = x.as_slice().expect("standard layout");
        assert!(compiled.mostly_zero(cells, d, 8), "the sparse path is the one tested");
        let walked: Vec<f64> = x
            .rows()
            .into_iter()
            .map(|row| trees.iter().fold(0.0, |s, t| s + t.predict_slice(row.as_slice().unwrap())))
            .collect();
        for w in [1, 4, 16] {
            let mut blocked = vec![0.0; x.nrows()];
            match w {
                1 => compiled.add::<1>(x.view(), 0..trees.len(), &mut blocked),
                4 => compiled.add_fast::<4>(x.view(), 0..trees.len(), &mut blocked),
                _ => compiled.add_fast::<16>(x.view(), 0..trees.len(), &mut blocked),
            }
            for (i, (a, b)) in walked.iter().zip(&blocked).enumerate() {
                assert_eq!(a.to_bits(), b.to_bits(), "W={w}: row {i}: walk {a} vs block {b}");
            }
        }
    }

    #[test]
    fn a_nan_threshold_or_a_node_reached_twice_falls_back_to_walking() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let tree = random_tree(&mut rng, 3, 3, &[0.5], &[]);
        assert!(tree.nodes[0].feature != LEAF && Compiled::new(std::slice::from_ref(&tree), |_, v| v).is_some());
        let mut nan = tree.clone();
        nan.nodes[0].threshold = f64::NAN;
        assert!(Compiled::new(&[nan], |_, v| v).is_none());
        let mut shared = tree.clone();
        shared.nodes[0].right = shared.nodes[0].left;
        assert!(Compiled::new(&[shared], |_, v| v).is_none());
        let mut outside = tree;
        outside.nodes[0].right = outside.nodes.len() as u32;
        assert!(Compiled::new(&[outside], |_, v| v).is_none());
    }

    #[test]
    fn the_scorer_cache_serves_only_the_leaves_it_was_built_for() {
        use crate::models::tree::{add_leaves, Leaves};
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let trees: Vec<Tree> = (0..8).map(|_| random_tree(&mut rng, 3, 4, &[-1.0, 0.0, 1.0], &[0.0, 1.0])).collect();
        let x = Array2::from_shape_fn((600, 3), |_| rng.gen_range(-2.0..2.0));
        let weights: Vec<f64> = (0..8).map(|t| 0.1 + t as f64).collect();
        let walk = |leaves: Leaves<'_>| -> Vec<f64> {
            let vote = |t: usize, v: f64| match leaves {
                Leaves::AsIs => v,
                Leaves::Vote(w) => {
                    if v >= 0.5 {
                        w[t]
                    } else {
                        -w[t]
                    }
                }
            };
            x.rows()
                .into_iter()
                .map(|r| (0..8).fold(0.0, |s, t| s + vote(t, trees[t].predict_slice(r.as_slice().unwrap()))))
                .collect()
        };
        let cache = ScorerCache::default();
        for leaves in [Leaves::AsIs, Leaves::Vote(&weights), Leaves::AsIs] {
            // The first call fills the cache with plain leaf values; the vote must not get them.
            let mut out = vec![0.0; 600];
            add_leaves(&trees, &cache, leaves, x.view(), 0..8, &mut out);
            assert_eq!(out, walk(leaves), "{leaves:?}");
        }
    }

    #[test]
    fn many_rows_on_several_threads_score_as_row_walks_bit_for_bit() {
        use crate::models::tree::{add_leaves, Leaves};
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let pool = [-1.0, -0.25, 0.0, 0.5, 1.0];
        let trees: Vec<Tree> = (0..30).map(|_| random_tree(&mut rng, 4, 6, &pool, &[])).collect();
        // Past the parallel threshold, and not a multiple of a task's rows.
        let n = 2 * super::super::PARALLEL_ROWS + 777;
        let x = Array2::from_shape_fn((n, 4), |_| rng.gen_range(-2.0..2.0));
        let walked: Vec<f64> = x
            .rows()
            .into_iter()
            .map(|r| trees.iter().fold(0.0, |s, t| s + t.predict_slice(r.as_slice().unwrap())))
            .collect();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut out = vec![0.0; n];
            pool.install(|| add_leaves(&trees, &ScorerCache::default(), Leaves::AsIs, x.view(), 0..30, &mut out));
            let differ = out.iter().zip(&walked).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
            assert_eq!(differ, 0, "{threads} threads: {differ} of {n} rows differ from the row walk");
        }
    }
}
