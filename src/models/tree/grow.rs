//! Growing one tree on binned data, depth first, with histogram split search.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{Binned, Node, Tree, LEAF};

/// What a split optimizes, over the per-row statistics of [`Stats`] (summed in [`Sums`]):
/// classification: `gradient = weight × is_threat`, `hessian = weight`; boosting: the
/// gradient and hessian of the loss; `count`: how many training rows the row stands for (see
/// [`super::Binned::groups`]), which `min_samples_*` count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Criterion {
    Gini,
    Entropy,
    /// Second-order boosting (XGBoost's gain) with L2 penalty `lambda` on leaf values.
    Newton {
        lambda: f64,
    },
}

impl Criterion {
    /// Impurity (or negative score) of a node, weighted by its size: lower is better.
    #[inline]
    fn cost(self, a: f64, b: f64) -> f64 {
        match self {
            Criterion::Gini => {
                if b <= 0.0 {
                    0.0
                } else {
                    b - (a * a + (b - a) * (b - a)) / b
                }
            }
            Criterion::Entropy => {
                let term = |x: f64| if x > 0.0 { -x * (x / b).ln() } else { 0.0 };
                if b <= 0.0 {
                    0.0
                } else {
                    term(a) + term(b - a)
                }
            }
            Criterion::Newton { lambda } => -(a * a) / (b + lambda),
        }
    }

    fn leaf(self, a: f64, b: f64) -> f64 {
        match self {
            Criterion::Gini | Criterion::Entropy => {
                if b > 0.0 {
                    a / b
                } else {
                    0.5
                }
            }
            Criterion::Newton { lambda } => -a / (b + lambda),
        }
    }

    fn is_pure(self, a: f64, b: f64) -> bool {
        match self {
            Criterion::Gini | Criterion::Entropy => a <= 1e-12 * b || a >= b * (1.0 - 1e-12),
            Criterion::Newton { .. } => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GrowParams {
    pub criterion: Criterion,
    pub max_depth: usize,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    /// Minimum `b` (weight or hessian sum) in a child.
    pub min_child_weight: f64,
    /// Features drawn (without replacement) at each split; `n_features` for all.
    pub features_per_split: usize,
}

/// Per-row statistics a tree is grown on (see [`Criterion`]), one slice each, by row.
#[derive(Debug, Clone, Copy)]
pub struct Stats<'a> {
    pub gradient: &'a [f64],
    pub hessian: &'a [f64],
    pub count: &'a [f64],
}

impl Stats<'_> {
    #[inline]
    fn at(&self, r: usize) -> Sums {
        Sums { gradient: self.gradient[r], hessian: self.hessian[r], count: self.count[r] }
    }
}

/// Owned per-row statistics, viewed as [`Stats`] to grow a tree.
#[derive(Debug, Clone, Default)]
pub struct StatColumns {
    pub gradient: Vec<f64>,
    pub hessian: Vec<f64>,
    pub count: Vec<f64>,
}

impl StatColumns {
    pub fn zeros(n: usize) -> StatColumns {
        StatColumns { gradient: vec![0.0; n], hessian: vec![0.0; n], count: vec![0.0; n] }
    }

    pub fn view(&self) -> Stats<'_> {
        Stats { gradient: &self.gradient, hessian: &self.hessian, count: &self.count }
    }
}

/// Sums of [`Stats`] over rows: a histogram cell, a node's or a child's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    pub gradient: f64,
    pub hessian: f64,
    pub count: f64,
}

impl std::ops::AddAssign for Sums {
    #[inline]
    fn add_assign(&mut self, o: Sums) {
        self.gradient += o.gradient;
        self.hessian += o.hessian;
        self.count += o.count;
    }
}

impl std::ops::Add for Sums {
    type Output = Sums;
    #[inline]
    fn add(mut self, o: Sums) -> Sums {
        self += o;
        self
    }
}

impl std::ops::Sub for Sums {
    type Output = Sums;
    #[inline]
    fn sub(self, o: Sums) -> Sums {
        Sums { gradient: self.gradient - o.gradient, hessian: self.hessian - o.hessian, count: self.count - o.count }
    }
}

