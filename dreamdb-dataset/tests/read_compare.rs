//! `compare_refs` on two branches: the wide table and the summaries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod read_support;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, UInt64Type};
use arrow_array::Array;
use arrow_schema::DataType;
use dreamdb_dataset::batch::{Batch, ScalarColumn};
use dreamdb_dataset::read;
use dreamdb_dataset::schema::{EmbeddingField, ScalarType, SchemaBuilder};
use dreamdb_dataset::Dataset;
use read_support::*;

const DIM: usize = 4;

fn vector(i: u64) -> Vec<f32> {
    (0..DIM)
        .map(|d| ((i as usize * 7 + d * 3) % 11) as f32 + 1.0)
        .collect()
}

/// Appends anchors `anchors` with `score(i)` and `vec(i)` on `ds`.
async fn put(
    ds: &Dataset,
    anchors: Vec<u64>,
    score: impl Fn(u64) -> Option<f64>,
    vec: impl Fn(u64) -> Vec<f32>,
) {
    let n = anchors.len();
    let batch = Batch::new(n)
        .anchors(anchors.clone())
        .unwrap()
        .embeddings(
            "emb",
            DIM as u32,
            anchors.iter().flat_map(|a| vec(*a)).collect(),
        )
        .scalars(
            "score",
            ScalarColumn::F64(anchors.iter().map(|a| score(*a)).collect()),
        )
        .scalars(
            "tag",
            ScalarColumn::Str(
                anchors
                    .iter()
                    .map(|a| Some(format!("t{}", a % 3)))
                    .collect(),
            ),
        );
    ds.append_many(batch).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_two_branches() {
    let backend = Backend::new();
    let schema = SchemaBuilder::new()
        .embedding("emb", EmbeddingField::new(DIM as u32).flat())
        .scalar("score", ScalarType::F64.nullable())
        .scalar("tag", ScalarType::String)
        .build()
        .unwrap();
    let main = backend.create("cmp", schema).await;
    let a = main.branch("exp-a").await.unwrap();
    let b = main.branch("exp-b").await.unwrap();
    // a: anchors 100..200, score = i (null when i % 10 == 0);
    // b: anchors 150..250, score = 2 i, vectors negated on odd anchors.
    put(
        &a,
        (100..200).collect(),
        |i| (i % 10 != 0).then_some(i as f64),
        vector,
    )
    .await;
    put(
        &b,
        (150..250).collect(),
        |i| Some(2.0 * i as f64),
        |i| {
            let v = vector(i);
            if i % 2 == 1 {
                v.iter().map(|x| -x).collect()
            } else {
                v
            }
        },
    )
    .await;
    let sa = a.read_version().await.unwrap();
    let sb = b.read_version().await.unwrap();

    let scores = read::compare_refs(&[("a", sa.clone()), ("b", sb.clone())], "score")
        .await
        .unwrap();
    let t = &scores.table;
    assert_eq!(t.num_rows(), 150, "union of anchors");
    assert_eq!(t.schema().field(0).name(), "_anchor");
    assert_eq!(t.schema().field(1).name(), "score@a");
    assert_eq!(t.schema().field(2).name(), "score@b");
    assert_eq!(t.schema().field(1).data_type(), &DataType::Float64);
    let anchors = t.column(0).as_primitive::<UInt64Type>();
    assert_eq!(anchors.values().to_vec(), (100..250).collect::<Vec<u64>>());
    let ca = t.column(1).as_primitive::<Float64Type>();
    let cb = t.column(2).as_primitive::<Float64Type>();
    for (row, anchor) in (100u64..250).enumerate() {
        let want_a = (anchor < 200 && anchor % 10 != 0).then_some(anchor as f64);
        let want_b = (anchor >= 150).then_some(2.0 * anchor as f64);
        assert_eq!(
            ca.is_valid(row).then(|| ca.value(row)),
            want_a,
            "a at {anchor}"
        );
        assert_eq!(
            cb.is_valid(row).then(|| cb.value(row)),
            want_b,
            "b at {anchor}"
        );
    }
    let [sum_a, sum_b] = [&scores.summaries[0], &scores.summaries[1]];
    let a_vals: Vec<f64> = (100..200)
        .filter(|i| i % 10 != 0)
        .map(|i| i as f64)
        .collect();
    assert_eq!(sum_a.name, "a");
    assert_eq!(sum_a.values, 90);
    assert_eq!(sum_a.mean, Some(a_vals.iter().sum::<f64>() / 90.0));
    assert_eq!(sum_a.mean_diff_vs_first, None);
    assert_eq!(sum_b.values, 100);
    assert_eq!(
        sum_b.mean,
        Some((150..250).map(|i| 2.0 * i as f64).sum::<f64>() / 100.0)
    );
    // Paired: anchors 150..200 with a value in a (not multiples of 10).
    let paired: Vec<u64> = (150..200).filter(|i| i % 10 != 0).collect();
    assert_eq!(sum_b.paired, paired.len());
    let diff = paired.iter().map(|i| *i as f64).sum::<f64>() / paired.len() as f64;
    assert!((sum_b.mean_diff_vs_first.unwrap() - diff).abs() < 1e-9);
    assert_eq!(sum_b.changed_vs_first, paired.len());

    // Embeddings: cosine 1 on even anchors, −1 on odd ones.
    let emb = read::compare_refs(&[("a", sa.clone()), ("b", sb.clone())], "emb")
        .await
        .unwrap();
    assert!(matches!(
        emb.table.schema().field(1).data_type(),
        DataType::FixedSizeList(_, 4)
    ));
    let list = emb.table.column(1).as_fixed_size_list();
    assert!(list.is_valid(0) && list.is_null(149));
    let row0: Vec<f32> = list
        .value(0)
        .as_primitive::<Float32Type>()
        .values()
        .to_vec();
    assert_eq!(row0, vector(100));
    let s = &emb.summaries[1];
    assert_eq!(s.paired, 50);
    assert!(s.mean_cosine_vs_first.unwrap().abs() < 1e-9, "{s:?}");
    assert_eq!(s.changed_vs_first, 25);
    assert_eq!(s.mean, None);

    // Text: changes counted, no mean.
    let tags = read::compare_refs(&[("a", sa.clone()), ("b", sb.clone())], "tag")
        .await
        .unwrap();
    assert_eq!(tags.summaries[1].changed_vs_first, 0);
    assert_eq!(tags.summaries[1].paired, 50);

    // The handle verb names the baseline "self".
    let via = a.compare_refs(&[("b", &b)], "score").await.unwrap();
    assert_eq!(via.table.schema().field(1).name(), "score@self");
    assert_eq!(
        via.summaries[1].mean_diff_vs_first,
        sum_b.mean_diff_vs_first
    );

    // Errors.
    let err = read::compare_refs(&[("a", sa.clone()), ("a", sb)], "score")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid-input");
    let err = read::compare_refs(&[("a", sa)], "nope").await.unwrap_err();
    assert_eq!(err.kind(), "invalid-input");
}
