//! Ada-IVF status and steps on a skewed dataset (memory backend behind a
//! call counter): the step lowers the imbalance, keeps k ≤ 2·√N, rewrites
//! only the changed cells, keeps recall; the sharded step publishes the
//! same index; bad input is refused and moves nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "write_common.rs"]
mod common;

use std::collections::BTreeSet;

use common::*;
use dreamdb_connector::wrappers::OpKind;
use dreamdb_dataset::maintain::AdaIvfStepOptions;
use dreamdb_dataset::read::QueryRequest;
use dreamdb_dataset::read::{IterOptions, Value};
use dreamdb_dataset::Dataset;

/// `rows` records in 6 tight sub-clusters around the first cluster of
/// [`clustered`]: new data arriving in one region of the space (drift).
fn drifted(seed: u64, rows: usize) -> Vec<f32> {
    let d = DIM as usize;
    let centre = clustered(99, 1, d, K as usize);
    let mut stream =
        dreamdb_core::random::DeterministicStream::from_seed(seed, "dreamdb.test.drift");
    let subs: Vec<f32> = (0..6 * d)
        .map(|i| centre[i % d] + 0.4 * stream.next_f32_normal())
        .collect();
    (0..rows)
        .flat_map(|i| {
            let s = i % 6;
            (0..d)
                .map(|j| subs[s * d + j] + 0.05 * stream.next_f32_normal())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// 800 clustered records, then 1,200 drifted into one region.
async fn skewed_dataset(
    connector: std::sync::Arc<dyn dreamdb_connector::Connector>,
) -> (Dataset, Vec<u64>, Vec<f32>) {
    let ds = create_on(connector, "ada").await;
    let v1 = clustered(1, 800, DIM as usize, K as usize);
    let a1 = ds
        .append_many(batch_with(1, 800, v1.clone()))
        .await
        .unwrap();
    let v2 = drifted(2, 1200);
    let a2 = ds
        .append_many(batch_with(2, 1200, v2.clone()))
        .await
        .unwrap();
    let mut anchors = a1.anchors;
    anchors.extend(a2.anchors);
    let mut vectors = v1;
    vectors.extend(v2);
    (ds, anchors, vectors)
}

/// Recall@10 over 40 queries at `nprobe`, and the mean records scored.
async fn recall(ds: &Dataset, anchors: &[u64], vectors: &[f32], nprobe: usize) -> (f64, f64) {
    let d = DIM as usize;
    let mut found = 0usize;
    let mut scored = 0usize;
    let queries = 40;
    for q in 0..queries {
        let i = (q * 37) % anchors.len();
        let query = vectors[i * d..(i + 1) * d].to_vec();
        let mut exact: Vec<(f32, u64)> = (0..anchors.len())
            .map(|j| (cosine(&query, &vectors[j * d..(j + 1) * d]), anchors[j]))
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let truth: BTreeSet<u64> = exact.iter().take(10).map(|e| e.1).collect();
        let got = ds
            .query(&QueryRequest::new("embedding", query, 10).nprobe(nprobe))
            .await
            .unwrap();
        scored += got.stats.candidates;
        found += got
            .hits
            .iter()
            .filter(|h| truth.contains(&h.anchor))
            .count();
    }
    (
        found as f64 / (queries * 10) as f64,
        scored as f64 / queries as f64,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_on_skewed_data_rebalances_and_rewrites_only_changed_cells() {
    let counter = counting();
    let (ds, anchors, vectors) = skewed_dataset(counter.clone()).await;
    let sharded = ds.branch("sharded").await.unwrap();
    let status = ds
        .ada_ivf_status("embedding", Some(1.5), Some(0.3))
        .await
        .unwrap();
    assert_eq!(status.n, 2000);
    assert!(!status.overpopulated.is_empty(), "{status:?}");
    let (recall_before, scored_before) = recall(&ds, &anchors, &vectors, 2).await;
    let appended_bytes = counter.snapshot().total_bytes_written();

    let before = counter.snapshot();
    let report = ds
        .ada_ivf_step("embedding", AdaIvfStepOptions::new(1.5, 0.3))
        .await
        .unwrap();
    let after = counter.snapshot();
    assert!(report.manifest.is_some());
    eprintln!(
        "step: imbalance {:.3} -> {:.3}, k {} -> {} (cap {}), {} of {} cells rewritten, {} records, {} bytes (appends wrote {appended_bytes})",
        report.imbalance_before,
        report.imbalance_after,
        report.k_before,
        report.k_after,
        report.k_max,
        report.cells_rewritten,
        report.k_before,
        report.records_rewritten,
        report.cost.bytes_written
    );
    assert!(
        report.imbalance_after < report.imbalance_before,
        "{report:?}"
    );
    assert!(report.k_after <= report.k_max, "{report:?}");
    assert_eq!(
        report.cells_rewritten as usize,
        report.splits.len() + report.merges.len()
    );
    assert!(report.cells_untouched > 0, "{report:?}");
    assert_eq!(
        report.k_before - report.cells_untouched,
        report.cells_rewritten
    );
    // Bytes: the counter agrees with the report and stays well under a
    // full rewrite of what the appends wrote.
    let put_bytes = after.total_bytes_written() - before.total_bytes_written();
    // (the counter also sees the ref's compare-and-swap, a few hundred bytes)
    assert!(put_bytes >= report.cost.bytes_written);
    assert!(
        put_bytes - report.cost.bytes_written < 4096,
        "{put_bytes} vs {report:?}"
    );
    assert!(
        put_bytes * 2 < appended_bytes,
        "step wrote {put_bytes} bytes, the appends {appended_bytes}"
    );
    assert_eq!(after.calls(OpKind::List), before.calls(OpKind::List));

    // Status now matches the report.
    let now = ds
        .ada_ivf_status("embedding", Some(1.5), Some(0.3))
        .await
        .unwrap();
    assert!((now.imbalance - report.imbalance_after).abs() < 1e-9);
    assert_eq!(now.n, 2000);
    assert!(now.k <= now.k_max);

    // Recall at the same work: the largest nprobe that scores no more
    // records on average than nprobe 2 did before the step.
    let mut best = None;
    for nprobe in 1..=now.k as usize {
        let (r, scored) = recall(&ds, &anchors, &vectors, nprobe).await;
        if scored > scored_before {
            break;
        }
        best = Some((nprobe, r, scored));
    }
    let (nprobe, recall_after, scored_after) = best.expect("nprobe 1 scores less");
    eprintln!(
        "recall@10 before: {recall_before} (nprobe 2, {scored_before} scored); after: {recall_after} (nprobe {nprobe}, {scored_after} scored)"
    );
    assert!(
        recall_after >= recall_before,
        "recall {recall_before} -> {recall_after} at nprobe {nprobe}"
    );
    // Every record still reads back exactly once with its exact vector.
    let records = ds
        .iter(IterOptions::default().fields(&["embedding"]))
        .await
        .unwrap();
    assert_eq!(records.len(), 2000);
    let d = DIM as usize;
    for r in records.iter().step_by(97) {
        let i = anchors.iter().position(|a| *a == r.anchor).unwrap();
        match &r.fields["embedding"] {
            Value::Embedding(v) => assert_eq!(v.as_slice(), &vectors[i * d..(i + 1) * d]),
            other => panic!("{other:?}"),
        }
    }

    // The same step in three shards from the same base: same index.
    for shard in 0..3 {
        sharded
            .ada_ivf_step_shard(
                "job-1",
                shard,
                3,
                "embedding",
                AdaIvfStepOptions::new(1.5, 0.3),
            )
            .await
            .unwrap();
    }
    let orchestrated = sharded.ada_ivf_orchestrate("job-1", 3).await.unwrap();
    assert_eq!(orchestrated.spatial_index, report.spatial_index);
    assert_eq!(orchestrated.records_rewritten, report.records_rewritten);
    assert!((orchestrated.imbalance_after - report.imbalance_after).abs() < 1e-9);
    let sharded_status = sharded
        .ada_ivf_status("embedding", None, None)
        .await
        .unwrap();
    assert_eq!(sharded_status.spatial_index, now.spatial_index);
    assert_eq!(sharded_status.n, 2000);
    assert_eq!(
        sharded
            .iter(IterOptions::default().fields(&["label"]))
            .await
            .unwrap()
            .len(),
        2000
    );
    // Every stored link resolves (the child index names its parent's
    // stored object), and appends after the step pass the lineage check.
    let report = dreamdb_protocol::maintenance::verify(
        counter.clone(),
        &dreamdb_protocol::maintenance::VerifyOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "{report:#?}");
    let more = ds.append_many(batch(9, 100)).await.unwrap();
    assert_eq!(more.anchors.len(), 100);
    assert_eq!(ds.records().await.unwrap(), 2100);
    // A missing shard result is not-found.
    let err = sharded.ada_ivf_orchestrate("job-2", 2).await.unwrap_err();
    assert_eq!(err.kind(), "not-found");
}

#[tokio::test]
async fn bad_input_is_refused_and_moves_nothing() {
    let counter = counting();
    let ds = create_on(counter.clone(), "bad").await;
    ds.append_many(batch(1, 200)).await.unwrap();
    let tip = ds.manifest_hash().await.unwrap();
    let good = AdaIvfStepOptions::new(2.0, 0.5);
    let cases: Vec<(&str, AdaIvfStepOptions)> = vec![
        ("nope", good),
        ("label", good),
        ("image", good),
        ("embedding", AdaIvfStepOptions::new(0.0, 0.5)),
        ("embedding", AdaIvfStepOptions::new(2.0, -1.0)),
        ("embedding", AdaIvfStepOptions::new(f64::NAN, 0.5)),
        ("embedding", AdaIvfStepOptions::new(2.0, f64::INFINITY)),
        ("embedding", AdaIvfStepOptions::new(0.5, 2.0)),
    ];
    for (field, options) in cases {
        let puts = counter.snapshot().calls(OpKind::Put);
        let err = ds.ada_ivf_step(field, options).await.unwrap_err();
        assert_eq!(err.kind(), "invalid-input", "{field} {options:?}: {err}");
        assert_eq!(counter.snapshot().calls(OpKind::Put), puts, "{err}");
    }
    for field in ["nope", "label"] {
        assert_eq!(
            ds.ada_ivf_status(field, None, None)
                .await
                .unwrap_err()
                .kind(),
            "invalid-input"
        );
        assert_eq!(
            ds.compact(Some(field))
                .await
                .map(|_| ())
                .err()
                .map(|e| e.kind()),
            if field == "nope" {
                Some("invalid-input")
            } else {
                None
            }
        );
        assert_eq!(
            ds.rebuild_ivf(field, None, 0).await.unwrap_err().kind(),
            "invalid-input"
        );
        assert_eq!(
            ds.publish_rabitq(field, 2).await.unwrap_err().kind(),
            "invalid-input"
        );
    }
    assert_eq!(
        ds.ada_ivf_status("embedding", Some(f64::NAN), None)
            .await
            .unwrap_err()
            .kind(),
        "invalid-input"
    );
    assert_eq!(
        ds.publish_rabitq("embedding", 9).await.unwrap_err().kind(),
        "invalid-input"
    );
    assert_eq!(
        ds.publish_rabitq("embedding", 1).await.unwrap_err().kind(),
        "invalid-input"
    );
    assert_eq!(
        ds.rebuild_ivf("embedding", Some(0), 0)
            .await
            .unwrap_err()
            .kind(),
        "invalid-input"
    );
    let err = ds
        .ada_ivf_step_shard("../x", 0, 2, "embedding", good)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid-input");
    let err = ds
        .ada_ivf_step_shard("j", 2, 2, "embedding", good)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid-input");
    assert_eq!(ds.manifest_hash().await.unwrap(), tip);
}
