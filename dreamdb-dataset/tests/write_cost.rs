//! What an append costs (design/0002 § Write path): O(1) PUTs per field
//! (one segment, two with raw vectors) plus the changed index pages, one
//! Manifest and one ref write; never a GET of an earlier segment, never a
//! LIST; the same bound whether the dataset holds 100 or 6,000 records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "write_common.rs"]
mod common;

use std::sync::Arc;

use common::*;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::wrappers::{CountingConnector, OpKind};
use dreamdb_connector::Connector;

/// Segment kinds: an append must never read one written before it.
const SEGMENT_KINDS: [&str; 4] = [
    "spatial-bucket",
    "vector-storage",
    "blob-segment",
    "scalar-bucket",
];

/// New objects of one append of this schema (4 fields): embedding bucket +
/// raw rows, one blob segment, two scalar buckets.
const SEGMENTS: u64 = 5;
/// Leaf pages one commit rewrites: the embedding track gets one
/// anchor-order entry and one cell-order entry per touched cell (at most
/// K), each possibly in its own leaf; the three other tracks one entry
/// each.
const LEAVES: u64 = (K as u64 + 1) + 3;
/// Internal pages above them: at most two levels per track at this size
/// (a few thousand runs), the O(log n) part.
const INTERNAL: u64 = 4 * 2;
/// Manifest + ref. The embedding field's cell stats (8 bytes a cell, so
/// signals and `ada-ivf-status` never count entries) and the tracks' root
/// pages are held in the Manifest (design 0006): no object of their own.
const COMMIT: u64 = 2;
const PUT_BOUND: u64 = SEGMENTS + LEAVES + INTERNAL + COMMIT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_puts_are_bounded_and_no_segment_is_read() {
    let recording = Arc::new(Recording::new(Arc::new(MemoryConnector::new())));
    let counting = Arc::new(CountingConnector::new(recording.clone()));
    let connector: Arc<dyn Connector> = counting.clone();
    let ds = create_on(connector.clone(), "cost").await;

    let mut per_append = Vec::new();
    for i in 0..60u64 {
        let before = counting.snapshot();
        let rows = if i == 0 { 200 } else { 100 };
        ds.append_many(batch(i, rows)).await.unwrap();
        let after = counting.snapshot();
        assert_eq!(lists(&after), lists(&before), "append {i} listed");
        per_append.push(puts(&after) - puts(&before));
    }
    // The first append also writes the spatial index and the compressor.
    assert!(
        per_append[0] <= PUT_BOUND + 2,
        "first append: {per_append:?}"
    );
    let worst = per_append[1..].iter().copied().max().unwrap();
    assert!(
        worst <= PUT_BOUND,
        "an append issued {worst} PUTs (bound {PUT_BOUND}): {per_append:?}"
    );
    // While the tracks are inline, an append is its segments + Manifest +
    // ref and nothing else.
    assert_eq!(per_append[1], SEGMENTS + COMMIT, "{per_append:?}");
    println!("PUTs per append: {per_append:?}");

    // A fresh session (cold cache) appending one record: no LIST, no GET of
    // any segment written before, PUTs within the bound, and bytes O(1).
    let fresh = reopen(connector.clone(), "cost").await;
    recording.take_reads();
    let before = counting.snapshot();
    let one = fresh.append_many(batch(1000, 1)).await.unwrap();
    let after = counting.snapshot();
    assert_eq!(one.attempts, 1);
    assert_eq!(lists(&after), lists(&before));
    let put_calls = puts(&after) - puts(&before);
    // One record touches one cell: one leaf per track plus the levels above.
    assert!(
        put_calls <= SEGMENTS + 4 + INTERNAL + COMMIT,
        "{put_calls} PUTs for one record"
    );
    let written = after.op(OpKind::Put).bytes_written - before.op(OpKind::Put).bytes_written;
    // Four inline or paged tracks (≤ 16 KiB each) + small segments.
    assert!(
        written <= 96 * 1024,
        "{written} bytes written for one record"
    );
    let reads = recording.take_reads();
    for key in &reads {
        if let Some(kind) = recording.kind_of(key) {
            assert!(
                !SEGMENT_KINDS.contains(&kind.as_str()),
                "the append read segment {key} ({kind})"
            );
        }
    }
    assert!(!reads.is_empty());
    assert_eq!(fresh.records().await.unwrap(), 200 + 59 * 100 + 1);
}

#[tokio::test]
async fn a_refused_append_reads_no_segment_either() {
    let recording = Arc::new(Recording::new(Arc::new(MemoryConnector::new())));
    let connector: Arc<dyn Connector> = recording.clone();
    let ds = create_on(connector, "cost2").await;
    ds.append_many(batch(1, 50)).await.unwrap();
    recording.take_reads();
    let mut bad = clustered(2, 10, DIM as usize, 2);
    bad[3] = f32::NAN;
    assert!(ds.append_many(batch_with(2, 10, bad)).await.is_err());
    for key in recording.take_reads() {
        let kind = recording.kind_of(&key).unwrap_or_default();
        assert!(!SEGMENT_KINDS.contains(&kind.as_str()), "{key} ({kind})");
    }
}
