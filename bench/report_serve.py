"""Print the `make bench-serve` comparison from the files bench/serve.sh wrote."""
import glob
import json
import statistics
import sys
from pathlib import Path

out, trees = Path(sys.argv[1]), sys.argv[2]
ref = {json.loads(l)["setting"]: json.loads(l) for l in (out / "ref_summary.jsonl").read_text().splitlines() if l.strip()}


def ours(setting):
    runs = [json.loads(Path(f).read_text().strip().splitlines()[-1]) for f in sorted(glob.glob(str(out / f"ours_{setting}_rep*.txt")))]
    med = lambda k: statistics.median(r[k] for r in runs)
    errors = sum(r[k] for r in runs for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
    return {"req_per_s": med("req_per_s"), "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms"), "errors": errors, "runs": len(runs)}


print(f"## Serving: RandomForest({trees}) both sides, server on CPU 0, wrk -t1 on CPU 1\n")
print("| setting | ours req/s | ref req/s | ratio | ours p50 ms | ref p50 ms | ours p99 ms | ref p99 ms | ours errors |")
print("|---|---|---|---|---|---|---|---|---|")
rows = {}
for c in (1, 8, 32):
    o, r = ours(f"json_c{c}"), ref[f"json_c{c}"]
    rows[c] = (o, r)
    print(f"| JSON 1 row, c={c} | {o['req_per_s']:.0f} | {r['req_per_s']:.1f} | {o['req_per_s'] / r['req_per_s']:.0f}x | "
          f"{o['p50_ms']:.3f} | {r['p50_ms']:.2f} | {o['p99_ms']:.3f} | {r['p99_ms']:.2f} | {o['errors']} |")
o = ours("csv1000_c1")
for name in ("csv1000_reload_c1", "csv1000_cached_c1"):
    r = ref[name]
    print(f"| CSV 1000 rows, c=1 vs {name} | {o['req_per_s'] * 1000:.0f} rows/s | {r['req_per_s'] * 1000:.0f} rows/s | "
          f"{o['req_per_s'] / r['req_per_s']:.0f}x | {o['p50_ms']:.3f} | {r['p50_ms']:.2f} | {o['p99_ms']:.3f} | {r['p99_ms']:.2f} | {o['errors']} |")

soak = json.loads((out / "ours_soak_c32.txt").read_text().strip().splitlines()[-1])
rss = json.loads((out / "ours_rss.json").read_text())
soak_err = sum(soak[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
drift = (rss["rss_end_kb"] - rss["rss_after_warmup_kb"]) / rss["rss_after_warmup_kb"] * 100
print(f"\nSoak: {soak['duration_s']:.0f} s at c=32: {soak['requests']} requests, {soak['req_per_s']:.0f} req/s, "
      f"non-2xx or failed: {soak_err}; RSS after warm-up {rss['rss_after_warmup_kb'] / 1024:.1f} MiB, at the end "
      f"{rss['rss_end_kb'] / 1024:.1f} MiB ({drift:+.1f}%), peak {rss['peak_rss_kb'] / 1024:.1f} MiB.")
ref_rss = (out / "ref_rss.txt").read_text().strip() if (out / "ref_rss.txt").exists() else ""
if ref_rss:
    print(f"Reference server memory (VmHWM / VmRSS per server run, kB): {' | '.join(l.split(' ', 2)[2] for l in ref_rss.splitlines())}")
wall, hwm = (out / "predict.time").read_text().split()
print(f"predict on {out / 'big.csv'}: {(out / 'predict.txt').read_text().strip()}; peak RSS {int(hwm) / 1024:.1f} MiB")

c32, c1 = rows[32], rows[1]
print(f"\nBars: JSON c=32 {c32[0]['req_per_s'] / c32[1]['req_per_s']:.0f}x the reference (>= 100x); "
      f"p50 at c=1 {c1[0]['p50_ms']:.3f} ms vs {c1[1]['p50_ms']:.2f} ms = 1/{c1[1]['p50_ms'] / c1[0]['p50_ms']:.0f} (<= 1/20); "
      f"CSV {o['req_per_s'] / ref['csv1000_reload_c1']['req_per_s']:.0f}x (>= 50x); soak non-2xx {soak_err} (0), RSS drift {drift:+.1f}% (within 10%).")
