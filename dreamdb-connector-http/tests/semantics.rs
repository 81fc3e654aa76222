//! Conditional writes, ranges and pagination on a real radosgw.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

mod common;

use bytes::Bytes;
use dreamdb_connector::{
    ByteRange, Connector, ConnectorError, ConnectorExt, KeyPrefix, ObjectKey, PutMode, PutOutcome,
    Version,
};
use dreamdb_connector_http::HttpConnector;
use futures::StreamExt;

fn key(k: &str) -> ObjectKey {
    ObjectKey::new(k).unwrap()
}

#[tokio::test]
async fn conditional_puts() {
    let c = HttpConnector::connect(&common::prefixed_url("cas"))
        .await
        .unwrap();
    let k = key("refs/main");

    let PutOutcome::Written(v1) = c.put(&k, "one".into(), PutMode::Create).await.unwrap() else {
        panic!("first Create must write");
    };
    assert!(!v1.as_str().contains('"'), "ETags are normalised: {v1:?}");
    assert_eq!(
        c.put(&k, "two".into(), PutMode::Create).await.unwrap(),
        PutOutcome::AlreadyExists
    );
    let PutOutcome::Written(v2) = c
        .put(&k, "two".into(), PutMode::Update(v1.clone()))
        .await
        .unwrap()
    else {
        panic!("Update with the fresh version must write");
    };
    assert_ne!(v1, v2);
    assert_eq!(
        c.put(&k, "three".into(), PutMode::Update(v1.clone()))
            .await
            .unwrap(),
        PutOutcome::PreconditionFailed
    );
    // The quoted form of the fresh version is the same version.
    let quoted = Version::new(format!("\"{}\"", v2.as_str()));
    let PutOutcome::Written(v3) = c
        .put(&k, "four".into(), PutMode::Update(quoted))
        .await
        .unwrap()
    else {
        panic!("Update with a quoted fresh version must write");
    };
    let got = c.get(&k).await.unwrap();
    assert_eq!(got.bytes.as_ref(), b"four");
    assert_eq!(got.meta.version, v3);
    assert!(got.meta.last_modified.is_some());
    // Update of a missing key: radosgw answers 412.
    assert_eq!(
        c.put(&key("refs/none"), "x".into(), PutMode::Update(v3))
            .await
            .unwrap(),
        PutOutcome::PreconditionFailed
    );
    c.delete_prefix(&KeyPrefix::all(), 4).await.unwrap();
}

#[tokio::test]
async fn ranges_are_checked_against_the_object() {
    let c = HttpConnector::connect(&common::prefixed_url("ranges"))
        .await
        .unwrap();
    let k = key("blob");
    let data: Vec<u8> = (0..100u8).collect();
    let _ = c
        .put(&k, Bytes::from(data.clone()), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(
        c.get_range(&k, ByteRange::new(10, 20))
            .await
            .unwrap()
            .as_ref(),
        &data[10..20]
    );
    for (a, b) in [(90, 101), (100, 101), (5, 5), (7, 3)] {
        match c.get_range(&k, ByteRange::new(a, b)).await {
            Err(ConnectorError::InvalidRange { size, .. }) => assert_eq!(size, 100, "{a}-{b}"),
            other => panic!("{a}-{b}: {other:?}"),
        }
    }
    assert!(matches!(
        c.get_range(&key("nope"), ByteRange::new(0, 1)).await,
        Err(ConnectorError::NotFound { .. })
    ));
    c.delete(&k).await.unwrap();
}

#[tokio::test]
async fn keys_with_special_characters_round_trip() {
    let c = HttpConnector::connect(&common::prefixed_url("chars"))
        .await
        .unwrap();
    let names = [
        "a b/c+d",
        "x&y=z?w#v",
        "unicodé/ü",
        "pct%20lit",
        "tilde~/semi;colon",
    ];
    for n in names {
        let _ = c
            .put(&key(n), Bytes::from(n.to_owned()), PutMode::Overwrite)
            .await
            .unwrap();
        assert_eq!(
            c.get(&key(n)).await.unwrap().bytes.as_ref(),
            n.as_bytes(),
            "{n}"
        );
        assert_eq!(c.head(&key(n)).await.unwrap().size, n.len() as u64);
    }
    let listed: Vec<String> = c
        .list_all(&KeyPrefix::all())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key.to_string())
        .collect();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(listed, want);
    c.delete_prefix(&KeyPrefix::all(), 4).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_lazily() {
    let config = common::config("pages").with_list_page_size(7);
    let c = HttpConnector::connect_with(config).await.unwrap();
    let keys: Vec<ObjectKey> = (0..25).map(|i| key(&format!("obj/{i:03}"))).collect();
    futures::stream::iter(&keys)
        .for_each_concurrent(8, |k| {
            let c = &c;
            async move {
                let _ = c
                    .put(k, Bytes::from(k.to_string()), PutMode::Overwrite)
                    .await
                    .unwrap();
            }
        })
        .await;

    let before = c.request_count();
    let listed = c.list_all(&KeyPrefix::new("obj/").unwrap()).await.unwrap();
    let pages = c.request_count() - before;
    assert_eq!(
        listed.iter().map(|m| &m.key).collect::<Vec<_>>(),
        keys.iter().collect::<Vec<_>>()
    );
    assert!(listed
        .iter()
        .all(|m| m.size == 7 && m.last_modified.is_some()));
    assert_eq!(
        pages, 4,
        "25 objects at 7 per page take 4 ListObjectsV2 requests"
    );

    // Lazy: taking the first 3 fetches only the first page.
    let before = c.request_count();
    let prefix = KeyPrefix::new("obj/").unwrap();
    let first: Vec<_> = c.list(&prefix).take(3).collect().await;
    assert_eq!(first.len(), 3);
    assert_eq!(c.request_count() - before, 1);

    assert_eq!(c.delete_prefix(&KeyPrefix::all(), 8).await.unwrap(), 25);
}
