"""The table of `make bench-peers` (bench/peers.sh): ours beside LightGBM, XGBoost and lleaves,
per dataset and thread count, with the ratios; also written into the README between the
`peers:begin` and `peers:end` markers. Standard library only."""

import json
import os
import statistics
import sys

BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"
NAMES = {"nsl_kdd": "NSL-KDD", "phishing": "phishing websites"}


def fmt_rate(r):
    return f"{r / 1e6:.2f}M" if r >= 1e6 else f"{r / 1e3:.0f}k"


def table(root, ds):
    ours = json.load(open(os.path.join(root, ds, "ours.json")))
    peers = json.load(open(os.path.join(root, ds, "peers.json")))
    both = {**ours, **peers}
    lines = [
        f"**{NAMES.get(ds, ds)}** ({ours['train_rows']:,} training rows × {ours['features']} features; "
        f"scoring on the test part tiled to {ours['scored_rows']:,} rows)",
        "",
        "| threads | figure | ours | LightGBM | XGBoost (hist) | lleaves | ours vs best peer |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for t in (1, 2):
        if f"gbm_100_t{t}" not in ours:
            continue
        for rounds in (100, 300):
            g = lambda lib: both.get(f"{lib}_{rounds}_t{t}", {})  # noqa: E731
            o, lg, xg, ll = g("gbm"), g("lightgbm"), g("xgboost"), g("lleaves")
            fits = [v for v in (lg.get("fit_s"), xg.get("fit_s")) if v]
            lines.append(
                f"| {t} | GBM({rounds}) fit s | {o['fit_s']:.2f} | {lg['fit_s']:.2f} | {xg['fit_s']:.2f} | — | "
                f"{min(fits) / o['fit_s']:.2f}× |"
            )
            rates = [v.get("score_rows_per_s") for v in (lg, xg, ll) if v.get("score_rows_per_s")]
            lines.append(
                f"| {t} | {rounds} trees, rows/s in memory | {fmt_rate(o['score_rows_per_s'])} | "
                f"{fmt_rate(lg['score_rows_per_s'])} | {fmt_rate(xg['score_rows_per_s'])} | "
                f"{fmt_rate(ll['score_rows_per_s'])} | {o['score_rows_per_s'] / max(rates):.2f}× |"
            )
            lines.append(
                f"| {t} | GBM({rounds}) test accuracy / AUC | {o['test_accuracy']:.4f} / {o['test_roc_auc']:.4f} | "
                f"{lg['test_accuracy']:.4f} / {lg['test_roc_auc']:.4f} | {xg['test_accuracy']:.4f} / {xg['test_roc_auc']:.4f} | "
                f"{ll['test_accuracy']:.4f} / {ll['test_roc_auc']:.4f} | |"
            )
        path = os.path.join(root, ds, f"predict_t{t}")
        if os.path.exists(path):
            rates = [int(x) for x in open(path).read().split()]
            lines.append(
                f"| {t} | `predict` end to end, 300 trees (CSV in, CSV out), rows/s | "
                f"{fmt_rate(statistics.median(rates))} | | | | |"
            )
    return "\n".join(lines)


def main(root, datasets):
    text = "\n\n".join(
        [f"Measured by `make bench-peers` on this machine ({os.cpu_count()} cores). Fit: median of the runs; "
         "ratio > 1: ours is faster (fit: the best peer's seconds over ours; scoring: ours over the best peer's rows/s)."]
        + [table(root, ds) for ds in datasets]
    )
    print(text)
    readme = open("README.md").read()
    if BEGIN in readme and END in readme:
        head, rest = readme.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        open("README.md", "w").write(f"{head}{BEGIN}\n{text}\n{END}{tail}")
        print("\n(README.md's peers section rewritten)", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or ["nsl_kdd", "phishing"])
