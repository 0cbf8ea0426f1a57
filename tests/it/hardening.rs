//! Hardening: bundles that carry a valid checksum and are still wrong are refused on every
//! load path; a reload to another dataset's model is refused; `promote` under concurrency and
//! crashes; `predict`'s output to devices, FIFOs, symlinks and stdout.

use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

use crate::common::{bin, Cmd, Project};
use crate::serve::{get, post, Server};

const TOKEN: &str = "test-admin-token";

/// The toy project, run through promote; its production bundle.
fn promoted() -> Project {
    let p = Project::new();
    p.run_all();
    p
}

/// `model` rewritten by `edit` and sealed with a correct checksum: wrong inside, not corrupt.
fn resealed(model: &Path, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let text = std::fs::read_to_string(model).unwrap();
    let (head, content) = text.split_once('\n').unwrap();
    let mut header: Value = serde_json::from_str(head).unwrap();
    let mut bundle: Value = serde_json::from_str(content.trim_end()).unwrap();
    edit(&mut bundle);
    let mut content = serde_json::to_vec(&bundle).unwrap();
    content.push(b'\n');
    let sha: String = Sha256::digest(&content).iter().map(|b| format!("{b:02x}")).collect();
    header["sha256"] = json!(sha);
    let mut bytes = serde_json::to_vec(&header).unwrap();
    bytes.push(b'\n');
    bytes.extend_from_slice(&content);
    bytes
}

fn leaf(v: f64) -> Value {
    json!({"feature": u32::MAX, "threshold": 0.0, "left": 0, "right": 0, "value": v})
}

fn split(feature: u64, left: u64, right: u64) -> Value {
    json!({"feature": feature, "threshold": 0.5, "left": left, "right": right, "value": 0.0})
}

fn forest(width: usize, trees: Vec<Value>) -> Value {
    let trees: Vec<Value> = trees.into_iter().map(|nodes| json!({ "nodes": nodes })).collect();
    json!({"family": "random_forest", "model": {"trees": trees, "importance": vec![0.0; width]}})
}

/// An edit of a bundle's content.
type Edit = Box<dyn FnOnce(&mut Value)>;

/// Each broken bundle: what is wrong, the edit, and what the refusal must name.
fn broken_bundles(width: usize) -> Vec<(&'static str, Edit, &'static str)> {
    vec![
        (
            "a tree with a cycle",
            Box::new(move |b| b["model"] = forest(width, vec![json!([split(0, 0, 1), leaf(0.9)])])),
            "reached twice",
        ),
        (
            "a feature index of 4294967294",
            Box::new(move |b| b["model"] = forest(width, vec![json!([split(4294967294, 1, 2), leaf(0.1), leaf(0.9)])])),
            "feature 4294967294",
        ),
        (
            "a child index out of range",
            Box::new(move |b| b["model"] = forest(width, vec![json!([split(0, 1, 7), leaf(0.1)])])),
            "child 7 of 2",
        ),
        ("empty nodes", Box::new(move |b| b["model"] = forest(width, vec![json!([])])), "nodes: empty"),
        ("a forest with no trees", Box::new(move |b| b["model"] = forest(width, vec![])), "no trees"),
        (
            "one coefficient too few",
            Box::new(move |b| {
                b["model"] = json!({"family": "logistic", "model": {
                    "intercept": 0.0, "coefficients": vec![0.1; width - 1], "importance": vec![0.0; width]}})
            }),
            "coefficients for",
        ),
        ("a threshold of 2.0", Box::new(|b| b["threshold"] = json!(2.0)), "threshold: 2"),
        (
            "steps that do not match the features",
            Box::new(|b| {
                b["preprocessor"]["features"].as_array_mut().unwrap().pop();
            }),
            "feature_names",
        ),
    ]
}

