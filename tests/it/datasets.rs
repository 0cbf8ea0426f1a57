//! Datasets shaped like NSL-KDD: published pre-split, header-less, gzip-compressed, with a
//! categorical feature whose test part holds a category never seen in training.

use serde_json::Value;

use crate::common::{bin, Cmd, Project};
use crate::serve::{get, post, Server};

const SCHEMA: &str = "\
name: flows
header: false
target:
  column: label
  benign: [normal]
columns:
  - {name: proto, type: categorical}
  - {name: bytes, type: integer, min: 0}
  - {name: rate, type: float, min: 0, max: 1}
  - {name: label, type: categorical, role: target}
  - {name: difficulty, type: integer, role: drop}
";

/// Rows `proto,bytes,rate,label,difficulty`: attacks are icmp floods or fast large transfers.
/// `protos` are the protocols drawn from (the test part adds one training never saw).
fn flows(n: usize, seed: u64, protos: &[&str]) -> (String, usize) {
    let mut state = seed;
    let mut next = move |m: u64| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    let (mut s, mut last_proto) = (String::new(), 0);
    for _ in 0..n {
        let proto = protos[next(protos.len() as u64) as usize];
        let bytes = next(5000);
        let rate = next(1000) as f64 / 1000.0;
        let noise = next(100) < 5;
        let attack = (proto == "icmp" && rate > 0.3) || (bytes > 3500 && rate > 0.5) || noise;
        let label = if attack { ["smurf", "neptune"][next(2) as usize] } else { "normal" };
        last_proto += usize::from(proto == *protos.last().unwrap());
        s.push_str(&format!("{proto},{bytes},{rate},{label},{}\n", next(22)));
    }
    (s, last_proto)
}

fn gzip(text: &str) -> Vec<u8> {
    crate::common::gzip(text.as_bytes())
}

/// A project whose dataset `flows` is pre-split; returns it and the count of test rows
/// whose protocol (`sctp`) never occurs in training.
fn presplit_project() -> (Project, usize) {
    let p = Project::new();
    p.write(
        "schemas/flows.yaml",
        SCHEMA.replacen(
            "\ntarget:",
            "\ndata:\n  train: data/flows/train.txt.gz\n  test: data/flows/test.txt.gz\ntarget:",
            1,
        ),
    );
    let (train, _) = flows(600, 11, &["tcp", "udp", "icmp"]);
    let (test, unseen) = flows(200, 12, &["tcp", "udp", "icmp", "sctp"]);
    assert!(unseen > 10);
    p.write("data/flows/train.txt.gz", gzip(&train));
    p.write("data/flows/test.txt.gz", gzip(&test));
    p.edit("params.yaml", "dataset: toy\n", "dataset: flows\n");
    (p, unseen)
}

