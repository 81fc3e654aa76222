//! The shared conformance suite on the memory backend, with and without a
//! root prefix, through the wrappers, and on a shared non-empty store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bytes::Bytes;
use dreamdb_connector::conformance::run_all;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::wrappers::{CountingConnector, FaultInjector, OpKind};
use dreamdb_connector::{Connector, ConnectorExt, KeyPrefix, ObjectKey, PutMode};

async fn suite(connector: Arc<dyn Connector>) {
    match run_all(connector).await {
        Ok(report) => println!("{report}"),
        Err(failure) => panic!("{failure}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_passes() {
    suite(Arc::new(MemoryConnector::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_with_prefix_passes_and_stays_inside_it() {
    let store = MemoryConnector::new();
    let prefixed = store
        .clone()
        .with_prefix(KeyPrefix::new("tenant-a/").unwrap());
    // A neighbour outside the prefix is neither listed nor touched.
    let outside = ObjectKey::new("tenant-b/keep").unwrap();
    store
        .put(&outside, Bytes::from_static(b"keep"), PutMode::Overwrite)
        .await
        .unwrap()
        .written()
        .unwrap();
    suite(Arc::new(prefixed.clone())).await;
    assert!(prefixed
        .list_all(&KeyPrefix::all())
        .await
        .unwrap()
        .is_empty());
    let all = store.list_all(&KeyPrefix::all()).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(store.get(&outside).await.unwrap().bytes, "keep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_prefix_is_stripped_from_listings() {
    let store = MemoryConnector::new();
    let prefixed = store.clone().with_prefix(KeyPrefix::new("p/").unwrap());
    let key = ObjectKey::new("a/b").unwrap();
    prefixed
        .put(&key, Bytes::from_static(b"x"), PutMode::Overwrite)
        .await
        .unwrap()
        .written()
        .unwrap();
    let listed = prefixed.list_all(&KeyPrefix::all()).await.unwrap();
    assert_eq!(listed[0].key, key);
    assert!(store
        .exists(&ObjectKey::new("p/a/b").unwrap())
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_named_stores_share_data() {
    let a = MemoryConnector::named("conformance-memory-shared");
    let b = MemoryConnector::named("conformance-memory-shared");
    let other = MemoryConnector::named("conformance-memory-other");
    let key = ObjectKey::new("x").unwrap();
    a.put(&key, Bytes::from_static(b"1"), PutMode::Overwrite)
        .await
        .unwrap()
        .written()
        .unwrap();
    assert_eq!(b.get(&key).await.unwrap().bytes, "1");
    assert!(!other.exists(&key).await.unwrap());
    assert!(!MemoryConnector::new().exists(&key).await.unwrap());
    // The suite also passes on the shared, non-empty store and leaves the
    // existing object alone.
    suite(Arc::new(b.clone())).await;
    let all = a.list_all(&KeyPrefix::all()).await.unwrap();
    assert_eq!(all.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_versions_change_on_every_write() {
    let store = MemoryConnector::new();
    let key = ObjectKey::new("k").unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        let outcome = store
            .put(&key, Bytes::from_static(b"same"), PutMode::Overwrite)
            .await
            .unwrap();
        assert!(seen.insert(outcome.written().unwrap().clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_lists_more_than_one_page_in_order() {
    let store = MemoryConnector::new();
    let mut keys: Vec<String> = (0..2500).map(|i| format!("k/{i}")).collect();
    for key in &keys {
        store
            .put(
                &ObjectKey::new(key.as_str()).unwrap(),
                Bytes::new(),
                PutMode::Overwrite,
            )
            .await
            .unwrap()
            .written()
            .unwrap();
    }
    keys.sort();
    let listed: Vec<String> = store
        .list_all(&KeyPrefix::new("k/").unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key.as_str().to_owned())
        .collect();
    assert_eq!(listed, keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counting_wrapper_passes_and_counts() {
    let counting = Arc::new(CountingConnector::new(MemoryConnector::new()));
    suite(counting.clone()).await;
    let counts = counting.snapshot();
    assert!(counts.calls(OpKind::Put) >= 30);
    assert!(counts.calls(OpKind::List) >= 8);
    assert!(counts.total_bytes_written() > 256 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inert_fault_injector_passes() {
    let injector = Arc::new(FaultInjector::inert(MemoryConnector::new()));
    suite(injector.clone()).await;
    assert!(injector.calls() > 100);
}
