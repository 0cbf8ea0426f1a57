//! Running in production: drift seen by a real Prometheus scraping the real server.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{toy_csv_with, Cmd, Project};
use crate::serve::{get, post, start_on_free_port, Server};

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

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
