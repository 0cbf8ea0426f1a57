#!/usr/bin/env bash
# make bench-zeek: score a Zeek conn.log of over a million lines with `predict`, one core,
# beside a pandas + scikit-learn script doing the same job (bench/zeek_pandas.py: parse the
# log, derive the same flow features, score with a model of the same family and size, write
# CSV with the connection's identity). Prints records/s and peak RSS of both, and the ratio.
#
# The log is day 012 of data/zeek-ctu50 (the test day) repeated with new uids. Our model is
# the pipeline's own on dataset zeek_ctu50 (trained here in a scratch project); the peer fits
# scikit-learn on the same three training days with the winner's hyperparameters (not timed).
# Both write their CSV to a tmpfs (/dev/shm) so the figure is the work, not the disk: our
# output is fsync'ed before its rename (a crash never leaves half a file), which on this
# machine's disk costs about 2 s per 100 MB.
#   BENCH_LINES (1000000), BENCH_OUT (target/bench-zeek)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REF=${REF_DIR:-$ROOT/../shared/reference}
OUT=${BENCH_OUT:-$ROOT/target/bench-zeek}
LINES=${BENCH_LINES:-1000000}
export REF_WORK=${REF_WORK:-$ROOT/target/bench-ref}
mkdir -p "$OUT"
SHM=$(mktemp -d /dev/shm/netsec-bench-XXXXXX)
trap 'rm -rf "$SHM"' EXIT

echo "== building, pulling the data" >&2
make -s build venv >&2
.venv/bin/dvc pull -q data.dvc >&2
echo "== reference venv ($REF_WORK)" >&2
"$REF/setup.sh" >&2
PY=$REF_WORK/venv/bin/python

echo "== our model: the pipeline on dataset zeek_ctu50" >&2
P=$OUT/project
rm -rf "$P" && mkdir -p "$P"
cp -r schemas "$P/"
ln -s "$ROOT/data" "$P/data"
sed 's/^dataset: .*/dataset: zeek_ctu50/' params.yaml > "$P/params.yaml"
for stage in ingest validate transform train evaluate; do
  (cd "$P" && "$ROOT/target/release/$stage" -q)
done
MODEL=$P/models/model.json
# The winner's family, hyperparameters and threshold, for the peer.
python3 - "$MODEL" "$OUT/hyper.json" <<'PYEOF'
import json, sys
b = json.loads(open(sys.argv[1]).read().split("\n")[1])
h = dict(b["hyperparameters"], family=b["model"]["family"], threshold=b["threshold"])
json.dump(h, open(sys.argv[2], "w"))
print("model:", h["family"], {k: h[k] for k in ("n_estimators", "max_depth", "learning_rate") if k in h}, file=sys.stderr)
PYEOF

echo "== the log: day 012 repeated to $LINES+ lines, new uids" >&2
python3 - "$ROOT/data/zeek-ctu50/012-conn.log.labeled.gz" "$SHM/conn.log" "$LINES" <<'PYEOF'
import gzip, sys
lines = gzip.open(sys.argv[1], "rt").read().splitlines()
head = [l for l in lines if l.startswith("#")]
rows = [l for l in lines if not l.startswith("#")]
reps = -(-int(sys.argv[3]) // len(rows))
with open(sys.argv[2], "w") as f:
    f.write("\n".join(head) + "\n")
    for r in range(reps):
        for l in rows:
            ts, uid, rest = l.split("\t", 2)
            f.write(f"{ts}\t{uid}r{r}\t{rest}\n")
print(f"{reps * len(rows)} connections, {sum(1 for _ in open(sys.argv[2]))} lines", file=sys.stderr)
PYEOF
ROWS=$(grep -vc '^#' "$SHM/conn.log")

echo "== the peer's model (scikit-learn, same family and size; not timed)" >&2
"$PY" bench/zeek_pandas.py fit "$OUT/peer.pkl" "$OUT/hyper.json" \
  data/zeek-ctu50/008-conn.log.labeled.gz data/zeek-ctu50/010-conn.log.labeled.gz data/zeek-ctu50/011-conn.log.labeled.gz

# Warm the page cache for both.
cat "$SHM/conn.log" > /dev/null
echo "== timing, one core each (taskset -c 0; the peer with OMP_NUM_THREADS=1)" >&2
/usr/bin/time -f "%e %M" -o "$OUT/ours.time" taskset -c 0 \
  target/release/predict "$SHM/conn.log" "$SHM/ours.csv" --model "$MODEL" -q > "$OUT/ours.txt"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/time -f "%e %M" -o "$OUT/peer.time" taskset -c 0 \
  "$PY" bench/zeek_pandas.py score "$OUT/peer.pkl" "$SHM/conn.log" "$SHM/peer.csv" > "$OUT/peer.txt"

python3 - "$ROWS" "$OUT/ours.time" "$OUT/peer.time" "$SHM/ours.csv" "$SHM/peer.csv" <<'PYEOF'
import csv, sys
rows = int(sys.argv[1])
(ours_s, ours_kb), (peer_s, peer_kb) = [map(float, open(p).read().split()[-2:]) for p in sys.argv[2:4]]
def labels(path):
    with open(path) as f:
        return [r["prediction"] for r in csv.DictReader(f)]
a, b = labels(sys.argv[4]), labels(sys.argv[5])
agree = sum(x == y for x, y in zip(a, b)) / max(len(a), 1)
print(f"\nZeek conn.log, {rows:,} connections, one core: parse, derive flow features, score, write CSV")
print(f"{'':28}{'netsec predict':>16}{'pandas+sklearn':>16}")
print(f"{'wall seconds':28}{ours_s:>16.2f}{peer_s:>16.2f}")
print(f"{'records/s':28}{rows / ours_s:>16,.0f}{rows / peer_s:>16,.0f}")
print(f"{'peak RSS (MB)':28}{ours_kb / 1024:>16,.0f}{peer_kb / 1024:>16,.0f}")
print(f"ratio: {peer_s / ours_s:.1f}x the records/s (bar: 20x), {peer_kb / ours_kb:.0f}x less memory; "
      f"the two agree on {agree:.2%} of the verdicts ({len(a):,} / {len(b):,} rows)")
PYEOF
