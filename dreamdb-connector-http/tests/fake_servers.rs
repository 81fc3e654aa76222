//! Behaviour against small in-test fake servers on 127.0.0.1 modelling
//! servers that cannot be installed here: one that ignores conditional
//! headers (as Garage does), and answers (409, clamped ranges) that radosgw
//! does not produce on demand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use common::{fast_retry, Canned, FakeServer};
use dreamdb_connector::{
    ByteRange, Connector, ConnectorError, ObjectKey, PutMode, PutOutcome, Version,
};
use dreamdb_connector_http::{Credentials, HttpConfig, HttpConnector, IfMatchForm};

fn key(k: &str) -> ObjectKey {
    ObjectKey::new(k).unwrap()
}

fn config(port: u16) -> HttpConfig {
    HttpConfig::from_url(&format!("http://127.0.0.1:{port}/bucket/pre"))
        .unwrap()
        .with_credentials(Some(Credentials::new("AKID", "fake-secret", None)))
        .with_retry(fast_retry(3))
}

fn ok_put(n: usize) -> Canned {
    Canned::new(200, "OK").header("ETag", &format!("\"etag-{n}\""))
}

#[tokio::test]
async fn a_server_ignoring_if_none_match_is_refused() {
    let server = FakeServer::start(|n, req| match req.method.as_str() {
        "PUT" => ok_put(n),
        "DELETE" => Canned::new(204, "No Content"),
        _ => Canned::new(404, "Not Found").s3_error("NoSuchKey"),
    })
    .await;
    let err = HttpConnector::connect_with(config(server.port))
        .await
        .unwrap_err();
    match &err {
        ConnectorError::Unsupported { backend, reason } => {
            assert_eq!(
                backend,
                &format!("http://127.0.0.1:{}/bucket/pre", server.port)
            );
            assert!(reason.contains("If-None-Match"), "{reason}");
            assert!(reason.contains("Garage"), "{reason}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    let seen = server.seen();
    assert_eq!(seen[0].header("if-none-match"), Some("*"));
    assert!(
        seen[0].target.starts_with("/bucket/pre/.dreamdb-probe/"),
        "{}",
        seen[0].target
    );
    assert_eq!(
        seen.last().unwrap().method,
        "DELETE",
        "the probe key is removed"
    );
    assert!(!format!("{err:?}").contains("fake-secret"));
}

#[tokio::test]
async fn a_server_ignoring_if_match_is_refused() {
    // Honours If-None-Match, ignores If-Match.
    let server = FakeServer::start(|n, req| match req.method.as_str() {
        "PUT" if n == 2 => Canned::new(412, "Precondition Failed").s3_error("PreconditionFailed"),
        "PUT" => ok_put(n),
        "DELETE" => Canned::new(204, "No Content"),
        _ => Canned::new(404, "Not Found"),
    })
    .await;
    let err = HttpConnector::connect_with(config(server.port))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ConnectorError::Unsupported { reason, .. } if reason.contains("stale")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_quoted_form_is_learned_where_it_works() {
    // A strict RFC 9110 server: If-Match must be quoted and current.
    use std::sync::Mutex;
    let current = Mutex::new(String::new());
    let server = FakeServer::start(move |n, req| {
        let mut current = current.lock().unwrap();
        match req.method.as_str() {
            "PUT" => {
                let ok = match (req.header("if-none-match"), req.header("if-match")) {
                    (Some("*"), _) => current.is_empty(),
                    (_, Some(tag)) => *tag == format!("\"{current}\""),
                    _ => true,
                };
                if ok {
                    *current = format!("v{n}");
                    Canned::new(200, "OK").header("ETag", &format!("\"v{n}\""))
                } else {
                    Canned::new(412, "Precondition Failed")
                }
            }
            "DELETE" => {
                current.clear();
                Canned::new(204, "No Content")
            }
            _ => Canned::new(404, "Not Found"),
        }
    })
    .await;
    let c = HttpConnector::connect_with(config(server.port))
        .await
        .unwrap();
    assert_eq!(c.if_match_form(), IfMatchForm::Quoted);
}

#[tokio::test]
async fn conditional_conflicts_are_never_success() {
    // 409 ConditionalRequestConflict on every PUT; HEAD finds the key.
    let server = FakeServer::start(|_, req| match req.method.as_str() {
        "PUT" => Canned::new(409, "Conflict").s3_error("ConditionalRequestConflict"),
        "HEAD" => Canned::new(200, "OK")
            .header("ETag", "\"other\"")
            .header("Content-Length", "0"),
        _ => Canned::new(404, "Not Found"),
    })
    .await;
    let c = HttpConnector::connect_with(
        config(server.port).with_if_match_form(Some(IfMatchForm::Quoted)),
    )
    .await
    .unwrap();
    assert_eq!(
        c.put(&key("r"), "x".into(), PutMode::Create).await.unwrap(),
        PutOutcome::AlreadyExists
    );
    assert_eq!(
        c.put(&key("r"), "x".into(), PutMode::Update(Version::new("v")))
            .await
            .unwrap(),
        PutOutcome::PreconditionFailed
    );
    let methods: Vec<String> = server.seen().iter().map(|r| r.method.clone()).collect();
    assert_eq!(
        methods,
        ["PUT", "HEAD", "PUT"],
        "409 is not retried blindly"
    );
}

#[tokio::test]
async fn a_conflicting_create_on_a_missing_key_is_retried() {
    // 409, HEAD says absent, then the retried create goes through.
    let server = FakeServer::start(|n, req| match (n, req.method.as_str()) {
        (1, "PUT") => Canned::new(409, "Conflict").s3_error("ConditionalRequestConflict"),
        (_, "PUT") => ok_put(n),
        _ => Canned::new(404, "Not Found"),
    })
    .await;
    let c = HttpConnector::connect_with(
        config(server.port).with_if_match_form(Some(IfMatchForm::Quoted)),
    )
    .await
    .unwrap();
    assert_eq!(
        c.put(&key("r"), "x".into(), PutMode::Create).await.unwrap(),
        PutOutcome::Written(Version::new("etag-3"))
    );
    let methods: Vec<String> = server.seen().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["PUT", "HEAD", "PUT"]);
}

#[tokio::test]
async fn clamped_and_short_ranges_are_refused() {
    let server = FakeServer::start(|_, req| {
        match req.header("range") {
            // Clamped to the object's end, as S3 servers do.
            Some("bytes=5-14") => Canned::new(206, "Partial Content")
                .header("Content-Range", "bytes 5-9/10")
                .header("ETag", "\"e\""),
            _ => Canned::new(416, "Range Not Satisfiable").header("Content-Range", "bytes */10"),
        }
    })
    .await;
    let c = HttpConnector::connect_with(
        config(server.port).with_if_match_form(Some(IfMatchForm::Quoted)),
    )
    .await
    .unwrap();
    for (a, b) in [(5, 15), (20, 30)] {
        match c.get_range(&key("r"), ByteRange::new(a, b)).await {
            Err(ConnectorError::InvalidRange { size: 10, .. }) => {}
            other => panic!("{a}-{b}: {other:?}"),
        }
    }
    let seen = server.seen();
    assert!(seen[0]
        .header("authorization")
        .unwrap()
        .starts_with("AWS4-HMAC-SHA256 Credential=AKID/"));
    assert!(seen[0].header("x-amz-content-sha256").is_some());
}

#[tokio::test]
async fn listings_skip_probe_keys_and_foreign_markers() {
    let server = FakeServer::start(|_, _| {
        let mut page = Canned::new(200, "OK").header("Content-Type", "application/xml");
        page.body = "<?xml version=\"1.0\"?><ListBucketResult><IsTruncated>false</IsTruncated>\
            <Contents><Key>pre/.dreamdb-probe/0123</Key><Size>1</Size><ETag>\"p\"</ETag></Contents>\
            <Contents><Key>pre/a&amp;b</Key><Size>2</Size><ETag>\"a\"</ETag>\
            <LastModified>2026-11-23T18:16:00.000Z</LastModified></Contents>\
            <Contents><Key>pre/dir/</Key><Size>0</Size><ETag>\"d\"</ETag></Contents>\
            </ListBucketResult>"
            .to_owned();
        page
    })
    .await;
    let c = HttpConnector::connect_with(
        config(server.port)
            .with_if_match_form(Some(IfMatchForm::Quoted))
            .with_list_page_size(3),
    )
    .await
    .unwrap();
    let listed = dreamdb_connector::ConnectorExt::list_all(&c, &Default::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key.as_str(), "a&b");
    assert_eq!(listed[0].version, Version::new("a"));
    assert!(listed[0].last_modified.is_some());
    let target = &server.seen()[0].target;
    assert!(target.starts_with("/bucket?"), "{target}");
    for part in ["list-type=2", "max-keys=3", "prefix=pre%2F"] {
        assert!(target.contains(part), "{target}");
    }
}
