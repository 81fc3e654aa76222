//! `iter_arrow_batches`: column types, values, deterministic shuffle,
//! disjoint and complete shards, tombstones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod read_support;

use std::collections::BTreeSet;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int32Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use dreamdb_dataset::batch::{Batch, ScalarColumn};
use dreamdb_dataset::read::ArrowOptions;
use dreamdb_dataset::schema::{EmbeddingField, ScalarType, SchemaBuilder};
use dreamdb_dataset::Dataset;
use futures::TryStreamExt;
use read_support::*;

const DIM: usize = 8;

async fn collect(ds: &Dataset, options: ArrowOptions) -> Vec<RecordBatch> {
    ds.iter_arrow_batches(options)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

fn anchors_of(batches: &[RecordBatch]) -> Vec<u64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<arrow_array::types::UInt64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

async fn fixture(
    backend: &Backend,
    name: &str,
    appends: usize,
    per: usize,
) -> (Dataset, Vec<u64>, Vec<f32>) {
    let ds = backend
        .create(
            name,
            mixed_schema(DIM as u32, EmbeddingField::new(DIM as u32).ivf(3)),
        )
        .await;
    let vectors = clustered(appends * per, DIM, 4, 9);
    let mut anchors = Vec::new();
    for a in 0..appends {
        anchors.extend(append_mixed(&ds, &vectors, DIM, a * per, per, 12).await);
    }
    (ds, anchors, vectors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_types_are_as_documented() {
    let backend = Backend::new();
    let schema = SchemaBuilder::new()
        .embedding("emb", EmbeddingField::new(4).ivf(2))
        .blob("image", "image/png", 1024)
        .scalar("i", ScalarType::I64)
        .scalar("f", ScalarType::F64.nullable())
        .scalar("b", ScalarType::Bool)
        .scalar("s", ScalarType::String.nullable())
        .scalar("c", ScalarType::Categorical)
        .scalar("t", ScalarType::Timestamp)
        .build()
        .unwrap();
    let ds = backend.create("types", schema).await;
    let n = 6;
    let batch = Batch::new(n)
        .embeddings("emb", 4, (0..n * 4).map(|x| x as f32 + 1.0).collect())
        .blobs("image", (0..n).map(|i| blob_of(i, 10)).collect())
        .scalars(
            "i",
            ScalarColumn::I64((0..n).map(|i| Some(i as i64 - 3)).collect()),
        )
        .scalars(
            "f",
            ScalarColumn::F64((0..n).map(|i| (i != 2).then_some(i as f64 * 0.5)).collect()),
        )
        .scalars(
            "b",
            ScalarColumn::Bool((0..n).map(|i| Some(i % 2 == 0)).collect()),
        )
        .scalars(
            "s",
            ScalarColumn::Str((0..n).map(|i| (i != 4).then(|| format!("s{i}"))).collect()),
        )
        .scalars(
            "c",
            ScalarColumn::Categorical((0..n).map(|i| Some(LABELS[i % 2].to_owned())).collect()),
        )
        .scalars(
            "t",
            ScalarColumn::Timestamp(
                (0..n)
                    .map(|i| Some(1_700_000_000_000_000_000 + i as i64))
                    .collect(),
            ),
        );
    let anchors = ds.append_many(batch).await.unwrap().anchors;
    let batches = collect(&ds, ArrowOptions::default()).await;
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    let schema = b.schema();
    let ty = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
    let nullable = |name: &str| schema.field_with_name(name).unwrap().is_nullable();
    assert_eq!(schema.field(0).name(), "_anchor");
    assert_eq!(ty("_anchor"), DataType::UInt64);
    assert!(!nullable("_anchor"));
    assert!(
        matches!(ty("emb"), DataType::FixedSizeList(item, 4) if item.data_type() == &DataType::Float32)
    );
    assert_eq!(ty("image"), DataType::Binary);
    assert_eq!(ty("i"), DataType::Int64);
    assert_eq!(ty("f"), DataType::Float64);
    assert_eq!(ty("b"), DataType::Boolean);
    assert_eq!(ty("s"), DataType::Utf8);
    assert_eq!(
        ty("c"),
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
    );
    assert_eq!(
        ty("t"),
        DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    );
    assert!(!nullable("i") && !nullable("b") && !nullable("c") && !nullable("t"));
    assert!(nullable("f") && nullable("s"));
    // Values.
    assert_eq!(anchors_of(&batches), anchors);
    let col = |name: &str| b.column(schema.index_of(name).unwrap()).clone();
    let emb = col("emb");
    let values = emb
        .as_fixed_size_list()
        .values()
        .as_primitive::<Float32Type>();
    assert_eq!(
        values.values().to_vec(),
        (0..n * 4).map(|x| x as f32 + 1.0).collect::<Vec<_>>()
    );
    assert_eq!(
        col("image").as_binary::<i32>().value(3),
        &blob_of(3, 10)[..]
    );
    assert_eq!(
        col("i")
            .as_primitive::<arrow_array::types::Int64Type>()
            .value(0),
        -3
    );
    let f = col("f");
    assert!(f.is_null(2) && f.is_valid(3));
    assert!(col("b").as_boolean().value(0));
    assert!(col("s").is_null(4));
    assert_eq!(col("s").as_string::<i32>().value(1), "s1");
    let c = col("c");
    let dict = c.as_dictionary::<Int32Type>();
    let labels = dict.values().as_string::<i32>();
    assert_eq!(labels.value(dict.keys().value(1) as usize), "dog");
    assert_eq!(
        col("t")
            .as_primitive::<arrow_array::types::TimestampNanosecondType>()
            .value(5),
        1_700_000_000_000_000_005
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_column_equals_what_was_appended() {
    let backend = Backend::new();
    let (ds, anchors, vectors) = fixture(&backend, "emb", 3, 70).await;
    let batches = collect(
        &ds,
        ArrowOptions {
            batch_size: 64,
            fields: Some(vec!["emb".into(), "n".into()]),
            ..ArrowOptions::default()
        },
    )
    .await;
    assert_eq!(
        batches
            .iter()
            .map(RecordBatch::num_rows)
            .collect::<Vec<_>>(),
        [64, 64, 64, 18]
    );
    assert_eq!(batches[0].num_columns(), 3);
    assert_eq!(anchors_of(&batches), anchors);
    let mut all = Vec::new();
    for b in &batches {
        let list = b.column(1).as_fixed_size_list();
        assert_eq!(list.value_length() as usize, DIM);
        all.extend_from_slice(list.values().as_primitive::<Float32Type>().values());
    }
    assert_eq!(all, vectors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffle_is_deterministic_by_seed() {
    let backend = Backend::new();
    let (ds, anchors, _) = fixture(&backend, "shuffle", 8, 25).await;
    let run = |seed: Option<u64>| {
        let ds = ds.clone();
        async move {
            anchors_of(
                &collect(
                    &ds,
                    ArrowOptions {
                        batch_size: 32,
                        shuffle_seed: seed,
                        fields: Some(vec!["n".into()]),
                        ..ArrowOptions::default()
                    },
                )
                .await,
            )
        }
    };
    let plain = run(None).await;
    assert_eq!(plain, anchors, "no seed: anchor order");
    let a1 = run(Some(42)).await;
    let a2 = run(Some(42)).await;
    let b = run(Some(43)).await;
    assert_eq!(a1, a2, "same seed, same order");
    assert_ne!(a1, b, "another seed, another order");
    assert_ne!(a1, plain);
    let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
    assert_eq!(set(&a1), set(&anchors));
    assert_eq!(set(&b), set(&anchors));
    assert_eq!(a1.len(), anchors.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_are_disjoint_and_complete() {
    let backend = Backend::new();
    let (ds, anchors, _) = fixture(&backend, "shards", 10, 20).await;
    for seed in [None, Some(7)] {
        for n in [1usize, 3, 4] {
            let mut union = BTreeSet::new();
            let mut total = 0;
            for i in 0..n {
                let got = anchors_of(
                    &collect(
                        &ds,
                        ArrowOptions {
                            batch_size: 16,
                            shuffle_seed: seed,
                            shard: Some((i, n)),
                            fields: Some(vec!["label".into()]),
                            ..ArrowOptions::default()
                        },
                    )
                    .await,
                );
                if n > 1 {
                    assert!(!got.is_empty() && got.len() < anchors.len());
                }
                total += got.len();
                union.extend(got);
            }
            assert_eq!(total, anchors.len(), "disjoint (seed {seed:?}, n {n})");
            assert_eq!(union, anchors.iter().copied().collect(), "complete");
        }
    }
    let err = ds
        .iter_arrow_batches(ArrowOptions {
            shard: Some((3, 3)),
            ..ArrowOptions::default()
        })
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), "invalid-input");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstoned_records_are_not_in_arrow_output() {
    let backend = Backend::new();
    let (ds, anchors, _) = fixture(&backend, "tomb", 2, 30).await;
    let doomed = vec![anchors[3], anchors[30], anchors[59]];
    ds.delete(&doomed, "test").await.unwrap();
    let got = anchors_of(&collect(&ds, ArrowOptions::default()).await);
    assert_eq!(got.len(), 57);
    assert!(got.iter().all(|a| !doomed.contains(a)));
    let shuffled = anchors_of(
        &collect(
            &ds,
            ArrowOptions {
                shuffle_seed: Some(1),
                ..ArrowOptions::default()
            },
        )
        .await,
    );
    assert_eq!(shuffled.len(), 57);
    assert!(shuffled.iter().all(|a| !doomed.contains(a)));
}
