"""The scaling report of `make bench-scale` (bench/scale.sh): from bench/results/scale.tsv, a
Markdown table, the fitted exponents (seconds ~ rows^k, least squares on log-log), an SVG
chart (bench/results/scale.svg) and the README section between the `scale:begin` and
`scale:end` markers. Standard library only."""

import math
import os
import sys
from collections import defaultdict

README = "README.md"
SVG = "bench/results/scale.svg"
BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"


def load(path):
    rows = []
    with open(path) as f:
        next(f)
        for line in f:
            what, n, secs, rss = (line.rstrip("\n").split("\t") + [""] * 4)[:4]
            rows.append((what, int(n), float(secs), int(rss) if rss else None))
    return rows


def exponent(points):
    """Slope of log(seconds) on log(rows), and the points used."""
    pts = [(math.log(n), math.log(s)) for n, s in points if n > 0 and s > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


def human(n):
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n >= 1000 else str(n)


def chart(series):
    """A log-log chart of seconds against rows, one line per series."""
    w, h, left, right, top, bottom = 640, 360, 70, 150, 20, 50
    pts = [p for s in series.values() for p in s]
    xs = [math.log10(n) for n, _ in pts]
    ys = [math.log10(s) for _, s in pts]
    x0, x1 = math.floor(min(xs)), math.ceil(max(xs))
    y0, y1 = math.floor(min(ys)), math.ceil(max(ys))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)

    def px(n):
        return left + (math.log10(n) - x0) / (x1 - x0) * (w - left - right)

    def py(s):
        return top + (1 - (math.log10(s) - y0) / (y1 - y0)) * (h - top - bottom)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
    ]
    for e in range(x0, x1 + 1):
        x = px(10**e)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{h - bottom}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{h - bottom + 16}" text-anchor="middle">{human(10**e)}</text>')
    for e in range(y0, y1 + 1):
        y = py(10**e)
        label = f"{10**e:g} s"
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - right}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - 10}" text-anchor="middle">rows (log)</text>')
    out.append(
        f'<text x="16" y="{(top + h - bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {(top + h - bottom) / 2})">wall seconds (log)</text>'
    )
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    for i, (name, s) in enumerate(series.items()):
        c = colors[i % len(colors)]
        path = " ".join(f"{px(n):.1f},{py(t):.1f}" for n, t in sorted(s))
        out.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"/>')
        for n, t in s:
            out.append(f'<circle cx="{px(n):.1f}" cy="{py(t):.1f}" r="3.5" fill="{c}"/>')
        ly = top + 20 + 20 * i
        out.append(f'<line x1="{w - right + 12}" y1="{ly}" x2="{w - right + 36}" y2="{ly}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{w - right + 42}" y="{ly + 4}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(path):
    rows = load(path)
    by = defaultdict(list)
    for what, n, secs, rss in rows:
        by[what].append((n, secs, rss))
    lines = [
        f"Measured by `make bench-scale` on this machine ({os.cpu_count()} cores): synthetic rows drawn from "
        "the UNSW-NB15 partition's per-class distributions; `train` searches the dataset's own space "
        "(`intrusion`: a random forest and four GBMs, 5-fold CV, then the refit); `predict` reads CSV and "
        "writes CSV with the model trained on 100k rows.",
        "",
        "| rows | train s | train peak RSS | predict s | predict rows/s | predict peak RSS |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    sizes = sorted({n for w, n, _, _ in rows if w in ("train", "predict")})
    get = {(w, n): (s, r) for w, n, s, r in rows}
    for n in sizes:
        t, p = get.get(("train", n)), get.get(("predict", n))
        cells = [f"{n:,}"]
        cells += [f"{t[0]:.1f}", f"{t[1] / 1024:.0f} MiB"] if t else ["not run", ""]
        cells += [f"{p[0]:.2f}", f"{n / max(p[0], 1e-9):,.0f}", f"{p[1] / 1024:.0f} MiB"] if p else ["", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    for n, s, _ in by["spark"]:
        p = get.get(("predict", n))
        beside = f"; single-process `predict` on the same rows {p[0]:.2f} s" if p else ""
        lines.append("")
        lines.append(
            f"Spark (`deploy/spark/score.py`, `local[2]`, JVM start included) on {n:,} rows: {s:.1f} s, "
            f"{n / max(s, 1e-9):,.0f} rows/s{beside}."
        )
    trained = sorted((n, r) for n, _, r in by["train"] if r)
    missing = [n for n in sizes if ("train", n) not in get]
    if trained and missing:
        n0, r0 = trained[-1]
        with open("/proc/meminfo") as f:
            mem_kib = int(f.readline().split()[1])
        for n in missing:
            need = r0 * n / n0
            lines.append("")
            lines.append(
                f"Where one machine stops: `train` holds the encoded rows and its cross-validation folds in "
                f"memory, and its peak RSS grows with the rows ({r0 / 1024 / 1024:.1f} GiB at {n0:,}); at "
                f"{n:,} rows that projects to {need / 1024 / 1024:.0f} GiB, more than this machine's "
                f"{mem_kib / 1024 / 1024:.0f} GiB, so it was not run. Scoring has no such limit: `predict` "
                "streams in chunks and stays at the same RSS from 100k to 5M rows; past one machine, "
                "the Spark job and stream workers split the rows."
            )
    k_train = exponent([(n, s) for n, s, _ in by["train"]])
    k_pred = exponent([(n, s) for n, s, _ in by["predict"] if n >= 100_000])
    lines.append("")
    if k_train is not None:
        lines.append(f"`train` grows as rows^{k_train:.2f} (least squares on the log-log points).")
    if k_pred is not None:
        lines.append(f"`predict` grows as rows^{k_pred:.2f} from 100k rows up (below that, start-up dominates).")
    streams = sorted((w, n, s) for w, n, s, _ in rows if w.startswith("stream_"))
    if streams:
        lines.append("")
        lines.append("| stream workers | records/s |")
        lines.append("|---:|---:|")
        for w, n, s, in streams:
            lines.append(f"| {w.removeprefix('stream_')} | {n / max(s, 1e-9):,.0f} |")
    series = {}
    if by["train"]:
        series["train"] = [(n, s) for n, s, _ in by["train"]]
    if by["predict"]:
        series["predict"] = [(n, s) for n, s, _ in by["predict"]]
    os.makedirs(os.path.dirname(SVG), exist_ok=True)
    with open(SVG, "w") as f:
        f.write(chart(series))
    lines.append("")
    lines.append(f"![wall seconds against rows, log-log]({SVG})")
    text = "\n".join(lines)
    print(text)
    with open(README) as f:
        readme = f.read()
    if BEGIN in readme and END in readme:
        head, rest = readme.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        with open(README, "w") as f:
            f.write(f"{head}{BEGIN}\n{text}\n{END}{tail}")
        print(f"\n(README.md's scaling section rewritten; chart in {SVG})", file=sys.stderr)
    else:
        print(f"\n(README.md has no {BEGIN} ... {END} markers: section not written)", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/scale.tsv")
