#!/usr/bin/env bash
# make bench-build: the README's first command, `make run`, on fresh clones of this repository
# (HEAD), each with its own empty cargo target folder, as a new user gets it. Prints the wall
# seconds of each run and their min / median / max, and the cargo build's share (from the
# clone's `cargo build --timings` report is not needed: the build's own seconds are timed).
#   BENCH_RUNS (3), BENCH_KEEP_VENV=1 reuses this checkout's .venv (pip's download cache is
#   used either way; the registry's crates are already downloaded after the first build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${BENCH_RUNS:-3}
OUT=${BENCH_OUT:-$ROOT/target/bench-build}
mkdir -p "$OUT"
: > "$OUT/runs.txt"
for i in $(seq 1 "$RUNS"); do
  work=$(mktemp -d)
  git clone --quiet "$ROOT" "$work/netsec"
  (
    cd "$work/netsec"
    unset CARGO_TARGET_DIR
    start=$(date +%s.%N)
    make run > "$OUT/run-$i.log" 2>&1 || { echo "make run failed: $OUT/run-$i.log" >&2; exit 1; }
    end=$(date +%s.%N)
    build=$(grep -o 'Finished `release` profile \[optimized\] target(s) in [0-9.]*[ms]* *[0-9.]*s' "$OUT/run-$i.log" | head -1 | sed 's/.* in //')
    printf '%.1f %s\n' "$(echo "$end - $start" | bc)" "$build" >> "$OUT/runs.txt"
    printf 'run %d: make run %.1f s (cargo build: %s)\n' "$i" "$(echo "$end - $start" | bc)" "$build"
  )
  rm -rf "$work"
done
sort -n "$OUT/runs.txt" | awk '{ t[NR] = $1 } END { printf "make run on a fresh clone, %d runs: min %.1f s, median %.1f s, max %.1f s (bar: 300 s)\n", NR, t[1], t[int((NR + 1) / 2)], t[NR] }'
