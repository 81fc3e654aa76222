//! `gc` and `verify` of the built binary against a local directory: JSON
//! reports, dry run, sharding, exit 4 after corruption.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::*;
use dreamdb_connector::{ConnectorExt, PutMode};
use dreamdb_protocol::objects::object_key;

#[tokio::test]
async fn gc_dry_run_then_real_run() {
    let dir = tempfile::tempdir().unwrap();
    let backend = dir.path().join("store").to_str().unwrap().to_owned();
    let repo = local_repo(std::path::Path::new(&backend)).await;
    let main = history(&repo).await;
    // Garbage: an abandoned segment.
    let garbage = segment(&repo, 999, "garbage").await;

    // Nothing is older than the default 24h grace: nothing to delete.
    let young = json(&backend, &["gc", "--keep-manifests", "1"], 0);
    assert_eq!(young["deleted_objects"], 0);
    assert!(young["kept_young"].as_u64().unwrap() >= 1);

    let dry = json(
        &backend,
        &["gc", "--keep-manifests", "2", "--grace", "0s", "--dry-run"],
        0,
    );
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["datasets"], 1);
    assert_eq!(dry["refs"], 2);
    assert_eq!(dry["tags"], 1);
    let planned: BTreeSet<String> = dry["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_owned())
        .collect();
    assert!(planned.contains(&garbage.to_hex()));
    // main's oldest Manifests (not tips, not tagged, beyond 2) would go.
    assert!(planned.contains(&main[0].to_hex()));
    assert!(!planned.contains(&main[3].to_hex()));
    assert!(!planned.contains(&main[2].to_hex()), "tagged");
    assert!(repo.store().exists(&garbage).await.unwrap());

    // Sharded dry runs cover the same set.
    let mut union = BTreeSet::new();
    for i in 0..2 {
        let shard = json(
            &backend,
            &[
                "gc",
                "--keep-manifests",
                "2",
                "--grace",
                "0s",
                "--dry-run",
                "--shard",
                &i.to_string(),
                "--of",
                "2",
            ],
            0,
        );
        assert_eq!(shard["shard"]["of"], 2);
        for h in shard["deleted"].as_array().unwrap() {
            union.insert(h.as_str().unwrap().to_owned());
        }
    }
    assert_eq!(union, planned);

    let real = json(
        &backend,
        &["gc", "--keep-manifests", "2", "--grace", "0s"],
        0,
    );
    assert_eq!(real["dry_run"], false);
    assert_eq!(real["deleted"], dry["deleted"]);
    let connector = repo.connector().clone();
    assert!(!connector.exists(&object_key(&garbage)).await.unwrap());

    let v = json(&backend, &["verify"], 0);
    assert_eq!(v["clean"], true);
    assert!(!v["truncated_history"].as_array().unwrap().is_empty());

    // Human output.
    let out = run(&backend, &["gc", "--keep-since", "7d", "--dry-run"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("would delete"), "{}", stdout(&out));
    assert!(stderr(&out).contains("dry run"), "{}", stderr(&out));
}

#[tokio::test]
async fn verify_exits_4_and_names_every_bad_object() {
    let dir = tempfile::tempdir().unwrap();
    let backend = dir.path().join("store").to_str().unwrap().to_owned();
    let repo = local_repo(std::path::Path::new(&backend)).await;
    history(&repo).await;
    let clean = json(&backend, &["verify"], 0);
    assert_eq!(clean["clean"], true);
    assert_eq!(clean["manifests_checked"], 6);
    assert_eq!(clean["bad_objects"], 0);

    // Corrupt two segments: flip a byte, delete another.
    let tip = repo
        .read_ref(&name("main"))
        .await
        .unwrap()
        .unwrap()
        .manifest;
    let m = repo.manifest(&tip).await.unwrap();
    let root = dreamdb_protocol::dag::track_root_of(&m.tracks["label"].root).unwrap();
    let entries = repo
        .tracks()
        .scan_all(&root, dreamdb_protocol::track::KeyRange::all())
        .await
        .unwrap();
    let flipped = *entries[0].1.segment();
    let deleted = *entries[1].1.segment();
    let connector = repo.connector().clone();
    let key = object_key(&flipped);
    let mut bytes = connector.get(&key).await.unwrap().bytes.to_vec();
    bytes[3] ^= 1;
    let _ = connector
        .put(&key, bytes.into(), PutMode::Overwrite)
        .await
        .unwrap();
    connector.delete(&object_key(&deleted)).await.unwrap();

    let v = json(&backend, &["verify"], 4);
    assert_eq!(v["clean"], false);
    let bad: Vec<(String, String)> = v["bad"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["hash"].as_str().unwrap().to_owned(),
                b["class"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(bad.contains(&(flipped.to_hex(), "hash-mismatch".to_owned())));
    assert!(bad.contains(&(deleted.to_hex(), "missing".to_owned())));
    assert_eq!(bad.len(), 2);
    let out = run(&backend, &["verify"]);
    assert_eq!(code(&out), 4);
    assert!(stdout(&out).contains(&flipped.to_string()));

    // gc refuses to sweep over damage: exit 4, nothing deleted.
    let before = connector
        .list_all(&dreamdb_connector::KeyPrefix::new("objects/").unwrap())
        .await
        .unwrap()
        .len();
    let refused = json(
        &backend,
        &["gc", "--keep-manifests", "1", "--grace", "0s"],
        4,
    );
    assert_eq!(refused["error"]["class"], "damaged");
    let after = connector
        .list_all(&dreamdb_connector::KeyPrefix::new("objects/").unwrap())
        .await
        .unwrap()
        .len();
    assert_eq!(before, after);
}
