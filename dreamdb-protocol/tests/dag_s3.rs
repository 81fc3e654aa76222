//! The DAG on an S3-compatible backend: the racing writers and the
//! model-based property test against the URL in `DREAMDB_TEST_S3_URL`
//! (e.g. `http://127.0.0.1:9000/bucket/prefix`, credentials from the usual
//! environment). This file exists to run against S3: without the variable
//! its tests FAIL with a message saying so (run the other `dag_*` tests
//! for the local backends).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dag_support;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use dag_support::model::{ops, run_model_on};
use dag_support::*;
use dreamdb_connector::Connector;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};

const URL_VAR: &str = "DREAMDB_TEST_S3_URL";

async fn s3() -> Arc<dyn Connector> {
    let url = std::env::var(URL_VAR).unwrap_or_else(|_| {
        panic!("{URL_VAR} is not set: dag_s3 tests need an S3-compatible endpoint URL")
    });
    dreamdb_connector_http::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}: {e}"))
}

/// A dataset name no earlier run used.
fn fresh_dataset(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("dag-{tag}-{nanos}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_two_writers_race() {
    const COMMITS: usize = 8;
    let dataset = fresh_dataset("race");
    let setup = repo_named(s3().await, &dataset);
    create(&setup).await;
    // Two writers with their own connectors and sessions.
    let mut tasks = Vec::new();
    for w in 0..2 {
        let repo = repo_named(s3().await, &dataset);
        tasks.push(tokio::spawn(
            async move { race_writer(&repo, w, COMMITS).await },
        ));
    }
    let mut published = Vec::new();
    let mut attempts = 0;
    for t in tasks {
        let (p, a) = t.await.unwrap();
        published.extend(p);
        attempts += a;
    }
    println!("S3: 2 writers x {COMMITS} commits, {attempts} attempts");
    let fresh = repo_named(s3().await, &dataset);
    check_race(&fresh, &published, 2, COMMITS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_dag_agrees_with_model() {
    let connector = s3().await;
    let mut runner = TestRunner::new(Config {
        cases: 4,
        ..Config::default()
    });
    let strategy = ops(20);
    for case in 0..4 {
        let tree = strategy.new_tree(&mut runner).unwrap();
        let ops = tree.current();
        let repo = repo_named(connector.clone(), &fresh_dataset(&format!("model{case}")));
        run_model_on(&repo, &ops).await;
    }
}
