//! GC safety (spec/0006 §4): a dataset history with branches, tags, a
//! merge, a reset branch, tombstones, spatial-index lineage and paged
//! tracks, plus unreachable garbage written before and after the grace
//! boundary. GC must delete exactly the unreachable objects past the grace
//! period, keep every ref, tag and retained Manifest openable (and `verify`
//! clean), agree between dry run, real run and sharded runs, and refuse to
//! sweep when a reachable object is damaged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ciborium::value::Value;
use dreamdb_connector::local::LocalConnector;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::{Connector, ConnectorExt, KeyPrefix};
use dreamdb_core::ref_name::RefName;
use dreamdb_core::time::{Ticks, TimeAnchor, TimeRange};
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{
    ChangeSet, CommitLoopOptions, CreateDataset, Draft, FieldChanges, MergeOptions, Repo,
    RepoConfig, RetryPolicy, TOMBSTONES_KEY,
};
use dreamdb_protocol::maintenance::{self, GcOptions, GcReport, MaintenanceError, VerifyOptions};
use dreamdb_protocol::objects::{
    object_key, DatasetName, FieldSpec, Fragment, Genesis, IndexSpec, Manifest, Metric,
    ScalarDtype, Schema, SchemaField, SpatialIndexObject, TombstoneList,
};
use dreamdb_protocol::store::ObjectStore;
use dreamdb_protocol::track::{Change, KeyRange, TrackConfig, TrackKey, TrackValue};

fn name(s: &str) -> RefName {
    RefName::parse(s).unwrap()
}

fn config() -> RepoConfig {
    RepoConfig {
        // Tiny pages: tracks become paged B-trees after a few entries, so
        // copy-on-write leaves old index pages behind.
        track: TrackConfig {
            fanout: 4,
            page_target_bytes: 512,
            inline_max_bytes: 400,
        },
        retry: RetryPolicy {
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
            ..RetryPolicy::default()
        },
        ..RepoConfig::default()
    }
}

fn schema() -> Schema {
    let mut fields = BTreeMap::new();
    fields.insert(
        "emb".to_owned(),
        SchemaField {
            spec: FieldSpec::Embedding {
                dim: 4,
                metric: Metric::L2,
                index: IndexSpec::Ivf { k: 8 },
                compression: None,
                rerank: false,
            },
            tag: None,
        },
    );
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
    Schema { fields }
}

/// A real (decodable) segment object, distinct per `tag`.
async fn segment(repo: &Repo, tag: &str, at: u64) -> ContentHash {
    repo.put_object(&Fragment {
        range: TimeRange::new(TimeAnchor::new(at), TimeAnchor::new(at + 10)).unwrap(),
        mime: "video/mp4".to_owned(),
        payload: tag.as_bytes().to_vec(),
    })
    .await
    .unwrap()
}

async fn spatial_index(repo: &Repo, seed: u64, parents: Vec<ContentHash>) -> ContentHash {
    repo.put_object(&SpatialIndexObject {
        algorithm: "dreamdb.ivf".to_owned(),
        metric: Metric::L2,
        dim: 4,
        cells: 8,
        params: Value::Integer(seed.into()),
        parents,
        changed_cells: if seed == 0 { vec![] } else { vec![7] },
    })
    .await
    .unwrap()
}

