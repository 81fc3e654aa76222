//! Hostile input at the protocol level: names that try to leave the
//! backend root, and malicious Manifests and pages — a huge declared
//! height, a million parents, a track root claiming height 200, a page
//! declaring a huge count. Each must be refused with a typed error, in
//! bounded time (a timeout) and bounded memory (RSS growth checked),
//! never a panic, by every verb that meets it (history, ancestry, commit,
//! merge, reads).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dreamdb_connector::local::LocalConnector;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_core::cbor;
use dreamdb_core::ref_name::RefName;
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{stored_root_of, CommitLoopOptions, DagError, MergeOptions, Repo};
use dreamdb_protocol::objects::{encode_generic, DatasetName, TrackState};
use dreamdb_protocol::track::{ChildRef, IndexPage, KeyRange, TrackKey, TrackRoot, TrackValue};
use reliability_support::*;

/// Runs `fut` on its own task with a timeout; a panic or a timeout is an
/// `Err` describing it.
async fn bounded<T: Send + 'static>(
    what: &str,
    limit: Duration,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    let started = Instant::now();
    let task = tokio::spawn(fut);
    match tokio::time::timeout(limit, task).await {
        Err(_) => Err(format!("{what}: no answer within {limit:?}")),
        Ok(Err(join)) if join.is_panic() => Err(format!("{what}: PANICKED")),
        Ok(Err(join)) => Err(format!("{what}: {join}")),
        Ok(Ok(v)) => {
            println!("{what}: answered in {:?}", started.elapsed());
            Ok(v)
        }
    }
}

/// Asserts every verb meeting `bad` fails with a typed error, in time.
async fn every_verb_refuses(repo: &Repo, bad: ContentHash, label: &str, commit: bool) {
    let limit = Duration::from_secs(30);
    let r = repo.clone();
    let res = bounded(&format!("{label}: history"), limit, async move {
        r.history(bad).collect().await.map(|h| h.len())
    })
    .await
    .unwrap();
    assert!(res.is_err(), "{label}: history accepted it: {res:?}");
    let r = repo.clone();
    let m0 = tip(repo, "main").await;
    let res = bounded(&format!("{label}: is_ancestor"), limit, async move {
        r.is_ancestor(m0, bad).await
    })
    .await
    .unwrap();
    assert!(res.is_err(), "{label}: is_ancestor accepted it: {res:?}");
    let r = repo.clone();
    let res = bounded(&format!("{label}: merge"), limit, async move {
        r.merge(&name("main"), bad, &MergeOptions::union("m", "merge"))
            .await
    })
    .await
    .unwrap();
    assert!(res.is_err(), "{label}: merge accepted it: {res:?}");
    // A branch pointing at it (as a hostile writer could leave one): a
    // commit on it must be refused, not panic.
    if commit && repo.branch(&name("hostile"), bad).await.is_ok() {
        let r = repo.clone();
        let res = bounded(&format!("{label}: commit on it"), limit, async move {
            let set = batch(&r, 7, 7).await;
            r.apply_changes(
                &name("hostile"),
                &set,
                &CommitLoopOptions {
                    max_attempts: Some(2),
                    retry: None,
                },
            )
            .await
            .map(|c| c.manifest)
        })
        .await
        .unwrap();
        if let Ok(committed) = res {
            // The commit path does not re-check the tip's history (that
            // would cost a read per parent); what it builds on a hostile
            // tip must still be refused by every reader of history.
            let err = repo.history(committed).collect().await.map(|h| h.len());
            assert!(
                err.is_err(),
                "{label}: a commit on it produced an acceptable history: {err:?}"
            );
            println!("{label}: commit accepted on the hostile tip; its history is refused");
        }
        repo.delete_branch(&name("hostile")).await.unwrap();
    }
}