/// A bundle with a valid checksum but a broken structure is refused by `predict`, `serve`,
/// `evaluate`, and by a reload (which keeps the old model serving), naming the part; nothing
/// panics, spins or allocates without bound.
#[test]
fn structurally_broken_bundles_are_refused_on_every_load_path() {
    let p = promoted();
    let good = p.path("models/production/toy.json");
    let width = {
        let text = std::fs::read_to_string(&good).unwrap();
        let bundle: Value = serde_json::from_str(text.split_once('\n').unwrap().1).unwrap();
        bundle["feature_names"].as_array().unwrap().len()
    };
    let csv = p.read("data/toy.csv");
    let served = p.path("models/served.json");
    std::fs::copy(&good, &served).unwrap();
    let s = Server::start(&served, &[]);
    let one = br#"{"a": 1, "b": 90, "c": 0.9}"#;
    for (what, edit, needle) in broken_bundles(width) {
        let bad = p.path("models/bad.json");
        std::fs::write(&bad, resealed(&good, edit)).unwrap();
        // predict
        p.write("in.csv", &csv);
        let run = Cmd::bin("predict")
            .args([p.path("in.csv").to_str().unwrap(), p.path("out.csv").to_str().unwrap()])
            .args(["--model", bad.to_str().unwrap()])
            .run();
        run.fails_with(&["invalid bundle", needle]);
        assert!(!p.path("out.csv").exists(), "{what}: predict wrote an output");
        // serve refuses to start
        let run = Cmd::bin("serve").args(["--model", bad.to_str().unwrap(), "--addr", "127.0.0.1:0"]).run();
        run.fails_with(&["invalid bundle", needle]);
        // a reload refuses it and keeps serving the old model
        std::fs::copy(&bad, &served).unwrap();
        let (code, body) = post(&s.url("/admin/reload"), &[("Authorization", &format!("Bearer {TOKEN}"))], b"");
        assert_eq!(code, 500, "{what}: {body}");
        assert!(body.contains(needle) && body.contains("still serving"), "{what}: {body}");
        assert!(!body.contains(p.path("").to_str().unwrap()), "{what}: the answer shows the server's path: {body}");
        assert_eq!(get(&s.url("/healthz")).unwrap().0, 200, "{what}");
        let (code, body) = post(&s.url("/v1/predict"), &[("Content-Type", "application/json")], one);
        assert_eq!(code, 200, "{what}: {body}");
        std::fs::copy(&good, &served).unwrap();
    }
    // evaluate reads models/model.json
    std::fs::write(
        p.path("models/model.json"),
        resealed(&p.path("models/model.json"), |b| b["threshold"] = json!(-0.5)),
    )
    .unwrap();
    p.run("evaluate").fails_with(&["invalid bundle", "threshold"]);
    s.stop();
}

