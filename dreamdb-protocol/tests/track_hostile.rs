//! Hostile and corrupt index pages: every one is a typed error, found in
//! bounded time and memory, never a panic, a hang or wrong data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod track_support;

use std::time::Duration;

use bytes::Bytes;
use ciborium::value::Value;
use dreamdb_connector::{Connector, PutMode};
use dreamdb_core::cbor;
use dreamdb_core::ContentHash;
use dreamdb_protocol::store::{object_key, ObjectStore};
use dreamdb_protocol::track::{
    Change, ChildRef, IndexPage, KeyRange, PageProblem, Track, TrackEntry, TrackError, TrackRoot,
};
use track_support::{anchor_entry, counting_store};

/// Stores a page value as canonical CBOR (whatever it says).
async fn put_value(store: &ObjectStore, value: &Value) -> ContentHash {
    store
        .put_bytes(cbor::encode_value(value).unwrap())
        .await
        .unwrap()
}

async fn put_page(store: &ObjectStore, page: &IndexPage) -> ContentHash {
    put_value(store, &page.to_value()).await
}

fn leaf(range: std::ops::Range<u64>) -> Vec<TrackEntry> {
    range.map(|i| anchor_entry(i * 10, i, 0)).collect()
}

/// Two stored leaves of three entries each: (entries, page) for each.
async fn two_leaves(
    store: &ObjectStore,
) -> (Vec<TrackEntry>, ContentHash, Vec<TrackEntry>, ContentHash) {
    let a = leaf(0..3);
    let b = leaf(3..6);
    let la = put_page(store, &IndexPage::Leaf { entries: a.clone() }).await;
    let lb = put_page(store, &IndexPage::Leaf { entries: b.clone() }).await;
    (a, la, b, lb)
}

fn child(first: &[TrackEntry], page: ContentHash) -> ChildRef {
    ChildRef {
        first_key: first[0].0,
        page,
        count: first.len() as u64,
    }
}

/// Runs every read verb on `root`; each must fail, within a few seconds.
async fn every_read_fails(track: &Track, root: &TrackRoot) -> Vec<TrackError> {
    let probe = anchor_entry(55, 5, 0).0;
    // Apply reads only the pages on the paths of its changes: these two
    // absent keys route to the first and the last leaf.
    let work = async {
        let mut errors = Vec::new();
        errors.push(track.scan_all(root, KeyRange::all()).await.unwrap_err());
        errors.push(track.verify(root).await.unwrap_err());
        errors.push(track.diff(&TrackRoot::empty(), root).await.unwrap_err());
        errors.push(
            track
                .apply(
                    root,
                    [
                        Change::Delete(anchor_entry(5, 1, 0).0),
                        Change::Delete(anchor_entry(1_000_000, 1, 0).0),
                    ],
                )
                .await
                .err()
                .unwrap_or_else(|| TrackError::InvalidRoot("apply accepted it".into())),
        );
        // A point lookup may legitimately miss the bad page; if it errs,
        // the error must be typed too.
        let _ = track.get(root, &probe).await;
        errors
    };
    tokio::time::timeout(Duration::from_secs(20), work)
        .await
        .expect("a hostile tree must not hang a walk")
}

fn problem(e: &TrackError) -> String {
    e.class()
}

