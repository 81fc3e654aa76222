//! Property tests: the track B-tree against a `BTreeMap` model.
//!
//! Tiny page limits (fanout 4–8, pages of a few hundred bytes) make trees
//! several levels deep from a few hundred entries, so random batches of
//! puts, updates and deletes exercise splits, merges, root growth and
//! collapse, and the inline ↔ paged transitions in both directions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod track_support;

use std::collections::BTreeMap;

use dreamdb_protocol::track::{
    Change, DiffEntry, KeyRange, Track, TrackConfig, TrackKey, TrackRoot, TrackValue,
};
use proptest::prelude::*;
use track_support::{anchor_entry, cell_entry, counting_store};

type Model = BTreeMap<TrackKey, TrackValue>;

/// A key universe small enough that updates and deletes hit.
fn entry_for(id: u16, salt: u64) -> (TrackKey, TrackValue) {
    let id = u64::from(id);
    if id % 3 == 0 {
        cell_entry((id / 3 % 23) as u32, id % 5, salt)
    } else {
        anchor_entry((id % 150) * 1000, id % 4, salt)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(u16, u64),
    Delete(u16),
    /// Delete every present key except one in `keep`.
    Thin(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..600, 0u64..4).prop_map(|(k, s)| Op::Put(k, s)),
        3 => (0u16..600).prop_map(Op::Delete),
        1 => (2u8..40).prop_map(Op::Thin),
    ]
}

fn batch() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 0..80)
}

fn to_changes(ops: &[Op], model: &Model) -> Vec<Change> {
    let mut out = Vec::new();
    for op in ops {
        match op {
            Op::Put(k, s) => {
                let (k, v) = entry_for(*k, *s);
                out.push(Change::Put(k, v));
            }
            Op::Delete(k) => out.push(Change::Delete(entry_for(*k, 0).0)),
            Op::Thin(keep) => {
                for (i, k) in model.keys().enumerate() {
                    if i % usize::from(*keep) != 0 {
                        out.push(Change::Delete(*k));
                    }
                }
            }
        }
    }
    out
}

fn apply_model(model: &Model, changes: &[Change]) -> Model {
    let mut m = model.clone();
    for c in changes {
        match c {
            Change::Put(k, v) => {
                m.insert(*k, *v);
            }
            Change::Delete(k) => {
                m.remove(k);
            }
        }
    }
    m
}

fn model_diff(a: &Model, b: &Model) -> Vec<DiffEntry> {
    let mut keys: Vec<&TrackKey> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(k) != b.get(k))
        .map(|k| DiffEntry {
            key: *k,
            left: a.get(k).copied(),
            right: b.get(k).copied(),
        })
        .collect()
}

fn model_merge(base: &Model, ours: &Model, theirs: &Model) -> (Model, Vec<TrackKey>) {
    let mut out = ours.clone();
    let mut conflicts = Vec::new();
    for d in model_diff(base, theirs) {
        let o = ours.get(&d.key).copied();
        if o == d.left {
            match d.right {
                Some(v) => out.insert(d.key, v),
                None => out.remove(&d.key),
            };
        } else if o != d.right {
            conflicts.push(d.key);
        }
    }
    (out, conflicts)
}

async fn check_against(track: &Track, root: &TrackRoot, model: &Model) {
    let all = track.scan_all(root, KeyRange::all()).await.unwrap();
    let expected: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(all, expected);
    assert_eq!(track.count(root), model.len() as u64);
    track.verify(root).await.unwrap();
    // The inline rule depends only on the entries.
    let inline = dreamdb_protocol::track::inline_len(&expected) <= track.config().inline_max_bytes;
    assert_eq!(!root.is_paged(), inline, "inline rule broken: {root:?}");
    // Point lookups, present and absent.
    for id in (0..600u16).step_by(37) {
        let (k, _) = entry_for(id, 0);
        assert_eq!(track.get(root, &k).await.unwrap(), model.get(&k).copied());
    }
    // Prefix and range scans.
    for cell in [0u32, 5, 22] {
        let got = track.scan_all(root, KeyRange::cell(cell)).await.unwrap();
        let want: Vec<_> = model
            .iter()
            .filter(|(k, _)| k.cell() == Some(cell))
            .map(|(k, v)| (*k, *v))
            .collect();
        assert_eq!(got, want);
    }
    for (a, b) in [(0u64, 10_000u64), (37_000, 90_000), (140_000, u64::MAX)] {
        let got = track.scan_all(root, KeyRange::anchors(a..b)).await.unwrap();
        let want: Vec<_> = model
            .iter()
            .filter(|(k, _)| k.first_anchor().is_some_and(|f| f >= a && f < b))
            .map(|(k, v)| (*k, *v))
            .collect();
        assert_eq!(got, want);
    }
    if let Some((lo, _)) = expected.get(expected.len() / 3) {
        let hi = expected[expected.len() * 2 / 3].0;
        let got = track
            .scan_all(root, KeyRange::from_bounds(*lo..=hi))
            .await
            .unwrap();
        let want: Vec<_> = model.range(*lo..=hi).map(|(k, v)| (*k, *v)).collect();
        assert_eq!(got, want);
    }
}

