//! The shared conformance suite against a real radosgw (see
//! `scripts/s3-server`), signed with SigV4, with and without a key prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use std::sync::Arc;

use dreamdb_connector::conformance::{counter_race, run_all};
use dreamdb_connector::{Connector, ConnectorExt, KeyPrefix, ObjectKey};
use dreamdb_connector_http::{connect, HttpConnector, IfMatchForm, PayloadSigning};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_passes_with_a_prefix() {
    let url = common::prefixed_url("suite");
    let connector = HttpConnector::connect(&url).await.unwrap();
    assert!(
        connector.config().credentials.is_some(),
        "signed with SigV4"
    );
    let report = run_all(Arc::new(connector))
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.counter_value, 200);
    println!("{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_passes_at_the_bucket_root() {
    // No connector prefix: the suite works under its own random prefix.
    let connector = HttpConnector::connect(&common::s3_url()).await.unwrap();
    assert_eq!(connector.config().prefix.as_str(), "");
    assert_eq!(connector.describe(), common::s3_url());
    let report = run_all(Arc::new(connector))
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    println!("{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn suite_passes_with_unsigned_payloads() {
    let config = common::config("suite-unsigned").with_payload_signing(PayloadSigning::Unsigned);
    let connector = HttpConnector::connect_with(config).await.unwrap();
    run_all(Arc::new(connector))
        .await
        .unwrap_or_else(|f| panic!("{f}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counter_race_is_exact() {
    let connector: Arc<dyn Connector> = Arc::new(
        HttpConnector::connect(&common::prefixed_url("counter"))
            .await
            .unwrap(),
    );
    let key = ObjectKey::new("refs/counter").unwrap();
    let value = counter_race(Arc::clone(&connector), &key, 8, 25)
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(value, 200);
    connector.delete_prefix(&KeyPrefix::all(), 8).await.unwrap();
}

#[tokio::test]
async fn radosgw_wants_unquoted_if_match() {
    let connector = HttpConnector::connect(&common::prefixed_url("form"))
        .await
        .unwrap();
    assert_eq!(connector.if_match_form(), IfMatchForm::Unquoted);
    // The probe cleans up after itself and its keys are never listed.
    assert!(connector
        .list_all(&KeyPrefix::all())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn probe_runs_uncached_and_learns_unquoted() {
    // A fresh probe (not the cached answer) reaches the same conclusion.
    dreamdb_connector_http::clear_probe_cache();
    let connector = HttpConnector::connect(&common::prefixed_url("probe-fresh"))
        .await
        .unwrap();
    assert_eq!(connector.if_match_form(), IfMatchForm::Unquoted);
}

#[tokio::test]
async fn connect_opens_every_kind_of_url() {
    let http = connect(&common::prefixed_url("entry")).await.unwrap();
    let key = ObjectKey::new("a/b").unwrap();
    let _ = http
        .put(&key, "x".into(), dreamdb_connector::PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(http.get(&key).await.unwrap().bytes.as_ref(), b"x");
    http.delete(&key).await.unwrap();
    assert!(http.describe().starts_with(&common::s3_url()));
    assert!(!http.describe().contains(&common::secret()));

    let memory = connect("memory://").await.unwrap();
    assert!(memory.describe().starts_with("memory://"));

    let dir =
        std::env::temp_dir().join(format!("dreamdb-http-test-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let local = connect(dir.to_str().unwrap()).await.unwrap();
    let _ = local
        .put(&key, "y".into(), dreamdb_connector::PutMode::Create)
        .await
        .unwrap();
    assert_eq!(local.get(&key).await.unwrap().bytes.as_ref(), b"y");
    std::fs::remove_dir_all(&dir).unwrap();

    assert!(matches!(
        connect("s3://bucket").await,
        Err(dreamdb_connector::ConnectorError::InvalidUrl { .. })
    ));
}
