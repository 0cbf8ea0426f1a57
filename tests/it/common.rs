//! A throwaway project folder with params, a schema and a small generated dataset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

pub const STAGES: &[&str] = &["ingest", "validate", "transform", "train", "evaluate", "promote"];

pub fn bin(stage: &str) -> PathBuf {
    let ingest = Path::new(env!("CARGO_BIN_EXE_ingest"));
    ingest.with_file_name(stage)
}

pub const TOY_SCHEMA: &str = "\
name: toy
header: true
data:
  source: data/toy.csv
target:
  column: label
  benign: [normal]
columns:
  - {name: a, type: integer, allowed: [-1, 0, 1]}
  - {name: b, type: integer, min: 0, max: 100}
  - {name: c, type: float, nullable: true}
  - {name: label, type: categorical, role: target}
";

pub const TOY_PARAMS: &str = "\
dataset: toy
ingest:
  split: stratified
  test_size: 0.25
  seed: 7
validate:
  drift_alpha: 0.001
transform:
  impute: median
train:
  seed: 7
  cv_folds: 3
  metric: f1
  search: grid
  budget: 10
  space: small
  threshold: {policy: max_f1}
  spaces:
    small:
      families:
        logistic: {alpha: 0.1}
        gbm: {n_estimators: [20, 50], max_depth: 3}
evaluate:
  importance_top: 3
promote:
  rules:
    f1: {min: 0.5}
    roc_auc: {min: 0.5}
";

/// `n` rows of a learnable toy problem: attack when a + b/40 + c is large. Deterministic.
pub fn toy_csv(n: usize) -> String {
    toy_csv_with(n, 0x9e37_79b9_7f4a_7c15, 0.0)
}

/// Another sample of the same problem (`seed`), with feature `c` shifted by `shift_c`.
pub fn toy_csv_with(n: usize, seed: u64, shift_c: f64) -> String {
    let mut s = String::from("a,b,c,label\n");
    let mut state: u64 = seed;
    let mut next = move |m: u64| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    for _ in 0..n {
        let a = next(3) as i64 - 1;
        let b = next(101) as i64;
        let c = next(1000) as f64 / 500.0 - 1.0 + shift_c;
        let noise = next(100) as f64 / 100.0 - 0.5;
        let label = if a as f64 + b as f64 / 40.0 + c + noise > 1.5 { "attack" } else { "normal" };
        s.push_str(&format!("{a},{b},{c},{label}\n"));
    }
    s
}

pub struct Project {
    pub dir: TempDir,
}

impl Project {
    /// A project with the toy schema, params and a 400-row dataset.
    pub fn new() -> Self {
        let p = Project { dir: tempfile::tempdir().expect("temp dir") };
        p.write("schemas/toy.yaml", TOY_SCHEMA);
        p.write("params.yaml", TOY_PARAMS);
        p.write("data/toy.csv", toy_csv(400));
        p
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Replace `from` by `to` in a file; the text must be there.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, text.replacen(from, to, 1));
    }

    pub fn run(&self, stage: &str) -> Run {
        self.run_env(stage, &[])
    }

    /// Run a stage with extra environment variables.
    pub fn run_env(&self, stage: &str, env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(bin(stage));
        cmd.current_dir(self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run stage"))
    }

    pub fn run_all(&self) {
        for stage in STAGES {
            self.run(stage).success();
        }
    }

    /// A flat metrics file as (name, number) pairs.
    pub fn metrics(&self, rel: &str) -> serde_json::Map<String, serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(&self.read(rel)).unwrap();
        let obj = v.as_object().unwrap_or_else(|| panic!("{rel} is not a JSON object")).clone();
        for (k, v) in &obj {
            // The text values: which dataset the figures belong to, and a SQL snapshot's hashes.
            let text = k == "dataset" || k.ends_with("_sha256");
            assert!(v.is_number() || (text && v.is_string()), "{rel}: `{k}` is not a number: {v}");
        }
        obj
    }
}

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success\nstderr:\n{}", self.stderr);
        self
    }

    /// Failed with exit code 1, a message containing every `needle`, and no panic.
    pub fn fails_with(&self, needles: &[&str]) -> &Self {
        assert_eq!(self.code, Some(1), "expected exit code 1\nstderr:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "panicked:\n{}", self.stderr);
        for n in needles {
            assert!(self.stderr.contains(n), "stderr lacks {n:?}:\n{}", self.stderr);
        }
        self
    }
}

