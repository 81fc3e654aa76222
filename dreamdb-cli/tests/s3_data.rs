//! The data verbs of the built binary against the S3-compatible server in
//! `DREAMDB_TEST_S3_URL` (credentials from the usual `AWS_*` variables,
//! set by the test command: `eval "$(scripts/s3-server env)"`). This file
//! exists to run against S3: without the variable its test FAILS with a
//! message saying so. The test works under a fresh key prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs::File;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field};
use common::*;

const URL_VAR: &str = "DREAMDB_TEST_S3_URL";

fn fresh_backend(tag: &str) -> String {
    let url = std::env::var(URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{URL_VAR} is not set: s3_data tests need an S3-compatible endpoint \
             (run `eval \"$(scripts/s3-server env)\"` first)"
        )
    });
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}/cli-{tag}-{nanos}", url.trim_end_matches('/'))
}

#[test]
fn import_query_delete_export_on_s3() {
    let backend = fresh_backend("data");
    let b = backend.as_str();
    let dir = tempfile::tempdir().unwrap();
    // 300 points on a 16-dimensional grid-like pattern, distinct.
    let rows: Vec<Vec<f32>> = (0..300)
        .map(|i| {
            (0..16)
                .map(|j| ((i * 7 + j * 13) % 31) as f32 + i as f32 / 300.0)
                .collect()
        })
        .collect();
    let mut emb = FixedSizeListBuilder::new(Float32Builder::new(), 16)
        .with_field(Arc::new(Field::new("item", DataType::Float32, false)));
    for r in &rows {
        emb.values().append_slice(r);
        emb.append(true);
    }
    let input = RecordBatch::try_from_iter([
        ("embedding", Arc::new(emb.finish()) as ArrayRef),
        (
            "n",
            Arc::new(Int64Array::from_iter_values(0..300)) as ArrayRef,
        ),
    ])
    .unwrap();
    let path = dir.path().join("in.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(File::create(&path).unwrap(), input.schema(), None)
            .unwrap();
    w.write(&input).unwrap();
    w.close().unwrap();

    let schema = r#"{"fields": {
        "embedding": {"type": "embedding", "dim": 16, "metric": "l2", "algorithm": "ivf",
                      "cells": 4, "compression_bits": 2, "rerank": true},
        "n": {"type": "i64"}}}"#;
    json(b, &["create", "--schema-json", schema], 0);
    let r = json(b, &["import", path.to_str().unwrap(), "--batch", "120"], 0);
    assert_eq!(
        (r["records"].as_u64(), r["batches"].as_u64()),
        (Some(300), Some(3))
    );

    let probe = serde_json::to_string(&rows[123]).unwrap();
    let q = json(
        b,
        &[
            "query",
            "--vector-json",
            &probe,
            "-k",
            "3",
            "--nprobe",
            "4",
            "--fields",
            "n",
        ],
        0,
    );
    assert_eq!(q["hits"][0]["fields"]["n"], 123);
    assert_eq!(q["hits"][0]["distance"].as_f64().unwrap(), 0.0);
    let anchor = q["hits"][0]["anchor"].as_u64().unwrap().to_string();
    assert_eq!(
        json(b, &["get", "--anchor", &anchor], 0)["fields"]["n"],
        123
    );
    assert_eq!(
        json(b, &["delete", "--anchor", &anchor, "--reason", "s3"], 0)["deleted"],
        1
    );
    json(b, &["get", "--anchor", &anchor], 1);

    let out = dir.path().join("out.parquet");
    let e = json(b, &["export", "--out", out.to_str().unwrap()], 0);
    assert_eq!(e["records"], 299);
    let back: Vec<i64> = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        File::open(&out).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap()
    .flat_map(|b| {
        b.unwrap()
            .column_by_name("n")
            .unwrap()
            .as_primitive::<arrow_array::types::Int64Type>()
            .values()
            .to_vec()
    })
    .collect();
    let expected: Vec<i64> = (0..300).filter(|n| *n != 123).collect();
    assert_eq!(back, expected);
}
