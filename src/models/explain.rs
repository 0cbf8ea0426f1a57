//! Per-prediction explanations: exact path-dependent TreeSHAP (Lundberg et al., "Consistent
//! individualized feature attribution for tree ensembles", 2018, Algorithm 2) for every tree
//! family, and exact linear contributions for logistic regression.
//!
//! Contributions are in the model's margin, the quantity its trees or coefficients add up
//! before the final link: log-odds for logistic regression and boosting, the averaged leaf
//! probability for a tree or a forest, the averaged hard vote for bagging, the weighted vote
//! for AdaBoost. For every row, `base + sum(contributions) == margin` (up to rounding), which
//! a test checks for each family.
//!
//! Path-dependent TreeSHAP needs how many training rows reached each node (`Node::cover`),
//! recorded when a tree is grown; a bundle written before covers were recorded cannot be
//! explained (retrain it).

use super::tree::{Tree, LEAF};
use super::Model;

/// How the margin becomes the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginKind {
    /// score = sigmoid(margin).
    LogOdds,
    /// score = sigmoid(2 margin) (AdaBoost's weighted vote).
    HalfLogOdds,
    /// score = margin.
    Probability,
}

/// One row's explanation: the expected margin, and what each model feature adds to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub base: f64,
    pub contributions: Vec<f64>,
    pub kind: MarginKind,
}

impl Explanation {
    pub fn margin(&self) -> f64 {
        self.base + self.contributions.iter().sum::<f64>()
    }
}

impl Model {
    /// The margin of one encoded row, walking each tree (or the coefficients) directly: what
    /// an explanation's base value and contributions add up to.
    pub fn margin(&self, x: &[f64]) -> f64 {
        let vote = |a: f64, v: f64| if v >= 0.5 { a } else { -a };
        match self {
            Model::Logistic(m) => m.intercept + m.coefficients.iter().zip(x).map(|(w, v)| w * v).sum::<f64>(),
            Model::DecisionTree(m) => m.tree.predict_slice(x),
            Model::RandomForest(m) => m.trees.iter().map(|t| t.predict_slice(x)).sum::<f64>() / m.trees.len() as f64,
            Model::Gbm(m) => m.init + m.trees.iter().map(|t| t.predict_slice(x)).sum::<f64>(),
            Model::AdaBoost(m) => m.trees.iter().zip(&m.alphas).map(|(t, &a)| vote(a, t.predict_slice(x))).sum(),
            Model::Bagging(m) => {
                let votes = m.trees.iter().zip(&m.features).map(|(t, cols)| {
                    let sub: Vec<f64> = cols.iter().map(|&c| x[c]).collect();
                    f64::from(u8::from(t.tree.predict_slice(&sub) >= 0.5))
                });
                votes.sum::<f64>() / m.trees.len() as f64
            }
        }
    }

    /// Explain one encoded row (`x`: the model's features). An error names why the model
    /// cannot be explained.
    pub fn explain(&self, x: &[f64]) -> Result<Explanation, String> {
        let n = x.len();
        let mut phi = vec![0.0; n];
        let (base, kind) = match self {
            Model::Logistic(m) => {
                for (p, (w, v)) in phi.iter_mut().zip(m.coefficients.iter().zip(x)) {
                    *p = w * v;
                }
                (m.intercept, MarginKind::LogOdds)
            }
            Model::DecisionTree(m) => (shap_into(&m.tree, x, None, 1.0, |v| v, &mut phi)?, MarginKind::Probability),
            Model::RandomForest(m) => {
                let w = 1.0 / m.trees.len() as f64;
                let mut base = 0.0;
                for t in &m.trees {
                    base += shap_into(t, x, None, w, |v| v, &mut phi)?;
                }
                (base, MarginKind::Probability)
            }
            Model::Gbm(m) => {
                let mut base = m.init;
                for t in &m.trees {
                    base += shap_into(t, x, None, 1.0, |v| v, &mut phi)?;
                }
                (base, MarginKind::LogOdds)
            }
            Model::AdaBoost(m) => {
                let mut base = 0.0;
                for (t, &a) in m.trees.iter().zip(&m.alphas) {
                    base += shap_into(t, x, None, 1.0, |v| if v >= 0.5 { a } else { -a }, &mut phi)?;
                }
                (base, MarginKind::HalfLogOdds)
            }
            Model::Bagging(m) => {
                let w = 1.0 / m.trees.len() as f64;
                let mut base = 0.0;
                for (t, cols) in m.trees.iter().zip(&m.features) {
                    let sub: Vec<f64> = cols.iter().map(|&c| x[c]).collect();
                    base += shap_into(&t.tree, &sub, Some(cols), w, |v| f64::from(u8::from(v >= 0.5)), &mut phi)?;
                }
                (base, MarginKind::Probability)
            }
        };
        Ok(Explanation { base, contributions: phi, kind })
    }
}

/// 1/n for the small integers the path arithmetic divides by (n = 0 unused).
const RECIP: [f64; 256] = {
    let mut t = [0.0; 256];
    let mut n = 1;
    while n < 256 {
        t[n] = 1.0 / n as f64;
        n += 1;
    }
    t
};