/// One way to run a program in the tests, like cargo's `Execs`: arguments, environment and
/// folder, then a [`Run`] whose status, stdout and stderr the test asserts.
pub struct Cmd(Command);

impl Cmd {
    pub fn new(program: impl AsRef<std::ffi::OsStr>) -> Cmd {
        Cmd(Command::new(program))
    }

    /// One of our binaries (`src/bin/<name>.rs`).
    pub fn bin(name: &str) -> Cmd {
        Cmd::new(bin(name))
    }

    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.0.arg(a);
        self
    }

    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, a: impl IntoIterator<Item = S>) -> Cmd {
        self.0.args(a);
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.0.env(k, v);
        self
    }

    pub fn dir(mut self, d: impl AsRef<Path>) -> Cmd {
        self.0.current_dir(d);
        self
    }

    pub fn run(mut self) -> Run {
        let program = self.0.get_program().to_string_lossy().into_owned();
        Run::from(self.0.output().unwrap_or_else(|e| panic!("cannot run {program}: {e}")))
    }

    /// Start it in the background (see [`Spawned`]).
    pub fn spawn(self) -> Spawned {
        Spawned::start(self.0)
    }
}

impl Run {
    /// Exited with `code`.
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit code {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(self.stdout.contains(needle), "stdout lacks {needle:?}:\n{}", self.stdout);
        self
    }

    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", self.stderr);
        self
    }

    pub fn stdout_lacks(&self, needle: &str) -> &Self {
        assert!(!self.stdout.contains(needle), "stdout has {needle:?}:\n{}", self.stdout);
        self
    }
}

/// A background process (a server, chromedriver, MLflow) in its OWN process group. Dropping it,
/// also while a failed test unwinds, kills the whole group: MLflow's launcher leaves uvicorn and
/// huey workers behind when only the launcher is killed. Its stderr is collected in the
/// background (a full pipe would block the child).
pub struct Spawned {
    child: Option<std::process::Child>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Spawned {
    fn start(mut cmd: Command) -> Spawned {
        use std::os::unix::process::CommandExt;
        let program = cmd.get_program().to_string_lossy().into_owned();
        cmd.process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, lines) = std::sync::mpsc::channel();
        let (pipe, sink) = (child.stderr.take().expect("piped"), stderr.clone());
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(pipe)).map_while(|l| l.ok()) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
        });
        Spawned { child: Some(child), stderr, lines }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Send a signal to the process itself (`HUP`, `TERM`).
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }

    /// The first stderr line containing `needle`, waiting up to `secs`.
    pub fn wait_for_line(&self, needle: &str, secs: u64) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line with {needle:?} within {secs} s; stderr:\n{}", self.stderr()),
            }
        }
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Send `sig`, wait for the exit: its status and everything written to stderr.
    pub fn stop(mut self, sig: &str) -> (std::process::ExitStatus, String) {
        self.signal(sig);
        let status = self.child.as_mut().expect("running").wait().unwrap();
        // Let the reader thread take the last lines.
        std::thread::sleep(std::time::Duration::from_millis(50));
        (status, self.stderr())
    }

    /// Processes left in this one's group (after it was dropped, there must be none).
    pub fn group_members(pgid: u32) -> Vec<u32> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            // Fields after the `(comm)`: state, ppid, pgrp, ... A zombie has exited already.
            let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
                found.push(pid);
            }
        }
        found
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The whole group: the process and everything it started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(std::process::Stdio::null())
                .status();
            let _ = child.wait();
        }
    }
}

/// A schema for synthetic Zeek conn.log files (the layout of `schemas/zeek_ctu50.yaml`).
pub const CONN_SCHEMA: &str = "\
name: conn
data:
  train: [data/conn-a.log, data/conn-b.log.gz]
  test: data/conn-test.log
