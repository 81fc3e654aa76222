//! The local-directory backend: a plain path or `file://` URL, DreamDB's
//! embedded default.
//!
//! Key `a/b/c` is the file `<root>/a/b/c`. The backend keeps its own state
//! (temporary files, lock files) under `<root>/.dreamdb-internal/`; keys
//! whose first segment is `.dreamdb-internal` are refused and that directory
//! is never listed. Symbolic links under the root are never followed: any
//! operation whose path crosses one fails (see the `paths` module).
//!
//! Writes are atomic and durable (temporary file, `fsync`, `rename` or
//! `hard_link`, `fsync` of the directory), and conditional writes are atomic
//! across threads *and processes* sharing the root, through per-key OS file
//! locks (see the `write` module). A writer that crashes leaves at most a
//! temporary file in `.dreamdb-internal/tmp/`, which is never listed and is
//! safe to delete when no writer runs. Deletes are atomic but not synced to
//! disk (a crash right after one may bring the object back). Listings walk
//! the tree lazily in key order (see the `list` module). All blocking
//! filesystem work runs on Tokio's blocking pool.
//!
//! Limitations that come from the filesystem: a key cannot also be a
//! "directory" of other keys (`a` and `a/b` cannot both exist; the second
//! write fails with [`ConnectorError::UnsafePath`]); empty parent
//! directories are removed on delete, best effort; cross-process atomicity
//! relies on `flock` and hard links, so network filesystems without them
//! are not supported.

mod list;
mod paths;
mod write;

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use self::paths::{
    ensure_parent_dirs, io_error, key_path, lookup, missing, remove_empty_parents, sync_dir,
    INTERNAL_DIR,
};
use self::write::{version_of, KeyLock, TmpFile};
use crate::{
    ByteRange, Connector, ConnectorError, GetResult, KeyPrefix, ListStream, ObjectKey, ObjectMeta,
    PutMode, PutOutcome,
};

/// Objects at most this large are read on the caller's thread (see
/// `Connector::get` of [`LocalConnector`]).
const INLINE_READ_BYTES: u64 = 16 * 1024;

/// How often a publish is retried when a concurrent delete removed the
/// (empty) parent directory between creating it and publishing.
const PUBLISH_RETRIES: usize = 16;

/// A [`Connector`] storing objects as files under a root directory.
/// Cloning is cheap and shares nothing mutable.
#[derive(Debug, Clone)]
pub struct LocalConnector {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The canonical root directory.
    root: PathBuf,
    /// The root prefix applied to every key.
    prefix: KeyPrefix,
    /// `<root>/.dreamdb-internal/tmp`.
    tmp_dir: PathBuf,
    /// `<root>/.dreamdb-internal/locks`.
    locks_dir: PathBuf,
}

impl LocalConnector {
    /// Opens the store rooted at `root`, creating the directory (and the
    /// backend's internal directories) if missing. The root itself may be
    /// reached through a symbolic link; it is resolved once, here.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ConnectorError> {
        let given: PathBuf = root.into();
        std::fs::create_dir_all(&given).map_err(|err| io_error(&given, err))?;
        let root = given.canonicalize().map_err(|err| io_error(&given, err))?;
        let internal = root.join(INTERNAL_DIR);
        let tmp_dir = internal.join("tmp");
        let locks_dir = internal.join("locks");
        for dir in [&tmp_dir, &locks_dir] {
            std::fs::create_dir_all(dir).map_err(|err| io_error(dir, err))?;
        }
        Ok(LocalConnector {
            inner: Arc::new(Inner {
                root,
                prefix: KeyPrefix::all(),
                tmp_dir,
                locks_dir,
            }),
        })
    }

    /// This store seen through a root prefix: every key is stored under
    /// `prefix` (nested under any prefix already set), and listings strip it.
    pub fn with_prefix(self, prefix: KeyPrefix) -> Self {
        let inner = &self.inner;
        LocalConnector {
            inner: Arc::new(Inner {
                root: inner.root.clone(),
                prefix: prefix.under(&inner.prefix),
                tmp_dir: inner.tmp_dir.clone(),
                locks_dir: inner.locks_dir.clone(),
            }),
        }
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The root prefix (empty if none).
    pub fn prefix(&self) -> &KeyPrefix {
        &self.inner.prefix
    }

    /// Runs `work` on the blocking pool with the shared state.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, ConnectorError> + Send + 'static,
    ) -> Result<T, ConnectorError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|err| io_error(&self.inner.root, io::Error::other(err.to_string())))?
    }
}