type Cell = Sums;

struct Grower<'a> {
    data: &'a Binned,
    stats: Stats<'a>,
    p: &'a GrowParams,
    rng: &'a mut ChaCha8Rng,
    nodes: Vec<Node>,
    importance: Vec<f64>,
    /// (start, end, node) of each leaf's rows in the final order of `rows`.
    leaves: Vec<(usize, usize, u32)>,
    scratch: Vec<u32>,
}

struct Best {
    gain: f64,
    feature: usize,
    bin: usize,
    /// Totals of the left child.
    left: Cell,
}

/// Add feature `f`'s histogram over `rows` into its cells of `hist` (random forests draw
/// features one at a time).
fn add_feature_hist(data: &Binned, s: Stats<'_>, rows: &[u32], f: usize, hist: &mut [Cell]) {
    let column = data.column(f);
    let cells = &mut hist[data.offsets[f]..data.offsets[f + 1]];
    for &r in rows {
        let r = r as usize;
        cells[column[r] as usize] += s.at(r);
    }
}

/// Rows from which a pack histogram is built on several threads.
const PARALLEL_HIST_ROWS: usize = 4096;

/// Histogram over pack codes (all features), see [`super::bins::Pack`]. On many rows, the
/// packs are shared out among the threads of the current rayon pool: each thread sums its
/// packs' cells over all the rows, in row order, so every cell gets the same additions in the
/// same order as on one thread, and the tree is the same bit for bit.
fn build_pack_hist(data: &Binned, s: Stats<'_>, rows: &[u32]) -> Vec<Cell> {
    let packs = data.packs.len();
    let mut hist = vec![Sums::default(); data.pack_offsets[packs]];
    let threads = rayon::current_num_threads().min(packs);
    if threads > 1 && rows.len() >= PARALLEL_HIST_ROWS {
        use rayon::prelude::*;
        let per = packs.div_ceil(threads);
        let mut parts = Vec::with_capacity(threads);
        let mut rest = hist.as_mut_slice();
        for lo in (0..packs).step_by(per) {
            let hi = (lo + per).min(packs);
            let (cells, tail) = rest.split_at_mut(data.pack_offsets[hi] - data.pack_offsets[lo]);
            parts.push((lo..hi, cells));
            rest = tail;
        }
        parts.into_par_iter().for_each(|(range, cells)| add_pack_hist(data, s, rows, range, cells));
    } else {
        add_pack_hist(data, s, rows, 0..packs, &mut hist);
    }
    hist
}

/// Add the rows' statistics into the cells of packs `range` (`cells` starts at the first's).
fn add_pack_hist(data: &Binned, s: Stats<'_>, rows: &[u32], range: std::ops::Range<usize>, cells: &mut [Cell]) {
    let base = data.pack_offsets[range.start];
    let offsets: Vec<usize> = data.pack_offsets[range.clone()].iter().map(|o| o - base).collect();
    for &r in rows {
        let r = r as usize;
        let row = s.at(r);
        for (&code, &off) in data.packed_row(r)[range.clone()].iter().zip(&offsets) {
            cells[off + code as usize] += row;
        }
    }
}

/// Per-feature histogram from a pack histogram.
fn expand(data: &Binned, packs: &[Cell]) -> Vec<Cell> {
    let mut hist = vec![Sums::default(); data.total_bins()];
    for (p, pack) in data.packs.iter().enumerate() {
        let cells = &packs[data.pack_offsets[p]..data.pack_offsets[p + 1]];
        for (code, cell) in cells.iter().enumerate() {
            if cell.count == 0.0 {
                continue;
            }
            let bins = &pack.decode[code * pack.features.len()..(code + 1) * pack.features.len()];
            for (&f, &bin) in pack.features.iter().zip(bins) {
                hist[data.offsets[f] + bin as usize] += *cell;
            }
        }
    }
    hist
}

