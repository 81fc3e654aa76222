//! Authentication failures name the backend and the S3 error code, and
//! never contain the secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use dreamdb_connector::{Connector, ConnectorError, ObjectKey, PutMode};
use dreamdb_connector_http::{Credentials, HttpConnector, IfMatchForm};

const WRONG_SECRET: &str = "wrong-secret-0123456789-do-not-print";

fn assert_auth(err: &ConnectorError, backend: &str, code: &str) {
    let ConnectorError::Auth {
        backend: named,
        message,
    } = err
    else {
        panic!("expected Auth, got {err:?}");
    };
    assert_eq!(named, backend);
    let display = err.to_string();
    let debug = format!("{err:?}");
    assert!(display.contains(backend), "{display}");
    assert!(message.contains(code), "{message}");
    for text in [&display, &debug] {
        assert!(!text.contains(WRONG_SECRET), "{text}");
        assert!(!text.contains(&common::secret()), "{text}");
    }
}

fn wrong_credentials() -> Credentials {
    let id = std::env::var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID is set");
    Credentials::new(id, WRONG_SECRET, None)
}

#[tokio::test]
async fn wrong_secret_is_an_auth_error() {
    let config = common::config("auth").with_credentials(Some(wrong_credentials()));
    let backend = config.describe();
    // `connect` probes with a PUT, which the server refuses (unless this
    // process already probed this bucket, when the first request fails).
    let err = match HttpConnector::connect_with(config).await {
        Err(err) => err,
        Ok(c) => c.get(&ObjectKey::new("x").unwrap()).await.unwrap_err(),
    };
    assert_auth(&err, &backend, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn wrong_secret_on_every_operation() {
    let config = common::config("auth-ops")
        .with_credentials(Some(wrong_credentials()))
        .with_if_match_form(Some(IfMatchForm::Unquoted));
    let backend = config.describe();
    let c = HttpConnector::connect_with(config).await.unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains(WRONG_SECRET), "{debug}");
    let key = ObjectKey::new("k").unwrap();
    assert_auth(
        &c.get(&key).await.unwrap_err(),
        &backend,
        "SignatureDoesNotMatch",
    );
    assert_auth(
        &c.put(&key, "x".into(), PutMode::Create).await.unwrap_err(),
        &backend,
        "SignatureDoesNotMatch",
    );
    // HEAD answers have no body, hence no code: still Auth, with the status.
    assert_auth(&c.head(&key).await.unwrap_err(), &backend, "403");
    let listed = futures::StreamExt::collect::<Vec<_>>(c.list(&Default::default())).await;
    assert_auth(
        listed[0].as_ref().unwrap_err(),
        &backend,
        "SignatureDoesNotMatch",
    );
}

#[tokio::test]
async fn unknown_access_key_is_an_auth_error() {
    let config = common::config("auth-key")
        .with_credentials(Some(Credentials::new("NOSUCHKEY", WRONG_SECRET, None)))
        .with_if_match_form(Some(IfMatchForm::Unquoted));
    let backend = config.describe();
    let c = HttpConnector::connect_with(config).await.unwrap();
    let err = c.get(&ObjectKey::new("k").unwrap()).await.unwrap_err();
    assert_auth(&err, &backend, "InvalidAccessKeyId");
}

#[tokio::test]
async fn unsigned_requests_are_refused() {
    let config = common::config("anon").with_credentials(None);
    let backend = config.describe();
    let err = match HttpConnector::connect_with(config).await {
        Err(err) => err,
        Ok(c) => c.get(&ObjectKey::new("x").unwrap()).await.unwrap_err(),
    };
    assert_auth(&err, &backend, "AccessDenied");
    assert!(err.to_string().contains("unsigned"), "{err}");
}
