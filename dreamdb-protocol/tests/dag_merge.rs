//! Merges (spec/0008 §5): fast-forward, 3-way union, deletes, conflicts,
//! ours/theirs, spatial-index refusal, N-way merge with one ref CAS and
//! tombstone union, and scalar/blob/fragment tracks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dag_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use dag_support::*;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::Connector;
use dreamdb_core::time::TimeAnchor;
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{
    ChangeSet, CommitLoopOptions, CommitOptions, DagError, Draft, MergeOptions, MergeOutcome, Repo,
    Side, Strategy, TOMBSTONES_KEY,
};
use dreamdb_protocol::objects::{Tombstone, TombstoneList};
use dreamdb_protocol::track::{Change, TrackKey, TrackValue};

fn opts() -> MergeOptions {
    MergeOptions::union("merger", "merge")
}

async fn setup() -> (Repo, ContentHash) {
    let repo = repo(Arc::new(MemoryConnector::new()));
    let m0 = create(&repo).await;
    (repo, m0)
}

async fn tip(repo: &Repo, branch: &str) -> ContentHash {
    repo.read_ref(&name(branch))
        .await
        .unwrap()
        .unwrap()
        .manifest
}

fn keys(t: &Tracks, field: &str) -> Vec<Vec<u8>> {
    t.get(field)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn k(e: &(TrackKey, TrackValue)) -> Vec<u8> {
    e.0.as_bytes().to_vec()
}

#[tokio::test]
async fn fast_forward_and_already_up_to_date() {
    let (repo, m0) = setup().await;
    repo.branch(&name("dev"), m0).await.unwrap();
    let s = segment(&repo, "s1").await;
    let dev = append(&repo, "dev", "label", vec![anchor_entry(10, s, 3)], None)
        .await
        .unwrap();
    let out = repo.merge(&name("main"), dev, &opts()).await.unwrap();
    assert_eq!(out, MergeOutcome::FastForward { to: dev });
    assert_eq!(tip(&repo, "main").await, dev);
    let again = repo.merge(&name("main"), dev, &opts()).await.unwrap();
    assert_eq!(again, MergeOutcome::AlreadyUpToDate { at: dev });
    // Older history is up to date too.
    let old = repo.merge(&name("main"), m0, &opts()).await.unwrap();
    assert_eq!(old, MergeOutcome::AlreadyUpToDate { at: dev });

    // Asked for a merge commit: one Manifest with two parents.
    repo.branch(&name("dev2"), dev).await.unwrap();
    let dev2 = append(&repo, "dev2", "label", vec![anchor_entry(20, s, 1)], None)
        .await
        .unwrap();
    let mut no_ff = opts();
    no_ff.allow_fast_forward = false;
    let MergeOutcome::Merged { manifest, .. } =
        repo.merge(&name("main"), dev2, &no_ff).await.unwrap()
    else {
        panic!("expected a merge commit");
    };
    let m = repo.manifest(&manifest).await.unwrap();
    assert_eq!(m.parents, vec![dev, dev2]);
    assert_eq!(
        tracks_of(&repo, &manifest).await,
        tracks_of(&repo, &dev2).await
    );
}

#[tokio::test]
async fn union_of_two_appends_to_one_field() {
    let (repo, m0) = setup().await;
    repo.branch(&name("a"), m0).await.unwrap();
    repo.branch(&name("b"), m0).await.unwrap();
    let (sa, sb) = (segment(&repo, "a").await, segment(&repo, "b").await);
    let ea: Vec<_> = (0..6).map(|i| anchor_entry(100 + i, sa, 2)).collect();
    let eb: Vec<_> = (0..6).map(|i| anchor_entry(200 + i, sb, 3)).collect();
    let a = append(&repo, "a", "label", ea.clone(), None).await.unwrap();
    let b = append(&repo, "b", "label", eb.clone(), None).await.unwrap();
    let MergeOutcome::Merged { manifest, attempts } =
        repo.merge(&name("a"), b, &opts()).await.unwrap()
    else {
        panic!("expected a merge");
    };
    assert_eq!(attempts, 1);
    let m = repo.manifest(&manifest).await.unwrap();
    assert_eq!(m.parents, vec![a, b]);
    assert_eq!(m.height, 2);
    assert_eq!(m.records, 6 * 2 + 6 * 3);
    let merged = tracks_of(&repo, &manifest).await;
    let mut expected: Vec<Vec<u8>> = ea.iter().chain(&eb).map(k).collect();
    expected.sort();
    assert_eq!(keys(&merged, "label"), expected);
    assert_eq!(tip(&repo, "a").await, manifest);
    assert!(repo.is_ancestor(b, manifest).await.unwrap());
    assert!(repo.is_ancestor(a, manifest).await.unwrap());
}

#[tokio::test]
async fn union_with_a_delete_on_one_side() {
    let (repo, m0) = setup().await;
    let s = segment(&repo, "base").await;
    let (e1, e2) = (anchor_entry(1, s, 1), anchor_entry(2, s, 1));
    let base = append(&repo, "main", "label", vec![e1, e2], None)
        .await
        .unwrap();
    let _ = m0;
    repo.branch(&name("b"), base).await.unwrap();
    delete(&repo, "main", "label", vec![e1.0]).await;
    let s3 = segment(&repo, "three").await;
    let e3 = anchor_entry(3, s3, 1);
    let b = append(&repo, "b", "label", vec![e3], None).await.unwrap();
    let MergeOutcome::Merged { manifest, .. } =
        repo.merge(&name("main"), b, &opts()).await.unwrap()
    else {
        panic!()
    };
    let merged = tracks_of(&repo, &manifest).await;
    assert_eq!(keys(&merged, "label"), vec![k(&e2), k(&e3)]);
}

#[tokio::test]
async fn same_key_changed_differently_is_a_conflict() {
    let (repo, _) = setup().await;
    let s = segment(&repo, "x").await;
    let base = append(&repo, "main", "label", vec![anchor_entry(5, s, 1)], None)
        .await
        .unwrap();
    repo.branch(&name("b"), base).await.unwrap();
    // Same key (anchor 5, segment s), different values.
    let ours = append(&repo, "main", "label", vec![anchor_entry(5, s, 2)], None)
        .await
        .unwrap();
    let theirs = append(&repo, "b", "label", vec![anchor_entry(5, s, 3)], None)
        .await
        .unwrap();
    let err = repo
        .merge(&name("main"), theirs, &opts())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DagError::MergeConflict { ref field, .. } if field == "track:label"),
        "{err}"
    );
    assert_eq!(
        tip(&repo, "main").await,
        ours,
        "a refused merge moves nothing"
    );

    // Ours / theirs resolve it by taking one side's whole field.
    let MergeOutcome::Merged { manifest, .. } = repo
        .merge(&name("main"), theirs, &opts().with_strategy(Strategy::Ours))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        tracks_of(&repo, &manifest).await,
        tracks_of(&repo, &ours).await
    );
    repo.reset(&name("main"), ours).await.unwrap();
    let mut per_field = opts();
    per_field.fields.insert("label".to_owned(), Side::Theirs);
    let MergeOutcome::Merged { manifest, .. } =
        repo.merge(&name("main"), theirs, &per_field).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(
        tracks_of(&repo, &manifest).await,
        tracks_of(&repo, &theirs).await
    );
}