target:
  column: label
  threat: [Malicious]
  benign: [Benign]
  ignore: [Background]
  detail: detailedlabel
derive: [zeek_conn]
columns:
  - {name: ts, type: float, role: id}
  - {name: uid, type: text, role: id}
  - {name: id.orig_h, type: text, role: id}
  - {name: id.orig_p, type: integer, role: input}
  - {name: id.resp_h, type: text, role: id}
  - {name: id.resp_p, type: integer}
  - {name: proto, type: categorical}
  - {name: service, type: categorical, role: input, nullable: true}
  - {name: duration, type: float, nullable: true}
  - {name: orig_bytes, type: integer, nullable: true}
  - {name: resp_bytes, type: integer, nullable: true}
  - {name: conn_state, type: categorical}
  - {name: local_orig, type: categorical, role: drop, nullable: true}
  - {name: local_resp, type: categorical, role: drop, nullable: true}
  - {name: missed_bytes, type: integer, nullable: true}
  - {name: history, type: text, role: input, nullable: true}
  - {name: orig_pkts, type: integer, nullable: true}
  - {name: orig_ip_bytes, type: integer, nullable: true}
  - {name: resp_pkts, type: integer, nullable: true}
  - {name: resp_ip_bytes, type: integer, nullable: true}
  - {name: tunnel_parents, type: text, role: drop, nullable: true}
  - {name: label, type: categorical, role: target}
  - {name: detailedlabel, type: categorical, role: drop, nullable: true}
";

/// The 23 fields of a labeled conn.log, and their Zeek types.
pub const CONN_FIELDS: [(&str, &str); 23] = [
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
    ("label", "string"),
    ("detailedlabel", "string"),
];

/// One conn.log record: its 23 fields as Zeek's TSV writes them (`-` unset, `(empty)`).
pub type Conn = Vec<String>;

/// `n` synthetic labeled connections: scans (Malicious), sessions (Benign), and unlabeled
/// Background; with noise, unset fields and a few odd ones. Deterministic in `seed`.
pub fn conn_log(n: usize, seed: u64) -> Vec<Conn> {
    let mut state = seed;
    let mut next = move |m: u64| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    (0..n)
        .map(|i| {
            let kind = next(10);
            let (label, detail) = match kind {
                0 => ("Background", "(empty)"),
                1..=5 => ("Malicious", "External-Attack-to-Device"),
                _ => ("Benign", "(empty)"),
            };
            let scan = label == "Malicious" && next(10) < 9 || label != "Malicious" && next(10) == 0;
            let ts = format!("{}.{:06}", 1_655_935_000 + i as u64 * 7, next(1_000_000));
            let uid = format!("C{seed:x}n{i}x{}", next(1 << 30));
            let orig_h = format!("10.{}.{}.{}", next(256), next(256), next(256));
            let resp_h = format!("147.32.83.{}", next(256));
            let (proto, resp_p) = match next(10) {
                0 => ("udp", [53, 123, 5353][next(3) as usize]),
                1 if scan => ("icmp", 0),
                _ if scan => ("tcp", [23, 22, 445, 5555, 32207, 8080][next(6) as usize]),
                _ => ("tcp", [443, 80, 443, 993][next(4) as usize]),
            };
            let orig_p = if proto == "icmp" { 8 } else { 1024 + next(64_000) };
            let (state_s, history, opk, rpk) = if scan {
                ("S0", "S".to_owned(), 1 + next(2), 0)
            } else {
                (
                    "SF",
                    ["ShADadFf", "ShADadfF", "ShADdaFf", "ShAdDaFfR"][next(4) as usize].to_owned(),
                    4 + next(30),
                    3 + next(40),
                )
            };
            let unset_duration = scan && next(3) == 0;
            let duration = if unset_duration { "-".into() } else { format!("{:.6}", next(5_000_000) as f64 / 1e6) };
            let (ob, rb) = if scan { (0, 0) } else { (next(5_000), 200 + next(100_000)) };
            let bytes = |b: u64| if unset_duration { "-".to_owned() } else { b.to_string() };
            let service = match (scan, resp_p) {
                (false, 443) => "ssl",
                (false, 80) => "http",
                (_, 53) => "dns",
                _ => "-",
            };
            let history = if next(20) == 0 { "-".to_owned() } else { history };
            vec![
                ts,
                uid,
                orig_h,
                orig_p.to_string(),
                resp_h,
                resp_p.to_string(),
                proto.into(),
                service.into(),
                duration,
                bytes(ob),
                bytes(rb),
                state_s.into(),
                if label == "Malicious" { "F" } else { "T" }.into(),
                "T".into(),
                "0".into(),
                history,
                opk.to_string(),
                (opk * 40 + ob).to_string(),
                rpk.to_string(),
                (rpk * 40 + rb).to_string(),
                "(empty)".into(),
                label.into(),
                detail.into(),
            ]
        })
        .collect()
}

