//! `gc` and `verify` of the built binary against the S3-compatible server
//! in `DREAMDB_TEST_S3_URL` (credentials from the usual `AWS_*`
//! variables, set by the test command: `eval "$(scripts/s3-server env)"`).
//! This file exists to run against S3: without the variable its tests FAIL
//! with a message saying so. Each test works under a fresh key prefix, so
//! GC never sees other tests' objects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use dreamdb_connector::PutMode;
use dreamdb_protocol::objects::object_key;

const URL_VAR: &str = "DREAMDB_TEST_S3_URL";

/// A fresh prefix of the test bucket.
fn fresh_backend(tag: &str) -> String {
    let url = std::env::var(URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{URL_VAR} is not set: s3_maintenance tests need an S3-compatible endpoint \
             (run `eval \"$(scripts/s3-server env)\"` first)"
        )
    });
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}/cli-{tag}-{nanos}", url.trim_end_matches('/'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_and_verify_on_s3() {
    let backend = fresh_backend("gc");
    let connector = dreamdb_connector_http::connect(&backend).await.unwrap();
    let repo = repo_on(connector.clone());
    let main = history(&repo).await;
    let garbage = segment(&repo, 4242, "garbage").await;

    let clean = json(&backend, &["verify"], 0);
    assert_eq!(clean["clean"], true);
    assert_eq!(clean["manifests_checked"], 6);

    let dry = json(
        &backend,
        &["gc", "--keep-manifests", "2", "--grace", "0s", "--dry-run"],
        0,
    );
    let planned = dry["deleted"].as_array().unwrap().clone();
    assert!(planned.contains(&serde_json::json!(garbage.to_hex())));
    assert!(planned.contains(&serde_json::json!(main[0].to_hex())));
    let real = json(
        &backend,
        &["gc", "--keep-manifests", "2", "--grace", "0s"],
        0,
    );
    assert_eq!(real["deleted"].as_array().unwrap(), &planned);
    let after = json(&backend, &["verify"], 0);
    assert_eq!(after["clean"], true);

    // Corrupt a reachable object: verify exits 4 naming it.
    let tip = repo
        .read_ref(&name("main"))
        .await
        .unwrap()
        .unwrap()
        .manifest;
    let m = repo.manifest(&tip).await.unwrap();
    let key = object_key(&m.schema);
    let mut bytes = connector.get(&key).await.unwrap().bytes.to_vec();
    bytes.truncate(bytes.len() - 1);
    let _ = connector
        .put(&key, bytes.into(), PutMode::Overwrite)
        .await
        .unwrap();
    let damaged = json(&backend, &["verify"], 4);
    assert_eq!(damaged["bad"][0]["hash"], m.schema.to_hex());
    assert_eq!(damaged["bad"][0]["class"], "hash-mismatch");
}

#[test]
fn a_wrong_secret_fails_without_printing_it() {
    let backend = fresh_backend("secret");
    let secret = "wR0ng-S3cret-0f-This-Test-Do-Not-Print";
    for args in [
        vec!["gc", "--keep-manifests", "1", "--dry-run"],
        vec!["verify"],
        vec!["--json", "verify"],
        vec!["log"],
    ] {
        let out = run_env(
            &backend,
            &args,
            &[
                ("AWS_SECRET_ACCESS_KEY", secret),
                ("AWS_ACCESS_KEY_ID", "dreamdb-wrong"),
            ],
        );
        assert_eq!(code(&out), 1, "{args:?}: {}", stderr(&out));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!all.contains(secret), "{args:?} printed the secret: {all}");
        assert!(
            !all.contains("wR0ng"),
            "{args:?} printed part of the secret"
        );
        assert!(!stderr(&out).is_empty(), "{args:?}: no error message");
    }
}