#[tokio::test]
async fn ours_and_theirs_drop_the_other_sides_changes() {
    let (repo, m0) = setup().await;
    repo.branch(&name("b"), m0).await.unwrap();
    let (sa, sb) = (segment(&repo, "a").await, segment(&repo, "b").await);
    let a = append(&repo, "main", "label", vec![anchor_entry(1, sa, 1)], None)
        .await
        .unwrap();
    let b = append(&repo, "b", "label", vec![anchor_entry(2, sb, 1)], None)
        .await
        .unwrap();
    let b2 = append(&repo, "b", "img", vec![anchor_entry(2, sb, 1)], None)
        .await
        .unwrap();
    let _ = b;
    let MergeOutcome::Merged { manifest, .. } = repo
        .merge(&name("main"), b2, &opts().with_strategy(Strategy::Theirs))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        tracks_of(&repo, &manifest).await,
        tracks_of(&repo, &b2).await
    );
    repo.reset(&name("main"), a).await.unwrap();
    // Per field: label from ours, the rest by union (img comes from theirs).
    let mut mixed = opts();
    mixed.fields.insert("label".to_owned(), Side::Ours);
    let MergeOutcome::Merged { manifest, .. } =
        repo.merge(&name("main"), b2, &mixed).await.unwrap()
    else {
        panic!()
    };
    let got = tracks_of(&repo, &manifest).await;
    assert_eq!(got.get("label"), tracks_of(&repo, &a).await.get("label"));
    assert_eq!(got.get("img"), tracks_of(&repo, &b2).await.get("img"));
}

