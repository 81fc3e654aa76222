//! Concurrent writers on the local directory backend: N = 4 OS processes
//! (this test binary re-run as children) each commit M = 10 batches — new
//! track entries pointing at real segment objects written through the
//! store — with the rebasing `apply_changes`. Every commit a child
//! acknowledged must be in the final tip's history and tracks exactly once;
//! a batch a child reports failed must leave no trace; the history holds
//! no commit nobody acknowledged. Then the same with one branch per writer
//! finished by one `merge_many`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dreamdb_connector::local::LocalConnector;
use dreamdb_protocol::dag::{MergeOptions, MergeOutcome};
use reliability_support::*;

const WRITERS: u64 = 4;
const BATCHES: u64 = 10;
const BRANCH: &str = "DREAMDB_RELIABILITY_BRANCH";

/// The child: commits BATCHES batches as writer CHILD_ID on BRANCH of the
/// store at ROOT, printing `ACK w i manifest` or `FAILED w i` per batch.
#[test]
fn child_writer() {
    if std::env::var(ROLE).as_deref() != Ok("writer") {
        return;
    }
    let root = PathBuf::from(std::env::var(ROOT).unwrap());
    let w: u64 = std::env::var(CHILD_ID).unwrap().parse().unwrap();
    let branch = std::env::var(BRANCH).unwrap();
    let go = PathBuf::from(std::env::var(GO).unwrap());
    std::fs::write(go.with_file_name(format!("ready-{w}")), b"").unwrap();
    wait_for_file(&go, Duration::from_secs(60));
    child_runtime().block_on(async {
        let repo = repo(Arc::new(LocalConnector::open(root).unwrap()));
        let mut attempts = 0;
        for i in 0..BATCHES {
            match commit_batch(&repo, &branch, w, i).await {
                Ok(done) => {
                    attempts += done.attempts;
                    println!("\nACK {w} {i} {}", done.manifest.to_hex());
                }
                Err(e) => println!("\nFAILED {w} {i} {e}"),
            }
        }
        println!("\nATTEMPTS {attempts}");
    });
}

/// Runs WRITERS children on `root`, writer `w` on `branch(w)`, started
/// together; returns their stdouts.
fn run_writers(root: &Path, branch: impl Fn(u64) -> String) -> Vec<String> {
    let go = root.with_file_name("go");
    let children: Vec<_> = (0..WRITERS)
        .map(|w| {
            spawn_child(
                "child_writer",
                &[
                    (ROLE, "writer".to_owned()),
                    (ROOT, root.display().to_string()),
                    (CHILD_ID, w.to_string()),
                    (GO, go.display().to_string()),
                    (BRANCH, branch(w)),
                ],
            )
        })
        .collect();
    for w in 0..WRITERS {
        wait_for_file(
            &go.with_file_name(format!("ready-{w}")),
            Duration::from_secs(60),
        );
    }
    std::fs::write(&go, b"go").unwrap();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success() && stdout.contains("1 passed"),
                "child failed: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        })
        .collect()
}

fn collect(outputs: &[String]) -> (Vec<Acked>, Vec<(u64, u64)>, u64) {
    let mut acked = Vec::new();
    let mut failed = Vec::new();
    let mut attempts = 0;
    for out in outputs {
        acked.extend(parse_acks(out));
        failed.extend(parse_failed(out));
        attempts += out
            .lines()
            .filter_map(|l| l.strip_prefix("ATTEMPTS "))
            .filter_map(|n| n.trim().parse::<u64>().ok())
            .sum::<u64>();
    }
    (acked, failed, attempts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_commit_to_one_ref_on_local() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let setup = repo(Arc::new(LocalConnector::open(&root).unwrap()));
    create(&setup).await;
    let started = Instant::now();
    let outputs = tokio::task::spawn_blocking({
        let root = root.clone();
        move || run_writers(&root, |_| "main".to_owned())
    })
    .await
    .unwrap();
    let (acked, failed, attempts) = collect(&outputs);
    println!(
        "{WRITERS} processes x {BATCHES} batches on one ref: {} acknowledged, {} failed, \
         {attempts} attempts ({} lost races), {:.1} s",
        acked.len(),
        failed.len(),
        attempts.saturating_sub(acked.len() as u64),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(acked.len() + failed.len(), (WRITERS * BATCHES) as usize);
    assert_eq!(
        acked.len(),
        (WRITERS * BATCHES) as usize,
        "with 400 attempts no batch should give up: {failed:?}"
    );
    // A fresh session reads everything back from disk.
    let fresh = repo(Arc::new(LocalConnector::open(&root).unwrap()));
    let tip = tip(&fresh, "main").await;
    let n = check_batches(&fresh, tip, &acked, &failed, 1).await;
    let objects = verify_reachable(&fresh, tip).await.unwrap();
    println!("history {n} Manifests, {objects} reachable objects verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_on_branches_then_one_merge_many() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let setup = repo(Arc::new(LocalConnector::open(&root).unwrap()));
    let m0 = create(&setup).await;
    for w in 0..WRITERS {
        setup
            .branch(&name(&format!("shard/{w}")), m0)
            .await
            .unwrap();
    }
    let outputs = tokio::task::spawn_blocking({
        let root = root.clone();
        move || run_writers(&root, |w| format!("shard/{w}"))
    })
    .await
    .unwrap();
    let (acked, failed, attempts) = collect(&outputs);
    assert_eq!(acked.len(), (WRITERS * BATCHES) as usize, "{failed:?}");
    // One branch per writer: no race, one attempt each.
    assert_eq!(attempts, WRITERS * BATCHES);
    let fresh = repo(Arc::new(LocalConnector::open(&root).unwrap()));
    let mut tips = Vec::new();
    for w in 0..WRITERS {
        tips.push(tip(&fresh, &format!("shard/{w}")).await);
    }
    let outcome = fresh
        .merge_many(
            &name("main"),
            &tips,
            &MergeOptions::union("merger", "merge shards"),
        )
        .await
        .unwrap();
    let MergeOutcome::Merged { manifest, .. } = outcome else {
        panic!("expected a merge Manifest, got {outcome:?}");
    };
    let merged = repo(Arc::new(LocalConnector::open(&root).unwrap()));
    let tip = tip(&merged, "main").await;
    assert_eq!(tip, manifest);
    assert_eq!(merged.manifest(&tip).await.unwrap().parents.len(), 5);
    // create + merge beyond the batches.
    let n = check_batches(&merged, tip, &acked, &failed, 2).await;
    let objects = verify_reachable(&merged, tip).await.unwrap();
    println!(
        "{WRITERS} processes x {BATCHES} batches on {WRITERS} branches + merge_many: \
         history {n}, {objects} objects verified"
    );
}
