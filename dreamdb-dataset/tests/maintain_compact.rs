//! `compact`, `rebuild_ivf` and `publish_rabitq` on every backend: one
//! body run on memory, a local directory and the S3-compatible server
//! (`DREAMDB_TEST_S3_URL`, set by `scripts/test`; without it the S3 test
//! FAILS rather than skipping).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "write_common.rs"]
mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::Connector;
use dreamdb_dataset::dataset::CreateOptions;
use dreamdb_dataset::maintain::AdaIvfStepOptions;
use dreamdb_dataset::read::{IterOptions, QueryRequest, Value};
use dreamdb_dataset::schema::{EmbeddingField, Metric, SchemaBuilder};
use dreamdb_dataset::Dataset;

async fn check_reads(
    stage: &str,
    ds: &Dataset,
    live: &BTreeSet<u64>,
    deleted: &BTreeSet<u64>,
    vectors: &[(u64, Vec<f32>)],
) {
    let records = ds.iter(IterOptions::default()).await.unwrap();
    let seen: BTreeSet<u64> = records.iter().map(|r| r.anchor).collect();
    assert_eq!(
        seen.len(),
        records.len(),
        "{stage}: a record came back twice"
    );
    assert_eq!(&seen, live);
    for r in &records {
        let want = &vectors.iter().find(|(a, _)| *a == r.anchor).unwrap().1;
        match &r.fields["embedding"] {
            Value::Embedding(v) => assert_eq!(v, want),
            other => panic!("{other:?}"),
        }
    }
    for (anchor, v) in vectors.iter().step_by(29) {
        let hits = ds
            .query(&QueryRequest::new("embedding", v.clone(), 10).nprobe(8))
            .await
            .unwrap()
            .hits;
        assert!(hits.iter().all(|h| !deleted.contains(&h.anchor)));
        if live.contains(anchor) {
            assert_eq!(
                hits[0].anchor, *anchor,
                "{stage}: the record itself is its nearest"
            );
        }
    }
}

