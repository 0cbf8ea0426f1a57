//! The audit log (`serve --audit-log DIR`): one JSON line per scored record, in rotating files.
//!
//! A line: `time` (RFC 3339, ms), `request_id` (the client's `X-Request-Id`, or one made up,
//! returned in the answer's `x-request-id`), `model_version`, the record's `id` (JSON) or `row`
//! (uploads), `score`, `label`, `reasons` when the request asked for explanations, and
//! `input_sha256`: the SHA-256 of the record's inputs, as a JSON array in the model's input
//! order (JSON records) or of the row's bytes (uploads). The raw inputs themselves only with
//! `--audit-inputs`.
//!
//! The response path only moves the request's records into a queue; hashing, formatting and
//! writing happen on the audit thread. The queue is bounded and a full one makes requests wait:
//! an audit log that silently loses lines is no audit log. Files are
//! `audit-<unix seconds>-<n>.jsonl`, a new one past `--audit-max-bytes`; the oldest beyond
//! `--audit-keep` are deleted. On shutdown every queued line is written and flushed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::shadow::Owned;
use crate::metrics::label;

/// Requests waiting for the audit thread, at most.
const QUEUE: usize = 16 * 1024;

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

/// What identifies a record in its request.
pub enum Key {
    /// A JSON record: its `id` (if any) and raw inputs, in the model's input order.
    Record { id: Option<Value>, inputs: Vec<Owned> },
    /// A row of an upload: its line, and its bytes.
    Row { line: u64, bytes: Vec<u8> },
}

/// One scored record.
pub struct Entry {
    pub key: Key,
    pub model_version: std::sync::Arc<str>,
    pub score: f64,
    pub threshold: f64,
    pub reasons: Option<Value>,
}

/// A request's records, with its id and the names of the model's inputs (for `--audit-inputs`).
pub struct Batch {
    pub time: SystemTime,
    pub request_id: String,
    pub input_names: std::sync::Arc<[String]>,
    pub entries: Vec<Entry>,
}

enum Msg {
    Batch(Batch),
    Close(std::sync::mpsc::Sender<()>),
}

pub struct Audit {
    tx: SyncSender<Msg>,
    pub inputs: bool,
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
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new().name("audit".into()).spawn(move || writer.run(rx))?;
        Ok(Audit { tx, inputs: config.inputs, next_id: AtomicU64::new(0), started, thread: Mutex::new(Some(thread)) })
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
        if !batch.entries.is_empty() && self.tx.send(Msg::Batch(batch)).is_err() {
            tracing::error!("the audit log's writer has stopped: records are not audited");
        }
    }

    /// Write and flush everything queued, and stop the writer.
    pub fn close(&self) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.tx.send(Msg::Close(done)).is_ok() {
            let _ = wait.recv();
        }
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
}

impl Writer {
    fn path(dir: &Path, started: u64, seq: u64) -> PathBuf {
        dir.join(format!("audit-{started}-{seq:06}.jsonl"))
    }

    fn open(config: AuditConfig, started: u64) -> std::io::Result<Writer> {
        let path = Writer::path(&config.dir, started, 0);
        let file = BufWriter::with_capacity(256 * 1024, File::create(&path)?);
        Ok(Writer { config, started, seq: 0, file, written: 0, line: Vec::with_capacity(512) })
    }

    fn run(&mut self, rx: Receiver<Msg>) {
        loop {
            // Write what is queued; flush when the queue runs dry (a quiet server's lines
            // reach the disk at once, a busy one's in large writes).
            let msg = match rx.try_recv() {
                Ok(m) => m,
                Err(_) => {
                    self.flush();
                    match rx.recv() {
                        Ok(m) => m,
                        Err(_) => return self.flush(),
                    }
                }
            };
            match msg {
                Msg::Batch(b) => {
                    if let Err(e) = self.write(&b) {
                        tracing::error!("audit log {}: {e}", self.config.dir.display());
                    }
                }
                Msg::Close(done) => {
                    self.flush();
                    let _ = done.send(());
                    return;
                }
            }
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.file.flush() {
            tracing::error!("audit log {}: {e}", self.config.dir.display());
        }
    }

    fn write(&mut self, b: &Batch) -> std::io::Result<()> {
        let time = humantime::format_rfc3339_millis(b.time).to_string();
        for e in &b.entries {
            let mut line = json!({
                "time": time,
                "request_id": b.request_id,
                "model_version": &*e.model_version,
                "score": e.score,
                "label": label(e.score, e.threshold),
            });
            match &e.key {
                Key::Record { id, inputs } => {
                    if let Some(id) = id {
                        line["id"] = id.clone();
                    }
                    let values: Vec<Value> = inputs.iter().map(owned_json).collect();
                    let canonical = serde_json::to_vec(&values).expect("JSON values serialize");
                    line["input_sha256"] = crate::schema::hex(&Sha256::digest(&canonical)).into();
                    if self.config.inputs {
                        let named: serde_json::Map<String, Value> = b.input_names.iter().cloned().zip(values).collect();
                        line["input"] = Value::Object(named);
                    }
                }
                Key::Row { line: at, bytes } => {
                    line["row"] = (*at).into();
                    let row = trim_newline(bytes);
                    line["input_sha256"] = crate::schema::hex(&Sha256::digest(row)).into();
                    if self.config.inputs {
                        line["input"] = String::from_utf8_lossy(row).into_owned().into();
                    }
                }
            }
            if let Some(r) = &e.reasons {
                line["reasons"] = r.clone();
            }
            self.line.clear();
            serde_json::to_writer(&mut self.line, &line).expect("JSON values serialize");
            self.line.push(b'\n');
            if self.written > 0 && self.written + self.line.len() as u64 > self.config.max_bytes {
                self.rotate()?;
            }
            self.file.write_all(&self.line)?;
            self.written += self.line.len() as u64;
        }
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

fn trim_newline(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

fn owned_json(o: &Owned) -> Value {
    match o {
        Owned::Missing => Value::Null,
        Owned::Number(x) => json!(x),
        Owned::Text(t) => Value::String(t.to_string()),
    }
}
