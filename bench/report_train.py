"""Print the `make bench-train` comparison from the files bench/train.sh wrote."""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])


def times(name):
    user, sys_, wall, rss_kb = (out / f"{name}.time").read_text().split()[-4:]
    return float(user) + float(sys_), float(wall), int(rss_kb) / 1024


def f1_both_classes(tp, fp, tn, fn):
    """F1 of the threat class and of the legitimate class from threat-class counts."""
    return 2 * tp / (2 * tp + fp + fn), 2 * tn / (2 * tn + fn + fp)


ours_cpu, ours_wall, ours_rss = times("ours")
ref_cpu, ref_wall, ref_rss = times("ref")
ev = json.loads((out / "eval.json").read_text())
ours_threat, ours_legit = f1_both_classes(ev["tp"], ev["fp"], ev["tn"], ev["fn"])
lb = json.loads((out / "leaderboard.json").read_text())

ref = json.loads((out / "ref.json").read_text())
n_test = ref["config"]["n_test"]
legit_share = ref["config"]["test_pos_rate"]
best_name, best_legit, best_threat = None, -1.0, None
for name, m in ref["models"].items():
    t = m["test"]
    # The reference's positive class is Result=1 (legitimate): recover the counts.
    pos = legit_share * n_test
    tp_l = t["recall"] * pos
    pred_l = tp_l / t["precision"] if t["precision"] > 0 else 0.0
    fp_l, fn_l = pred_l - tp_l, pos - tp_l
    tn_l = n_test - tp_l - fp_l - fn_l
    threat = 2 * tn_l / (2 * tn_l + fn_l + fp_l)
    if t["f1"] > best_legit:
        best_name, best_legit, best_threat = name, t["f1"], threat
chosen = ref["selection"]["best"]

print("## Reference search space (5 families, cv=3), same stratified seed-42 split\n")
print("| | ours (netsec train) | reference (pipeline.py) | ratio ref/ours |")
print("|---|---|---|---|")
print(f"| CPU seconds | {ours_cpu:.2f} | {ref_cpu:.1f} | {ref_cpu / ours_cpu:.1f}x |")
print(f"| wall seconds | {ours_wall:.2f} | {ref_wall:.1f} | {ref_wall / ours_wall:.1f}x |")
print(f"| peak RSS MiB | {ours_rss:.0f} | {ref_rss:.0f} | {ref_rss / ours_rss:.1f}x |")
print(f"| candidates / fits | {lb['candidates']} x {lb['folds']} folds | "
      f"{sum(m['n_candidates'] for m in ref['models'].values())} candidates, "
      f"{sum(m['n_fits'] for m in ref['models'].values())} fits | |")
print(f"| model chosen | {lb['winner']['family']} (by CV {lb['metric']}) | {chosen} (by test R²) | |")
print(f"| test F1, legitimate class | {ours_legit:.4f} (chosen) | {best_legit:.4f} (best: {best_name}) | |")
print(f"| test F1, threat class | {ours_threat:.4f} (chosen) | {best_threat:.4f} (best: {best_name}) | |")
print(f"| test accuracy | {ev['accuracy']:.4f} | {ref['models'][best_name]['test']['accuracy']:.4f} ({best_name}) | |")
print()
print(f"CPU ratio {ref_cpu / ours_cpu:.1f}x (bar: >= 25x). Our chosen model's F1 vs the reference's best F1, "
      f"same class: {ours_legit:.4f} vs {best_legit:.4f} (legitimate), {ours_threat:.4f} vs {best_threat:.4f} (threat).\n")

ours = json.loads((out / "ours_fit.json").read_text())
anchors = json.loads((out / "anchors.json").read_text())["fits"]
rows = [
    ("random forest (100 trees)", ours["random_forest_100"], anchors["RandomForest(100) n_jobs=1"], "scikit-learn RF(100), n_jobs=1"),
    ("GBM (100 rounds)", ours["gbm_100"], anchors["XGBoost(hist,100) n_jobs=1"], "XGBoost hist(100), 1 thread"),
]
print("## Single models, one thread, median of 5 fits, same split\n")
print("| model | our fit s | their fit s | their/our | our test acc | their test acc | our AUC | their AUC | against |")
print("|---|---|---|---|---|---|---|---|---|")
for name, o, t, against in rows:
    print(f"| {name} | {o['fit_wall_s_median']:.3f} | {t['fit_wall_s_median']:.3f} | "
          f"{t['fit_wall_s_median'] / o['fit_wall_s_median']:.1f}x | {o['test_accuracy']:.4f} | {t['test_accuracy']:.4f} | "
          f"{o['test_roc_auc']:.4f} | {t['test_roc_auc']:.4f} | {against} |")
