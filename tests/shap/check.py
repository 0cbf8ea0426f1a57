"""Compare netsec's TreeSHAP with the `shap` package's TreeExplainer on the same trees.

Usage: check.py BUNDLE CASES
  BUNDLE: a netsec model bundle (decision_tree, random_forest or gbm).
  CASES:  JSON {"x": [[...], ...], "phi": [[...], ...], "base": [...]} — encoded rows, and
          netsec's contributions and base value for each (from `POST /v1/predict?explain=`).
Exports the bundle's trees to shap's tree-dict format (children, default child = right, as
netsec sends NaN right; features; thresholds, `x <= t` going left as in netsec; values; node
sample weights = netsec's covers), runs shap's exact path-dependent TreeExplainer, and prints
the largest absolute differences. Exit 1 if any exceeds 1e-6.
"""
import json
import sys

import numpy as np
import shap

LEAF = 2**32 - 1


def tree_dict(nodes, scale):
    n = len(nodes)
    left = np.full(n, -1, dtype=np.int32)
    right = np.full(n, -1, dtype=np.int32)
    features = np.full(n, -2, dtype=np.int32)
    thresholds = np.zeros(n)
    values = np.zeros((n, 1))
    cover = np.zeros(n)
    for i, node in enumerate(nodes):
        cover[i] = node.get("cover", 0.0)
        values[i, 0] = node["value"] * scale
        if node["feature"] != LEAF:
            left[i], right[i] = node["left"], node["right"]
            features[i] = node["feature"]
            thresholds[i] = node["threshold"]
    # Internal nodes' values: shap reads only leaves for path-dependent SHAP, but the expected
    # value uses the root's value in some versions: give each node its cover-weighted mean.
    for i in reversed(range(n)):
        if left[i] >= 0:
            l, r = left[i], right[i]
            values[i, 0] = (values[l, 0] * cover[l] + values[r, 0] * cover[r]) / cover[i]
    return {
        "children_left": left,
        "children_right": right,
        "children_default": right.copy(),
        "features": features,
        "thresholds": thresholds,
        "values": values,
        "node_sample_weight": cover,
    }


def main():
    bundle_path, cases_path = sys.argv[1], sys.argv[2]
    with open(bundle_path) as f:
        f.readline()
        bundle = json.loads(f.readline())
    family, model = bundle["model"]["family"], bundle["model"]["model"]
    if family == "decision_tree":
        trees, offset = [tree_dict(model["tree"]["nodes"], 1.0)], 0.0
    elif family == "random_forest":
        k = len(model["trees"])
        trees, offset = [tree_dict(t["nodes"], 1.0 / k) for t in model["trees"]], 0.0
    elif family == "gbm":
        trees, offset = [tree_dict(t["nodes"], 1.0) for t in model["trees"]], model["init"]
    else:
        sys.exit(f"{family}: not compared with shap")
    ensemble = {"trees": trees, "base_offset": offset, "tree_output": "raw_value", "objective": "squared_error"}
    with open(cases_path) as f:
        cases = json.load(f)
    x = np.array(cases["x"], dtype=np.float64)
    ours = np.array(cases["phi"], dtype=np.float64)
    base = np.array(cases["base"], dtype=np.float64)
    explainer = shap.TreeExplainer(ensemble, feature_perturbation="tree_path_dependent")
    theirs = np.asarray(explainer.shap_values(x))
    expected = float(np.ravel(explainer.expected_value)[0])
    d_phi = float(np.max(np.abs(theirs - ours)))
    d_base = float(np.max(np.abs(base - expected)))
    print(json.dumps({"family": family, "rows": len(x), "trees": len(trees), "max_abs_diff_phi": d_phi,
                      "max_abs_diff_base": d_base, "shap": shap.__version__}))
    sys.exit(0 if d_phi <= 1e-6 and d_base <= 1e-6 else 1)


if __name__ == "__main__":
    main()