async fn memory_repo() -> (Repo, ContentHash) {
    let repo = repo(Arc::new(MemoryConnector::new()));
    let m0 = create(&repo).await;
    (repo, m0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_declaring_a_huge_height_is_refused() {
    let (repo, m0) = memory_repo().await;
    let mut m = repo.manifest(&m0).await.unwrap();
    m.parents = vec![m0];
    for height in [u64::MAX, u64::MAX - 1, 1 << 62, 2] {
        m.height = height;
        let bad = repo.put_object(&m).await.unwrap();
        // A commit on u64::MAX is the ignored test below (it panics).
        every_verb_refuses(&repo, bad, &format!("height {height}"), height != u64::MAX).await;
    }
}

/// A Manifest of height u64::MAX that *is* consistent with nothing: a
/// commit on a branch at it must be a typed error. It overflows
/// `1 + max(parent heights)` in `Repo::commit` instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_on_a_tip_of_height_u64_max_is_a_typed_error() {
    let (repo, m0) = memory_repo().await;
    let mut m = repo.manifest(&m0).await.unwrap();
    m.parents = vec![m0];
    m.height = u64::MAX;
    let bad = repo.put_object(&m).await.unwrap();
    repo.branch(&name("hostile"), bad).await.unwrap();
    let r = repo.clone();
    let res = bounded(
        "commit on height u64::MAX",
        Duration::from_secs(30),
        async move {
            let set = batch(&r, 7, 7).await;
            r.apply_changes(&name("hostile"), &set, &CommitLoopOptions::default())
                .await
                .map(|c| c.manifest)
        },
    )
    .await;
    let res = res.unwrap_or_else(|e| panic!("{e}"));
    assert!(res.is_err(), "{res:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_with_a_million_parents_is_refused_in_bounded_time_and_memory() {
    let parents: usize = std::env::var("DREAMDB_HOSTILE_PARENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let (repo, m0) = memory_repo().await;
    let mut m = repo.manifest(&m0).await.unwrap();
    m.parents = (0..parents as u64)
        .map(|i| ContentHash::of(&i.to_le_bytes()))
        .collect();
    m.parents[0] = m0;
    m.height = 1;
    let started = Instant::now();
    let bad = repo.put_object(&m).await.unwrap();
    drop(m);
    let size = repo.store().get_bytes(&bad).await.unwrap().len();
    println!(
        "{parents} parents: {size} bytes, written in {:?}",
        started.elapsed()
    );
    // A fresh session (cold cache) reads it.
    let fresh = repo_with(repo.connector().clone(), DATASET, config());
    let rss_before = rss_kib();
    let res = bounded("history of a million parents", Duration::from_secs(60), {
        let fresh = fresh.clone();
        async move { fresh.history(bad).collect().await.map(|h| h.len()) }
    })
    .await
    .unwrap();
    let err = res.unwrap_err();
    assert_eq!(err.class(), "history:missing", "{err}");
    let grown = rss_kib().saturating_sub(rss_before);
    println!("RSS grew {grown} KiB reading a {size}-byte Manifest");
    assert!(
        grown < 40 * (size as u64 / 1024) + 256 * 1024,
        "reading a {size}-byte Manifest grew RSS by {grown} KiB"
    );
    let res = bounded("lca with a million parents", Duration::from_secs(60), {
        let fresh = fresh.clone();
        async move { fresh.lca(bad, m0).await }
    })
    .await
    .unwrap();
    assert!(res.is_err(), "{res:?}");
}

/// A Manifest whose track root claims 200 page levels (the limit is 16):
/// written raw (the encoder validates, so it is built by the generic
/// path), then refused by the strict decoder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_root_claiming_height_200_is_refused() {
    let (repo, m0) = memory_repo().await;
    let mut m = repo.manifest(&m0).await.unwrap();
    m.parents = vec![m0];
    m.height = 1;
    let page = IndexPage::Leaf {
        entries: vec![entry(1)],
    };
    let page_hash = repo.store().put_bytes(page.encode()).await.unwrap();
    // A legal Manifest, its root's height patched to 200 in the value
    // tree (the root type refuses to hold it), encoded canonically.
    let legal = TrackRoot::stored(page_hash, 1, 1);
    m.tracks.insert(
        "label".to_owned(),
        TrackState {
            root: stored_root_of(&legal).unwrap(),
            spatial_index: None,
            compressor: None,
            stats: None,
            last_anchor: None,
        },
    );
    let mut value = cbor::decode_value(&encode_generic(&m).unwrap()).unwrap();
    let tracks = map_get(&mut value, "tracks");
    let root = map_get(map_get(map_get(tracks, "label"), "root"), "height");
    *root = ciborium::value::Value::Integer(200.into());
    let bytes = cbor::encode_value(&value).unwrap();
    let bad = repo.store().put_bytes(bytes).await.unwrap();
    let err = repo.manifest(&bad).await.unwrap_err();
    assert!(err.to_string().contains(&bad.to_string()), "{err}");
    println!("height-200 root: {err}");
    every_verb_refuses(&repo, bad, "track root height 200", true).await;
}

/// The value under `key` of a map, descending through a one-entry
/// variant wrapper (`{"paged": {...}}`) if the key is not found directly.
fn map_get<'a>(value: &'a mut ciborium::value::Value, key: &str) -> &'a mut ciborium::value::Value {
    use ciborium::value::Value;
    let Value::Map(entries) = value else {
        panic!("not a map looking for {key}");
    };
    let direct = entries
        .iter()
        .position(|(k, _)| matches!(k, Value::Text(t) if t == key));
    match direct {
        Some(i) => &mut entries[i].1,
        None if entries.len() == 1 => map_get(&mut entries[0].1, key),
        None => panic!("no {key} in the map"),
    }
}

