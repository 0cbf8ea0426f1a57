#!/usr/bin/env bash
# make bench-train: our train stage on the `reference` search space beside the Python
# reference pipeline (../shared/reference/pipeline.py), in one run, on the SAME split, then
# single-model fits: our random forest(100) vs scikit-learn's, our GBM(100) vs XGBoost(100),
# one thread. Prints CPU s, wall s, peak RSS and test F1 for both sides, and the ratios.
#
# Two splits, both stratified 80/20 with seed 42, each used by both sides:
#   reference: the reference's own `--stratified` split (scikit-learn's train_test_split,
#              random_state=42), given to our pipeline as a pre-split dataset;
#   ours:      our ingest stage's split (ChaCha, seed 42), given to the reference as CSV.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REF=${REF_DIR:-$ROOT/../shared/reference}
[ -f "$REF/pipeline.py" ] || { echo "bench-train: the Python reference is not at $REF (set REF_DIR)" >&2; exit 1; }
export REF_WORK=${REF_WORK:-$ROOT/target/bench-ref}
OUT=${BENCH_OUT:-$ROOT/target/bench-train}
SPLITS=${BENCH_SPLITS:-reference ours}
mkdir -p "$REF_WORK" "$OUT"
DVC=$ROOT/.venv/bin/dvc
BIN=$ROOT/target/release
TIME="%U %S %e %M"

echo "== building (and the fit_bench example)" >&2
make -s build venv >&2
cargo build -q --release --locked --example fit_bench
"$DVC" pull -q data.dvc >&2

echo "== reference venv ($REF_WORK)" >&2
"$REF/setup.sh" >&2
PY=$REF_WORK/venv/bin/python

for split in $SPLITS; do
  S=$OUT/$split
  rm -rf "$S" && mkdir -p "$S/project/data"
  # A throwaway project: our schemas, our params with the `reference` space, and the split.
  cp -r schemas "$S/project/"
  if [ "$split" = reference ]; then
    "$PY" - "$ROOT/data/phishing-websites/phishing_websites.csv" "$S" <<'PYEOF'
import sys
import pandas as pd
from sklearn.model_selection import train_test_split
df = pd.read_csv(sys.argv[1])
train, test = train_test_split(df, test_size=0.2, random_state=42, stratify=df["Result"])
train.to_csv(f"{sys.argv[2]}/train.csv", index=False)
test.to_csv(f"{sys.argv[2]}/test.csv", index=False)
PYEOF
  else
    "$DVC" repro -q transform >&2
    "$BIN/export" artifacts/split/train.parquet "$S/train.csv"
    "$BIN/export" artifacts/split/test.parquet "$S/test.csv"
  fi
  cp "$S/train.csv" "$S/test.csv" "$S/project/data/"
  .venv/bin/python - "$S/project/params.yaml" <<'PYEOF'
import sys, yaml
p = yaml.safe_load(open("params.yaml"))
p["dataset"] = "bench"
s = yaml.safe_load(open("schemas/phishing.yaml"))
s["data"] = {"train": "data/train.csv", "test": "data/test.csv"}
yaml.safe_dump(s, open(sys.argv[1].replace("params.yaml", "schemas/bench.yaml"), "w"), sort_keys=False)
p["train"]["spaces"]["reference"] = yaml.safe_load(open("bench/reference-space.yaml"))["reference"]
p["train"]["space"] = "reference"
yaml.safe_dump(p, open(sys.argv[1], "w"))
PYEOF
  (
    cd "$S/project"
    "$BIN/ingest" -q && "$BIN/transform" -q
    echo "== [$split split] ours: train on the reference space" >&2
    /usr/bin/time -f "$TIME" -o "$S/ours.time" "$BIN/train" -q --leaderboard "$S/leaderboard.json" \
      --metrics "$S/train-headline.json" --details "$S/train.json"
    "$BIN/evaluate" -q --metrics "$S/eval-headline.json" --details "$S/eval.json"
    echo "== [$split split] single models, one thread" >&2
    "$ROOT/target/release/examples/fit_bench" --reps 5 --threads 1 > "$S/ours_fit.json"
  )
  echo "== [$split split] reference: pipeline.py (GridSearchCV over 5 families; a few minutes)" >&2
  /usr/bin/time -f "$TIME" -o "$S/ref.time" "$PY" "$REF/pipeline.py" --train-csv "$S/train.csv" \
    --test-csv "$S/test.csv" --model-seed 42 --out-dir "$S/ref_model" > "$S/ref.json"
  "$PY" "$REF/anchors.py" --train-csv "$S/train.csv" --test-csv "$S/test.csv" --skip-inference --reps 5 > "$S/anchors.json"
done

for split in $SPLITS; do
  echo
  echo "# Split: $split"
  .venv/bin/python bench/report_train.py "$OUT/$split"
done
