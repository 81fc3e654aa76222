//! Backend URL parsing: what each form means, what is refused, and that no
//! error repeats a password.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use bytes::Bytes;
use dreamdb_connector::{open_builtin, BackendUrl, ConnectorError, ObjectKey, PutMode};

fn local(path: &str) -> BackendUrl {
    BackendUrl::Local {
        root: PathBuf::from(path),
    }
}

#[test]
fn accepted_forms() {
    let http = |text: &str| BackendUrl::Http {
        url: url::Url::parse(text).unwrap(),
    };
    let cases: Vec<(&str, BackendUrl)> = vec![
        ("data/store", local("data/store")),
        ("./store", local("./store")),
        ("/var/lib/dreamdb", local("/var/lib/dreamdb")),
        ("./store:v2", local("./store:v2")),
        ("C:\\data", local("C:\\data")),
        ("file:///var/lib/dreamdb", local("/var/lib/dreamdb")),
        ("file://localhost/srv/x", local("/srv/x")),
        ("file:///with%20space", local("/with space")),
        ("memory://", BackendUrl::Memory { name: None }),
        (
            "memory://shared",
            BackendUrl::Memory {
                name: Some("shared".into()),
            },
        ),
        (
            "memory://shared/",
            BackendUrl::Memory {
                name: Some("shared".into()),
            },
        ),
        (
            "http://localhost:9000/bucket",
            http("http://localhost:9000/bucket"),
        ),
        (
            "https://s3.example.com/bucket/prefix/",
            http("https://s3.example.com/bucket/prefix/"),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(BackendUrl::parse(text).unwrap(), want, "{text}");
        assert_eq!(text.parse::<BackendUrl>().unwrap(), want, "{text}");
    }
}

#[test]
fn refused_forms() {
    let cases = [
        ("", "empty"),
        ("   ", "empty"),
        ("s3://bucket/x", "unsupported scheme"),
        ("ftp://host/bucket", "unsupported scheme"),
        ("store:v2", "unsupported scheme"),
        ("file://host/path", "three slashes"),
        ("file:relative", "two slashes"),
        ("http:host/bucket", "two slashes"),
        ("memory:", "two slashes"),
        ("memory://a/b", "memory store name"),
        ("memory://we ird", "memory store name"),
        ("http://", "host"),
        ("https://s3.example.com", "no bucket"),
        ("https://s3.example.com/", "no bucket"),
        ("https://s3.example.com/bucket?x=1", "no query"),
        ("https://s3.example.com/bucket#frag", "no query"),
    ];
    for (text, reason) in cases {
        match BackendUrl::parse(text) {
            Err(err @ ConnectorError::InvalidUrl { .. }) => {
                assert!(err.to_string().contains(reason), "{text:?}: {err}");
            }
            other => panic!("{text:?}: expected InvalidUrl, got {other:?}"),
        }
    }
}

#[test]
fn credentials_in_urls_are_refused_without_echoing_them() {
    let password = "hunter2-Sup3rS3cret";
    let cases = [
        format!("https://AKIAEXAMPLE:{password}@s3.example.com/bucket"),
        format!("http://user:{password}@localhost:9000/bucket/prefix"),
        format!("https://:{password}@s3.example.com/bucket"),
        format!("https://{password}@s3.example.com/bucket"),
        // Unparseable as a URL, but still never echoed.
        format!("https://user:{password}@[bad-host/bucket"),
    ];
    for text in &cases {
        let err = BackendUrl::parse(text).unwrap_err();
        let shown = err.to_string();
        let debug = format!("{err:?}");
        assert!(!shown.contains(password), "{shown}");
        assert!(!debug.contains(password), "{debug}");
        assert!(matches!(err, ConnectorError::InvalidUrl { .. }), "{shown}");
    }
    let err = BackendUrl::parse(&cases[0]).unwrap_err().to_string();
    assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
    assert!(err.contains("***@s3.example.com"), "{err}");
}

#[tokio::test]
async fn open_builtin_opens_memory_and_local_only() {
    let shared = BackendUrl::parse("memory://url-test-shared").unwrap();
    let a = open_builtin(&shared).unwrap().unwrap();
    let b = open_builtin(&shared).unwrap().unwrap();
    let k = ObjectKey::new("k").unwrap();
    a.put(&k, Bytes::from_static(b"x"), PutMode::Overwrite)
        .await
        .unwrap()
        .written()
        .unwrap();
    assert_eq!(b.get(&k).await.unwrap().bytes, "x");
    let fresh = open_builtin(&BackendUrl::parse("memory://").unwrap())
        .unwrap()
        .unwrap();
    assert!(fresh.get(&k).await.is_err());

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("new-store");
    let text = format!("file://{}", root.display());
    let store = open_builtin(&BackendUrl::parse(&text).unwrap())
        .unwrap()
        .unwrap();
    store
        .put(&k, Bytes::from_static(b"y"), PutMode::Overwrite)
        .await
        .unwrap()
        .written()
        .unwrap();
    assert_eq!(std::fs::read(root.join("k")).unwrap(), b"y");

    let http = BackendUrl::parse("https://s3.example.com/bucket").unwrap();
    assert!(open_builtin(&http).unwrap().is_none());
}