/// A base with field `emb` under spatial index `si0`, branches `main` and
/// `b` at it.
async fn spatial_setup() -> (Repo, ContentHash, ContentHash) {
    let (repo, _) = setup().await;
    let si0 = spatial_index(&repo, 0, vec![], vec![]).await;
    let s = segment(&repo, "base").await;
    let base = append(
        &repo,
        "main",
        "emb",
        vec![cell_entry(3, s, 4), cell_entry(5, s, 4)],
        Some(si0),
    )
    .await
    .unwrap();
    repo.branch(&name("b"), base).await.unwrap();
    (repo, si0, base)
}

#[tokio::test]
async fn both_sides_changed_the_spatial_index() {
    let (repo, si0, _) = spatial_setup().await;
    let si1 = spatial_index(&repo, 1, vec![si0], vec![3]).await;
    let si2 = spatial_index(&repo, 2, vec![si0], vec![5]).await;
    let s1 = segment(&repo, "r1").await;
    let s2 = segment(&repo, "r2").await;
    let ours = set_spatial_index(
        &repo,
        "main",
        "emb",
        si1,
        vec![Change::Put(cell_entry(3, s1, 4).0, cell_entry(3, s1, 4).1)],
    )
    .await;
    let theirs = set_spatial_index(
        &repo,
        "b",
        "emb",
        si2,
        vec![Change::Put(cell_entry(5, s2, 4).0, cell_entry(5, s2, 4).1)],
    )
    .await;
    let err = repo
        .merge(&name("main"), theirs, &opts())
        .await
        .unwrap_err();
    match err {
        DagError::SpatialIndexIncompatible {
            field,
            ours: o,
            theirs: t,
        } => {
            assert_eq!(field, "emb");
            assert_eq!((o, t), (Some(si1), Some(si2)));
        }
        other => panic!("{other}"),
    }
    assert_eq!(tip(&repo, "main").await, ours);
}

