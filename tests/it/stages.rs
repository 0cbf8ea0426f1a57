//! Each stage binary on small fixtures: the happy path and the bad inputs users send.

use crate::common::{bin, Cmd, Project, STAGES};
use std::process::Command;

#[test]
fn every_binary_answers_help() {
    // Every file of src/bin, so a new binary cannot skip this.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bin");
    let mut binaries: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".rs").map(str::to_owned))
        .collect();
    binaries.sort();
    assert!(STAGES.iter().all(|s| binaries.iter().any(|b| b == s)), "{binaries:?}");
    assert!(binaries.len() >= 11, "{binaries:?}");
    for stage in &binaries {
        Cmd::bin(stage).arg("--help").run().success().stdout_has("Usage:");
        // The README: "every binary takes -v/-q".
        for flag in ["-v", "-q"] {
            Cmd::bin(stage).args([flag, "--help"]).run().success();
        }
    }
    // Each binary lists its own flags only: rollback reads the registry, not promote's inputs.
    Cmd::bin("rollback")
        .arg("--help")
        .run()
        .success()
        .stdout_has("--registry")
        .stdout_has("--production")
        .stdout_lacks("--candidate")
        .stdout_lacks("--metrics");
}

#[test]
fn stages_chain_on_a_small_dataset_and_write_flat_metrics() {
    let p = Project::new();
    p.run_all();
    let ingest = p.metrics("reports/ingest.json");
    assert_eq!(ingest["rows"], 400);
    assert_eq!(ingest["train_rows"].as_u64().unwrap() + ingest["test_rows"].as_u64().unwrap(), 400);
    let eval = p.metrics("reports/eval.json");
    assert!(eval["accuracy"].as_f64().unwrap() > 0.8, "{eval:?}");
    for key in [
        "threshold",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "pr_auc",
        "balanced_accuracy",
        "mcc",
        "log_loss",
        "tp",
        "fp",
        "tn",
        "fn",
    ] {
        assert!(eval.contains_key(key), "eval.json lacks {key}");
    }
    let train = p.metrics("reports/train.json");
    assert!(train["cv_f1"].as_f64().unwrap() > 0.7, "{train:?}");
    p.metrics("reports/validate.json");
    // The headline files (the columns of `dvc exp show`) hold only their few headline keys,
    // with the same values as the reports.
    for (file, keys) in [
        ("ingest", &["test_twin_share", "ignored_rows"][..]),
        ("validate", &["violations_error", "features_drifted"]),
        ("transform", &["features"]),
        ("train", &["cv_f1"]),
        ("eval", &["accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"]),
    ] {
        let head = p.metrics(&format!("metrics/{file}.json"));
        let all = p.metrics(&format!("reports/{file}.json"));
        let mut want: Vec<&str> = keys.to_vec();
        want.sort_unstable();
        assert_eq!(head.keys().map(String::as_str).collect::<Vec<_>>(), want, "metrics/{file}.json");
        assert!(head.iter().all(|(k, v)| all[k] == *v), "metrics/{file}.json differs from reports/{file}.json");
    }
    for (chart, len) in [("roc", 3), ("pr", 2), ("confusion", 100), ("importance", 3)] {
        let v: serde_json::Value = serde_json::from_str(&p.read(&format!("plots/{chart}.json"))).unwrap();
        assert!(v["points"].as_array().unwrap().len() >= len, "plots/{chart}.json: {v}");
    }
}

#[test]
fn same_params_and_data_give_the_same_model_bytes() {
    let p = Project::new();
    p.run_all();
    let first = std::fs::read(p.path("models/model.json")).unwrap();
    for stage in ["ingest", "transform", "train"] {
        p.run(stage).success();
    }
    assert_eq!(first, std::fs::read(p.path("models/model.json")).unwrap());

    // The seed reaches the model itself, not only the params the bundle records: with only
    // `train.seed` changed, a random forest's trees differ.
    let model = |p: &Project| -> serde_json::Value {
        let text = p.read("models/model.json");
        let body = &text[text.find('\n').unwrap() + 1..]; // after the checksum header line
        serde_json::from_str::<serde_json::Value>(body).unwrap()["model"].clone()
    };
    p.edit(
        "params.yaml",
        "        logistic: {alpha: 0.1}\n        gbm: {n_estimators: [20, 50], max_depth: 3}",
        "        random_forest: {n_estimators: 8}",
    );
    p.run("train").success();
    let seven = model(&p);
    p.run("train").success();
    assert_eq!(seven, model(&p), "same seed, same trees");
    p.edit("params.yaml", "  seed: 7\n  cv_folds", "  seed: 8\n  cv_folds");
    p.run("train").success();
    assert_ne!(seven, model(&p), "another seed must draw other trees");
}

