#!/usr/bin/env bash
# Scaling curves (make bench-scale): wall time and peak RSS of `train` (the dataset's own search
# space, `space: auto` = `intrusion` for UNSW-NB15) and of `predict` (CSV in, CSV out; the model
# trained on 100k rows) at 10k, 100k, 1M and 5M rows drawn from the UNSW-NB15 partition's
# per-class distributions (examples/synth_rows.rs), then stream throughput with 1 and 2
# workers (bench/stream.sh). bench/report_scale.py prints the table, fits the exponents, draws
# bench/results/scale.svg and rewrites the README's scaling section.
#   SCALE_ROWS="10000 100000"        the predict sizes (default 10k 100k 1M 5M)
#   SCALE_TRAIN_ROWS="10000 100000"  the train sizes (default 10k 100k 1M)
#   SCALE_SPARK_ROWS=1000000         the Spark sizes (default 1M; empty: none)
#   SCALE_STREAM=0                   skip the stream part
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${SCALE_ROWS:-"10000 100000 1000000 5000000"}
# train stops at 1M rows: it holds the encoded matrix and its folds in memory (913 MiB at 100k
# rows here, about 9 GiB at 1M), so 5M rows (about 45 GiB) do not fit this 24 GiB machine.
TRAIN_ROWS=${SCALE_TRAIN_ROWS:-"10000 100000 1000000"}
SRC=data/unsw-nb15/UNSW_NB15_training-set.csv.gz
[ -f "$SRC" ] || { echo "bench-scale needs $SRC: run make run (or .venv/bin/dvc pull data.dvc) first" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-scale needs GNU time (/usr/bin/time): apt-get install time" >&2; exit 1; }
SEED=$(.venv/bin/python -c 'import yaml; print(yaml.safe_load(open("params.yaml"))["train"]["seed"])')
cargo build --release --locked --quiet --bins --example synth_rows
BIN=$PWD/target/release
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
RESULTS=bench/results/scale.tsv
mkdir -p bench/results
printf 'what\trows\tseconds\tpeak_rss_kib\n' > "$RESULTS.new"

rows_file() {
  local n=$1 f="$WORK/rows-$1.csv"
  [ -f "$f" ] || "$BIN/examples/synth_rows" "$SRC" --target label --id id --rows "$n" --seed "$SEED" > "$f"
  echo "$f"
}

# One run of a command: wall seconds and peak RSS (KiB), appended to the results.
measure() {
  local what=$1 n=$2; shift 2
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" > "$WORK/out.log" 2>&1 || { cat "$WORK/out.log" >&2; exit 1; }
  read -r secs rss < "$WORK/time"
  printf '%s\t%s\t%s\t%s\n' "$what" "$n" "$secs" "$rss" >> "$RESULTS.new"
  printf '%-8s %9s rows: %8.2f s, peak RSS %7.0f MiB\n' "$what" "$n" "$secs" "$(echo "$rss / 1024" | bc -l)" >&2
}

# A project folder on n synthetic rows: our params and the UNSW-NB15 schema on that file.
project() {
  local n=$1 p="$WORK/p$1"
  mkdir -p "$p/schemas" "$p/data"
  sed "s|^  source: .*|  source: data/rows.csv|" schemas/unsw_nb15.yaml > "$p/schemas/unsw_nb15.yaml"
  sed "s|^dataset: .*|dataset: unsw_nb15|" params.yaml > "$p/params.yaml"
  ln -sf "$(rows_file "$n")" "$p/data/rows.csv"
  echo "$p"
}

for n in $TRAIN_ROWS; do
  p=$(project "$n")
  (cd "$p" && for s in ingest validate transform; do "$BIN/$s" -q > /dev/null; done)
  measure train "$n" bash -c "cd '$p' && '$BIN/train' -q"
done

# predict: one model for every size, so only the rows change.
p=$(project 100000)
[ -f "$p/models/model.json" ] || (cd "$p" && for s in ingest validate transform train; do "$BIN/$s" -q > /dev/null; done)
for n in $ROWS; do
  measure predict "$n" "$BIN/predict" "$(rows_file "$n")" "$WORK/verdicts.csv" --model "$p/models/model.json"
  rm -f "$WORK/verdicts.csv"
done

# Spark (deploy/spark/score.py, local[2]) on the same rows as predict at 1M: the wall time
# includes the JVM's start (its RSS is not reported: the JVM is not a waited-for child).
SPARK_ROWS=${SCALE_SPARK_ROWS:-1000000}
if [ -x .venv-spark/bin/python ] && [ -n "$SPARK_ROWS" ]; then
  for n in $SPARK_ROWS; do
    measure spark "$n" env SPARK_LOCAL_DIRS="$WORK" SPARK_LOCAL_IP=127.0.0.1 .venv-spark/bin/python deploy/spark/score.py \
      --input "$(rows_file "$n")" --output "$WORK/spark-out" --model "$p/models/model.json" --predict "$BIN/predict" --master 'local[2]'
    rm -rf "$WORK/spark-out"
  done
fi

if [ "${SCALE_STREAM:-1}" != 0 ]; then
  # "1 worker(s): 200000 records in 8.37 s = 23878 records/s" -> stream_1, records, seconds.
  bench/stream.sh 2>&1 >/dev/null | tee "$WORK/stream.log" >&2
  awk '/worker\(s\):/ {sub(/:/, "", $1); printf "stream_%s\t%s\t%s\t\n", $1, $3, $6}' "$WORK/stream.log" >> "$RESULTS.new"
fi
mv "$RESULTS.new" "$RESULTS"
.venv/bin/python bench/report_scale.py "$RESULTS"
