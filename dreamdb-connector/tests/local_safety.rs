//! The local backend never reaches outside its root: hostile keys are
//! refused, symbolic links are never followed, and the internal directory
//! is off limits. Also: publishing leaves no temporary files, leftovers are
//! never listed, and versions change on every write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use bytes::Bytes;
use dreamdb_connector::local::LocalConnector;
use dreamdb_connector::{
    ByteRange, Connector, ConnectorError, ConnectorExt, KeyPrefix, ObjectKey, PutMode,
};

fn key(text: &str) -> ObjectKey {
    ObjectKey::new(text).unwrap()
}

/// Every path under `dir` (following nothing) with file contents.
fn snapshot(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                out.insert(rel, None);
                stack.push(path);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, Some(target.display().to_string().into_bytes()));
            } else {
                out.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

fn assert_unsafe<T: std::fmt::Debug>(result: Result<T, ConnectorError>, what: &str) {
    match result {
        Err(ConnectorError::UnsafePath { .. }) => {}
        other => panic!("{what}: expected UnsafePath, got {other:?}"),
    }
}

#[test]
fn hostile_keys_cannot_be_constructed() {
    for text in [
        "..",
        "../escape",
        "a/../../x",
        "/etc/passwd",
        "a/./b",
        "a\\..\\b",
        "",
    ] {
        assert!(ObjectKey::new(text).is_err(), "{text:?}");
    }
    for text in ["../", "/abs/", "a/../"] {
        assert!(KeyPrefix::new(text).is_err(), "{text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_inside_the_root_are_refused_and_outside_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    std::fs::write(outside.join("secret"), b"secret").unwrap();
    std::fs::write(outside.join("sub/deep"), b"deep").unwrap();
    let root = dir.path().join("root");
    let store = LocalConnector::open(&root).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), root.join("file-link")).unwrap();
    std::fs::create_dir(root.join("real")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("real/nested-link")).unwrap();
    let before = snapshot(&outside);

    for through in [
        "link/secret",
        "link/sub/deep",
        "file-link",
        "real/nested-link/secret",
    ] {
        let k = key(through);
        assert_unsafe(store.get(&k).await, through);
        assert_unsafe(store.head(&k).await, through);
        assert_unsafe(store.get_range(&k, ByteRange::new(0, 1)).await, through);
        assert_unsafe(store.delete(&k).await, through);
        for mode in [PutMode::Overwrite, PutMode::Create] {
            assert_unsafe(
                store.put(&k, Bytes::from_static(b"pwned"), mode).await,
                through,
            );
        }
    }
    // New keys through a link, and updates with a guessed version.
    for through in ["link/new", "link/sub/new/deeper", "real/nested-link/new"] {
        let k = key(through);
        assert_unsafe(
            store
                .put(&k, Bytes::from_static(b"pwned"), PutMode::Overwrite)
                .await,
            through,
        );
    }
    let listed = store.list_all(&KeyPrefix::new("link/").unwrap()).await;
    assert_unsafe(listed, "list link/");
    let listed = store.list_all(&KeyPrefix::new("real/").unwrap()).await;
    assert_unsafe(listed, "list real/");
    let listed = store.list_all(&KeyPrefix::all()).await;
    assert_unsafe(listed, "list everything");

    assert_eq!(
        snapshot(&outside),
        before,
        "nothing outside the root changed"
    );
    assert!(std::fs::symlink_metadata(root.join("file-link"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_itself_may_be_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("alias")).unwrap();
    let store = LocalConnector::open(dir.path().join("alias")).unwrap();
    store
        .put(&key("a/b"), Bytes::from_static(b"x"), PutMode::Overwrite)
        .await
        .unwrap()
        .written()
        .unwrap();
    assert_eq!(std::fs::read(dir.path().join("real/a/b")).unwrap(), b"x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_directory_is_off_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalConnector::open(dir.path()).unwrap();
    let internal = key(".dreamdb-internal/locks/x");
    let refused = |result: Result<(), ConnectorError>| match result {
        Err(ConnectorError::InvalidKey(err)) => assert!(err.reason.contains("reserved")),
        other => panic!("expected InvalidKey, got {other:?}"),
    };
    refused(store.get(&internal).await.map(drop));
    refused(store.head(&internal).await.map(drop));
    refused(store.delete(&internal).await);
    refused(
        store
            .put(&internal, Bytes::from_static(b"x"), PutMode::Overwrite)
            .await
            .map(drop),
    );
    refused(
        store
            .put(&key(".dreamdb-internal"), Bytes::new(), PutMode::Create)
            .await
            .map(drop),
    );
    refused(
        store
            .list_all(&KeyPrefix::new(".dreamdb-internal/").unwrap())
            .await
            .map(drop),
    );
    // A root prefix cannot smuggle it in either.
    let sneaky = store
        .clone()
        .with_prefix(KeyPrefix::new(".dreamdb-internal/").unwrap());
    refused(
        sneaky
            .put(&key("tmp/x"), Bytes::new(), PutMode::Overwrite)
            .await
            .map(drop),
    );
    // Similar names are ordinary keys.
    store
        .put(
            &key(".dreamdb-internals"),
            Bytes::from_static(b"ok"),
            PutMode::Overwrite,
        )
        .await
        .unwrap()
        .written()
        .unwrap();

    // A crashed writer's leftover temporary file is never listed.
    std::fs::write(
        dir.path().join(".dreamdb-internal/tmp/999-0-dead.tmp"),
        b"junk",
    )
    .unwrap();
    let listed = store.list_all(&KeyPrefix::all()).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(keys, [".dreamdb-internals"]);
    let listed = store
        .list_all(&KeyPrefix::new(".dreamdb-int").unwrap())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_cannot_also_be_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalConnector::open(dir.path()).unwrap();
    store
        .put(&key("a"), Bytes::from_static(b"1"), PutMode::Overwrite)
        .await
        .unwrap()
        .written()
        .unwrap();
    assert_unsafe(
        store
            .put(&key("a/b"), Bytes::new(), PutMode::Overwrite)
            .await,
        "a/b",
    );
    store
        .put(&key("d/e"), Bytes::from_static(b"2"), PutMode::Overwrite)
        .await
        .unwrap()
        .written()
        .unwrap();
    assert_unsafe(
        store.put(&key("d"), Bytes::new(), PutMode::Overwrite).await,
        "d",
    );
    assert_unsafe(
        store.put(&key("d"), Bytes::new(), PutMode::Create).await,
        "d create",
    );
    assert!(matches!(
        store.get(&key("d")).await,
        Err(ConnectorError::NotFound { .. })
    ));
    assert!(matches!(
        store.head(&key("a/b")).await,
        Err(ConnectorError::NotFound { .. })
    ));
    store.delete(&key("d")).await.unwrap();
    assert_eq!(store.get(&key("d/e")).await.unwrap().bytes, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_publish_atomically_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalConnector::open(dir.path()).unwrap();
    let k = key("objects/1e/1eab");
    let mut versions = HashSet::new();
    // Same bytes, same size, again and again: each write is a new file with
    // a fresh nanosecond mtime, so versions never repeat even when the
    // filesystem recycles inodes.
    for _ in 0..200 {
        let outcome = store
            .put(&k, Bytes::from_static(b"same bytes"), PutMode::Overwrite)
            .await
            .unwrap();
        assert!(versions.insert(outcome.written().unwrap().clone()));
    }
    let meta = store.head(&k).await.unwrap();
    assert!(versions.contains(&meta.version));
    assert!(meta.last_modified.is_some());
    assert_eq!(
        std::fs::read(dir.path().join("objects/1e/1eab")).unwrap(),
        b"same bytes"
    );
    let internal = dir.path().join(".dreamdb-internal");
    assert_eq!(std::fs::read_dir(internal.join("tmp")).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(internal.join("locks")).unwrap().count(),
        0
    );
    store.delete(&k).await.unwrap();
    // Empty parent directories go with the last object.
    assert!(!dir.path().join("objects").exists());
}

#[test]
fn opening_a_file_as_root_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(
        LocalConnector::open(&file),
        Err(ConnectorError::Io { .. })
    ));
}
