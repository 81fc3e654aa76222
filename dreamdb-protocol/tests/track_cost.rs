//! Copy-on-write cost at scale: a million-entry track with the default
//! thresholds, one new entry committed, and diffs between versions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod track_support;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::wrappers::{CountingConnector, OpKind};
use dreamdb_protocol::store::ObjectStore;
use dreamdb_protocol::track::{Change, KeyRange, Track, TrackRoot};
use track_support::{anchor_entry, cell_entry, counting_store};

const N: u64 = 1_000_000;

struct Fixture {
    store: ObjectStore,
    counting: Arc<CountingConnector<MemoryConnector>>,
    root: TrackRoot,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

/// Half anchor runs, half cell runs: a million entries, built once.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        runtime().block_on(async {
            let (store, counting) = counting_store(64 << 20);
            let track = Track::new(store.clone());
            let started = Instant::now();
            let entries = (0..N).map(|i| {
                if i % 2 == 0 {
                    anchor_entry(i * 1000, i, i % 5)
                } else {
                    cell_entry((i % 65_536) as u32, i, i % 11)
                }
            });
            let (root, stats) = track.build(entries).await.unwrap();
            println!(
                "built {N} entries in {:?}: height {}, {} pages, {} bytes",
                started.elapsed(),
                root.height(),
                stats.pages_written,
                stats.bytes_written
            );
            assert_eq!(root.count(), N);
            Fixture {
                store,
                counting,
                root,
            }
        })
    })
}

#[test]
fn one_entry_commit_to_a_million_entry_track_writes_one_page_per_level() {
    let f = fixture();
    runtime().block_on(async {
        // A session of its own over the shared backend, so the counts are
        // this test's alone.
        let counting = Arc::new(CountingConnector::new(f.counting.clone()));
        let track = Track::new(ObjectStore::new(counting.clone(), 64 << 20));
        let height = u64::from(f.root.height());
        assert!(height >= 2, "a million entries must be paged");
        let mut worst = 0;
        // Several single-entry commits at different places in the key
        // space: the start, the middle of each order, the very end.
        let news = [
            anchor_entry(0, 99_000_001, 1),
            anchor_entry(500_000_500, 99_000_002, 2),
            cell_entry(31_337, 99_000_003, 3),
            cell_entry(u32::MAX, 99_000_004, 4),
        ];
        for (k, v) in news {
            counting.reset();
            let (root, stats) = track.apply(&f.root, [Change::Put(k, v)]).await.unwrap();
            let puts = counting.snapshot().calls(OpKind::Put);
            println!(
                "one-entry commit: height {height}, {} pages written ({} PUTs), {} bytes, {} pages read",
                stats.pages_written, puts, stats.bytes_written, stats.pages_read
            );
            assert_eq!(root.count(), N + 1);
            assert_eq!(root.height(), f.root.height());
            // The root page is held in the Manifest (design 0006): one
            // stored page per level below it, no PUT for the root.
            assert!(root.top().is_some() && root.stored_page().is_none());
            assert_eq!(stats.pages_written, height - 1, "{stats:?}");
            assert_eq!(puts, height - 1);
            assert!(stats.pages_read <= height);
            assert!(stats.bytes_written <= 64 * 1024, "{stats:?}");
            worst = worst.max(stats.bytes_written);
            assert_eq!(track.get(&root, &k).await.unwrap(), Some(v));
            // The old version is untouched.
            assert_eq!(track.get(&f.root, &k).await.unwrap(), None);
        }
        println!("worst one-entry commit: {worst} bytes");
    });
}

#[test]
fn diff_of_versions_one_entry_apart_reads_o_height_pages() {
    let f = fixture();
    runtime().block_on(async {
        let track = Track::new(f.store.clone());
        let height = u64::from(f.root.height());
        let (k, v) = cell_entry(4242, 77_000_000, 9);
        let (added, _) = track.apply(&f.root, [Change::Put(k, v)]).await.unwrap();
        let (d, stats) = track.diff(&f.root, &added).await.unwrap();
        println!(
            "diff after one put: {} pages read (height {height})",
            stats.pages_read
        );
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].key, d[0].left, d[0].right), (k, None, Some(v)));
        assert!(stats.pages_read <= 2 * height + 2, "{stats:?}");

        // Delete an existing entry, and update another: still O(height).
        // Entry i of the fixture: even i an anchor run, odd i a cell run.
        let i: u64 = 246_912;
        let victim = anchor_entry(i * 1000, i, i % 5);
        let j: u64 = 777;
        let (updated_k, _) = cell_entry(j as u32, j, 0);
        let old = track.get(&f.root, &updated_k).await.unwrap().unwrap();
        let (_, new_v) = cell_entry(j as u32, j, 10_000);
        let (changed, _) = track
            .apply(
                &f.root,
                [Change::Delete(victim.0), Change::Put(updated_k, new_v)],
            )
            .await
            .unwrap();
        let (d, stats) = track.diff(&f.root, &changed).await.unwrap();
        println!(
            "diff after a delete and an update: {} pages read",
            stats.pages_read
        );
        assert_eq!(d.len(), 2);
        assert!(d
            .iter()
            .any(|e| e.key == victim.0 && e.left == Some(victim.1) && e.right.is_none()));
        assert!(d
            .iter()
            .any(|e| e.key == updated_k && e.left == Some(old) && e.right == Some(new_v)));
        assert!(stats.pages_read <= 4 * height + 4, "{stats:?}");

        // Identical roots: nothing read.
        let (d, stats) = track.diff(&f.root, &f.root).await.unwrap();
        assert!(d.is_empty());
        assert_eq!(stats.pages_read, 0);

        // Prefix scans read only the leaves they need.
        for (root, cell, expected) in [(&added, 4242u32, 1usize), (&f.root, 4243, 16)] {
            let mut scan = track.scan(root, KeyRange::cell(cell));
            let mut found = Vec::new();
            while let Some(batch) = scan.next_batch().await.unwrap() {
                found.extend(batch);
            }
            assert!(found.iter().all(|(k, _)| k.cell() == Some(cell)));
            assert_eq!(found.len(), expected, "cell {cell}");
            assert!(scan.pages_read() <= height + 2, "{}", scan.pages_read());
        }
    });
}
