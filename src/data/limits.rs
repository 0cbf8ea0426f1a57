//! What one input may cost: bytes after decompression, the length of a line, fields per row.
//! A gzip bomb, a line of a hundred million fields or a header of millions of columns is
//! refused with the file and line named, before it is held in memory.
//!
//! The limits are set once per process by the binary (`ingest` from `params.yaml`'s
//! `ingest.limits`, `predict` and `serve` from flags); [`get`] gives the defaults otherwise.

use std::io::{self, Read};
use std::sync::OnceLock;

/// Limits of one input (`ingest.limits` in params.yaml; each key optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputLimits {
    /// Bytes a gzip input may expand to.
    pub max_decompressed_bytes: u64,
    /// Bytes of one line (a CSV record, a Zeek or JSON Lines record, a header).
    pub max_line_bytes: usize,
    /// Fields of one row or header.
    pub max_fields: usize,
    /// How many times its compressed size a gzip input may expand to, once past 64 MiB (a
    /// gzip bomb expands hundreds of times; CSV and Zeek logs 5 to 30 times). 0: no limit.
    pub max_gzip_ratio: u64,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits { max_decompressed_bytes: 4 << 30, max_line_bytes: 1 << 20, max_fields: 4096, max_gzip_ratio: 100 }
    }
}

/// Bytes read so far through a [`Counted`] reader (shared with whoever checks a ratio).
pub type Count = std::sync::Arc<std::sync::atomic::AtomicU64>;

/// A reader that counts the bytes read through it (the compressed side of a gzip input).
pub struct Counted<R> {
    pub inner: R,
    pub count: Count,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

static LIMITS: OnceLock<InputLimits> = OnceLock::new();

/// Set this process's limits (the first call wins).
pub fn set(limits: InputLimits) {
    let _ = LIMITS.set(limits);
}

/// This process's limits.
pub fn get() -> InputLimits {
    LIMITS.get().copied().unwrap_or_default()
}

/// An input read through the limits: a line longer than `max_line_bytes`, or more than
/// `max_bytes` in all, is a read error naming the line and the limit.
pub struct Limited<R> {
    inner: R,
    max_line: usize,
    max_bytes: Option<u64>,
    /// The compressed bytes read so far, and the largest expansion allowed past 64 MiB.
    ratio: Option<(Count, u64)>,
    /// What the limit is called where the user sets it (for the message).
    knob: &'static str,
    total: u64,
    line: u64,
    since_newline: usize,
}

impl<R: Read> Limited<R> {
    /// Lines limited to `limits.max_line_bytes`; with `decompressed`, the whole input to
    /// `limits.max_decompressed_bytes`. `knob` names where the user raises the limits.
    pub fn new(inner: R, limits: InputLimits, decompressed: bool, knob: &'static str) -> Self {
        Limited {
            inner,
            max_line: limits.max_line_bytes,
            max_bytes: decompressed.then_some(limits.max_decompressed_bytes),
            ratio: None,
            knob,
            total: 0,
            line: 1,
            since_newline: 0,
        }
    }
}

impl<R: Read> Limited<R> {
    /// Also refuse an expansion past `max_ratio` times the compressed bytes `count` counts.
    pub fn with_ratio(mut self, count: Count, max_ratio: u64) -> Self {
        if max_ratio > 0 {
            self.ratio = Some((count, max_ratio));
        }
        self
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if let Some((count, max)) = &self.ratio {
            let packed = count.load(std::sync::atomic::Ordering::Relaxed).max(1);
            if self.total > 64 << 20 && self.total / packed > *max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "expands more than {max} times its compressed size ({} bytes from {packed} so far): a gzip bomb? (the limit; {})",
                        self.total, self.knob
                    ),
                ));
            }
        }
        if let Some(max) = self.max_bytes {
            if self.total > max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("decompresses to more than {max} bytes (the limit; {})", self.knob),
                ));
            }
        }
        let mut start = 0;
        for at in memchr::memchr_iter(b'\n', &buf[..n]) {
            if self.since_newline + (at - start) > self.max_line {
                return Err(self.too_long());
            }
            self.since_newline = 0;
            self.line += 1;
            start = at + 1;
        }
        self.since_newline += n - start;
        if self.since_newline > self.max_line {
            return Err(self.too_long());
        }
        Ok(n)
    }
}

impl<R> Limited<R> {
    fn too_long(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("line {} is longer than {} bytes (the limit; {})", self.line, self.max_line, self.knob),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8], limits: InputLimits, gz: bool) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Limited::new(text, limits, gz, "test").read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn lines_and_totals_are_bounded() {
        let l = InputLimits { max_decompressed_bytes: 10, max_line_bytes: 4, max_fields: 8, max_gzip_ratio: 0 };
        assert_eq!(
            read_all(b"abcd\nefgh\n", InputLimits { max_decompressed_bytes: 100, ..l }, true).unwrap().len(),
            10
        );
        let e = read_all(b"abcd\nabcde\n", l, false).unwrap_err().to_string();
        assert!(e.contains("line 2 is longer than 4 bytes"), "{e}");
        let e = read_all(b"ab\ncd\nef\ngh\n", l, true).unwrap_err().to_string();
        assert!(e.contains("more than 10 bytes"), "{e}");
        assert!(read_all(b"ab\ncd\nef\ngh\n", l, false).is_ok());
    }
}