/// A reload to a bundle for another dataset, or with other inputs, is refused (409) unless the
/// server was started with --allow-schema-change; the old model keeps serving.
#[test]
fn a_reload_to_another_dataset_or_other_inputs_is_refused_unless_allowed() {
    let p = promoted();
    let good = p.path("models/production/toy.json");
    let served = p.path("models/served.json");
    let rename_a = |b: &mut Value| {
        for f in b["preprocessor"]["features"].as_array_mut().unwrap() {
            if f["Numeric"]["name"] == "a" {
                f["Numeric"]["name"] = json!("z");
            }
            if f["name"] == "a" {
                f["name"] = json!("z");
            }
        }
        for n in b["feature_names"].as_array_mut().unwrap() {
            if n == "a" {
                *n = json!("z");
            }
        }
    };
    let other_inputs = resealed(&good, rename_a);
    let other_dataset = resealed(&good, |b| b["dataset"] = json!("other"));
    assert!(String::from_utf8_lossy(&other_inputs).contains("\"z\""), "the edit renamed the input");
    let auth = format!("Bearer {TOKEN}");
    for (what, bytes, needle) in
        [("other inputs", &other_inputs, "other inputs"), ("another dataset", &other_dataset, "dataset `other`")]
    {
        std::fs::copy(&good, &served).unwrap();
        let s = Server::start(&served, &[]);
        std::fs::write(&served, bytes).unwrap();
        let (code, body) = post(&s.url("/admin/reload"), &[("Authorization", &auth)], b"");
        assert_eq!(code, 409, "{what}: {body}");
        assert!(body.contains(needle) && body.contains("--allow-schema-change"), "{what}: {body}");
        let (_, ready) = get(&s.url("/readyz")).unwrap();
        assert!(ready.contains("\"dataset\":\"toy\""), "{what}: {ready}");
        let (code, _) =
            post(&s.url("/v1/predict"), &[("Content-Type", "application/json")], br#"{"a": 1, "b": 90, "c": 0.9}"#);
        assert_eq!(code, 200, "{what}");
        s.stop();
        // Allowed by the flag.
        std::fs::copy(&good, &served).unwrap();
        let s = Server::start(&served, &["--allow-schema-change"]);
        std::fs::write(&served, bytes).unwrap();
        let (code, body) = post(&s.url("/admin/reload"), &[("Authorization", &auth)], b"");
        assert_eq!(code, 200, "{what} with --allow-schema-change: {body}");
        s.stop();
    }
}

/// The sha256 a bundle file's header records.
fn sha_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    header["sha256"].as_str().unwrap().to_owned()
}

/// The registry, production and kept bundles agree: one production version whose sha256 is
/// the production file's, each kept bundle the one recorded, ids distinct, no journal left.
fn assert_consistent(p: &Project, what: &str) -> Vec<Value> {
    let reg: Value = serde_json::from_str(&p.read("models/registry.json")).unwrap();
    let versions = reg["versions"].as_array().unwrap().clone();
    let ids: std::collections::HashSet<&str> = versions.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), versions.len(), "{what}: duplicate ids in {versions:?}");
    let prod: Vec<&Value> = versions.iter().filter(|v| v["status"] == "production").collect();
    assert_eq!(prod.len(), 1, "{what}: {versions:?}");
    assert_eq!(
        sha_of(&p.path("models/production/toy.json")),
        prod[0]["bundle_sha256"].as_str().unwrap(),
        "{what}: production is not the registry's production version"
    );
    for v in &versions {
        if let Some(kept) = v["bundle"].as_str() {
            assert_eq!(sha_of(&p.path(kept)), v["bundle_sha256"].as_str().unwrap(), "{what}: kept {kept}");
        }
    }
    assert!(!p.path("models/registry.json.journal").exists(), "{what}: the journal is left");
    versions
}

/// A candidate: the trained model with a marker in its hyperparameters (another sha256).
fn candidate(p: &Project, name: &str) -> String {
    let rel = format!("models/{name}.json");
    std::fs::write(
        p.path(&rel),
        resealed(&p.path("models/model.json"), |b| b["hyperparameters"]["marker"] = json!(name)),
    )
    .unwrap();
    rel
}

fn promote(p: &Project, candidate: &str, fault: Option<&str>) -> std::process::Child {
    let mut cmd = Command::new(bin("promote"));
    cmd.current_dir(p.path("")).args(["--candidate", candidate]);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    if let Some(f) = fault {
        cmd.env("NETSEC_FAULT", f);
    }
    cmd.spawn().unwrap()
}

fn done(child: std::process::Child) -> Output {
    child.wait_with_output().unwrap()
}

