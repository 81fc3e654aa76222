//! Signals returned by appends (design/0002 § Signals): reported, never
//! acted on. A skewed append raises the imbalance score; k, N, √N, 2·√N,
//! density and fragmentation follow the track.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "write_common.rs"]
mod common;

use std::sync::Arc;

use common::*;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::Connector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skewed_append_raises_imbalance() {
    let connector: Arc<dyn Connector> = Arc::new(MemoryConnector::new());
    let ds = create_on(connector.clone(), "sig").await;
    // Eight clusters, eight cells: an even first append.
    let even = ds.append_many(batch(1, 800)).await.unwrap();
    let s1 = &even.signals.fields["embedding"];
    assert_eq!(s1.k, K as u64);
    assert_eq!(s1.n, 800);
    assert!((s1.sqrt_n - 800f64.sqrt()).abs() < 1e-9);
    assert_eq!(s1.k_max, (2.0 * 800f64.sqrt()).floor() as u64);
    assert!(s1.imbalance < 0.5, "even data, imbalance {}", s1.imbalance);
    assert_eq!(s1.runs, s1.density.non_empty_cells, "one run per cell");
    assert!((s1.fragmentation - 1.0).abs() < 1e-9);
    assert!(s1.density.min <= s1.density.max);
    assert_eq!(
        s1.density.empty_cells + s1.density.non_empty_cells,
        K as u64
    );
    // Everything of the second append lands in one cluster.
    let skew = ds
        .append_many(batch_with(2, 800, skewed(2, 800, DIM as usize)))
        .await
        .unwrap();
    let s2 = &skew.signals.fields["embedding"];
    assert_eq!(s2.n, 1600);
    assert!(
        s2.imbalance > s1.imbalance + 0.3,
        "skew: {} → {}",
        s1.imbalance,
        s2.imbalance
    );
    assert!(s2.density.max >= 800, "{:?}", s2.density);
    // The skewed append touched few cells: fragmentation grows only there.
    assert!(s2.fragmentation > 1.0 && s2.fragmentation < 2.0);
    assert_eq!(s2.runs, s1.runs + 1);

    // A new session computes the same signals (from the stored track, not
    // from memory of the previous append).
    let fresh = reopen(connector, "sig").await;
    let s3 = fresh
        .append_many(batch_with(3, 10, skewed(3, 10, DIM as usize)))
        .await
        .unwrap();
    let s3 = &s3.signals.fields["embedding"];
    assert_eq!(s3.n, 1610);
    assert_eq!(s3.runs, s2.runs + 1);
    assert!(s3.imbalance >= s2.imbalance);
}
