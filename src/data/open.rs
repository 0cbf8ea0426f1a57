//! Opening a file, transparently decompressing gzip (detected by its magic bytes, not its name).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};

pub fn open(path: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(reader))))
    } else {
        Ok(Box::new(reader))
    }
}

/// The first `n` bytes of a file, decompressed (fewer if the file is shorter, or what could
/// be read of a damaged one: its reader reports the damage, with the row).
pub fn head(path: &Path, n: u64) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let _ = open(path)?.take(n).read_to_end(&mut buf);
    Ok(buf)
}
