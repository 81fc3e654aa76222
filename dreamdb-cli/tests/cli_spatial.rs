//! The spatial maintenance verbs (`compact`, `rebuild-ivf`,
//! `publish-rabitq`, `ada-ivf-status`, `ada-ivf-step`) run as the built
//! binary on a local directory: every verb, its exit status, gc safety
//! after compaction, and Ada-IVF on skewed data (see `spatial_support`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "spatial_support/mod.rs"]
mod spatial;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_then_gc_removes_deleted_bytes_and_keeps_every_version() {
    let dir = tempfile::tempdir().unwrap();
    spatial::gc_after_compaction(dir.path().to_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ada_ivf_verbs_on_skewed_data() {
    let dir = tempfile::tempdir().unwrap();
    spatial::ada_ivf(dir.path().to_str().unwrap()).await;
}
