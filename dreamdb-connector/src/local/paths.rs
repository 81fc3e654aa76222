//! Mapping keys to paths under the root, refusing symbolic links.
//!
//! Key `a/b/c` is the file `<root>/a/b/c`. Key validation ([`ObjectKey`])
//! already rules out `..`, absolute paths and empty segments; this module adds
//! the two rules that depend on the filesystem:
//!
//! - the first segment `.dreamdb-internal` is reserved for the backend's own
//!   state, and
//! - no path component under the root may be a symbolic link. Each
//!   component is examined with `lstat` before use, so a link planted inside
//!   the root (for instance one pointing at `/etc`) makes every operation
//!   through it fail with [`ConnectorError::UnsafePath`] instead of reaching
//!   outside the root. (A link swapped in *between* the check and the use is
//!   not caught; the root is assumed not to be shared with an adversary.)

use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};

use crate::{ConnectorError, KeyError, ObjectKey};

/// The directory under the root holding temporary files and lock files.
pub(super) const INTERNAL_DIR: &str = ".dreamdb-internal";

/// How often directory creation is retried when a concurrent delete removes
/// an empty parent directory under our feet.
const DIR_RETRIES: usize = 16;

/// Maps an I/O error on `path` to [`ConnectorError::Io`].
pub(super) fn io_error(path: &Path, source: io::Error) -> ConnectorError {
    ConnectorError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Refuses a full key (root prefix included) whose first segment is the
/// internal directory, or a listing prefix that reaches inside it.
pub(super) fn check_not_internal(full: &str, is_prefix: bool) -> Result<(), ConnectorError> {
    let reserved = if is_prefix {
        full.strip_prefix(INTERNAL_DIR)
            .is_some_and(|rest| rest.starts_with('/'))
    } else {
        full.split('/').next() == Some(INTERNAL_DIR)
    };
    if reserved {
        return Err(ConnectorError::InvalidKey(KeyError {
            key: full.to_owned(),
            reason: "the first segment .dreamdb-internal is reserved by the local backend",
        }));
    }
    Ok(())
}

/// The path of full key `full` under `root`, after the reserved-name check.
pub(super) fn key_path(root: &Path, full: &ObjectKey) -> Result<PathBuf, ConnectorError> {
    check_not_internal(full.as_str(), false)?;
    let mut path = root.to_path_buf();
    path.extend(full.as_str().split('/'));
    Ok(path)
}

fn symlink_refused(path: &Path) -> ConnectorError {
    ConnectorError::UnsafePath {
        path: path.display().to_string(),
        reason: "it is a symbolic link, which the local backend never follows",
    }
}

/// Looks up the `/`-separated relative path `rel` under `root` without
/// following links. Returns the last component's metadata, or `None` if the
/// path does not exist (including when an intermediate component is a file).
/// Any component that is a symbolic link is an error.
pub(super) fn lookup(root: &Path, rel: &str) -> Result<Option<Metadata>, ConnectorError> {
    let segments: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
    let mut path = root.to_path_buf();
    let mut found = None;
    for (index, segment) in segments.iter().enumerate() {
        path.push(segment);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(err) if missing(&err) => return Ok(None),
            Err(err) => return Err(io_error(&path, err)),
        };
        if meta.file_type().is_symlink() {
            return Err(symlink_refused(&path));
        }
        let last = index + 1 == segments.len();
        if !last && !meta.is_dir() {
            return Ok(None);
        }
        found = Some(meta);
    }
    Ok(found)
}

/// Whether an error means "no such file" (including a file where a
/// directory was expected).
pub(super) fn missing(err: &io::Error) -> bool {
    // ENOTDIR has no stable ErrorKind on the MSRV; 20 is its value on
    // Linux and the BSDs.
    err.kind() == io::ErrorKind::NotFound || (cfg!(unix) && err.raw_os_error() == Some(20))
}

/// Creates the parent directories of full key `full` under `root`, one
/// component at a time, refusing symbolic links and keys whose parent is an
/// object. New directories are made durable by syncing their parent.
pub(super) fn ensure_parent_dirs(root: &Path, full: &ObjectKey) -> Result<(), ConnectorError> {
    let segments: Vec<&str> = full.as_str().split('/').collect();
    let parents = &segments[..segments.len().saturating_sub(1)];
    'retry: for _ in 0..DIR_RETRIES {
        let mut path = root.to_path_buf();
        for segment in parents {
            let parent = path.clone();
            path.push(segment);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => return Err(symlink_refused(&path)),
                Ok(meta) if meta.is_dir() => continue,
                Ok(_) => {
                    return Err(ConnectorError::UnsafePath {
                        path: path.display().to_string(),
                        reason: "an object is stored where this key needs a directory",
                    })
                }
                Err(err) if missing(&err) => {}
                Err(err) => return Err(io_error(&path, err)),
            }
            match std::fs::create_dir(&path) {
                Ok(()) => sync_dir(&parent)?,
                // Someone else made it: examine it again.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue 'retry,
                // A concurrent delete removed an empty parent: start over.
                Err(err) if missing(&err) => continue 'retry,
                Err(err) => return Err(io_error(&path, err)),
            }
        }
        return Ok(());
    }
    Err(io_error(
        root,
        io::Error::other(format!(
            "could not create the directories of {full}: they kept disappearing"
        )),
    ))
}

/// Removes the now-empty parent directories of `full` (never the root),
/// stopping at the first one that is not empty. Best effort.
pub(super) fn remove_empty_parents(root: &Path, full: &ObjectKey) {
    let segments: Vec<&str> = full.as_str().split('/').collect();
    for depth in (1..segments.len()).rev() {
        let mut dir = root.to_path_buf();
        dir.extend(&segments[..depth]);
        if std::fs::remove_dir(&dir).is_err() {
            break;
        }
    }
}

/// Makes a directory's entries durable (`fsync` on the directory). A no-op
/// where directories cannot be opened as files.
pub(super) fn sync_dir(dir: &Path) -> Result<(), ConnectorError> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .and_then(|handle| handle.sync_all())
            .map_err(|err| io_error(dir, err))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