/// Appends `n` runs (an anchor run on `label`, a cell run on `emb`) to
/// `branch`; returns the new Manifest and the segments written.
async fn append(
    repo: &Repo,
    branch: &str,
    tag: &str,
    n: u64,
    si: ContentHash,
) -> (ContentHash, Vec<ContentHash>) {
    let mut label = Vec::new();
    let mut emb = Vec::new();
    let mut segs = Vec::new();
    for i in 0..n {
        let anchor = 1_000 * (tag.len() as u64) + 17 * i + u64::from(tag.as_bytes()[0]) * 100_000;
        let seg = segment(repo, &format!("{tag}-{i}"), anchor).await;
        // Raw rows of the run, in their own object (linked from the
        // cell-run value's `r`, never from the segment).
        let raw = segment(repo, &format!("raw {tag}-{i}"), anchor).await;
        segs.push(seg);
        segs.push(raw);
        label.push(Change::Put(
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
        emb.push(Change::Put(
            TrackKey::cell_run((i % 8) as u32, &seg),
            TrackValue::CellRun {
                segment: seg,
                offset: 0,
                len: 4,
                count: 1,
                run_hash: ContentHash::of(tag.as_bytes()),
                raw: None,
            }
            .with_raw_rows(dreamdb_protocol::track::RawRows {
                storage: raw,
                offset: 0,
                len: 16,
                hash: ContentHash::of(b"rows"),
            }),
        ));
    }
    let mut fields = BTreeMap::new();
    fields.insert(
        "label".to_owned(),
        FieldChanges {
            changes: label,
            ..FieldChanges::default()
        },
    );
    fields.insert(
        "emb".to_owned(),
        FieldChanges {
            changes: emb,
            spatial_index: Some(si),
            compressor: None,
        },
    );
    let changes = ChangeSet {
        fields,
        records_delta: n as i64,
        writer: "gc-test".to_owned(),
        message: format!("append {tag}"),
        ..ChangeSet::default()
    };
    let done = repo
        .apply_changes(&name(branch), &changes, &CommitLoopOptions::default())
        .await
        .unwrap();
    (done.manifest, segs)
}

/// A maintenance-style commit moving `emb` to spatial index `si`.
async fn switch_index(repo: &Repo, branch: &str, si: ContentHash) -> ContentHash {
    repo.commit_changes(
        &name(branch),
        |_, tip| async move {
            let mut draft = Draft::from_manifest(&tip, "gc-test", "new spatial index");
            if let Some(state) = draft.tracks.get_mut("emb") {
                state.spatial_index = Some(si);
            }
            Ok(draft)
        },
        &CommitLoopOptions::default(),
    )
    .await
    .unwrap()
    .manifest
}

async fn delete(repo: &Repo, branch: &str, anchor: u64) -> ContentHash {
    let changes = ChangeSet {
        tombstones: vec![dreamdb_protocol::objects::Tombstone {
            anchor: TimeAnchor::new(anchor),
            reason: "gdpr".to_owned(),
            time_unix_nanos: 5,
        }],
        records_delta: -1,
        writer: "gc-test".to_owned(),
        message: format!("delete {anchor}"),
        ..ChangeSet::default()
    };
    repo.apply_changes(&name(branch), &changes, &CommitLoopOptions::default())
        .await
        .unwrap()
        .manifest
}

/// The world a GC runs over.
struct World {
    connector: Arc<dyn Connector>,
    repo: Repo,
    _dir: Option<tempfile::TempDir>,
    /// Unreachable, written before the grace boundary.
    old_garbage: Vec<ContentHash>,
    /// Unreachable, written after it.
    young_garbage: Vec<ContentHash>,
    /// The reset branch's abandoned commit and its segments.
    abandoned: Vec<ContentHash>,
    /// `main`'s history, highest first, before GC.
    main_history: Vec<ContentHash>,
    /// Every branch's history, highest first, before GC.
    branch_histories: Vec<(String, Vec<ContentHash>)>,
    /// The tagged Manifest (old, not in main's newest 2).
    tagged: ContentHash,
    /// Segments appended to main (reachable from the tip).
    main_segments: Vec<ContentHash>,
    /// Nanoseconds between the grace boundary and `now`.
    grace: Ticks,
    now: u64,
}

async fn build(connector: Arc<dyn Connector>, dir: Option<tempfile::TempDir>) -> World {
    let store = ObjectStore::new(connector.clone(), 8 << 20);
    let repo = Repo::with_config(store, DatasetName::parse("gcset").unwrap(), config()).unwrap();
    repo.create_dataset(CreateDataset {
        genesis: Genesis {
            dataset: "gcset".to_owned(),
            created_unix_nanos: 1,
            nonce: [3; 16],
        },
        schema: schema(),
        writer: "gc-test".to_owned(),
        message: "create".to_owned(),
        tracks: BTreeMap::new(),
        time_unix_nanos: None,
    })
    .await
    .unwrap();
    let si0 = spatial_index(&repo, 0, vec![]).await;
    let si1 = spatial_index(&repo, 1, vec![si0]).await;
    let mut main_segments = Vec::new();
    let (c1, s) = append(&repo, "main", "a", 6, si0).await;
    main_segments.extend(s);
    // A feature branch, merged back later.
    repo.branch(&name("feature"), c1).await.unwrap();
    let (_f1, s) = append(&repo, "feature", "f", 3, si0).await;
    main_segments.extend(s);
    // A scratch branch whose commit is abandoned by a reset.
    repo.branch(&name("scratch"), c1).await.unwrap();
    let (s1, s1_segments) = append(&repo, "scratch", "s", 2, si0).await;
    repo.reset(&name("scratch"), c1).await.unwrap();
    let (c2, s) = append(&repo, "main", "b", 5, si0).await;
    main_segments.extend(s);
    repo.tag(&name("v1"), c2).await.unwrap();
    switch_index(&repo, "main", si1).await;
    let (_c3, s) = append(&repo, "main", "c", 4, si1).await;
    main_segments.extend(s);
    let _c4 = delete(&repo, "main", 100_000 * u64::from(b'a')).await;
    let feature_tip = repo.read_ref(&name("feature")).await.unwrap().unwrap();
    let merged = repo
        .merge(
            &name("main"),
            feature_tip.manifest,
            &MergeOptions::union("gc-test", "merge feature"),
        )
        .await
        .unwrap();
    assert!(matches!(
        merged,
        dreamdb_protocol::dag::MergeOutcome::Merged { .. }
    ));
    let (_c6, s) = append(&repo, "main", "d", 3, si1).await;
    main_segments.extend(s);
    let _c7 = delete(&repo, "main", 100_000 * u64::from(b'b')).await;

    // Old garbage: a lone segment, and an abandoned writer's unpublished
    // Manifest with its own segment.
    let lone = segment(&repo, "lost-writer-segment", 9).await;
    let tip = repo
        .read_ref(&name("main"))
        .await
        .unwrap()
        .unwrap()
        .manifest;
    let mut unpublished: Manifest = repo.manifest(&tip).await.unwrap();
    unpublished.parents = vec![tip];
    unpublished.height += 1;
    unpublished.message = "never published".to_owned();
    let unpublished = repo.put_object(&unpublished).await.unwrap();
    let mut old_garbage = vec![lone, unpublished];

    let mut abandoned = s1_segments;
    abandoned.push(s1);
    old_garbage.extend(abandoned.iter().copied());

    tokio::time::sleep(Duration::from_millis(30)).await;
    let boundary = maintenance::now_unix_nanos();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let young_garbage = vec![
        segment(&repo, "young-1", 1).await,
        segment(&repo, "young-2", 2).await,
    ];
    tokio::time::sleep(Duration::from_millis(5)).await;
    let now = maintenance::now_unix_nanos();

    let main_history: Vec<ContentHash> = repo
        .history(tip)
        .collect()
        .await
        .unwrap()
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    let mut branch_histories = Vec::new();
    for b in ["main", "feature", "scratch"] {
        let t = repo.read_ref(&name(b)).await.unwrap().unwrap().manifest;
        let h = repo.history(t).collect().await.unwrap();
        branch_histories.push((b.to_owned(), h.into_iter().map(|(h, _)| h).collect()));
    }
    World {
        branch_histories,
        connector,
        repo,
        _dir: dir,
        old_garbage,
        young_garbage,
        abandoned,
        main_history,
        tagged: c2,
        main_segments,
        grace: Ticks::from_nanos(now - boundary),
        now,
    }
}

async fn memory_world() -> World {
    build(Arc::new(MemoryConnector::new()), None).await
}

async fn local_world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalConnector::open(dir.path().join("store")).unwrap();
    build(Arc::new(local), Some(dir)).await
}

async fn keys(connector: &Arc<dyn Connector>, prefix: &str) -> BTreeSet<String> {
    connector
        .list_all(&KeyPrefix::new(prefix).unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key.as_str().to_owned())
        .collect()
}

async fn exists(connector: &Arc<dyn Connector>, hash: &ContentHash) -> bool {
    connector.exists(&object_key(hash)).await.unwrap()
}

fn options(world: &World) -> GcOptions {
    let mut o = GcOptions::new(world.grace, world.now);
    o.keep_manifests = Some(2);
    o
}

/// Opens `manifest` the way a reader would and reads everything it
/// reaches: schema, genesis, every track page and segment, the spatial
/// index lineage, the tombstone list and its ancestors.
async fn open_fully(repo: &Repo, manifest: ContentHash) {
    let m = repo.manifest(&manifest).await.unwrap();
    repo.schema(&m.schema).await.unwrap();
    let _: Genesis = repo.get_object(&m.genesis).await.unwrap();
    for state in m.tracks.values() {
        let root = dreamdb_protocol::dag::track_root_of(&state.root).unwrap();
        repo.tracks().verify(&root).await.unwrap();
        for (_, value) in repo
            .tracks()
            .scan_all(&root, KeyRange::all())
            .await
            .unwrap()
        {
            let _: Fragment = repo.get_object(value.segment()).await.unwrap();
        }
        let mut si = state.spatial_index.into_iter().collect::<Vec<_>>();
        while let Some(h) = si.pop() {
            let object: SpatialIndexObject = repo.get_object(&h).await.unwrap();
            si.extend(object.parents);
        }
    }
    if let Some(list) = m.registry.get(TOMBSTONES_KEY) {
        let mut lists = vec![*list];
        while let Some(h) = lists.pop() {
            let object: TombstoneList = repo.get_object(&h).await.unwrap();
            lists.extend(object.parents);
        }
    }
}

async fn check_world(world: World) {
    let c = &world.connector;
    let roots_before = keys(c, "datasets/").await;
    let objects_before = keys(c, "objects/").await;

    // Dry run: reports, deletes nothing.
    let mut dry = options(&world);
    dry.dry_run = true;
    let planned = maintenance::gc(c.clone(), &dry).await.unwrap();
    assert!(planned.dry_run);
    assert_eq!(keys(c, "objects/").await, objects_before, "dry run deleted");
    assert_eq!(planned.listed_objects as usize, objects_before.len());
    assert_eq!(planned.datasets, 1);
    assert_eq!(planned.refs, 3, "main, feature, scratch");
    assert_eq!(planned.tags, 1);

    // Sharded dry runs over 3 shards plan the same set.
    let mut union = BTreeSet::new();
    let mut listed = 0;
    for i in 0..3 {
        let mut o = dry.clone();
        o.shard = Some((i, 3));
        let r = maintenance::gc(c.clone(), &o).await.unwrap();
        listed += r.listed_objects;
        for h in r.deleted {
            assert!(union.insert(h), "shards overlap on {h}");
        }
    }
    assert_eq!(listed, planned.listed_objects);
    assert_eq!(
        union,
        planned.deleted.iter().copied().collect::<BTreeSet<_>>()
    );

    // The real run deletes exactly what the dry run listed.
    let report: GcReport = maintenance::gc(c.clone(), &options(&world)).await.unwrap();
    assert_eq!(report.deleted, planned.deleted);
    assert_eq!(report.bytes_deleted, planned.bytes_deleted);
    assert_eq!(report.kept_young, planned.kept_young);
    eprintln!(
        "gc figures: listed {} marked {} retained manifests {} deleted {} ({} B) kept young {}",
        report.listed_objects,
        report.marked_objects,
        report.retained_manifests,
        report.deleted.len(),
        report.bytes_deleted,
        report.kept_young
    );
    let objects_after = keys(c, "objects/").await;
    assert_eq!(
        objects_before.len() - objects_after.len(),
        report.deleted.len()
    );
    for h in &report.deleted {
        assert!(!exists(c, h).await, "{h} reported deleted but present");
    }

    // Refs and tags are untouched.
    assert_eq!(keys(c, "datasets/").await, roots_before);

    // Old garbage is gone; young garbage is kept (grace).
    for h in &world.old_garbage {
        assert!(report.deleted.contains(h), "old garbage {h} kept");
    }
    for h in &world.abandoned {
        assert!(!exists(c, h).await, "abandoned {h} kept");
    }
    for h in &world.young_garbage {
        assert!(exists(c, h).await, "young garbage {h} deleted");
        assert!(!report.deleted.contains(h));
    }
    assert!(report.kept_young >= world.young_garbage.len() as u64);

    // Retention: the newest 2 Manifests of every branch's history and
    // the tag; older Manifests of main are gone.
    let mut protected: BTreeSet<ContentHash> = BTreeSet::new();
    for (b, history) in &world.branch_histories {
        for h in history.iter().take(2) {
            assert!(exists(c, h).await, "{b}: retained manifest {h} deleted");
            protected.insert(*h);
        }
    }
    assert!(exists(c, &world.tagged).await, "tagged manifest deleted");
    protected.insert(world.tagged);
    let mut gone = 0;
    for h in &world.main_history {
        if !protected.contains(h) {
            assert!(report.deleted.contains(h), "unretained manifest {h} kept");
            gone += 1;
        }
    }
    assert!(gone >= 3, "the test should drop some history ({gone})");
    assert_eq!(report.retained_manifests as usize, protected.len());

    // Every ref, tag and retained Manifest still opens in full.
    let fresh = Repo::with_config(
        ObjectStore::new(c.clone(), 0),
        DatasetName::parse("gcset").unwrap(),
        config(),
    )
    .unwrap();
    for h in &protected {
        open_fully(&fresh, *h).await;
    }
    for s in &world.main_segments {
        assert!(exists(c, s).await, "reachable segment {s} deleted");
    }

    // verify: clean; history cut where GC dropped parents.
    let v = maintenance::verify(c.clone(), &VerifyOptions::default())
        .await
        .unwrap();
    assert!(v.is_clean(), "{:?}", v.bad);
    assert!(!v.truncated_history.is_empty());

    // A second GC finds nothing more, tolerating the cut history.
    let again = maintenance::gc(c.clone(), &options(&world)).await.unwrap();
    assert!(again.deleted.is_empty(), "{:?}", again.deleted);
    assert!(!again.missing_parents.is_empty());
    assert_eq!(again.marked_objects, report.marked_objects);
}

#[tokio::test]
async fn gc_is_safe_on_memory() {
    check_world(memory_world().await).await;
}

#[tokio::test]
async fn gc_is_safe_on_local_directory() {
    check_world(local_world().await).await;
}

/// Drops every root but `main`, so retention counts are exact.
async fn only_main(world: &World) {
    for b in ["feature", "scratch"] {
        world.repo.delete_branch(&name(b)).await.unwrap();
    }
    world
        .connector
        .delete(&dreamdb_protocol::objects::tag_key(
            world.repo.dataset(),
            &name("v1"),
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn keep_manifests_n_keeps_n() {
    for n in [1u64, 3, 5] {
        let world = memory_world().await;
        let c = &world.connector;
        only_main(&world).await;
        let mut o = options(&world);
        o.keep_manifests = Some(n);
        let report = maintenance::gc(c.clone(), &o).await.unwrap();
        assert_eq!(report.retained_manifests, n, "keep {n}");
        for (i, h) in world.main_history.iter().enumerate() {
            assert_eq!(
                exists(c, h).await,
                (i as u64) < n,
                "keep {n}: manifest #{i} of main's history"
            );
        }
        let v = maintenance::verify(c.clone(), &VerifyOptions::default())
            .await
            .unwrap();
        assert!(v.is_clean(), "keep {n}: {:?}", v.bad);
    }
}

#[tokio::test]
async fn keep_since_keeps_the_window() {
    let world = memory_world().await;
    only_main(&world).await;
    let c = &world.connector;
    let mut times = Vec::new();
    for h in &world.main_history {
        times.push(world.repo.manifest(h).await.unwrap().time_unix_nanos);
    }
    // A window that reaches back to the 4th Manifest of main's history.
    let cutoff = times[3];
    let mut o = GcOptions::new(world.grace, world.now);
    o.keep_since = Some(Ticks::from_nanos(world.now - cutoff));
    o.dry_run = true;
    let report = maintenance::gc(c.clone(), &o).await.unwrap();
    assert_eq!(report.retained_manifests, 4);
    for (h, t) in world.main_history.iter().zip(&times) {
        assert_eq!(
            !report.deleted.contains(h),
            *t >= cutoff,
            "manifest at {t} (cutoff {cutoff})"
        );
    }
}

#[tokio::test]
async fn zero_grace_deletes_young_garbage_too() {
    let world = memory_world().await;
    let mut o = options(&world);
    o.grace = Ticks::ZERO;
    o.now_unix_nanos = maintenance::now_unix_nanos() + 1;
    let report = maintenance::gc(world.connector.clone(), &o).await.unwrap();
    for h in world.young_garbage.iter().chain(&world.old_garbage) {
        assert!(report.deleted.contains(h));
    }
    assert_eq!(report.kept_young, 0);
}

#[tokio::test]
async fn damaged_reachable_object_stops_gc_before_any_delete() {
    let world = memory_world().await;
    let c = &world.connector;
    // Lose a reachable segment.
    let victim = world.main_segments[0];
    c.delete(&object_key(&victim)).await.unwrap();
    let before = keys(c, "objects/").await;
    let err = maintenance::gc(c.clone(), &options(&world))
        .await
        .unwrap_err();
    match &err {
        MaintenanceError::Damaged { problems } => {
            assert!(problems.iter().any(|p| p.contains(&victim.to_string())));
        }
        other => panic!("expected Damaged, got {other}"),
    }
    assert_eq!(err.class(), "damaged");
    assert_eq!(
        keys(c, "objects/").await,
        before,
        "gc deleted despite damage"
    );
}

#[tokio::test]
async fn invalid_shard_is_refused() {
    let world = memory_world().await;
    let mut o = options(&world);
    o.shard = Some((4, 4));
    let err = maintenance::gc(world.connector.clone(), &o)
        .await
        .unwrap_err();
    assert_eq!(err.class(), "invalid-argument");
}
