//! The data verbs of the built binary against a local directory: `create`,
//! `import` (.npy, .fvecs, Parquet, Arrow IPC), `query`, `get`, `delete`,
//! `export` (Parquet, Arrow IPC), `compare-refs`, `schema-update`, and bad
//! input that must fail with a message naming the problem and leave the
//! ref where it was. Vectors are the first rows of the BIGANN sample in
//! `/work/shared/data/bigann10k` when present (else a seeded stand-in of
//! the same shape), written to input files with the same crates the CLI
//! reads them with.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, ListBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, UInt64Type};
use arrow_array::{
    Array, ArrayRef, BinaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field};
use common::*;
use serde_json::Value;

const DIM: usize = 128;

fn dir_and_backend() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let backend = dir.path().join("store").to_str().unwrap().to_owned();
    (dir, backend)
}

/// `n` vectors of dimension 128: BIGANN base rows, or a seeded stand-in.
fn vectors(n: usize) -> Vec<Vec<f32>> {
    let path = Path::new("/work/shared/data/bigann10k/base.fvecs");
    if let Ok(bytes) = std::fs::read(path) {
        let row = 4 + 4 * DIM;
        if bytes.len() >= n * row {
            return (0..n)
                .map(|i| {
                    bytes[i * row + 4..(i + 1) * row]
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                        .collect()
                })
                .collect();
        }
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            (0..DIM)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    ((state >> 40) % 256) as f32
                })
                .collect()
        })
        .collect()
}

fn write_npy(path: &Path, rows: &[Vec<f32>]) {
    use npyz::WriterBuilder;
    let dim = rows[0].len() as u64;
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[rows.len() as u64, dim])
        .writer(File::create(path).unwrap())
        .begin_nd()
        .unwrap();
    w.extend(rows.iter().flatten().copied()).unwrap();
    w.finish().unwrap();
}

fn write_fvecs(path: &Path, rows: &[Vec<f32>]) {
    let mut bytes = Vec::new();
    for r in rows {
        bytes.extend_from_slice(&(r.len() as i32).to_le_bytes());
        for x in r {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
    }
    std::fs::write(path, bytes).unwrap();
}

fn fixed_list(rows: &[Vec<f32>]) -> ArrayRef {
    let dim = rows[0].len() as i32;
    let mut b = FixedSizeListBuilder::new(Float32Builder::new(), dim)
        .with_field(Arc::new(Field::new("item", DataType::Float32, false)));
    for r in rows {
        b.values().append_slice(r);
        b.append(true);
    }
    Arc::new(b.finish())
}

fn var_list(rows: &[Vec<f32>]) -> ArrayRef {
    let mut b = ListBuilder::new(Float32Builder::new());
    for r in rows {
        b.values().append_slice(r);
        b.append(true);
    }
    Arc::new(b.finish())
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns.into_iter().map(|(n, a)| (n.to_owned(), a))).unwrap()
}

fn write_parquet(path: &Path, b: &RecordBatch) {
    let mut w = parquet::arrow::ArrowWriter::try_new(File::create(path).unwrap(), b.schema(), None)
        .unwrap();
    w.write(b).unwrap();
    w.close().unwrap();
}

