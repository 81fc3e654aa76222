//! `verify` (spec/0006 §6): a clean dataset verifies clean; a flipped
//! byte, a truncated object and a deleted object are each reported with
//! their hash, class and referrer — all of them in one run; a broken ref
//! is reported; `max_depth` bounds the history walked; a parent cut by GC
//! is truncated history (damage only with `strict_history`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::{Connector, ObjectKey, PutMode};
use dreamdb_core::ref_name::RefName;
use dreamdb_core::time::{TimeAnchor, TimeRange};
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{
    ChangeSet, CommitLoopOptions, CreateDataset, FieldChanges, Repo, RepoConfig,
};
use dreamdb_protocol::maintenance::{self, Referrer, VerifyOptions};
use dreamdb_protocol::objects::{
    object_key, DatasetName, FieldSpec, Fragment, Genesis, ScalarDtype, Schema, SchemaField,
};
use dreamdb_protocol::store::ObjectStore;
use dreamdb_protocol::track::{Change, TrackConfig, TrackKey, TrackValue};

fn name(s: &str) -> RefName {
    RefName::parse(s).unwrap()
}

struct World {
    connector: Arc<dyn Connector>,
    repo: Repo,
    segments: Vec<ContentHash>,
    manifests: Vec<ContentHash>,
}

async fn build() -> World {
    let connector: Arc<dyn Connector> = Arc::new(MemoryConnector::new());
    let config = RepoConfig {
        track: TrackConfig {
            fanout: 4,
            page_target_bytes: 512,
            inline_max_bytes: 400,
        },
        ..RepoConfig::default()
    };
    let repo = Repo::with_config(
        ObjectStore::new(connector.clone(), 1 << 20),
        DatasetName::parse("vset").unwrap(),
        config,
    )
    .unwrap();
    let mut fields = BTreeMap::new();
    fields.insert(
        "label".to_owned(),
        SchemaField {
            spec: FieldSpec::Scalar {
                dtype: ScalarDtype::I64,
                nullable: false,
            },
            tag: None,
        },
    );
    let (_, m0) = repo
        .create_dataset(CreateDataset {
            genesis: Genesis {
                dataset: "vset".to_owned(),
                created_unix_nanos: 1,
                nonce: [1; 16],
            },
            schema: Schema { fields },
            writer: "verify-test".to_owned(),
            message: "create".to_owned(),
            tracks: BTreeMap::new(),
            time_unix_nanos: None,
        })
        .await
        .unwrap();
    let mut segments = Vec::new();
    let mut manifests = vec![m0];
    for commit in 0..4u64 {
        let mut changes = Vec::new();
        for i in 0..3u64 {
            let anchor = commit * 100 + i;
            let seg = repo
                .put_object(&Fragment {
                    range: TimeRange::new(TimeAnchor::new(anchor), TimeAnchor::new(anchor + 1))
                        .unwrap(),
                    mime: "audio/ogg".to_owned(),
                    payload: format!("payload {anchor}").into_bytes(),
                })
                .await
                .unwrap();
            segments.push(seg);
            changes.push(Change::Put(
                TrackKey::anchor_run(anchor, &seg),
                TrackValue::AnchorRun {
                    segment: seg,
                    last_anchor: anchor,
                    count: 1,
                    table_offset: 0,
                    table_len: 8,
                    storage: None,
                },
            ));
        }
        let mut fields = BTreeMap::new();
        fields.insert(
            "label".to_owned(),
            FieldChanges {
                changes,
                ..FieldChanges::default()
            },
        );
        let done = repo
            .apply_changes(
                &name("main"),
                &ChangeSet {
                    fields,
                    records_delta: 3,
                    writer: "verify-test".to_owned(),
                    message: format!("append {commit}"),
                    ..ChangeSet::default()
                },
                &CommitLoopOptions::default(),
            )
            .await
            .unwrap();
        manifests.push(done.manifest);
    }
    repo.tag(&name("first"), manifests[1]).await.unwrap();
    World {
        connector,
        repo,
        segments,
        manifests,
    }
}