/// Appends three batches, deletes records, compacts; then an Ada-IVF
/// step, a whole-field compaction, a rebuild and a change of compression.
async fn body(connector: Arc<dyn Connector>, url: &str) {
    let ds = Dataset::create_on(
        connector.clone(),
        url,
        "maint",
        schema(),
        CreateOptions::default(),
    )
    .await
    .unwrap();
    let mut vectors = Vec::new();
    for seed in 1..=3u64 {
        let v = clustered(seed, 300, DIM as usize, K as usize);
        let r = ds
            .append_many(batch_with(seed, 300, v.clone()))
            .await
            .unwrap();
        for (i, a) in r.anchors.iter().enumerate() {
            vectors.push((*a, v[i * DIM as usize..(i + 1) * DIM as usize].to_vec()));
        }
    }
    let deleted: BTreeSet<u64> = vectors.iter().step_by(7).map(|(a, _)| *a).collect();
    let del: Vec<u64> = deleted.iter().copied().collect();
    ds.delete(&del, "test").await.unwrap();
    let live: BTreeSet<u64> = vectors
        .iter()
        .map(|(a, _)| *a)
        .filter(|a| !deleted.contains(a))
        .collect();
    let status = ds.ada_ivf_status("embedding", None, None).await.unwrap();
    assert!(status.fragmentation > 2.0, "{status:?}");
    assert_eq!(status.tombstones, deleted.len() as u64);

    let report = ds.compact(None).await.unwrap();
    assert!(report.manifest.is_some());
    let emb = &report.fields["embedding"];
    assert_eq!(emb.records_dropped, deleted.len() as u64);
    assert!(emb.cells_rewritten > 0);
    for f in ["image", "label", "score"] {
        assert_eq!(
            report.fields[f].records_dropped,
            deleted.len() as u64,
            "{f}"
        );
    }
    assert!(report.cost.bytes_written > 0);
    let status = ds.ada_ivf_status("embedding", None, None).await.unwrap();
    assert_eq!(status.fragmentation, 1.0, "one run per cell: {status:?}");
    assert_eq!(status.n, live.len() as u64);
    assert_eq!(ds.records().await.unwrap(), live.len() as u64);
    check_reads("after compaction", &ds, &live, &deleted, &vectors).await;
    // Nothing left to do: nothing written, the ref stays.
    let tip = ds.manifest_hash().await.unwrap();
    let again = ds.compact(None).await.unwrap();
    assert_eq!(again.manifest, None);
    assert_eq!(ds.manifest_hash().await.unwrap(), tip);

    // A batch in one region, then an Ada-IVF step: it leaves buckets
    // without their own anchor entries; compaction then restores one
    // bucket per field.
    let v = skewed(4, 400, DIM as usize);
    let r = ds.append_many(batch_with(4, 400, v.clone())).await.unwrap();
    let mut live = live;
    for (i, a) in r.anchors.iter().enumerate() {
        vectors.push((*a, v[i * DIM as usize..(i + 1) * DIM as usize].to_vec()));
        live.insert(*a);
    }
    check_reads("after the skewed append", &ds, &live, &deleted, &vectors).await;
    let step = ds
        .ada_ivf_step("embedding", AdaIvfStepOptions::new(1.3, 0.3))
        .await
        .unwrap();
    assert!(step.manifest.is_some(), "{step:?}");
    check_reads("after the step", &ds, &live, &deleted, &vectors).await;
    {
        let c = ds.compact(Some("embedding")).await.unwrap();
        assert!(c.fields["embedding"].whole_field, "{c:?}");
        check_reads(
            "after the whole-field compaction",
            &ds,
            &live,
            &deleted,
            &vectors,
        )
        .await;
        assert_eq!(ds.compact(None).await.unwrap().manifest, None);
    }

    // Full retrain with another k.
    let rebuilt = ds.rebuild_ivf("embedding", Some(12), 5).await.unwrap();
    assert_eq!(rebuilt.k, 12);
    assert_eq!(rebuilt.records, live.len() as u64);
    assert!(!rebuilt.from_codes);
    let status = ds.ada_ivf_status("embedding", None, None).await.unwrap();
    assert_eq!(status.k, 12);
    assert_eq!(status.spatial_index, rebuilt.spatial_index);
    check_reads("after the rebuild", &ds, &live, &deleted, &vectors).await;

    // Change the compression: 1 → 4 bits.
    let q = ds.publish_rabitq("embedding", 4).await.unwrap();
    assert_eq!((q.bits_before, q.bits), (Some(1), 4));
    assert_eq!(q.records, live.len() as u64);
    check_reads("after the new compression", &ds, &live, &deleted, &vectors).await;
    let schema = ds.schema().await.unwrap();
    assert!(format!("{:?}", schema.fields["embedding"].spec).contains("bits: 4"));
    let report = dreamdb_protocol::maintenance::verify(
        connector,
        &dreamdb_protocol::maintenance::VerifyOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "{report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_on_memory() {
    body(Arc::new(MemoryConnector::new()), "memory://").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_owned();
    let connector = dreamdb_connector_http::connect(&url).await.unwrap();
    body(connector, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_on_the_s3_compatible_server() {
    let Ok(url) = std::env::var("DREAMDB_TEST_S3_URL") else {
        panic!(
            "DREAMDB_TEST_S3_URL is not set: this test needs the S3-compatible test server. \
             Run it through ./scripts/test, or start it by hand: \
             `scripts/s3-server start && eval \"$(scripts/s3-server env)\"`"
        );
    };
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let url = format!("{}/dataset-maint-{run}", url.trim_end_matches('/'));
    let connector = dreamdb_connector_http::connect(&url).await.unwrap();
    body(connector, &url).await;
}

#[tokio::test]
async fn changing_bits_without_raw_rows_is_refused() {
    let schema = SchemaBuilder::new()
        .embedding(
            "embedding",
            EmbeddingField::new(DIM)
                .metric(Metric::L2)
                .ivf(4)
                .rabitq(1)
                .rerank(false),
        )
        .build()
        .unwrap();
    let ds = Dataset::create_on(
        Arc::new(MemoryConnector::new()),
        "memory://",
        "noraw",
        schema,
        CreateOptions::default(),
    )
    .await
    .unwrap();
    let v = clustered(1, 100, DIM as usize, 4);
    ds.append_many(dreamdb_dataset::batch::Batch::new(100).embeddings("embedding", DIM, v))
        .await
        .unwrap();
    let tip = ds.manifest_hash().await.unwrap();
    let err = ds.publish_rabitq("embedding", 2).await.unwrap_err();
    assert_eq!(err.kind(), "invalid-input");
    assert!(err.to_string().contains("raw rows are absent"), "{err}");
    assert_eq!(ds.manifest_hash().await.unwrap(), tip);
    // A rebuild from codes works and says so.
    let r = ds.rebuild_ivf("embedding", None, 1).await.unwrap();
    assert!(r.from_codes);
    assert_eq!(ds.records().await.unwrap(), 100);
}

/// Compactions and Ada-IVF steps racing appends and deletes: each step
/// either rebases onto the moved tip or is refused with `conflict`; no
/// record is lost, duplicated or resurrected in any interleaving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_beside_concurrent_writers_lose_nothing() {
    let connector: Arc<dyn Connector> = Arc::new(MemoryConnector::new());
    let ds = Dataset::create_on(
        connector.clone(),
        "memory://",
        "race",
        schema(),
        CreateOptions::default(),
    )
    .await
    .unwrap();
    let mut live = BTreeSet::new();
    let mut deleted = BTreeSet::new();
    let r = ds.append_many(batch(1, 200)).await.unwrap();
    live.extend(r.anchors);
    let mut outcomes = Vec::new();
    for round in 0..6u64 {
        let writer = reopen(connector.clone(), "race").await;
        let maint = reopen(connector.clone(), "race").await;
        let victim = *live.iter().nth(round as usize * 7).unwrap();
        let append = async {
            let r = writer
                .append_many(batch_with(
                    10 + round,
                    60,
                    skewed(10 + round, 60, DIM as usize),
                ))
                .await
                .unwrap();
            writer.delete(&[victim], "race").await.unwrap();
            r.anchors
        };
        let step = async {
            if round % 2 == 0 {
                maint.compact(None).await.map(|_| ())
            } else {
                maint
                    .ada_ivf_step("embedding", AdaIvfStepOptions::new(1.5, 0.2))
                    .await
                    .map(|_| ())
            }
        };
        let (anchors, outcome) = tokio::join!(append, step);
        if let Err(e) = &outcome {
            assert_eq!(e.kind(), "conflict", "round {round}: {e}");
        }
        outcomes.push(outcome.is_ok());
        live.extend(anchors);
        live.remove(&victim);
        deleted.insert(victim);
        let records = ds
            .iter(IterOptions::default().fields(&["label"]))
            .await
            .unwrap();
        let seen: BTreeSet<u64> = records.iter().map(|r| r.anchor).collect();
        assert_eq!(
            seen.len(),
            records.len(),
            "round {round}: a record came back twice"
        );
        assert_eq!(seen, live, "round {round}");
        assert_eq!(ds.records().await.unwrap(), live.len() as u64);
    }
    assert!(outcomes.iter().any(|ok| *ok), "no step ever went through");
    // Finally everything compacts to one run per cell.
    ds.compact(None).await.unwrap();
    let status = ds.ada_ivf_status("embedding", None, None).await.unwrap();
    assert_eq!(status.fragmentation, 1.0);
    assert_eq!(status.n, live.len() as u64);
}
