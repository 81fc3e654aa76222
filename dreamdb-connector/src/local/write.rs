//! Atomic publish: temporary files, per-key locks and versions.
//!
//! Every write first goes to a fresh temporary file in
//! `<root>/.dreamdb-internal/tmp/` (the same filesystem as the objects), is
//! `fsync`ed, and is then published in one atomic step: `rename` for
//! overwrites and updates, `hard_link` for creates (which fails if the key
//! exists, so even a writer that bypassed the lock could not clobber it).
//! Readers therefore see either the old object or the new one, never a
//! partial write. A writer that crashes leaves at most a temporary file
//! behind; those are never listed and are harmless (delete them at leisure
//! when no writer is running).
//!
//! Every mutation of a key (overwrite, create, update, delete) holds an
//! exclusive OS lock (`flock` via fs4) on `<root>/.dreamdb-internal/locks/
//! <hex BLAKE3 of the key>` while it checks and publishes, so an update's
//! "compare" and its "swap" cannot interleave with another process's write
//! or delete of the same key. The lock file is removed by its holder before
//! unlocking; a waiter that then gets the lock on the removed file notices
//! that the path no longer names its file and tries again, so lock files do
//! not pile up.
//!
//! A version is `<inode>-<mtime ns>-<size>` in hex. Each write publishes a
//! new file (a new inode while the old one is still linked), and its mtime
//! is set explicitly from the nanosecond clock rather than the kernel's
//! coarse write timestamp, so a recycled inode cannot reproduce an old
//! version unless the filesystem truncates timestamps to coarse units.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use fs4::fs_std::FileExt;

use super::paths::io_error;
use crate::{ConnectorError, ObjectKey, Version};

/// Counter making temporary file names unique within the process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How often lock acquisition is retried after finding the lock file gone.
const LOCK_RETRIES: usize = 1000;

/// The version of a stored object, from its metadata.
pub(super) fn version_of(meta: &Metadata) -> Version {
    let inode = inode_of(meta);
    let mtime = meta
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map(|since| since.as_nanos())
        .unwrap_or(0);
    Version::new(format!("{inode:x}-{mtime:x}-{:x}", meta.len()))
}

#[cfg(unix)]
fn inode_of(meta: &Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode_of(_meta: &Metadata) -> u64 {
    0
}

/// A written, synced temporary file; removed on drop unless it was renamed
/// into place.
pub(super) struct TmpFile {
    path: PathBuf,
    meta: Metadata,
    keep: bool,
}

impl TmpFile {
    /// Writes `bytes` to a new temporary file in `dir`, stamps its mtime
    /// with the current time and syncs it.
    pub(super) fn write(dir: &Path, bytes: &[u8]) -> Result<TmpFile, ConnectorError> {
        let name = format!(
            "{}-{}-{:016x}.tmp",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed),
            rand::random::<u64>()
        );
        let path = dir.join(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|err| io_error(&path, err))?;
        let written = (|| {
            file.write_all(bytes)?;
            file.set_modified(SystemTime::now())?;
            file.sync_all()?;
            file.metadata()
        })();
        match written {
            Ok(meta) => Ok(TmpFile {
                path,
                meta,
                keep: false,
            }),
            Err(err) => {
                let _ = std::fs::remove_file(&path);
                Err(io_error(&path, err))
            }
        }
    }

    /// The temporary file's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The version the object will have once published (renames and hard
    /// links keep the inode and mtime).
    pub(super) fn version(&self) -> Version {
        version_of(&self.meta)
    }

    /// Marks the file as moved into place: do not remove it on drop.
    pub(super) fn published(mut self) {
        self.keep = true;
    }
}

impl Drop for TmpFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// An exclusive lock on one key, held until dropped.
pub(super) struct KeyLock {
    path: PathBuf,
    // Closing the file releases the lock; it must outlive the unlink in
    // `drop`, which runs before the fields are dropped.
    _file: File,
}

impl KeyLock {
    /// Blocks until this process holds the lock of `full` in `locks_dir`.
    pub(super) fn acquire(locks_dir: &Path, full: &ObjectKey) -> Result<KeyLock, ConnectorError> {
        let name = hex::encode(blake3::hash(full.as_str().as_bytes()).as_bytes());
        let path = locks_dir.join(name);
        for _ in 0..LOCK_RETRIES {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|err| io_error(&path, err))?;
            FileExt::lock_exclusive(&file).map_err(|err| io_error(&path, err))?;
            if still_linked(&file, &path)? {
                return Ok(KeyLock { path, _file: file });
            }
            // The previous holder removed the file after we opened it: the
            // lock we hold is on an orphan. Try again with a fresh file.
        }
        Err(io_error(
            &path,
            io::Error::other("could not take the key lock: the lock file kept disappearing"),
        ))
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        // Remove the lock file while still holding the lock (see the module
        // docs); waiters on the removed file will retry.
        if cfg!(unix) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `path` still names the open `file`.
#[cfg(unix)]
fn still_linked(file: &File, path: &Path) -> Result<bool, ConnectorError> {
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata().map_err(|err| io_error(path, err))?;
    match std::fs::metadata(path) {
        Ok(current) => Ok(current.ino() == held.ino() && current.dev() == held.dev()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(io_error(path, err)),
    }
}

/// Lock files are never removed where open files cannot be unlinked, so the
/// path always names the file.
#[cfg(not(unix))]
fn still_linked(_file: &File, _path: &Path) -> Result<bool, ConnectorError> {
    Ok(true)
}
