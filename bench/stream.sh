#!/usr/bin/env bash
# Stream throughput (make bench-stream): N records (default 200,000; BENCH_STREAM_N) of the
# phishing data in a JetStream stream on a local nats-server, then 1 and then 2 `stream`
# workers with the production model score them; prints records/s from the first worker's
# start to the last verdict stored. On a 2-core machine the two workers share the cores with
# nats-server: the figure says what one machine does, not how a cluster scales.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_STREAM_N:-200000}
MODEL=${STREAM_MODEL:-models/production/phishing.json}
command -v nats-server >/dev/null || { echo "bench-stream needs nats-server (make nats-server)" >&2; exit 1; }
cargo build --release --quiet --bin stream --example stream_load
LOAD=target/release/examples/stream_load
PORT=${BENCH_NATS_PORT:-14222}
URL=nats://127.0.0.1:$PORT
declare -A RATE
for workers in 1 2; do
  STORE=$(mktemp -d)
  nats-server -js -a 127.0.0.1 -p "$PORT" -sd "$STORE" > "$STORE/nats.log" 2>&1 &
  NATS=$!
  for _ in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  # Streams and the consumer first (a worker creates them), then the records, then the clock.
  target/release/stream -q --model "$MODEL" --nats-url "$URL" > /dev/null 2>&1 &
  FIRST=$!
  sleep 1; kill -TERM $FIRST; wait $FIRST || true
  "$LOAD" "$URL" "$N" publish data/phishing-websites/phishing_websites.csv
  PIDS=()
  for _ in $(seq 1 $workers); do
    target/release/stream -q --model "$MODEL" --nats-url "$URL" &
    PIDS+=($!)
  done
  SECS=$("$LOAD" "$URL" "$N" wait)
  kill -TERM "${PIDS[@]}"; wait "${PIDS[@]}" 2>/dev/null || true
  kill $NATS; wait $NATS 2>/dev/null || true; rm -rf "$STORE"
  RATE[$workers]=$(python3 -c "print(round($N / $SECS))")
  echo "$workers worker(s): $N records in $SECS s = ${RATE[$workers]} records/s" >&2
done
echo
echo "| stream workers | records/s ($N records, $(nproc) cores, nats-server on the same machine) |"
echo "|---|---|"
echo "| 1 | ${RATE[1]} |"
echo "| 2 | ${RATE[2]} |"
