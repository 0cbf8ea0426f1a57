#!/usr/bin/env bash
# make bench-peers: our GBM beside LightGBM, XGBoost (hist) and lleaves, in one run, on NSL-KDD
# and on the phishing data: the same transformed features (our transform stage), the same
# hyperparameters (100 and 300 rounds, depth 6, learning rate 0.3), one thread then both cores.
# Fit seconds, test accuracy and ROC-AUC, in-memory scoring rows/s (test part tiled to 450,880
# rows), and `predict` end to end (CSV in, CSV out) with the 300-round bundle. The peers run in
# .venv-peers (requirements-peers.txt, made by make). bench/report_peers.py prints the table and the ratios
# and rewrites the README's peers section.
#   PEERS_DATASETS="nsl_kdd"   the datasets (default: nsl_kdd phishing)
#   PEERS_REPS=3               fits and scoring passes per figure (median)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DATASETS=${PEERS_DATASETS:-"nsl_kdd phishing"}
REPS=${PEERS_REPS:-3}
TILE=450880
OUT=$ROOT/target/bench-peers
BIN=$ROOT/target/release
make -s build venv .venv-peers/bin/python >&2
cargo build -q --release --locked --example peers_bench
.venv/bin/dvc pull -q data.dvc >&2
for ds in $DATASETS; do
  P=$OUT/$ds
  rm -rf "$P" && mkdir -p "$P"
  cp -r schemas "$P/"
  ln -s "$ROOT/data" "$P/data"
  # Our params, the dataset, and a space of one candidate: the 300-round GBM for predict.
  .venv/bin/python - "$ds" "$P/params.yaml" <<'PYEOF'
import sys, yaml
p = yaml.safe_load(open("params.yaml"))
p["dataset"] = sys.argv[1]
p["train"]["spaces"]["peers"] = {"families": {"gbm": {"n_estimators": 300, "learning_rate": 0.3, "max_depth": 6,
                                                       "lambda": 1.0, "min_child_weight": 1.0}}}
p["train"]["space"] = "peers"
p["train"]["cv_folds"] = 2
yaml.safe_dump(p, open(sys.argv[2], "w"))
PYEOF
  echo "== $ds: ingest, validate, transform, train (the 300-round bundle)" >&2
  (cd "$P" && for s in ingest validate transform train; do "$BIN/$s" -q > /dev/null; done)
  echo "== $ds: ours (examples/peers_bench.rs)" >&2
  "$BIN/examples/peers_bench" --features "$P/artifacts/features" --preprocessor "$P/artifacts/preprocessor.json" \
    --reps "$REPS" --tile-rows "$TILE" > "$P/ours.json"
  echo "== $ds: LightGBM, lleaves, XGBoost (bench/peers.py)" >&2
  .venv-peers/bin/python bench/peers.py --features "$P/artifacts/features" --reps "$REPS" --tile-rows "$TILE" > "$P/peers.json"
  echo "== $ds: predict end to end, $TILE rows" >&2
  # The raw test rows, as the dataset's files hold them, repeated to $TILE rows.
  if [ "$ds" = nsl_kdd ]; then
    zcat data/nsl-kdd/KDDTest+.txt.gz > "$P/test.csv"; HEAD=0
  else
    "$BIN/export" "$P/artifacts/split/test.parquet" "$P/test.csv"; HEAD=1
  fi
  .venv/bin/python - "$P/test.csv" "$P/tiled.csv" "$HEAD" "$TILE" <<'PYEOF'
import sys
src, dst, head, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
lines = open(src).read().splitlines(keepends=True)
header, body = lines[:head], [l for l in lines[head:] if l.strip()]
with open(dst, "w") as f:
    f.writelines(header)
    for i in range(n):
        f.write(body[i % len(body)])
PYEOF
  for cores in 1 2; do
    cpus=$([ "$cores" = 1 ] && echo 0 || echo 0-1)
    : > "$P/predict_t$cores"
    for _ in $(seq 1 "$REPS"); do
      taskset -c "$cpus" "$BIN/predict" "$P/tiled.csv" "$P/verdicts.csv" --model "$P/models/model.json" -q |
        sed -E 's/.*: ([0-9]+) rows\/s.*/\1/' >> "$P/predict_t$cores"
    done
  done
  rm -f "$P/tiled.csv" "$P/verdicts.csv"
done
.venv/bin/python bench/report_peers.py "$OUT" $DATASETS
