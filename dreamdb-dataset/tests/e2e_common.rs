//! The P0 workflow (seeds/003), one body run against every backend:
//! create → append → get / query → snapshot → branch → append on the
//! branch → compare_refs → merge → delete → open_at(snapshot) shows the old
//! state. Included by `e2e_memory.rs`, `e2e_local.rs` and `e2e_s3.rs`; as
//! a test binary of its own it holds no tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "write_common.rs"]
mod common;

use std::sync::Arc;

use common::*;
use dreamdb_connector::Connector;
use dreamdb_dataset::dataset::{CreateOptions, MergeKind, MergeStrategy, OpenOptions, Version};
use dreamdb_dataset::read::{IterOptions, QueryRequest, Value};
use dreamdb_dataset::Dataset;

/// What the workflow leaves behind, for checks from outside (another
/// process).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    pub deleted: u64,
    pub probe: Vec<f32>,
    pub records: u64,
    pub snapshot_records: u64,
}

/// How to reach the backend.
pub enum Backend {
    /// A connector shared by every handle (memory).
    Connector(Arc<dyn Connector>),
    /// A URL every handle connects to by itself (local, S3).
    Url(String),
}

impl Backend {
    async fn create(&self, name: &str) -> Dataset {
        match self {
            Backend::Connector(c) => Dataset::create_on(
                c.clone(),
                "memory://",
                name,
                schema(),
                CreateOptions::default(),
            )
            .await
            .unwrap(),
            Backend::Url(url) => Dataset::create(url, name, schema(), CreateOptions::default())
                .await
                .unwrap(),
        }
    }

    pub async fn open(&self, name: &str) -> Dataset {
        match self {
            Backend::Connector(c) => {
                Dataset::open_on(c.clone(), "memory://", name, OpenOptions::default())
                    .await
                    .unwrap()
            }
            Backend::Url(url) => Dataset::open(url, name, OpenOptions::default())
                .await
                .unwrap(),
        }
    }

    async fn open_at(&self, name: &str, version: Version) -> Dataset {
        match self {
            Backend::Connector(c) => Dataset::open_at_on(
                c.clone(),
                "memory://",
                name,
                version,
                OpenOptions::default(),
            )
            .await
            .unwrap(),
            Backend::Url(url) => Dataset::open_at(url, name, version).await.unwrap(),
        }
    }
}

/// The query vector of row `row` of `batch(seed, rows)`.
pub fn row_vector(seed: u64, rows: usize, row: usize) -> Vec<f32> {
    let all = clustered(seed, rows, DIM as usize, K as usize);
    all[row * DIM as usize..(row + 1) * DIM as usize].to_vec()
}

/// Top-10 anchors of `vector` in `ds`.
pub async fn top(ds: &Dataset, vector: &[f32]) -> Vec<(u64, f32)> {
    let mut q = QueryRequest::new("embedding", vector.to_vec(), 10);
    q.nprobe = 3;
    let r = ds.query(&q).await.unwrap();
    r.hits.iter().map(|h| (h.anchor, h.distance)).collect()
}

pub async fn workflow(backend: &Backend, name: &str) -> Outcome {
    // create → append
    let main = backend.create(name).await;
    let first = main.append_many(batch(1, 400)).await.unwrap();
    assert_eq!(first.anchors.len(), 400);
    assert_eq!(main.records().await.unwrap(), 400);

    // get: every field of a record comes back as written
    let r7 = main.get(first.anchors[7], None).await.unwrap().unwrap();
    assert_eq!(r7.fields["label"], Value::Str("class-1".into()));
    assert_eq!(r7.fields["score"], Value::Null);
    assert_eq!(
        r7.fields["image"],
        Value::Blob(bytes::Bytes::from_static(b"blob-1-7"))
    );
    match &r7.fields["embedding"] {
        Value::Embedding(v) => assert_eq!(v, &row_vector(1, 400, 7)),
        other => panic!("embedding {other:?}"),
    }

    // query: a stored vector finds itself first
    let probe = row_vector(1, 400, 3);
    let hits = top(&main, &probe).await;
    assert_eq!(hits[0].0, first.anchors[3], "{hits:?}");
    assert!(hits[0].1 < 1e-4, "{hits:?}");
    // its neighbours are its cluster (rows ≡ 3 mod 8)
    let cluster: Vec<u64> = (0..400)
        .filter(|i| i % 8 == 3)
        .map(|i| first.anchors[i])
        .collect();
    assert!(hits.iter().all(|(a, _)| cluster.contains(a)), "{hits:?}");

    // snapshot → branch → append on the branch
    let v1 = main.snapshot("v1").await.unwrap();
    let exp = main.branch("exp").await.unwrap();
    let more = exp.append_many(batch(2, 100)).await.unwrap();
    assert_eq!(exp.records().await.unwrap(), 500);
    assert_eq!(main.records().await.unwrap(), 400);

    // compare_refs: one field across the two branches
    let cmp = main.compare_refs(&[("exp", &exp)], "label").await.unwrap();
    assert_eq!(cmp.summaries.len(), 2);
    assert_eq!(cmp.summaries[0].values, 400);
    assert_eq!(cmp.summaries[1].values, 500);
    assert_eq!(cmp.summaries[1].paired, 400);
    assert_eq!(cmp.summaries[1].changed_vs_first, 0);
    assert_eq!(cmp.table.num_rows(), 500);

    // merge the branch back
    let merged = main.merge("exp", MergeStrategy::Union).await.unwrap();
    assert_eq!(merged.kind, MergeKind::FastForward);
    assert_eq!(main.records().await.unwrap(), 500);
    let all = main.iter(IterOptions::default()).await.unwrap();
    assert_eq!(all.len(), 500);
    assert!(all.iter().any(|r| r.anchor == more.anchors[99]));

    // delete: the record is gone from queries, gets and iteration
    let deleted = first.anchors[3];
    assert_eq!(main.delete(&[deleted], "gdpr").await.unwrap(), 1);
    assert_eq!(main.records().await.unwrap(), 499);
    let after = top(&main, &probe).await;
    assert!(after.iter().all(|(a, _)| *a != deleted), "{after:?}");
    assert!(main.get(deleted, None).await.unwrap().is_none());
    assert_eq!(main.iter(IterOptions::default()).await.unwrap().len(), 499);

    // time travel: the snapshot still has the record and the old count
    let old = backend.open_at(name, Version::Tag(v1.label.clone())).await;
    assert_eq!(old.records().await.unwrap(), 400);
    assert_eq!(top(&old, &probe).await[0].0, deleted);
    assert!(old.get(deleted, None).await.unwrap().is_some());
    let err = old.append_many(batch(3, 10)).await.unwrap_err();
    assert_eq!(err.kind(), "read-only");

    Outcome {
        name: name.to_owned(),
        deleted,
        probe,
        records: 499,
        snapshot_records: 400,
    }
}

/// What a fresh handle (another session or process) must see afterwards.
pub async fn check_reopened(backend: &Backend, outcome: &Outcome) {
    let ds = backend.open(&outcome.name).await;
    assert_eq!(ds.records().await.unwrap(), outcome.records);
    let hits = top(&ds, &outcome.probe).await;
    assert!(hits.iter().all(|(a, _)| *a != outcome.deleted), "{hits:?}");
    let tomb = ds.tombstones().await.unwrap();
    assert_eq!(tomb.len(), 1);
    assert_eq!(tomb[0].anchor.as_nanos(), outcome.deleted);
    let old = backend
        .open_at(&outcome.name, Version::Tag("v1".into()))
        .await;
    assert_eq!(old.records().await.unwrap(), outcome.snapshot_records);
}