#[inline]
fn recip(n: usize) -> f64 {
    if n < RECIP.len() {
        RECIP[n]
    } else {
        1.0 / n as f64
    }
}

/// One element of the path: the feature split on, the fractions of "zero" (feature unknown)
/// and "one" (feature known) paths flowing through, and the permutation weight.
#[derive(Debug, Clone, Copy, Default)]
struct PathElem {
    feature: usize,
    zero: f64,
    one: f64,
    weight: f64,
}

/// Add `scale` times the SHAP values of `tree` at row `x` to `phi` (through `cols`, the row's
/// columns in the model's feature order, for trees fitted on a subset), with leaf values
/// transformed by `leaf`; returns `scale` times the tree's expected value.
fn shap_into(
    tree: &Tree,
    x: &[f64],
    cols: Option<&[usize]>,
    scale: f64,
    leaf: impl Fn(f64) -> f64 + Copy,
    phi: &mut [f64],
) -> Result<f64, String> {
    let nodes = &tree.nodes;
    if nodes.first().is_none_or(|n| n.cover <= 0.0 || n.cover.is_nan()) {
        return Err("the bundle's trees have no node covers (it was trained before explanations existed): retrain it to explain".into());
    }
    // The expected value: leaves weighted by the share of training rows that reach them.
    let root = nodes[0].cover;
    let expected: f64 = nodes.iter().filter(|n| n.feature == LEAF).map(|n| leaf(n.value) * n.cover / root).sum();
    // One buffer for every level's copy of the path (level d holds d + 1 elements), as in
    // the reference implementation: no allocation per node.
    // A tree of n nodes is at most (n - 1) / 2 deep: small trees need no walk for the bound.
    let bound = (nodes.len() - 1) / 2;
    let depth = if bound <= 64 { bound } else { depth(tree) };
    let need = (depth + 2) * (depth + 3) / 2;
    PATH.with_borrow_mut(|buf| {
        if buf.len() < need {
            buf.resize(need, PathElem::default());
        }
        let mut walk = Walk { tree, x, leaf, cols, scale, phi };
        walk.recurse(0, buf, 0, 0, 1.0, 1.0, usize::MAX);
    });
    Ok(scale * expected)
}

thread_local! {
    /// The path buffer, kept across trees and rows (it is written before it is read).
    static PATH: std::cell::RefCell<Vec<PathElem>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The deepest leaf's depth (the root at 0).
fn depth(tree: &Tree) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(0usize, 0usize)];
    while let Some((j, d)) = stack.pop() {
        let n = &tree.nodes[j];
        deepest = deepest.max(d);
        if n.feature != LEAF {
            stack.push((n.left as usize, d + 1));
            stack.push((n.right as usize, d + 1));
        }
    }
    deepest
}

/// One tree's TreeSHAP at one row.
struct Walk<'a, L> {
    tree: &'a Tree,
    x: &'a [f64],
    leaf: L,
    cols: Option<&'a [usize]>,
    scale: f64,
    phi: &'a mut [f64],
}

impl<L: Fn(f64) -> f64 + Copy> Walk<'_, L> {
    /// Node `j`, its parent's path at `buf[start..start + len]`; this node's path is built
    /// right after it.
    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &mut self,
        j: usize,
        buf: &mut [PathElem],
        start: usize,
        len: usize,
        zero: f64,
        one: f64,
        feature: usize,
    ) {
        let at = start + len;
        buf.copy_within(start..start + len, at);
        let mut len = len;
        extend(&mut buf[at..], &mut len, zero, one, feature);
        let node = &self.tree.nodes[j];
        if node.feature == LEAF {
            let v = (self.leaf)(node.value) * self.scale;
            let path = &buf[at..at + len];
            for i in 1..len {
                let w = unwound_sum(path, i);
                let e = path[i];
                let col = self.cols.map_or(e.feature, |c| c[e.feature]);
                self.phi[col] += w * (e.one - e.zero) * v;
            }
            return;
        }
        let f = node.feature as usize;
        // NaN goes right, as in scoring (`x <= threshold` is false).
        let (hot, cold) = if self.x[f] <= node.threshold { (node.left, node.right) } else { (node.right, node.left) };
        let (hot, cold) = (hot as usize, cold as usize);
        let (mut iz, mut io) = (1.0, 1.0);
        if let Some(k) = (1..len).find(|&k| buf[at + k].feature == f) {
            iz = buf[at + k].zero;
            io = buf[at + k].one;
            unwind(&mut buf[at..], &mut len, k);
        }
        let (cover, nodes) = (node.cover, &self.tree.nodes);
        let (hot_share, cold_share) = (nodes[hot].cover / cover, nodes[cold].cover / cover);
        self.recurse(hot, buf, at, len, iz * hot_share, io, f);
        self.recurse(cold, buf, at, len, iz * cold_share, 0.0, f);
    }
}

