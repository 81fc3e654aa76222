//! The Rust quickstart: a dataset on a local directory, one append, a
//! query, a snapshot, a branch with more data, a merge, a delete, and a
//! read of the snapshot. Run it with
//!
//! ```text
//! cargo run -p dreamdb-dataset --example quickstart -- /tmp/dreamdb-quickstart
//! ```
//!
//! (The bigger end-to-end demo is `./scripts/demo`.)

use dreamdb_core::random::DeterministicStream;
use dreamdb_dataset::batch::{Batch, ScalarColumn};
use dreamdb_dataset::dataset::{CreateOptions, MergeStrategy, Version};
use dreamdb_dataset::read::QueryRequest;
use dreamdb_dataset::schema::{EmbeddingField, Metric, ScalarType, SchemaBuilder};
use dreamdb_dataset::{Dataset, DatasetError};

const DIM: usize = 32;

/// `n` seeded random vectors (flat, `n × DIM`) and labels.
fn rows(n: usize, seed: u64) -> (Vec<f32>, Vec<Option<String>>) {
    let mut rng = DeterministicStream::from_seed(seed, "dreamdb.example.quickstart");
    let vectors = (0..n * DIM).map(|_| rng.next_f32_normal()).collect();
    let labels = (0..n).map(|i| Some(format!("class-{}", i % 4))).collect();
    (vectors, labels)
}

#[tokio::main]
async fn main() -> Result<(), DatasetError> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "./dreamdb-quickstart".to_owned());
    if std::path::Path::new(&dir).exists() {
        return Err(DatasetError::invalid(
            "_path",
            format!("{dir} exists; pass a new directory"),
        ));
    }

    // A schema: a 32-d embedding (IVF with 16 cells, RaBitQ 1-bit codes,
    // raw vectors kept for exact rerank) and a categorical label.
    let schema = SchemaBuilder::new()
        .embedding(
            "emb",
            EmbeddingField::new(DIM as u32)
                .metric(Metric::Cosine)
                .ivf(16)
                .rabitq(1)
                .rerank(true),
        )
        .scalar("label", ScalarType::Categorical)
        .build()?;
    let ds = Dataset::create(&dir, "quickstart", schema, CreateOptions::default()).await?;

    // One append of 2,000 records: anchors are assigned, signals returned.
    let (vectors, labels) = rows(2_000, 1);
    let first = vectors[..DIM].to_vec();
    let appended = ds
        .append_many(
            Batch::new(2_000)
                .embeddings("emb", DIM as u32, vectors)
                .scalars("label", ScalarColumn::Categorical(labels)),
        )
        .await?;
    println!("appended {} records", appended.anchors.len());

    // The first vector finds itself.
    let request = QueryRequest::new("emb", first, 3)
        .nprobe(4)
        .refine_factor(10);
    let hits = ds.query(&request).await?.hits;
    println!(
        "top-3 anchors: {:?} (the first record is its own nearest neighbour: {})",
        hits.iter().map(|h| h.anchor).collect::<Vec<_>>(),
        hits.first().map(|h| h.anchor) == appended.anchors.first().copied()
    );

    // Snapshot, branch, append on the branch, merge back.
    let v1 = ds.snapshot("v1").await?;
    let experiment = ds.branch("experiment").await?;
    let (vectors, labels) = rows(500, 2);
    experiment
        .append_many(
            Batch::new(500)
                .embeddings("emb", DIM as u32, vectors)
                .scalars("label", ScalarColumn::Categorical(labels)),
        )
        .await?;
    ds.merge("experiment", MergeStrategy::Union).await?;
    println!("after merge: {} records", ds.records().await?);

    // Delete one record; reads stop returning it at once.
    ds.delete(&appended.anchors[..1], "example deletion")
        .await?;
    println!("after delete: {} records", ds.records().await?);

    // Time travel: the snapshot still has the original 2,000.
    let old = Dataset::open_at(&dir, "quickstart", Version::Tag("v1".into())).await?;
    println!("snapshot {}: {} records", v1.label, old.records().await?);
    Ok(())
}
