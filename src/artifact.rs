//! Writing stage outputs: always to a temporary file in the target folder, then renamed, so
//! an interrupted or failed stage never leaves a half-written artifact behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};

/// Write `path` whole or not at all: into a temporary file beside it (`.tmp-<pid>-*`), then
/// renamed over it. A file that was there keeps its permissions; a new one is 0644.
/// Temporary files that a killed run left in the folder (their process is gone) are removed.
pub fn atomic_write(path: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    remove_stale_temps(dir);
    let prefix = format!(".tmp-{}-", std::process::id());
    let mut tmp = tempfile::Builder::new().prefix(&prefix).tempfile_in(dir).map_err(|e| Error::io(dir, e))?;
    write(tmp.as_file_mut())?;
    tmp.as_file_mut().sync_all().map_err(|e| Error::io(path, e))?;
    // Temporary files are created private (0600); an artifact is an ordinary file, or keeps
    // the permissions of the file it replaces.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o644);
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode)).map_err(|e| Error::io(path, e))?;
    }
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Remove `.tmp-<pid>-*` files of `dir` whose process no longer runs (a run killed midway:
/// they can be as large as the output). Files of live processes, and any other name, stay.
pub fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(".tmp-")).and_then(|r| r.split('-').next()) else {
            continue;
        };
        let Ok(pid) = pid.parse::<i32>() else { continue };
        if pid <= 0 || pid as u32 == std::process::id() {
            continue;
        }
        // SAFETY: kill with signal 0 only asks whether the process exists.
        let gone =
            unsafe { libc::kill(pid, 0) } != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone && std::fs::remove_file(entry.path()).is_ok() {
            tracing::info!(file = %entry.path().display(), "removed a temporary file left by a killed run");
        }
    }
}

/// Where a command writes its result: stdout (`-`), a device or FIFO (written through, as
/// it is), or a file (written atomically, see [`atomic_write`]). A symbolic link is
/// followed only when `follow_symlinks` says so; otherwise it is refused, not replaced.
pub fn write_output(
    path: &Path,
    follow_symlinks: bool,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        write(&mut out)?;
        return out.flush().map_err(|e| Error::io(path, e));
    }
    let mut target = path.to_path_buf();
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_symlink() {
            if !follow_symlinks {
                return Err(Error::file(
                    path,
                    "is a symbolic link; refusing to replace it (pass --follow-symlinks to write to its target)",
                ));
            }
            target = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(meta) = std::fs::metadata(&target) {
            let t = meta.file_type();
            if t.is_char_device() || t.is_fifo() || t.is_block_device() || t.is_socket() {
                let mut file = std::fs::OpenOptions::new().write(true).open(&target).map_err(|e| Error::io(path, e))?;
                write(&mut file)?;
                return file.flush().map_err(|e| Error::io(path, e));
            }
            if meta.is_dir() {
                return Err(Error::file(path, "is a folder; name a file to write"));
            }
        }
    }
    atomic_write(&target, |f| write(f))
}

/// Pretty JSON with a trailing newline.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    atomic_write(path, |file| {
        let mut w = BufWriter::new(file);
        serde_json::to_writer_pretty(&mut w, value).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
        w.write_all(b"\n").and_then(|_| w.flush()).map_err(|e| Error::io(path, e))
    })
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&text).map_err(|e| Error::artifact(path, format!("not the expected JSON: {e}")))
}

/// Round to `digits` decimals: metrics files must not carry float noise into diffs.
pub fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}
