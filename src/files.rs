//! Files that are either the old version or the new one, never half of either: every output
//! (checkpoints, history, downloads) goes through `write_atomic`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// A temporary name beside `path`, unique to this process and call:
/// `.<file name>.<pid>-<n>.partial`.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}-{n}.partial", std::process::id()))
}

/// Writes `data` to `path` through a temporary file in the same folder: written, flushed to disk,
/// renamed into place, and the folder synced. On any failure the temporary file is removed and
/// `path` is untouched.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    if path.is_dir() {
        return Err(Error::bad_file(
            path,
            "is a folder, cannot write a file there",
        ));
    }
    let tmp = temp_path(path);
    let result = (|| {
        // Errors name the file being written, not its temporary name.
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(path, e))?;
        f.write_all(data).map_err(|e| Error::io(path, e))?;
        f.sync_all().map_err(|e| Error::io(path, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // The rename is durable once the folder's entry is on disk (best effort: not every
    // platform can open a folder for syncing).
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Creates `dir` (and its parents) and checks a file can be written in it, so that an unusable
/// output folder is found before any work, not after it.
pub fn ensure_writable_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::bad_file(
            dir,
            "is a file, expected a folder for the output",
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::bad_file(
            dir,
            format!("cannot create this folder for the output: {e}"),
        )
    })?;
    let probe = temp_path(&dir.join("write-test"));
    let written = std::fs::File::create(&probe)
        .and_then(|mut f| f.write_all(b"ok").and_then(|_| f.sync_all()));
    let _ = std::fs::remove_file(&probe);
    written.map_err(|e| Error::bad_file(dir, format!("cannot write in this folder: {e}")))
}

/// Removes temporary files that `write_atomic` left in `dir` when its process was killed (the
/// process no longer exists; where that cannot be known, nothing is removed). Returns how many.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return 0;
    }
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name
            .strip_suffix(".partial")
            .filter(|_| name.starts_with('.'))
        else {
            continue;
        };
        let pid = stem
            .rsplit('.')
            .next()
            .and_then(|t| t.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id()
                && !proc.join(pid.to_string()).exists()
                && std::fs::remove_file(e.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}