/// Two `promote` runs at once both record their decision, under distinct ids, and every kept
/// bundle is the one the registry records (before: both took the same id in 10 of 10 trials).
#[test]
fn two_promotes_at_once_record_both_decisions_under_distinct_ids() {
    let p = promoted();
    let before = assert_consistent(&p, "start").len();
    for trial in 0..5 {
        let (a, b) = (candidate(&p, &format!("a{trial}")), candidate(&p, &format!("b{trial}")));
        let (x, y) = (promote(&p, &a, None), promote(&p, &b, None));
        for out in [done(x), done(y)] {
            assert!(out.status.success(), "trial {trial}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let versions = assert_consistent(&p, &format!("trial {trial}"));
        assert_eq!(versions.len(), before + 2 * (trial + 1), "trial {trial}: a decision was lost: {versions:?}");
    }
}

/// `promote` killed (SIGKILL) at each step of its update, then run again: the next run finishes
/// the interrupted update and its own, and the registry, production and kept bundles agree
/// (before: production and registry disagreed and the next promote refused to run).
/// `rollback` killed after its production write is finished the same way.
#[test]
fn promote_and_rollback_killed_at_each_step_are_finished_by_the_next_run() {
    for point in
        ["promote:kept-written", "registry:journal-written", "registry:production-written", "registry:registry-written"]
    {
        let p = promoted();
        let first = candidate(&p, "first");
        let out = done(promote(&p, &first, Some(point)));
        assert_eq!(out.status.signal(), Some(9), "{point}: {}", String::from_utf8_lossy(&out.stderr));
        let second = candidate(&p, "second");
        let out = done(promote(&p, &second, None));
        assert!(out.status.success(), "{point}: the next promote failed: {}", String::from_utf8_lossy(&out.stderr));
        let versions = assert_consistent(&p, point);
        assert_eq!(versions.last().unwrap()["status"], "production", "{point}: {versions:?}");
        // Rollback, killed after writing production, then finished by the next command.
        let out = Cmd::bin("rollback").dir(p.path("")).env("NETSEC_FAULT", "registry:production-written").run();
        assert_eq!(out.code, None, "{point}: rollback was not killed: {}", out.stderr);
        let out = done(promote(&p, &candidate(&p, "third"), None));
        assert!(out.status.success(), "{point}: after the rollback: {}", String::from_utf8_lossy(&out.stderr));
        let versions = assert_consistent(&p, &format!("{point}, then rollback"));
        assert!(versions.iter().any(|v| v["status"] == "rolled_back"), "{point}: {versions:?}");
    }
}

/// A handler that panics answers 500 with a fixed message (no panic text), and the server
/// goes on answering.
#[test]
fn a_panicking_handler_answers_500_without_its_text() {
    let p = promoted();
    let cmd = Cmd::bin("serve").env("NETSEC_FAULT", "serve:predict");
    let s = Server::start_cmd(cmd, &p.path("models/production/toy.json"), &[]);
    for _ in 0..3 {
        let (code, body) =
            post(&s.url("/v1/predict"), &[("Content-Type", "application/json")], br#"{"a": 1, "b": 90, "c": 0.9}"#);
        assert_eq!(code, 500, "{body}");
        assert!(body.contains("internal error"), "{body}");
        assert!(!body.contains("NETSEC_FAULT") && !body.contains("panic"), "{body}");
        assert_eq!(get(&s.url("/healthz")).unwrap().0, 200);
    }
    let (_, stderr) = s.stop();
    assert!(stderr.contains("panicked"), "the panic is logged: {stderr}");
}

/// `predict`'s output: `-` is stdout; a device or a FIFO is written through and stays what it
/// is; a symbolic link is refused unless --follow-symlinks (then its target is written and the
/// link stays); an existing file keeps its permissions; temporary files a killed run left are
/// removed by the next run.
#[test]
fn predict_writes_through_devices_fifos_and_stdout_and_keeps_links_and_modes() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let p = promoted();
    let model = p.path("models/production/toy.json");
    let input = p.path("data/toy.csv");
    let predict = |out: &str, extra: &[&str]| {
        Cmd::bin("predict")
            .dir(p.path(""))
            .args([input.to_str().unwrap(), out, "--model", model.to_str().unwrap()])
            .args(extra)
            .run()
    };
    // stdout
    let run = predict("-", &[]);
    run.success().stdout_has("threat_score,prediction");
    assert!(run.stderr.contains("rows scored"), "{}", run.stderr);
    assert!(!p.path("-").exists(), "a file named `-` was written");
    let rows = p.read("data/toy.csv").lines().count();
    assert_eq!(run.stdout.lines().count(), rows, "one verdict per row, plus the header");
    // /dev/full: the device's error, and the device is still a device.
    predict("/dev/full", &[]).fails_with(&["/dev/full", "No space left on device"]);
    assert!(std::fs::metadata("/dev/full").unwrap().file_type().is_char_device());
    // A FIFO, read by another thread.
    let fifo = p.path("verdicts.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    predict(fifo.to_str().unwrap(), &[]).success();
    let through = reader.join().unwrap();
    assert_eq!(through.lines().count(), rows);
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
    // A symbolic link: refused, then followed by choice.
    p.write("target.csv", "old\n");
    std::os::unix::fs::symlink(p.path("target.csv"), p.path("link.csv")).unwrap();
    predict("link.csv", &[]).fails_with(&["symbolic link", "--follow-symlinks"]);
    assert_eq!(p.read("target.csv"), "old\n");
    predict("link.csv", &["--follow-symlinks"]).success();
    assert!(std::fs::symlink_metadata(p.path("link.csv")).unwrap().file_type().is_symlink());
    assert_eq!(p.read("target.csv").lines().count(), rows);
    // An existing file keeps its mode.
    p.write("private.csv", "old\n");
    std::fs::set_permissions(p.path("private.csv"), std::fs::Permissions::from_mode(0o600)).unwrap();
    predict("private.csv", &[]).success();
    let mode = std::fs::metadata(p.path("private.csv")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // A run killed after its first chunk leaves its temporary file; the next run removes it.
    let out = p.path("out/verdicts.csv");
    let killed = Cmd::bin("predict")
        .args([input.to_str().unwrap(), out.to_str().unwrap(), "--model", model.to_str().unwrap(), "--chunk", "10"])
        .env("NETSEC_FAULT", "predict:chunk-written")
        .run();
    assert_eq!(killed.code, None, "not killed: {}", killed.stderr);
    let temps = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".tmp-"))
            .count()
    };
    assert_eq!(temps(&p.path("out")), 1, "the killed run left its temporary file");
    assert!(!out.exists(), "a half-written output appeared");
    predict(out.to_str().unwrap(), &[]).success();
    assert_eq!(temps(&p.path("out")), 0, "the stale temporary file is still there");
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), rows);
}

