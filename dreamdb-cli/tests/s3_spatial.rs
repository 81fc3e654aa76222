//! The spatial maintenance verbs against the S3-compatible test server
//! (`DREAMDB_TEST_S3_URL`, set by `scripts/test`). Without it these tests
//! FAIL — they never silently skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "spatial_support/mod.rs"]
mod spatial;

use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh prefix of the test bucket.
fn url(test: &str) -> String {
    let Ok(base) = std::env::var("DREAMDB_TEST_S3_URL") else {
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
    format!("{}/cli-spatial-{test}-{run}", base.trim_end_matches('/'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_then_gc_on_s3() {
    spatial::gc_after_compaction(&url("gc")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ada_ivf_verbs_on_s3() {
    spatial::ada_ivf(&url("ada")).await;
}