#[test]
fn gzip_and_json_lines_sources_are_read() {
    let p = Project::new();
    let csv = p.read("data/toy.csv");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, csv.as_bytes()).unwrap();
    p.write("data/toy.csv.gz", gz.finish().unwrap());
    p.edit("schemas/toy.yaml", "source: data/toy.csv", "source: data/toy.csv.gz");
    p.run("ingest").success();
    let from_gzip = p.metrics("reports/ingest.json");
    assert_eq!(from_gzip["rows"], 400);

    let jsonl: String = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{{\"a\": {}, \"b\": {}, \"c\": {}, \"label\": \"{}\"}}\n", f[0], f[1], f[2], f[3])
        })
        .collect();
    p.write("data/toy.jsonl", jsonl);
    p.edit("schemas/toy.yaml", "source: data/toy.csv.gz", "source: data/toy.jsonl");
    p.run("ingest").success();
    let ingest = p.metrics("reports/ingest.json");
    assert_eq!(
        (ingest["rows"].as_u64(), ingest["train_rows"].as_u64()),
        (Some(400), from_gzip["train_rows"].as_u64()),
        "{ingest:?}"
    );
    p.run("validate").success();
    assert_eq!(p.metrics("reports/validate.json")["violations_error"], 0);
}

#[test]
fn ragged_row_is_refused_with_its_line() {
    let p = Project::new();
    let mut csv = p.read("data/toy.csv");
    csv = csv.replacen("\n", "\n1,2\n", 1); // a 2-field row on line 2
    p.write("data/toy.csv", csv);
    p.run("ingest").fails_with(&["data/toy.csv", "row 2", "expected 4 fields, found 2", "truncated"]);
    assert!(!p.path("artifacts/split/train.parquet").exists(), "nothing may be written");
}

#[test]
fn empty_file_and_header_only_are_refused() {
    let p = Project::new();
    p.write("data/toy.csv", "");
    p.run("ingest").fails_with(&["data/toy.csv", "file is empty"]);
    p.write("data/toy.csv", "a,b,c,label\n");
    p.run("ingest").fails_with(&["data/toy.csv", "no data rows"]);
}

#[test]
fn missing_column_is_named_by_validate() {
    let p = Project::new();
    let csv: String = p
        .read("data/toy.csv")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{},{}\n", f[0], f[2], f[3])
        })
        .collect();
    p.write("data/toy.csv", csv);
    p.run("ingest").success();
    p.run("validate").fails_with(&["column `b` [missing_column]", "reports/validation.json"]);
    let report: serde_json::Value = serde_json::from_str(&p.read("reports/validation.json")).unwrap();
    assert_eq!(report["errors"], 2, "missing in train and in test: {report}");
}

#[test]
fn non_numeric_value_is_named_with_column_and_row() {
    let p = Project::new();
    let mut lines: Vec<String> = p.read("data/toy.csv").lines().map(str::to_owned).collect();
    let f: Vec<&str> = lines[6].split(',').collect();
    lines[6] = format!("{},abc,{},{}", f[0], f[2], f[3]); // line 7 of the file
    p.write("data/toy.csv", lines.join("\n") + "\n");
    p.run("ingest").success();
    p.run("validate").fails_with(&["column `b` [type] expected integer values, found 'abc' in 1 row (rows 7)"]);
}

#[test]
fn out_of_domain_value_and_nan_are_reported_together() {
    let p = Project::new();
    let mut lines: Vec<String> = p.read("data/toy.csv").lines().map(str::to_owned).collect();
    let f: Vec<String> = lines[3].split(',').map(str::to_owned).collect();
    lines[3] = format!("5,{},{},{}", f[1], f[2], f[3]); // line 4: a = 5
    let f: Vec<String> = lines[9].split(',').map(str::to_owned).collect();
    lines[9] = format!("{},NaN,{},{}", f[0], f[2], f[3]); // line 10: b = NaN, not nullable
    p.write("data/toy.csv", lines.join("\n") + "\n");
    p.run("ingest").success();
    p.run("validate").fails_with(&[
        "2 violations",
        "column `a` [allowed]",
        "found '5'",
        "rows 4",
        "column `b` [not_null]",
        "rows 10",
    ]);
}

