//! Corruption on disk: for every object reachable from a small
//! multi-version dataset (Manifests, Genesis, Schema, index pages, segments,
//! tombstone lists) each damage — a flipped byte (first, middle, last), a
//! truncation (half, empty), an extra byte, another object's bytes — is
//! written directly into the local directory. A fresh session's full read
//! and `verify_reachable` must then fail with an error naming that object
//! (its hash in the message): never a panic, never a wrong value. Damaged
//! Ref files give typed errors too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dreamdb_connector::local::LocalConnector;
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{CommitLoopOptions, MergeOptions, Repo};
use dreamdb_protocol::store::object_key;
use reliability_support::*;

/// Builds the dataset; returns its tip.
async fn build(repo: &Repo) -> ContentHash {
    let m0 = create(repo).await;
    repo.branch(&name("side"), m0).await.unwrap();
    for i in 0..4 {
        commit_batch(repo, "main", 0, i).await.unwrap();
    }
    repo.apply_changes(
        &name("main"),
        &tombstone_changes(&[anchor_of(0, 0, 0)], "deleter"),
        &CommitLoopOptions::default(),
    )
    .await
    .unwrap();
    for i in 0..3 {
        commit_batch(repo, "side", 1, i).await.unwrap();
    }
    repo.apply_changes(
        &name("side"),
        &tombstone_changes(&[anchor_of(1, 0, 0)], "deleter"),
        &CommitLoopOptions::default(),
    )
    .await
    .unwrap();
    let side = tip(repo, "side").await;
    let _ = repo
        .merge(&name("main"), side, &MergeOptions::union("m", "merge"))
        .await
        .unwrap();
    tip(repo, "main").await
}

fn path_of(root: &Path, hash: &ContentHash) -> PathBuf {
    root.join(object_key(hash).unwrap().as_str())
}

/// The damages tried on one object's bytes (`other`: another object's).
fn damages(bytes: &[u8], other: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let flip = |at: usize| {
        let mut b = bytes.to_vec();
        b[at] ^= 0x01;
        b
    };
    let mut extra = bytes.to_vec();
    extra.push(0);
    vec![
        ("flip first byte", flip(0)),
        ("flip middle byte", flip(bytes.len() / 2)),
        ("flip last byte", flip(bytes.len() - 1)),
        ("truncate to half", bytes[..bytes.len() / 2].to_vec()),
        ("truncate to empty", Vec::new()),
        ("append a byte", extra),
        ("another object's bytes", other.to_vec()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_damage_to_every_object_is_a_typed_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let connector = Arc::new(LocalConnector::open(&root).unwrap());
    let writer = repo(connector.clone());
    let tip = build(&writer).await;

    let clean = repo(connector.clone());
    let objects = reachable(clean.store(), tip).await.unwrap();
    let expected = full_read(&clean, tip).await.unwrap();
    verify_reachable(&clean, tip).await.unwrap();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for r in objects.values() {
        *kinds.entry(format!("{r:?}")).or_default() += 1;
    }
    let hashes: Vec<ContentHash> = objects.keys().copied().collect();
    let mut tried = 0;
    for (n, hash) in hashes.iter().enumerate() {
        let path = path_of(&root, hash);
        let original = std::fs::read(&path).unwrap();
        let other = std::fs::read(path_of(&root, &hashes[(n + 1) % hashes.len()])).unwrap();
        for (what, bytes) in damages(&original, &other) {
            std::fs::write(&path, &bytes).unwrap();
            tried += 1;
            let shown = hash.to_string();
            let context = format!("{what} of {:?} {hash}", objects[hash]);
            // A new session: nothing cached.
            let fresh = repo(connector.clone());
            match full_read(&fresh, tip).await {
                Ok(got) => panic!(
                    "{context}: read succeeded{}",
                    if got == expected {
                        ""
                    } else {
                        " with WRONG data"
                    }
                ),
                Err(e) => assert!(e.contains(&shown), "{context}: error does not name it: {e}"),
            }
            let fresh = repo(connector.clone());
            match verify_reachable(&fresh, tip).await {
                Ok(_) => panic!("{context}: verify_reachable passed"),
                Err(e) => assert!(e.contains(&shown), "{context}: verify error: {e}"),
            }
            std::fs::write(&path, &original).unwrap();
        }
    }
    // Everything is readable again once repaired.
    let fresh = repo(connector.clone());
    assert_eq!(full_read(&fresh, tip).await.unwrap(), expected);
    println!(
        "{} objects ({kinds:?}), {tried} corrupt inputs tried: every one a typed error naming \
         the object",
        hashes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_ref_file_is_a_typed_error_or_a_ref_to_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let connector = Arc::new(LocalConnector::open(&root).unwrap());
    let writer = repo(connector.clone());
    let tip = build(&writer).await;
    let path = root.join(format!("datasets/{DATASET}/refs/main"));
    let original = std::fs::read(&path).unwrap();
    let mut tried = 0;
    for at in 0..original.len() {
        for bytes in [
            {
                let mut b = original.clone();
                b[at] ^= 0x40;
                b
            },
            original[..at].to_vec(),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            tried += 1;
            let fresh = repo(connector.clone());
            match fresh.read_ref(&name("main")).await {
                Err(_) => {}
                Ok(None) => panic!("a damaged ref reads as absent"),
                // A flip inside the hash itself names another Manifest: it
                // must not exist (or be refused as a foreign one).
                Ok(Some(state)) if state.manifest != tip => {
                    assert!(full_read(&fresh, state.manifest).await.is_err());
                }
                Ok(Some(_)) => {}
            }
        }
    }
    std::fs::write(&path, &original).unwrap();
    println!("{tried} damaged ref files tried");
}
