//! Listing: a lazy, depth-first walk that yields keys in byte order.
//!
//! Directories are read one at a time (each read on the blocking pool) and
//! their entries sorted with a directory `d` ordered as `d/`. Every key below
//! `d` starts with `d/`, and no sibling name contains `/`, so the depth-first
//! walk emits keys in exactly the byte order S3 uses (`a-b` < `a/x` < `a0`).
//! Subtrees that cannot match the prefix are never read. The internal
//! directory is skipped, and a symbolic link anywhere in the walk ends the
//! listing with [`ConnectorError::UnsafePath`].

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use futures::StreamExt;

use super::paths::{check_not_internal, io_error, lookup, missing, INTERNAL_DIR};
use super::write::version_of;
use crate::{ConnectorError, KeyPrefix, ListStream, ObjectKey, ObjectMeta};

/// One entry of a directory that may contribute to the listing.
enum Item {
    /// An object, with its full key (root prefix included).
    Object(ObjectMeta),
    /// A directory to descend into, as `<full key path>/`.
    Dir(String),
}

impl Item {
    fn sort_key(&self) -> &str {
        match self {
            Item::Object(meta) => meta.key.as_str(),
            Item::Dir(rel) => rel,
        }
    }
}

/// The walk's state between items.
struct Walk {
    root: PathBuf,
    /// The connector's root prefix, stripped from listed keys.
    root_prefix: KeyPrefix,
    /// The full prefix asked for (root prefix included).
    full_prefix: String,
    /// Sorted entries still to visit, one queue per open directory.
    stack: Vec<VecDeque<Item>>,
}

/// Reads directory `rel_dir` (`""` or ending in `/`) and returns, sorted,
/// the entries that can contribute keys starting with `prefix`.
fn read_dir_sorted(root: &Path, rel_dir: &str, prefix: &str) -> Result<Vec<Item>, ConnectorError> {
    let mut dir = root.to_path_buf();
    dir.extend(rel_dir.split('/').filter(|s| !s.is_empty()));
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        // Removed since its parent was read (a concurrent delete).
        Err(err) if missing(&err) => return Ok(Vec::new()),
        Err(err) => return Err(io_error(&dir, err)),
    };
    let mut items = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|err| io_error(&dir, err))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue; // Not UTF-8: not a key DreamDB could have written.
        };
        if rel_dir.is_empty() && name == INTERNAL_DIR {
            continue;
        }
        let file_type = entry
            .file_type()
            .map_err(|err| io_error(&entry.path(), err))?;
        let rel = format!("{rel_dir}{name}");
        if file_type.is_symlink() {
            return Err(ConnectorError::UnsafePath {
                path: entry.path().display().to_string(),
                reason: "it is a symbolic link, which the local backend never follows",
            });
        } else if file_type.is_dir() {
            let rel = rel + "/";
            if rel.starts_with(prefix) || prefix.starts_with(&rel) {
                items.push(Item::Dir(rel));
            }
        } else if file_type.is_file() && rel.starts_with(prefix) {
            let Ok(key) = ObjectKey::new(rel) else {
                continue; // Not a valid key: not ours.
            };
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(err) if missing(&err) => continue, // Deleted meanwhile.
                Err(err) => return Err(io_error(&entry.path(), err)),
            };
            items.push(Item::Object(ObjectMeta {
                key,
                size: meta.len(),
                version: version_of(&meta),
                last_modified: meta.modified().ok(),
            }));
        }
    }
    items.sort_by(|a, b| a.sort_key().cmp(b.sort_key()));
    Ok(items)
}

/// Reads the directory where the walk starts: the longest directory part of
/// the prefix. Missing (or not a directory) means an empty listing.
fn start(root: &Path, full_prefix: &str) -> Result<Vec<Item>, ConnectorError> {
    check_not_internal(full_prefix, true)?;
    let start_dir = match full_prefix.rfind('/') {
        Some(index) => &full_prefix[..=index],
        None => "",
    };
    if !start_dir.is_empty() {
        match lookup(root, start_dir)? {
            Some(meta) if meta.is_dir() => {}
            _ => return Ok(Vec::new()),
        }
    }
    read_dir_sorted(root, start_dir, full_prefix)
}

async fn blocking<T: Send + 'static>(
    root: &Path,
    work: impl FnOnce() -> Result<T, ConnectorError> + Send + 'static,
) -> Result<T, ConnectorError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| io_error(root, std::io::Error::other(err.to_string())))?
}

impl Walk {
    /// The next object, reading directories as needed.
    async fn next(&mut self) -> Option<Result<ObjectMeta, ConnectorError>> {
        loop {
            let top = self.stack.last_mut()?;
            let Some(item) = top.pop_front() else {
                self.stack.pop();
                continue;
            };
            match item {
                Item::Object(mut meta) => match meta.key.strip(&self.root_prefix) {
                    Some(key) => {
                        meta.key = key;
                        return Some(Ok(meta));
                    }
                    None => continue, // The key is the root prefix itself.
                },
                Item::Dir(rel) => {
                    let root = self.root.clone();
                    let prefix = self.full_prefix.clone();
                    let read = blocking(&self.root, move || read_dir_sorted(&root, &rel, &prefix));
                    match read.await {
                        Ok(items) => self.stack.push(items.into()),
                        Err(err) => return Some(Err(err)),
                    }
                }
            }
        }
    }
}

/// Lists full prefix `full_prefix` under `root`, stripping `root_prefix`
/// from the keys.
pub(super) fn list(
    root: PathBuf,
    root_prefix: KeyPrefix,
    full_prefix: KeyPrefix,
) -> ListStream<'static> {
    let first = {
        let root = root.clone();
        let full_prefix = full_prefix.as_str().to_owned();
        async move {
            let items = {
                let root = root.clone();
                let prefix = full_prefix.clone();
                blocking(&root.clone(), move || start(&root, &prefix)).await
            };
            items.map(|items| Walk {
                root,
                root_prefix,
                full_prefix,
                stack: vec![items.into()],
            })
        }
    };
    // Read the start directory on first poll, then walk until the stack is
    // empty or an error ends the listing.
    futures::stream::once(first)
        .flat_map(|started| match started {
            Ok(walk) => futures::stream::unfold(Some(walk), |state| async move {
                let mut walk = state?;
                match walk.next().await {
                    Some(Ok(meta)) => Some((Ok(meta), Some(walk))),
                    // An error ends the listing.
                    Some(Err(err)) => Some((Err(err), None)),
                    None => None,
                }
            })
            .boxed(),
            Err(err) => futures::stream::once(async move { Err(err) }).boxed(),
        })
        .boxed()
}