#[test]
fn a_presplit_headerless_gzip_dataset_keeps_its_split_and_encodes_unseen_categories() {
    let (p, unseen) = presplit_project();
    p.run("ingest").success();
    let ingest = p.metrics("reports/ingest.json");
    assert_eq!(ingest["official_split"], 1);
    assert_eq!(ingest["dataset"], "flows");
    assert_eq!((ingest["train_rows"].as_u64(), ingest["test_rows"].as_u64()), (Some(600), Some(200)));
    p.run("validate").success();

    let t = p.run("transform");
    t.success();
    assert!(t.stderr.contains("never seen in training"), "{}", t.stderr);
    let m = p.metrics("reports/transform.json");
    assert_eq!(m["unseen_category_test_cells"].as_u64(), Some(unseen as u64), "{m:?}");
    assert_eq!(m["unseen_category_test_rows"].as_u64(), Some(unseen as u64));
    // One-hot: proto=icmp, proto=tcp, proto=udp, then bytes and rate; difficulty dropped.
    assert_eq!(m["features"], 5);
    let report: Value = serde_json::from_str(&p.read("reports/encoding.json")).unwrap();
    assert_eq!(report["unseen_in_test"]["proto"].as_u64(), Some(unseen as u64));
    let pre = p.read("artifacts/preprocessor.json");
    assert!(pre.contains("\"categories\":") && !pre.contains("sctp") && !pre.contains("difficulty"), "{pre}");

    for stage in ["train", "evaluate", "promote"] {
        p.run(stage).success();
    }
    let eval = p.metrics("reports/eval.json");
    assert!(eval["accuracy"].as_f64().unwrap() > 0.8, "{eval:?}");

    // Batch scoring of a file with the unseen protocol: every row gets a prediction.
    p.write("new.csv", "proto,bytes,rate\nsctp,4000,0.9\ntcp,10,0.1\nicmp,100,0.8\n");
    let out = std::process::Command::new(bin("predict"))
        .current_dir(p.dir.path())
        .args(["--model", "models/production/flows.json", "new.csv", "scored.csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("never seen in training"));
    let scored = p.read("scored.csv");
    let rows: Vec<&str> = scored.lines().collect();
    assert_eq!(rows.len(), 4, "{scored}");
    assert!(rows[1].starts_with("sctp,4000,0.9,") && (rows[1].ends_with("threat") || rows[1].ends_with("benign")));
    assert!(rows[3].ends_with("threat"), "an icmp flood: {scored}");

    // A file laid out as the dataset (no header, every column): what ingest accepts, predict
    // scores, with the schema's column names in the output.
    p.write("raw.txt", "sctp,4000,0.9,normal,3\nicmp,100,0.8,smurf,20\n");
    let run = Cmd::bin("predict")
        .dir(p.dir.path())
        .args(["--model", "models/production/flows.json", "raw.txt", "raw-scored.csv"])
        .run();
    run.success();
    let scored = p.read("raw-scored.csv");
    let rows: Vec<&str> = scored.lines().collect();
    assert_eq!(rows[0], "proto,bytes,rate,label,difficulty,threat_score,prediction", "{scored}");
    assert!(rows[2].starts_with("icmp,100,0.8,smurf,20,") && rows[2].ends_with("threat"), "{scored}");
    // A ragged row is refused naming its line, as ingest refuses it.
    p.write("ragged.txt", "sctp,4000,0.9,normal,3\nicmp,100\n");
    Cmd::bin("predict")
        .dir(p.dir.path())
        .args(["--model", "models/production/flows.json", "ragged.txt", "x.csv"])
        .run()
        .code(1)
        .stderr_has("ragged.txt: row 2: expected 5 fields, found 2");
    assert!(!p.path("x.csv").exists(), "nothing half-written");
}

#[test]
fn the_server_scores_a_category_it_never_saw_and_counts_it() {
    let (p, _) = presplit_project();
    p.run_all();
    let s = Server::start(&p.path("models/production/flows.json"), &[]);
    let (code, body) = post(
        &s.url("/v1/predict"),
        &[("content-type", "application/json")],
        br#"[{"proto": "sctp", "bytes": 4200, "rate": 0.9}, {"proto": "tcp", "bytes": 20, "rate": 0.1}]"#,
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let preds = v["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 2);
    assert_eq!(preds[0]["unseen_categories"], serde_json::json!(["proto"]), "{body}");
    assert!(preds[0]["score"].as_f64().unwrap().is_finite());
    assert!(preds[1].get("unseen_categories").is_none(), "{body}");
    assert_eq!(preds[1]["label"], "benign", "{body}");

    // A categorical feature given a JSON object is still a 422 naming the field.
    let (code, body) = post(&s.url("/v1/predict"), &[], br#"{"proto": {"x": 1}, "bytes": 1, "rate": 0.5}"#);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("proto"), "{body}");

    let (_, metrics) = get(&s.url("/metrics")).unwrap();
    assert!(metrics.contains("netsec_unseen_categories_total 1"), "{metrics}");

    // An upload laid out as the (header-less) dataset is read as ingest reads it.
    let (code, body) = post(
        &s.url("/v1/predict/csv"),
        &[("Content-Type", "text/csv"), ("Accept", "application/json")],
        b"tcp,20,0.1,normal,1\nicmp,100,0.8,smurf,20\n",
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["rows"].as_u64(), v["predictions"][1]["row"].as_u64()), (Some(2), Some(2)), "{body}");
    let (code, body) = post(&s.url("/v1/predict/csv"), &[("Content-Type", "text/csv")], b"tcp,20,0.1,normal,1\nicmp\n");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("row 2: expected 5 fields, found 1"), "{body}");
}

#[test]
fn ordinal_encoding_is_one_column_per_categorical_feature() {
    let (p, _) = presplit_project();
    p.edit("params.yaml", "impute: median", "impute: median\n  encode: ordinal");
    for stage in ["ingest", "transform"] {
        p.run(stage).success();
    }
    assert_eq!(p.metrics("reports/transform.json")["features"], 3);
    let pre: Value = serde_json::from_str(&p.read("artifacts/preprocessor.json")).unwrap();
    assert_eq!(pre["features"][0]["encoding"], "ordinal");
    assert_eq!(pre["features"][0]["categories"], serde_json::json!(["icmp", "tcp", "udp"]));
}
