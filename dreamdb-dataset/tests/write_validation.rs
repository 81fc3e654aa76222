//! Bad input is refused with a typed error naming the field (and row), the
//! ref does not move, and not one object is written (PUTs counted with
//! `CountingConnector`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "write_common.rs"]
mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use dreamdb_connector::Connector;
use dreamdb_dataset::batch::{Batch, ScalarColumn};
use dreamdb_dataset::schema::{EmbeddingField, SchemaBuilder};
use dreamdb_dataset::{Dataset, DatasetError};

/// Runs `append` on a dataset holding one earlier batch and checks it is
/// refused as invalid input about `field` (with `needle` in the reason),
/// writing nothing and leaving the ref where it was.
async fn refused(batch: Batch, field: &str, needle: &str) {
    let counting = counting();
    let connector: Arc<dyn Connector> = counting.clone();
    let ds = create_on(connector, "v").await;
    let first = ds.append_many(common::batch(1, 50)).await.unwrap();
    let before = ds.manifest_hash().await.unwrap();
    assert_eq!(before, first.manifest);
    let puts_before = puts(&counting.snapshot());
    let err = ds.append_many(batch).await.unwrap_err();
    match &err {
        DatasetError::InvalidInput { field: f, reason } => {
            assert_eq!(f, field, "wrong field in {err}");
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!("expected invalid input, got {other:?}"),
    }
    assert_eq!(err.kind(), "invalid-input");
    assert_eq!(
        puts(&counting.snapshot()),
        puts_before,
        "a refused batch wrote objects"
    );
    assert_eq!(ds.manifest_hash().await.unwrap(), before, "the ref moved");
    assert_eq!(ds.records().await.unwrap(), 50);
}

#[tokio::test]
async fn wrong_dimension_is_refused() {
    let b = Batch::new(2)
        .embeddings("embedding", DIM + 1, vec![0.5; 2 * (DIM as usize + 1)])
        .blobs("image", vec![Bytes::from_static(b"a"); 2])
        .scalars(
            "label",
            ScalarColumn::Categorical(vec![Some("a".into()), Some("b".into())]),
        );
    refused(b, "embedding", "wrong dimension").await;
}

#[tokio::test]
async fn nan_is_refused_naming_the_row() {
    let mut v = clustered(3, 4, DIM as usize, 2);
    v[2 * DIM as usize + 5] = f32::NAN;
    refused(batch_with(3, 4, v), "embedding", "row 2, component 5").await;
}

#[tokio::test]
async fn infinity_is_refused_naming_the_row() {
    let mut v = clustered(3, 4, DIM as usize, 2);
    v[3 * DIM as usize] = f32::NEG_INFINITY;
    refused(batch_with(3, 4, v), "embedding", "row 3").await;
}

#[tokio::test]
async fn zero_vector_under_cosine_is_refused() {
    let mut v = clustered(3, 4, DIM as usize, 2);
    for x in &mut v[..DIM as usize] {
        *x = 0.0;
    }
    refused(batch_with(3, 4, v), "embedding", "row 0").await;
}

#[tokio::test]
async fn unknown_field_is_refused() {
    let b = batch(4, 3).scalars("colour", ScalarColumn::I64(vec![Some(1); 3]));
    refused(b, "colour", "unknown field").await;
}

#[tokio::test]
async fn missing_required_field_is_refused() {
    let b = Batch::new(2)
        .embeddings("embedding", DIM, clustered(5, 2, DIM as usize, 2))
        .blobs("image", vec![Bytes::from_static(b"a"); 2]);
    refused(b, "label", "required field missing").await;
}

#[tokio::test]
async fn null_in_a_required_scalar_is_refused() {
    let b = Batch::new(2)
        .embeddings("embedding", DIM, clustered(5, 2, DIM as usize, 2))
        .blobs("image", vec![Bytes::from_static(b"a"); 2])
        .scalars(
            "label",
            ScalarColumn::Categorical(vec![Some("a".into()), None]),
        );
    refused(b, "label", "row 1").await;
}

#[tokio::test]
async fn ragged_column_is_refused() {
    let b = Batch::new(3)
        .embeddings("embedding", DIM, clustered(5, 3, DIM as usize, 2))
        .blobs("image", vec![Bytes::from_static(b"a"); 2])
        .scalars(
            "label",
            ScalarColumn::Categorical(vec![Some("a".into()); 3]),
        );
    refused(b, "image", "ragged").await;
}

#[tokio::test]
async fn wrong_scalar_type_is_refused() {
    let b = Batch::new(2)
        .embeddings("embedding", DIM, clustered(5, 2, DIM as usize, 2))
        .blobs("image", vec![Bytes::from_static(b"a"); 2])
        .scalars("label", ScalarColumn::I64(vec![Some(1), Some(2)]));
    refused(b, "label", "column for a").await;
}

#[tokio::test]
async fn blob_over_the_limit_is_refused() {
    let big = Bytes::from(vec![7u8; MAX_BLOB as usize + 1]);
    let b = Batch::new(2)
        .embeddings("embedding", DIM, clustered(6, 2, DIM as usize, 2))
        .blobs("image", vec![Bytes::from_static(b"ok"), big])
        .scalars(
            "label",
            ScalarColumn::Categorical(vec![Some("a".into()); 2]),
        );
    refused(b, "image", "row 1: blob of 65 bytes exceeds").await;
}

#[tokio::test]
async fn duplicate_anchor_in_one_batch_is_refused() {
    let err = batch(7, 3).anchors(vec![10, 20, 10]).unwrap_err();
    assert_eq!(err.kind(), "invalid-input");
    assert!(err.to_string().contains("anchor 10 appears twice"), "{err}");
    assert!(err.to_string().contains("rows 0 and 2"), "{err}");
}

#[tokio::test]
async fn existing_anchor_is_refused() {
    let counting = counting();
    let connector: Arc<dyn Connector> = counting.clone();
    let ds = create_on(connector, "v").await;
    let given: Vec<u64> = (1..=10).map(|i| i * 100).collect();
    let first = ds
        .append_many(batch(1, 10).anchors(given.clone()).unwrap())
        .await
        .unwrap();
    assert_eq!(first.anchors, given);
    let before = ds.manifest_hash().await.unwrap();
    let puts_before = puts(&counting.snapshot());
    let err = ds
        .append_many(batch(2, 3).anchors(vec![150, 300, 450]).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid-input");
    assert!(
        err.to_string().contains("anchor 300 already has a record"),
        "{err}"
    );
    assert_eq!(puts(&counting.snapshot()), puts_before);
    assert_eq!(ds.manifest_hash().await.unwrap(), before);
    // Anchors between existing ones are fine.
    let ok = ds
        .append_many(batch(3, 3).anchors(vec![150, 250, 450]).unwrap())
        .await
        .unwrap();
    assert_eq!(ok.anchors, vec![150, 250, 450]);
    assert_eq!(ds.records().await.unwrap(), 13);
    // Assigned anchors follow the last one.
    let next = ds.append_many(batch(4, 2)).await.unwrap();
    assert!(next.anchors[0] > 1000 && next.anchors[1] == next.anchors[0] + 1);
}

#[tokio::test]
async fn ivf_first_batch_smaller_than_k_is_a_typed_error() {
    let counting = counting();
    let connector: Arc<dyn Connector> = counting.clone();
    let ds = create_on(connector, "v").await;
    let before = ds.manifest_hash().await.unwrap();
    let puts_before = puts(&counting.snapshot());
    let err = ds.append_many(batch(1, K as usize - 1)).await.unwrap_err();
    assert_eq!(err.kind(), "invalid-input");
    assert!(
        err.to_string().contains("at least k = 8 vectors, got 7"),
        "{err}"
    );
    assert_eq!(puts(&counting.snapshot()), puts_before);
    assert_eq!(ds.manifest_hash().await.unwrap(), before);
    // A caller sample makes a small first batch possible.
    let mut options = dreamdb_dataset::write::AppendOptions::default();
    options.training.insert(
        "embedding".into(),
        clustered(9, 64, DIM as usize, K as usize),
    );
    ds.append_many_with(batch(1, 3), options).await.unwrap();
    assert_eq!(ds.records().await.unwrap(), 3);
}

#[tokio::test]
async fn pinned_handles_refuse_writes() {
    let counting = counting();
    let connector: Arc<dyn Connector> = counting.clone();
    let ds = create_on(connector.clone(), "p").await;
    ds.append_many(batch(1, 20)).await.unwrap();
    let v = ds.snapshot("v0").await.unwrap();
    let pinned = Dataset::open_at_on(
        connector,
        "memory://",
        "p",
        v.clone().into(),
        Default::default(),
    )
    .await
    .unwrap();
    assert!(pinned.is_pinned());
    assert_eq!(pinned.ref_name(), None);
    let puts_before = puts(&counting.snapshot());
    for err in [
        pinned.append_many(batch(2, 20)).await.unwrap_err(),
        pinned.delete(&[1], "x").await.unwrap_err(),
        pinned.merge("main", Default::default()).await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), "read-only", "{err}");
    }
    assert_eq!(puts(&counting.snapshot()), puts_before);
    // Another private backend does not hold the dataset.
    let err = Dataset::open_at_on(
        common::counting(),
        "memory://",
        "p",
        v.into(),
        Default::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), "not-found");
}