async fn raw(world: &World, hash: &ContentHash) -> Bytes {
    world.connector.get(&object_key(hash)).await.unwrap().bytes
}

async fn overwrite(world: &World, key: &ObjectKey, bytes: Vec<u8>) {
    let _written = world
        .connector
        .put(key, Bytes::from(bytes), PutMode::Overwrite)
        .await
        .unwrap();
}

async fn run(world: &World, options: &VerifyOptions) -> maintenance::VerifyReport {
    maintenance::verify(world.connector.clone(), options)
        .await
        .unwrap()
}

#[tokio::test]
async fn clean_dataset_verifies_clean() {
    let world = build().await;
    let report = run(&world, &VerifyOptions::default()).await;
    assert!(report.is_clean(), "{:?}", report.bad);
    assert_eq!((report.datasets, report.refs, report.tags), (1, 1, 1));
    assert_eq!(report.manifests_checked, 5);
    assert!(report.objects_checked >= 5 + 12 + 2, "{report:?}");
    assert_eq!(report.unknown_kinds, 0);
    assert!(report.truncated_history.is_empty());
}

#[tokio::test]
async fn every_damaged_object_is_reported() {
    let world = build().await;
    // The tip's track is paged: find one of its index pages.
    let tip = *world.manifests.last().unwrap();
    let m = world.repo.manifest(&tip).await.unwrap();
    let root = dreamdb_protocol::dag::track_root_of(&m.tracks["label"].root).unwrap();
    // The Manifest holds the root page: its first child is a stored page
    // the tip Manifest links directly.
    let Some(dreamdb_protocol::track::IndexPage::Internal { children, .. }) =
        root.top().map(|t| (**t).clone())
    else {
        panic!("expected a paged track with its root page held, got {root:?}");
    };
    let page = children[0].page;

    // 1. Flip a byte of a segment.
    let flipped = world.segments[0];
    let mut bytes = raw(&world, &flipped).await.to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    overwrite(&world, &object_key(&flipped), bytes).await;
    // 2. Truncate an index page the Manifest links.
    let truncated = page;
    let bytes = raw(&world, &truncated).await;
    overwrite(
        &world,
        &object_key(&truncated),
        bytes[..bytes.len() / 2].to_vec(),
    )
    .await;
    // 3. Delete another segment.
    let deleted = world.segments[5];
    world.connector.delete(&object_key(&deleted)).await.unwrap();
    // 4. Replace a segment with valid CBOR that is not an object, under
    //    its own (correct) name: stored under the wrong key.
    let stray = world.segments[7];
    let not_object =
        dreamdb_core::cbor::encode_value(&ciborium::value::Value::Integer(7.into())).unwrap();
    overwrite(&world, &object_key(&stray), not_object).await;

    let report = run(&world, &VerifyOptions::default()).await;
    assert!(!report.is_clean());
    let by_hash: BTreeMap<ContentHash, &maintenance::BadObject> =
        report.bad.iter().map(|b| (b.hash, b)).collect();
    assert_eq!(by_hash[&flipped].class, "hash-mismatch");
    assert_eq!(by_hash[&truncated].class, "hash-mismatch");
    assert_eq!(by_hash[&deleted].class, "missing");
    assert_eq!(by_hash[&stray].class, "hash-mismatch");
    assert!(
        by_hash[&truncated]
            .referenced_by
            .contains(&Referrer::Object(tip)),
        "{:?}",
        by_hash[&truncated].referenced_by
    );
    assert!(!by_hash[&deleted].referenced_by.is_empty());
    assert_eq!(report.bad.len(), 4, "{:#?}", report.bad);
}