/// Small answers of the API: duplicate JSON keys and CSV headers are refused, a `;` upload
/// gets a delimiter hint, an empty body says empty, a BOM before JSON gets a hint, and CSV
/// answers prefix formula cells so a spreadsheet does not run them.
#[test]
fn duplicates_hints_and_formula_cells_in_answers() {
    let p = promoted();
    let s = Server::start(&p.path("models/production/toy.json"), &[]);
    let json_ct = [("Content-Type", "application/json")];
    let csv_ct = [("Content-Type", "text/csv")];
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: Vec<(Headers, &str, Vec<u8>, u16, &str)> = vec![
        (&json_ct, "/v1/predict", br#"{"a": 1, "b": 90, "c": 0.9, "b": 3}"#.to_vec(), 400, "duplicate key `b`"),
        (&csv_ct, "/v1/predict/csv", b"a,b,c,b\n1,2,0.5,3\n".to_vec(), 400, "appears twice"),
        (&csv_ct, "/v1/predict/csv", b"a;b;c\n1;2;0.5\n".to_vec(), 400, "delimited by ';'"),
        (&csv_ct, "/v1/predict/csv", b"a\tb\tc\n1\t2\t0.5\n".to_vec(), 400, "delimited by a tab"),
        (&csv_ct, "/v1/predict/csv", b"".to_vec(), 400, "empty"),
        (&json_ct, "/v1/predict", b"".to_vec(), 400, "empty body"),
        (&json_ct, "/v1/predict", b"\xEF\xBB\xBF{\"a\": 1, \"b\": 90, \"c\": 0.9}".to_vec(), 400, "byte-order mark"),
    ];
    for (headers, path, body, status, needle) in cases {
        let (code, answer) = post(&s.url(path), headers, &body);
        assert_eq!(code, status, "{}: {answer}", String::from_utf8_lossy(&body));
        assert!(answer.contains(needle), "{}: {answer}", String::from_utf8_lossy(&body));
    }
    let (code, answer) = post(
        &s.url("/v1/predict/csv"),
        &csv_ct,
        b"a,b,c,note\n-1,2,0.5,\"=HYPERLINK(\"\"http://x\"\")\"\n1,3,-0.5,@SUM(A1)\n0,4,0.1,plain\n",
    );
    assert_eq!(code, 200, "{answer}");
    let rows: Vec<&str> = answer.lines().collect();
    assert!(rows[1].starts_with("-1,2,0.5,\"'=HYPERLINK("), "{answer}");
    assert!(rows[2].starts_with("1,3,-0.5,'@SUM(A1),"), "{answer}");
    assert!(rows[3].starts_with("0,4,0.1,plain,"), "{answer}");
    s.stop();
}

/// A value outside the schema's domain (`a` allows -1, 0, 1; `b` is 0 to 100) is scored with
/// a warning and counted, or refused with --strict, naming the record (row) and field.
#[test]
fn values_outside_the_schema_domain_are_reported_or_refused_with_strict() {
    let p = promoted();
    let model = p.path("models/production/toy.json");
    let json_ct = [("Content-Type", "application/json")];
    let record = br#"[{"a": 1, "b": 90, "c": 0.9}, {"a": 5, "b": 500, "c": 0.9}]"#;
    let s = Server::start(&model, &[]);
    let (code, body) = post(&s.url("/v1/predict"), &json_ct, record);
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["predictions"][0].get("warnings").is_none(), "{v}");
    let w = v["predictions"][1]["warnings"].to_string();
    assert!(w.contains("a: 5 is not one of the schema's values") && w.contains("b: 500 is above"), "{w}");
    let (_, metrics) = get(&s.url("/metrics")).unwrap();
    assert!(metrics.contains("netsec_out_of_domain_values_total 2"), "{metrics}");
    s.stop();
    let s = Server::start(&model, &["--strict"]);
    let (code, body) = post(&s.url("/v1/predict"), &json_ct, record);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("record 1, feature `a`") && body.contains("--strict"), "{body}");
    let (code, body) = post(&s.url("/v1/predict/csv"), &[("Content-Type", "text/csv")], b"a,b,c\n1,2,0.5\n0,500,0.5\n");
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("row 3, column `b`"), "{body}");
    s.stop();
    p.write("odd.csv", "a,b,c\n1,2,0.5\n5,2,0.5\n");
    let predict = |extra: &[&str]| {
        Cmd::bin("predict")
            .dir(p.path(""))
            .args(["odd.csv", "out.csv", "--model", model.to_str().unwrap()])
            .args(extra)
            .run()
    };
    predict(&["--strict"]).fails_with(&["odd.csv", "row 3, column `a`", "--strict"]);
    predict(&[]).success().stderr_has("outside the schema's domain");
}