#[test]
fn schema_builder_errors_name_the_field() {
    let cases = [
        (
            SchemaBuilder::new().embedding("Bad", EmbeddingField::new(4)),
            "\"Bad\"",
        ),
        (
            SchemaBuilder::new().embedding("e", EmbeddingField::new(0)),
            "dim must be at least 1",
        ),
        (
            SchemaBuilder::new().embedding("e", EmbeddingField::new(4).ivf(0)),
            "ivf k must be at least 1",
        ),
        (
            SchemaBuilder::new().embedding("e", EmbeddingField::new(4).rabitq(9)),
            "rabitq bits must be in 1..=8",
        ),
        (
            SchemaBuilder::new().embedding("e", EmbeddingField::new(4).rabitq(0)),
            "rabitq bits must be in 1..=8",
        ),
        (
            SchemaBuilder::new()
                .blob("x", "image/png", 10)
                .scalar("x", dreamdb_dataset::schema::ScalarType::I64),
            "field \"x\" is defined twice",
        ),
        (
            SchemaBuilder::new().blob("img", "Image/PNG", 10),
            "field \"img\"",
        ),
        (
            SchemaBuilder::new().embedding(
                "e",
                EmbeddingField::new(4)
                    .metric(dreamdb_dataset::schema::Metric::L2)
                    .lsh(2, 4),
            ),
            "lsh supports the cosine metric only",
        ),
    ];
    for (builder, needle) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), "invalid-schema");
        assert!(err.to_string().contains(needle), "{err} lacks {needle}");
    }
    assert!(SchemaBuilder::new()
        .embedding("e", EmbeddingField::new(4).ivf(2).rabitq(8).rerank(true))
        .embedding("f", EmbeddingField::new(4).lsh(2, 4))
        .embedding("g", EmbeddingField::new(4).imi(2, 2))
        .embedding("h", EmbeddingField::new(4).flat())
        .fragment("clip", "video/mp4")
        .build()
        .is_ok());
}
