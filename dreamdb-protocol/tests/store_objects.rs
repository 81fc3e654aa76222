//! The content-addressed object store: round trips, verification on every
//! read, the byte-bounded session cache and its effect on I/O.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bytes::Bytes;
use ciborium::value::Value;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::wrappers::{CountingConnector, OpKind};
use dreamdb_connector::{ByteRange, Connector, PutMode};
use dreamdb_core::cbor;
use dreamdb_core::ContentHash;
use dreamdb_protocol::store::{object_key, IntegrityReason, ObjectStore, StoreError};
use serde::{Deserialize, Serialize};

fn counting(cache: u64) -> (ObjectStore, Arc<CountingConnector<MemoryConnector>>) {
    let c = Arc::new(CountingConnector::new(MemoryConnector::new()));
    (ObjectStore::new(c.clone(), cache), c)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Thing {
    kind: String,
    v: u64,
    name: String,
}

#[tokio::test]
async fn round_trip_bytes_and_values() {
    let (store, _) = counting(1 << 20);
    let hash = store.put_bytes(Bytes::from_static(b"hello")).await.unwrap();
    assert_eq!(hash, ContentHash::of(b"hello"));
    assert_eq!(&store.get_bytes(&hash).await.unwrap()[..], b"hello");
    assert!(store.exists(&hash).await.unwrap());

    let thing = Thing {
        kind: "thing".into(),
        v: 1,
        name: "x".into(),
    };
    let h = store.put(&thing).await.unwrap();
    assert_eq!(h, ContentHash::of(&cbor::to_vec(&thing).unwrap()));
    assert_eq!(store.get::<Thing>(&h).await.unwrap(), thing);

    // A fresh session (no cache) reads the same objects from the backend.
    let cold = ObjectStore::new(store.connector().clone(), 0);
    assert_eq!(cold.get::<Thing>(&h).await.unwrap(), thing);
    assert!(cold.exists(&h).await.unwrap());
    assert!(!cold.exists(&ContentHash::of(b"absent")).await.unwrap());
}

#[tokio::test]
async fn objects_live_under_their_content_address() {
    let (store, conn) = counting(0);
    let hash = store.put_bytes(Bytes::new()).await.unwrap();
    let key = object_key(&hash).unwrap();
    assert_eq!(
        key.as_str(),
        "objects/af/1eaf1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
    assert!(conn.inner().get(&key).await.is_ok());
}

#[tokio::test]
async fn a_flipped_byte_is_an_integrity_error_naming_the_object() {
    let (store, conn) = counting(0);
    let hash = store
        .put_bytes(Bytes::from_static(b"precious data"))
        .await
        .unwrap();
    let key = object_key(&hash).unwrap();
    let mut corrupt = b"precious data".to_vec();
    corrupt[3] ^= 0x01;
    let _ = conn
        .inner()
        .put(&key, Bytes::from(corrupt.clone()), PutMode::Overwrite)
        .await
        .unwrap();
    let err = store.get_bytes(&hash).await.unwrap_err();
    match &err {
        StoreError::Integrity {
            hash: named,
            reason: IntegrityReason::HashMismatch { actual },
        } => {
            assert_eq!(*named, hash);
            assert_eq!(*actual, ContentHash::of(&corrupt));
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains(&hash.to_hex()));
    assert_eq!(err.class(), "integrity:hash-mismatch");
}

#[tokio::test]
async fn non_canonical_cbor_under_its_own_hash_is_refused() {
    let (store, conn) = counting(0);
    // {"v": 1, "kind": "x"} with the keys out of canonical order.
    let value = Value::Map(vec![
        (Value::Text("kind".into()), Value::Text("x".into())),
        (Value::Text("v".into()), Value::Integer(1.into())),
    ]);
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(&value, &mut bytes).unwrap();
    assert!(cbor::check_canonical(&bytes).is_err());
    let hash = ContentHash::of(&bytes);
    let _ = conn
        .inner()
        .put(
            &object_key(&hash).unwrap(),
            Bytes::from(bytes),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    // The bytes are intact, so raw reads succeed ...
    assert!(store.get_bytes(&hash).await.is_ok());
    // ... but typed and value reads refuse them, naming the rule.
    #[derive(Debug, Serialize, Deserialize)]
    struct X {
        kind: String,
        v: u64,
    }
    for err in [
        store.get::<X>(&hash).await.unwrap_err(),
        store.get_value(&hash).await.unwrap_err(),
    ] {
        assert_eq!(err.class(), "integrity:non-canonical:map-key-order");
        assert_eq!(err.hash(), Some(&hash));
    }
}

#[tokio::test]
async fn missing_is_missing() {
    let (store, _) = counting(1024);
    let absent = ContentHash::of(b"never written");
    let err = store.get_bytes(&absent).await.unwrap_err();
    assert!(matches!(err, StoreError::Missing { hash } if hash == absent));
    let err = store
        .get_range(&absent, ByteRange::new(0, 1), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }));
}

#[tokio::test]
async fn ranges_are_verified_against_their_expected_hash() {
    let (store, conn) = counting(0);
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let hash = store.put_bytes(data.clone()).await.unwrap();
    let range = ByteRange::new(1000, 3000);
    let run_hash = ContentHash::of(&data[1000..3000]);
    let got = store.get_range(&hash, range, Some(run_hash)).await.unwrap();
    assert_eq!(&got[..], &data[1000..3000]);
    assert_eq!(conn.snapshot().calls(OpKind::GetRange), 1);
    // The wrong expected hash is refused.
    let err = store
        .get_range(&hash, range, Some(ContentHash::of(b"other")))
        .await
        .unwrap_err();
    assert_eq!(err.class(), "integrity:range-hash-mismatch");
    // Corrupt the stored object: the verified range read notices.
    let mut corrupt = data.clone();
    corrupt[2000] ^= 0xff;
    let _ = conn
        .inner()
        .put(
            &object_key(&hash).unwrap(),
            Bytes::from(corrupt),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    let err = store
        .get_range(&hash, range, Some(run_hash))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Integrity {
            reason: IntegrityReason::RangeHashMismatch { .. },
            ..
        }
    ));
    // A range outside the object is a typed error.
    let err = store
        .get_range(&hash, ByteRange::new(9000, 20_000), None)
        .await
        .unwrap_err();
    assert_eq!(err.class(), "invalid-range");
}

#[tokio::test]
async fn warm_reads_issue_no_connector_call() {
    let (store, conn) = counting(1 << 20);
    let hashes = store
        .put_many((0..20u32).map(|i| Bytes::from(format!("object {i}"))))
        .await
        .unwrap();
    // A new session over the same backend: the first read goes out...
    let session = ObjectStore::new(conn.clone(), 1 << 20);
    conn.reset();
    for h in &hashes {
        session.get_bytes(h).await.unwrap();
    }
    assert_eq!(conn.snapshot().calls(OpKind::Get), 20);
    // ...the second is served from the cache, shared by clones.
    conn.reset();
    let clone = session.clone();
    for h in &hashes {
        clone.get_bytes(h).await.unwrap();
        assert!(clone.exists(h).await.unwrap());
    }
    assert_eq!(conn.snapshot().total_calls(), 0);
    // Writing an object this session only read is a PUT (knowing it once
    // existed is no proof GC kept it; the write refreshes its age), and
    // writing it again right after costs none (spec/0006 §4).
    let again = clone.put_bytes(Bytes::from("object 3")).await.unwrap();
    assert_eq!(again, hashes[3]);
    assert_eq!(conn.snapshot().calls(OpKind::Put), 1);
    let skipped = clone.stats().puts_skipped;
    clone.put_bytes(Bytes::from("object 3")).await.unwrap();
    assert_eq!(conn.snapshot().calls(OpKind::Put), 1);
    assert_eq!(clone.stats().puts_skipped, skipped + 1);
}

#[tokio::test]
async fn cache_never_exceeds_its_bound() {
    let bound = 64 * 1024;
    let (store, conn) = counting(bound);
    // 400 objects of 1..4 KiB: about 1 MiB, sixteen times the bound.
    let objects: Vec<Bytes> = (0..400u32)
        .map(|i| Bytes::from(vec![(i % 251) as u8; 1024 + (i as usize * 37) % 3072]))
        .collect();
    let hashes = store.put_many(objects.clone()).await.unwrap();
    assert!(store.stats().cache.peak_bytes <= bound);
    for round in 0..3 {
        for (i, h) in hashes.iter().enumerate() {
            if (i + round) % 3 == 0 {
                assert_eq!(store.get_bytes(h).await.unwrap(), objects[i]);
            }
            let s = store.stats().cache;
            assert!(s.used_bytes <= bound, "{s:?}");
        }
    }
    let s = store.stats().cache;
    assert!(s.peak_bytes <= bound && s.peak_bytes > bound / 2, "{s:?}");
    assert!(s.evictions > 0);
    // Evicted objects are read again from the backend.
    assert!(conn.snapshot().calls(OpKind::Get) > 0);
}

#[tokio::test]
async fn put_many_preserves_order_and_dedupes() {
    let (store, conn) = counting(0);
    let items = vec![
        Bytes::from_static(b"a"),
        Bytes::from_static(b"b"),
        Bytes::from_static(b"a"),
    ];
    let hashes = store.put_many(items).await.unwrap();
    assert_eq!(
        hashes,
        vec![
            ContentHash::of(b"a"),
            ContentHash::of(b"b"),
            ContentHash::of(b"a")
        ]
    );
    // "a" twice in one batch may race to two PUTs; never more than that.
    let puts = conn.snapshot().calls(OpKind::Put);
    assert!((2..=3).contains(&puts), "{puts}");
}
