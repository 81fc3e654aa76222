//! Injected faults through the SDK (issue 11, item 2), on a local
//! directory: for `append_many`, `merge`, `delete` and GC
//! (`dreamdb_protocol::maintenance::gc`), the calls of a clean run are
//! counted, then for every k the k-th call fails
//! (`FaultInjector::fail_nth`) in a cold session on a fresh copy of the
//! same starting state. After each: the dataset opens, `verify` is clean
//! (so the ref names a complete Manifest), a failed operation's retry
//! succeeds, and the data is there exactly once (every record read back
//! by `iter`, sampled by `get` and by a query of its own vector), and the
//! exact top 10 of sampled vectors equals the fault-free run's. A lost
//! response to a conditional ref PUT that landed is published, never a
//! conflict and never a duplicate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use dreamdb_connector::wrappers::{FaultInjector, FaultPlan};
use dreamdb_connector::{
    ByteRange, Connector, ConnectorError, GetResult, KeyPrefix, ListStream, ObjectKey, ObjectMeta,
    PutMode, PutOutcome,
};
use dreamdb_core::time::Ticks;
use dreamdb_dataset::dataset::{CreateOptions, MergeKind, MergeStrategy, OpenOptions};
use dreamdb_dataset::Dataset;
use dreamdb_protocol::maintenance::{gc, verify, GcOptions, GcReport, VerifyOptions};
use reliability_support::*;

const ROWS: usize = 32;
const BLOB: usize = 200;
const DELETED: usize = 5;

fn rows_of(_w: u64, _i: u64) -> usize {
    ROWS
}

fn blob_of(_w: u64, _i: u64) -> usize {
    BLOB
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Append,
    Merge,
    Delete,
    Gc,
    Compact,
    AdaStep,
}

/// What the starting state holds.
struct Start {
    /// Batches on main (and, for a merge, on `side`).
    acks: Vec<Ack>,
}

/// Query answers: per query, the hits as (tag, distance bits).
type Answers = Vec<Vec<(i64, u32)>>;

