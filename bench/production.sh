#!/usr/bin/env bash
# What running in production costs (part of `make bench-serve`, or on its own:
# bench/production.sh): one-row JSON requests at concurrency 32, wrk on CPU 1 and the server
# (one worker thread) on CPU 0, in four settings: drift monitoring off (--monitor-window 0),
# on (the default), on with the audit log (--audit-log), and on with a shadow candidate
# (--shadow, the same bundle). The four servers run side by side and take short turns under
# load, BENCH_ROUNDS (15) rounds of BENCH_DURATION (2) s each, each round in another order, so
# a drift of the machine's speed (±30% between minutes on this shared machine) hits them
# alike; the medians are compared.
# Besides req/s, the server's CPU time per request (utime+stime from /proc over the requests
# wrk completed), which a slower or faster minute moves less. Bars (issue 18): monitoring
# costs at most 5%, the audit log at most 10%.
# The model: $OUT/model.json from bench/serve.sh, or $PROD_MODEL.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REF=${REF_DIR:-$ROOT/../shared/reference}
OUT=${BENCH_OUT:-$ROOT/target/bench-serve}
MODEL=${PROD_MODEL:-$OUT/model.json}
DUR=${BENCH_DURATION:-2}; ROUNDS=${BENCH_ROUNDS:-15}
PORT=${BENCH_PORT:-18081}  # and the next three
[ -f "$MODEL" ] || MODEL=models/production/phishing.json
[ -f "$OUT/one_row.json" ] || { echo "bench production: run bench/serve.sh first (it writes $OUT/one_row.json)" >&2; exit 1; }
grep -q '"reference"' "$MODEL" || { echo "bench production: $MODEL has no drift reference (train it again)" >&2; exit 1; }
PIN_SRV=""; PIN_WRK=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then PIN_SRV="taskset -c 0"; PIN_WRK="taskset -c 1"; fi
AUDIT=$(mktemp -d)
SETTINGS=(off monitor audit shadow)
declare -A PID
cleanup() { for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$AUDIT"; }
trap cleanup EXIT
# The four servers run side by side (one port each, all on CPU 0), idle but for the one wrk
# is loading: short turns (BENCH_DURATION s) in a rotating order, so that a minute when the
# machine is slower or faster falls on all settings alike.
for i in 0 1 2 3; do
  s=${SETTINGS[$i]}
  case $s in
    off) extra=(--monitor-window 0) ;;
    monitor) extra=() ;;
    audit) extra=(--audit-log "$AUDIT") ;;
    shadow) extra=(--shadow "$MODEL") ;;
  esac
  $PIN_SRV target/release/serve --model "$MODEL" --addr "127.0.0.1:$((PORT + i))" --threads 1 -q "${extra[@]}" &
  PID[$s]=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$((PORT + i))/healthz" >/dev/null && break; sleep 0.1; done
done
cpu_ticks() { local t=0; for f in /proc/"$1"/task/*/stat; do t=$((t + $(awk '{print $14 + $15}' "$f"))); done; echo $t; }
one() { # index -> "req/s cpu-us-per-request"
  local s=${SETTINGS[$1]} before after reqs
  before=$(cpu_ticks "${PID[$s]}")
  BODY_FILE=$OUT/one_row.json CONTENT_TYPE=application/json MAX_REQ=1000000000 $PIN_WRK wrk -t1 -c32 -d"${DUR}s" \
    --timeout 10s -s "$REF/wrk_post.lua" "http://127.0.0.1:$((PORT + $1))/v1/predict" > "$OUT/prod_$s.txt" 2>&1
  sleep 0.1  # the audit and shadow threads finish their last batch
  after=$(cpu_ticks "${PID[$s]}")
  reqs=$(awk '/requests in/{print $1}' "$OUT/prod_$s.txt")
  echo "$(awk '/Requests\/sec/{print $2}' "$OUT/prod_$s.txt") $(python3 -c "import os,sys; print(round(int(sys.argv[1]) / os.sysconf('SC_CLK_TCK') / int(sys.argv[2]) * 1e6, 2))" "$((after - before))" "$reqs")"
}
for i in 0 1 2 3; do one $i > /dev/null; done  # warm-up turn
declare -A RPS CPU
for r in $(seq 1 "$ROUNDS"); do
  for k in 0 1 2 3; do
    i=$(( (k + r) % 4 )); s=${SETTINGS[$i]}
    read -r rps cpu < <(one $i)
    RPS[$s]="${RPS[$s]:-} $rps"; CPU[$s]="${CPU[$s]:-} $cpu"
    echo "round $r $s: $rps req/s, $cpu CPU-us/request" >&2
  done
done
kill -TERM "${PID[audit]}"; wait "${PID[audit]}" 2>/dev/null || true
echo "audit log: $(cat "$AUDIT"/*.jsonl | wc -l) lines" >&2
python3 - "${RPS[off]}" "${RPS[monitor]}" "${RPS[audit]}" "${RPS[shadow]}" "${CPU[off]}" "${CPU[monitor]}" "${CPU[audit]}" "${CPU[shadow]}" <<'PYEOF' | tee "$OUT/production.md"
import statistics, sys
names = ["off", "monitor", "audit", "shadow"]
rps = {n: [float(x) for x in sys.argv[1 + i].split()] for i, n in enumerate(names)}
cpu = {n: [float(x) for x in sys.argv[5 + i].split()] for i, n in enumerate(names)}
# The machine's speed jumps between about 20k and 30k req/s within seconds, so a setting is
# compared with "off" in the same round (turns of a few seconds apart), and the median of
# those ratios is reported: the medians of the settings' own figures are shown beside it.
def ratio(d, n, base="off"):
    return statistics.median(a / b for a, b in zip(d[n], d[base]))
print(f"\n### Running in production: one-row JSON, concurrency 32, one server thread ({len(rps['off'])} rounds)\n")
print("| setting | req/s (median) | req/s vs off (median of per-round ratios) | server CPU µs/request (median) | CPU vs off | bar |")
print("|---|---|---|---|---|---|")
bars = {"monitor": ("off", 0.05), "audit": ("off", 0.10)}
rows = [("off", "monitoring off (--monitor-window 0)"), ("monitor", "drift monitoring on (default)"),
        ("audit", "monitoring + audit log (--audit-log)"), ("shadow", "monitoring + shadow candidate (--shadow)")]
for n, label in rows:
    r = ratio(rps, n)
    bar = ""
    if n in bars:
        limit = bars[n][1]
        bar = f"loss <= {limit:.0%}: {'met' if 1 - r <= limit else 'MISSED'}"
    print(f"| {label} | {statistics.median(rps[n]):,.0f} | {r - 1:+.1%} | {statistics.median(cpu[n]):.2f} | {ratio(cpu, n) - 1:+.1%} | {bar} |")
print(f"\naudit log vs monitoring on (same round): {ratio(rps, 'audit', 'monitor') - 1:+.1%} req/s")
print("\nreq/s per round:", {n: [round(x) for x in v] for n, v in rps.items()})
PYEOF
