//! Running in production: drift seen by a real Prometheus scraping the real server, shadow
//! and canary candidates, the audit log.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{toy_csv_with, Cmd, Project};
use crate::serve::{get, json, post, start_on_free_port, Server};

/// The toy CSV rows as JSON records (without the label), `id` = their index from `first`.
pub fn toy_records(csv: &str, first: usize) -> Vec<Value> {
    csv.lines()
        .skip(1)
        .enumerate()
        .map(|(i, line)| {
            let v: Vec<&str> = line.split(',').collect();
            serde_json::json!({
                "id": format!("r{}", first + i),
                "a": v[0].parse::<f64>().unwrap(),
                "b": v[1].parse::<f64>().unwrap(),
                "c": v[2].parse::<f64>().unwrap(),
            })
        })
        .collect()
}

/// Post records in requests of 250; every answer must be 200.
pub fn send(server: &Server, records: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for chunk in records.chunks(250) {
        let body = serde_json::to_vec(chunk).unwrap();
        let (status, text) = post(&server.url("/v1/predict"), &[("content-type", "application/json")], &body);
        assert_eq!(status, 200, "{text}");
        out.extend(json(&text)["predictions"].as_array().unwrap().iter().cloned());
    }
    out
}

fn promtool(args: &[&str]) {
    let run = Cmd::new("promtool").args(args).run();
    assert_eq!(run.code, Some(0), "promtool {args:?}: {}{}", run.stdout, run.stderr);
}

/// An instant query through Prometheus's HTTP API: (labels, value) per series.
fn query(prom: u16, q: &str) -> Vec<(Value, f64)> {
    let url = format!("http://127.0.0.1:{prom}/api/v1/query?query={}", urlencode(q));
    let (status, text) = get(&url).expect("prometheus answers");
    assert_eq!(status, 200, "{q}: {text}");
    let v = json(&text);
    assert_eq!(v["status"], "success", "{q}: {text}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["metric"].clone(), r["value"][1].as_str().unwrap().parse::<f64>().unwrap()))
        .collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Wait until `q` gives a series for which `ok` holds (Prometheus scrapes every second).
fn wait_for(prom: u16, q: &str, ok: impl Fn(&[(Value, f64)]) -> bool) -> Vec<(Value, f64)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = query(prom, q);
        if ok(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "{q}: still {r:?} after 60 s");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn psi_by_feature(prom: u16) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = query(prom, "netsec_feature_psi")
        .into_iter()
        .map(|(m, v)| (m["feature"].as_str().unwrap().to_owned(), v))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Prometheus from Debian's package, on a free port, with the deploy/ scrape config and alert
/// rules pointed at `target` and sped up to one-second scrapes and evaluations.
fn start_prometheus(dir: &Path, target: &str) -> (crate::common::Spawned, u16) {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    let config = std::fs::read_to_string(deploy.join("prometheus.yml")).unwrap();
    assert!(config.contains("netsec:8080") && config.contains("15s"));
    let config = config.replace("netsec:8080", target).replace("15s", "1s");
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    std::fs::copy(deploy.join("alerts.yml"), dir.join("alerts.yml")).unwrap();
    let data = dir.join("tsdb");
    start_on_free_port(
        "prometheus",
        60,
        |port| {
            Cmd::new("prometheus").args([
                format!("--config.file={}", dir.join("prometheus.yml").display()),
                format!("--storage.tsdb.path={}", data.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ])
        },
        |port| matches!(get(&format!("http://127.0.0.1:{port}/-/ready")), Ok((200, _))),
    )
}

#[test]
fn deploy_prometheus_config_and_alert_rules_pass_promtool() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    promtool(&["check", "config", deploy.join("prometheus.yml").to_str().unwrap()]);
    promtool(&["check", "rules", deploy.join("alerts.yml").to_str().unwrap()]);
}

#[test]
fn a_real_prometheus_sees_the_shifted_feature_drift_and_only_that_one() {
    let p = Project::new();
    p.run_all();
    let model = p.path("models/production/toy.json");
    let server = Server::start(&model, &["--monitor-window", "1000"]);
    let target = server.base.trim_start_matches("http://").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let (mut prom, port) = start_prometheus(dir.path(), &target);

    // In-distribution traffic: a fresh sample of the training distribution.
    send(&server, &toy_records(&toy_csv_with(1000, 11, 0.0), 0));
    wait_for(port, "netsec_monitor_window_records", |r| r.first().is_some_and(|(_, v)| *v == 1000.0));
    let calm = psi_by_feature(port);
    assert_eq!(calm.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(), ["a", "b", "c"], "{calm:?}");
    for (f, v) in &calm {
        assert!(*v < 0.25, "in-distribution traffic: PSI of {f} is {v}");
    }
    // The same through GET /v1/monitor.
    let (status, text) = get(&server.url("/v1/monitor")).unwrap();
    assert_eq!(status, 200);
    let mon = json(&text);
    assert_eq!(mon["monitoring"], true, "{mon}");
    assert_eq!(mon["drift"]["records"], 1000);

    // Feature c shifted by +3 (outside its training range): the window fills with it.
    send(&server, &toy_records(&toy_csv_with(1000, 12, 3.0), 1000));
    let shifted = wait_for(port, "netsec_feature_psi{feature=\"c\"} > 0.25", |r| !r.is_empty());
    assert!(shifted[0].1 > 1.0, "{shifted:?}");
    let all = psi_by_feature(port);
    for (f, v) in &all {
        if f != "c" {
            assert!(*v < 0.25, "only c moved, yet PSI of {f} is {v}: {all:?}");
        }
    }
    // The alert rule from deploy/ is evaluated on it: pending (it fires after 15 min).
    let alerts = wait_for(port, "ALERTS{alertname=\"NetsecFeatureDrift\"}", |r| !r.is_empty());
    assert!(alerts.iter().all(|(m, _)| m["feature"] == "c"), "{alerts:?}");
    // Every query of the Grafana dashboard in deploy/ parses and evaluates in this Prometheus.
    let dashboard: Value = json(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/netsec.json")).unwrap(),
    );
    let mut exprs = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap().replace("$__rate_interval", "1m");
            query(port, &expr);
            exprs += 1;
        }
    }
    assert!(exprs >= 10, "{exprs} queries");
    let version = query(port, "netsec_model_info");
    assert_eq!(version.len(), 1, "{version:?}");
    assert!(prom.running());
    drop(prom);
    server.stop();
}