fn run(config: TrackConfig, batches: Vec<Vec<Op>>, merge: (Vec<Op>, Vec<Op>), pick: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (store, _) = counting_store(1 << 20);
        let track = Track::with_config(store, config).unwrap();
        let mut root = TrackRoot::empty();
        let mut model = Model::new();
        let mut history = vec![(root.clone(), model.clone())];
        for ops in &batches {
            let changes = to_changes(ops, &model);
            let (next, _) = track.apply(&root, changes.clone()).await.unwrap();
            model = apply_model(&model, &changes);
            root = next;
            check_against(&track, &root, &model).await;
            history.push((root.clone(), model.clone()));
        }
        // Diff any two versions, both ways.
        let (ra, ma) = &history[pick % history.len()];
        for (rb, mb) in &history {
            let (d, _) = track.diff(ra, rb).await.unwrap();
            assert_eq!(d, model_diff(ma, mb));
            let (d, _) = track.diff(rb, ra).await.unwrap();
            assert_eq!(d, model_diff(mb, ma));
        }
        // 3-way merge of two branches off the same base.
        let (base, mbase) = &history[pick % history.len()];
        let ours_changes = to_changes(&merge.0, mbase);
        let theirs_changes = to_changes(&merge.1, mbase);
        let (ours, _) = track.apply(base, ours_changes.clone()).await.unwrap();
        let (theirs, _) = track.apply(base, theirs_changes.clone()).await.unwrap();
        let mours = apply_model(mbase, &ours_changes);
        let mtheirs = apply_model(mbase, &theirs_changes);
        let (merged, conflicts) = track.merge3(base, &ours, &theirs).await.unwrap();
        let (want, want_conflicts) = model_merge(mbase, &mours, &mtheirs);
        check_against(&track, &merged, &want).await;
        let got: Vec<TrackKey> = conflicts.iter().map(|c| c.key).collect();
        assert_eq!(got, want_conflicts);
        for c in &conflicts {
            assert_eq!(c.base, mbase.get(&c.key).copied());
            assert_eq!(c.ours, mours.get(&c.key).copied());
            assert_eq!(c.theirs, mtheirs.get(&c.key).copied());
        }
    });
}

fn config() -> impl Strategy<Value = TrackConfig> {
    (4usize..=8, 400usize..1600, 200usize..1200).prop_map(|(fanout, page, inline)| TrackConfig {
        fanout,
        page_target_bytes: page,
        inline_max_bytes: inline,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn track_matches_model(
        config in config(),
        batches in prop::collection::vec(batch(), 1..8),
        ours in batch(),
        theirs in batch(),
        pick in 0usize..100,
    ) {
        run(config, batches, (ours, theirs), pick);
    }
}

/// A deterministic walk through both transitions and a deep tree.
#[tokio::test]
async fn crosses_inline_and_paged_both_ways() {
    let (store, _) = counting_store(1 << 20);
    let track = Track::with_config(store, track_support::tiny_config(4)).unwrap();
    let mut model = Model::new();
    let mut root = TrackRoot::empty();
    let mut max_height = 0;
    let mut forms = Vec::new();
    for round in 0..6u64 {
        let changes: Vec<Change> = (0..120)
            .map(|i| {
                let (k, v) = anchor_entry(i * 10 + round, i % 3, round);
                Change::Put(k, v)
            })
            .collect();
        let (next, _) = track.apply(&root, changes.clone()).await.unwrap();
        root = next;
        model = apply_model(&model, &changes);
        check_against(&track, &root, &model).await;
        max_height = max_height.max(root.height());
        forms.push(root.is_paged());
    }
    assert!(
        max_height >= 4,
        "tiny pages should make a deep tree: {max_height}"
    );
    // Delete all but three entries: back to inline.
    let doomed: Vec<Change> = model.keys().skip(3).map(|k| Change::Delete(*k)).collect();
    let (next, _) = track.apply(&root, doomed.clone()).await.unwrap();
    model = apply_model(&model, &doomed);
    check_against(&track, &next, &model).await;
    assert!(!next.is_paged());
    assert_eq!(next.count(), 3);
    assert!(forms.iter().all(|p| *p));
    // Delete everything: the empty track.
    let rest: Vec<Change> = model.keys().map(|k| Change::Delete(*k)).collect();
    let (empty, _) = track.apply(&next, rest).await.unwrap();
    assert_eq!(empty, TrackRoot::empty());
}

/// No-op batches write nothing and keep the root.
#[tokio::test]
async fn no_op_batches_write_nothing() {
    let (store, _) = counting_store(1 << 20);
    let track = Track::with_config(store, track_support::tiny_config(5)).unwrap();
    let entries: Vec<_> = (0..300).map(|i| anchor_entry(i * 7, i % 2, 0)).collect();
    let (root, _) = track.build(entries.clone()).await.unwrap();
    assert!(root.is_paged());
    let same: Vec<Change> = entries[..50]
        .iter()
        .map(|(k, v)| Change::Put(*k, *v))
        .chain((0..20).map(|i| Change::Delete(anchor_entry(i * 7 + 1, 0, 0).0)))
        .collect();
    let (again, stats) = track.apply(&root, same).await.unwrap();
    assert_eq!(again, root);
    assert_eq!(stats.pages_written, 0);
}

/// The lazy scan as a stream yields what `scan_all` does.
#[tokio::test]
async fn scan_stream_matches_scan_all() {
    use futures::TryStreamExt;
    let (store, _) = counting_store(1 << 20);
    let track = Track::with_config(store, track_support::tiny_config(6)).unwrap();
    let entries: Vec<_> = (0..500u64)
        .map(|i| {
            if i % 2 == 0 {
                anchor_entry(i, i, 0)
            } else {
                cell_entry((i % 40) as u32, i, i)
            }
        })
        .collect();
    let (root, _) = track.build(entries).await.unwrap();
    for range in [
        KeyRange::all(),
        KeyRange::cell(7),
        KeyRange::anchors(100..300),
    ] {
        let streamed: Vec<_> = track
            .scan(&root, range.clone())
            .into_stream()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(streamed, track.scan_all(&root, range).await.unwrap());
    }
}
