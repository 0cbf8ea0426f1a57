//! Growing one tree on binned data, depth first, with histogram split search.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{Binned, Node, Tree, LEAF};

/// What a split optimizes. Per row the learner sees statistics `(a, b, c)`:
/// classification: `a = weight × is_threat`, `b = weight`; boosting: `a = gradient`,
/// `b = hessian`; and `c`, how many training rows the row stands for (see
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

/// Histogram cell: (sum a, sum b, row count).
type Cell = [f64; 3];

struct Grower<'a> {
    data: &'a Binned,
    a: &'a [f64],
    b: &'a [f64],
    c: &'a [f64],
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
fn add_feature_hist(data: &Binned, s: [&[f64]; 3], rows: &[u32], f: usize, hist: &mut [Cell]) {
    let column = data.column(f);
    let cells = &mut hist[data.offsets[f]..data.offsets[f + 1]];
    for &r in rows {
        let r = r as usize;
        let cell = &mut cells[column[r] as usize];
        cell[0] += s[0][r];
        cell[1] += s[1][r];
        cell[2] += s[2][r];
    }
}

/// Histogram over pack codes (all features), see [`super::bins::Pack`].
fn build_pack_hist(data: &Binned, s: [&[f64]; 3], rows: &[u32]) -> Vec<Cell> {
    let mut hist = vec![[0.0; 3]; data.pack_offsets[data.packs.len()]];
    let offsets = &data.pack_offsets[..data.packs.len()];
    for &r in rows {
        let r = r as usize;
        let (ar, br, cr) = (s[0][r], s[1][r], s[2][r]);
        for (&code, &off) in data.packed_row(r).iter().zip(offsets) {
            let cell = &mut hist[off + code as usize];
            cell[0] += ar;
            cell[1] += br;
            cell[2] += cr;
        }
    }
    hist
}

/// Per-feature histogram from a pack histogram.
fn expand(data: &Binned, packs: &[Cell]) -> Vec<Cell> {
    let mut hist = vec![[0.0; 3]; data.total_bins()];
    for (p, pack) in data.packs.iter().enumerate() {
        let cells = &packs[data.pack_offsets[p]..data.pack_offsets[p + 1]];
        for (code, cell) in cells.iter().enumerate() {
            if cell[2] == 0.0 {
                continue;
            }
            let bins = &pack.decode[code * pack.features.len()..(code + 1) * pack.features.len()];
            for (&f, &bin) in pack.features.iter().zip(bins) {
                let out = &mut hist[data.offsets[f] + bin as usize];
                out[0] += cell[0];
                out[1] += cell[1];
                out[2] += cell[2];
            }
        }
    }
    hist
}

