//! The conformance suite fails broken backends, naming the broken check,
//! and still cleans up after itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use dreamdb_connector::conformance::{counter_race, run_all};
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::{
    ByteRange, Connector, ConnectorError, ConnectorExt, GetResult, KeyPrefix, ListStream,
    ObjectKey, ObjectMeta, PutMode, PutOutcome,
};
use futures::StreamExt;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Bug {
    /// Update ignores the expected version.
    UpdateIgnoresVersion,
    /// Update compares, then writes later: not atomic.
    UpdateNotAtomic,
    /// Listings come out in reverse order.
    ListReversed,
    /// Ranges past the end are clamped instead of refused.
    RangeClamped,
    /// Create overwrites an existing object.
    CreateOverwrites,
}

#[derive(Debug)]
struct Broken {
    inner: MemoryConnector,
    bug: Bug,
}

#[async_trait]
impl Connector for Broken {
    fn describe(&self) -> String {
        format!("broken({:?})", self.bug)
    }
    async fn get(&self, key: &ObjectKey) -> Result<GetResult, ConnectorError> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &ObjectKey, range: ByteRange) -> Result<Bytes, ConnectorError> {
        if self.bug == Bug::RangeClamped && range.start < range.end {
            let all = self.inner.get(key).await?.bytes;
            let end = (range.end as usize).min(all.len());
            let start = (range.start as usize).min(end);
            return Ok(all.slice(start..end));
        }
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
        match (self.bug, &mode) {
            (Bug::UpdateIgnoresVersion, PutMode::Update(_)) => {
                self.inner.put(key, bytes, PutMode::Overwrite).await
            }
            (Bug::UpdateNotAtomic, PutMode::Update(expected)) => {
                match self.inner.head_opt(key).await? {
                    Some(meta) if &meta.version == expected => {
                        tokio::task::yield_now().await;
                        tokio::time::sleep(std::time::Duration::from_micros(200)).await;
                        self.inner.put(key, bytes, PutMode::Overwrite).await
                    }
                    _ => Ok(PutOutcome::PreconditionFailed),
                }
            }
            (Bug::CreateOverwrites, PutMode::Create) => {
                self.inner.put(key, bytes, PutMode::Overwrite).await
            }
            _ => self.inner.put(key, bytes, mode).await,
        }
    }
    fn list<'a>(&'a self, prefix: &'a KeyPrefix) -> ListStream<'a> {
        if self.bug == Bug::ListReversed {
            let inner = self.inner.list(prefix);
            return futures::stream::once(async move {
                let mut all: Vec<_> = inner.collect().await;
                all.reverse();
                futures::stream::iter(all)
            })
            .flatten()
            .boxed();
        }
        self.inner.list(prefix)
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), ConnectorError> {
        self.inner.delete(key).await
    }
}

async fn failed_check(bug: Bug) -> String {
    let inner = MemoryConnector::new();
    let broken = Arc::new(Broken {
        inner: inner.clone(),
        bug,
    });
    let failure = run_all(broken).await.expect_err("the suite must fail");
    println!("{bug:?}: {failure}");
    assert!(failure.backend.contains("broken"));
    // Cleanup ran even though a check failed.
    assert!(inner.list_all(&KeyPrefix::all()).await.unwrap().is_empty());
    failure.check
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_bug_fails_its_check() {
    assert!(failed_check(Bug::UpdateIgnoresVersion)
        .await
        .starts_with("update"));
    assert!(failed_check(Bug::ListReversed).await.starts_with("list"));
    assert!(failed_check(Bug::RangeClamped).await.starts_with("ranges"));
    assert!(failed_check(Bug::CreateOverwrites)
        .await
        .starts_with("create"));
    assert!(failed_check(Bug::UpdateNotAtomic)
        .await
        .starts_with("counter_race"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counter_race_detects_lost_updates() {
    let broken: Arc<dyn Connector> = Arc::new(Broken {
        inner: MemoryConnector::new(),
        bug: Bug::UpdateNotAtomic,
    });
    let key = ObjectKey::new("counter").unwrap();
    let failure = counter_race(broken, &key, 8, 20).await.unwrap_err();
    assert!(failure.seen.contains("lost"), "{failure}");

    let sound: Arc<dyn Connector> = Arc::new(MemoryConnector::new());
    assert_eq!(counter_race(sound, &key, 8, 20).await.unwrap(), 160);
}