/// How a conn.log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Zeek's TSV with its header lines.
    Tsv,
    /// Zeek's JSON: one object per line, unset fields left out, numbers as numbers.
    Json,
    /// IoT-23's: `tunnel_parents   label   detailedlabel` joined by three spaces.
    Iot23,
}

/// The TSV header lines of a conn.log (IoT-23 joins the last three names and types).
pub fn conn_header(dialect: Dialect) -> String {
    let join = |items: Vec<&str>| -> String {
        match dialect {
            Dialect::Iot23 => format!("{}\t{}", items[..20].join("\t"), items[20..].join("   ")),
            _ => items.join("\t"),
        }
    };
    format!(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2022-06-22-21-59-00\n#fields\t{}\n#types\t{}\n",
        join(CONN_FIELDS.iter().map(|f| f.0).collect()),
        join(CONN_FIELDS.iter().map(|f| f.1).collect()),
    )
}

/// One record as a line of the dialect (with its newline).
pub fn conn_line(row: &Conn, dialect: Dialect) -> String {
    match dialect {
        Dialect::Tsv => format!("{}\n", row.join("\t")),
        Dialect::Iot23 => format!("{}\t{}\n", row[..20].join("\t"), row[20..].join("   ")),
        Dialect::Json => {
            let mut obj = serde_json::Map::new();
            for ((name, kind), v) in CONN_FIELDS.iter().zip(row) {
                let value = match (*kind, v.as_str()) {
                    (_, "-") => continue,
                    ("set[string]", "(empty)") => serde_json::json!([]),
                    ("bool", b) => serde_json::json!(b == "T"),
                    ("count" | "port", n) => serde_json::json!(n.parse::<u64>().unwrap()),
                    ("time" | "interval", f) => serde_json::json!(f.parse::<f64>().unwrap()),
                    (_, "(empty)") => serde_json::json!(""),
                    (_, s) => serde_json::json!(s),
                };
                obj.insert(name.to_string(), value);
            }
            format!("{}\n", serde_json::Value::Object(obj))
        }
    }
}

/// A whole log: header (TSV dialects) and records.
pub fn conn_text(rows: &[Conn], dialect: Dialect) -> String {
    let mut s = if dialect == Dialect::Json { String::new() } else { conn_header(dialect) };
    for r in rows {
        s.push_str(&conn_line(r, dialect));
    }
    if dialect != Dialect::Json {
        s.push_str("#close\t2022-06-23-00-00-00\n");
    }
    s
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

impl Project {
    /// A project on synthetic conn.logs: train in two files (one gzip), test in a third.
    pub fn conn(dialect: Dialect) -> (Project, Vec<Conn>, Vec<Conn>) {
        let p = Project { dir: tempfile::tempdir().expect("temp dir") };
        p.write("schemas/conn.yaml", CONN_SCHEMA);
        p.write("params.yaml", TOY_PARAMS.replace("dataset: toy", "dataset: conn"));
        let train = conn_log(600, 11);
        let test = conn_log(200, 12);
        p.write("data/conn-a.log", conn_text(&train[..300], dialect));
        p.write("data/conn-b.log.gz", gzip(conn_text(&train[300..], dialect).as_bytes()));
        p.write("data/conn-test.log", conn_text(&test, dialect));
        (p, train, test)
    }
}
