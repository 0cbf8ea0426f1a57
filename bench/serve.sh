#!/usr/bin/env bash
# make bench-serve: our `serve` beside the Python reference's FastAPI server
# (../shared/reference/bench_serve.sh), in one run, same model family and size (a random
# forest with the number of trees the reference's seeded grid search picks), same load
# generator (wrk, its wrk_post.lua), server on CPU 0 and wrk on CPU 1. Then a soak at the
# highest load, and `predict` on a large file. Prints the comparison.
#   BENCH_DURATION (10 s per run), BENCH_REPS (1), BENCH_SOAK (60 s), REF_WORK, REF_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REF=${REF_DIR:-$ROOT/../shared/reference}
[ -f "$REF/bench_serve.sh" ] || { echo "bench-serve: the Python reference is not at $REF (set REF_DIR)" >&2; exit 1; }
export REF_WORK=${REF_WORK:-$ROOT/target/bench-ref}
OUT=${BENCH_OUT:-$ROOT/target/bench-serve}
DUR=${BENCH_DURATION:-10}; REPS=${BENCH_REPS:-1}; SOAK=${BENCH_SOAK:-60}
PORT=${BENCH_PORT:-18080}
mkdir -p "$REF_WORK" "$OUT"
rm -f "$OUT"/*.txt
DVC=$ROOT/.venv/bin/dvc

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; else echo "bench-serve needs wrk: sudo apt-get install -y wrk" >&2; exit 1; fi
fi
PIN_SRV=""; PIN_WRK=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then PIN_SRV="taskset -c 0"; PIN_WRK="taskset -c 1"; fi

echo "== build, split, reference venv" >&2
make -s build venv >&2
"$DVC" pull -q data.dvc >&2
"$DVC" repro -q transform >&2
target/release/export artifacts/split/train.parquet "$OUT/train.csv"
target/release/export artifacts/split/test.parquet "$OUT/test.csv"
"$REF/setup.sh" >&2
PY=$REF_WORK/venv/bin/python

echo "== reference model: its random-forest grid, seed 42, on our split" >&2
"$PY" "$REF/pipeline.py" --train-csv "$OUT/train.csv" --test-csv "$OUT/test.csv" --models "Random Forest" \
  --model-seed 42 --out-dir "$OUT/ref_model" > "$OUT/ref_rf.json"
TREES=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['models']['Random Forest']['best_params']['n_estimators'])" "$OUT/ref_rf.json")
echo "reference picked RandomForest($TREES); ours: random_forest(n_estimators=$TREES)" >&2

.venv/bin/python - "$OUT/params.yaml" "$TREES" <<'PYEOF'
import sys, yaml
p = yaml.safe_load(open("params.yaml"))
p["train"]["space"] = "bench"
p["train"]["spaces"]["bench"] = {"families": {"random_forest": {"n_estimators": int(sys.argv[2])}}}
yaml.safe_dump(p, open(sys.argv[1], "w"))
PYEOF
target/release/train -q --params "$OUT/params.yaml" --model "$OUT/model.json" --leaderboard "$OUT/leaderboard.json" --metrics "$OUT/train.json" --details "$OUT/train-details.json"

echo "== reference server (bench_serve.sh, ${REPS} x ${DUR}s per setting)" >&2
REF_MODEL_DIR=$OUT/ref_model REF_DURATION=$DUR REF_REPS=$REPS "$REF/bench_serve.sh" "$OUT/ref_results" > "$OUT/ref_bench.log" 2>&1
grep '^{' "$OUT/ref_bench.log" > "$OUT/ref_summary.jsonl"
grep -E '^server [0-9]+ ' "$OUT/ref_bench.log" > "$OUT/ref_rss.txt" || true

echo "== our server" >&2
PAY=$OUT/ref_results/payloads
.venv/bin/python - "$OUT/test.csv" "$OUT/one_row.json" <<'PYEOF'
import csv, json, sys
rows = csv.DictReader(open(sys.argv[1]))
first = next(rows)
first.pop("Result")
json.dump({k: float(v) for k, v in first.items()}, open(sys.argv[2], "w"))
PYEOF
$PIN_SRV target/release/serve --model "$OUT/model.json" --addr "127.0.0.1:$PORT" --threads 1 -q &
SRV=$!
trap 'kill $SRV 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
run() { # name conns body ctype maxreq path dur
  BODY_FILE=$3 CONTENT_TYPE=$4 MAX_REQ=$5 $PIN_WRK timeout $(($7 + 50)) wrk -t1 -c"$2" -d"$7s" --timeout 10s \
    -s "$REF/wrk_post.lua" "http://127.0.0.1:$PORT$6" > "$OUT/ours_$1.txt" 2>&1
  echo "$1 $(tail -1 "$OUT/ours_$1.txt")" >&2
}
rss() { awk '/VmRSS/{print $2}' "/proc/$SRV/status"; }
MP="multipart/form-data; boundary=refbenchboundary7d9a"
run warmup 8 "$OUT/one_row.json" application/json 10000000 /v1/predict 3
for c in 1 8 32; do
  for rep in $(seq 1 "$REPS"); do run "json_c${c}_rep$rep" "$c" "$OUT/one_row.json" application/json 10000000 /v1/predict "$DUR"; done
done
for rep in $(seq 1 "$REPS"); do run "csv1000_c1_rep$rep" 1 "$PAY/csv1000.multipart" "$MP" 10000000 /v1/predict/csv "$DUR"; done
RSS_WARM=$(rss)
run soak_c32 32 "$OUT/one_row.json" application/json 1000000000 /v1/predict "$SOAK"
RSS_END=$(rss)
HWM=$(awk '/VmHWM/{print $2}' "/proc/$SRV/status")
kill -TERM $SRV; wait $SRV 2>/dev/null || true
trap - EXIT
echo "{\"rss_after_warmup_kb\": $RSS_WARM, \"rss_end_kb\": $RSS_END, \"peak_rss_kb\": $HWM}" > "$OUT/ours_rss.json"

echo "== predict on a large file" >&2
.venv/bin/python - "$OUT/test.csv" "$OUT/big.csv" <<'PYEOF'
import sys
lines = open(sys.argv[1]).read().splitlines()
with open(sys.argv[2], "w") as f:
    f.write(lines[0] + "\n")
    for _ in range(200):
        f.write("\n".join(lines[1:]) + "\n")
PYEOF
/usr/bin/time -f "%e %M" -o "$OUT/predict.time" target/release/predict "$OUT/big.csv" "$OUT/big_pred.csv" --model "$OUT/model.json" -q > "$OUT/predict.txt"

.venv/bin/python bench/report_serve.py "$OUT" "$TREES"

# Explanation time beside the shap package (bench/explain.sh).
BENCH_OUT="$OUT" bench/explain.sh
BENCH_OUT="$OUT" bench/production.sh
