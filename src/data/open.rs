//! Opening a file, transparently decompressing gzip (detected by its magic bytes, not its name).
//! The path `-` is standard input.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;
use std::sync::OnceLock;

use flate2::read::MultiGzDecoder;

use super::limits::{Count, Counted, Limited};
use crate::error::{Error, Result};

/// The file's bytes, decompressed, through this process's input limits (see [`super::limits`]).
pub fn open(path: &Path) -> Result<Box<dyn Read>> {
    let file: Box<dyn Read> = if is_stdin(path) {
        Box::new(Cursor::new(stdin_head()).chain(std::io::stdin()))
    } else {
        Box::new(File::open(path).map_err(|e| Error::io(path, e))?)
    };
    decoded(path, file)
}

/// `file`'s bytes, gunzipped if they are gzip, through the input limits.
fn decoded(path: &Path, file: Box<dyn Read>) -> Result<Box<dyn Read>> {
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
    let limits = super::limits::get();
    const KNOB: &str = "`ingest.limits` in params.yaml, or --max-* flags of predict";
    if head.starts_with(&[0x1f, 0x8b]) {
        let count = Count::default();
        let packed = BufReader::with_capacity(1 << 16, Counted { inner: reader, count: count.clone() });
        let gz = Limited::new(MultiGzDecoder::new(packed), limits, true, KNOB).with_ratio(count, limits.max_gzip_ratio);
        Ok(Box::new(BufReader::with_capacity(1 << 16, gz)))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, Limited::new(reader, limits, false, KNOB))))
    }
}

/// The first `n` bytes of a file, decompressed (fewer if the file is shorter, or what could
/// be read of a damaged one: its reader reports the damage, with the row).
pub fn head(path: &Path, n: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    // Standard input is looked at within its kept head only: what follows is not consumed.
    let reader = if is_stdin(path) { decoded(path, Box::new(Cursor::new(stdin_head())))? } else { open(path)? };
    let _ = reader.take(n).read_to_end(&mut buf);
    Ok(buf)
}

/// Whether `path` names standard input (`-`).
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// How much of standard input is kept to be looked at (`head`) before it is read (`open`).
const STDIN_HEAD: u64 = 64 << 10;

/// The first bytes of standard input, read once: [`open`] replays them before the rest, so
/// `-` can be sniffed and then read like a file (once).
fn stdin_head() -> &'static [u8] {
    static HEAD: OnceLock<Vec<u8>> = OnceLock::new();
    HEAD.get_or_init(|| {
        let mut buf = Vec::new();
        // A read error shows again, with its context, when the rest is read.
        let _ = std::io::stdin().lock().take(STDIN_HEAD).read_to_end(&mut buf);
        buf
    })
}