impl Grower<'_> {
    fn leaf(&mut self, start: usize, len: usize, a: f64, b: f64) -> u32 {
        self.nodes.push(Node {
            feature: LEAF,
            threshold: 0.0,
            bin: 0,
            left: 0,
            right: 0,
            value: self.p.criterion.leaf(a, b),
        });
        let id = (self.nodes.len() - 1) as u32;
        self.leaves.push((start, start + len, id));
        id
    }

    fn best_split(&self, hist: &[Cell], features: &[usize], tot: Cell) -> Option<Best> {
        let c = self.p.criterion;
        let parent = c.cost(tot[0], tot[1]);
        let mut best: Option<Best> = None;
        for &f in features {
            let cells = &hist[self.data.offsets[f]..self.data.offsets[f + 1]];
            let mut left = [0.0; 3];
            for (bin, cell) in cells[..cells.len() - 1].iter().enumerate() {
                left[0] += cell[0];
                left[1] += cell[1];
                left[2] += cell[2];
                let right = [tot[0] - left[0], tot[1] - left[1], tot[2] - left[2]];
                if left[2] < self.p.min_samples_leaf as f64 || right[2] < self.p.min_samples_leaf as f64 {
                    continue;
                }
                if left[1] < self.p.min_child_weight || right[1] < self.p.min_child_weight {
                    continue;
                }
                let gain = parent - c.cost(left[0], left[1]) - c.cost(right[0], right[1]);
                if gain > best.as_ref().map_or(1e-12, |b| b.gain) {
                    best = Some(Best { gain, feature: f, bin, left });
                }
            }
        }
        best
    }

    /// Whether a node with these totals at this depth is a leaf without looking for a split.
    fn stops(&self, depth: usize, tot: Cell) -> bool {
        let n = tot[2] as usize;
        depth >= self.p.max_depth
            || n < self.p.min_samples_split
            || n < 2 * self.p.min_samples_leaf
            || self.p.criterion.is_pure(tot[0], tot[1])
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
                let h = build_pack_hist(self.data, [self.a, self.b, self.c], rows);
                let t = h[self.data.pack_offsets[0]..self.data.pack_offsets[1]]
                    .iter()
                    .fold([0.0; 3], |s, c| [s[0] + c[0], s[1] + c[1], s[2] + c[2]]);
                hist = Some(h);
                t
            }
            None => {
                let (a, b, c) = (self.a, self.b, self.c);
                rows.iter().fold([0.0; 3], |s, &r| [s[0] + a[r as usize], s[1] + b[r as usize], s[2] + c[r as usize]])
            }
        };
        if self.stops(depth, tot) {
            return self.leaf(start, rows.len(), tot[0], tot[1]);
        }

        // `pack_hist` is kept for the children (subtraction); `hist` is per feature.
        let (pack_hist, hist, features): (Option<Vec<Cell>>, Vec<Cell>, Vec<usize>) = if all_features {
            let packs = hist.unwrap_or_else(|| build_pack_hist(self.data, [self.a, self.b, self.c], rows));
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
            let mut hist = vec![[0.0; 3]; self.data.total_bins()];
            let mut chosen = Vec::with_capacity(k);
            for i in 0..pool.len() {
                if i >= k && !chosen.is_empty() {
                    break;
                }
                let j = self.rng.gen_range(i..pool.len());
                pool.swap(i, j);
                let f = pool[i];
                add_feature_hist(self.data, [self.a, self.b, self.c], rows, f, &mut hist);
                let cells = &hist[self.data.offsets[f]..self.data.offsets[f + 1]];
                if cells.iter().filter(|c| c[2] > 0.0).count() > 1 {
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
            return self.leaf(start, rows.len(), tot[0], tot[1]);
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
            value: self.p.criterion.leaf(tot[0], tot[1]),
        });
        let (left_rows, right_rows) = rows.split_at_mut(split);
        drop(hist);
        let left_tot = best.left;
        let right_tot = [tot[0] - left_tot[0], tot[1] - left_tot[1], tot[2] - left_tot[2]];
        // Children that will be leaves need no histogram (at the last level, none does).
        let needs_hist = !self.stops(depth + 1, left_tot) || !self.stops(depth + 1, right_tot);
        let (left_hist, right_hist) = if let (Some(parent), true) = (pack_hist, needs_hist) {
            // Build the smaller child's histogram, derive the larger one by subtraction.
            let small_is_left = left_tot[2] <= right_tot[2];
            let small = build_pack_hist(
                self.data,
                [self.a, self.b, self.c],
                if small_is_left { left_rows } else { right_rows },
            );
            let large: Vec<Cell> =
                parent.iter().zip(&small).map(|(p, s)| [p[0] - s[0], p[1] - s[1], p[2] - s[2]]).collect();
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

/// Grow a tree on `rows` of `data` with per-row statistics `[a, b, c]` (see [`Criterion`]).
/// `rows` is reordered so that each leaf's rows are contiguous.
pub fn grow(data: &Binned, rows: &mut [u32], stats: [&[f64]; 3], p: &GrowParams, rng: &mut ChaCha8Rng) -> Grown {
    let [a, b, c] = stats;
    let mut g = Grower {
        data,
        a,
        b,
        c,
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
