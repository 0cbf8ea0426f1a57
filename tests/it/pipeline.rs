//! The whole pipeline under real DVC, on a fresh clone of this repository, offline.
//!
//! The clone holds only committed files: commit before running these tests locally.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{bin, Run};

fn dvc_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("NETSEC_DVC") {
        return p.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/dvc");
    if venv.exists() {
        venv
    } else {
        "dvc".into()
    }
}

fn in_clone(dir: &Path, program: &Path, args: &[&str]) -> Run {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        // Prebuilt stage binaries: the clone has no target/ and must not rebuild polars.
        .env("NETSEC_BIN_DIR", bin("ingest").parent().unwrap())
        .env("DVC_NO_ANALYTICS", "1")
        .env("COLUMNS", "400")
        .env("GIT_AUTHOR_NAME", "netsec-test")
        .env("GIT_AUTHOR_EMAIL", "test@localhost")
        .env("GIT_COMMITTER_NAME", "netsec-test")
        .env("GIT_COMMITTER_EMAIL", "test@localhost")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (run `make test`, which installs DVC)", program.display()));
    Run::from(out)
}

fn dvc(dir: &Path, args: &[&str]) -> Run {
    let run = in_clone(dir, &dvc_binary(), args);
    assert_eq!(run.code, Some(0), "dvc {args:?} failed\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    run
}

fn stages_run(run: &Run) -> Vec<String> {
    let text = format!("{}{}", run.stdout, run.stderr);
    text.lines()
        .filter_map(|l| l.strip_prefix("Running stage '"))
        .map(|l| l.trim_end_matches("':").to_owned())
        .collect()
}

/// The DOM of a page after headless Chromium ran its scripts, with every network request
/// refused (an unreachable proxy, no name resolution).
fn render_offline(page: &Path) -> String {
    let chromium = std::env::var_os("NETSEC_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into());
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}); `make test` installs Debian's chromium", chromium.display()));
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// path -> md5 of every stage output in a dvc.lock.
fn out_hashes(lock: &str) -> std::collections::BTreeMap<String, String> {
    let lock: serde_yaml_ng::Value = serde_yaml_ng::from_str(lock).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for (_, stage) in lock["stages"].as_mapping().unwrap() {
        for o in stage["outs"].as_sequence().into_iter().flatten() {
            out.insert(o["path"].as_str().unwrap().to_owned(), o["md5"].as_str().unwrap_or_default().to_owned());
        }
    }
    out
}

fn fresh_clone() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("netsec");
    let git = Command::new("git").args(["clone", "--quiet", env!("CARGO_MANIFEST_DIR")]).arg(&clone).output().unwrap();
    assert!(git.status.success(), "git clone: {}", String::from_utf8_lossy(&git.stderr));
    (tmp, clone)
}

#[test]
fn fresh_clone_pulls_offline_reproduces_and_reruns_only_what_changed() {
    let (_tmp, clone) = fresh_clone();
    dvc(&clone, &["pull", "data.dvc"]);
    let first = dvc(&clone, &["repro"]);
    // Stages whose cached outputs a clone lacks run; evaluate's outputs are committed
    // (metrics, plots) and its inputs come out byte-identical, so DVC rightly skips it.
    assert_eq!(stages_run(&first), ["ingest", "validate", "transform", "train"]);
    assert!(first.stdout.contains("Stage 'evaluate' didn't change"), "{}", first.stdout);

    // Flat metrics, the accuracy bar of the walking pipeline.
    let eval: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(clone.join("metrics/eval.json")).unwrap()).unwrap();
    let eval = eval.as_object().expect("flat object");
    assert_eq!(eval["dataset"], "phishing");
    assert!(eval.iter().all(|(k, v)| v.is_number() || k == "dataset"), "{eval:?}");
    assert!(eval["accuracy"].as_f64().unwrap() >= 0.92, "{eval:?}");

    // `dvc plots show` renders all four charts in headless Chromium with the network off.
    let html_dir = clone.join("target-plots");
    dvc(&clone, &["plots", "show", "-o", html_dir.to_str().unwrap()]);
    let html = std::fs::read_to_string(html_dir.join("index.html")).unwrap();
    assert!(!html.contains("cdn.jsdelivr") && !html.contains("<script src"), "the page loads scripts from the network");
    let dom = render_offline(&html_dir.join("index.html"));
    assert_eq!(dom.matches("class=\"marks\"").count(), 4, "charts drawn:\n{}", &dom[..dom.len().min(2000)]);

    // The same params and data give the same outputs as the committed dvc.lock (byte for
    // byte: same md5), except the leaderboard, which records fit times.
    let status = dvc(&clone, &["status"]);
    assert!(status.stdout.contains("up to date"), "{}", status.stdout);
    let committed = Command::new("git").args(["show", "HEAD:dvc.lock"]).current_dir(&clone).output().unwrap();
    let before = out_hashes(&String::from_utf8_lossy(&committed.stdout));
    let after = out_hashes(&std::fs::read_to_string(clone.join("dvc.lock")).unwrap());
    assert!(before.len() >= 10, "{before:?}");
    for (path, md5) in &before {
        if !path.contains("leaderboard") {
            assert_eq!(after.get(path), Some(md5), "{path} differs from the committed dvc.lock");
        }
    }
    assert!(stages_run(&dvc(&clone, &["repro"])).is_empty(), "a second repro ran stages");

    // A training parameter re-runs only train and what depends on the model.
    let exp = dvc(&clone, &["exp", "run", "-S", "train.cv_folds=3", "--name", "folds-3"]);
    assert_eq!(stages_run(&exp), ["train", "evaluate", "promote"]);
    let show = dvc(&clone, &["exp", "show", "--no-pager", "--json"]);
    assert!(show.stdout.contains("folds-3") && show.stdout.contains("cv_f1"), "{}", show.stdout);
    let table = dvc(&clone, &["exp", "show", "--no-pager"]);
    assert!(table.stdout.contains("folds-3"), "{}", table.stdout);
    let diff = dvc(&clone, &["metrics", "diff"]);
    assert!(diff.stdout.contains("metrics/train.json"), "{}", diff.stdout);

    // Leakage on the phishing data: the stratified split leaves ~65% of test rows with an exact
    // twin in train; the grouped split leaves none. Both figures land in metrics/ingest.json.
    let ingest = |clone: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(clone.join("metrics/ingest.json")).unwrap()).unwrap()
    };
    let plain = ingest(&clone);
    assert_eq!(plain["duplicate_rows"], 5206);
    assert_eq!(plain["conflicting_feature_vectors"], 64);
    let share = plain["test_twin_share"].as_f64().unwrap();
    assert!((0.6..0.7).contains(&share), "{plain}");
    dvc(&clone, &["exp", "run", "-S", "ingest.split=stratified_grouped", "--name", "grouped"]);
    let grouped = ingest(&clone);
    assert_eq!(grouped["test_rows_with_train_twin"], 0, "{grouped}");
    assert!(grouped["random_split_test_twin_share"].as_f64().unwrap() > 0.6, "{grouped}");
    let diff = dvc(&clone, &["metrics", "diff", "--md"]);
    assert!(diff.stdout.contains("test_rows_with_train_twin") && diff.stdout.contains("max_psi"), "{}", diff.stdout);
}