/// The sum of every series of metric `name` in a text exposition.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

fn metrics_text(server: &Server) -> String {
    let (status, text) = get(&server.url("/metrics")).unwrap();
    assert_eq!(status, 200);
    text
}

/// Wait until the shadow thread has compared `n` records in all.
fn wait_compared(server: &Server, n: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = metrics_text(server);
        let got = metric_sum(&text, "netsec_shadow_compared_total");
        if got >= n {
            assert_eq!(got, n, "more records compared than sent");
            return text;
        }
        assert!(Instant::now() < deadline, "shadow compared {got} of {n} records in 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A production toy model, and a candidate for the same inputs that disagrees with it on some
/// records: logistic regression only, on another sample.
fn model_pair() -> (Project, Project) {
    let p = Project::new();
    p.run_all();
    let q = Project::new();
    q.write("data/toy.csv", toy_csv_with(400, 99, 0.0));
    q.edit("params.yaml", "        gbm: {n_estimators: [20, 50], max_depth: 3}\n", "");
    q.run_all();
    (p, q)
}

fn by_id(answers: &[Value]) -> std::collections::BTreeMap<String, (String, f64, String)> {
    answers
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                (
                    a["label"].as_str().unwrap().to_owned(),
                    a["score"].as_f64().unwrap(),
                    a["model_version"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

#[test]
fn shadow_changes_no_answer_and_its_agreement_is_exact_across_a_reload() {
    let (p, q) = model_pair();
    let (prod, cand) = (p.path("models/production/toy.json"), q.path("models/model.json"));
    let records = toy_records(&toy_csv_with(2000, 21, 0.0), 0);
    let alone = Server::start(&prod, &[]);
    let a = send(&alone, &records);
    alone.stop();
    let other = Server::start(&cand, &[]);
    let c = send(&other, &records);
    other.stop();
    let expected_agree = a.iter().zip(&c).filter(|(x, y)| x["label"] == y["label"]).count() as f64;
    let expected_diff: f64 =
        a.iter().zip(&c).map(|(x, y)| (x["score"].as_f64().unwrap() - y["score"].as_f64().unwrap()).abs()).sum();
    assert!(expected_agree < 2000.0 && expected_agree > 1000.0, "a pair that agrees on {expected_agree} of 2000");

    let s = Server::start(&prod, &["--shadow", cand.to_str().unwrap()]);
    let (_, ready) = get(&s.url("/readyz")).unwrap();
    assert_eq!(json(&ready)["candidate"]["model_version"], c[0]["model_version"], "{ready}");
    let shadowed = send(&s, &records);
    assert_eq!(shadowed, a, "the shadow changed an answer");
    let text = wait_compared(&s, 2000.0);
    assert_eq!(metric_sum(&text, "netsec_shadow_agree_total"), expected_agree);
    let diff = metric_sum(&text, "netsec_shadow_score_diff_sum");
    assert!((diff - expected_diff).abs() < 1e-9, "{diff} vs {expected_diff}");
    assert!(text.contains(&format!("candidate_version=\"{}\"", c[0]["model_version"].as_str().unwrap())));
    assert_eq!(metric_sum(&text, "netsec_shadow_dropped_total"), 0.0);

    // A reload (SIGHUP) re-reads both; the figures go on from where they were.
    s.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric_sum(&metrics_text(&s), "netsec_model_reloads_total") < 1.0 {
        assert!(Instant::now() < deadline, "no reload");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(send(&s, &records), a);
    let text = wait_compared(&s, 4000.0);
    assert_eq!(metric_sum(&text, "netsec_shadow_agree_total"), 2.0 * expected_agree);
    s.stop();
}

#[test]
fn canary_answers_its_share_by_record_id_the_same_every_run_and_after_a_reload() {
    let (p, q) = model_pair();
    let (prod, cand) = (p.path("models/production/toy.json"), q.path("models/model.json"));
    let records = toy_records(&toy_csv_with(20_000, 31, 0.0), 0);
    let alone = Server::start(&cand, &[]);
    let c = by_id(&send(&alone, &records));
    alone.stop();
    let cand_version = c.values().next().unwrap().2.clone();

    let canary_ids = |answers: &[Value]| -> std::collections::BTreeSet<String> {
        by_id(answers).into_iter().filter(|(_, (_, _, v))| *v == cand_version).map(|(id, _)| id).collect()
    };
    let args = ["--shadow", cand.to_str().unwrap(), "--canary-percent", "10"];
    let s = Server::start(&prod, &args);
    let first = send(&s, &records);
    let ids = canary_ids(&first);
    let share = ids.len() as f64 / 20_000.0;
    assert!((0.08..=0.12).contains(&share), "canary share {share}");
    // The canary's answers are the candidate's own.
    for (id, (label, score, _)) in by_id(&first).iter().filter(|(id, _)| ids.contains(*id)) {
        assert_eq!((label, score), (&c[id].0, &c[id].1), "{id}");
    }
    // The production model's records are compared in shadow; the canary's are not.
    wait_compared(&s, (20_000 - ids.len()) as f64);
    s.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(canary_ids(&send(&s, &records)), ids, "another share after a reload");
    s.stop();
    let again = Server::start(&prod, &args);
    assert_eq!(canary_ids(&send(&again, &records)), ids, "another share in another run");
    again.stop();
}

fn audit_lines(dir: &Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().flat_map(|f| std::fs::read_to_string(f).unwrap().lines().map(json).collect::<Vec<_>>()).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_audit_log_has_one_line_per_scored_record_with_its_hash_and_rotates() {
    let p = Project::new();
    p.run_all();
    let model = p.path("models/production/toy.json");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit");
    let s = Server::start(&model, &["--audit-log", log.to_str().unwrap()]);
    let records = toy_records(&toy_csv_with(300, 41, 0.0), 0);
    let answers = send(&s, &records);
    // A request with the client's id, explanations asked.
    let body = serde_json::to_vec(&records[..2]).unwrap();
    let mut r = ureq::post(&s.url("/v1/predict?explain=2"))
        .header("content-type", "application/json")
        .header("x-request-id", "ticket-42")
        .send(&body[..])
        .unwrap();
    assert_eq!(r.headers().get("x-request-id").unwrap(), "ticket-42");
    let explained = json(&r.body_mut().read_to_string().unwrap());
    // An upload: a row is audited by its line and bytes.
    let (status, _) = post(&s.url("/v1/predict/csv"), &[("content-type", "text/csv")], b"a,b,c\n1,90,0.5\n");
    assert_eq!(status, 200);
    let (status, _) = s.stop();
    assert!(status.success());

    let lines = audit_lines(&log);
    assert_eq!(lines.len(), 300 + 2 + 1, "one line per scored record");
    for (line, (rec, ans)) in lines.iter().zip(records.iter().zip(&answers)) {
        assert_eq!(line["id"], rec["id"]);
        assert_eq!(line["score"], ans["score"]);
        assert_eq!(line["label"], ans["label"]);
        assert_eq!(line["model_version"], ans["model_version"]);
        assert!(line["time"].as_str().unwrap().ends_with('Z') && line["request_id"].is_string(), "{line}");
        let inputs = serde_json::to_vec(&[&rec["a"], &rec["b"], &rec["c"]]).unwrap();
        assert_eq!(line["input_sha256"], sha256_hex(&inputs), "{line}");
        assert!(line.get("input").is_none() && line.get("reasons").is_none(), "{line}");
    }
    let asked = &lines[300];
    assert_eq!(asked["request_id"], "ticket-42");
    assert_eq!(asked["reasons"], explained["predictions"][0]["explanation"]);
    let row = &lines[302];
    assert_eq!((row["row"].as_u64(), row["input_sha256"].as_str()), (Some(2), Some(sha256_hex(b"1,90,0.5").as_str())));

    // --audit-inputs writes the inputs; small files rotate, the oldest beyond --audit-keep go.
    let log2 = dir.path().join("audit2");
    let s = Server::start(
        &model,
        &["--audit-log", log2.to_str().unwrap(), "--audit-inputs", "--audit-max-bytes", "4000", "--audit-keep", "3"],
    );
    send(&s, &records);
    s.stop();
    let files = std::fs::read_dir(&log2).unwrap().count();
    assert_eq!(files, 3, "kept files");
    let kept = audit_lines(&log2);
    assert!(kept.len() < 300 && !kept.is_empty());
    let last = kept.last().unwrap();
    assert_eq!(last["id"], records[299]["id"], "the newest lines are kept");
    assert_eq!(
        last["input"],
        serde_json::json!({"a": records[299]["a"], "b": records[299]["b"], "c": records[299]["c"]})
    );
}
