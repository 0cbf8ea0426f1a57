//! The audit log (`serve --audit-log DIR`): one JSON line per scored record, in rotating files.
//!
//! A line: `time` (RFC 3339, ms), `request_id` (the client's `X-Request-Id`, or one made up,
//! returned in the answer's `x-request-id`), `model_version`, the record's `id` (JSON) or `row`
//! (uploads), `score`, `label`, `reasons` when the request asked for explanations, and
//! `input_sha256`: the SHA-256 of the record's inputs, as a JSON array in the model's input
//! order (JSON records) or of the row's bytes (uploads). The raw inputs themselves only with
//! `--audit-inputs`.
//!
//! The response path only moves the request's records into a queue (a lock and a push: no
//! thread is woken per request); hashing, formatting and writing happen on the audit thread,
//! which drains the queue every 25 ms. The queue is bounded (2^20 records) and a full one
//! makes requests wait: an audit log that silently loses lines is no audit log. Files are
//! `audit-<unix seconds>-<n>.jsonl`, a new one past `--audit-max-bytes`; the oldest beyond
//! `--audit-keep` are deleted. On shutdown every queued line is written and flushed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::queue::{Batched, WhenFull};
use super::shadow::Owned;
use super::Loaded;
use crate::metrics::label;

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub dir: PathBuf,
    /// Also write each record's raw inputs.
    pub inputs: bool,
    /// A new file once the current one has this many bytes.
    pub max_bytes: u64,
    /// Files kept (the oldest beyond are deleted).
    pub keep: usize,
}

/// A request's scored records, as the audit thread needs them (moved, not copied, out of the
/// request).
pub struct Batch {
    pub time: SystemTime,
    pub request_id: String,
    pub records: Records,
}

pub enum Records {
    /// JSON records, answered by `models[lane]`; `raws[lane]` holds the raw inputs of that
    /// model's records, its inputs in order, record after record.
    Json { models: Vec<Arc<Loaded>>, raws: Vec<Vec<Owned>>, records: Vec<JsonRecord> },
    /// Rows of an upload, answered by one model.
    Rows { model_version: Arc<str>, threshold: f64, rows: Vec<Row> },
}

impl Records {
    fn len(&self) -> usize {
        match self {
            Records::Json { records, .. } => records.len(),
            Records::Rows { rows, .. } => rows.len(),
        }
    }
}

pub struct JsonRecord {
    pub lane: usize,
    /// Its place among its lane's records.
    pub at: usize,
    pub id: Option<Value>,
    pub score: f64,
    pub reasons: Option<Value>,
}

pub struct Row {
    pub line: u64,
    pub bytes: Vec<u8>,
    pub score: f64,
    pub reasons: Option<String>,
}

/// Records queued at most before a request waits for the writer.
const MAX_PENDING: usize = 1 << 20;
/// The writer drains the queue this often (or sooner, past `EARLY` records).
const TICK: std::time::Duration = std::time::Duration::from_millis(25);
const EARLY: usize = 16 * 1024;