#[tokio::test]
async fn one_side_changed_the_index_other_appended_in_a_changed_cell() {
    let (repo, si0, _) = spatial_setup().await;
    // Theirs rebuilds cell 3 under si1.
    let si1 = spatial_index(&repo, 1, vec![si0], vec![3]).await;
    let r = segment(&repo, "rebuilt").await;
    let theirs = set_spatial_index(
        &repo,
        "b",
        "emb",
        si1,
        vec![Change::Put(cell_entry(3, r, 4).0, cell_entry(3, r, 4).1)],
    )
    .await;
    // Ours appends into cell 3 under the old index: mis-routed under si1.
    let s = segment(&repo, "new").await;
    append(&repo, "main", "emb", vec![cell_entry(3, s, 1)], Some(si0))
        .await
        .unwrap();
    let err = repo
        .merge(&name("main"), theirs, &opts())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DagError::SpatialIndexIncompatible { ref field, ours, theirs } if field == "emb" && ours == Some(si0) && theirs == Some(si1)),
        "{err}"
    );
    // The same append, rebased onto the rebuilt tip, is refused as well.
    repo.reset(&name("main"), theirs).await.unwrap();
    let err = append(&repo, "main", "emb", vec![cell_entry(3, s, 1)], Some(si0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DagError::SpatialIndexIncompatible { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn one_side_changed_the_index_other_appended_in_unchanged_cells() {
    let (repo, si0, _) = spatial_setup().await;
    let si1 = spatial_index(&repo, 1, vec![si0], vec![3]).await;
    let r = segment(&repo, "rebuilt").await;
    let theirs = set_spatial_index(
        &repo,
        "b",
        "emb",
        si1,
        vec![Change::Put(cell_entry(3, r, 4).0, cell_entry(3, r, 4).1)],
    )
    .await;
    let s = segment(&repo, "new").await;
    let e = cell_entry(5, s, 1);
    append(&repo, "main", "emb", vec![e], Some(si0))
        .await
        .unwrap();
    let MergeOutcome::Merged { manifest, .. } =
        repo.merge(&name("main"), theirs, &opts()).await.unwrap()
    else {
        panic!()
    };
    let m = repo.manifest(&manifest).await.unwrap();
    assert_eq!(m.tracks["emb"].spatial_index, Some(si1));
    let got = tracks_of(&repo, &manifest).await;
    assert!(got["emb"].contains_key(&k(&e)));
    assert!(got["emb"].contains_key(&k(&cell_entry(3, r, 4))));
    // And a rebase of an append in an unchanged cell onto the new index.
    let s2 = segment(&repo, "later").await;
    let later = append(&repo, "main", "emb", vec![cell_entry(6, s2, 1)], Some(si0))
        .await
        .unwrap();
    let lm = repo.manifest(&later).await.unwrap();
    assert_eq!(lm.tracks["emb"].spatial_index, Some(si1));
}

#[tokio::test]
async fn merge_many_four_branches_one_manifest_one_cas() {
    let counter = Arc::new(RefPutCounter::new(Arc::new(MemoryConnector::new())));
    let connector: Arc<dyn Connector> = counter.clone();
    let repo = repo(connector);
    let m0 = create(&repo).await;
    let mut tips = Vec::new();
    let mut all_keys = Vec::new();
    for i in 0..4u64 {
        let branch = format!("shard-{i}");
        repo.branch(&name(&branch), m0).await.unwrap();
        let s = segment(&repo, &branch).await;
        let entries: Vec<_> = (0..5).map(|j| anchor_entry(1000 * i + j, s, 1)).collect();
        all_keys.extend(entries.iter().map(k));
        append(&repo, &branch, "label", entries, None)
            .await
            .unwrap();
        // Each shard also deletes a record: tombstones must be unioned.
        let set = ChangeSet {
            tombstones: vec![Tombstone {
                anchor: TimeAnchor::new(50 + i),
                reason: format!("shard {i}"),
                time_unix_nanos: i,
            }],
            writer: "t".to_owned(),
            message: "delete".to_owned(),
            ..ChangeSet::default()
        };
        let t = repo
            .apply_changes(&name(&branch), &set, &CommitLoopOptions::default())
            .await
            .unwrap();
        tips.push(t.manifest);
    }
    let before = counter.ref_puts();
    let out = repo
        .merge_many(&name("main"), &tips, &opts())
        .await
        .unwrap();
    assert_eq!(counter.ref_puts() - before, 1, "exactly one ref CAS");
    let MergeOutcome::Merged { manifest, .. } = out else {
        panic!("{out:?}")
    };
    let m = repo.manifest(&manifest).await.unwrap();
    let mut parents = vec![m0];
    parents.extend(&tips);
    assert_eq!(m.parents, parents);
    assert_eq!(m.parents.len(), 5);
    all_keys.sort();
    assert_eq!(keys(&tracks_of(&repo, &manifest).await, "label"), all_keys);
    assert_eq!(m.records, 20);
    let list: TombstoneList = repo.get_object(&m.registry[TOMBSTONES_KEY]).await.unwrap();
    let anchors: Vec<u64> = list.entries.iter().map(|t| t.anchor.as_nanos()).collect();
    assert_eq!(anchors, vec![50, 51, 52, 53]);
}

#[tokio::test]
async fn merge_many_refuses_everything_on_one_conflict() {
    let (repo, m0) = setup().await;
    let s = segment(&repo, "x").await;
    let mut tips = Vec::new();
    for (i, count) in [1u32, 2, 3].iter().enumerate() {
        let branch = format!("w{i}");
        repo.branch(&name(&branch), m0).await.unwrap();
        let extra = segment(&repo, &branch).await;
        let mut entries = vec![anchor_entry(7, extra, 1)];
        if i > 0 {
            // w1 and w2 write one key differently.
            entries.push(anchor_entry(9, s, *count));
        }
        tips.push(
            append(&repo, &branch, "label", entries, None)
                .await
                .unwrap(),
        );
    }
    let err = repo
        .merge_many(&name("main"), &tips, &opts())
        .await
        .unwrap_err();
    assert!(matches!(err, DagError::MergeConflict { .. }), "{err}");
    assert_eq!(tip(&repo, "main").await, m0);
}

#[tokio::test]
async fn scalar_blob_and_fragment_tracks_merge_by_entries() {
    let (repo, m0) = setup().await;
    repo.branch(&name("b"), m0).await.unwrap();
    let (sa, sb) = (segment(&repo, "a").await, segment(&repo, "b").await);
    let mut expected: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    for field in ["label", "img", "clip"] {
        let ea = anchor_entry(1, sa, 1);
        let eb = anchor_entry(2, sb, 1);
        append(&repo, "main", field, vec![ea], None).await.unwrap();
        append(&repo, "b", field, vec![eb], None).await.unwrap();
        expected.insert(field, vec![k(&ea), k(&eb)]);
    }
    let b = tip(&repo, "b").await;
    let MergeOutcome::Merged { manifest, .. } =
        repo.merge(&name("main"), b, &opts()).await.unwrap()
    else {
        panic!()
    };
    let got = tracks_of(&repo, &manifest).await;
    for (field, keys_expected) in expected {
        assert_eq!(keys(&got, field), keys_expected, "{field}");
    }
}

#[tokio::test]
async fn criss_cross_is_refused() {
    let (repo, m0) = setup().await;
    repo.branch(&name("b"), m0).await.unwrap();
    let (sa, sb) = (segment(&repo, "a").await, segment(&repo, "b").await);
    let a = append(&repo, "main", "label", vec![anchor_entry(1, sa, 1)], None)
        .await
        .unwrap();
    let b = append(&repo, "b", "label", vec![anchor_entry(2, sb, 1)], None)
        .await
        .unwrap();
    let ma = repo.manifest(&a).await.unwrap();
    let x = repo
        .commit(CommitOptions {
            parents: vec![a, b],
            draft: Draft::from_manifest(&ma, "t", "x"),
            time_unix_nanos: None,
        })
        .await
        .unwrap()
        .0;
    let y = repo
        .commit(CommitOptions {
            parents: vec![b, a],
            draft: Draft::from_manifest(&ma, "t", "y"),
            time_unix_nanos: None,
        })
        .await
        .unwrap()
        .0;
    let mut bases = repo.lca(x, y).await.unwrap();
    bases.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(bases, expected);
    repo.reset(&name("main"), x).await.unwrap();
    let err = repo.merge(&name("main"), y, &opts()).await.unwrap_err();
    assert!(matches!(err, DagError::CrissCross { .. }), "{err}");
}

/// A merge whose compare-and-swap is lost (3 times: another writer commits
/// to `main` right before each) is carried onto the new tip: parents
/// `[new tip, theirs]`, and the content is exactly the full merge's: every
/// entry of the new tip and of the merged branch, records summed.
#[tokio::test]
async fn a_merge_that_loses_its_race_is_rebased_onto_the_new_tip() {
    let inner: Arc<dyn Connector> = Arc::new(MemoryConnector::new());
    let other = repo(inner.clone());
    let m0 = create(&other).await;
    other.branch(&name("dev"), m0).await.unwrap();
    let (sm, sd) = (segment(&other, "main").await, segment(&other, "dev").await);
    let main_first: Vec<_> = (0..4).map(|i| anchor_entry(100 + i, sm, 2)).collect();
    append(&other, "main", "label", main_first.clone(), None)
        .await
        .unwrap();
    let dev_entries: Vec<_> = (0..5).map(|i| anchor_entry(500 + i, sd, 3)).collect();
    let dev = append(&other, "dev", "label", dev_entries.clone(), None)
        .await
        .unwrap();

    // Another writer commits to main right before each of the merger's
    // first 3 ref writes.
    let interloper_repo = repo(inner.clone());
    let interloper = Arc::new(RefPutCounter::new(inner.clone()).with_hook(
        3,
        Box::new(move |left| {
            let repo = interloper_repo.clone();
            Box::pin(async move {
                let s = segment(&repo, &format!("interloper {left}")).await;
                let entry = anchor_entry(1_000 + left as u64, s, 1);
                append(&repo, "main", "label", vec![entry], None)
                    .await
                    .unwrap();
            })
        }),
    ));
    let merger = repo(interloper.clone());
    let out = merger.merge(&name("main"), dev, &opts()).await.unwrap();
    let MergeOutcome::Merged { manifest, attempts } = out else {
        panic!("expected a merge, got {out:?}");
    };
    assert_eq!(attempts, 4, "3 lost races, then published");
    assert_eq!(tip(&other, "main").await, manifest);
    let m = other.manifest(&manifest).await.unwrap();
    let first_parent = m.parents[0];
    assert_eq!(m.parents, vec![first_parent, dev]);
    // The first parent is main after all three interlopers.
    let before = other.manifest(&first_parent).await.unwrap();
    assert_eq!(before.records, 4 * 2 + 3);
    assert_eq!(m.records, 4 * 2 + 3 + 5 * 3);
    let merged = tracks_of(&other, &manifest).await;
    let mut expected = keys(&tracks_of(&other, &first_parent).await, "label");
    expected.extend(dev_entries.iter().map(k));
    expected.sort();
    assert_eq!(keys(&merged, "label"), expected);
    assert_eq!(expected.len(), 4 + 3 + 5);
    // The same merge made in full on that first parent gives the same
    // content.
    other.branch(&name("check"), first_parent).await.unwrap();
    let MergeOutcome::Merged { manifest: full, .. } =
        other.merge(&name("check"), dev, &opts()).await.unwrap()
    else {
        panic!("expected a merge");
    };
    assert_eq!(tracks_of(&other, &full).await, merged);
    assert_eq!(other.manifest(&full).await.unwrap().records, m.records);
}