impl Grower<'_> {
    fn leaf(&mut self, start: usize, len: usize, tot: Sums) -> u32 {
        self.nodes.push(Node {
            feature: LEAF,
            threshold: 0.0,
            bin: 0,
            left: 0,
            right: 0,
            value: self.p.criterion.leaf(tot.gradient, tot.hessian),
            cover: tot.count,
        });
        let id = (self.nodes.len() - 1) as u32;
        self.leaves.push((start, start + len, id));
        id
    }

    fn best_split(&self, hist: &[Cell], features: &[usize], tot: Cell) -> Option<Best> {
        let c = self.p.criterion;
        let parent = c.cost(tot.gradient, tot.hessian);
        let mut best: Option<Best> = None;
        for &f in features {
            let cells = &hist[self.data.offsets[f]..self.data.offsets[f + 1]];
            let mut left = Sums::default();
            for (bin, cell) in cells[..cells.len() - 1].iter().enumerate() {
                left += *cell;
                let right = tot - left;
                if left.count < self.p.min_samples_leaf as f64 || right.count < self.p.min_samples_leaf as f64 {
                    continue;
                }
                if left.hessian < self.p.min_child_weight || right.hessian < self.p.min_child_weight {
                    continue;
                }
                let gain = parent - c.cost(left.gradient, left.hessian) - c.cost(right.gradient, right.hessian);
                if gain > best.as_ref().map_or(1e-12, |b| b.gain) {
                    best = Some(Best { gain, feature: f, bin, left });
                }
            }
        }
        best
    }

    /// Whether a node with these totals at this depth is a leaf without looking for a split.
    fn stops(&self, depth: usize, tot: Cell) -> bool {
        let n = tot.count as usize;
        depth >= self.p.max_depth
            || n < self.p.min_samples_split
            || n < 2 * self.p.min_samples_leaf
            || self.p.criterion.is_pure(tot.gradient, tot.hessian)
    }

    /// `hist`: the node's pack histogram when the parent derived it; `tot`: its totals when
    /// known.
    fn grow(
        &mut self,
        rows: &mut [u32],
        start: usize,
        depth: usize,
        hist: Option<Vec<Cell>>,
        tot: Option<Cell>,
        // Features known to be constant in this node (random forests' feature draws skip them).
        mut constants: Vec<usize>,
    ) -> u32 {
        let all_features = self.p.features_per_split >= self.data.n_features;
        let mut hist = hist;
        let tot = match tot {
            Some(t) => t,
            // The root: with all features its histogram is needed anyway, and any pack's
            // cells sum to the totals.
            None if all_features => {
                let h = build_pack_hist(self.data, self.stats, rows);
                let t =
                    h[self.data.pack_offsets[0]..self.data.pack_offsets[1]].iter().fold(Sums::default(), |s, c| s + *c);
                hist = Some(h);
                t
            }
            None => rows.iter().fold(Sums::default(), |s, &r| s + self.stats.at(r as usize)),
        };
        if self.stops(depth, tot) {
            return self.leaf(start, rows.len(), tot);
        }

        // `pack_hist` is kept for the children (subtraction); `hist` is per feature.
        let (pack_hist, hist, features): (Option<Vec<Cell>>, Vec<Cell>, Vec<usize>) = if all_features {
            let packs = hist.unwrap_or_else(|| build_pack_hist(self.data, self.stats, rows));
            let per_feature = expand(self.data, &packs);
            (Some(packs), per_feature, (0..self.data.n_features).collect())
        } else {
            // Draw features for this split without replacement (partial Fisher-Yates), as
            // scikit-learn does: never among features already known to be constant in this
            // node (constant in an ancestor), and a drawn feature that turns out constant here
            // does not end the search: drawing goes on until `k` features were visited AND one
            // of them can split the node. (Stopping at `k` constant draws made leaves too early
            // on data with few distinct values, such as the phishing table.)
            let k = self.p.features_per_split;
            let mut pool: Vec<usize> = (0..self.data.n_features).filter(|f| !constants.contains(f)).collect();
            let mut hist = vec![Sums::default(); self.data.total_bins()];
            let mut chosen = Vec::with_capacity(k);
            for i in 0..pool.len() {
                if i >= k && !chosen.is_empty() {
                    break;
                }
                let j = self.rng.gen_range(i..pool.len());
                pool.swap(i, j);
                let f = pool[i];
                add_feature_hist(self.data, self.stats, rows, f, &mut hist);
                let cells = &hist[self.data.offsets[f]..self.data.offsets[f + 1]];
                if cells.iter().filter(|c| c.count > 0.0).count() > 1 {
                    chosen.push(f);
                } else {
                    constants.push(f);
                }
            }
            // Ascending, so ties between features resolve the same way whatever the draw order.
            chosen.sort_unstable();
            (None, hist, chosen)
        };

        let Some(best) = self.best_split(&hist, &features, tot) else {
            return self.leaf(start, rows.len(), tot);
        };
        self.importance[best.feature] += best.gain;

        // Stable partition: left (code <= bin) first, each side keeps ascending row order,
        // so later passes over the rows read memory in order.
        // Branch-free: the side of a row is unpredictable, a mispredicted branch per row cost
        // more than the histograms.
        let column = self.data.column(best.feature);
        let bin = best.bin as u8;
        self.scratch.resize(rows.len(), 0);
        let (mut split, mut right) = (0, 0);
        for i in 0..rows.len() {
            let r = rows[i];
            let left = (column[r as usize] <= bin) as usize;
            rows[split] = r;
            self.scratch[right] = r;
            split += left;
            right += 1 - left;
        }
        rows[split..].copy_from_slice(&self.scratch[..right]);

        let id = self.nodes.len();
        self.nodes.push(Node {
            feature: best.feature as u32,
            threshold: self.data.thresholds[best.feature][best.bin],
            bin: best.bin as u8,
            left: 0,
            right: 0,
            value: self.p.criterion.leaf(tot.gradient, tot.hessian),
            cover: tot.count,
        });
        let (left_rows, right_rows) = rows.split_at_mut(split);
        drop(hist);
        let left_tot = best.left;
        let right_tot = tot - left_tot;
        // Children that will be leaves need no histogram (at the last level, none does).
        let needs_hist = !self.stops(depth + 1, left_tot) || !self.stops(depth + 1, right_tot);
        let (left_hist, right_hist) = if let (Some(parent), true) = (pack_hist, needs_hist) {
            // Build the smaller child's histogram, derive the larger one by subtraction.
            let small_is_left = left_tot.count <= right_tot.count;
            let small = build_pack_hist(self.data, self.stats, if small_is_left { left_rows } else { right_rows });
            let large: Vec<Cell> = parent.iter().zip(&small).map(|(p, s)| *p - *s).collect();
            if small_is_left {
                (Some(small), Some(large))
            } else {
                (Some(large), Some(small))
            }
        } else {
            (None, None)
        };
        let left = self.grow(left_rows, start, depth + 1, left_hist, Some(left_tot), constants.clone());
        let right = self.grow(right_rows, start + split, depth + 1, right_hist, Some(right_tot), constants);
        self.nodes[id].left = left;
        self.nodes[id].right = right;
        id as u32
    }
}

/// A grown tree with what the caller may need besides it.
pub struct Grown {
    pub tree: Tree,
    /// Total gain per feature.
    pub gains: Vec<f64>,
    /// (start, end, leaf node): `rows[start..end]` (as reordered by [`grow`]) fall in that leaf.
    pub leaves: Vec<(usize, usize, u32)>,
}

/// Grow a tree on `rows` of `data` with per-row statistics `stats` (see [`Criterion`]).
/// `rows` is reordered so that each leaf's rows are contiguous.
pub fn grow(data: &Binned, rows: &mut [u32], stats: Stats<'_>, p: &GrowParams, rng: &mut ChaCha8Rng) -> Grown {
    let mut g = Grower {
        data,
        stats,
        p,
        rng,
        nodes: Vec::new(),
        importance: vec![0.0; data.n_features],
        leaves: Vec::new(),
        scratch: Vec::with_capacity(rows.len()),
    };
    g.grow(rows, 0, 0, None, None, Vec::new());
    Grown { tree: Tree { nodes: g.nodes }, gains: g.importance, leaves: g.leaves }
}