/// Run a stage in the project; its exit code, stderr, and its own peak resident memory (kB).
/// The stage is started by a small Python process that reads its children's resource usage:
/// measured from this (large, multi-threaded) test process, a child's peak would include the
/// memory it shared with us until its exec.
fn run_measured(p: &Project, stage: &str) -> (Option<i32>, String, u64) {
    const WRAP: &str = "import resource, subprocess, sys\n\
r = subprocess.run(sys.argv[1:])\n\
print('PEAK_KB=%d' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n\
sys.exit(r.returncode)\n";
    let out = Command::new("python3").current_dir(p.path("")).args(["-c", WRAP]).arg(bin(stage)).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let peak = stderr.lines().find_map(|l| l.strip_prefix("PEAK_KB=")).and_then(|v| v.parse().ok()).unwrap_or(0);
    (out.status.code(), stderr, peak)
}

/// `ingest`'s input limits (`ingest.limits`): a gzip bomb stops at the decompressed-bytes
/// limit, a line too long and a header too wide are refused, each naming the file and line,
/// and the process stays small; `predict` has the same limits as flags, and an input whose
/// name tells nothing is read as CSV (no `format:` hint that predict lacks).
#[test]
fn input_limits_stop_gzip_bombs_long_lines_and_wide_headers() {
    let p = Project::new();
    // 200 MB of rows that compress about 1000 to 1.
    let row = "1,50,0.5,normal\n";
    let mut text = String::from("a,b,c,label\n");
    text.push_str(&row.repeat(200_000_000 / row.len()));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
    let packed = gz.finish().unwrap();
    assert!(text.len() / packed.len() > 150, "a bomb: {} to {} bytes", text.len(), packed.len());
    p.write("data/bomb.csv.gz", packed);
    drop(text);
    p.edit("schemas/toy.yaml", "source: data/toy.csv", "source: data/bomb.csv.gz");
    p.edit("params.yaml", "  seed: 7\nvalidate:", "  seed: 7\n  limits: {max_decompressed_bytes: 20000000}\nvalidate:");
    let (code, stderr, peak_kb) = run_measured(&p, "ingest");
    assert_eq!(code, Some(1), "{stderr}");
    for needle in ["data/bomb.csv.gz", "decompresses to more than 20000000 bytes", "ingest.limits"] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(peak_kb < 300 << 10, "ingest of a bomb stopped at 20 MB peaked at {} MB", peak_kb >> 10);
    // With the default limits, the expansion ratio stops it past 64 MiB.
    p.edit("params.yaml", "  limits: {max_decompressed_bytes: 20000000}\n", "");
    let (code, stderr, peak_kb) = run_measured(&p, "ingest");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("expands more than 100 times its compressed size"), "{stderr}");
    assert!(peak_kb < 400 << 10, "ingest of a bomb stopped at 64 MiB peaked at {} MB", peak_kb >> 10);
    // A line of 2 MB, and a header of 5,000 columns.
    let long = format!("a,b,c,label\n1,50,0.5,normal\n1,50,0.5,{}\n", "x".repeat(2 << 20));
    p.write("data/long.csv", long);
    p.edit("schemas/toy.yaml", "source: data/bomb.csv.gz", "source: data/long.csv");
    p.run("ingest").fails_with(&["data/long.csv", "line 3 is longer than 1048576 bytes"]);
    let wide: Vec<String> = (0..5000).map(|i| format!("c{i}")).collect();
    p.write("data/long.csv", format!("{}\n", wide.join(",")));
    p.run("ingest").fails_with(&["data/long.csv", "5000 fields; the limit is 4096"]);
    // predict: the same limits as flags.
    p.write("many.csv", format!("{}\n", wide.join(",")));
    let model = Project::new();
    model.run_all();
    let bundle = model.path("models/production/toy.json");
    let run = Cmd::bin("predict")
        .dir(p.path(""))
        .args(["many.csv", "out.csv", "--model", bundle.to_str().unwrap(), "--max-fields", "100"])
        .run();
    run.fails_with(&["many.csv", "5000 fields; the limit is 100"]);
    let run =
        Cmd::bin("predict").dir(p.path("")).args(["/dev/null", "out.csv", "--model", bundle.to_str().unwrap()]).run();
    run.fails_with(&["/dev/null", "file is empty"]);
    assert!(!run.stderr.contains("format:"), "{}", run.stderr);
}