pub struct Audit {
    queue: Arc<Batched<Batch>>,
    next_id: AtomicU64,
    started: u64,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Audit {
    /// Open the folder (created if missing) and start the writer.
    pub fn start(config: AuditConfig) -> std::io::Result<Audit> {
        std::fs::create_dir_all(&config.dir)?;
        let started = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut writer = Writer::open(config.clone(), started)?;
        let queue = Arc::new(Batched::new(MAX_PENDING, EARLY));
        let q = queue.clone();
        let thread = std::thread::Builder::new().name("audit".into()).spawn(move || writer.run(&q))?;
        Ok(Audit { queue, next_id: AtomicU64::new(0), started, thread: Mutex::new(Some(thread)) })
    }

    /// The request id: the client's `X-Request-Id` when it is a sane token, else a new one.
    pub fn request_id(&self, given: Option<&str>) -> String {
        match given {
            Some(g)
                if !g.is_empty()
                    && g.len() <= 128
                    && g.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')) =>
            {
                g.to_owned()
            }
            _ => format!("{:x}-{}", self.started, self.next_id.fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// Queue a request's records (waits while the queue is full).
    pub fn log(&self, batch: Batch) {
        let n = batch.records.len();
        if n > 0 && self.queue.push(batch, n, WhenFull::Wait).is_err() {
            tracing::error!("the audit log is closed: {n} records are not audited");
        }
    }

    /// Write and flush everything queued, and stop the writer.
    pub fn close(&self) {
        self.queue.close();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

struct Writer {
    config: AuditConfig,
    started: u64,
    seq: u64,
    file: BufWriter<File>,
    written: u64,
    line: Vec<u8>,
    scratch: Vec<u8>,
}

impl Writer {
    fn path(dir: &Path, started: u64, seq: u64) -> PathBuf {
        dir.join(format!("audit-{started}-{seq:06}.jsonl"))
    }

    fn open(config: AuditConfig, started: u64) -> std::io::Result<Writer> {
        let path = Writer::path(&config.dir, started, 0);
        let file = BufWriter::with_capacity(256 * 1024, File::create(&path)?);
        Ok(Writer { config, started, seq: 0, file, written: 0, line: Vec::with_capacity(512), scratch: Vec::new() })
    }

    fn run(&mut self, queue: &Batched<Batch>) {
        loop {
            let (batches, closed) = queue.drain(TICK);
            for b in &batches {
                if let Err(e) = self.write(b) {
                    tracing::error!("audit log {}: {e}", self.config.dir.display());
                }
            }
            if !batches.is_empty() || closed {
                if let Err(e) = self.file.flush() {
                    tracing::error!("audit log {}: {e}", self.config.dir.display());
                }
            }
            if closed {
                return;
            }
        }
    }

    fn write(&mut self, b: &Batch) -> std::io::Result<()> {
        let time = humantime::format_rfc3339_millis(b.time).to_string();
        let with_inputs = self.config.inputs;
        match &b.records {
            Records::Json { models, raws, records } => {
                for r in records {
                    let m = &models[r.lane];
                    let n = m.input_names.len();
                    let inputs = &raws[r.lane][r.at * n..(r.at + 1) * n];
                    self.scratch.clear();
                    // The canonical input: a JSON array of the values, in the model's input order.
                    self.scratch.push(b'[');
                    for (i, v) in inputs.iter().enumerate() {
                        if i > 0 {
                            self.scratch.push(b',');
                        }
                        owned_json(&mut self.scratch, v);
                    }
                    self.scratch.push(b']');
                    let l = head(
                        &mut self.line,
                        &self.scratch,
                        &time,
                        &b.request_id,
                        &m.version,
                        r.score,
                        m.bundle.threshold,
                    );
                    if let Some(id) = &r.id {
                        l.extend_from_slice(b",\"id\":");
                        json(l, id);
                    }
                    if with_inputs {
                        l.extend_from_slice(b",\"input\":{");
                        for (i, (name, v)) in m.input_names.iter().zip(inputs).enumerate() {
                            if i > 0 {
                                l.push(b',');
                            }
                            json(l, name.as_str());
                            l.push(b':');
                            owned_json(l, v);
                        }
                        l.push(b'}');
                    }
                    if let Some(reasons) = &r.reasons {
                        l.extend_from_slice(b",\"reasons\":");
                        json(l, reasons);
                    }
                    self.end()?;
                }
            }
            Records::Rows { model_version, threshold, rows } => {
                for r in rows {
                    self.scratch.clear();
                    self.scratch.extend_from_slice(trim_newline(&r.bytes));
                    let l =
                        head(&mut self.line, &self.scratch, &time, &b.request_id, model_version, r.score, *threshold);
                    l.extend_from_slice(b",\"row\":");
                    l.extend_from_slice(r.line.to_string().as_bytes());
                    if with_inputs {
                        l.extend_from_slice(b",\"input\":");
                        json(l, String::from_utf8_lossy(trim_newline(&r.bytes)).as_ref());
                    }
                    if let Some(reasons) = &r.reasons {
                        l.extend_from_slice(b",\"reasons\":");
                        json(l, reasons);
                    }
                    self.end()?;
                }
            }
        }
        Ok(())
    }
}

/// Start `l` with the fields every record has; `hashed` is the input the hash is of.
fn head<'l>(
    l: &'l mut Vec<u8>,
    hashed: &[u8],
    time: &str,
    request_id: &str,
    version: &str,
    score: f64,
    threshold: f64,
) -> &'l mut Vec<u8> {
    {
        l.clear();
        l.extend_from_slice(b"{\"time\":\"");
        l.extend_from_slice(time.as_bytes());
        l.extend_from_slice(b"\",\"request_id\":");
        json(l, request_id);
        l.extend_from_slice(b",\"model_version\":");
        json(l, version);
        l.extend_from_slice(b",\"score\":");
        json(l, &score);
        l.extend_from_slice(b",\"label\":\"");
        l.extend_from_slice(label(score, threshold).as_bytes());
        l.extend_from_slice(b"\",\"input_sha256\":\"");
        l.extend_from_slice(crate::schema::hex(&Sha256::digest(hashed)).as_bytes());
        l.push(b'"');
        l
    }
}

impl Writer {
    /// End the line and write it (into a new file past the size limit).
    fn end(&mut self) -> std::io::Result<()> {
        self.line.extend_from_slice(b"}\n");
        if self.written > 0 && self.written + self.line.len() as u64 > self.config.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&self.line)?;
        self.written += self.line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.seq += 1;
        let path = Writer::path(&self.config.dir, self.started, self.seq);
        self.file = BufWriter::with_capacity(256 * 1024, File::create(&path)?);
        self.written = 0;
        // Keep the newest `keep` files of the folder (names sort by start time, then number).
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.config.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
            })
            .collect();
        files.sort();
        let excess = files.len().saturating_sub(self.config.keep.max(1));
        for old in &files[..excess] {
            std::fs::remove_file(old)?;
        }
        Ok(())
    }
}

/// Append the JSON text of `v` (strings escaped as JSON requires).
fn json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    serde_json::to_writer(out, v).expect("JSON values serialize");
}

fn trim_newline(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

fn owned_json(out: &mut Vec<u8>, o: &Owned) {
    match o {
        Owned::Missing => out.extend_from_slice(b"null"),
        // Whole numbers (most inputs: counts, flags, ports) without the float formatter; the
        // text is the same as serde_json's ("1.0").
        Owned::Number(x) if x.fract() == 0.0 && x.abs() < 1e15 && !(*x == 0.0 && x.is_sign_negative()) => {
            out.extend_from_slice((*x as i64).to_string().as_bytes());
            out.extend_from_slice(b".0");
        }
        Owned::Number(x) => serde_json::to_writer(out, x).expect("a finite number"),
        Owned::Text(t) => serde_json::to_writer(out, &**t).expect("a string"),
    }
}