fn extend(path: &mut [PathElem], len: &mut usize, zero: f64, one: f64, feature: usize) {
    let l = *len;
    path[l] = PathElem { feature, zero, one, weight: if l == 0 { 1.0 } else { 0.0 } };
    let depth = l as f64;
    let inv = recip(l + 1);
    for i in (0..l).rev() {
        path[i + 1].weight += one * path[i].weight * (i as f64 + 1.0) * inv;
        path[i].weight = zero * path[i].weight * (depth - i as f64) * inv;
    }
    *len += 1;
}

fn unwind(path: &mut [PathElem], len: &mut usize, i: usize) {
    let l = *len - 1;
    let depth = l as f64;
    let (one, zero) = (path[i].one, path[i].zero);
    let mut next = path[l].weight;
    for j in (0..l).rev() {
        if one != 0.0 {
            let t = path[j].weight;
            path[j].weight = next * (depth + 1.0) / ((j as f64 + 1.0) * one);
            next = t - path[j].weight * zero * (depth - j as f64) / (depth + 1.0);
        } else {
            path[j].weight = path[j].weight * (depth + 1.0) / (zero * (depth - j as f64));
        }
    }
    for j in i..l {
        path[j].feature = path[j + 1].feature;
        path[j].zero = path[j + 1].zero;
        path[j].one = path[j + 1].one;
    }
    *len -= 1;
}

fn unwound_sum(path: &[PathElem], i: usize) -> f64 {
    let l = path.len() - 1;
    let depth = l as f64;
    let (one, zero) = (path[i].one, path[i].zero);
    let inv = 1.0 / (depth + 1.0);
    let mut total = 0.0;
    if one != 0.0 {
        // Divisions hoisted out of the loop: it runs for every element of every leaf's path.
        let (k, zk) = ((depth + 1.0) / one, zero * inv);
        let mut next = path[l].weight;
        for j in (0..l).rev() {
            let t = next * k * recip(j + 1);
            total += t;
            next = path[j].weight - t * zk * (depth - j as f64);
        }
    } else {
        let k = (depth + 1.0) / zero;
        for j in (0..l).rev() {
            total += path[j].weight * k * recip(l - j);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::super::tree::Node;
    use super::*;

    fn node(feature: u32, threshold: f64, left: u32, right: u32, value: f64, cover: f64) -> Node {
        Node { feature, threshold, bin: 0, left, right, value, cover }
    }

    /// Exact Shapley values by enumerating coalitions, with the path-dependent value function
    /// (a missing feature follows both children by their covers).
    fn brute(tree: &Tree, x: &[f64]) -> Vec<f64> {
        fn value(tree: &Tree, x: &[f64], known: u32, j: usize) -> f64 {
            let n = &tree.nodes[j];
            if n.feature == LEAF {
                return n.value;
            }
            let f = n.feature as usize;
            if known & (1 << f) != 0 {
                let next = if x[f] <= n.threshold { n.left } else { n.right };
                value(tree, x, known, next as usize)
            } else {
                let (l, r) = (&tree.nodes[n.left as usize], &tree.nodes[n.right as usize]);
                (l.cover * value(tree, x, known, n.left as usize) + r.cover * value(tree, x, known, n.right as usize))
                    / n.cover
            }
        }
        let m = x.len();
        let fact = |k: usize| (1..=k).product::<usize>() as f64;
        (0..m)
            .map(|i| {
                let mut phi = 0.0;
                for s in 0u32..(1 << m) {
                    if s & (1 << i) != 0 {
                        continue;
                    }
                    let k = s.count_ones() as usize;
                    let w = fact(k) * fact(m - k - 1) / fact(m);
                    phi += w * (value(tree, x, s | (1 << i), 0) - value(tree, x, s, 0));
                }
                phi
            })
            .collect()
    }

    #[test]
    fn tree_shap_equals_brute_force_shapley_values_and_adds_up() {
        // Depth 3, feature 0 used twice on one path, uneven covers.
        let tree = Tree {
            nodes: vec![
                node(0, 0.5, 1, 2, 0.0, 100.0),
                node(1, 1.5, 3, 4, 0.0, 60.0),
                node(2, 0.0, 5, 6, 0.0, 40.0),
                node(0, 0.2, 7, 8, 0.0, 35.0),
                node(LEAF, 0.0, 0, 0, 0.9, 25.0),
                node(LEAF, 0.0, 0, 0, 0.1, 10.0),
                node(LEAF, 0.0, 0, 0, 0.6, 30.0),
                node(LEAF, 0.0, 0, 0, 0.3, 20.0),
                node(LEAF, 0.0, 0, 0, 0.7, 15.0),
            ],
        };
        for x in [[0.1, 1.0, 0.0], [0.3, 2.0, 1.0], [0.9, 0.0, -1.0], [f64::NAN, 1.0, 0.5]] {
            let mut phi = vec![0.0; 3];
            let base = shap_into(&tree, &x, None, 1.0, |v| v, &mut phi).unwrap();
            let exact = brute(&tree, &x);
            for (a, b) in phi.iter().zip(&exact) {
                assert!((a - b).abs() < 1e-12, "{phi:?} vs {exact:?} at {x:?}");
            }
            let margin = tree.predict_slice(&x);
            assert!((base + phi.iter().sum::<f64>() - margin).abs() < 1e-12);
        }
    }
}