/// `predict --explain K` adds each row's K largest contributions and the base value as
/// columns; with every input asked for they add up to the row's score through the link.
#[test]
fn predict_explains_each_row_in_extra_columns() {
    let p = promoted();
    let model = p.path("models/production/toy.json");
    Cmd::bin("predict")
        .dir(p.path(""))
        .args(["data/toy.csv", "out.csv", "--model", model.to_str().unwrap(), "--explain", "3"])
        .run()
        .success();
    let out = p.read("out.csv");
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("{name} in {header:?}"));
    let (score_at, base_at) = (at("threat_score"), at("explain_base"));
    let mut rows = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let mut names: Vec<&str> = (1..=3).map(|i| cells[at(&format!("reason_{i}"))]).collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c"], "{line}");
        let margin: f64 = cells[base_at].parse::<f64>().unwrap()
            + (1..=3).map(|i| cells[at(&format!("contribution_{i}"))].parse::<f64>().unwrap()).sum::<f64>();
        let score: f64 = cells[score_at].parse().unwrap();
        let links = [margin, 1.0 / (1.0 + (-margin).exp()), 1.0 / (1.0 + (-2.0 * margin).exp())];
        assert!(links.iter().any(|s| (s - score).abs() < 1e-5), "{line}: {links:?} vs {score}");
        rows += 1;
    }
    assert_eq!(rows, p.read("data/toy.csv").lines().count() - 1);
}