#[test]
fn missing_target_column_is_refused() {
    let p = Project::new();
    let csv: String = p.read("data/toy.csv").lines().map(|l| l.rsplit_once(',').unwrap().0.to_owned() + "\n").collect();
    p.write("data/toy.csv", csv);
    p.run("ingest").fails_with(&["target column `label` not found"]);
}

#[test]
fn unknown_params_key_is_refused_by_the_stage_that_owns_it() {
    let p = Project::new();
    p.run_all();
    p.edit("params.yaml", "  budget: 10", "  budget: 10\n  max_iter: 5");
    p.run("train").fails_with(&["params.yaml", "section `train`", "unknown field `max_iter`"]);
    p.edit("params.yaml", "  max_iter: 5\n", "");
    p.edit("params.yaml", "{alpha: 0.1}", "{alpha: 0.1, max_iter: 5}");
    p.run("train").fails_with(&["params.yaml", "logistic: unknown field `max_iter`"]);
    // Other stages do not read that section.
    p.run("evaluate").success();
    p.edit("params.yaml", "  seed: 7\n", "  seed: 7\n  shuffle: true\n");
    p.run("ingest").fails_with(&["section `ingest`", "unknown field `shuffle`"]);
}

#[test]
fn out_of_range_params_are_refused() {
    let p = Project::new();
    p.edit("params.yaml", "test_size: 0.25", "test_size: 1.5");
    p.run("ingest").fails_with(&["`test_size` must be between 0 and 1"]);
    let p = Project::new();
    p.edit("params.yaml", "logistic: {alpha", "perceptron: {alpha");
    p.run("train").fails_with(&["unknown family `perceptron`"]);
    let p = Project::new();
    p.edit("params.yaml", "max_depth: 3}", "max_depth: 3, subsample: 1.5}");
    p.run("train").fails_with(&["gbm: subsample must be in (0, 1]"]);
}

#[test]
fn wrong_delimiter_is_explained() {
    let p = Project::new();
    p.write("data/toy.csv", p.read("data/toy.csv").replace(',', ";"));
    p.run("ingest").fails_with(&["delimited by ';' but the schema says ','"]);
}

#[test]
fn monitoring_flags_the_shifted_feature_only() {
    use crate::common::toy_csv_with;
    let p = Project::new();
    p.run("ingest").success();
    p.run("validate").success();
    let monitor = |batch: &str| {
        let out = Command::new(bin("validate"))
            .args(["--reference", "artifacts/profile.json", "--current", batch])
            .current_dir(p.dir.path())
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_str(&p.read("reports/monitor.json")).unwrap();
        let drifted: Vec<String> = report["drift"]["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["drifted"] == true)
            .map(|f| f["column"].as_str().unwrap().to_owned())
            .collect();
        (crate::common::Run::from(out), drifted)
    };

    // A new sample from the same distribution: nothing drifts.
    p.write("batches/same.csv", toy_csv_with(300, 12345, 0.0));
    let (run, drifted) = monitor("batches/same.csv");
    run.success();
    assert!(drifted.is_empty(), "drifted: {drifted:?}");

    // Feature c shifted: c alone is flagged; a warning by default ...
    p.write("batches/shifted.csv", toy_csv_with(300, 12345, 0.6));
    let (run, drifted) = monitor("batches/shifted.csv");
    run.success();
    assert_eq!(drifted, ["c"]);
    assert!(run.stderr.contains("column `c` [drift]"), "{}", run.stderr);

    // ... and an error with fail_on_drift.
    p.edit("params.yaml", "drift_alpha: 0.001", "drift_alpha: 0.001\n  fail_on_drift: true");
    let (run, _) = monitor("batches/shifted.csv");
    run.fails_with(&["column `c` [drift]", "reports/monitor.json"]);
}

#[test]
fn monitoring_accepts_an_unlabelled_batch_but_not_a_missing_feature() {
    let p = Project::new();
    p.run("ingest").success();
    p.run("validate").success();
    let unlabelled: String = crate::common::toy_csv_with(100, 99, 0.0)
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_owned() + "\n")
        .collect();
    p.write("batches/unlabelled.csv", &unlabelled);
    let run = |batch: &str| {
        Cmd::bin("validate").args(["--reference", "artifacts/profile.json", "--current", batch]).dir(p.dir.path()).run()
    };
    run("batches/unlabelled.csv").success();
    let no_b: String = unlabelled
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{},{}\n", f[0], f[2])
        })
        .collect();
    p.write("batches/no_b.csv", no_b);
    run("batches/no_b.csv").fails_with(&["column `b` [missing_column]"]);
}

