"""The peer of `predict` on a Zeek conn.log, written the way a Python user would: pandas parses
the log, derives the same flow features as netsec's `zeek_conn` (src/features/zeek_conn.rs),
scikit-learn scores with the same family and size, and the verdicts go to CSV with the
connection's identity.

    zeek_pandas.py fit MODEL.pkl HYPER.json TRAIN.log[.gz]...   (not timed by the bench)
    zeek_pandas.py score MODEL.pkl LOG OUT.csv                   (timed: the whole process)

HYPER.json is the winning candidate of netsec's search ({"family": ..., hyperparameters}), so
both sides score with models of the same family and size.
"""

import json
import pickle
import sys

import numpy as np
import pandas as pd

HISTORY = "SHADFRCGTWIQshadfrcgtwiq^"
COMMON_PORTS = [20, 21, 22, 23, 25, 53, 67, 68, 69, 80, 110, 111, 123, 135, 137, 138, 139, 143, 161,
                162, 389, 443, 445, 465, 514, 587, 993, 995, 1433, 1900, 3306, 3389, 5060, 5353, 5355,
                5555, 5900, 8080, 8443, 8888]
IDS = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"]
NUMERIC = ["id.resp_p", "duration", "orig_bytes", "resp_bytes", "missed_bytes", "orig_pkts",
           "orig_ip_bytes", "resp_pkts", "resp_ip_bytes"]
CATEGORICAL = ["proto", "conn_state", "resp_port_class", "orig_port_class"]


def read_log(path):
    """A Zeek TSV log: field names from its #fields line, `-` as missing."""
    opener = __import__("gzip").open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        for line in f:
            if line.startswith("#fields"):
                fields = line.rstrip("\n").split("\t")[1:]
                break
    return pd.read_csv(path, sep="\t", comment="#", header=None, names=fields, na_values=["-"],
                       keep_default_na=False, dtype={"uid": str, "history": str, "service": str},
                       low_memory=False)


def port_class(p):
    return np.where(p < 1024, "well_known", np.where(p < 49152, "registered", "dynamic"))


def derive(df):
    """The features of netsec's zeek_conn derivation, vectorized."""
    x = pd.DataFrame(index=df.index)
    for c in NUMERIC:
        x[c] = df[c].astype(float)
    o_ip, r_ip = df["orig_ip_bytes"].fillna(0), df["resp_ip_bytes"].fillna(0)
    o_pk, r_pk = df["orig_pkts"].fillna(0), df["resp_pkts"].fillna(0)
    o_b, r_b = df["orig_bytes"].fillna(0), df["resp_bytes"].fillna(0)
    d = df["duration"]
    x["total_ip_bytes"] = o_ip + r_ip
    x["total_pkts"] = o_pk + r_pk
    x["orig_ip_bytes_share"] = (o_ip + 1) / (o_ip + r_ip + 2)
    x["orig_bytes_share"] = (o_b + 1) / (o_b + r_b + 2)
    x["orig_pkts_share"] = (o_pk + 1) / (o_pk + r_pk + 2)
    x["orig_mean_pkt_size"] = np.where(o_pk > 0, o_ip / o_pk.where(o_pk > 0, 1), 0)
    x["resp_mean_pkt_size"] = np.where(r_pk > 0, r_ip / r_pk.where(r_pk > 0, 1), 0)
    pos = d.where(d > 0)
    x["ip_bytes_per_second"] = (o_ip + r_ip) / pos
    x["pkts_per_second"] = (o_pk + r_pk) / pos
    for c in ["duration", "orig_bytes", "resp_bytes", "service", "history"]:
        x[c + "_missing"] = df[c].isna().astype(float)
    h = df["history"].fillna("")
    x["history_length"] = h.str.len()
    for letter in HISTORY:
        x["history_" + letter] = h.str.count("\\^" if letter == "^" else letter)
    resp = df["id.resp_p"]
    x["resp_port_class"] = np.where(resp.isin(COMMON_PORTS), resp.astype(str), port_class(resp))
    x["orig_port_class"] = port_class(df["id.orig_p"])
    x["proto"] = df["proto"].astype(str)
    x["conn_state"] = df["conn_state"].astype(str)
    return x


def encode(x, columns=None):
    """One-hot encoding of the categories (the training columns at scoring), median imputation."""
    enc = pd.get_dummies(x, columns=CATEGORICAL, dtype=float)
    if columns is not None:
        enc = enc.reindex(columns=columns, fill_value=0.0)
    return enc


def fit(model_path, hyper_path, logs):
    hyper = json.load(open(hyper_path))
    df = pd.concat([read_log(p) for p in logs], ignore_index=True)
    df = df[df["label"].isin(["Malicious", "Benign"])]
    y = (df["label"] == "Malicious").astype(int).to_numpy()
    x = encode(derive(df))
    medians = x.median()
    x = x.fillna(medians)
    if hyper["family"] == "gbm":
        from sklearn.ensemble import HistGradientBoostingClassifier
        model = HistGradientBoostingClassifier(max_iter=hyper["n_estimators"], learning_rate=hyper["learning_rate"],
                                               max_depth=hyper["max_depth"], max_leaf_nodes=None,
                                               early_stopping=False, random_state=42)
    else:
        from sklearn.ensemble import RandomForestClassifier
        model = RandomForestClassifier(n_estimators=hyper["n_estimators"], max_features="sqrt", random_state=42)
    model.fit(x.to_numpy(), y)
    pickle.dump({"model": model, "columns": list(x.columns), "medians": medians, "threshold": hyper["threshold"]},
                open(model_path, "wb"))


def score(model_path, log, out):
    m = pickle.load(open(model_path, "rb"))
    df = read_log(log)
    x = encode(derive(df), m["columns"]).fillna(m["medians"])
    s = m["model"].predict_proba(x.to_numpy())[:, 1]
    res = df[IDS].copy()
    res["threat_score"] = s.round(6)
    res["prediction"] = np.where(s >= m["threshold"], "threat", "benign")
    res.to_csv(out, index=False)
    print(f"{len(res)} rows scored")


if __name__ == "__main__":
    if sys.argv[1] == "fit":
        fit(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        score(sys.argv[2], sys.argv[3], sys.argv[4])
