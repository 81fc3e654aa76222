//! Helpers shared by the write, verbs and e2e tests (included with
//! `#[path = "write_common.rs"] mod common;`). As a test binary of its own
//! it holds no tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bytes::Bytes;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::wrappers::{CallCounts, CountingConnector, OpKind};
use dreamdb_connector::Connector;
use dreamdb_core::random::DeterministicStream;
use dreamdb_dataset::batch::{Batch, ScalarColumn};
use dreamdb_dataset::dataset::{CreateOptions, OpenOptions};
use dreamdb_dataset::schema::{EmbeddingField, Metric, ScalarType, SchemaBuilder};
use dreamdb_dataset::Dataset;
use dreamdb_protocol::objects::Schema;

/// Dimension of the test embeddings.
pub const DIM: u32 = 16;
/// IVF cells of the test schema.
pub const K: u32 = 8;
/// Largest test blob.
pub const MAX_BLOB: u64 = 64;

/// The test schema: a 16-d IVF(8) RaBitQ embedding with rerank, a blob, a
/// categorical label and a nullable score.
pub fn schema() -> Schema {
    SchemaBuilder::new()
        .embedding(
            "embedding",
            EmbeddingField::new(DIM)
                .metric(Metric::Cosine)
                .ivf(K)
                .rabitq(1)
                .rerank(true),
        )
        .blob("image", "image/x-test", MAX_BLOB)
        .scalar("label", ScalarType::Categorical)
        .scalar("score", ScalarType::F64.nullable())
        .build()
        .unwrap()
}

/// Deterministic clustered vectors: `clusters` centres, rows spread
/// around them (row `i` in cluster `i % clusters`).
pub fn clustered(seed: u64, rows: usize, dim: usize, clusters: usize) -> Vec<f32> {
    let mut centres = DeterministicStream::from_seed(7, "dreamdb.test.centres");
    let centre: Vec<f32> = (0..clusters * dim)
        .map(|_| centres.next_f32_normal())
        .collect();
    let mut noise = DeterministicStream::from_seed(seed, "dreamdb.test.noise");
    let mut out = Vec::with_capacity(rows * dim);
    for i in 0..rows {
        let c = i % clusters;
        for d in 0..dim {
            out.push(centre[c * dim + d] + 0.1 * noise.next_f32_normal());
        }
    }
    out
}

/// Rows all in one cluster (a skewed append).
pub fn skewed(seed: u64, rows: usize, dim: usize) -> Vec<f32> {
    let all = clustered(seed, rows * 8, dim, 8);
    // Keep the rows of cluster 0 only.
    (0..rows)
        .flat_map(|i| all[(8 * i) * dim..(8 * i + 1) * dim].to_vec())
        .collect()
}

/// A valid batch of `rows` records for [`schema`].
pub fn batch(seed: u64, rows: usize) -> Batch {
    batch_with(seed, rows, clustered(seed, rows, DIM as usize, K as usize))
}

/// A valid batch with the given vectors.
pub fn batch_with(seed: u64, rows: usize, vectors: Vec<f32>) -> Batch {
    let blobs = (0..rows)
        .map(|i| Bytes::from(format!("blob-{seed}-{i}").into_bytes()))
        .collect();
    let labels = (0..rows)
        .map(|i| Some(format!("class-{}", i % 3)))
        .collect();
    let scores = (0..rows)
        .map(|i| (i % 2 == 0).then_some(i as f64))
        .collect();
    Batch::new(rows)
        .embeddings("embedding", DIM, vectors)
        .blobs("image", blobs)
        .scalars("label", ScalarColumn::Categorical(labels))
        .scalars("score", ScalarColumn::F64(scores))
}

/// A memory backend that counts calls.
pub fn counting() -> Arc<CountingConnector<MemoryConnector>> {
    Arc::new(CountingConnector::new(MemoryConnector::new()))
}

/// Creates dataset `name` with [`schema`] on `connector`.
pub async fn create_on(connector: Arc<dyn Connector>, name: &str) -> Dataset {
    Dataset::create_on(
        connector,
        "memory://",
        name,
        schema(),
        CreateOptions::default(),
    )
    .await
    .unwrap()
}

