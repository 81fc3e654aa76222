//! Ada-IVF steps between appends from a handle opened before them, on a
//! local directory: every record keeps its exact raw vector, also after a
//! step moved the last cell runs out of a bucket whose anchor run stays
//! (the reader then finds the rows through the anchor run's storage, spec
//! 0007 T2), and after a tips-only GC with no grace (the storage stays
//! reachable through that anchor run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "reliability_support/mod.rs"]
mod support;

use dreamdb_core::time::Ticks;
use dreamdb_dataset::dataset::{CreateOptions, OpenOptions};
use dreamdb_dataset::maintain::AdaIvfStepOptions;
use dreamdb_dataset::Dataset;
use dreamdb_protocol::maintenance::{gc, now_unix_nanos, GcOptions};
use support::*;

const ROWS: usize = 24;
const BLOB: usize = 300;

async fn append(ds: &Dataset, from: u64, to: u64) -> Vec<Ack> {
    append_batches(ds, 1, (from, to), ROWS, BLOB).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_between_steps_keep_their_raw_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_owned();
    let ds = Dataset::create(&url, DATASET, schema(), CreateOptions::default())
        .await
        .unwrap();
    let mut acks = append(&ds, 0, 6).await;
    let open = || Dataset::open(&url, DATASET, OpenOptions::default());
    // Every cell is as dense as the mean: a split threshold under 1 makes
    // each step split, so records move again and again.
    let step = AdaIvfStepOptions::new(0.9, 0.2);
    open()
        .await
        .unwrap()
        .ada_ivf_step("embedding", step)
        .await
        .unwrap();
    let mut rewritten = 0;
    for _ in 0..6 {
        let next = acks.len() as u64;
        acks.extend(append(&ds, next, next + 3).await);
        let report = open()
            .await
            .unwrap()
            .ada_ivf_step("embedding", step)
            .await
            .unwrap();
        rewritten += report.cells_rewritten;
        check_batches(&open().await.unwrap(), &acks, &|_, _| ROWS, &|_, _| BLOB, 1).await;
    }
    assert!(rewritten > 0, "no step moved a record");
    let connector = dreamdb_connector_http::connect(&url).await.unwrap();
    let mut options = GcOptions::new(Ticks::ZERO, now_unix_nanos());
    options.keep_manifests = Some(1);
    gc(connector.clone(), &options).await.unwrap();
    verify_clean(connector).await;
    dreamdb_dataset::read::clear_decoded_caches();
    check_batches(&open().await.unwrap(), &acks, &|_, _| ROWS, &|_, _| BLOB, 1).await;
}
