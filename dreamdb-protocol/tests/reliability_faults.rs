//! Injected faults along whole operations: for a commit (`apply_changes`,
//! segment write included), a `merge` and a `merge_many`, the calls of a
//! clean run are counted, then for every k in 1..=calls the k-th connector
//! call fails (`FaultInjector::fail_nth`). After each: the ref points to a
//! complete Manifest (everything reachable exists and verifies), an
//! operation that reported failure left the ref where it was, a retry
//! succeeds, and the final state holds the changes exactly once.
//!
//! Also: a lost response to a successful conditional PUT of the ref
//! (`fail_after_put`, or a wrapper losing only ref responses) is success,
//! never a conflict and never a duplicate commit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::wrappers::{FaultInjector, FaultPlan};
use dreamdb_connector::{
    ByteRange, Connector, ConnectorError, GetResult, KeyPrefix, ListStream, ObjectKey, ObjectMeta,
    PutMode, PutOutcome,
};
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{
    CommitLoopOptions, CommitOptions, DagError, Draft, MergeOptions, MergeOutcome, PublishOutcome,
    Repo,
};
use reliability_support::*;

type Injector = Arc<FaultInjector<MemoryConnector>>;
type OpFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DagError>> + 'a>>;

/// A dataset ready for one operation, over a fault injector.
struct Setup {
    injector: Injector,
    /// The session the operation (and its retry) runs in.
    repo: Repo,
    /// What `main` named before the operation.
    before: ContentHash,
    /// The batches expected on `main` once the operation has succeeded.
    expected: Vec<(u64, u64)>,
    /// Commits expected in history beyond one per batch.
    extra: usize,
    /// What the operation merges in (merges only).
    theirs: Vec<ContentHash>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Commit,
    Merge,
    MergeMany,
}

async fn setup(op: Op) -> Setup {
    let injector: Injector = Arc::new(FaultInjector::inert(MemoryConnector::new()));
    let repo = repo(injector.clone());
    let m0 = create(&repo).await;
    let mut expected = Vec::new();
    let mut theirs = Vec::new();
    // Enough batches on main that its tracks are paged.
    for i in 0..3 {
        commit_batch(&repo, "main", 0, i).await.unwrap();
        expected.push((0, i));
    }
    let extra = match op {
        Op::Commit => {
            expected.push((9, 0));
            1
        }
        Op::Merge | Op::MergeMany => {
            let branches = if op == Op::Merge { 1 } else { 3 };
            for b in 1..=branches {
                let branch = format!("side/{b}");
                repo.branch(&name(&branch), m0).await.unwrap();
                for i in 0..2 {
                    commit_batch(&repo, &branch, b, i).await.unwrap();
                    expected.push((b, i));
                }
                theirs.push(tip(&repo, &branch).await);
            }
            2
        }
    };
    let before = tip(&repo, "main").await;
    // The operation runs in a new session (cold cache): every object it
    // needs is read through the injector.
    let repo = reliability_support::repo(injector.clone());
    Setup {
        injector,
        repo,
        before,
        expected,
        extra,
        theirs,
    }
}

fn run_op<'a>(op: Op, s: &'a Setup) -> OpFuture<'a> {
    Box::pin(async move {
        match op {
            Op::Commit => {
                let seg = s.repo.store().put_bytes(segment_bytes(9, 0)).await?;
                let set = batch_changes(seg, 9, 0);
                s.repo
                    .apply_changes(&name("main"), &set, &CommitLoopOptions::default())
                    .await
                    .map(drop)
            }
            Op::Merge | Op::MergeMany => {
                let options = MergeOptions::union("merger", "merge");
                let outcome = if op == Op::Merge {
                    s.repo.merge(&name("main"), s.theirs[0], &options).await?
                } else {
                    s.repo
                        .merge_many(&name("main"), &s.theirs, &options)
                        .await?
                };
                match outcome {
                    MergeOutcome::Merged { .. } => Ok(()),
                    other => panic!("expected a merge Manifest, got {other:?}"),
                }
            }
        }
    })
}

