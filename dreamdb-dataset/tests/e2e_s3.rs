//! The P0 workflow on the S3-compatible test server. The test command
//! (`scripts/test`) starts the server and sets `DREAMDB_TEST_S3_URL`
//! (`http://127.0.0.1:<port>/<bucket>`, credentials in `AWS_*`); without
//! it this test FAILS — it never silently skips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "e2e_common.rs"]
mod e2e;

use std::time::{SystemTime, UNIX_EPOCH};

use e2e::{check_reopened, workflow, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p0_workflow_on_the_s3_compatible_server() {
    let Ok(url) = std::env::var("DREAMDB_TEST_S3_URL") else {
        panic!(
            "DREAMDB_TEST_S3_URL is not set: this test needs the S3-compatible test server. \
             Run it through ./scripts/test, or start it by hand: \
             `scripts/s3-server start && eval \"$(scripts/s3-server env)\"`"
        );
    };
    // A fresh prefix per run: the bucket is shared by runs and tests.
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let url = format!("{}/dataset-e2e-{run}", url.trim_end_matches('/'));
    let backend = Backend::Url(url.clone());
    let outcome = workflow(&backend, "e2e-s3").await;
    // Another session (new connection, cold cache) sees the final state.
    check_reopened(&Backend::Url(url), &outcome).await;
}
