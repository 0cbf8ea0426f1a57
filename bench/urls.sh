#!/usr/bin/env bash
# make bench-urls: our URL model (dataset phishing_urls: the URL string only) beside
# scikit-learn's RandomForest(300) and HistGradientBoosting on the *published* URL-only
# features, on the same stratified 80/20 split (seed 42), and on scikit-learn's own split; then
# `predict` on the 11,430 URLs repeated 10 times, one core. Figures, not pass/fail.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REF=${REF_DIR:-$ROOT/../shared/reference}
OUT=${BENCH_OUT:-$ROOT/target/bench-urls}
export REF_WORK=${REF_WORK:-$ROOT/target/bench-ref}
make -s build venv >&2
.venv/bin/dvc pull -q data.dvc >&2
"$REF/setup.sh" >&2
PY=$REF_WORK/venv/bin/python
P=$OUT/project
rm -rf "$P" && mkdir -p "$P"
cp -r schemas "$P/" && ln -s "$ROOT/data" "$P/data"
sed 's/^dataset: .*/dataset: phishing_urls/' params.yaml > "$P/params.yaml"
echo "== our pipeline on phishing_urls (the URL string only)" >&2
for stage in ingest validate transform train evaluate; do (cd "$P" && "$ROOT/target/release/$stage" -q); done
(cd "$P" && "$ROOT/target/release/export" artifacts/split/train.parquet "$OUT/train.csv" -q \
         && "$ROOT/target/release/export" artifacts/split/test.parquet "$OUT/test.csv" -q)
echo
echo "netsec (URL string only, features/url.rs), stratified 80/20 seed 42:"
python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(f\"  {'netsec':28} accuracy {m['accuracy']:.4f}  ROC-AUC {m['roc_auc']:.4f}\")" "$P/metrics/eval.json"
"$PY" bench/urls_sklearn.py data/urls-hannousse/dataset_phishing.csv.gz "$OUT/train.csv" "$OUT/test.csv"
echo
zcat data/urls-hannousse/dataset_phishing.csv.gz | python3 -c "
import csv, sys
rows = [r['url'] for r in csv.DictReader(sys.stdin)]
open(sys.argv[1], 'w').write(''.join(u + '\n' for _ in range(10) for u in rows))" "$OUT/urls.txt"
echo "predict, one core, $(wc -l < "$OUT/urls.txt") URLs (feature extraction included), 5 runs:"
# Five runs, the median reported: this VM's speed wanders by a third from run to run.
: > "$OUT/predict-runs.txt"
for _ in 1 2 3 4 5; do
  taskset -c 0 target/release/predict "$OUT/urls.txt" "$OUT/verdicts.csv" --model "$P/models/model.json" -q 2>/dev/null \
    | tee -a "$OUT/predict-runs.txt"
done
grep -o '[0-9]* rows/s' "$OUT/predict-runs.txt" | cut -d' ' -f1 | sort -n | python3 -c "
import sys; r = [int(x) for x in sys.stdin]
print(f'  median {r[len(r)//2]:,} URLs/s (min {r[0]:,}, max {r[-1]:,}; bar: 100,000)')"

echo
echo "one-URL JSON requests at concurrency 1 (serve on CPU 0, wrk on CPU 1, 10 s):"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install -y wrk)" >&2; exit 1; }
echo '{"url": "http://secure-paypa1.com.account-update.example.tk/signin?id=42"}' > "$OUT/one.json"
taskset -c 0 target/release/serve --model "$P/models/model.json" --addr 127.0.0.1:0 2> "$OUT/serve.log" &
SRV=$!
trap 'kill $SRV 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q 'addr=' "$OUT/serve.log" && break; sleep 0.1; done
ADDR=$(grep -o 'addr=[0-9.:]*' "$OUT/serve.log" | head -1 | cut -d= -f2)
BODY_FILE="$OUT/one.json" CONTENT_TYPE=application/json MAX_REQ=100000000 taskset -c 1 \
  wrk -t1 -c1 -d10s -s "$REF/wrk_post.lua" "http://$ADDR/v1/predict" | tail -1 > "$OUT/wrk.json"
python3 -c "import json,sys; w=json.load(open(sys.argv[1])); print(f\"  {w['req_per_s']:,.0f} req/s, p50 {w['p50_ms']:.3f} ms, p99 {w['p99_ms']:.3f} ms (bar: p50 <= 0.3 ms), non-2xx {w['err_status']}\")" "$OUT/wrk.json"
