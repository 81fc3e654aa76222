//! The shared conformance suite on the local-directory backend, with and
//! without a root prefix, and through the wrappers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bytes::Bytes;
use dreamdb_connector::conformance::run_all;
use dreamdb_connector::local::LocalConnector;
use dreamdb_connector::wrappers::{CountingConnector, FaultInjector};
use dreamdb_connector::{Connector, ConnectorExt, KeyPrefix, ObjectKey, PutMode};

async fn suite(connector: Arc<dyn Connector>) {
    match run_all(connector).await {
        Ok(report) => println!("{report}"),
        Err(failure) => panic!("{failure}"),
    }
}

/// Every file under `root`, relative, excluding the internal directory.
fn files(root: &std::path::Path) -> Vec<String> {
    fn walk(dir: &std::path::Path, rel: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if entry.file_type().unwrap().is_dir() {
                out.push(format!("{rel}/"));
                walk(&entry.path(), &rel, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, "", &mut out);
    out.retain(|p| !p.starts_with(".dreamdb-internal"));
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_passes_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalConnector::open(dir.path().join("store")).unwrap();
    suite(Arc::new(store.clone())).await;
    // Deleting the suite's objects also removed its (empty) directories,
    // and no temporary or lock file was left behind.
    assert_eq!(files(store.root()), Vec::<String>::new());
    let internal = store.root().join(".dreamdb-internal");
    assert_eq!(std::fs::read_dir(internal.join("tmp")).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(internal.join("locks")).unwrap().count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_with_prefix_passes_and_stays_inside_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalConnector::open(dir.path()).unwrap();
    let outside = ObjectKey::new("other/keep").unwrap();
    store
        .put(&outside, Bytes::from_static(b"keep"), PutMode::Overwrite)
        .await
        .unwrap()
        .written()
        .unwrap();
    let prefixed = store
        .clone()
        .with_prefix(KeyPrefix::new("tenant/").unwrap());
    suite(Arc::new(prefixed.clone())).await;
    assert!(prefixed
        .list_all(&KeyPrefix::all())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(files(store.root()), vec!["other/", "other/keep"]);
    assert_eq!(store.get(&outside).await.unwrap().bytes, "keep");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_with_partial_segment_prefix_passes() {
    // A root prefix that does not end in '/' glues onto the first segment.
    let dir = tempfile::tempdir().unwrap();
    let store = LocalConnector::open(dir.path())
        .unwrap()
        .with_prefix(KeyPrefix::new("ds1/run-").unwrap());
    suite(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_on_a_shared_non_empty_root_passes() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalConnector::open(dir.path()).unwrap();
    for i in 0..20 {
        let key = ObjectKey::new(format!("existing/{i}")).unwrap();
        store
            .put(&key, Bytes::from(vec![1; i]), PutMode::Overwrite)
            .await
            .unwrap()
            .written()
            .unwrap();
    }
    // Two suites at once, on two connectors sharing the root.
    let other = LocalConnector::open(dir.path()).unwrap();
    let (a, b) = tokio::join!(run_all(Arc::new(store.clone())), run_all(Arc::new(other)));
    a.unwrap();
    b.unwrap();
    assert_eq!(store.list_all(&KeyPrefix::all()).await.unwrap().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_through_wrappers_passes() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalConnector::open(dir.path()).unwrap();
    suite(Arc::new(CountingConnector::new(store.clone()))).await;
    suite(Arc::new(FaultInjector::inert(store))).await;
}
