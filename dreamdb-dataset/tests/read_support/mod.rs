//! Shared fixtures of the read-side tests: seeded clustered vectors,
//! datasets on a counting in-memory backend written with the real writer.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bytes::Bytes;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::wrappers::{CallCounts, CountingConnector, OpKind};
use dreamdb_connector::Connector;
use dreamdb_core::random::DeterministicStream;
use dreamdb_dataset::batch::{Batch, ScalarColumn};
use dreamdb_dataset::dataset::{CreateOptions, OpenOptions};
use dreamdb_dataset::schema::{EmbeddingField, ScalarType, SchemaBuilder};
use dreamdb_dataset::write::AppendOptions;
use dreamdb_dataset::Dataset;
use dreamdb_protocol::objects::Schema;

pub const URL: &str = "memory://";

/// `n` seeded vectors of `dim` around `centers` overlapping clusters.
pub fn clustered(n: usize, dim: usize, centers: usize, seed: u64) -> Vec<f32> {
    let mut s = DeterministicStream::from_seed(seed, "dreamdb.test.read.clusters");
    let mut c = vec![0f32; centers * dim];
    for x in &mut c {
        *x = s.next_f32_normal();
    }
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let k = (s.next_u64() % centers as u64) as usize;
        for d in 0..dim {
            out.push(c[k * dim + d] + 0.6 * s.next_f32_normal());
        }
    }
    out
}

/// A counting in-memory backend.
pub struct Backend {
    pub counting: Arc<CountingConnector<MemoryConnector>>,
}

impl Backend {
    pub fn new() -> Backend {
        Backend {
            counting: Arc::new(CountingConnector::new(MemoryConnector::new())),
        }
    }

    pub fn connector(&self) -> Arc<dyn Connector> {
        self.counting.clone()
    }

    pub async fn create(&self, name: &str, schema: Schema) -> Dataset {
        Dataset::create_on(
            self.connector(),
            URL,
            name,
            schema,
            CreateOptions::default(),
        )
        .await
        .unwrap()
    }

    /// A fresh handle (cold session cache) on branch `main`.
    pub async fn open(&self, name: &str) -> Dataset {
        Dataset::open_on(self.connector(), URL, name, OpenOptions::default())
            .await
            .unwrap()
    }

    pub fn reset(&self) {
        self.counting.reset();
    }

    pub fn counts(&self) -> CallCounts {
        self.counting.snapshot()
    }
}

pub fn show(label: &str, c: &CallCounts) {
    eprintln!(
        "{label}: get={} get_range={} head={} list={} put={} bytes_read={}",
        c.calls(OpKind::Get),
        c.calls(OpKind::GetRange),
        c.calls(OpKind::Head),
        c.calls(OpKind::List),
        c.calls(OpKind::Put),
        c.total_bytes_read()
    );
}

pub const LABELS: [&str; 4] = ["cat", "dog", "bird", "fish"];

/// The schema of the mixed fixture: an embedding, a blob, and scalars.
pub fn mixed_schema(dim: u32, embedding: EmbeddingField) -> Schema {
    assert_eq!(embedding.dim(), dim);
    SchemaBuilder::new()
        .embedding("emb", embedding)
        .blob("image", "image/jpeg", 1 << 20)
        .scalar("label", ScalarType::Categorical)
        .scalar("score", ScalarType::F64.nullable())
        .scalar("n", ScalarType::I64)
        .build()
        .unwrap()
}

/// Row `i`'s blob (sized to dominate any other field's bytes).
pub fn blob_of(i: usize, len: usize) -> Bytes {
    let mut b = vec![(i % 251) as u8; len.max(8)];
    b[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Bytes::from(b)
}

/// Appends rows `start .. start + n` of `vectors` with the mixed fields.
pub async fn append_mixed(
    ds: &Dataset,
    vectors: &[f32],
    dim: usize,
    start: usize,
    n: usize,
    blob_len: usize,
) -> Vec<u64> {
    let rows = start..start + n;
    let batch = Batch::new(n)
        .embeddings(
            "emb",
            dim as u32,
            vectors[start * dim..(start + n) * dim].to_vec(),
        )
        .blobs(
            "image",
            rows.clone().map(|i| blob_of(i, blob_len)).collect(),
        )
        .scalars(
            "label",
            ScalarColumn::Categorical(
                rows.clone()
                    .map(|i| Some(LABELS[i % 4].to_owned()))
                    .collect(),
            ),
        )
        .scalars(
            "score",
            ScalarColumn::F64(
                rows.clone()
                    .map(|i| (i % 7 != 0).then_some(i as f64 / 10.0))
                    .collect(),
            ),
        )
        .scalars(
            "n",
            ScalarColumn::I64(rows.map(|i| Some(i as i64)).collect()),
        );
    let options = AppendOptions {
        seed: 7,
        ..AppendOptions::default()
    };
    ds.append_many_with(batch, options).await.unwrap().anchors
}

/// Appends only embeddings.
pub async fn append_vectors(ds: &Dataset, field: &str, dim: usize, vectors: &[f32]) -> Vec<u64> {
    let n = vectors.len() / dim;
    let batch = Batch::new(n).embeddings(field, dim as u32, vectors.to_vec());
    let options = AppendOptions {
        seed: 7,
        ..AppendOptions::default()
    };
    ds.append_many_with(batch, options).await.unwrap().anchors
}
