"""The peers' side of `make bench-peers` (bench/peers.sh): LightGBM, XGBoost (hist) and lleaves
(LightGBM's trees compiled by LLVM) on the same transformed features as our GBM
(examples/peers_bench.rs), with the same hyperparameters: 100 and 300 rounds, depth 6 (LightGBM:
at most 64 leaves), learning rate 0.3, lambda 1, min child hessian 1, 255 bins. For each thread
count: median fit seconds, test accuracy and ROC-AUC at threshold 0.5, and in-memory scoring
rows/s on the test part tiled to --tile-rows rows. Prints one JSON object."""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import lightgbm as lgb
import numpy as np
import pyarrow.parquet as pq
import xgboost as xgb
from sklearn.metrics import accuracy_score, roc_auc_score


def load(path):
    t = pq.read_table(path)
    names = [n for n in t.column_names if not n.startswith("__")]
    x = np.column_stack([t.column(n).to_numpy(zero_copy_only=False).astype(np.float64) for n in names])
    y = t.column("__label").to_numpy().astype(np.int32)
    return x, y


def timed(f, reps):
    out, times = None, []
    for _ in range(reps):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--features", default="artifacts/features")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--tile-rows", type=int, default=450_880)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    x, y = load(os.path.join(a.features, "train.parquet"))
    xt, yt = load(os.path.join(a.features, "test.parquet"))
    tiled = np.ascontiguousarray(np.tile(xt, (a.tile_rows // len(xt) + 1, 1))[: a.tile_rows])
    out = {"train_rows": len(x), "features": x.shape[1], "scored_rows": len(tiled)}
    work = tempfile.mkdtemp(prefix="peers-")
    for threads in [int(t) for t in a.threads.split(",")]:
        for rounds in (100, 300):
            # LightGBM
            params = dict(
                objective="binary", n_estimators=rounds, learning_rate=0.3, max_depth=6, num_leaves=64,
                reg_lambda=1.0, min_child_weight=1.0, min_child_samples=1, max_bin=255, n_jobs=threads,
                random_state=a.seed, verbose=-1,
            )
            model, fit = timed(lambda: lgb.LGBMClassifier(**params).fit(x, y), a.reps)
            s = model.predict_proba(xt)[:, 1]
            model.predict_proba(tiled[:1000])
            _, secs = timed(lambda: model.booster_.predict(tiled, num_threads=threads), a.reps)
            out[f"lightgbm_{rounds}_t{threads}"] = dict(
                fit_s=fit, test_accuracy=accuracy_score(yt, s >= 0.5), test_roc_auc=roc_auc_score(yt, s),
                score_rows_per_s=len(tiled) / secs,
            )
            # lleaves: the LightGBM model above, compiled (compilation not timed).
            path = os.path.join(work, f"lgb_{rounds}.txt")
            model.booster_.save_model(path)
            import lleaves

            ll = lleaves.Model(model_file=path)
            ll.compile(cache=os.path.join(work, f"lgb_{rounds}_{threads}.so"))
            sl = ll.predict(xt, n_jobs=threads)
            _, secs = timed(lambda: ll.predict(tiled, n_jobs=threads), a.reps)
            out[f"lleaves_{rounds}_t{threads}"] = dict(
                test_accuracy=accuracy_score(yt, sl >= 0.5), test_roc_auc=roc_auc_score(yt, sl),
                score_rows_per_s=len(tiled) / secs,
            )
            # XGBoost
            xparams = dict(
                n_estimators=rounds, learning_rate=0.3, max_depth=6, reg_lambda=1.0, min_child_weight=1.0,
                tree_method="hist", max_bin=256, n_jobs=threads, random_state=a.seed,
            )
            model, fit = timed(lambda: xgb.XGBClassifier(**xparams).fit(x, y), a.reps)
            s = model.predict_proba(xt)[:, 1]
            booster = model.get_booster()
            booster.set_param({"nthread": threads})
            _, secs = timed(lambda: booster.inplace_predict(tiled), a.reps)
            out[f"xgboost_{rounds}_t{threads}"] = dict(
                fit_s=fit, test_accuracy=accuracy_score(yt, s >= 0.5), test_roc_auc=roc_auc_score(yt, s),
                score_rows_per_s=len(tiled) / secs,
            )
            print(f"peers: {rounds} rounds, {threads} thread(s) done", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
