//! The fault injector and the counting wrapper do exactly what they say.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::wrappers::{CountingConnector, FaultInjector, FaultPlan, OpCounts, OpKind};
use dreamdb_connector::{
    ByteRange, Connector, ConnectorError, ConnectorExt, KeyPrefix, ObjectKey, PutMode, PutOutcome,
};

fn key(text: &str) -> ObjectKey {
    ObjectKey::new(text).unwrap()
}

fn injected_call(result: Result<impl std::fmt::Debug, ConnectorError>) -> (u64, &'static str) {
    match result {
        Err(ConnectorError::Injected {
            call, operation, ..
        }) => (call, operation),
        other => panic!("expected an injected fault, got {other:?}"),
    }
}

#[tokio::test]
async fn fails_exactly_the_third_call() {
    let inner = MemoryConnector::new();
    let faulty = FaultInjector::new(inner.clone(), FaultPlan::none().fail_nth(3));
    let k = key("k");
    faulty
        .put(&k, Bytes::from_static(b"1"), PutMode::Overwrite)
        .await
        .unwrap()
        .written()
        .unwrap();
    faulty.get(&k).await.unwrap();
    let (call, operation) = injected_call(faulty.head(&k).await);
    assert_eq!((call, operation), (3, "head"));
    faulty.head(&k).await.unwrap();
    assert_eq!(faulty.calls(), 4);
    // The error says which key, and is transient.
    let err = FaultInjector::new(inner, FaultPlan::none().fail_nth(1))
        .get(&k)
        .await
        .unwrap_err();
    assert!(err.is_transient());
    assert!(err.to_string().contains("get k"), "{err}");
}

#[tokio::test]
async fn fails_every_put_and_writes_nothing() {
    let inner = MemoryConnector::new();
    let faulty = FaultInjector::new(inner.clone(), FaultPlan::none().fail_op(OpKind::Put));
    for (i, mode) in [PutMode::Overwrite, PutMode::Create, PutMode::Overwrite]
        .into_iter()
        .enumerate()
    {
        let k = key(&format!("k{i}"));
        let (call, operation) = injected_call(faulty.put(&k, Bytes::new(), mode).await);
        assert_eq!((call, operation), (i as u64 + 1, "put"));
    }
    assert!(inner.list_all(&KeyPrefix::all()).await.unwrap().is_empty());
    // Other operations go through.
    assert!(!faulty.exists(&key("k0")).await.unwrap());
    // Listings are counted when made and fail on first poll.
    faulty.set_plan(FaultPlan::none().fail_op(OpKind::List));
    let (call, operation) = injected_call(faulty.list_all(&KeyPrefix::all()).await);
    assert_eq!((call, operation), (5, "list"));
    // The plan can be lifted at runtime.
    faulty.set_plan(FaultPlan::none());
    faulty
        .put(&key("k0"), Bytes::new(), PutMode::Create)
        .await
        .unwrap()
        .written()
        .unwrap();
    assert_eq!(faulty.calls(), 6);
}

#[tokio::test]
async fn fail_after_put_leaves_the_data_written() {
    let inner = MemoryConnector::new();
    let faulty = FaultInjector::new(inner.clone(), FaultPlan::none().fail_after_put());
    let k = key("refs/main");
    injected_call(
        faulty
            .put(&k, Bytes::from_static(b"v1"), PutMode::Create)
            .await,
    );
    let stored = inner.get(&k).await.unwrap();
    assert_eq!(stored.bytes, "v1");
    // A retry of the same create now finds the object: the caller must
    // check what is there, as after a lost response.
    faulty.set_plan(FaultPlan::none());
    let outcome = faulty
        .put(&k, Bytes::from_static(b"v1"), PutMode::Create)
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::AlreadyExists);
    // A lost update response: the CAS happened.
    faulty.set_plan(FaultPlan::none().fail_after_put());
    let mode = PutMode::Update(stored.meta.version.clone());
    injected_call(faulty.put(&k, Bytes::from_static(b"v2"), mode).await);
    assert_eq!(inner.get(&k).await.unwrap().bytes, "v2");
}

#[tokio::test]
async fn latency_is_applied_to_every_call() {
    let latency = Duration::from_millis(40);
    let faulty = FaultInjector::new(
        MemoryConnector::new(),
        FaultPlan::none().with_latency(latency),
    );
    let k = key("k");
    let started = Instant::now();
    faulty
        .put(&k, Bytes::from_static(b"x"), PutMode::Overwrite)
        .await
        .unwrap()
        .written()
        .unwrap();
    faulty.get(&k).await.unwrap();
    faulty.list_all(&KeyPrefix::all()).await.unwrap();
    assert!(started.elapsed() >= latency * 3, "{:?}", started.elapsed());
    faulty.set_plan(FaultPlan::none());
    let started = Instant::now();
    faulty.get(&k).await.unwrap();
    assert!(started.elapsed() < latency, "{:?}", started.elapsed());
}

#[tokio::test]
async fn counting_counts_a_known_sequence_exactly() {
    let counting = CountingConnector::new(MemoryConnector::new());
    let a = key("a");
    let b = key("dir/b");
    counting
        .put(&a, Bytes::from(vec![0; 100]), PutMode::Overwrite)
        .await
        .unwrap()
        .written()
        .unwrap();
    counting
        .put(&b, Bytes::from(vec![1; 30]), PutMode::Create)
        .await
        .unwrap()
        .written()
        .unwrap();
    // A lost race still sends its bytes.
    let lost = counting
        .put(&b, Bytes::from(vec![2; 7]), PutMode::Create)
        .await
        .unwrap();
    assert_eq!(lost, PutOutcome::AlreadyExists);
    counting.get(&a).await.unwrap();
    counting
        .get_range(&a, ByteRange::new(10, 35))
        .await
        .unwrap();
    counting
        .get_range(&a, ByteRange::new(90, 200))
        .await
        .unwrap_err();
    counting.get(&key("missing")).await.unwrap_err();
    counting.head(&b).await.unwrap();
    assert_eq!(counting.list_all(&KeyPrefix::all()).await.unwrap().len(), 2);
    counting.delete(&a).await.unwrap();
    counting.delete(&a).await.unwrap();

    let counts = counting.snapshot();
    let want = |calls, bytes_read, bytes_written| OpCounts {
        calls,
        bytes_read,
        bytes_written,
    };
    assert_eq!(counts.op(OpKind::Put), want(3, 0, 137));
    assert_eq!(counts.op(OpKind::Get), want(2, 100, 0));
    assert_eq!(counts.op(OpKind::GetRange), want(2, 25, 0));
    assert_eq!(counts.op(OpKind::Head), want(1, 0, 0));
    assert_eq!(counts.op(OpKind::List), want(1, 0, 0));
    assert_eq!(counts.op(OpKind::Delete), want(2, 0, 0));
    assert_eq!(counts.total_calls(), 11);
    assert_eq!(counts.total_bytes_read(), 125);
    assert_eq!(counts.total_bytes_written(), 137);

    counting.reset();
    assert_eq!(counting.snapshot().total_calls(), 0);
    // "A warm read issues no LIST".
    counting.head(&b).await.unwrap();
    assert_eq!(counting.snapshot().calls(OpKind::List), 0);
    assert_eq!(counting.snapshot().calls(OpKind::Head), 1);
}