#[test]
fn grouped_split_leaves_no_test_row_with_a_train_twin() {
    let p = Project::new();
    // Many exact duplicates, as in the phishing data.
    let csv = p.read("data/toy.csv");
    let body: String = csv.lines().skip(1).take(100).map(|l| format!("{l}\n{l}\n{l}\n")).collect();
    p.write("data/toy.csv", format!("a,b,c,label\n{body}"));
    p.run("ingest").success();
    let m = p.metrics("reports/ingest.json");
    assert!(m["test_rows_with_train_twin"].as_u64().unwrap() > 0, "{m:?}");
    assert_eq!(m["duplicate_rows"], 200);
    p.edit("params.yaml", "split: stratified", "split: stratified_grouped");
    p.run("ingest").success();
    let m = p.metrics("reports/ingest.json");
    assert_eq!(m["test_rows_with_train_twin"], 0, "{m:?}");
    assert!(m["random_split_test_twin_share"].as_f64().unwrap() > 0.5, "{m:?}");
}

#[test]
fn first_model_is_promoted_and_rollback_restores_the_previous_bundle_byte_for_byte() {
    let p = Project::new();
    p.run_all();
    let registry =
        |p: &Project| -> serde_json::Value { serde_json::from_str(&p.read("models/registry.json")).unwrap() };
    let reg = registry(&p);
    assert_eq!(reg["versions"][0]["status"], "production", "{reg}");
    assert_eq!(p.metrics("reports/promote.json")["first_model"], 1);
    let v1 = std::fs::read(p.path("models/production/toy.json")).unwrap();
    assert_eq!(v1, std::fs::read(p.path("models/model.json")).unwrap());

    // The same candidate again (DVC deletes the metrics file before a run): nothing changes.
    std::fs::remove_file(p.path("metrics/promote.json")).unwrap();
    p.run("promote").success();
    assert_eq!(registry(&p)["versions"].as_array().unwrap().len(), 1);
    assert_eq!(p.metrics("reports/promote.json")["in_production"], 1);

    // A different model that is allowed to be worse (min_delta -1): promoted, v1 archived.
    p.edit("params.yaml", "  seed: 7\n  cv_folds", "  seed: 8\n  cv_folds");
    p.edit("params.yaml", "f1: {min: 0.5}", "f1: {min: 0.5, min_delta: -1}");
    p.edit("params.yaml", "roc_auc: {min: 0.5}", "roc_auc: {min: 0.5, min_delta: -1}");
    p.run("train").success();
    p.run("promote").success();
    let v2 = std::fs::read(p.path("models/production/toy.json")).unwrap();
    assert_ne!(v1, v2, "the new candidate should differ");
    let reg = registry(&p);
    assert_eq!(reg["versions"][0]["status"], "archived", "{reg}");
    assert_eq!(reg["versions"][1]["status"], "production", "{reg}");
    for key in ["created", "params_hash", "data_hash", "git_rev", "bundle_sha256"] {
        assert!(reg["versions"][1][key].is_string(), "{key}: {reg}");
    }

    // A registry edited to name a file outside the models folder, or a kept bundle changed
    // since it was recorded: refused, production untouched.
    let kept = reg["versions"][0]["bundle"].as_str().unwrap().to_owned();
    p.write("registry.orig", p.read("models/registry.json"));
    p.write("models/registry.json", p.read("registry.orig").replace(&kept, "/etc/passwd"));
    Cmd::bin("rollback").dir(p.dir.path()).run().code(1).stderr_has("not a file inside the models folder");
    p.write("models/registry.json", p.read("registry.orig"));
    let kept_bytes = std::fs::read(p.path(&kept)).unwrap();
    p.write(&kept, std::fs::read(p.path("models/production/toy.json")).unwrap());
    Cmd::bin("rollback").dir(p.dir.path()).run().code(1).stderr_has("but the registry recorded");
    p.write(&kept, kept_bytes);
    assert_eq!(std::fs::read(p.path("models/production/toy.json")).unwrap(), v2, "production untouched");

    // Rollback: v1's bytes are back and the registry says so.
    Cmd::bin("rollback").dir(p.dir.path()).run().success();
    assert_eq!(std::fs::read(p.path("models/production/toy.json")).unwrap(), v1);
    let reg = registry(&p);
    assert_eq!(reg["versions"][0]["status"], "production", "{reg}");
    assert_eq!(reg["versions"][1]["status"], "rolled_back", "{reg}");

    // The rolled-back candidate is not promoted again, and there is nothing left to roll back to.
    p.run("promote").success();
    assert_eq!(std::fs::read(p.path("models/production/toy.json")).unwrap(), v1);
    Cmd::bin("rollback").dir(p.dir.path()).run().code(1).stderr_has("no earlier production model of dataset `toy`");
}