/// A fresh session (new cache) on branch `main` of `name`.
pub async fn reopen(connector: Arc<dyn Connector>, name: &str) -> Dataset {
    Dataset::open_on(connector, "memory://", name, OpenOptions::default())
        .await
        .unwrap()
}

/// PUTs in a snapshot of counts.
pub fn puts(c: &CallCounts) -> u64 {
    c.calls(OpKind::Put)
}

/// LISTs in a snapshot of counts.
pub fn lists(c: &CallCounts) -> u64 {
    c.calls(OpKind::List)
}

/// The cosine distance of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    1.0 - dot / (na * nb)
}

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dreamdb_connector::{
    ByteRange, ConnectorError, GetResult, KeyPrefix, ListStream, ObjectKey, ObjectMeta, PutMode,
    PutOutcome,
};

/// A connector that remembers what was written (key → bytes) and which
/// keys were read, wholly or by range.
#[derive(Debug)]
pub struct Recording {
    inner: Arc<dyn Connector>,
    pub written: Mutex<HashMap<String, Bytes>>,
    pub read: Mutex<Vec<String>>,
}

impl Recording {
    pub fn new(inner: Arc<dyn Connector>) -> Self {
        Recording {
            inner,
            written: Mutex::new(HashMap::new()),
            read: Mutex::new(Vec::new()),
        }
    }

    /// The `kind` of an object written under `key`, if it was.
    pub fn kind_of(&self, key: &str) -> Option<String> {
        let bytes = self.written.lock().unwrap().get(key)?.clone();
        let value = dreamdb_core::cbor::decode_value(&bytes).ok()?;
        value.as_map()?.iter().find_map(|(k, v)| {
            (k.as_text() == Some("kind")).then(|| v.as_text().map(str::to_owned))?
        })
    }

    pub fn take_reads(&self) -> Vec<String> {
        std::mem::take(&mut *self.read.lock().unwrap())
    }
}

#[async_trait::async_trait]
impl Connector for Recording {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn get(&self, key: &ObjectKey) -> Result<GetResult, ConnectorError> {
        self.read.lock().unwrap().push(key.as_str().to_owned());
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &ObjectKey, range: ByteRange) -> Result<Bytes, ConnectorError> {
        self.read.lock().unwrap().push(key.as_str().to_owned());
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
        self.written
            .lock()
            .unwrap()
            .insert(key.as_str().to_owned(), bytes.clone());
        self.inner.put(key, bytes, mode).await
    }
    fn list<'a>(&'a self, prefix: &'a KeyPrefix) -> ListStream<'a> {
        self.inner.list(prefix)
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), ConnectorError> {
        self.inner.delete(key).await
    }
}

/// A connector that, while armed, holds the first `n` ref updates until
/// all `n` have arrived, so `n` writers that read the same tip really race
/// for one compare-and-swap.
#[derive(Debug)]
pub struct Gate {
    inner: Arc<dyn Connector>,
    pub armed: AtomicBool,
    n: usize,
    arrived: AtomicUsize,
}

impl Gate {
    pub fn new(inner: Arc<dyn Connector>, n: usize) -> Self {
        Gate {
            inner,
            armed: AtomicBool::new(false),
            n,
            arrived: AtomicUsize::new(0),
        }
    }
}

#[async_trait::async_trait]
impl Connector for Gate {
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
        if self.armed.load(Ordering::SeqCst)
            && key.as_str().contains("/refs/")
            && matches!(mode, PutMode::Update(_))
        {
            let me = self.arrived.fetch_add(1, Ordering::SeqCst);
            if me < self.n {
                let deadline = Instant::now() + Duration::from_secs(10);
                while self.arrived.load(Ordering::SeqCst) < self.n && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        self.inner.put(key, bytes, mode).await
    }
    fn list<'a>(&'a self, prefix: &'a KeyPrefix) -> ListStream<'a> {
        self.inner.list(prefix)
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), ConnectorError> {
        self.inner.delete(key).await
    }
}
