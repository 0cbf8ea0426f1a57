//! Opening a file, transparently decompressing gzip (detected by its magic bytes, not its name).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::limits::{Count, Counted, Limited};
use crate::error::{Error, Result};

/// The file's bytes, decompressed, through this process's input limits (see [`super::limits`]).
pub fn open(path: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
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
    let _ = open(path)?.take(n).read_to_end(&mut buf);
    Ok(buf)
}
