#!/usr/bin/env bash
# What running in production costs (part of `make bench-serve`, or on its own:
# bench/production.sh): one-row JSON requests at concurrency 32, wrk on CPU 1 and the server
# (one worker thread) on CPU 0, in four settings: drift monitoring off (--monitor-window 0),
# on (the default), on with the audit log (--audit-log), and on with a shadow candidate
# (--shadow, the same bundle). The settings take turns, BENCH_ROUNDS (3) rounds of
# BENCH_DURATION (10) s each, so a drift of the machine's speed hits them alike; the medians
# are compared. Bars (issue 18): monitoring costs at most 5%, the audit log at most 10%.
# The model: $OUT/model.json from bench/serve.sh, or $PROD_MODEL.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REF=${REF_DIR:-$ROOT/../shared/reference}
OUT=${BENCH_OUT:-$ROOT/target/bench-serve}
MODEL=${PROD_MODEL:-$OUT/model.json}
DUR=${BENCH_DURATION:-10}; ROUNDS=${BENCH_ROUNDS:-3}
PORT=${BENCH_PORT:-18081}
[ -f "$MODEL" ] || MODEL=models/production/phishing.json
[ -f "$OUT/one_row.json" ] || { echo "bench production: run bench/serve.sh first (it writes $OUT/one_row.json)" >&2; exit 1; }
grep -q '"reference"' "$MODEL" || { echo "bench production: $MODEL has no drift reference (train it again)" >&2; exit 1; }
PIN_SRV=""; PIN_WRK=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then PIN_SRV="taskset -c 0"; PIN_WRK="taskset -c 1"; fi
AUDIT=$(mktemp -d)
trap 'rm -rf "$AUDIT"' EXIT

one() { # setting -> req/s
  local extra=()
  case $1 in
    off) extra=(--monitor-window 0) ;;
    monitor) ;;
    audit) rm -rf "$AUDIT"/*; extra=(--audit-log "$AUDIT") ;;
    shadow) extra=(--shadow "$MODEL") ;;
  esac
  $PIN_SRV target/release/serve --model "$MODEL" --addr "127.0.0.1:$PORT" --threads 1 -q "${extra[@]}" &
  local srv=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  BODY_FILE=$OUT/one_row.json CONTENT_TYPE=application/json MAX_REQ=1000000000 $PIN_WRK wrk -t1 -c32 -d"${DUR}s" \
    --timeout 10s -s "$REF/wrk_post.lua" "http://127.0.0.1:$PORT/v1/predict" > "$OUT/prod_$1.txt" 2>&1
  kill -TERM $srv; wait $srv 2>/dev/null || true
  if [ "$1" = audit ]; then
    local lines; lines=$(cat "$AUDIT"/*.jsonl | wc -l)
    local done_; done_=$(awk '/requests in/{print $1}' "$OUT/prod_$1.txt")
    echo "  audit: $lines lines for $done_ requests" >&2
  fi
  awk '/Requests\/sec/{print $2}' "$OUT/prod_$1.txt"
}

declare -A RUNS
for r in $(seq 1 "$ROUNDS"); do
  for s in off monitor audit shadow; do
    v=$(one $s); RUNS[$s]="${RUNS[$s]:-} $v"; echo "round $r $s: $v req/s" >&2
  done
done
python3 - "${RUNS[off]}" "${RUNS[monitor]}" "${RUNS[audit]}" "${RUNS[shadow]}" <<'PYEOF' | tee "$OUT/production.md"
import statistics, sys
names = ["off", "monitor", "audit", "shadow"]
runs = {n: [float(x) for x in sys.argv[1 + i].split()] for i, n in enumerate(names)}
med = {n: statistics.median(v) for n, v in runs.items()}
print("\n### Running in production: one-row JSON, concurrency 32, one server thread (req/s, median of rounds)\n")
print("| setting | req/s | rounds | vs monitoring off | bar |")
print("|---|---|---|---|---|")
bars = {"monitor": 0.05, "audit": 0.10}
for n, label in [("off", "monitoring off (--monitor-window 0)"), ("monitor", "drift monitoring on (default)"),
                 ("audit", "monitoring + audit log (--audit-log)"), ("shadow", "monitoring + shadow candidate (--shadow)")]:
    loss = 1 - med[n] / med["off"]
    bar = f"loss <= {bars[n]:.0%}: {'met' if loss <= bars[n] else 'MISSED'}" if n in bars else ""
    print(f"| {label} | {med[n]:,.0f} | {' / '.join(f'{x:,.0f}' for x in runs[n])} | {-loss:+.1%} | {bar} |")
PYEOF