/// `predict - -` is a filter: CSV (gzip or not) on stdin, verdicts on stdout; `--exact` keeps
/// cells as read and every bit of a score; a reader that stops early (`| head`) ends it
/// quietly, not with an error.
#[test]
fn predict_filters_stdin_to_stdout_exactly_and_stops_quietly_when_the_reader_leaves() {
    use std::io::{BufRead, Read, Write};
    let p = promoted();
    let model = p.path("models/production/toy.json");
    // A formula-like extra column, which --exact passes through and the default escapes.
    let mut csv = String::from("note,a,b,c,label\n");
    for (i, line) in crate::common::toy_csv_with(200_000, 9, 0.0).lines().skip(1).enumerate() {
        csv.push_str(&format!("=cell{i},{line}\n"));
    }
    let filter = |input: Vec<u8>, extra: &[&str]| {
        let mut child = Command::new(bin("predict"))
            .args(["-", "-", "--model", model.to_str().unwrap()])
            .args(extra)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        (child, feeder)
    };
    // The whole stream, gzip on stdin: every row, cells as read, scores parse to full bits.
    let (child, feeder) = filter(crate::common::gzip(csv.as_bytes()), &["--exact"]);
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 200_001, "a verdict per row, plus the header");
    let first = text.lines().nth(1).unwrap();
    assert!(first.starts_with("=cell0,"), "--exact keeps the cell as read: {first}");
    let score = first.split(',').nth(5).unwrap();
    assert!(score.len() > 8 && score.parse::<f64>().is_ok(), "every bit of the score, not 6 decimals: {score}");
    // Without --exact, for a spreadsheet: the formula cell is escaped, the score rounded.
    let (child, feeder) = filter(csv.clone().into_bytes(), &[]);
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let second = String::from_utf8(out.stdout).unwrap().lines().nth(1).unwrap().to_owned();
    assert!(second.starts_with("'=cell0,"), "{second}");
    assert_eq!(second.split(',').nth(5).unwrap().split('.').nth(1).unwrap().len(), 6, "{second}");
    // A reader that takes one line and leaves: predict stops, exit 0, no error message.
    let (mut child, feeder) = filter(csv.into_bytes(), &[]);
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("note,"), "{line}");
    drop(stdout);
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    feeder.join().unwrap();
    assert!(status.success(), "a closed pipe is not a failure: {status:?} {err}");
    assert!(!err.contains("error") && !err.contains("panicked"), "{err}");
}