impl Inner {
    fn describe(&self) -> String {
        if self.prefix.as_str().is_empty() {
            format!("file://{}", self.root.display())
        } else {
            format!("file://{} (prefix {})", self.root.display(), self.prefix)
        }
    }

    fn not_found(&self, key: &ObjectKey) -> ConnectorError {
        ConnectorError::NotFound {
            backend: self.describe(),
            key: key.to_string(),
        }
    }

    /// Opens the object file of `key` for reading, refusing links, with its
    /// metadata taken from the open handle (consistent with its bytes even
    /// if the key is replaced meanwhile).
    fn open_object(
        &self,
        key: &ObjectKey,
    ) -> Result<(std::fs::File, std::fs::Metadata, PathBuf), ConnectorError> {
        let full = key.under(&self.prefix);
        let path = key_path(&self.root, &full)?;
        match lookup(&self.root, full.as_str())? {
            Some(meta) if meta.is_file() => {}
            _ => return Err(self.not_found(key)),
        }
        let file = match OpenOptions::new().read(true).open(&path) {
            Ok(file) => file,
            Err(err) if missing(&err) => return Err(self.not_found(key)),
            Err(err) => return Err(io_error(&path, err)),
        };
        let meta = file.metadata().map_err(|err| io_error(&path, err))?;
        if !meta.is_file() {
            return Err(self.not_found(key));
        }
        Ok((file, meta, path))
    }

    fn meta(key: &ObjectKey, meta: &std::fs::Metadata) -> ObjectMeta {
        ObjectMeta {
            key: key.clone(),
            size: meta.len(),
            version: version_of(meta),
            last_modified: meta.modified().ok(),
        }
    }

    /// The object if it is at most `limit` bytes, read here and now;
    /// `None` when it is larger (read it on the blocking pool).
    fn get_if_small(
        &self,
        key: &ObjectKey,
        limit: u64,
    ) -> Result<Option<GetResult>, ConnectorError> {
        let (mut file, meta, path) = self.open_object(key)?;
        if meta.len() > limit {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(|err| io_error(&path, err))?;
        Ok(Some(GetResult {
            bytes: Bytes::from(bytes),
            meta: Self::meta(key, &meta),
        }))
    }

    fn get(&self, key: &ObjectKey) -> Result<GetResult, ConnectorError> {
        let (mut file, meta, path) = self.open_object(key)?;
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(|err| io_error(&path, err))?;
        Ok(GetResult {
            bytes: Bytes::from(bytes),
            meta: Self::meta(key, &meta),
        })
    }

    fn get_range(&self, key: &ObjectKey, range: ByteRange) -> Result<Bytes, ConnectorError> {
        let (mut file, meta, path) = self.open_object(key)?;
        if !range.fits(meta.len()) {
            return Err(ConnectorError::InvalidRange {
                key: key.to_string(),
                range,
                size: meta.len(),
            });
        }
        let len = usize::try_from(range.len()).map_err(|_| ConnectorError::InvalidRange {
            key: key.to_string(),
            range,
            size: meta.len(),
        })?;
        let mut bytes = vec![0; len];
        file.seek(SeekFrom::Start(range.start))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|err| io_error(&path, err))?;
        Ok(Bytes::from(bytes))
    }

    fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ConnectorError> {
        let full = key.under(&self.prefix);
        key_path(&self.root, &full)?;
        match lookup(&self.root, full.as_str())? {
            Some(meta) if meta.is_file() => Ok(Self::meta(key, &meta)),
            _ => Err(self.not_found(key)),
        }
    }

