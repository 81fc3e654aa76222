//! `get`, `iter` and `iter_stream`: values as appended, tombstones, bounded
//! memory with a slow consumer, field selection by bytes, time ranges.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod read_support;

use std::sync::Arc;
use std::time::Duration;

use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::wrappers::{FaultInjector, FaultPlan};
use dreamdb_connector::Connector;
use dreamdb_dataset::dataset::{CreateOptions, OpenOptions};

use dreamdb_connector::wrappers::OpKind;
use dreamdb_core::time::{TimeAnchor, TimeRange};
use dreamdb_dataset::read::{self, IterOptions, ReadColumn, Record, Value};
use dreamdb_dataset::schema::EmbeddingField;
use dreamdb_dataset::{Dataset, Snapshot};
use dreamdb_protocol::track::{KeyRange, Track};
use futures::StreamExt;
use read_support::*;

const DIM: usize = 16;

/// `appends` appends of `per` rows of the mixed fixture.
async fn mixed(
    backend: &Backend,
    name: &str,
    embedding: EmbeddingField,
    appends: usize,
    per: usize,
    blob_len: usize,
) -> (Dataset, Vec<u64>, Vec<f32>) {
    let ds = backend
        .create(name, mixed_schema(DIM as u32, embedding))
        .await;
    let vectors = clustered(appends * per, DIM, 6, 21);
    let mut anchors = Vec::new();
    for a in 0..appends {
        anchors.extend(append_mixed(&ds, &vectors, DIM, a * per, per, blob_len).await);
    }
    (ds, anchors, vectors)
}