/// The model the faulted runs are compared with: the exact top 10 (every
/// cell probed, every candidate reranked) of a few vectors of every
/// starting batch, named by the records' tags (anchors an append assigns
/// differ from run to run; tags do not).
async fn answers(ds: &Dataset, start: &Start) -> Answers {
    let mut out = Vec::new();
    for a in &start.acks {
        for r in [0, ROWS / 2] {
            let v = vectors(a.w, a.i, ROWS)[r * DIM..(r + 1) * DIM].to_vec();
            let request = dreamdb_dataset::read::QueryRequest::new("embedding", v, 10)
                .nprobe(1_000)
                .refine_factor(1_000)
                .fields(&["tag"]);
            let hits = ds.query(&request).await.unwrap().hits;
            out.push(
                hits.iter()
                    .map(|h| match h.fields.get("tag") {
                        Some(dreamdb_dataset::read::Value::I64(t)) => (*t, h.distance.to_bits()),
                        other => panic!("hit {} has tag {other:?}", h.anchor),
                    })
                    .collect(),
            );
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

async fn local(path: &Path) -> Arc<dyn Connector> {
    dreamdb_connector_http::connect(path.to_str().unwrap())
        .await
        .unwrap()
}

fn ack(a: &dreamdb_dataset::write::AppendResult, w: u64, i: u64) -> Ack {
    Ack {
        w,
        i,
        first: a.anchors[0],
    }
}

/// The starting state of `op` under `dir`.
async fn prepare(dir: &Path, op: Op) -> Start {
    let url = dir.to_str().unwrap();
    let ds = Dataset::create(url, DATASET, schema(), CreateOptions::default())
        .await
        .unwrap();
    let mut acks = vec![ack(
        &ds.append_many(batch(0, 0, ROWS, BLOB)).await.unwrap(),
        0,
        0,
    )];
    match op {
        Op::Merge => {
            let side = ds.branch("side").await.unwrap();
            acks.push(ack(
                &side.append_many(batch(1, 0, ROWS, BLOB)).await.unwrap(),
                1,
                0,
            ));
            acks.push(ack(
                &ds.append_many(batch(2, 0, ROWS, BLOB)).await.unwrap(),
                2,
                0,
            ));
        }
        Op::Gc => {
            // Older versions become garbage for a GC keeping tips only.
            acks.push(ack(
                &ds.append_many(batch(3, 0, ROWS, BLOB)).await.unwrap(),
                3,
                0,
            ));
        }
        Op::Compact => {
            // Two runs per touched cell and deleted records: compact has
            // cells to rewrite and records to drop.
            acks.push(ack(
                &ds.append_many(batch(4, 0, ROWS, BLOB)).await.unwrap(),
                4,
                0,
            ));
            let first = acks[0].first;
            let anchors: Vec<u64> = (first..first + DELETED as u64).collect();
            ds.delete(&anchors, "before compact").await.unwrap();
        }
        Op::AdaStep => {
            for w in 6..9 {
                acks.push(ack(
                    &ds.append_many(batch(w, 0, ROWS, BLOB)).await.unwrap(),
                    w,
                    0,
                ));
            }
        }
        Op::Append | Op::Delete => {}
    }
    Start { acks }
}

fn gc_options() -> GcOptions {
    let mut options = GcOptions::new(Ticks::ZERO, dreamdb_protocol::maintenance::now_unix_nanos());
    options.keep_manifests = Some(1);
    options
}

/// Runs `op` once through `connector` in a cold session.
async fn run(connector: Arc<dyn Connector>, op: Op, start: &Start) -> Result<Outcome, String> {
    if op == Op::Gc {
        return gc(connector, &gc_options())
            .await
            .map(Outcome::Gc)
            .map_err(|e| e.to_string());
    }
    let ds = Dataset::open_on(connector, "fault://", DATASET, OpenOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    match op {
        Op::Append => ds
            .append_many(batch(5, 0, ROWS, BLOB))
            .await
            .map(|a| Outcome::Appended(ack(&a, 5, 0)))
            .map_err(|e| e.to_string()),
        Op::Merge => ds
            .merge("side", MergeStrategy::Union)
            .await
            .map(|m| Outcome::Merged(m.kind))
            .map_err(|e| e.to_string()),
        Op::Delete => {
            let first = start.acks[0].first;
            let anchors: Vec<u64> = (first..first + DELETED as u64).collect();
            ds.delete(&anchors, "fault test")
                .await
                .map(Outcome::Deleted)
                .map_err(|e| e.to_string())
        }
        Op::Compact => ds
            .compact(None)
            .await
            .map(|r| Outcome::Compacted(r.records_dropped))
            .map_err(|e| e.to_string()),
        Op::AdaStep => ds
            .ada_ivf_step("embedding", ada_options())
            .await
            .map(|r| Outcome::Stepped(r.manifest.is_some()))
            .map_err(|e| e.to_string()),
        Op::Gc => unreachable!(),
    }
}

fn ada_options() -> dreamdb_dataset::maintain::AdaIvfStepOptions {
    dreamdb_dataset::maintain::AdaIvfStepOptions::new(1.3, 0.5)
}

#[derive(Debug)]
#[allow(dead_code)] // the payloads are shown in failure messages
enum Outcome {
    Appended(Ack),
    Merged(MergeKind),
    Deleted(u64),
    Gc(GcReport),
    Compacted(u64),
    Stepped(bool),
}

/// After the operation (and its retry) succeeded: everything is there
/// exactly once, `verify` is clean.
/// Checks the state after `op` (and its retry); returns the query answers,
/// which must equal `model` when one is given.
async fn check(
    dir: &Path,
    op: Op,
    start: &Start,
    done: &Outcome,
    label: &str,
    model: Option<&Answers>,
) -> Answers {
    let connector = local(dir).await;
    verify_clean(connector.clone()).await;
    let ds = Dataset::open_on(
        connector.clone(),
        "check://",
        DATASET,
        OpenOptions::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("{label}: dataset does not open: {e}"));
    let got = answers(&ds, start).await;
    if let Some(model) = model {
        assert_eq!(
            &got, model,
            "{label}: query answers differ from the fault-free run's"
        );
    }
    let mut acks = start.acks.clone();
    match (op, done) {
        (Op::Append, Outcome::Appended(a)) => acks.push(*a),
        (Op::Merge, Outcome::Merged(kind)) => assert_eq!(*kind, MergeKind::Merged, "{label}"),
        (Op::Delete, Outcome::Deleted(_)) => {}
        (Op::Gc, Outcome::Gc(_)) => {}
        (Op::Compact, Outcome::Compacted(_)) => {}
        (Op::AdaStep, Outcome::Stepped(_)) => {}
        other => panic!("{label}: unexpected {other:?}"),
    }
    if op == Op::Compact {
        // The deleted records stay invisible, every other record of both
        // batches is there once, and a second compact has nothing to do
        // (the first one, or its retry, completed).
        let first = acks[0].first;
        for a in first..first + DELETED as u64 {
            assert!(
                ds.get(a, None).await.unwrap().is_none(),
                "{label}: deleted {a} is visible"
            );
        }
        for a in [
            first + DELETED as u64,
            acks[1].first,
            acks[1].first + ROWS as u64 - 1,
        ] {
            assert!(
                ds.get(a, None).await.unwrap().is_some(),
                "{label}: {a} lost"
            );
        }
        let all = ds.iter(Default::default()).await.unwrap();
        assert_eq!(all.len(), 2 * ROWS - DELETED, "{label}");
        let again = ds.compact(None).await.unwrap();
        assert_eq!(again.records_dropped, 0, "{label}: {again:?}");
        return got;
    }
    if op == Op::Delete {
        let first = acks[0].first;
        for a in first..first + DELETED as u64 {
            assert!(
                ds.get(a, None).await.unwrap().is_none(),
                "{label}: deleted {a} is visible"
            );
        }
        assert_eq!(ds.records().await.unwrap(), (ROWS - DELETED) as u64);
        assert_eq!(ds.tombstones().await.unwrap().len(), DELETED, "{label}");
        return got;
    }
    let found = check_batches(&ds, &acks, &rows_of, &blob_of, 1).await;
    assert_eq!(
        found.batches.len(),
        acks.len(),
        "{label}: a batch that was never acknowledged is visible"
    );
    if op == Op::Gc {
        // Everything GC could delete is gone: another run finds nothing.
        let again = gc(connector, &gc_options()).await.unwrap();
        assert!(again.deleted.is_empty(), "{label}: {again:?}");
    }
    got
}

/// Counts the calls of a clean run, then fails each call once.
async fn every_call_fails_once(op: Op, strict: bool) -> (u64, u64, u64) {
    let template = tempfile::tempdir().unwrap();
    let start = prepare(template.path(), op).await;

    let clean_dir = tempfile::tempdir().unwrap();
    copy_dir(template.path(), clean_dir.path());
    let inj = Arc::new(FaultInjector::inert(local(clean_dir.path()).await));
    let done = run(inj.clone(), op, &start).await.unwrap();
    if let Outcome::Stepped(stepped) = done {
        assert!(
            stepped,
            "the clean Ada-IVF step changed no cell: the test would test nothing"
        );
    }
    let calls = inj.calls();
    let model = check(
        clean_dir.path(),
        op,
        &start,
        &done,
        &format!("{op:?} clean"),
        None,
    )
    .await;
    assert!(
        model.iter().all(|hits| hits.len() == 10),
        "{op:?}: {model:?}"
    );

    let (mut reported, mut absorbed, mut dirty) = (0, 0, 0);
    for k in 1..=calls {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let inj = Arc::new(FaultInjector::new(
            local(dir.path()).await,
            FaultPlan::none().fail_nth(k),
        ));
        let label = format!("{op:?} call {k}/{calls}");
        let done = match run(inj.clone(), op, &start).await {
            Ok(done) => {
                absorbed += 1;
                done
            }
            Err(e) => {
                reported += 1;
                assert!(
                    !e.contains("conflict"),
                    "{label}: a fault is not a conflict: {e}"
                );
                // The state is sound before the retry too (an
                // interrupted GC: see `an_interrupted_gc_leaves_verify_clean`).
                if op != Op::Gc || strict {
                    verify_clean(local(dir.path()).await).await;
                } else {
                    let report = verify(local(dir.path()).await, &VerifyOptions::default())
                        .await
                        .unwrap();
                    if !report.is_clean() {
                        dirty += 1;
                    }
                }
                run(local(dir.path()).await, op, &start)
                    .await
                    .unwrap_or_else(|e2| panic!("{label}: retry after `{e}` failed: {e2}"))
            }
        };
        check(dir.path(), op, &start, &done, &label, Some(&model)).await;
    }
    println!("{op:?}: {calls} calls, {calls} faults: {reported} reported and retried, {absorbed} absorbed; {dirty} interrupted states not verify-clean before the retry");
    (calls, reported, absorbed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_survives_every_single_fault() {
    every_call_fails_once(Op::Append, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_survives_every_single_fault() {
    every_call_fails_once(Op::Merge, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_survives_every_single_fault() {
    every_call_fails_once(Op::Delete, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_survives_every_single_fault() {
    every_call_fails_once(Op::Compact, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ada_ivf_step_survives_every_single_fault() {
    every_call_fails_once(Op::AdaStep, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_survives_every_single_fault() {
    every_call_fails_once(Op::Gc, false).await;
}

/// Fixed (was a bug): a GC whose sweep is interrupted (a failed DELETE)
/// leaves a stored, unretained Manifest whose objects it already deleted;
/// `verify` walks history, reaches that Manifest and reports them missing
/// until a GC completes. The sweep order is the cause
/// (dreamdb-protocol/src/maintenance/gc.rs: delete referrers — Manifests,
/// then pages — before what they reference, or have verify skip
/// unretained history).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_gc_leaves_verify_clean() {
    every_call_fails_once(Op::Gc, true).await;
}

// ----- lost responses -----

/// Performs every conditional ref PUT, then (while `lose > 0`) reports it
/// as a transient failure: the write landed, its response was lost.
#[derive(Debug)]
struct LoseRefResponses {
    inner: Arc<dyn Connector>,
    lose: AtomicU32,
    lost: AtomicU32,
}

#[async_trait::async_trait]
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
        let conditional = !matches!(mode, PutMode::Overwrite);
        let outcome = self.inner.put(key, bytes, mode).await?;
        if conditional
            && key.as_str().contains("/refs/")
            && self
                .lose
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            self.lost.fetch_add(1, Ordering::SeqCst);
            return Err(ConnectorError::Injected {
                call: 0,
                operation: "put",
                key: key.as_str().to_owned(),
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
async fn a_lost_response_to_a_landed_ref_put_is_not_a_conflict() {
    let mut total_lost = 0;
    for op in [Op::Append, Op::Merge, Op::Delete] {
        for lose in [1, 3] {
            let dir = tempfile::tempdir().unwrap();
            let start = prepare(dir.path(), op).await;
            let wrapper = Arc::new(LoseRefResponses {
                inner: local(dir.path()).await,
                lose: AtomicU32::new(lose),
                lost: AtomicU32::new(0),
            });
            let label = format!("{op:?}, {lose} lost ref responses");
            let done = run(wrapper.clone(), op, &start)
                .await
                .unwrap_or_else(|e| panic!("{label}: reported {e}"));
            assert!(wrapper.lost.load(Ordering::SeqCst) >= 1, "{label}");
            total_lost += wrapper.lost.load(Ordering::SeqCst);
            check(dir.path(), op, &start, &done, &label, None).await;
            let ds = Dataset::open(
                dir.path().to_str().unwrap(),
                DATASET,
                OpenOptions::default(),
            )
            .await
            .unwrap();
            let history = ds.history(100).await.unwrap();
            let expected = match op {
                Op::Append | Op::Delete => 3,
                Op::Merge => 5,
                Op::Gc | Op::Compact | Op::AdaStep => unreachable!(),
            };
            assert_eq!(history.len(), expected, "{label}: published once");
        }
    }
    println!("lost ref responses: {total_lost}, every operation published once");
}