fn entry(i: u64) -> (TrackKey, TrackValue) {
    let seg = ContentHash::of(&segment_bytes(5, i));
    (
        TrackKey::anchor_run(i * 10, &seg),
        TrackValue::AnchorRun {
            segment: seg,
            last_anchor: i * 10,
            count: 1,
            table_offset: 0,
            table_len: 8,
            storage: None,
        },
    )
}

/// A two-level tree whose root and internal page declare u64::MAX entries
/// (there are 2): reads, verify, commits and merges on it fail typed; no
/// allocation follows the declared count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_declaring_a_huge_count_is_refused() {
    let (repo, m0) = memory_repo().await;
    for i in 0..2 {
        repo.store().put_bytes(segment_bytes(5, i)).await.unwrap();
    }
    let leaf = IndexPage::Leaf {
        entries: vec![entry(0), entry(1)],
    };
    let leaf_hash = repo.store().put_bytes(leaf.encode()).await.unwrap();
    for (declared_child, declared_root) in [(u64::MAX, u64::MAX), (u64::MAX, 2), (2, u64::MAX)] {
        let internal = IndexPage::Internal {
            level: 1,
            children: vec![ChildRef {
                first_key: entry(0).0,
                page: leaf_hash,
                count: declared_child,
            }],
        };
        let internal_hash = repo.store().put_bytes(internal.encode()).await.unwrap();
        let root = TrackRoot::stored(internal_hash, 2, declared_root);
        let label = format!("child count {declared_child}, root count {declared_root}");
        let r = repo.clone();
        let scan = bounded(&format!("{label}: scan"), Duration::from_secs(30), {
            let root = root.clone();
            async move {
                r.tracks()
                    .scan_all(&root, KeyRange::all())
                    .await
                    .map(|e| e.len())
            }
        })
        .await
        .unwrap();
        assert!(scan.is_err(), "{label}: scan accepted it: {scan:?}");
        let r = repo.clone();
        let verify = bounded(&format!("{label}: verify"), Duration::from_secs(30), {
            let root = root.clone();
            async move { r.tracks().verify(&root).await.map(drop) }
        })
        .await
        .unwrap();
        assert!(verify.is_err(), "{label}: verify accepted it");
        // A Manifest holding it, and a branch at it.
        let mut m = repo.manifest(&m0).await.unwrap();
        m.parents = vec![m0];
        m.height = 1;
        m.tracks.insert(
            "label".to_owned(),
            TrackState {
                root: stored_root_of(&root).unwrap(),
                spatial_index: None,
                compressor: None,
                stats: None,
                last_anchor: None,
            },
        );
        let bad = repo.put_object(&m).await.unwrap();
        let fresh = repo_with(repo.connector().clone(), DATASET, config());
        assert!(
            full_read(&fresh, bad).await.is_err(),
            "{label}: full read accepted it"
        );
        // A commit on it and a merge of it: the tree is rewritten from the
        // hostile pages, so these must be refused too.
        fresh.branch(&name("hostile"), bad).await.unwrap();
        let r = fresh.clone();
        let res = bounded(
            &format!("{label}: commit on it"),
            Duration::from_secs(30),
            async move {
                let set = batch(&r, 6, 0).await;
                r.apply_changes(
                    &name("hostile"),
                    &set,
                    &CommitLoopOptions {
                        max_attempts: Some(2),
                        retry: None,
                    },
                )
                .await
                .map(|c| c.manifest)
            },
        )
        .await
        .unwrap();
        if let Ok(committed) = res {
            // Accepted on top of a lying tree: reading the result must
            // still refuse, never return the lie as data.
            assert!(
                full_read(&fresh, committed).await.is_err(),
                "{label}: a commit on a hostile tree produced a readable lie"
            );
            println!("{label}: commit accepted (result still unreadable)");
        }
        let r = fresh.clone();
        let res = bounded(
            &format!("{label}: merge"),
            Duration::from_secs(30),
            async move {
                r.merge(&name("main"), bad, &MergeOptions::union("m", "merge"))
                    .await
            },
        )
        .await
        .unwrap();
        if let Ok(outcome) = &res {
            let main = tip(&fresh, "main").await;
            assert!(
                full_read(&fresh, main).await.is_err(),
                "{label}: merge {outcome:?} made main a readable lie"
            );
            println!("{label}: merge {outcome:?} (result unreadable)");
            fresh.reset(&name("main"), m0).await.unwrap();
        }
        fresh.delete_branch(&name("hostile")).await.unwrap();
    }
}