fn expect_record(r: &Record, i: usize, vectors: &[f32], blob_len: usize) {
    assert_eq!(
        r.fields["emb"],
        Value::Embedding(vectors[i * DIM..(i + 1) * DIM].to_vec()),
        "row {i}"
    );
    assert_eq!(r.fields["image"], Value::Blob(blob_of(i, blob_len)));
    assert_eq!(r.fields["label"], Value::Str(LABELS[i % 4].to_owned()));
    assert_eq!(r.fields["n"], Value::I64(i as i64));
    let score = if i.is_multiple_of(7) {
        Value::Null
    } else {
        Value::F64(i as f64 / 10.0)
    };
    assert_eq!(r.fields["score"], score);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_returns_what_was_appended() {
    let backend = Backend::new();
    let (ds, anchors, vectors) = mixed(
        &backend,
        "get",
        EmbeddingField::new(DIM as u32).ivf(4),
        3,
        100,
        64,
    )
    .await;
    for i in [0usize, 1, 7, 99, 100, 150, 299] {
        let r = ds.get(anchors[i], None).await.unwrap().unwrap();
        assert_eq!(r.anchor, anchors[i]);
        assert_eq!(r.fields.len(), 5);
        expect_record(&r, i, &vectors, 64);
    }
    // A subset of fields.
    let r = ds
        .get(anchors[5], Some(&["n", "image"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.fields.keys().collect::<Vec<_>>(), ["image", "n"]);
    assert_eq!(r.fields["n"], Value::I64(5));
    // Existence only.
    let r = ds.get(anchors[5], Some(&[])).await.unwrap().unwrap();
    assert!(r.fields.is_empty());
    // A null scalar: the record exists, the value is null.
    let r = ds.get(anchors[7], Some(&["score"])).await.unwrap().unwrap();
    assert_eq!(r.fields["score"], Value::Null);
    // No record there.
    let missing = anchors.iter().max().unwrap() + 1;
    assert_eq!(ds.get(missing, None).await.unwrap(), None);
    assert_eq!(ds.get(anchors[0] - 1, Some(&[])).await.unwrap(), None);
    // Unknown field: typed error.
    let err = ds.get(anchors[0], Some(&["nope"])).await.unwrap_err();
    assert_eq!(err.kind(), "invalid-input");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_iter_of_a_compressed_field() {
    let backend = Backend::new();
    let (ds, anchors, vectors) = mixed(
        &backend,
        "rq",
        EmbeddingField::new(DIM as u32)
            .ivf(4)
            .rabitq(4)
            .rerank(true),
        2,
        100,
        16,
    )
    .await;
    let snapshot = ds.read_version().await.unwrap();
    let cos = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (n(a) * n(b))
    };
    // Exact when raw rows are located, the RaBitQ reconstruction otherwise:
    // either way the direction is the appended vector's.
    for i in [0usize, 42, 150] {
        let r = read::get(&snapshot, anchors[i], Some(&["emb"]))
            .await
            .unwrap()
            .unwrap();
        let Value::Embedding(v) = &r.fields["emb"] else {
            panic!("no embedding");
        };
        assert!(cos(v, &vectors[i * DIM..(i + 1) * DIM]) > 0.95);
    }
    let records = read::iter(&snapshot, IterOptions::default().fields(&["emb"]))
        .await
        .unwrap();
    assert_eq!(records.len(), 200);
    for (r, a) in records.iter().zip(&anchors) {
        assert_eq!(r.anchor, *a);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iter_yields_every_record_in_anchor_order() {
    let backend = Backend::new();
    let (ds, anchors, vectors) = mixed(
        &backend,
        "iter",
        EmbeddingField::new(DIM as u32).ivf(4),
        4,
        120,
        32,
    )
    .await;
    let records = ds
        .iter(IterOptions::default().batch_size(100))
        .await
        .unwrap();
    assert_eq!(records.len(), 480);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.anchor, anchors[i]);
        expect_record(r, i, &vectors, 32);
    }
    // Batches are full except the last.
    let sizes: Vec<usize> = ds
        .iter_stream(IterOptions::default().batch_size(100))
        .await
        .unwrap()
        .map(|b| b.unwrap().len())
        .collect()
        .await;
    assert_eq!(sizes, [100, 100, 100, 100, 80]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstoned_records_never_appear() {
    let backend = Backend::new();
    let (ds, anchors, _) = mixed(
        &backend,
        "tomb",
        EmbeddingField::new(DIM as u32).ivf(4),
        2,
        50,
        8,
    )
    .await;
    let doomed = [anchors[0], anchors[17], anchors[50], anchors[99]];
    ds.delete(&doomed, "gdpr").await.unwrap();
    for a in doomed {
        assert_eq!(ds.get(a, None).await.unwrap(), None);
        assert_eq!(ds.get(a, Some(&[])).await.unwrap(), None);
    }
    assert!(ds.get(anchors[1], None).await.unwrap().is_some());
    let records = ds.iter(IterOptions::default()).await.unwrap();
    assert_eq!(records.len(), 96);
    assert!(records.iter().all(|r| !doomed.contains(&r.anchor)));
    let anchors_only = ds.iter(IterOptions::default().fields(&[])).await.unwrap();
    assert_eq!(
        anchors_only.iter().map(|r| r.anchor).collect::<Vec<_>>(),
        records.iter().map(|r| r.anchor).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_bounds_the_runs_held() {
    // A backend with latency, so that loads overlap and the window fills.
    let connector: Arc<dyn Connector> = Arc::new(FaultInjector::new(
        MemoryConnector::new(),
        FaultPlan::none().with_latency(Duration::from_millis(2)),
    ));
    let ds = Dataset::create_on(
        connector.clone(),
        URL,
        "slow",
        mixed_schema(DIM as u32, EmbeddingField::new(DIM as u32).ivf(4)),
        CreateOptions::default(),
    )
    .await
    .unwrap();
    let vectors = clustered(12 * 40, DIM, 6, 21);
    let mut anchors = Vec::new();
    for a in 0..12 {
        anchors.extend(append_mixed(&ds, &vectors, DIM, a * 40, 40, 256).await);
    }
    // A fresh handle: nothing served from the writer's cache.
    let ds = Dataset::open_on(connector, URL, "slow", OpenOptions::default())
        .await
        .unwrap();
    let snapshot = ds.read_version().await.unwrap();
    let window = 2;
    let (mut stream, monitor) = read::iter_stream_monitored(
        &snapshot,
        IterOptions::default().batch_size(30).prefetch_runs(window),
    )
    .unwrap();
    assert_eq!(
        monitor.units_started(),
        0,
        "nothing is read before the first pull"
    );
    let mut seen = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch.unwrap();
        seen.extend(batch.anchors.iter().copied());
        // A slow consumer: the window must not run ahead meanwhile.
        tokio::time::sleep(Duration::from_millis(15)).await;
        assert!(
            monitor.units_started() <= monitor.units_consumed() + window,
            "started {} consumed {} window {window}",
            monitor.units_started(),
            monitor.units_consumed()
        );
    }
    assert_eq!(seen, anchors);
    assert_eq!(monitor.units_planned(), 12);
    assert_eq!(monitor.units_started(), 12);
    assert_eq!(
        monitor.max_units_held(),
        window,
        "the window is used, never exceeded"
    );
    // One unit = one run per field (five fields).
    assert!(monitor.max_runs_held() <= window * 5);
    eprintln!(
        "max units held {} (window {window}), max runs held {}",
        monitor.max_units_held(),
        monitor.max_runs_held()
    );
}

/// Total encoded size of the segments of `field`'s anchor runs.
async fn segment_bytes(snapshot: &Snapshot, field: &str) -> u64 {
    let state = snapshot.manifest().tracks.get(field).unwrap();
    let entries = Track::new(snapshot.store().clone())
        .scan_all(&state.root, KeyRange::anchor_runs())
        .await
        .unwrap();
    let mut total = 0;
    for (_, v) in entries {
        total += snapshot.store().get_bytes(v.segment()).await.unwrap().len() as u64;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unselected_fields_are_never_fetched() {
    let backend = Backend::new();
    let (_ds, _, _) = mixed(
        &backend,
        "select",
        EmbeddingField::new(DIM as u32).ivf(4),
        3,
        100,
        4096,
    )
    .await;
    // A fresh handle, so nothing comes from the writer's cache.
    let ds = backend.open("select").await;
    let snapshot = ds.read_version().await.unwrap();
    backend.reset();
    let records = read::iter(&snapshot, IterOptions::default().fields(&["label", "n"]))
        .await
        .unwrap();
    let c = backend.counts();
    show("iter label+n", &c);
    assert_eq!(records.len(), 300);
    assert_eq!(c.calls(OpKind::List), 0);
    let read_bytes = c.total_bytes_read();
    let selected = segment_bytes(&snapshot, "label").await + segment_bytes(&snapshot, "n").await;
    let image = segment_bytes(&snapshot, "image").await;
    let emb = segment_bytes(&snapshot, "emb").await;
    eprintln!("read {read_bytes} B; segments: label+n {selected} B, image {image} B, emb {emb} B");
    assert!(read_bytes <= selected, "{read_bytes} > {selected}");
    assert!(
        image > 100 * read_bytes,
        "the unselected blobs dwarf what was read"
    );

    // Selecting the embedding reads its records and anchor tables, not the
    // blobs: well under one blob segment.
    let ds = backend.open("select").await;
    let snapshot = ds.read_version().await.unwrap();
    backend.reset();
    read::iter(&snapshot, IterOptions::default().fields(&["emb"]))
        .await
        .unwrap();
    let c = backend.counts();
    show("iter emb", &c);
    assert!(
        c.total_bytes_read() <= emb + 4096,
        "index pages aside, only emb bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_range_iteration_returns_exactly_the_range() {
    let backend = Backend::new();
    let (ds, anchors, vectors) = mixed(
        &backend,
        "range",
        EmbeddingField::new(DIM as u32).ivf(4),
        5,
        60,
        8,
    )
    .await;
    for (lo, hi) in [
        (0usize, 300usize),
        (45, 61),
        (150, 151),
        (10, 10),
        (119, 241),
    ] {
        let range = TimeRange::new(
            TimeAnchor::new(anchors[lo]),
            TimeAnchor::new(anchors.get(hi).copied().unwrap_or(u64::MAX)),
        )
        .unwrap();
        let records = ds
            .iter(IterOptions::default().range(range).batch_size(7))
            .await
            .unwrap();
        let got: Vec<u64> = records.iter().map(|r| r.anchor).collect();
        assert_eq!(got, anchors[lo..hi.min(300)].to_vec(), "range {lo}..{hi}");
        for (r, i) in records.iter().zip(lo..) {
            expect_record(r, i, &vectors, 8);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_columns_are_typed() {
    let backend = Backend::new();
    let (ds, _, vectors) = mixed(
        &backend,
        "typed",
        EmbeddingField::new(DIM as u32).ivf(2),
        1,
        10,
        8,
    )
    .await;
    let mut stream = ds.iter_stream(IterOptions::default()).await.unwrap();
    let batch = stream.next().await.unwrap().unwrap();
    let Some(ReadColumn::Embedding { dim, values, valid }) = batch.column("emb") else {
        panic!("embedding column");
    };
    assert_eq!(*dim as usize, DIM);
    assert_eq!(&values[..], &vectors[..10 * DIM]);
    assert!(valid.iter().all(|v| *v));
    assert!(matches!(batch.column("image"), Some(ReadColumn::Blob(_))));
    assert!(matches!(batch.column("n"), Some(ReadColumn::Scalar(_))));
}

/// A field whose raw rows take at most a quarter of the session cache is
/// iterated once from storage: a second pass (the next epoch) reads none
/// of its raw rows again and yields the same exact records. With a cache
/// too small for that, every pass reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_field_iterated_again_reads_its_raw_rows_once() {
    let backend = Backend::new();
    let (_, anchors, vectors) = mixed(
        &backend,
        "again",
        EmbeddingField::new(DIM as u32)
            .ivf(4)
            .rabitq(1)
            .rerank(true),
        2,
        100,
        16,
    )
    .await;
    let raw = (anchors.len() * DIM * 4) as u64;
    for (cache_bytes, kept) in [(None, true), (Some(3 * raw), false)] {
        let ds = Dataset::open_on(
            backend.connector(),
            URL,
            "again",
            OpenOptions {
                cache_bytes,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap();
        let mut read = Vec::new();
        for _ in 0..2 {
            backend.reset();
            let records = ds
                .iter(IterOptions::default().fields(&["emb"]))
                .await
                .unwrap();
            read.push(backend.counts().total_bytes_read());
            assert_eq!(records.len(), anchors.len());
            for (i, r) in records.iter().enumerate() {
                assert_eq!(r.anchor, anchors[i]);
                assert_eq!(
                    r.fields["emb"],
                    Value::Embedding(vectors[i * DIM..(i + 1) * DIM].to_vec()),
                    "row {i}"
                );
            }
        }
        if kept {
            assert!(
                read[0] >= read[1] + raw,
                "second pass read {} of {} bytes; raw rows are {raw}",
                read[1],
                read[0]
            );
        } else {
            assert!(read[1] >= raw, "a small cache kept the raw rows: {read:?}");
        }
    }
}
