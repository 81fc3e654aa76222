//! Deletes (tombstones), schema evolution and layers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "write_common.rs"]
mod common;

use std::sync::Arc;

use common::*;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::Connector;
use dreamdb_dataset::batch::ScalarColumn;
use dreamdb_dataset::dataset::{MergeKind, MergeStrategy, OpenOptions, Version};
use dreamdb_dataset::read::Value;
use dreamdb_dataset::schema::{EmbeddingField, ScalarType, SchemaBuilder};
use dreamdb_dataset::write::AppendOptions;
use dreamdb_dataset::Dataset;
use dreamdb_protocol::objects::FieldSpec;

#[tokio::test]
async fn delete_writes_a_tombstone_list_and_refuses_unknown_anchors() {
    let counting = counting();
    let connector: Arc<dyn Connector> = counting.clone();
    let ds = create_on(connector.clone(), "d").await;
    let r = ds.append_many(batch(1, 20)).await.unwrap();
    let v = ds.snapshot("before").await.unwrap();
    let n = ds.delete(&r.anchors[..3], "gdpr").await.unwrap();
    assert_eq!(n, 3);
    assert_eq!(ds.records().await.unwrap(), 17);
    let t = ds.tombstones().await.unwrap();
    assert_eq!(t.len(), 3);
    assert!(t.iter().all(|t| t.reason == "gdpr"));
    assert_eq!(t[0].anchor.as_nanos(), r.anchors[0]);
    // Deleting a deleted record again changes nothing but is accepted.
    assert_eq!(ds.delete(&r.anchors[..1], "again").await.unwrap(), 0);
    assert_eq!(ds.records().await.unwrap(), 17);
    assert_eq!(ds.tombstones().await.unwrap()[0].reason, "gdpr");
    // An anchor without a record: refused, nothing written, ref unmoved.
    let head = ds.manifest_hash().await.unwrap();
    let puts_before = puts(&counting.snapshot());
    let missing = r.anchors[19] + 1_000_000;
    let err = ds.delete(&[r.anchors[5], missing], "x").await.unwrap_err();
    assert_eq!(err.kind(), "invalid-input");
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
    assert_eq!(puts(&counting.snapshot()), puts_before);
    assert_eq!(ds.manifest_hash().await.unwrap(), head);
    assert_eq!(
        ds.delete(&[], "x").await.unwrap_err().kind(),
        "invalid-input"
    );
    // The old version still has every record and no tombstone.
    let old = Dataset::open_at_on(
        connector,
        "memory://",
        "d",
        v.into(),
        OpenOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(old.records().await.unwrap(), 20);
    assert!(old.tombstones().await.unwrap().is_empty());
}

#[tokio::test]
async fn tombstones_union_on_merge() {
    let connector: Arc<dyn Connector> = Arc::new(MemoryConnector::new());
    let main = create_on(connector, "t").await;
    let r = main.append_many(batch(1, 20)).await.unwrap();
    let b = main.branch("b").await.unwrap();
    main.delete(&r.anchors[..2], "main").await.unwrap();
    b.delete(&r.anchors[5..6], "branch").await.unwrap();
    let m = main.merge("b", MergeStrategy::Union).await.unwrap();
    assert_eq!(m.kind, MergeKind::Merged);
    let t = main.tombstones().await.unwrap();
    let anchors: Vec<u64> = t.iter().map(|t| t.anchor.as_nanos()).collect();
    assert_eq!(anchors, vec![r.anchors[0], r.anchors[1], r.anchors[5]]);
    assert_eq!(main.records().await.unwrap(), 17);
}

#[tokio::test]
async fn update_schema_accepts_forward_compatible_changes_only() {
    let connector: Arc<dyn Connector> = Arc::new(MemoryConnector::new());
    let ds = create_on(connector, "u").await;
    ds.append_many(batch(1, 20)).await.unwrap();
    let current = ds.schema().await.unwrap();
    // Adding a nullable scalar: accepted; old records read it as absent,
    // new appends may leave it out or give it.
    let new = SchemaBuilder::from_schema(&current)
        .scalar("quality", ScalarType::I64.nullable())
        .build()
        .unwrap();
    ds.update_schema(new.clone()).await.unwrap();
    assert!(ds.schema().await.unwrap().fields.contains_key("quality"));
    ds.append_many(batch(2, 10)).await.unwrap();
    ds.append_many(batch(3, 10).scalars("quality", ScalarColumn::I64(vec![Some(3); 10])))
        .await
        .unwrap();
    assert_eq!(ds.records().await.unwrap(), 40);
    // Refused, with the reason.
    let mut removed = new.clone();
    removed.fields.remove("image");
    let e = ds.update_schema(removed).await.unwrap_err();
    assert_eq!(e.kind(), "invalid-schema");
    assert!(e.to_string().contains("\"image\" would be removed"), "{e}");
    let mut changed = new.clone();
    if let Some(f) = changed.fields.get_mut("image") {
        f.spec = FieldSpec::Blob {
            mime: "image/png".into(),
            max_bytes: 10,
        };
    }
    let e = ds.update_schema(changed).await.unwrap_err();
    assert!(e.to_string().contains("\"image\" would change"), "{e}");
    let required = SchemaBuilder::from_schema(&new)
        .scalar("must", ScalarType::Bool)
        .build()
        .unwrap();
    let e = ds.update_schema(required).await.unwrap_err();
    assert!(e.to_string().contains("required scalar"), "{e}");
    let emb = SchemaBuilder::from_schema(&new)
        .embedding("e2", EmbeddingField::new(4))
        .build()
        .unwrap();
    let e = ds.update_schema(emb).await.unwrap_err();
    assert!(e.to_string().contains("add_embedding_layer"), "{e}");
    let e = ds.update_schema(new).await.unwrap_err();
    assert!(e.to_string().contains("adds nothing"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_add_fields_to_existing_records_on_a_branch() {
    let connector: Arc<dyn Connector> = Arc::new(MemoryConnector::new());
    let main = create_on(connector.clone(), "l").await;
    let r = main.append_many(batch(1, 40)).await.unwrap();
    let before = main.snapshot("base").await.unwrap();
    let sweep = main.branch("sweep/run-1").await.unwrap();
    let picked: Vec<u64> = r.anchors.iter().copied().step_by(2).collect();
    let scores = ScalarColumn::F64(picked.iter().map(|a| Some((*a % 97) as f64)).collect());
    let layer = sweep
        .add_scalar_layer("loss", ScalarType::F64, &picked, scores)
        .await
        .unwrap();
    assert_eq!(layer.records, 20);
    let schema = sweep.schema().await.unwrap();
    assert_eq!(
        schema.fields["loss"].spec,
        FieldSpec::Scalar {
            dtype: dreamdb_protocol::objects::ScalarDtype::F64,
            nullable: true
        }
    );
    assert_eq!(sweep.records().await.unwrap(), 40, "no record added");
    // A record the layer skipped still exists: asking only for the layer
    // gives it with a null, not "no record".
    let skipped = r.anchors[1];
    let rec = sweep.get(skipped, Some(&["loss"])).await.unwrap().unwrap();
    assert_eq!(rec.fields["loss"], Value::Null);
    let with = sweep
        .get(picked[1], Some(&["loss"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(with.fields["loss"], Value::F64((picked[1] % 97) as f64));
    assert!(sweep
        .get(u64::MAX - 1, Some(&["loss"]))
        .await
        .unwrap()
        .is_none());
    // An embedding layer, trained on the given vectors.
    let vectors = clustered(5, 40, 8, 4);
    let e = sweep
        .add_embedding_layer(
            "embedding_v2",
            EmbeddingField::new(8).ivf(4).rabitq(2).rerank(true),
            &r.anchors,
            vectors,
            AppendOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(e.signals.fields["embedding_v2"].n, 40);
    assert_eq!(e.signals.fields["embedding_v2"].k, 4);
    // Layers need existing records.
    let err = sweep
        .add_scalar_layer(
            "other",
            ScalarType::I64,
            &[r.anchors[39] + 12345],
            ScalarColumn::I64(vec![Some(1)]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid-input");
    // A layer field that exists with another spec is refused.
    let err = sweep
        .add_scalar_layer(
            "loss",
            ScalarType::I64,
            &picked[..1],
            ScalarColumn::I64(vec![Some(1)]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid-schema");
    // main does not see the layers; the snapshot neither.
    assert!(!main.schema().await.unwrap().fields.contains_key("loss"));
    let base = Dataset::open_at_on(
        connector,
        "memory://",
        "l",
        Version::Tag("base".into()),
        OpenOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(base.manifest_hash().await.unwrap(), before.manifest);
    // Merging the branch brings the new fields to main.
    let m = main
        .merge("sweep/run-1", MergeStrategy::Union)
        .await
        .unwrap();
    assert_eq!(m.kind, MergeKind::FastForward);
    let s = main.schema().await.unwrap();
    assert!(s.fields.contains_key("loss") && s.fields.contains_key("embedding_v2"));
}