#[tokio::test]
async fn a_page_stored_under_its_own_childs_name_is_caught() {
    // A "cycle": an internal page whose child is itself. Content
    // addressing makes that impossible honestly (a page cannot contain
    // its own hash), so it is forged: the page names child H and its
    // bytes are stored under H's key.
    let (store, conn) = counting_store(0);
    let track = Track::new(store.clone());
    let forged_name = ContentHash::of(b"the page's own name");
    let entries = leaf(0..3);
    let page = IndexPage::Internal {
        level: 1,
        children: vec![ChildRef {
            first_key: entries[0].0,
            page: forged_name,
            count: 3,
        }],
    };
    let bytes = page.encode();
    let _ = conn
        .inner()
        .put(
            &object_key(&forged_name).unwrap(),
            Bytes::from(bytes),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    let root = TrackRoot::stored(forged_name, 2, 3);
    for e in every_read_fails(&track, &root).await {
        assert_eq!(problem(&e), "store:integrity:hash-mismatch", "{e}");
    }
}

#[tokio::test]
async fn a_child_at_its_parents_level_is_refused() {
    // The honest form of a cycle: a child that does not descend. Levels
    // must drop by one per step, so no walk exceeds the height.
    let (store, _) = counting_store(1 << 20);
    let track = Track::new(store.clone());
    let entries = leaf(0..3);
    let l = put_page(
        &store,
        &IndexPage::Leaf {
            entries: entries.clone(),
        },
    )
    .await;
    let inner = IndexPage::Internal {
        level: 1,
        children: vec![child(&entries, l)],
    };
    let inner_hash = put_page(&store, &inner).await;
    let sideways = IndexPage::Internal {
        level: 1,
        children: vec![child(&entries, inner_hash)],
    };
    let root = TrackRoot::Paged {
        page: put_page(&store, &sideways).await,
        height: 2,
        count: 3,
        top: None,
    };
    for e in every_read_fails(&track, &root).await {
        assert_eq!(problem(&e), "corrupt:level-mismatch", "{e}");
    }
    // And a root whose height disagrees with its page.
    let root = TrackRoot::stored(l, 3, 3);
    for e in every_read_fails(&track, &root).await {
        assert_eq!(problem(&e), "corrupt:level-mismatch", "{e}");
    }
}

#[tokio::test]
async fn heights_beyond_the_limit_are_refused() {
    let (store, _) = counting_store(1 << 20);
    let track = Track::new(store.clone());
    let entries = leaf(0..3);
    let l = put_page(
        &store,
        &IndexPage::Leaf {
            entries: entries.clone(),
        },
    )
    .await;
    for height in [0u8, 17, 200, 255] {
        let root = TrackRoot::stored(l, height, 3);
        for e in every_read_fails(&track, &root).await {
            assert_eq!(problem(&e), "invalid-root", "{e}");
        }
        // Nor can such a root be decoded from a Manifest.
        let bytes = cbor::to_vec(&root).unwrap();
        assert!(cbor::from_slice::<TrackRoot>(&bytes).is_err());
    }
    // A page claiming level 40.
    let deep = IndexPage::Internal {
        level: 1,
        children: vec![child(&entries, l)],
    };
    let Value::Map(mut fields) = deep.to_value() else {
        unreachable!()
    };
    for (k, v) in &mut fields {
        if *k == Value::Text("level".into()) {
            *v = Value::Integer(40.into());
        }
    }
    let page = put_value(&store, &Value::Map(fields)).await;
    let root = TrackRoot::stored(page, 16, 3);
    for e in every_read_fails(&track, &root).await {
        assert_eq!(problem(&e), "corrupt:too-deep", "{e}");
        assert!(matches!(
            e.page_problem(),
            Some(PageProblem::TooDeep { level: 40, .. })
        ));
    }
}

#[tokio::test]
async fn unsorted_keys_are_refused() {
    let (store, _) = counting_store(1 << 20);
    let track = Track::new(store.clone());
    let mut entries = leaf(0..5);
    entries.swap(1, 3);
    let page = put_page(&store, &IndexPage::Leaf { entries }).await;
    let root = TrackRoot::stored(page, 1, 5);
    for e in every_read_fails(&track, &root).await {
        assert_eq!(problem(&e), "corrupt:unsorted-keys", "{e}");
    }
    let err = track.get(&root, &leaf(0..1)[0].0).await.unwrap_err();
    assert!(matches!(err, TrackError::Corrupt { page: p, .. } if p == page));
    // Unsorted inline entries are refused as well.
    let mut inline = leaf(0..3);
    inline.swap(0, 2);
    let root = TrackRoot::Inline { entries: inline };
    assert_eq!(
        track.apply(&root, []).await.unwrap_err().class(),
        "invalid-root"
    );
}

#[tokio::test]
async fn declared_counts_that_disagree_are_refused() {
    let (store, _) = counting_store(1 << 20);
    let track = Track::new(store.clone());
    let (a, la, b, lb) = two_leaves(&store).await;
    // The root says 7, the leaf holds 3.
    let root = TrackRoot::stored(la, 1, 7);
    for e in every_read_fails(&track, &root).await {
        assert!(matches!(
            e.page_problem(),
            Some(PageProblem::CountMismatch {
                declared: 7,
                actual: 3
            })
        ));
    }
    // A child declared with an absurd count; the parent's sum agrees with
    // the root, the child does not.
    let mut cb = child(&b, lb);
    cb.count = u64::MAX - 3;
    let parent = IndexPage::Internal {
        level: 1,
        children: vec![child(&a, la), cb],
    };
    let root = TrackRoot::Paged {
        page: put_page(&store, &parent).await,
        height: 2,
        count: u64::MAX,
        top: None,
    };
    for e in every_read_fails(&track, &root).await {
        assert_eq!(problem(&e), "corrupt:count-mismatch", "{e}");
    }
    // Counts whose sum overflows.
    let mut ca = child(&a, la);
    ca.count = u64::MAX;
    let parent = IndexPage::Internal {
        level: 1,
        children: vec![ca, child(&b, lb)],
    };
    let root = TrackRoot::Paged {
        page: put_page(&store, &parent).await,
        height: 2,
        count: 6,
        top: None,
    };
    for e in every_read_fails(&track, &root).await {
        assert_eq!(problem(&e), "corrupt:count-mismatch", "{e}");
    }
}

#[tokio::test]
async fn key_ranges_must_nest() {
    let (store, _) = counting_store(1 << 20);
    let track = Track::new(store.clone());
    let (a, la, b, lb) = two_leaves(&store).await;
    // The parent records a first key the child does not start with.
    let mut wrong = child(&b, lb);
    wrong.first_key = anchor_entry(25, 99, 0).0;
    let parent = IndexPage::Internal {
        level: 1,
        children: vec![child(&a, la), wrong],
    };
    let root = TrackRoot::Paged {
        page: put_page(&store, &parent).await,
        height: 2,
        count: 6,
        top: None,
    };
    for e in every_read_fails(&track, &root).await {
        assert_eq!(problem(&e), "corrupt:first-key-mismatch", "{e}");
    }
    // The same subtree referenced twice (a DAG trick): its keys run past
    // the next sibling's first key.
    let ab: Vec<TrackEntry> = a.iter().chain(&b).copied().collect();
    let lab = put_page(
        &store,
        &IndexPage::Leaf {
            entries: ab.clone(),
        },
    )
    .await;
    let parent = IndexPage::Internal {
        level: 1,
        children: vec![child(&ab, lab), child(&b, lb)],
    };
    let root = TrackRoot::Paged {
        page: put_page(&store, &parent).await,
        height: 2,
        count: 9,
        top: None,
    };
    for e in every_read_fails(&track, &root).await {
        assert_eq!(problem(&e), "corrupt:key-out-of-range", "{e}");
    }
}

#[tokio::test]
async fn garbage_truncated_and_missing_pages_are_typed_errors() {
    let (store, _) = counting_store(1 << 20);
    let track = Track::new(store.clone());
    let entries = leaf(0..4);
    let good = IndexPage::Leaf { entries }.encode();
    let truncated = store
        .put_bytes(good[..good.len() - 5].to_vec())
        .await
        .unwrap();
    let garbage = store.put_bytes(vec![0xff; 64]).await.unwrap();
    let not_a_page = put_value(&store, &Value::Array(vec![])).await;
    for (page, class) in [
        (truncated, "corrupt:cbor:truncated"),
        (garbage, "corrupt:cbor:malformed"),
        (not_a_page, "corrupt:shape"),
        (ContentHash::of(b"absent"), "store:missing"),
    ] {
        let root = TrackRoot::stored(page, 1, 4);
        for e in every_read_fails(&track, &root).await {
            assert_eq!(problem(&e), class, "{e}");
        }
    }
}

#[tokio::test]
async fn a_put_whose_value_does_not_fit_its_key_is_refused() {
    let (store, conn) = counting_store(1 << 20);
    let track = Track::new(store);
    let (k, _) = anchor_entry(10, 1, 0);
    let (_, other_segment) = anchor_entry(10, 2, 0);
    let err = track
        .apply(&TrackRoot::empty(), [Change::Put(k, other_segment)])
        .await
        .unwrap_err();
    assert_eq!(err.class(), "invalid-entry");
    let (ck, cv) = track_support::cell_entry(1, 1, 0);
    let _ = ck;
    let err = track
        .apply(&TrackRoot::empty(), [Change::Put(k, cv)])
        .await
        .unwrap_err();
    assert_eq!(err.class(), "invalid-entry");
    assert_eq!(conn.snapshot().total_calls(), 0);
}

/// A root page held in the Manifest is checked like a stored one: its
/// children must agree with the pages they name.
#[tokio::test]
async fn a_held_root_page_is_checked_against_its_children() {
    let (store, _) = counting_store(1 << 20);
    let track = Track::new(store.clone());
    let (a, la, b, lb) = two_leaves(&store).await;
    // Well formed: every verb works and no root page is ever fetched.
    let good = TrackRoot::embedded(IndexPage::Internal {
        level: 1,
        children: vec![child(&a, la), child(&b, lb)],
    })
    .unwrap();
    assert!(good.stored_page().is_none());
    assert_eq!(
        track.scan_all(&good, KeyRange::all()).await.unwrap().len(),
        6
    );
    track.verify(&good).await.unwrap();
    // A child count that disagrees with the leaf it names.
    let mut wrong = child(&b, lb);
    wrong.count = 4;
    let bad = TrackRoot::embedded(IndexPage::Internal {
        level: 1,
        children: vec![child(&a, la), wrong],
    })
    .unwrap();
    for e in every_read_fails(&track, &bad).await {
        assert_eq!(problem(&e), "corrupt:count-mismatch", "{e}");
    }
}
