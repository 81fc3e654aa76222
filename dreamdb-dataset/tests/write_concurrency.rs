//! Concurrent appenders on one ref: every batch lands, losers rebase
//! (spec/0008 §3). Two tasks racing through a gate that holds both ref
//! writes until both are ready (deterministic), and two OS processes on a
//! local directory (this test binary re-run as children).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "write_common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::Connector;
use dreamdb_dataset::dataset::{CreateOptions, OpenOptions};
use dreamdb_dataset::read::QueryRequest;
use dreamdb_dataset::Dataset;

/// Every anchor of `anchors` has a record: an append giving it is refused.
async fn assert_present(ds: &Dataset, anchors: &[u64]) {
    for a in [
        anchors[0],
        anchors[anchors.len() / 2],
        anchors[anchors.len() - 1],
    ] {
        let err = ds
            .append_many(batch(99, 1).anchors(vec![a]).unwrap())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("already has a record"),
            "{a}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tasks_race_and_one_rebases() {
    let gate = Arc::new(Gate::new(Arc::new(MemoryConnector::new()), 2));
    let connector: Arc<dyn Connector> = gate.clone();
    let ds = create_on(connector.clone(), "race").await;
    ds.append_many(batch(0, 100)).await.unwrap();
    let a = reopen(connector.clone(), "race").await;
    let b = reopen(connector.clone(), "race").await;
    gate.armed.store(true, Ordering::SeqCst);
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { a.append_many(batch(1, 100)).await }),
        tokio::spawn(async move { b.append_many(batch(2, 150)).await }),
    );
    gate.armed.store(false, Ordering::SeqCst);
    let (ra, rb) = (ra.unwrap().unwrap(), rb.unwrap().unwrap());
    let mut attempts = [ra.attempts, rb.attempts];
    attempts.sort_unstable();
    assert_eq!(attempts[0], 1, "the winner committed at once");
    assert!(attempts[1] >= 2, "the loser rebased: {attempts:?}");
    assert_eq!(ds.records().await.unwrap(), 350);
    let history = ds.history(10).await.unwrap();
    assert_eq!(history.len(), 4, "create + three appends");
    // The loser's commit sits on the winner's (a rebase, not a merge).
    assert_eq!(history[0].parents, vec![history[1].manifest]);
    assert_present(&ds, &ra.anchors).await;
    assert_present(&ds, &rb.anchors).await;
    // Signals after the rebase count both batches.
    let late = if ra.attempts > 1 { &ra } else { &rb };
    assert_eq!(late.signals.fields["embedding"].n, 350);
}

/// Two writers race the very first append of an IVF field: each trains
/// its own centroids from its batch. The loser's records were placed under
/// an index the tip does not use, so the append plans again under the
/// winner's index (its first segments become garbage): both succeed, the
/// tip names one index, and every record is found by its own vector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_first_appends_are_replaced_under_the_winners_index() {
    let gate = Arc::new(Gate::new(Arc::new(MemoryConnector::new()), 2));
    let connector: Arc<dyn Connector> = gate.clone();
    let ds = create_on(connector.clone(), "first").await;
    let a = reopen(connector.clone(), "first").await;
    let b = reopen(connector.clone(), "first").await;
    let va = clustered(11, 120, DIM as usize, 4);
    let vb = clustered(12, 90, DIM as usize, 4);
    gate.armed.store(true, Ordering::SeqCst);
    let (ra, rb) = {
        let (va, vb) = (va.clone(), vb.clone());
        tokio::join!(
            tokio::spawn(async move { a.append_many(batch_with(1, 120, va)).await }),
            tokio::spawn(async move { b.append_many(batch_with(2, 90, vb)).await }),
        )
    };
    gate.armed.store(false, Ordering::SeqCst);
    let (ra, rb) = (ra.unwrap().unwrap(), rb.unwrap().unwrap());
    assert!(
        ra.attempts.max(rb.attempts) >= 2,
        "the loser went round again: {} / {}",
        ra.attempts,
        rb.attempts
    );
    assert_eq!(ds.records().await.unwrap(), 210);
    let history = ds.history(10).await.unwrap();
    assert_eq!(history.len(), 3, "create + two appends, no merge");
    assert_present(&ds, &ra.anchors).await;
    assert_present(&ds, &rb.anchors).await;
    // Every record of both batches is its own nearest neighbour under the
    // tip's single index.
    for (vectors, anchors) in [(&va, &ra.anchors), (&vb, &rb.anchors)] {
        for (row, anchor) in anchors.iter().enumerate().step_by(7) {
            let d = DIM as usize;
            let v = &vectors[row * d..(row + 1) * d];
            let request = QueryRequest::new("embedding", v.to_vec(), 1)
                .nprobe(64)
                .refine_factor(64);
            let hits = ds.query(&request).await.unwrap().hits;
            assert_eq!(hits[0].anchor, *anchor, "row {row}");
        }
    }
}

