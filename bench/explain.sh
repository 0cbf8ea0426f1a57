#!/usr/bin/env bash
# Explanation time (part of `make bench-serve`, or on its own: bench/explain.sh): 1,000 rows of
# the phishing test part explained by our TreeSHAP (`predict --explain 30`, one thread and
# every core) and by the shap package's TreeExplainer (.venv-shap) on the same trees,
# exported by tests/shap/check.py. The model: the production phishing bundle (a GBM with the
# default params), or $EXPLAIN_MODEL.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BENCH_OUT:-target/bench-serve}
MODEL=${EXPLAIN_MODEL:-models/production/phishing.json}
mkdir -p "$OUT"
make -s .venv-shap/bin/python >&2
[ -f "$MODEL" ] || { echo "bench explain: no $MODEL (run make run first)" >&2; exit 1; }
head -1001 data/phishing-websites/phishing_websites.csv > "$OUT/explain_in.csv"
# Milliseconds of `predict --explain 30` (reading, scoring and writing included) on $1 threads.
ours() {
  local start end
  start=$(date +%s%N)
  RAYON_NUM_THREADS=$1 target/release/predict "$OUT/explain_in.csv" "$OUT/explain_out.csv" --model "$MODEL" --explain 30 -q > /dev/null
  end=$(date +%s%N)
  echo $(( (end - start) / 1000000 ))
}
ONE=$(ours 1); ALL=$(ours "$(nproc)")
SHAP=$(.venv-shap/bin/python - "$MODEL" "$OUT/explain_out.csv" <<'PYEOF'
import csv, json, sys, time
import numpy as np, shap
sys.path.insert(0, "tests/shap")
from check import tree_dict
bundle = json.loads(open(sys.argv[1]).readlines()[1])
family, m = bundle["model"]["family"], bundle["model"]["model"]
if family == "gbm":
    ens = {"trees": [tree_dict(t["nodes"], 1.0) for t in m["trees"]], "base_offset": m["init"]}
elif family == "random_forest":
    ens = {"trees": [tree_dict(t["nodes"], 1.0 / len(m["trees"])) for t in m["trees"]], "base_offset": 0.0}
else:
    sys.exit(f"bench explain: {family} not compared")
ens.update({"tree_output": "raw_value", "objective": "squared_error"})
rows = list(csv.DictReader(open("data/phishing-websites/phishing_websites.csv")))[:1000]
x = np.array([[float(r[n]) for n in bundle["feature_names"]] for r in rows])
explainer = shap.TreeExplainer(ens, feature_perturbation="tree_path_dependent")
best = min(timed for timed in [(lambda t: (explainer.shap_values(x), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(2)])
print(round(best * 1000))
PYEOF
)
FAMILY=$(sed -n 2p "$MODEL" | .venv/bin/python -c 'import json,sys; b=json.load(sys.stdin); m=b["model"]; print(m["family"], len(m["model"].get("trees", [1])))')
.venv/bin/python -c 'import sys; f, one, all_, n, shap = sys.argv[1:]; one, all_, shap = int(one), int(all_), int(shap)
print(f"\nExplanations, 1,000 rows, {f} (family, trees): ours {one} ms on 1 thread, {all_} ms on {n} threads; "
      f"shap TreeExplainer {shap} ms (1 thread). shap / ours: {shap / one:.2f}x on 1 thread, {shap / all_:.2f}x on all cores "
      f"(bar: not slower, >= 1.00x).")' "$FAMILY" "$ONE" "$ALL" "$(nproc)" "$SHAP"
