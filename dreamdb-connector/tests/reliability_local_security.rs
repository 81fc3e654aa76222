//! What `local_safety.rs` does not cover of the local backend's promise
//! that nothing outside its root is touched: symbolic links planted for the
//! backend's own internal directory (temporary and lock files), hard links
//! to outside files, dangling links at a key, and hostile keys that pass
//! through a root prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(unix)]

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use dreamdb_connector::local::LocalConnector;
use dreamdb_connector::{Connector, ConnectorError, KeyPrefix, ObjectKey, PutMode, PutOutcome};

fn key(text: &str) -> ObjectKey {
    ObjectKey::new(text).unwrap()
}

/// Every file under `dir` with its contents (links not followed).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(path);
                out.insert(format!("{rel}/"), Vec::new());
            } else if kind.is_symlink() {
                out.insert(
                    rel,
                    std::fs::read_link(&path)
                        .unwrap()
                        .display()
                        .to_string()
                        .into(),
                );
            } else {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Writes in every mode through `store`; returns the results.
async fn write_all_modes(store: &LocalConnector) -> Vec<Result<PutOutcome, ConnectorError>> {
    let mut out = Vec::new();
    out.push(
        store
            .put(
                &key("objects/aa/x"),
                Bytes::from_static(b"1"),
                PutMode::Overwrite,
            )
            .await,
    );
    out.push(
        store
            .put(
                &key("datasets/d/refs/main"),
                Bytes::from_static(b"2"),
                PutMode::Create,
            )
            .await,
    );
    if let Some(Ok(PutOutcome::Written(v))) = out.last() {
        let v = v.clone();
        out.push(
            store
                .put(
                    &key("datasets/d/refs/main"),
                    Bytes::from_static(b"3"),
                    PutMode::Update(v),
                )
                .await,
        );
    }
    out
}

/// The internal directory (or its `tmp` / `locks` subdirectory) replaced
/// by a link to a directory outside the root: a write must either be
/// refused or leave the outside directory exactly as it was. (Measured: the
/// backend follows such a link, so temporary and lock files exist outside
/// the root *while* a write runs — a crash then leaves one there — but
/// every one is renamed or removed before the write returns.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_internal_directory_is_never_written_through() {
    for link in [
        ".dreamdb-internal",
        ".dreamdb-internal/tmp",
        ".dreamdb-internal/locks",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(outside.join("tmp")).unwrap();
        std::fs::create_dir_all(outside.join("locks")).unwrap();
        std::fs::write(outside.join("keep"), b"keep").unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join(".dreamdb-internal")).unwrap();
        let target = if link == ".dreamdb-internal" {
            outside.clone()
        } else {
            outside.join(link.rsplit('/').next().unwrap())
        };
        let link_path = root.join(link);
        let _ = std::fs::remove_dir(&link_path);
        std::os::unix::fs::symlink(&target, &link_path).unwrap();
        let before = snapshot(&outside);
        if let Ok(store) = LocalConnector::open(&root) {
            let _ = write_all_modes(&store).await;
        }
        assert_eq!(
            snapshot(&outside),
            before,
            "writing with {link} linked outside the root changed the outside directory"
        );
    }
}

/// A key that is a hard link to a file outside the root: overwriting it
/// replaces the link inside the root (atomic rename) and never writes into
/// the outside file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overwriting_a_hard_linked_key_leaves_the_outside_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside-file");
    std::fs::write(&outside, b"outside").unwrap();
    let root = dir.path().join("root");
    let store = LocalConnector::open(&root).unwrap();
    std::fs::create_dir_all(root.join("objects/aa")).unwrap();
    std::fs::hard_link(&outside, root.join("objects/aa/x")).unwrap();
    std::fs::hard_link(&outside, root.join("objects/aa/y")).unwrap();
    let _ = store
        .put(
            &key("objects/aa/x"),
            Bytes::from_static(b"new"),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    // An update from the version read: also a rename, never an in-place write.
    let meta = store.head(&key("objects/aa/y")).await.unwrap();
    let _ = store
        .put(
            &key("objects/aa/y"),
            Bytes::from_static(b"newer"),
            PutMode::Update(meta.version),
        )
        .await
        .unwrap();
    store.delete(&key("objects/aa/x")).await.unwrap();
    assert_eq!(std::fs::read(&outside).unwrap(), b"outside");
    assert_eq!(
        store
            .get(&key("objects/aa/y"))
            .await
            .unwrap()
            .bytes
            .as_ref(),
        b"newer"
    );
}

/// A dangling link at a key: every operation is refused or reports the key
/// taken/missing; the link's target is never created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dangling_link_at_a_key_is_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("would-be-created");
    let root = dir.path().join("root");
    let store = LocalConnector::open(&root).unwrap();
    std::fs::create_dir_all(root.join("datasets/d/refs")).unwrap();
    std::os::unix::fs::symlink(&target, root.join("datasets/d/refs/main")).unwrap();
    let k = key("datasets/d/refs/main");
    for mode in [
        PutMode::Create,
        PutMode::Overwrite,
        PutMode::Update(dreamdb_connector::Version::new("v")),
    ] {
        let result = store.put(&k, Bytes::from_static(b"x"), mode.clone()).await;
        assert!(
            !matches!(result, Ok(PutOutcome::Written(_))),
            "{mode:?} through a dangling link: {result:?}"
        );
    }
    assert!(store.get(&k).await.is_err());
    assert!(!target.exists(), "the link's target was created");
}

/// Hostile keys are refused before storage is touched, also under a root
/// prefix and for listing prefixes; a prefix cannot climb out either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_keys_and_prefixes_never_reach_storage() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let store = LocalConnector::open(&root)
        .unwrap()
        .with_prefix(KeyPrefix::new("tenant/").unwrap());
    for bad in [
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a//b",
        "a/./b",
        "a\\b",
        "a\0b",
        "a\nb",
        "",
        ".",
        "..",
    ] {
        assert!(ObjectKey::new(bad).is_err(), "key {bad:?} accepted");
    }
    for bad in ["../", "/", "a/../", "tenant/../../"] {
        assert!(KeyPrefix::new(bad).is_err(), "prefix {bad:?} accepted");
    }
    let long = "a/".repeat(600);
    assert!(
        ObjectKey::new(&long[..long.len() - 1]).is_err(),
        "over-long key"
    );
    let _ = store
        .put(&key("x"), Bytes::from_static(b"1"), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(std::fs::read(root.join("tenant/x")).unwrap(), b"1");
    let outside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("root")]);
}