// ----- two processes -----

const ROLE: &str = "DREAMDB_DATASET_TEST_ROLE";
const ROOT: &str = "DREAMDB_DATASET_TEST_ROOT";
const APPENDS: usize = 8;
const ROWS: usize = 20;

fn run_children(root: &Path, n: usize) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let go = root.join("go");
    let children: Vec<_> = (0..n)
        .map(|id| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "child_appender",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ROLE, "appender")
                .env(ROOT, root)
                .env("DREAMDB_DATASET_TEST_CHILD", id.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..n).any(|id| !root.join(format!("ready-{id}")).exists()) {
        assert!(Instant::now() < deadline, "children did not start");
        std::thread::sleep(Duration::from_millis(2));
    }
    std::fs::write(&go, b"go").unwrap();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "child failed: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        })
        .collect()
}

/// A child: appends `APPENDS` batches to the dataset under `$ROOT/data`
/// and prints each append's attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_appender() {
    if std::env::var(ROLE).ok().as_deref() != Some("appender") {
        return;
    }
    let root = PathBuf::from(std::env::var(ROOT).unwrap());
    let id: u64 = std::env::var("DREAMDB_DATASET_TEST_CHILD")
        .unwrap()
        .parse()
        .unwrap();
    let url = root.join("data");
    let ds = Dataset::open(url.to_str().unwrap(), "procs", OpenOptions::default())
        .await
        .unwrap();
    std::fs::write(root.join(format!("ready-{id}")), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !root.join("go").exists() {
        assert!(Instant::now() < deadline, "no go signal");
        std::thread::sleep(Duration::from_micros(200));
    }
    for i in 0..APPENDS {
        let r = ds
            .append_many(batch(1000 * (id + 1) + i as u64, ROWS))
            .await
            .unwrap();
        println!("attempts={} first={}", r.attempts, r.anchors[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_append_to_one_local_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("data");
    let ds = Dataset::create(
        url.to_str().unwrap(),
        "procs",
        schema(),
        CreateOptions::default(),
    )
    .await
    .unwrap();
    ds.append_many(batch(0, 100)).await.unwrap();
    let outputs = run_children(dir.path(), 2);
    let attempts: Vec<u32> = outputs
        .iter()
        .flat_map(|o| o.lines())
        .filter_map(|l| l.split_once("attempts=").map(|(_, rest)| rest))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(attempts.len(), 2 * APPENDS, "{outputs:?}");
    let reopened = Dataset::open(url.to_str().unwrap(), "procs", OpenOptions::default())
        .await
        .unwrap();
    assert_eq!(
        reopened.records().await.unwrap(),
        (100 + 2 * APPENDS * ROWS) as u64
    );
    let history = reopened.history(100).await.unwrap();
    assert_eq!(history.len(), 2 + 2 * APPENDS, "every append is one commit");
    assert!(
        history
            .windows(2)
            .all(|w| w[0].parents == vec![w[1].manifest]),
        "a linear history: rebases, not merges"
    );
    assert!(
        attempts.iter().any(|a| *a > 1),
        "no append ever lost the race in {} concurrent appends: {attempts:?}",
        attempts.len()
    );
}