#[test]
fn a_worse_candidate_is_rejected_and_recorded() {
    let p = Project::new();
    p.run_all();
    // Demand a large improvement: the retrained model cannot pass.
    p.edit("params.yaml", "f1: {min: 0.5}", "f1: {min: 0.5, min_delta: 0.5}");
    p.edit("params.yaml", "  seed: 7\n  cv_folds", "  seed: 9\n  cv_folds");
    p.run("train").success();
    let before = std::fs::read(p.path("models/production/toy.json")).unwrap();
    let run = p.run("promote");
    run.success();
    assert!(run.stderr.contains("not promoted") && run.stderr.contains("f1:"), "{}", run.stderr);
    assert_eq!(std::fs::read(p.path("models/production/toy.json")).unwrap(), before);
    let reg: serde_json::Value = serde_json::from_str(&p.read("models/registry.json")).unwrap();
    assert_eq!(reg["versions"][1]["status"], "rejected", "{reg}");
    assert_eq!(p.metrics("reports/promote.json")["promoted"], 0);
}

#[test]
fn a_tampered_bundle_is_refused_naming_the_checksum() {
    let p = Project::new();
    p.run_all();
    let mut bytes = std::fs::read(p.path("models/model.json")).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    p.write("models/model.json", bytes);
    p.run("evaluate").fails_with(&["models/model.json", "sha256 checksum mismatch"]);
    p.run("promote").fails_with(&["sha256 checksum mismatch"]);
}

#[test]
fn header_less_files_take_their_column_names_from_the_schema() {
    // As NSL-KDD: no header row; the schema lists the columns in order.
    let p = Project::new();
    let body: String = p.read("data/toy.csv").lines().skip(1).map(|l| format!("{l}\n")).collect();
    p.write("data/toy.csv", body);
    p.edit("schemas/toy.yaml", "header: true", "header: false");
    p.run("ingest").success();
    assert_eq!(p.metrics("reports/ingest.json")["rows"], 400);
    p.run("validate").success();
    // A row with a missing field is still named by its line.
    let mut lines: Vec<String> = p.read("data/toy.csv").lines().map(str::to_owned).collect();
    lines[2] = "1,2".into();
    p.write("data/toy.csv", lines.join("\n") + "\n");
    p.run("ingest").fails_with(&["row 3: expected 4 fields, found 2"]);
}

/// linfa-ensemble's bagging is a family like the others: listed in a space, it is
/// cross-validated and ranked in the leaderboard.
#[test]
fn bagging_listed_in_a_space_is_searched_and_ranked() {
    let p = Project::new();
    p.edit(
        "params.yaml",
        "        logistic: {alpha: 0.1}\n",
        "        logistic: {alpha: 0.1}\n        bagging: {n_estimators: [5, 15], tree: {max_depth: 6}}\n",
    );
    for stage in ["ingest", "validate", "transform", "train"] {
        p.run(stage).success();
    }
    let board: serde_json::Value = serde_json::from_str(&p.read("reports/leaderboard.json")).unwrap();
    let bagging: Vec<&serde_json::Value> =
        board["ranking"].as_array().unwrap().iter().filter(|c| c["family"] == "bagging").collect();
    assert_eq!(bagging.len(), 2, "{board}");
    assert!(bagging.iter().all(|c| c["scores"]["f1"]["mean"].as_f64().unwrap() > 0.5), "{board}");
    assert_eq!(bagging[0]["params"]["tree"]["max_depth"], 6, "{board}");
    assert!(p.read("reports/leaderboard.md").contains("| bagging |"));
}
