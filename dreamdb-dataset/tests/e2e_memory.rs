//! The P0 workflow on the in-memory backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "e2e_common.rs"]
mod e2e;

use std::sync::Arc;

use dreamdb_connector::memory::MemoryConnector;
use e2e::{check_reopened, workflow, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p0_workflow_on_memory() {
    let backend = Backend::Connector(Arc::new(MemoryConnector::new()));
    let outcome = workflow(&backend, "e2e-memory").await;
    check_reopened(&backend, &outcome).await;
}
