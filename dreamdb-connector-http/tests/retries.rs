//! Retries through a fault-injecting TCP proxy in front of the real server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{fast_retry, Fault, FaultProxy};
use dreamdb_connector::{Connector, ConnectorError, ObjectKey, PutMode, PutOutcome};
use dreamdb_connector_http::{Credentials, HttpConnector, RetryPolicy};

fn key(k: &str) -> ObjectKey {
    ObjectKey::new(k).unwrap()
}

/// A connector straight to radosgw on `prefix` (to set up and check state).
async fn direct(prefix: &str) -> HttpConnector {
    HttpConnector::connect(&format!("{}/{prefix}", common::s3_url()))
        .await
        .unwrap()
}

#[tokio::test]
async fn get_and_put_succeed_after_two_slow_downs() {
    let prefix = common::unique_prefix("retry-ok");
    let proxy = FaultProxy::start(Fault::SlowDownFirst(2)).await;
    let c = HttpConnector::connect_with(common::config_via(proxy.port, &prefix, fast_retry(5)))
        .await
        .unwrap();
    let outcome = c
        .put(&key("a"), Bytes::from_static(b"hello"), PutMode::Create)
        .await
        .unwrap();
    assert!(matches!(outcome, PutOutcome::Written(_)), "{outcome:?}");
    assert_eq!(
        proxy.requests(),
        3,
        "2 × 503, then the PUT that went through"
    );
    assert_eq!(c.request_count(), 3);

    let proxy = FaultProxy::start(Fault::SlowDownFirst(2)).await;
    let c = HttpConnector::connect_with(common::config_via(proxy.port, &prefix, fast_retry(5)))
        .await
        .unwrap();
    assert_eq!(c.get(&key("a")).await.unwrap().bytes.as_ref(), b"hello");
    assert_eq!(proxy.requests(), 3);
    assert!(proxy.seen().iter().all(|r| r.method == "GET"));
    direct(&prefix).await.delete(&key("a")).await.unwrap();
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let prefix = common::unique_prefix("retry-4xx");
    // 404: one request.
    let proxy = FaultProxy::start(Fault::SlowDownFirst(0)).await;
    let c = HttpConnector::connect_with(common::config_via(proxy.port, &prefix, fast_retry(5)))
        .await
        .unwrap();
    assert!(matches!(
        c.get(&key("missing")).await,
        Err(ConnectorError::NotFound { .. })
    ));
    assert_eq!(proxy.requests(), 1);
    // 412: one request.
    let PutOutcome::Written(_) = c.put(&key("x"), "1".into(), PutMode::Create).await.unwrap()
    else {
        panic!("create");
    };
    let before = proxy.requests();
    assert_eq!(
        c.put(&key("x"), "2".into(), PutMode::Create).await.unwrap(),
        PutOutcome::AlreadyExists
    );
    assert_eq!(proxy.requests() - before, 1);
    c.delete(&key("x")).await.unwrap();

    // 403 (wrong secret): one request.
    let proxy = FaultProxy::start(Fault::SlowDownFirst(0)).await;
    let id = std::env::var("AWS_ACCESS_KEY_ID").unwrap();
    let config = common::config_via(proxy.port, &prefix, fast_retry(5))
        .with_credentials(Some(Credentials::new(id, "not-the-secret", None)));
    let c = HttpConnector::connect_with(config).await.unwrap();
    assert!(matches!(
        c.get(&key("a")).await,
        Err(ConnectorError::Auth { .. })
    ));
    assert_eq!(proxy.requests(), 1);
}

#[tokio::test]
async fn retry_budget_exhaustion_reports_the_503() {
    let proxy = FaultProxy::start(Fault::AlwaysSlowDown).await;
    let prefix = common::unique_prefix("retry-exhaust");
    let c = HttpConnector::connect_with(common::config_via(proxy.port, &prefix, fast_retry(4)))
        .await
        .unwrap();
    let err = c.get(&key("a")).await.unwrap_err();
    match &err {
        ConnectorError::Backend {
            status: Some(503),
            message,
            ..
        } => assert!(
            message.contains("SlowDown") && message.contains("4 attempts"),
            "{message}"
        ),
        other => panic!("expected Backend 503, got {other:?}"),
    }
    assert!(err.is_transient());
    assert_eq!(proxy.requests(), 4);

    // Bounded in time too: a 300 ms budget stops retries long before 1000 attempts.
    let proxy = FaultProxy::start(Fault::AlwaysSlowDown).await;
    let policy = RetryPolicy {
        max_attempts: 1000,
        max_elapsed: Duration::from_millis(300),
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(100),
    };
    let c = HttpConnector::connect_with(common::config_via(proxy.port, &prefix, policy))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert!(c.get(&key("a")).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(proxy.requests() < 50, "{}", proxy.requests());
}

#[tokio::test]
async fn timeouts_are_retried() {
    let prefix = common::unique_prefix("retry-timeout");
    let d = direct(&prefix).await;
    let _ = d
        .put(&key("a"), "slow".into(), PutMode::Overwrite)
        .await
        .unwrap();
    let proxy = FaultProxy::start(Fault::StallFirst(1)).await;
    let config = common::config_via(proxy.port, &prefix, fast_retry(3))
        .with_timeouts(Duration::from_millis(500), Duration::from_secs(2));
    let c = HttpConnector::connect_with(config).await.unwrap();
    assert_eq!(c.get(&key("a")).await.unwrap().bytes.as_ref(), b"slow");
    assert_eq!(proxy.requests(), 2);
    d.delete(&key("a")).await.unwrap();
}

/// The first attempt of a conditional PUT reaches the server and succeeds,
/// but its answer is lost; the retry gets 412 and that is reported as is
/// (the protocol layer re-reads to find out it was its own write).
#[tokio::test]
async fn a_lost_answer_is_reported_honestly() {
    let prefix = common::unique_prefix("retry-ambiguous");
    let proxy = FaultProxy::start(Fault::DropAnswerFirst(1)).await;
    let c = HttpConnector::connect_with(common::config_via(proxy.port, &prefix, fast_retry(5)))
        .await
        .unwrap();
    let outcome = c
        .put(&key("ref"), "mine".into(), PutMode::Create)
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::AlreadyExists);
    assert_eq!(proxy.requests(), 2);
    let d = direct(&prefix).await;
    let stored = d.get(&key("ref")).await.unwrap();
    assert_eq!(
        stored.bytes.as_ref(),
        b"mine",
        "our first attempt did write"
    );

    // Same for Update: the retry's If-Match names the version we replaced.
    let proxy = FaultProxy::start(Fault::DropAnswerFirst(1)).await;
    let c = HttpConnector::connect_with(common::config_via(proxy.port, &prefix, fast_retry(5)))
        .await
        .unwrap();
    let outcome = c
        .put(
            &key("ref"),
            "next".into(),
            PutMode::Update(stored.meta.version),
        )
        .await
        .unwrap();
    assert_eq!(outcome, PutOutcome::PreconditionFailed);
    assert_eq!(d.get(&key("ref")).await.unwrap().bytes.as_ref(), b"next");
    d.delete(&key("ref")).await.unwrap();
}
