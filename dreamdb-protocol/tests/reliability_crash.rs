//! Crashes: a child process commits batches in a loop on a local directory
//! and, after each commit returns, appends `ACK w i manifest` to a file and
//! fsyncs it. The parent SIGKILLs it (`Child::kill`) after a seeded random
//! delay, again and again (`DREAMDB_CRASH_KILLS`, default 30; seed
//! `DREAMDB_SEED`). After every kill: the ref reads, its Manifest and
//! everything reachable verify, every acknowledged commit is in history and
//! its entries in the tip, and no batch is committed twice. A commit that
//! landed but was not yet acknowledged when the child died may be there too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dreamdb_connector::local::LocalConnector;
use dreamdb_protocol::track::TrackKey;
use reliability_support::*;

/// The child: commits forever as writer CHILD_ID; acknowledges each
/// commit in the ACK file (fsync'd) after `apply_changes` returned.
#[test]
fn child_crash_writer() {
    if std::env::var(ROLE).as_deref() != Ok("crash-writer") {
        return;
    }
    let root = PathBuf::from(std::env::var(ROOT).unwrap());
    let ack = PathBuf::from(std::env::var(ACK).unwrap());
    let w: u64 = std::env::var(CHILD_ID).unwrap().parse().unwrap();
    let ready = PathBuf::from(std::env::var(GO).unwrap());
    child_runtime().block_on(async {
        let repo = repo(Arc::new(LocalConnector::open(root).unwrap()));
        std::fs::write(&ready, b"").unwrap();
        for i in 0.. {
            let done = commit_batch(&repo, "main", w, i).await.unwrap();
            append_synced(&ack, &format!("ACK {w} {i} {}", done.manifest.to_hex()));
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_writers_lose_no_acknowledged_commit() {
    let kills: u64 = std::env::var("DREAMDB_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let seed = seed(0xC0FFEE);
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ack = dir.path().join("acks");
    let setup = repo(Arc::new(LocalConnector::open(&root).unwrap()));
    create(&setup).await;
    let started = Instant::now();
    let mut survived = 0;
    let mut unacked_landed = 0;
    let mut total_objects = 0;
    for generation in 0..kills {
        let ready = dir.path().join(format!("ready-{generation}"));
        let mut child = spawn_child(
            "child_crash_writer",
            &[
                (ROLE, "crash-writer".to_owned()),
                (ROOT, root.display().to_string()),
                (ACK, ack.display().to_string()),
                (CHILD_ID, generation.to_string()),
                (GO, ready.display().to_string()),
            ],
        );
        wait_for_file(&ready, Duration::from_secs(60));
        let delay = Duration::from_millis(rng.range(10, 250));
        tokio::time::sleep(delay).await;
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "generation {generation}: the child ended by itself ({status}) — it must loop until killed"
        );

        // A fresh session, as a new process would open the store.
        let fresh = repo(Arc::new(LocalConnector::open(&root).unwrap()));
        let tip = tip(&fresh, "main").await;
        total_objects = verify_reachable(&fresh, tip)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}, kill {generation}: {e}"));
        let acks = parse_acks(&std::fs::read_to_string(&ack).unwrap_or_default());
        let hist = history(&fresh, tip).await;
        let in_history: HashSet<_> = hist.iter().copied().collect();
        let mut batches: BTreeMap<String, usize> = BTreeMap::new();
        for h in &hist {
            *batches
                .entry(fresh.manifest(h).await.unwrap().message)
                .or_default() += 1;
        }
        assert!(
            batches.values().all(|n| *n == 1),
            "seed {seed}, kill {generation}: a batch committed twice: {batches:?}"
        );
        let keys = track_keys(&fresh, &tip).await;
        let label: BTreeSet<TrackKey> = keys
            .get("label")
            .map(|k| k.iter().copied().collect())
            .unwrap_or_default();
        for (w, i, m) in &acks {
            let m = m.unwrap();
            assert!(
                in_history.contains(&m),
                "seed {seed}, kill {generation}: acknowledged commit {m} (w{w} i{i}) lost"
            );
            for k in batch_keys(*w, *i) {
                assert!(
                    label.contains(&k),
                    "acknowledged entry of w{w} i{i} missing"
                );
            }
        }
        // Commits beyond the acknowledged ones: landed, not acknowledged.
        unacked_landed = hist.len() - 1 - acks.len();
        survived += 1;
    }
    let acks = parse_acks(&std::fs::read_to_string(&ack).unwrap_or_default());
    println!(
        "seed {seed}: {survived} SIGKILLs survived, {} acknowledged commits all present, \
         {unacked_landed} landed unacknowledged, {total_objects} reachable objects verified, \
         {:.1} s",
        acks.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        acks.len() as u64 >= kills / 3,
        "too few commits to mean anything"
    );
}