/// The state after the operation succeeded (once): checked through a
/// fresh session without faults.
async fn check_final(s: &Setup) {
    let clean = repo(Arc::new(s.injector.inner().clone()));
    let tip = tip(&clean, "main").await;
    verify_reachable(&clean, tip).await.unwrap();
    let acked: Vec<_> = s.expected.iter().map(|(w, i)| (*w, *i, None)).collect();
    check_batches(&clean, tip, &acked, &[], s.extra).await;
}

/// Fails call k for every k of `op`; returns the number of faults injected.
async fn fail_every_call(op: Op) -> u64 {
    let clean = setup(op).await;
    let c0 = clean.injector.calls();
    run_op(op, &clean).await.unwrap();
    let calls = clean.injector.calls() - c0;
    check_final(&clean).await;
    let mut reported_failed = 0;
    for k in 1..=calls {
        let s = setup(op).await;
        let c0 = s.injector.calls();
        s.injector.set_plan(FaultPlan::none().fail_nth(c0 + k));
        let result = run_op(op, &s).await;
        s.injector.set_plan(FaultPlan::none());
        // The ref names a complete Manifest, whatever happened.
        let fresh = repo(Arc::new(s.injector.inner().clone()));
        let now = tip(&fresh, "main").await;
        verify_reachable(&fresh, now)
            .await
            .unwrap_or_else(|e| panic!("{op:?}, call {k} failed: incomplete ref: {e}"));
        if let Err(e) = result {
            reported_failed += 1;
            assert_eq!(
                now, s.before,
                "{op:?}, call {k} failed: the operation reported {e} but moved the ref"
            );
            run_op(op, &s)
                .await
                .unwrap_or_else(|e| panic!("{op:?}, call {k}: the retry failed: {e}"));
        }
        check_final(&s).await;
    }
    println!(
        "{op:?}: {calls} calls, a fault injected at each: {reported_failed} reported \
         failure (then retried), {} absorbed by retries",
        calls - reported_failed
    );
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_every_call_of_a_commit() {
    assert!(fail_every_call(Op::Commit).await > 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_every_call_of_a_merge() {
    assert!(fail_every_call(Op::Merge).await > 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_every_call_of_a_merge_many() {
    assert!(fail_every_call(Op::MergeMany).await > 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_response_to_a_landed_ref_write_is_published() {
    let injector: Injector = Arc::new(FaultInjector::inert(MemoryConnector::new()));
    let repo = repo(injector.clone());
    create(&repo).await;
    let state = repo.read_ref(&name("main")).await.unwrap().unwrap();
    let m = repo.manifest(&state.manifest).await.unwrap();
    let (next, _) = repo
        .commit(CommitOptions {
            parents: vec![state.manifest],
            draft: Draft::from_manifest(&m, "w", "next"),
            time_unix_nanos: None,
        })
        .await
        .unwrap();
    // Only the ref PUT happens from here on: it lands, its answer is lost.
    injector.set_plan(FaultPlan::none().fail_after_put());
    let outcome = repo
        .publish(&name("main"), next, Some(&state))
        .await
        .unwrap();
    injector.set_plan(FaultPlan::none());
    match outcome {
        PublishOutcome::Published {
            state,
            confirmed_by_reread,
        } => {
            assert!(confirmed_by_reread);
            assert_eq!(state.manifest, next);
        }
        PublishOutcome::Lost { tip } => panic!("a landed write reported as lost to {tip:?}"),
    }
    // Same for creating a branch (a conditional create).
    injector.set_plan(FaultPlan::none().fail_after_put());
    let created = repo.branch(&name("dev"), next).await.unwrap();
    injector.set_plan(FaultPlan::none());
    assert_eq!(created.manifest, next);
}

/// Forwards everything; PUTs of ref keys land, then report `error()`
/// (every one, or only the first `limit`).
#[derive(Debug)]
struct LoseRefResponses {
    inner: MemoryConnector,
    limit: u64,
    lost: AtomicU64,
    transient: bool,
}

impl LoseRefResponses {
    fn new(inner: MemoryConnector, limit: u64, transient: bool) -> Self {
        LoseRefResponses {
            inner,
            limit,
            lost: AtomicU64::new(0),
            transient,
        }
    }
}

#[async_trait]
impl Connector for LoseRefResponses {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn get(&self, key: &ObjectKey) -> Result<GetResult, ConnectorError> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &ObjectKey, range: ByteRange) -> Result<Bytes, ConnectorError> {
        self.inner.get_range(key, range).await
    }
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ConnectorError> {
        self.inner.head(key).await
    }
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, ConnectorError> {
        let outcome = self.inner.put(key, bytes, mode).await?;
        if key.as_str().contains("/refs/")
            && matches!(outcome, PutOutcome::Written(_))
            && self.lost.fetch_add(1, Ordering::SeqCst) < self.limit
        {
            return Err(if self.transient {
                ConnectorError::Backend {
                    backend: "test".to_owned(),
                    operation: "PUT",
                    key: key.to_string(),
                    status: None,
                    message: "connection reset (response lost)".to_owned(),
                }
            } else {
                ConnectorError::Io {
                    path: key.to_string(),
                    source: std::io::Error::other("fsync of the directory failed"),
                }
            });
        }
        Ok(outcome)
    }
    fn list<'a>(&'a self, prefix: &'a KeyPrefix) -> ListStream<'a> {
        self.inner.list(prefix)
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), ConnectorError> {
        self.inner.delete(key).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_and_merges_whose_every_ref_response_is_lost_succeed_once() {
    let memory = MemoryConnector::new();
    let lossy = Arc::new(LoseRefResponses::new(memory.clone(), u64::MAX, true));
    let repo = repo(lossy.clone());
    let m0 = create(&repo).await;
    repo.branch(&name("side"), m0).await.unwrap();
    let mut acked = Vec::new();
    for i in 0..4 {
        let done = commit_batch(&repo, "main", 0, i).await.unwrap();
        assert_eq!(done.attempts, 1, "a lost response is not a lost race");
        acked.push((0, i, Some(done.manifest)));
    }
    for i in 0..2 {
        let done = commit_batch(&repo, "side", 1, i).await.unwrap();
        acked.push((1, i, Some(done.manifest)));
    }
    let side = tip(&repo, "side").await;
    let outcome = repo
        .merge(&name("main"), side, &MergeOptions::union("m", "merge"))
        .await
        .unwrap();
    assert!(matches!(outcome, MergeOutcome::Merged { attempts: 1, .. }));
    let lost = lossy.lost.load(Ordering::SeqCst);
    let clean = repo_with(Arc::new(memory), DATASET, config());
    let tip = tip(&clean, "main").await;
    check_batches(&clean, tip, &acked, &[], 2).await;
    verify_reachable(&clean, tip).await.unwrap();
    println!("{lost} ref responses lost, every commit and the merge published exactly once");
}

/// A ref write that lands but reports a non-transient error (a local
/// `fsync` of the directory failing after the rename): the operation must
/// not report failure while its commit is visible, or a caller's retry
/// commits the batch twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_landed_ref_write_reported_as_a_hard_error_is_not_a_failure() {
    let memory = MemoryConnector::new();
    let repo = repo(Arc::new(LoseRefResponses::new(memory.clone(), 1, true)));
    create(&repo).await;
    let repo = repo_with(
        Arc::new(LoseRefResponses::new(memory.clone(), 1, false)),
        DATASET,
        config(),
    );
    let before = tip(&repo, "main").await;
    let set = batch(&repo, 0, 0).await;
    let result = repo
        .apply_changes(&name("main"), &set, &CommitLoopOptions::default())
        .await;
    let clean = repo_with(Arc::new(memory), DATASET, config());
    let after = tip(&clean, "main").await;
    if let Err(e) = &result {
        assert_eq!(
            after, before,
            "apply_changes reported {e} but its commit {after} is published"
        );
    }
}
