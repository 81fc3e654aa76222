//! `query` through the storage path: equality with the in-memory spatial
//! pipeline, call counts (cold, warm, pinned), tombstones, filters,
//! validation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod read_support;

use std::collections::BTreeSet;

use dreamdb_connector::wrappers::OpKind;
use dreamdb_dataset::dataset::{OpenOptions, Version};
use dreamdb_dataset::read::{self, Filter, QueryRequest, Value};
use dreamdb_dataset::schema::{EmbeddingField, SchemaBuilder};
use dreamdb_dataset::write::{compat, layout};
use dreamdb_dataset::{Dataset, Snapshot};
use dreamdb_protocol::spatial::search::SearchOptions;
use dreamdb_protocol::spatial::{IvfStore, SpatialIndex};
use dreamdb_protocol::track::{KeyRange, Track};
use read_support::*;

const DIM: usize = 64;
const N: usize = 20_000;
const APPENDS: usize = 4;

/// A 20,000 × 64 clustered set appended in four batches to field `v`.
async fn build(
    backend: &Backend,
    name: &str,
    field: EmbeddingField,
) -> (Dataset, Vec<u64>, Vec<f32>) {
    let schema = SchemaBuilder::new().embedding("v", field).build().unwrap();
    let ds = backend.create(name, schema).await;
    let vectors = clustered(N, DIM, 48, 11);
    let mut anchors = Vec::new();
    let per = N / APPENDS;
    for a in 0..APPENDS {
        anchors.extend(
            append_vectors(&ds, "v", DIM, &vectors[a * per * DIM..(a + 1) * per * DIM]).await,
        );
    }
    (ds, anchors, vectors)
}

fn queries(count: usize) -> Vec<Vec<f32>> {
    clustered(count, DIM, 48, 11 + 1000)
        .chunks(DIM)
        .map(<[f32]>::to_vec)
        .collect()
}

/// The in-memory pipeline over the same index, compressor and data.
async fn in_memory(
    snapshot: &Snapshot,
    anchors: &[u64],
    vectors: &[f32],
    keep_raw: bool,
) -> IvfStore {
    let state = snapshot.manifest().tracks.get("v").unwrap();
    let loaded = layout::load_spatial(
        snapshot.store(),
        state.spatial_index.unwrap(),
        state.compressor,
    )
    .await
    .unwrap();
    let SpatialIndex::Ivf(index) = loaded.index else {
        panic!("expected an IVF index");
    };
    IvfStore::build(index, loaded.compressor, anchors, vectors, keep_raw).unwrap()
}

/// Whether the writer records raw-row locations in cell runs.
async fn has_raw_rows(snapshot: &Snapshot) -> bool {
    let state = snapshot.manifest().tracks.get("v").unwrap();
    let entries = Track::new(snapshot.store().clone())
        .scan_all(&state.root, KeyRange::cell_runs())
        .await
        .unwrap();
    entries
        .iter()
        .any(|(_, v)| compat::raw_rows_of(v).is_some())
}

