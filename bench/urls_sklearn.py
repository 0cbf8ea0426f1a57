"""scikit-learn on the *published* URL-only features of the Hannousse dataset, beside ours.

    urls_sklearn.py DATASET.csv.gz TRAIN.csv TEST.csv

TRAIN/TEST are our ingest's split (stratified 80/20, seed 42; `artifacts/split/` exported to
CSV by our `export`); the script takes their URLs' rows of the published table, fits RandomForest(300) and HistGradientBoosting
on the URL-only group of published features, and prints test accuracy and ROC-AUC. It also
prints the same on scikit-learn's own stratified split (random_state=42), the issue's figures.
"""

import sys

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

URL_ONLY = ["length_url", "length_hostname", "ip", "nb_dots", "nb_hyphens", "nb_at", "nb_qm", "nb_and", "nb_or",
            "nb_eq", "nb_underscore", "nb_tilde", "nb_percent", "nb_slash", "nb_star", "nb_colon", "nb_comma",
            "nb_semicolumn", "nb_dollar", "nb_space", "nb_www", "nb_com", "nb_dslash", "http_in_path",
            "https_token", "ratio_digits_url", "ratio_digits_host", "punycode", "port", "tld_in_path",
            "tld_in_subdomain", "abnormal_subdomain", "nb_subdomains", "prefix_suffix", "random_domain",
            "shortening_service", "path_extension", "length_words_raw", "char_repeat", "shortest_words_raw",
            "shortest_word_host", "shortest_word_path", "longest_words_raw", "longest_word_host",
            "longest_word_path", "avg_words_raw", "avg_word_host", "avg_word_path", "phish_hints",
            "domain_in_brand", "brand_in_subdomain", "brand_in_path", "suspecious_tld"]


def fit_score(name, model, xtr, ytr, xte, yte):
    model.fit(xtr, ytr)
    p = model.predict_proba(xte)[:, 1]
    print(f"  {name:28} accuracy {accuracy_score(yte, p >= 0.5):.4f}  ROC-AUC {roc_auc_score(yte, p):.4f}")


def main(dataset, train_pq, test_pq):
    df = pd.read_csv(dataset)
    y = (df["status"] == "phishing").astype(int)
    x = df[URL_ONLY]
    models = lambda: [("RandomForest(300)", RandomForestClassifier(n_estimators=300, random_state=42, n_jobs=-1)),
                      ("HistGradientBoosting", HistGradientBoostingClassifier(random_state=42))]
    print("scikit-learn's split (train_test_split, stratified, random_state=42):")
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, stratify=y, random_state=42)
    for name, m in models():
        fit_score(name, m, xtr, ytr, xte, yte)
    # Our split, by URL (one URL occurs twice in the table: both rows go where it went).
    urls = lambda p: set(pd.read_csv(p, usecols=["url"])["url"])
    tr, te = df["url"].isin(urls(train_pq)), df["url"].isin(urls(test_pq))
    print("netsec's split (ingest: stratified, seed 42), the same rows our model is tested on:")
    for name, m in models():
        fit_score(name, m, x[tr], y[tr], x[te], y[te])


if __name__ == "__main__":
    main(*sys.argv[1:4])
