//! `predict --follow`: score a Zeek log as Zeek appends to it, one JSON line per verdict.
//!
//! The log is polled: new complete lines are parsed, scored as one block, and written (then
//! flushed) before the next poll. A line still being written waits for its end. Rotation is
//! followed: when the path names another file (Zeek renamed the log and opened a new one),
//! the old file is read to its end first, then the new one from its start, with its own
//! header; a file that shrinks (truncated in place) is read again from its start. A malformed
//! line is reported on stderr (file, line, field) and skipped: one bad line must not stop a
//! sensor's scoring. Each line is scored once.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::zeek::ZeekBatch;
use super::Loaded;
use crate::data::zeek::ZeekParser;
use crate::error::{Error, Result};

/// What a follow session did.
#[derive(Debug, Default, Clone, Copy)]
pub struct FollowSummary {
    pub scored: u64,
    pub threats: u64,
    pub rejected: u64,
    pub rotations: u64,
}

/// One opened log: its handle, identity, parser, the partial line at its end.
struct Log {
    file: File,
    ino: (u64, u64),
    offset: u64,
    parser: ZeekParser,
    partial: Vec<u8>,
    line: u64,
}

impl Log {
    fn open(path: &Path) -> std::io::Result<Log> {
        let file = File::open(path)?;
        let m = file.metadata()?;
        Ok(Log { file, ino: (m.dev(), m.ino()), offset: 0, parser: ZeekParser::new(), partial: Vec::new(), line: 0 })
    }
}

/// Follow `path` until `stop` is set, writing verdicts to `out`.
pub fn follow(
    model: &Loaded,
    path: &Path,
    out: &mut dyn Write,
    poll: Duration,
    stop: &AtomicBool,
) -> Result<FollowSummary> {
    let mut summary = FollowSummary::default();
    let mut log = loop {
        match Log::open(path) {
            Ok(l) => break l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !stop.load(Ordering::Relaxed) => {
                std::thread::sleep(poll)
            }
            Err(e) => return Err(Error::io(path, e)),
        }
    };
    tracing::info!(log = %path.display(), version = %model.version, "following");
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = drain(&mut log, &mut buf, model, path, out, &mut summary)?;
        if n > 0 {
            continue;
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // At the end of the file: rotated, truncated, or just quiet?
        match std::fs::metadata(path) {
            Ok(m) if (m.dev(), m.ino()) != log.ino => {
                // Renamed away: whatever was written to the old file before the new one
                // appeared is read first; a last line without its end is taken as complete.
                drain(&mut log, &mut buf, model, path, out, &mut summary)?;
                if !log.partial.is_empty() {
                    log.partial.push(b'\n');
                    let tail = std::mem::take(&mut log.partial);
                    lines(&mut log, &tail, model, path, out, &mut summary)?;
                }
                match Log::open(path) {
                    Ok(l) => {
                        log = l;
                        summary.rotations += 1;
                        tracing::info!(log = %path.display(), "log rotated: reading the new file");
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(path, e)),
                }
            }
            Ok(m) if m.len() < log.offset => {
                tracing::info!(log = %path.display(), "log truncated: reading it from the start");
                log.file.seek(SeekFrom::Start(0)).map_err(|e| Error::io(path, e))?;
                log.offset = 0;
                log.partial.clear();
                log.parser = ZeekParser::new();
                log.line = 0;
                continue;
            }
            _ => {}
        }
        std::thread::sleep(poll);
    }
    Ok(summary)
}

/// Read what the file has now and score its complete lines; the bytes read.
fn drain(
    log: &mut Log,
    buf: &mut [u8],
    model: &Loaded,
    path: &Path,
    out: &mut dyn Write,
    summary: &mut FollowSummary,
) -> Result<usize> {
    let n = log.file.read(buf).map_err(|e| Error::io(path, e))?;
    if n == 0 {
        return Ok(0);
    }
    log.offset += n as u64;
    let mut data = std::mem::take(&mut log.partial);
    data.extend_from_slice(&buf[..n]);
    let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    log.partial = data[complete..].to_vec();
    lines(log, &data[..complete], model, path, out, summary)?;
    Ok(n)
}

/// Parse, score and write complete lines.
fn lines(
    log: &mut Log,
    data: &[u8],
    model: &Loaded,
    path: &Path,
    out: &mut dyn Write,
    summary: &mut FollowSummary,
) -> Result<()> {
    let mut batch = ZeekBatch::new(model);
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            log.line += 1;
            continue;
        }
        log.line += 1;
        let at = log.line;
        let pushed = log.parser.line(line, at).and_then(|record| match record {
            true => batch.push(&log.parser, at),
            false => Ok(()),
        });
        if let Err(e) = pushed {
            summary.rejected += 1;
            tracing::warn!("{}", crate::data::csv_error(path, e));
        }
    }
    // `split` yields an empty piece after the final newline, counted above as a line.
    log.line -= u64::from(data.ends_with(b"\n"));
    if batch.is_empty() {
        return Ok(());
    }
    let columns = batch.id_columns();
    let (scores, kept, _) = batch.score();
    let t = model.bundle.threshold;
    for (r, s) in scores.iter().enumerate() {
        let mut obj = serde_json::Map::new();
        for (c, v) in columns.iter().zip(kept.row(r)) {
            obj.insert(c.clone(), serde_json::Value::String(v.to_owned()));
        }
        obj.insert("threat_score".into(), serde_json::json!(crate::artifact::round(*s, 6)));
        obj.insert("prediction".into(), serde_json::Value::String(crate::metrics::label(*s, t).into()));
        obj.insert("model_version".into(), serde_json::Value::String(model.version.clone()));
        let mut line = serde_json::to_vec(&obj).expect("a map serializes");
        line.push(b'\n');
        out.write_all(&line).map_err(|e| Error::io(Path::new("<output>"), e))?;
        summary.scored += 1;
        summary.threats += u64::from(crate::metrics::is_threat(*s, t));
    }
    out.flush().map_err(|e| Error::io(Path::new("<output>"), e))
}