async fn assert_same_as_in_memory(
    snapshot: &Snapshot,
    store: &IvfStore,
    nprobe: usize,
    refine: usize,
) -> (usize, usize) {
    let mut total_runs = 0;
    let mut total_overlap = 0;
    for q in queries(40) {
        let request = QueryRequest::new("v", q.clone(), 10)
            .nprobe(nprobe)
            .refine_factor(refine);
        let got = read::query(snapshot, &request).await.unwrap();
        let (want, _) = store
            .search_with(
                &q,
                &SearchOptions {
                    k: 10,
                    nprobe,
                    refine_factor: refine,
                    epsilon0: request.epsilon0,
                },
            )
            .unwrap();
        let got_ids: Vec<u64> = got.hits.iter().map(|h| h.anchor).collect();
        let want_ids: Vec<u64> = want.iter().map(|(id, _)| *id).collect();
        assert_eq!(got_ids, want_ids, "same ids in the same order");
        for (h, (_, d)) in got.hits.iter().zip(&want) {
            assert_eq!(h.distance, *d, "same distances");
        }
        assert_eq!(got.stats.cells_probed, nprobe);
        // One run per (cell, append) at most.
        assert!(got.stats.runs_read <= nprobe * APPENDS);
        total_runs += got.stats.runs_read;
        total_overlap += got_ids.len();
    }
    (total_runs, total_overlap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ivf_flat_equals_in_memory_exact_search() {
    let backend = Backend::new();
    let (ds, anchors, vectors) =
        build(&backend, "flat", EmbeddingField::new(DIM as u32).ivf(64)).await;
    let snapshot = ds.read_version().await.unwrap();
    let store = in_memory(&snapshot, &anchors, &vectors, true).await;
    assert_same_as_in_memory(&snapshot, &store, 6, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabitq_equals_in_memory_pipeline() {
    let backend = Backend::new();
    let (ds, anchors, vectors) = build(
        &backend,
        "rq",
        EmbeddingField::new(DIM as u32)
            .ivf(64)
            .rabitq(1)
            .rerank(true),
    )
    .await;
    let snapshot = ds.read_version().await.unwrap();
    // Estimates only: the codes on storage give the in-memory estimates.
    let estimates = in_memory(&snapshot, &anchors, &vectors, false).await;
    assert_same_as_in_memory(&snapshot, &estimates, 8, 0).await;
    // Reranked: when the writer records where each run's raw rows are,
    // the stored path reranks exactly as the in-memory one; until then it
    // returns estimates, as the in-memory pipeline does without raw rows.
    let raw = has_raw_rows(&snapshot).await;
    eprintln!("cell runs record raw rows: {raw}");
    let reranked = in_memory(&snapshot, &anchors, &vectors, raw).await;
    assert_same_as_in_memory(&snapshot, &reranked, 8, 4).await;
    if raw {
        let r = read::query(
            &snapshot,
            &QueryRequest::new("v", queries(1).remove(0), 10)
                .nprobe(8)
                .refine_factor(4),
        )
        .await
        .unwrap();
        assert!(r.stats.reranked > 0 && r.stats.raw_reads > 0);
        assert!(r.stats.raw_reads <= r.stats.runs_read);
    }
}

/// A sparse index (LSH with many buckets over 1,000 records) can put
/// fewer than k records in the first `nprobe` cells: the query widens the
/// probe until they hold k, so top-k is full whenever the dataset has k.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparse_cells_widen_the_probe_until_k_records_are_held() {
    let backend = Backend::new();
    let schema = SchemaBuilder::new()
        .embedding("v", EmbeddingField::new(32).lsh(4, 12))
        .build()
        .unwrap();
    let ds = backend.create("lsh1", schema).await;
    let vectors = clustered(1000, 32, 1000, 21);
    append_vectors(&ds, "v", 32, &vectors).await;
    let snapshot = ds.read_version().await.unwrap();
    let mut widened = 0;
    for q in clustered(40, 32, 40, 77).chunks(32) {
        let narrow = read::query(&snapshot, &QueryRequest::new("v", q.to_vec(), 5).nprobe(1))
            .await
            .unwrap();
        assert_eq!(narrow.hits.len(), 5, "top-5 is full: {:?}", narrow.stats);
        if narrow.stats.cells_probed > 1 {
            widened += 1;
        }
    }
    assert!(
        widened > 0,
        "no query needed a wider probe: the test measures nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_index_scans_every_run_exactly() {
    let backend = Backend::new();
    let schema = SchemaBuilder::new()
        .embedding("v", EmbeddingField::new(16).flat())
        .build()
        .unwrap();
    let ds = backend.create("flat1", schema).await;
    let vectors = clustered(600, 16, 5, 3);
    let mut anchors = Vec::new();
    for part in vectors.chunks(200 * 16) {
        anchors.extend(append_vectors(&ds, "v", 16, part).await);
    }
    let snapshot = ds.read_version().await.unwrap();
    let q = vectors[5 * 16..6 * 16].to_vec();
    let r = read::query(&snapshot, &QueryRequest::new("v", q.clone(), 5))
        .await
        .unwrap();
    assert_eq!(r.stats.runs_read, 3, "one run per append, all scanned");
    assert_eq!(r.stats.candidates, 600);
    assert_eq!(r.hits[0].anchor, anchors[5]);
    assert!(r.hits[0].distance.abs() < 1e-5);
    // Brute force agrees.
    let metric = dreamdb_protocol::spatial::Metric::Cosine;
    let mut all: Vec<(f32, u64)> = vectors
        .chunks(16)
        .zip(&anchors)
        .map(|(v, a)| (metric.distance(&q, v), *a))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let want: BTreeSet<u64> = all[..5].iter().map(|x| x.1).collect();
    let got: BTreeSet<u64> = r.hits.iter().map(|h| h.anchor).collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_query_costs_one_ref_read_and_no_ranged_gets() {
    let backend = Backend::new();
    let (_ds, _, _) = build(
        &backend,
        "counts",
        EmbeddingField::new(DIM as u32)
            .ivf(64)
            .rabitq(1)
            .rerank(true),
    )
    .await;
    let request = QueryRequest::new("v", queries(1).remove(0), 10)
        .nprobe(8)
        .refine_factor(4);

    // Cold: a fresh handle.
    let ds = backend.open("counts").await;
    backend.reset();
    let cold = ds.query(&request).await.unwrap();
    let c = backend.counts();
    show("cold query (by ref)", &c);
    eprintln!("cold stats: {:?}", cold.stats);
    assert_eq!(c.calls(OpKind::List), 0, "no LIST on the read path");
    // Opening warmed the version (design 0006): its Manifest, Schema,
    // spatial index, compressor and the leaves under the held root page
    // were read by the open, so the query's only whole-object read is the
    // ref check it overlaps with the runs.
    assert_eq!(c.calls(OpKind::Get), 1, "only the ref: {c:?}");
    // The pool (10 × 4) covers the probed runs, so their raw rows are read
    // with the codes, in the same round trip; the rerank finds them cached.
    assert!(cold.stats.runs_read <= 40, "{:?}", cold.stats);
    assert_eq!(cold.stats.raw_prefetched, cold.stats.runs_read);
    assert_eq!(
        c.calls(OpKind::GetRange) as usize,
        cold.stats.runs_read + cold.stats.raw_prefetched
    );
    // With a pool smaller than the runs probed, raw rows are read after
    // the estimates, only for runs holding a candidate.
    let narrow = QueryRequest::new("v", queries(1).remove(0), 2)
        .nprobe(8)
        .refine_factor(2);
    let ds2 = backend.open("counts").await;
    backend.reset();
    let late = ds2.query(&narrow).await.unwrap();
    assert_eq!(late.stats.raw_prefetched, 0, "{:?}", late.stats);
    assert!(late.stats.raw_reads > 0 && late.stats.raw_reads <= 4);
    assert_eq!(
        backend.counts().calls(OpKind::GetRange) as usize,
        late.stats.runs_read + late.stats.raw_reads
    );

    // Warm: the same query on the same handle.
    backend.reset();
    let warm = ds.query(&request).await.unwrap();
    let c = backend.counts();
    show("warm query (by ref)", &c);
    eprintln!("warm stats: {:?}", warm.stats);
    assert_eq!(warm.hits, cold.hits);
    assert_eq!(c.calls(OpKind::List), 0);
    assert_eq!(c.calls(OpKind::Head), 0);
    assert!(c.calls(OpKind::Get) <= 1, "at most the ref is read");
    assert_eq!(
        c.calls(OpKind::GetRange),
        0,
        "a warm query reads its verified runs and raw rows from the session cache"
    );
    assert!(warm.stats.runs_read <= 8 * APPENDS);
    assert!(warm.stats.raw_reads <= warm.stats.runs_read);

    // Pinned to the Manifest: no ref read at all.
    let hash = ds.manifest_hash().await.unwrap();
    let pinned = Dataset::open_at_on(
        backend.connector(),
        URL,
        "counts",
        Version::Manifest(hash),
        OpenOptions::default(),
    )
    .await
    .unwrap();
    pinned.query(&request).await.unwrap();
    backend.reset();
    let p = pinned.query(&request).await.unwrap();
    let c = backend.counts();
    show("warm query (pinned)", &c);
    assert_eq!(p.hits, cold.hits);
    assert_eq!(c.calls(OpKind::Get), 0, "pinned: no ref read");
    assert_eq!(c.calls(OpKind::List), 0);
    assert_eq!(
        c.calls(OpKind::GetRange),
        0,
        "pinned and warm: runs and raw rows come from the session cache"
    );
}

/// A ref-following handle overlaps its query with the ref check: when
/// another writer moved the ref since the handle's last read, the answer
/// is still that of the new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_answers_for_the_version_current_when_called() {
    let backend = Backend::new();
    let schema = SchemaBuilder::new()
        .embedding("v", EmbeddingField::new(DIM as u32).ivf(16))
        .build()
        .unwrap();
    let writer = backend.create("moving", schema).await;
    let vectors = clustered(2_000, DIM, 16, 5);
    append_vectors(&writer, "v", DIM, &vectors).await;
    let reader = backend.open("moving").await;
    // A far-away point no record is near yet.
    let target = vec![50.0f32; DIM];
    let request = QueryRequest::new("v", target.clone(), 1).nprobe(16);
    let before = reader.query(&request).await.unwrap();
    let first = reader.manifest_hash().await.unwrap();
    // Another handle appends a record at exactly that point.
    let added = append_vectors(&writer, "v", DIM, &target).await;
    assert_ne!(writer.manifest_hash().await.unwrap(), first);
    let after = reader.query(&request).await.unwrap();
    assert_ne!(before.hits[0].anchor, added[0]);
    assert_eq!(
        after.hits[0].anchor, added[0],
        "the query saw the moved ref"
    );
    assert_eq!(after.hits[0].distance, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstoned_records_never_returned_and_top_k_stays_full() {
    let backend = Backend::new();
    let (ds, _, _) = build(&backend, "tomb", EmbeddingField::new(DIM as u32).ivf(32)).await;
    let q = queries(1).remove(0);
    let request = QueryRequest::new("v", q, 10).nprobe(4);
    let before = ds.query(&request).await.unwrap();
    let doomed: Vec<u64> = before.hits.iter().take(5).map(|h| h.anchor).collect();
    ds.delete(&doomed, "test").await.unwrap();
    let after = ds.query(&request).await.unwrap();
    assert_eq!(after.hits.len(), 10, "top-k stays full");
    assert!(after.hits.iter().all(|h| !doomed.contains(&h.anchor)));
    assert_eq!(after.stats.tombstoned, 5);
    // The survivors keep their order; the next ones move up.
    let kept: Vec<u64> = before.hits[5..].iter().map(|h| h.anchor).collect();
    assert_eq!(
        after.hits[..5].iter().map(|h| h.anchor).collect::<Vec<_>>(),
        kept
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_applies_and_fields_come_back() {
    let backend = Backend::new();
    let dim = 32;
    let ds = backend
        .create(
            "filtered",
            mixed_schema(dim as u32, EmbeddingField::new(dim as u32).ivf(16)),
        )
        .await;
    let vectors = clustered(2000, dim, 8, 5);
    let mut anchors = Vec::new();
    for start in (0..2000).step_by(500) {
        anchors.extend(append_mixed(&ds, &vectors, dim, start, 500, 16).await);
    }
    let q = vectors[..dim].to_vec();
    let unfiltered = ds
        .query(&QueryRequest::new("emb", q.clone(), 20).nprobe(16))
        .await
        .unwrap();
    let request = QueryRequest::new("emb", q.clone(), 20)
        .nprobe(16)
        .filter(Filter::new().eq("label", "dog").range("n", 100i64..1500))
        .fields(&["label", "n", "score"]);
    let r = ds.query(&request).await.unwrap();
    assert_eq!(r.hits.len(), 20);
    for h in &r.hits {
        let i = anchors.iter().position(|a| *a == h.anchor).unwrap();
        assert_eq!(h.fields["label"], Value::Str("dog".into()));
        assert_eq!(h.fields["n"], Value::I64(i as i64));
        assert!((100..1500).contains(&i));
        let score = if i % 7 == 0 {
            Value::Null
        } else {
            Value::F64(i as f64 / 10.0)
        };
        assert_eq!(h.fields["score"], score);
    }
    // Exactly the best 20 passing of an exhaustive (nprobe = all) search.
    let all = ds
        .query(
            &QueryRequest::new("emb", q.clone(), 2000)
                .nprobe(16)
                .fields(&["label", "n"]),
        )
        .await
        .unwrap();
    let want: Vec<u64> = all
        .hits
        .iter()
        .filter(|h| {
            h.fields["label"] == Value::Str("dog".into())
                && matches!(h.fields["n"], Value::I64(n) if (100..1500).contains(&n))
        })
        .take(20)
        .map(|h| h.anchor)
        .collect();
    assert_eq!(r.hits.iter().map(|h| h.anchor).collect::<Vec<_>>(), want);
    assert!(r.stats.filter_tested >= 20 && r.stats.filter_rejected > 0);
    assert_ne!(
        unfiltered.hits.iter().map(|h| h.anchor).collect::<Vec<_>>(),
        want
    );
    // `in` and nulls.
    let r = ds
        .query(
            &QueryRequest::new("emb", q.clone(), 5)
                .nprobe(16)
                .filter(
                    Filter::new()
                        .is_in("label", ["cat", "bird"])
                        .eq("score", Value::Null),
                )
                .fields(&["label", "score"]),
        )
        .await
        .unwrap();
    assert_eq!(r.hits.len(), 5);
    for h in &r.hits {
        assert!(matches!(&h.fields["label"], Value::Str(s) if s == "cat" || s == "bird"));
        assert_eq!(h.fields["score"], Value::Null);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_queries_are_typed_errors() {
    let backend = Backend::new();
    let dim = 8;
    let ds = backend
        .create(
            "invalid",
            mixed_schema(dim as u32, EmbeddingField::new(dim as u32).ivf(4)),
        )
        .await;
    let vectors = clustered(100, dim, 4, 1);
    append_mixed(&ds, &vectors, dim, 0, 100, 4).await;
    let ok = vec![0.5f32; dim];
    let cases: Vec<(QueryRequest, &str)> = vec![
        (QueryRequest::new("emb", vec![0.5; 7], 3), "dimension"),
        (
            QueryRequest::new("emb", vec![f32::NAN; dim], 3),
            "not finite",
        ),
        (QueryRequest::new("emb", ok.clone(), 0), "k must"),
        (QueryRequest::new("emb", ok.clone(), 3).nprobe(0), "nprobe"),
        (QueryRequest::new("nope", ok.clone(), 3), "unknown field"),
        (
            QueryRequest::new("label", ok.clone(), 3),
            "embedding fields only",
        ),
        (QueryRequest::new("emb", vec![0.0; dim], 3), "query vector"),
        (
            QueryRequest::new("emb", ok.clone(), 3).filter(Filter::new().eq("label", 3i64)),
            "does not fit",
        ),
        (
            QueryRequest::new("emb", ok.clone(), 3).filter(Filter::new().range("label", 1i64..2)),
            "numeric",
        ),
        (
            QueryRequest::new("emb", ok.clone(), 3).filter(Filter::new().eq("emb", 1i64)),
            "scalar fields only",
        ),
        (
            QueryRequest::new("emb", ok.clone(), 3).fields(&["nope"]),
            "unknown field",
        ),
    ];
    for (request, needle) in cases {
        let err = ds.query(&request).await.unwrap_err();
        assert_eq!(err.kind(), "invalid-input", "{err}");
        assert!(err.to_string().contains(needle), "{err} lacks {needle:?}");
    }
}
