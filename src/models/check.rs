//! What a fitted model read from a bundle must satisfy before it scores anything. A bundle
//! can carry a valid checksum and still be wrong (hand-edited, written by a bug or by a newer
//! build): a tree with a cycle would spin forever, a feature index past the row would panic
//! or allocate without bound, and a forest with no trees would call everything benign. Each
//! problem is refused with the part named (`trees[3].nodes[7]: ...`).

use super::tree::{Tree, LEAF};
use super::Model;

type Check = Result<(), String>;

impl Model {
    /// Check the model's structure for rows of `n_features` values.
    pub fn check(&self, n_features: usize) -> Check {
        match self {
            Model::Logistic(m) => {
                if m.coefficients.len() != n_features {
                    return Err(format!("{} coefficients for {n_features} features", m.coefficients.len()));
                }
                finite("intercept", m.intercept)?;
                m.coefficients.iter().enumerate().try_for_each(|(i, &c)| finite(&format!("coefficients[{i}]"), c))
            }
            Model::DecisionTree(m) => m.tree.check(n_features).map_err(|e| format!("tree.{e}")),
            Model::RandomForest(m) => forest(&m.trees, n_features),
            Model::AdaBoost(m) => {
                forest(&m.trees, n_features)?;
                if m.alphas.len() != m.trees.len() {
                    return Err(format!("{} tree weights (alphas) for {} trees", m.alphas.len(), m.trees.len()));
                }
                m.alphas.iter().enumerate().try_for_each(|(i, &a)| finite(&format!("alphas[{i}]"), a))
            }
            Model::Gbm(m) => {
                finite("init", m.init)?;
                forest(&m.trees, n_features)
            }
            Model::Bagging(m) => {
                if m.trees.is_empty() {
                    return Err("no trees".into());
                }
                if m.features.len() != m.trees.len() {
                    return Err(format!("{} feature lists for {} trees", m.features.len(), m.trees.len()));
                }
                for (t, (tree, cols)) in m.trees.iter().zip(&m.features).enumerate() {
                    if let Some(&c) = cols.iter().find(|&&c| c >= n_features) {
                        return Err(format!("features[{t}]: column {c} of {n_features}"));
                    }
                    tree.tree.check(cols.len()).map_err(|e| format!("trees[{t}].tree.{e}"))?;
                }
                Ok(())
            }
        }
    }
}

fn finite(what: &str, v: f64) -> Check {
    if v.is_finite() {
        Ok(())
    } else {
        Err(format!("{what} is {v}, not a finite number"))
    }
}

fn forest(trees: &[Tree], n_features: usize) -> Check {
    if trees.is_empty() {
        return Err("no trees".into());
    }
    trees.iter().enumerate().try_for_each(|(t, tree)| tree.check(n_features).map_err(|e| format!("trees[{t}].{e}")))
}

impl Tree {
    /// Every node reached from the root exactly once (no cycle, no shared node, no index out
    /// of range), every split on a feature below `n_features` with a threshold that is a
    /// number, every leaf value finite.
    pub fn check(&self, n_features: usize) -> Check {
        let n = self.nodes.len();
        if n == 0 {
            return Err("nodes: empty".into());
        }
        let mut seen = vec![false; n];
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                return Err(format!("nodes[{i}]: reached twice (a cycle or a shared node)"));
            }
            let node = &self.nodes[i];
            if !(node.cover >= 0.0 && node.cover.is_finite()) {
                return Err(format!("nodes[{i}]: cover {} is not a count", node.cover));
            }
            if node.feature == LEAF {
                finite(&format!("nodes[{i}].value"), node.value)?;
                continue;
            }
            if node.feature as usize >= n_features {
                return Err(format!("nodes[{i}]: feature {} of {n_features}", node.feature));
            }
            if node.threshold.is_nan() {
                return Err(format!("nodes[{i}]: the threshold is not a number"));
            }
            for child in [node.left, node.right] {
                if child as usize >= n {
                    return Err(format!("nodes[{i}]: child {child} of {n} nodes"));
                }
                stack.push(child as usize);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree::Node;
    use super::*;

    fn leaf(v: f64) -> Node {
        Node { feature: LEAF, threshold: 0.0, bin: 0, left: 0, right: 0, value: v, cover: 0.0 }
    }

    fn split(feature: u32, left: u32, right: u32) -> Node {
        Node { feature, threshold: 0.5, bin: 0, left, right, value: 0.0, cover: 0.0 }
    }

    #[test]
    fn malformed_trees_are_named() {
        let ok = Tree { nodes: vec![split(1, 1, 2), leaf(0.1), leaf(0.9)] };
        assert_eq!(ok.check(2), Ok(()));
        let err = |nodes: Vec<Node>, nf| Tree { nodes }.check(nf).unwrap_err();
        assert!(err(vec![split(1, 1, 2), leaf(0.1), leaf(0.9)], 1).contains("feature 1 of 1"));
        assert!(err(vec![split(0, 0, 1), leaf(0.1)], 1).contains("reached twice"));
        assert!(err(vec![split(0, 1, 1), leaf(0.1)], 1).contains("reached twice"));
        assert!(err(vec![split(0, 1, 5), leaf(0.1)], 1).contains("child 5 of 2"));
        assert!(err(vec![], 1).contains("empty"));
        assert!(err(vec![split(u32::MAX - 1, 1, 2), leaf(0.1), leaf(0.2)], 3).contains("feature 4294967294"));
        assert!(err(vec![leaf(f64::INFINITY)], 1).contains("not a finite"));
    }
}