    fn put(
        &self,
        key: &ObjectKey,
        bytes: &[u8],
        mode: &PutMode,
    ) -> Result<PutOutcome, ConnectorError> {
        let full = key.under(&self.prefix);
        let dest = key_path(&self.root, &full)?;
        let parent = dest.parent().unwrap_or(&self.root).to_path_buf();
        if matches!(mode, PutMode::Update(_)) {
            // Updating a missing key fails without creating its directories
            // (which nothing would remove).
            match lookup(&self.root, full.as_str())? {
                Some(meta) if meta.is_file() => {}
                _ => return Ok(PutOutcome::PreconditionFailed),
            }
        }
        ensure_parent_dirs(&self.root, &full)?;
        // Write and sync before taking the lock, so it is held only for the
        // check and the publish.
        let tmp = TmpFile::write(&self.tmp_dir, bytes)?;
        let _lock = KeyLock::acquire(&self.locks_dir, &full)?;
        for _ in 0..PUBLISH_RETRIES {
            let current = match std::fs::symlink_metadata(&dest) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(ConnectorError::UnsafePath {
                        path: dest.display().to_string(),
                        reason: "it is a symbolic link, which the local backend never follows",
                    })
                }
                Ok(meta) if meta.is_dir() => {
                    return Err(ConnectorError::UnsafePath {
                        path: dest.display().to_string(),
                        reason: "the key names a directory of other keys",
                    })
                }
                Ok(meta) => Some(meta),
                Err(err) if missing(&err) => None,
                Err(err) => return Err(io_error(&dest, err)),
            };
            let published = match mode {
                PutMode::Create if current.is_some() => return Ok(PutOutcome::AlreadyExists),
                PutMode::Create => match std::fs::hard_link(tmp.path(), &dest) {
                    Ok(()) => Ok(()),
                    Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                        return Ok(PutOutcome::AlreadyExists)
                    }
                    Err(err) => Err(err),
                },
                PutMode::Update(expected) => match &current {
                    Some(meta) if &version_of(meta) == expected => {
                        std::fs::rename(tmp.path(), &dest)
                    }
                    _ => return Ok(PutOutcome::PreconditionFailed),
                },
                PutMode::Overwrite => std::fs::rename(tmp.path(), &dest),
            };
            match published {
                Ok(()) => {
                    let version = tmp.version();
                    if matches!(mode, PutMode::Create) {
                        drop(tmp); // The hard link keeps the data.
                    } else {
                        tmp.published();
                    }
                    sync_dir(&parent)?;
                    return Ok(PutOutcome::Written(version));
                }
                // A concurrent delete of a sibling removed our (empty)
                // parent directory: make it again.
                Err(err) if missing(&err) => ensure_parent_dirs(&self.root, &full)?,
                Err(err) => return Err(io_error(&dest, err)),
            }
        }
        Err(io_error(
            &dest,
            io::Error::other("the parent directory kept disappearing"),
        ))
    }

    fn delete(&self, key: &ObjectKey) -> Result<(), ConnectorError> {
        let full = key.under(&self.prefix);
        let path = key_path(&self.root, &full)?;
        match lookup(&self.root, full.as_str())? {
            Some(meta) if meta.is_file() => {}
            _ => return Ok(()),
        }
        let lock = KeyLock::acquire(&self.locks_dir, &full)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if missing(&err) => return Ok(()),
            Err(err) => return Err(io_error(&path, err)),
        }
        drop(lock);
        remove_empty_parents(&self.root, &full);
        Ok(())
    }
}

#[async_trait]
impl Connector for LocalConnector {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn get(&self, key: &ObjectKey) -> Result<GetResult, ConnectorError> {
        // Small objects (a ref, an index page) are read on the caller's
        // thread: for them the hop to the blocking pool and back costs
        // several times the read itself (measured: a warm query's ref read
        // took ≈ 60 µs through the pool).
        if let Some(found) = self.inner.get_if_small(key, INLINE_READ_BYTES)? {
            return Ok(found);
        }
        let key = key.clone();
        self.blocking(move |inner| inner.get(&key)).await
    }

    async fn get_range(&self, key: &ObjectKey, range: ByteRange) -> Result<Bytes, ConnectorError> {
        let key = key.clone();
        self.blocking(move |inner| inner.get_range(&key, range))
            .await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ConnectorError> {
        let key = key.clone();
        self.blocking(move |inner| inner.head(&key)).await
    }

    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, ConnectorError> {
        let key = key.clone();
        self.blocking(move |inner| inner.put(&key, &bytes, &mode))
            .await
    }

    fn list<'a>(&'a self, prefix: &'a KeyPrefix) -> ListStream<'a> {
        list::list(
            self.inner.root.clone(),
            self.inner.prefix.clone(),
            prefix.under(&self.inner.prefix),
        )
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), ConnectorError> {
        let key = key.clone();
        self.blocking(move |inner| inner.delete(&key)).await
    }
}
