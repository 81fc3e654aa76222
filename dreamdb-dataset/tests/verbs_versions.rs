//! Versions: snapshot (create-once tag), branch, merge (union, fast-forward
//! only, ours, theirs), merge_many, history, open_at (tag, ref, Manifest).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "write_common.rs"]
mod common;

use std::sync::Arc;

use common::*;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::Connector;
use dreamdb_dataset::dataset::{MergeKind, MergeStrategy, OpenOptions, Version};
use dreamdb_dataset::Dataset;

async fn setup(name: &str) -> (Arc<dyn Connector>, Dataset) {
    let connector: Arc<dyn Connector> = Arc::new(MemoryConnector::new());
    let ds = create_on(connector.clone(), name).await;
    ds.append_many(batch(1, 100)).await.unwrap();
    (connector, ds)
}

async fn open_at(c: &Arc<dyn Connector>, name: &str, v: Version) -> Dataset {
    Dataset::open_at_on(c.clone(), "memory://", name, v, OpenOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn snapshot_is_create_once_and_pins_a_version() {
    let (c, ds) = setup("s").await;
    let v1 = ds.snapshot("v1").await.unwrap();
    assert_eq!(v1.manifest, ds.manifest_hash().await.unwrap());
    // Same version again: fine. Another version: refused.
    assert_eq!(ds.snapshot("v1").await.unwrap(), v1);
    ds.append_many(batch(2, 50)).await.unwrap();
    let err = ds.snapshot("v1").await.unwrap_err();
    assert_eq!(err.kind(), "already-exists");
    let old = open_at(&c, "s", Version::Tag("v1".into())).await;
    assert_eq!(old.records().await.unwrap(), 100);
    assert_eq!(old.manifest_hash().await.unwrap(), v1.manifest);
    let by_hash = open_at(&c, "s", v1.clone().into()).await;
    assert_eq!(by_hash.records().await.unwrap(), 100);
    let by_ref = open_at(&c, "s", Version::Ref("main".into())).await;
    assert_eq!(by_ref.records().await.unwrap(), 150);
    // The pinned ref handle does not follow later commits.
    ds.append_many(batch(3, 10)).await.unwrap();
    assert_eq!(by_ref.records().await.unwrap(), 150);
    assert_eq!(ds.records().await.unwrap(), 160);
    let missing = Dataset::open_at_on(
        c.clone(),
        "memory://",
        "s",
        Version::Tag("nope".into()),
        OpenOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(missing.kind(), "not-found");
    let bad = ds.snapshot("bad name").await.unwrap_err();
    assert_eq!(bad.kind(), "invalid-name");
}

#[tokio::test]
async fn branch_append_and_union_merge() {
    let (_c, main) = setup("m").await;
    let exp = main.branch("exp").await.unwrap();
    assert_eq!(exp.ref_name(), Some("exp"));
    // Creating it again at the same version is fine (spec/0008 §2).
    assert_eq!(main.branch("exp").await.unwrap().ref_name(), Some("exp"));
    exp.append_many(batch(2, 40)).await.unwrap();
    let taken = main.branch("exp").await.unwrap_err();
    assert_eq!(taken.kind(), "already-exists");
    assert_eq!(exp.records().await.unwrap(), 140);
    assert_eq!(main.records().await.unwrap(), 100);
    // Fast-forward: main has nothing new.
    let ff = main.merge("exp", MergeStrategy::Union).await.unwrap();
    assert_eq!(ff.kind, MergeKind::FastForward);
    assert_eq!(main.records().await.unwrap(), 140);
    // Both sides move: a 3-way union merge commit.
    exp.append_many(batch(3, 30)).await.unwrap();
    main.append_many(batch(4, 20)).await.unwrap();
    let merged = main.merge("exp", MergeStrategy::Union).await.unwrap();
    assert_eq!(merged.kind, MergeKind::Merged);
    assert_eq!(main.records().await.unwrap(), 190);
    let history = main.history(2).await.unwrap();
    assert_eq!(history[0].manifest, merged.manifest);
    assert_eq!(history[0].parents.len(), 2);
    // Merging again changes nothing.
    let again = main.merge("exp", MergeStrategy::Union).await.unwrap();
    assert_eq!(again.kind, MergeKind::AlreadyUpToDate);
    // Appends after a merge still work (stats and anchors from the merge).
    let after = main.append_many(batch(5, 10)).await.unwrap();
    assert_eq!(after.signals.fields["embedding"].n, 200);
}

#[tokio::test]
async fn fast_forward_only_refuses_diverged_branches() {
    let (_c, main) = setup("f").await;
    let exp = main.branch("exp").await.unwrap();
    exp.append_many(batch(2, 10)).await.unwrap();
    main.append_many(batch(3, 10)).await.unwrap();
    let err = main
        .merge("exp", MergeStrategy::FastForwardOnly)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "conflict");
    let other = main.branch("other").await.unwrap();
    other.append_many(batch(4, 10)).await.unwrap();
    let ok = main
        .merge("other", MergeStrategy::FastForwardOnly)
        .await
        .unwrap();
    assert_eq!(ok.kind, MergeKind::FastForward);
    assert_eq!(main.records().await.unwrap(), 120);
}

#[tokio::test]
async fn ours_and_theirs_take_whole_fields() {
    let (_c, main) = setup("o").await;
    let a = main.branch("a").await.unwrap();
    let b = main.branch("b").await.unwrap();
    a.append_many(batch(2, 10)).await.unwrap();
    main.append_many(batch(3, 20)).await.unwrap();
    b.append_many(batch(4, 30)).await.unwrap();
    let ours = main.merge("a", MergeStrategy::Ours).await.unwrap();
    assert_eq!(ours.kind, MergeKind::Merged);
    assert_eq!(main.records().await.unwrap(), 120);
    let theirs = a.merge("b", MergeStrategy::Theirs).await.unwrap();
    assert_eq!(theirs.kind, MergeKind::Merged);
    assert_eq!(a.records().await.unwrap(), 130);
}

#[tokio::test]
async fn merge_many_is_one_commit() {
    let (_c, main) = setup("n").await;
    let mut names = Vec::new();
    for i in 0..3u64 {
        let name = format!("worker-{i}");
        let w = main.branch(&name).await.unwrap();
        w.append_many(batch(10 + i, 25)).await.unwrap();
        names.push(name);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let before = main.history(100).await.unwrap().len();
    let merged = main.merge_many(&refs).await.unwrap();
    assert_eq!(merged.kind, MergeKind::Merged);
    assert_eq!(main.records().await.unwrap(), 175);
    let history = main.history(100).await.unwrap();
    assert_eq!(history[0].parents.len(), 4, "[ours, w0, w1, w2]");
    assert_eq!(
        history.len(),
        before + 4,
        "one merge + three worker commits"
    );
    let missing = main.merge_many(&["worker-0", "nope"]).await.unwrap_err();
    assert_eq!(missing.kind(), "not-found");
}

#[tokio::test]
async fn history_lists_commits_newest_first() {
    let (_c, ds) = setup("h").await;
    ds.append_many(batch(2, 5)).await.unwrap();
    ds.delete(
        &[ds.append_many(batch(3, 5)).await.unwrap().anchors[0]],
        "x",
    )
    .await
    .unwrap();
    let h = ds.history(10).await.unwrap();
    let messages: Vec<&str> = h.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "delete 1 records: x",
            "append 5 records",
            "append 5 records",
            "append 100 records",
            "create dataset h"
        ]
    );
    let records: Vec<u64> = h.iter().map(|e| e.records).collect();
    assert_eq!(records, vec![109, 110, 105, 100, 0]);
    assert!(h.windows(2).all(|w| w[0].time > w[1].time));
    assert!(h.iter().all(|e| e.writer == "dreamdb-dataset"));
    assert_eq!(ds.history(2).await.unwrap().len(), 2);
}