/// Names cannot leave the backend root: hostile ref, tag and dataset
/// names are refused by their parsers; unusual but valid ones create
/// files only under `datasets/<dataset>/refs|tags/` of the root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_never_escape_the_backend_root() {
    for bad in [
        "..", "../x", "a/../b", "a/..", "/abs", "a//b", "a/", ".", "./a", ".hidden", "x.lock",
        "a\\b", "a\0b", "a\nb", "a b", "a..b", "é", "",
    ] {
        assert!(RefName::parse(bad).is_err(), "ref name {bad:?} accepted");
        assert!(
            DatasetName::parse(bad).is_err(),
            "dataset name {bad:?} accepted"
        );
    }
    assert!(
        RefName::parse(&"a".repeat(256)).is_err(),
        "256-byte ref name"
    );
    assert!(DatasetName::parse("a/b").is_err());

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let connector = Arc::new(LocalConnector::open(&root).unwrap());
    for dataset in ["d", "-x", "v1.0", "A_b-c.d"] {
        let repo = repo_named(connector.clone(), dataset);
        let m0 = create(&repo).await;
        for n in ["-", "_", "v1.0", "a/b/c", "sweep/run-001", "x.y.z", "a-/b_"] {
            repo.branch(&name(n), m0).await.unwrap();
            repo.tag(&name(n), m0).await.unwrap();
        }
    }
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p.strip_prefix(&root).unwrap().display().to_string());
            }
        }
    }
    for f in &files {
        assert!(
            f.starts_with("objects/")
                || f.starts_with(".dreamdb-internal/")
                || (f.starts_with("datasets/") && (f.contains("/refs/") || f.contains("/tags/"))),
            "unexpected file {f}"
        );
    }
    let outside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(outside.len(), 1, "something was written beside the root");
}

#[test]
fn dataset_names_are_checked_before_they_reach_a_key() {
    // The error names what was refused and nothing is built from it.
    let e = DatasetName::parse("../../etc").unwrap_err();
    assert!(e.to_string().contains("../../etc"));
    let _ = DagError::InvalidArgument(String::new()).class();
}
