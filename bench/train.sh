#!/usr/bin/env bash
# make bench-train: our train stage on the `reference` search space beside the Python
# reference pipeline (../shared/reference/pipeline.py), in one run, on the SAME split (the
# pipeline's stratified seed-42 split, exported as CSV for the reference), then single-model
# fits: our random forest(100) vs scikit-learn's, our GBM(100) vs XGBoost(100), one thread.
# Prints CPU s, wall s, peak RSS and test F1 for both sides, and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REF=${REF_DIR:-$ROOT/../shared/reference}
[ -f "$REF/pipeline.py" ] || { echo "bench-train: the Python reference is not at $REF (set REF_DIR)" >&2; exit 1; }
export REF_WORK=${REF_WORK:-$ROOT/target/bench-ref}
OUT=${BENCH_OUT:-$ROOT/target/bench-train}
mkdir -p "$REF_WORK" "$OUT"
DVC=$ROOT/.venv/bin/dvc

echo "== building and preparing the split (dvc repro transform)" >&2
make -s build venv >&2
"$DVC" pull -q data.dvc >&2
"$DVC" repro -q transform >&2
target/release/export artifacts/split/train.parquet "$OUT/train.csv"
target/release/export artifacts/split/test.parquet "$OUT/test.csv"

echo "== reference venv ($REF_WORK)" >&2
"$REF/setup.sh" >&2
PY=$REF_WORK/venv/bin/python

# Our side: the same params, but the `reference` space, written to the bench folder.
.venv/bin/python - "$OUT/params.yaml" <<'PYEOF'
import sys, yaml
p = yaml.safe_load(open("params.yaml"))
p["train"]["space"] = "reference"
yaml.safe_dump(p, open(sys.argv[1], "w"))
PYEOF
TIME="%U %S %e %M"
echo "== ours: train on the reference space" >&2
/usr/bin/time -f "$TIME" -o "$OUT/ours.time" target/release/train -q --params "$OUT/params.yaml" \
  --model "$OUT/model.json" --leaderboard "$OUT/leaderboard.json" --metrics "$OUT/train.json"
target/release/evaluate -q --params "$OUT/params.yaml" --model "$OUT/model.json" --metrics "$OUT/eval.json" --plots "$OUT/plots"

echo "== reference: pipeline.py (GridSearchCV over 5 families; a few minutes)" >&2
/usr/bin/time -f "$TIME" -o "$OUT/ref.time" "$PY" "$REF/pipeline.py" --train-csv "$OUT/train.csv" \
  --test-csv "$OUT/test.csv" --model-seed 42 --out-dir "$OUT/ref_model" > "$OUT/ref.json"

echo "== single models, one thread" >&2
cargo run -q --release --locked --example fit_bench -- --reps 5 --threads 1 > "$OUT/ours_fit.json"
"$PY" "$REF/anchors.py" --train-csv "$OUT/train.csv" --test-csv "$OUT/test.csv" --skip-inference --reps 5 > "$OUT/anchors.json"

.venv/bin/python bench/report_train.py "$OUT"