/// Writes `b` as an Arrow IPC file in batches of `per` rows.
fn write_arrow(path: &Path, b: &RecordBatch, per: usize) {
    let mut w =
        arrow_ipc::writer::FileWriter::try_new(File::create(path).unwrap(), &b.schema()).unwrap();
    let mut at = 0;
    while at < b.num_rows() {
        let n = per.min(b.num_rows() - at);
        w.write(&b.slice(at, n)).unwrap();
        at += n;
    }
    w.finish().unwrap();
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        File::open(path).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn read_arrow(path: &Path) -> Vec<RecordBatch> {
    arrow_ipc::reader::FileReader::try_new(File::open(path).unwrap(), None)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// (anchor, vector) of every row of exported batches.
fn exported_vectors(batches: &[RecordBatch], field: &str) -> BTreeMap<u64, Vec<f32>> {
    let mut out = BTreeMap::new();
    for b in batches {
        let anchors = b
            .column_by_name("_anchor")
            .unwrap()
            .as_primitive::<UInt64Type>();
        let v = b.column_by_name(field).unwrap().as_fixed_size_list();
        for i in 0..b.num_rows() {
            let row = v.value(i);
            out.insert(
                anchors.value(i),
                row.as_primitive::<Float32Type>().values().to_vec(),
            );
        }
    }
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn vec_json(v: &[f32]) -> String {
    serde_json::to_string(v).unwrap()
}

fn as_f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn manifest_of(backend: &str, version: &str) -> String {
    json(backend, &["inspect", version], 0)["manifest"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

const SCHEMA: &str = r#"{"fields": {
    "embedding": {"type": "embedding", "dim": 128, "metric": "l2", "algorithm": "ivf",
                  "cells": 8, "compression_bits": 4, "rerank": true},
    "label": {"type": "categorical", "nullable": true},
    "score": {"type": "f64", "nullable": true}
}}"#;

/// Paths of the four input files of `vectors(1600)`: rows 0..400 (npy),
/// 400..800 (fvecs), 800..1200 (Parquet, with label and score), 1200..1600
/// (Arrow IPC, List<Float32>, with label).
fn inputs(dir: &Path, data: &[Vec<f32>]) -> [PathBuf; 4] {
    let npy = dir.join("part0.npy");
    write_npy(&npy, &data[..400]);
    let fvecs = dir.join("part1.fvecs");
    write_fvecs(&fvecs, &data[400..800]);
    let parquet = dir.join("part2.parquet");
    let labels: Vec<String> = (800..1200).map(|i| format!("r{i}")).collect();
    let scores: Vec<f64> = (800..1200).map(|i| i as f64 / 10.0).collect();
    write_parquet(
        &parquet,
        &batch(vec![
            ("embedding", fixed_list(&data[800..1200])),
            ("label", Arc::new(StringArray::from(labels))),
            ("score", Arc::new(Float64Array::from(scores))),
        ]),
    );
    let arrow = dir.join("part3.arrow");
    let labels: Vec<String> = (1200..1600).map(|i| format!("r{i}")).collect();
    write_arrow(
        &arrow,
        &batch(vec![
            ("vec", var_list(&data[1200..1600])),
            ("label", Arc::new(StringArray::from(labels))),
        ]),
        170,
    );
    [npy, fvecs, parquet, arrow]
}

#[test]
fn create_import_query_get_delete_export_compare_and_evolve() {
    let (dir, backend) = dir_and_backend();
    let b = backend.as_str();
    let data = vectors(1600);
    let [npy, fvecs, parquet, arrow] = inputs(dir.path(), &data);

    // create: the schema comes back in the same format.
    let created = json(b, &["create", "--schema-json", SCHEMA], 0);
    assert_eq!(created["schema"]["fields"]["embedding"]["cells"], 8);
    assert_eq!(
        created["schema"]["fields"]["embedding"]["compression_bits"],
        4
    );
    assert_eq!(created["schema"]["fields"]["label"]["type"], "categorical");

    // import each format; --batch splits into appends.
    let r = json(
        b,
        &[
            "import",
            npy.to_str().unwrap(),
            "--field",
            "embedding",
            "--batch",
            "150",
        ],
        0,
    );
    assert_eq!(r["records"], 400);
    assert_eq!(r["batches"], 3);
    assert_eq!(r["format"], "npy");
    assert!(r["anchors"]["first"].as_u64().unwrap() < r["anchors"]["last"].as_u64().unwrap());
    assert_eq!(r["signals"]["embedding"]["k"], 8);
    assert_eq!(r["signals"]["embedding"]["n"], 400);
    let r = json(b, &["import", fvecs.to_str().unwrap()], 0);
    assert_eq!(
        (r["records"].as_u64(), r["batches"].as_u64()),
        (Some(400), Some(1))
    );
    assert_eq!(r["field"], "embedding");
    let r = json(
        b,
        &["import", parquet.to_str().unwrap(), "--batch", "300"],
        0,
    );
    assert_eq!(
        (r["records"].as_u64(), r["batches"].as_u64()),
        (Some(400), Some(2))
    );
    let r = json(
        b,
        &[
            "import",
            arrow.to_str().unwrap(),
            "--embedding-column",
            "vec",
            "--batch",
            "400",
        ],
        0,
    );
    // Four file batches of 170 rows regrouped into one append.
    assert_eq!(
        (r["records"].as_u64(), r["batches"].as_u64()),
        (Some(400), Some(1))
    );
    assert_eq!(r["signals"]["embedding"]["n"], 1600);
    assert_eq!(json(b, &["inspect"], 0)["records"], 1600);
    let tagged = json(b, &["snapshot", "--ref", "main", "--label", "loaded"], 0);
    assert!(tagged.is_object());

    // query: a stored vector finds itself at distance 0, with its fields.
    let probe = &data[1000];
    let q = json(
        b,
        &[
            "query",
            "--vector-json",
            &vec_json(probe),
            "-k",
            "5",
            "--nprobe",
            "8",
            "--refine",
            "8",
            "--fields",
            "label,score,embedding",
        ],
        0,
    );
    let hits = q["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 5);
    assert_eq!(hits[0]["distance"].as_f64().unwrap(), 0.0);
    assert_eq!(hits[0]["fields"]["label"], "r1000");
    assert_eq!(hits[0]["fields"]["score"], 100.0);
    assert_eq!(bits(&as_f32s(&hits[0]["fields"]["embedding"])), bits(probe));
    let anchor = hits[0]["anchor"].as_u64().unwrap();
    // A query vector not in the data: the exact nearest neighbour (brute
    // force over all 1600) comes first when every cell is probed.
    let query_vec: Vec<f32> = data[7]
        .iter()
        .zip(&data[1500])
        .map(|(a, c)| (a * 3.0 + c) / 4.0)
        .collect();
    let nearest = (0..data.len())
        .min_by(|&i, &j| l2(&data[i], &query_vec).total_cmp(&l2(&data[j], &query_vec)))
        .unwrap();
    let q = json(
        b,
        &[
            "query",
            "--vector-json",
            &vec_json(&query_vec),
            "-k",
            "3",
            "--nprobe",
            "8",
            "--refine",
            "20",
            "--fields",
            "embedding",
        ],
        0,
    );
    assert_eq!(
        bits(&as_f32s(&q["hits"][0]["fields"]["embedding"])),
        bits(&data[nearest])
    );
    let d0 = q["hits"][0]["distance"].as_f64().unwrap();
    assert!(
        (d0 - f64::from(l2(&data[nearest], &query_vec))).abs() <= 1e-3 * d0.max(1.0),
        "{d0}"
    );
    // From an .npy file row, with a filter.
    let q = json(
        b,
        &[
            "query",
            "--vector-npy",
            npy.to_str().unwrap(),
            "--row",
            "3",
            "-k",
            "3",
            "--filter",
            "score >= 90 and label in [r950, r1001]",
            "--fields",
            "label",
        ],
        0,
    );
    let labels: Vec<&str> = q["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["fields"]["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 2, "{q}");
    assert!(
        labels.iter().all(|l| *l == "r950" || *l == "r1001"),
        "{labels:?}"
    );
    assert!(q["stats"]["filter_tested"].as_u64().unwrap() > 0);
    // Human output.
    let out = run(
        b,
        &[
            "query",
            "--vector-json",
            &vec_json(probe),
            "-k",
            "2",
            "--fields",
            "label",
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("anchor {anchor}")),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("label=r1000"), "{}", stdout(&out));

    // get.
    let g = json(b, &["get", "--anchor", &anchor.to_string()], 0);
    assert_eq!(g["fields"]["label"], "r1000");
    assert_eq!(bits(&as_f32s(&g["fields"]["embedding"])), bits(probe));
    let g = json(
        b,
        &["get", "--anchor", &anchor.to_string(), "--fields", "score"],
        0,
    );
    assert_eq!(g["fields"].as_object().unwrap().len(), 1);

    // delete: the record is gone from get and query on main, not from the tag.
    let d = json(
        b,
        &[
            "delete",
            "--anchor",
            &anchor.to_string(),
            "--reason",
            "duplicate",
        ],
        0,
    );
    assert_eq!(
        (d["deleted"].as_u64(), d["records"].as_u64()),
        (Some(1), Some(1599))
    );
    let again = json(
        b,
        &[
            "delete",
            "--anchor",
            &anchor.to_string(),
            "--reason",
            "duplicate",
        ],
        0,
    );
    assert_eq!(again["deleted"], 0);
    assert_eq!(again["already_deleted"], 1);
    let missing = json(b, &["get", "--anchor", &anchor.to_string()], 1);
    assert_eq!(missing["error"]["class"], "not-found");
    assert!(missing["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&anchor.to_string()));
    let q = json(
        b,
        &[
            "query",
            "--vector-json",
            &vec_json(probe),
            "-k",
            "3",
            "--fields",
            "label",
        ],
        0,
    );
    assert!(q["hits"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["anchor"].as_u64() != Some(anchor)));
    assert!(q["hits"][0]["distance"].as_f64().unwrap() > 0.0);
    let old = json(
        b,
        &["get", "--anchor", &anchor.to_string(), "--ref", "loaded"],
        0,
    );
    assert_eq!(old["fields"]["label"], "r1000");
    let before = manifest_of(b, "main");
    let bad = json(b, &["delete", "--anchor", "1", "--reason", "x"], 1);
    assert_eq!(bad["error"]["class"], "invalid-input");
    assert!(bad["error"]["message"]
        .as_str()
        .unwrap()
        .contains("anchor 1"));
    assert_eq!(manifest_of(b, "main"), before);

    // export to Parquet and Arrow; read back and compare with the input.
    let pq = dir.path().join("out.parquet");
    let e = json(
        b,
        &["export", "--out", pq.to_str().unwrap(), "--batch", "500"],
        0,
    );
    assert_eq!(
        (e["records"].as_u64(), e["format"].as_str()),
        (Some(1599), Some("parquet"))
    );
    let from_parquet = exported_vectors(&read_parquet(&pq), "embedding");
    let ipc = dir.path().join("out.arrow");
    let e = json(
        b,
        &[
            "export",
            "--out",
            ipc.to_str().unwrap(),
            "--fields",
            "embedding,label",
        ],
        0,
    );
    assert_eq!(
        e["columns"],
        serde_json::json!(["_anchor", "embedding", "label"])
    );
    let ipc_batches = read_arrow(&ipc);
    let from_arrow = exported_vectors(&ipc_batches, "embedding");
    assert_eq!(from_parquet, from_arrow);
    assert!(!from_parquet.contains_key(&anchor));
    let mut expected: Vec<Vec<u32>> = data
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1000)
        .map(|(_, v)| bits(v))
        .collect();
    let mut got: Vec<Vec<u32>> = from_parquet.values().map(|v| bits(v)).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    // Labels survive (categorical comes back as text in Arrow IPC).
    let labelled: usize = ipc_batches
        .iter()
        .map(|b| {
            b.column_by_name("label").unwrap().len()
                - b.column_by_name("label").unwrap().null_count()
        })
        .sum();
    assert_eq!(labelled, 799);
    // The tag still has every record.
    let at_tag = dir.path().join("loaded.parquet");
    let e = json(
        b,
        &[
            "export",
            "--out",
            at_tag.to_str().unwrap(),
            "--at",
            "loaded",
            "--fields",
            "embedding",
        ],
        0,
    );
    assert_eq!(e["records"], 1600);
    // Only records with a value in an exported field are rows: score was
    // given for the Parquet part only.
    let e = json(
        b,
        &[
            "export",
            "--out",
            at_tag.to_str().unwrap(),
            "--at",
            "loaded",
            "--fields",
            "score",
        ],
        0,
    );
    assert_eq!(e["records"], 400);

    // compare-refs across two branches.
    json(b, &["branch", "exp", "--from", "main"], 0);
    let anchors: Vec<u64> = from_parquet.keys().copied().take(2).collect();
    let d = json(
        b,
        &[
            "delete",
            "--ref",
            "exp",
            "--anchor",
            &anchors[0].to_string(),
            "--anchor",
            &anchors[1].to_string(),
            "--reason",
            "experiment",
        ],
        0,
    );
    assert_eq!(d["deleted"], 2);
    let table = dir.path().join("cmp.arrow");
    let c = json(
        b,
        &[
            "compare-refs",
            "--field",
            "embedding",
            "main",
            "exp",
            "--out",
            table.to_str().unwrap(),
        ],
        0,
    );
    assert_eq!(c["anchors"], 1599);
    assert_eq!(c["summaries"][0]["values"], 1599);
    assert_eq!(c["summaries"][1]["values"], 1597);
    assert_eq!(c["summaries"][1]["paired"], 1597);
    assert_eq!(c["summaries"][1]["changed_vs_first"], 0);
    assert!((c["summaries"][1]["mean_cosine_vs_first"].as_f64().unwrap() - 1.0).abs() < 1e-6);
    let t = read_arrow(&table);
    let rows: usize = t.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 1599);
    let exp_nulls: usize = t
        .iter()
        .map(|b| b.column_by_name("embedding@exp").unwrap().null_count())
        .sum();
    assert_eq!(exp_nulls, 2);
    let csv = dir.path().join("cmp.csv");
    let c = json(
        b,
        &[
            "compare-refs",
            "--field",
            "score",
            "main",
            "exp",
            "--out",
            csv.to_str().unwrap(),
        ],
        0,
    );
    assert_eq!(c["out"]["format"], "csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("_anchor,score@main,score@exp"));
    // Anchors with a score (the Parquet part, less the deleted record).
    assert_eq!(lines.count(), 399);
    assert!(
        text.lines().nth(1).unwrap().ends_with(",80.0,80.0"),
        "{}",
        &text[..200]
    );
    let out = run(b, &["compare-refs", "--field", "score", "main", "exp"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("exp"), "{}", stdout(&out));

    // schema-update: an added nullable field is accepted ...
    let mut evolved: Value = serde_json::from_str(SCHEMA).unwrap();
    evolved["fields"]["note"] = serde_json::json!({"type": "string", "nullable": true});
    let u = json(
        b,
        &["schema-update", "--schema-json", &evolved.to_string()],
        0,
    );
    assert_eq!(u["added"], serde_json::json!(["note"]));
    assert_eq!(
        json(b, &["inspect"], 0)["schema"]["fields"]["note"]["spec"]["scalar"]["dtype"],
        "string"
    );
    // ... removing a field or adding a required one is refused, nothing moves.
    let before = manifest_of(b, "main");
    let mut removed = evolved.clone();
    removed["fields"].as_object_mut().unwrap().remove("score");
    let path = dir.path().join("removed.json");
    std::fs::write(&path, removed.to_string()).unwrap();
    let r = json(b, &["schema-update", "--schema", path.to_str().unwrap()], 1);
    assert_eq!(r["error"]["class"], "invalid-schema");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"score\""),
        "{r}"
    );
    let mut required = evolved.clone();
    required["fields"]["year"] = serde_json::json!({"type": "i64"});
    let r = json(
        b,
        &["schema-update", "--schema-json", &required.to_string()],
        1,
    );
    assert!(
        r["error"]["message"].as_str().unwrap().contains("\"year\""),
        "{r}"
    );
    assert_eq!(manifest_of(b, "main"), before);
}

#[test]
fn bad_input_names_the_problem_and_changes_nothing() {
    let (dir, backend) = dir_and_backend();
    let b = backend.as_str();
    let data = vectors(300);
    json(b, &["create", "--schema-json", SCHEMA], 0);
    json(
        b,
        &[
            "import",
            dir_file(dir.path(), "ok.npy", &data[..50])
                .to_str()
                .unwrap(),
        ],
        0,
    );
    let before = manifest_of(b, "main");
    let unchanged = || {
        assert_eq!(manifest_of(b, "main"), before);
        assert_eq!(json(b, &["inspect"], 0)["records"], 50);
    };
    let message = |v: &Value| v["error"]["message"].as_str().unwrap().to_owned();

    // Wrong dimension.
    let short: Vec<Vec<f32>> = data.iter().take(20).map(|v| v[..64].to_vec()).collect();
    let r = json(
        b,
        &[
            "import",
            dir_file(dir.path(), "short.npy", &short).to_str().unwrap(),
        ],
        1,
    );
    assert!(
        message(&r).contains("embedding") && message(&r).contains("64"),
        "{r}"
    );
    unchanged();
    // NaN in the third batch: the checking pass refuses before any append.
    let mut nan = data.clone();
    nan[250][17] = f32::NAN;
    let path = dir.path().join("nan.fvecs");
    write_fvecs(&path, &nan);
    let r = json(b, &["import", path.to_str().unwrap(), "--batch", "100"], 1);
    assert!(message(&r).to_lowercase().contains("nan"), "{r}");
    assert!(message(&r).contains("rows 200..300"), "{r}");
    unchanged();
    // A float64 .npy.
    let path = dir.path().join("f64.npy");
    {
        use npyz::WriterBuilder;
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[2, 128])
            .writer(File::create(&path).unwrap())
            .begin_nd()
            .unwrap();
        w.extend((0..256).map(f64::from)).unwrap();
        w.finish().unwrap();
    }
    let r = json(b, &["import", path.to_str().unwrap()], 1);
    assert!(message(&r).contains("float32"), "{r}");
    // Unknown field, and a column naming no field.
    let ok = dir.path().join("ok.npy");
    let r = json(b, &["import", ok.to_str().unwrap(), "--field", "nope"], 1);
    assert!(message(&r).contains("\"nope\""), "{r}");
    let path = dir.path().join("extra.parquet");
    write_parquet(
        &path,
        &batch(vec![
            ("embedding", fixed_list(&data[..10])),
            (
                "extra",
                Arc::new(Int32Array::from((0..10).collect::<Vec<i32>>())),
            ),
        ]),
    );
    let r = json(b, &["import", path.to_str().unwrap()], 1);
    assert!(message(&r).contains("\"extra\""), "{r}");
    let r = json(
        b,
        &["import", path.to_str().unwrap(), "--skip-unknown-columns"],
        0,
    );
    assert_eq!(r["records"], 10);
    let before = manifest_of(b, "main");
    // A column of the wrong type.
    let path = dir.path().join("badtype.parquet");
    write_parquet(
        &path,
        &batch(vec![
            ("embedding", fixed_list(&data[..10])),
            ("score", Arc::new(StringArray::from(vec!["x"; 10]))),
        ]),
    );
    let r = json(b, &["import", path.to_str().unwrap()], 1);
    assert!(message(&r).contains("\"score\""), "{r}");
    // Nonexistent file; unknown extension (usage).
    let r = json(b, &["import", "/nonexistent/x.npy"], 1);
    assert!(message(&r).contains("/nonexistent/x.npy"), "{r}");
    let r = json(b, &["import", "data.txt"], 2);
    assert!(message(&r).contains("--format"), "{r}");
    assert_eq!(manifest_of(b, "main"), before);

    // create: taken (3), a bad schema (1, naming the field), no schema (2).
    assert_eq!(
        json(b, &["create", "--schema-json", SCHEMA], 3)["error"]["class"],
        "already-exists"
    );
    let other = format!("{b}-other");
    let r = json(
        &other,
        &[
            "create",
            "--schema-json",
            r#"{"fields": {"v": {"type": "embedding", "dim": 4, "metric": "hamming"}}}"#,
        ],
        1,
    );
    assert!(
        message(&r).contains("\"v\"") && message(&r).contains("hamming"),
        "{r}"
    );
    json(&other, &["create"], 2);

    // Reads: wrong query dimension, unknown field, unknown version.
    let r = json(b, &["query", "--vector-json", "[1, 2, 3]"], 1);
    assert!(message(&r).contains("dimension"), "{r}");
    let r = json(
        b,
        &[
            "query",
            "--vector-json",
            &vec_json(&data[0]),
            "--filter",
            "nope == 1",
        ],
        2,
    );
    assert!(message(&r).contains("\"nope\""), "{r}");
    let r = json(b, &["get", "--anchor", "1", "--fields", "nope"], 1);
    assert!(message(&r).contains("nope"), "{r}");
    let r = json(
        b,
        &[
            "export",
            "--out",
            dir.path().join("x.arrow").to_str().unwrap(),
            "--ref",
            "no-such-branch",
        ],
        1,
    );
    assert_eq!(r["error"]["class"], "ref-not-found");
    let r = json(b, &["compare-refs", "--field", "nope", "main"], 1);
    assert!(message(&r).contains("nope"), "{r}");
    assert_eq!(manifest_of(b, "main"), before);

    // --single-pass appends while reading: the batches before the bad one
    // stay committed, and the error says so.
    let nan = dir.path().join("nan.fvecs");
    let r = json(
        b,
        &[
            "import",
            nan.to_str().unwrap(),
            "--batch",
            "100",
            "--single-pass",
        ],
        1,
    );
    assert!(
        message(&r).contains("the 2 batches before it, 200 records, are committed"),
        "{r}"
    );
    assert_eq!(json(b, &["inspect"], 0)["records"], 260);
}

fn dir_file(dir: &Path, name: &str, rows: &[Vec<f32>]) -> PathBuf {
    let path = dir.join(name);
    write_npy(&path, rows);
    path
}

#[test]
fn blobs_anchors_and_timestamps_from_arrow() {
    let (dir, backend) = dir_and_backend();
    let b = backend.as_str();
    let c = json(
        b,
        &[
            "create",
            "--embedding",
            "v:4:l2",
            "--blob",
            "image:image/png:64",
            "--scalar",
            "n:i64",
            "--scalar",
            "t:timestamp?",
        ],
        0,
    );
    assert_eq!(c["schema"]["fields"]["v"]["algorithm"], "flat");
    assert_eq!(c["schema"]["fields"]["t"]["nullable"], true);
    let rows: Vec<Vec<f32>> = (0..6)
        .map(|i| vec![i as f32, 1.0, 0.0, -(i as f32)])
        .collect();
    let blobs: Vec<Vec<u8>> = (0..6).map(|i| vec![i as u8; 10 + i]).collect();
    let input = batch(vec![
        (
            "_anchor",
            Arc::new(UInt64Array::from(vec![10u64, 20, 30, 40, 50, 60])),
        ),
        ("v", fixed_list(&rows)),
        (
            "image",
            Arc::new(BinaryArray::from_iter_values(blobs.iter())),
        ),
        ("n", Arc::new(Int32Array::from(vec![0, 1, 2, 3, 4, 5]))),
        (
            "t",
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(1_000),
                None,
                Some(3_000),
                None,
                Some(5_000),
                None,
            ])),
        ),
    ]);
    let path = dir.path().join("media.arrow");
    write_arrow(&path, &input, 4);
    let r = json(
        b,
        &[
            "import",
            path.to_str().unwrap(),
            "--anchor-column",
            "_anchor",
        ],
        0,
    );
    assert_eq!(r["records"], 6);
    assert_eq!(
        (
            r["anchors"]["first"].as_u64(),
            r["anchors"]["last"].as_u64()
        ),
        (Some(10), Some(60))
    );
    // An anchor given twice in one file (in different batches): refused by
    // the checking pass, nothing committed.
    let dup = dir.path().join("dup.arrow");
    let twice = batch(vec![
        (
            "_anchor",
            Arc::new(UInt64Array::from(vec![100u64, 200, 100])),
        ),
        ("v", fixed_list(&rows[..3])),
        (
            "image",
            Arc::new(BinaryArray::from_iter_values(blobs[..3].iter())),
        ),
        ("n", Arc::new(Int32Array::from(vec![0, 1, 2]))),
        (
            "t",
            Arc::new(TimestampMillisecondArray::from(vec![None, None, None])),
        ),
    ]);
    write_arrow(&dup, &twice, 2);
    let before = manifest_of(b, "main");
    let r = json(
        b,
        &[
            "import",
            dup.to_str().unwrap(),
            "--anchor-column",
            "_anchor",
            "--batch",
            "2",
        ],
        1,
    );
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anchor 100 is given twice (rows 0 and 2)"),
        "{r}"
    );
    assert_eq!(manifest_of(b, "main"), before);
    // The same anchors again: refused by the append, nothing committed.
    let before = manifest_of(b, "main");
    let r = json(
        b,
        &[
            "import",
            path.to_str().unwrap(),
            "--anchor-column",
            "_anchor",
        ],
        1,
    );
    assert!(
        r["error"]["message"].as_str().unwrap().contains("anchor"),
        "{r}"
    );
    assert_eq!(manifest_of(b, "main"), before);

    let g = json(b, &["get", "--anchor", "30"], 0);
    assert_eq!(
        g["fields"]["image"],
        serde_json::json!({"bytes": 12, "mime": "image/png"})
    );
    assert_eq!(g["fields"]["n"], 2);
    assert_eq!(g["fields"]["t"], 3_000_000_000i64);
    assert_eq!(as_f32s(&g["fields"]["v"]), rows[2]);
    let g = json(b, &["get", "--anchor", "40", "--fields", "t"], 0);
    assert!(g["fields"]["t"].is_null());

    let q = json(
        b,
        &[
            "query",
            "--vector-json",
            "[4, 1, 0, -4]",
            "-k",
            "2",
            "--fields",
            "image,n",
        ],
        0,
    );
    assert_eq!(q["hits"][0]["anchor"], 50);
    assert_eq!(q["hits"][0]["fields"]["image"]["bytes"], 14);
    let q = json(
        b,
        &[
            "query",
            "--vector-json",
            "[4, 1, 0, -4]",
            "-k",
            "2",
            "--filter",
            "n < 2",
            "--fields",
            "n",
        ],
        0,
    );
    let ns: Vec<i64> = q["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["fields"]["n"].as_i64().unwrap())
        .collect();
    assert_eq!(ns, vec![1, 0]);

    // Export round trip: anchors, blobs and timestamps as imported.
    let out = dir.path().join("media-out.arrow");
    json(b, &["export", "--out", out.to_str().unwrap()], 0);
    let back = read_arrow(&out);
    let anchors: Vec<u64> = back
        .iter()
        .flat_map(|b| {
            b.column_by_name("_anchor")
                .unwrap()
                .as_primitive::<UInt64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(anchors, vec![10, 20, 30, 40, 50, 60]);
    let images: Vec<Vec<u8>> = back
        .iter()
        .flat_map(|b| {
            let a = b
                .column_by_name("image")
                .unwrap()
                .as_binary::<i32>()
                .clone();
            (0..a.len())
                .map(move |i| a.value(i).to_vec())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(images, blobs);
    // ... and it imports again into a fresh dataset with its anchors.
    let again = format!("{b}-again");
    json(
        &again,
        &[
            "create",
            "--embedding",
            "v:4:l2",
            "--blob",
            "image:image/png:64",
            "--scalar",
            "n:i64",
            "--scalar",
            "t:timestamp?",
        ],
        0,
    );
    let r = json(
        &again,
        &[
            "import",
            out.to_str().unwrap(),
            "--anchor-column",
            "_anchor",
        ],
        0,
    );
    assert_eq!(r["records"], 6);
    assert_eq!(
        json(&again, &["get", "--anchor", "60", "--fields", "n"], 0)["fields"]["n"],
        5
    );
}