#[tokio::test]
async fn non_canonical_and_undecodable_objects_are_named() {
    let world = build().await;
    // An object stored under its true name but not a valid object: a
    // referring Manifest would have to name it, so write a Manifest that
    // links it through its registry, and point a branch at it.
    let tip = *world.manifests.last().unwrap();
    let mut m = world.repo.manifest(&tip).await.unwrap();
    let not_canonical = vec![0xa1, 0x61, 0x6b, 0x19, 0x00, 0x01]; // {"k": 1} with a long int
    let bad_cbor = ContentHash::of(&not_canonical);
    overwrite(&world, &object_key(&bad_cbor), not_canonical).await;
    let wrong_shape = dreamdb_core::cbor::encode_value(&ciborium::value::Value::Map(vec![
        (
            ciborium::value::Value::Text("kind".into()),
            ciborium::value::Value::Text("genesis".into()),
        ),
        (
            ciborium::value::Value::Text("v".into()),
            ciborium::value::Value::Integer(1.into()),
        ),
    ]))
    .unwrap();
    let bad_shape = ContentHash::of(&wrong_shape);
    overwrite(&world, &object_key(&bad_shape), wrong_shape).await;
    m.registry.insert("com.example.a".to_owned(), bad_cbor);
    m.registry.insert("com.example.b".to_owned(), bad_shape);
    m.parents = vec![tip];
    m.height += 1;
    let linking = world.repo.put_object(&m).await.unwrap();
    world.repo.branch(&name("broken"), linking).await.unwrap();

    let report = run(&world, &VerifyOptions::default()).await;
    let classes: BTreeMap<ContentHash, String> = report
        .bad
        .iter()
        .map(|b| (b.hash, b.class.clone()))
        .collect();
    assert!(
        classes[&bad_cbor].starts_with("cbor:"),
        "{}",
        classes[&bad_cbor]
    );
    assert!(
        classes[&bad_shape].starts_with("decode:"),
        "{}",
        classes[&bad_shape]
    );
    assert_eq!(report.bad.len(), 2, "{:#?}", report.bad);
}

#[tokio::test]
async fn a_broken_ref_is_reported() {
    let world = build().await;
    let key = dreamdb_protocol::objects::ref_key(world.repo.dataset(), &name("garbage"));
    overwrite(&world, &key, b"not a ref".to_vec()).await;
    let report = run(&world, &VerifyOptions::default()).await;
    assert_eq!(report.bad_refs.len(), 1);
    assert_eq!(report.bad_refs[0].root, "vset:refs/garbage");
    assert!(!report.is_clean());
}

#[tokio::test]
async fn max_depth_bounds_the_history_walked() {
    let world = build().await;
    for (depth, expected) in [(0u64, 2u64), (1, 4), (2, 5), (10, 5)] {
        let report = run(
            &world,
            &VerifyOptions {
                max_depth: Some(depth),
                ..VerifyOptions::default()
            },
        )
        .await;
        // Tip and tagged Manifest at depth 0; their parents at depth 1; ...
        assert_eq!(report.manifests_checked, expected, "depth {depth}");
        assert!(report.is_clean());
    }
    // Damage beyond the depth is not seen; within it, it is.
    let oldest_seg = world.segments[0];
    world
        .connector
        .delete(&object_key(&oldest_seg))
        .await
        .unwrap();
    let shallow = run(
        &world,
        &VerifyOptions {
            max_depth: Some(0),
            ..VerifyOptions::default()
        },
    )
    .await;
    // The tip's track still reaches every segment (tracks accumulate).
    assert_eq!(shallow.bad.len(), 1);
    assert_eq!(shallow.bad[0].hash, oldest_seg);
}

#[tokio::test]
async fn a_parent_cut_by_gc_is_truncated_history_unless_strict() {
    let world = build().await;
    let genesis_manifest = world.manifests[0];
    world
        .connector
        .delete(&object_key(&genesis_manifest))
        .await
        .unwrap();
    let lenient = run(&world, &VerifyOptions::default()).await;
    assert!(lenient.is_clean(), "{:?}", lenient.bad);
    assert_eq!(lenient.truncated_history.len(), 1);
    assert_eq!(lenient.truncated_history[0].missing, genesis_manifest);
    assert_eq!(lenient.truncated_history[0].child, world.manifests[1]);
    let strict = run(
        &world,
        &VerifyOptions {
            strict_history: true,
            ..VerifyOptions::default()
        },
    )
    .await;
    assert_eq!(strict.bad.len(), 1);
    assert_eq!(strict.bad[0].hash, genesis_manifest);
    assert_eq!(strict.bad[0].class, "missing");
}
