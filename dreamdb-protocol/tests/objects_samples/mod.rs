//! Sample objects of every kind and generic checks shared by the
//! `objects_*` test files.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Debug;

use ciborium::value::Value;
use dreamdb_core::cbor;
use dreamdb_core::modality::ModalityTag;
use dreamdb_core::time::{TimeAnchor, TimeRange};
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::spatial_bucket::BucketParams;
use dreamdb_protocol::objects::*;

pub fn h(seed: &str) -> ContentHash {
    ContentHash::of(seed.as_bytes())
}

pub fn genesis() -> Genesis {
    Genesis {
        dataset: "imagenet-1k".to_owned(),
        created_unix_nanos: 1_779_083_474_791_115_000,
        nonce: *b"0123456789abcdef",
    }
}

pub fn schema() -> Schema {
    let mut fields = BTreeMap::new();
    fields.insert(
        "clip".to_owned(),
        SchemaField {
            spec: FieldSpec::Embedding {
                dim: 4,
                metric: Metric::Cosine,
                index: IndexSpec::Ivf { k: 16 },
                compression: Some(Compression::Rabitq { bits: 1 }),
                rerank: true,
            },
            tag: Some(ModalityTag::parse("com.example.clip-vit-b32").unwrap()),
        },
    );
    fields.insert(
        "image".to_owned(),
        SchemaField {
            spec: FieldSpec::Blob {
                mime: "image/jpeg".to_owned(),
                max_bytes: 1 << 20,
            },
            tag: None,
        },
    );
    fields.insert(
        "label".to_owned(),
        SchemaField {
            spec: FieldSpec::Scalar {
                dtype: ScalarDtype::Categorical,
                nullable: false,
            },
            tag: None,
        },
    );
    fields.insert(
        "video".to_owned(),
        SchemaField {
            spec: FieldSpec::Fragment {
                mime: "video/mp4".to_owned(),
            },
            tag: None,
        },
    );
    Schema { fields }
}

pub fn manifest() -> Manifest {
    let mut tracks = BTreeMap::new();
    tracks.insert(
        "clip".to_owned(),
        TrackState {
            root: TrackRoot::Paged {
                page: h("page"),
                height: 2,
                count: 300,
                top: None,
            },
            spatial_index: Some(h("si")),
            compressor: Some(h("vc")),
            stats: None,
            last_anchor: None,
        },
    );
    tracks.insert(
        "label".to_owned(),
        TrackState {
            root: TrackRoot::Inline {
                entries: vec![(
                    dreamdb_protocol::track::TrackKey::anchor_run(10, &h("scalar-seg")),
                    dreamdb_protocol::track::TrackValue::AnchorRun {
                        segment: h("scalar-seg"),
                        last_anchor: 30,
                        count: 3,
                        table_offset: 40,
                        table_len: 24,
                        storage: None,
                    },
                )],
            },
            spatial_index: None,
            compressor: None,
            stats: None,
            last_anchor: None,
        },
    );
    let mut registry = BTreeMap::new();
    registry.insert("dreamdb.tombstones".to_owned(), h("tomb"));
    Manifest {
        genesis: h("genesis"),
        parents: vec![h("p2"), h("p1")],
        height: 7,
        writer: "alice@host".to_owned(),
        time_unix_nanos: 1_779_083_475_000_000_000,
        message: "merge sweep/run-001".to_owned(),
        schema: h("schema"),
        tracks,
        registry,
        records: 1234,
    }
}

pub fn first_manifest() -> Manifest {
    Manifest {
        parents: vec![],
        height: 0,
        tracks: BTreeMap::new(),
        registry: BTreeMap::new(),
        records: 0,
        ..manifest()
    }
}

pub fn ref_object() -> RefObject {
    RefObject {
        manifest: h("manifest"),
        genesis: h("genesis"),
    }
}

pub fn spatial_index() -> SpatialIndexObject {
    SpatialIndexObject {
        algorithm: "dreamdb.ivf-cosine".to_owned(),
        metric: Metric::Cosine,
        dim: 4,
        cells: 16,
        params: Value::Map(vec![
            (Value::Text("k".into()), Value::Integer(16.into())),
            (
                Value::Text("centroids".into()),
                Value::Bytes(vec![0u8; 16 * 4 * 4]),
            ),
        ]),
        parents: vec![h("si-parent")],
        changed_cells: vec![3, 9, 15],
    }
}

pub fn compressor() -> VectorCompressorObject {
    VectorCompressorObject {
        algorithm: "dreamdb.rabitq".to_owned(),
        bits: 1,
        dim: 4,
        metric: Metric::Cosine,
        seed: 42,
    }
}

/// A bucket of `n` records over `cells` cells, `code_len` code bytes and
/// two correction factors per record.
pub fn spatial_bucket_sized(n: u64, cells: u32, code_len: usize) -> SpatialBucket {
    let records = (0..n).map(|i| {
        let cell = ((i * 7919) % u64::from(cells)) as u32;
        (
            cell,
            SpatialRecord {
                anchor: TimeAnchor::new(1000 + 3 * i),
                factors: vec![i as f32 * 0.5, -1.25],
                code: (0..code_len).map(|b| (i as usize * 31 + b) as u8).collect(),
            },
        )
    });
    SpatialBucket::build(
        BucketParams {
            spatial_index: h("si"),
            compressor: Some(h("vc")),
            dim: 4,
            factors: 2,
        },
        records,
    )
    .unwrap()
}

pub fn spatial_bucket() -> SpatialBucket {
    spatial_bucket_sized(6, 3, 1)
}

pub fn vector_storage() -> VectorStorage {
    VectorStorage {
        bucket: h("bucket"),
        dim: 2,
        vectors: common::f32s_to_le(&[1.0, 2.0, 3.0, 4.0, -0.5, 0.25]),
    }
}

pub fn scalar_bucket() -> ScalarBucket {
    ScalarBucket {
        dtype: ScalarDtype::I64,
        anchors: common::u64s_to_le(&[10, 20, 30]),
        values: ScalarValues::Bytes([5i64, 0, -7].iter().flat_map(|v| v.to_le_bytes()).collect()),
        nulls: Some(vec![0b010]),
    }
}

pub fn text_scalar_bucket() -> ScalarBucket {
    ScalarBucket {
        dtype: ScalarDtype::Categorical,
        anchors: common::u64s_to_le(&[1, 2]),
        values: ScalarValues::Text(vec!["cat".to_owned(), "dog".to_owned()]),
        nulls: None,
    }
}

pub fn blob_segment() -> BlobSegment {
    BlobSegment::build(
        "image/jpeg",
        [(10u64, &b"abc"[..]), (11, &b""[..]), (15, &b"hello"[..])],
    )
}

pub fn fragment() -> Fragment {
    Fragment {
        range: TimeRange::new(TimeAnchor::new(0), TimeAnchor::new(2_000_000_000)).unwrap(),
        mime: "video/mp4".to_owned(),
        payload: b"\x00\x00\x00\x18ftypcmfc".to_vec(),
    }
}

pub fn item_manifest() -> ItemManifest {
    ItemManifest {
        chunks: vec![h("c1"), h("c2"), h("c1")],
        sizes: common::u64s_to_le(&[4, 4, 2]),
        total: 10,
    }
}

pub fn tombstones() -> TombstoneList {
    TombstoneList {
        parents: vec![h("t-parent")],
        entries: vec![
            Tombstone {
                anchor: TimeAnchor::new(5),
                reason: "gdpr".to_owned(),
                time_unix_nanos: 100,
            },
            Tombstone {
                anchor: TimeAnchor::new(9),
                reason: String::new(),
                time_unix_nanos: 101,
            },
        ],
    }
}

/// The decoded top-level map of canonical object bytes.
pub fn entries(bytes: &[u8]) -> Vec<(Value, Value)> {
    cbor::decode_value(bytes).unwrap().into_map().unwrap()
}

/// Canonically encodes a map of entries.
pub fn encode_entries(entries: Vec<(Value, Value)>) -> Vec<u8> {
    cbor::encode_value(&Value::Map(entries)).unwrap()
}

/// Replaces (or adds) the top-level entry `key`.
pub fn with_entry(bytes: &[u8], key: &str, value: Value) -> Vec<u8> {
    let mut entries = entries(bytes);
    entries.retain(|(k, _)| k.as_text() != Some(key));
    entries.push((Value::Text(key.to_owned()), value));
    encode_entries(entries)
}

/// Decodes `bytes` as `T` under their own hash, returning the error class.
pub fn class_of<T: ObjectKind + Debug>(bytes: &[u8]) -> String {
    match T::decode(&ContentHash::of(bytes), bytes) {
        Ok(object) => panic!("{} accepted: {object:?}", T::KIND),
        Err(e) => {
            assert_eq!(e.kind, T::KIND);
            assert_eq!(
                e.hash,
                Some(ContentHash::of(bytes)),
                "error names the object"
            );
            e.class()
        }
    }
}

/// Round trip, plus decode of the bytes under their hash and unverified.
pub fn round_trip<T: ObjectKind + PartialEq + Debug>(object: &T) -> (Vec<u8>, ContentHash) {
    let (bytes, hash) = object.encode().unwrap();
    assert_eq!(hash, ContentHash::of(&bytes));
    assert_eq!(&T::decode(&hash, &bytes).unwrap(), object);
    assert_eq!(&T::decode_unverified(&bytes).unwrap(), object);
    assert_eq!(
        encode_generic(object).unwrap(),
        bytes,
        "fast path = generic path"
    );
    // Encoding is deterministic.
    assert_eq!(object.encode().unwrap().0, bytes);
    (bytes, hash)
}

/// Flips bit masks of the byte at every position in `positions`: under
/// the original name the read is a hash mismatch; under the mutated
/// bytes' own name it is either refused or a *different* object whose
/// canonical encoding is exactly the mutated bytes (never the original
/// object, never a second spelling).
pub fn flips_are_caught<T: ObjectKind + PartialEq + Debug>(
    object: &T,
    positions: impl IntoIterator<Item = usize>,
) -> usize {
    let (bytes, hash) = object.encode().unwrap();
    let mut count = 0;
    for position in positions {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut mutated = bytes.clone();
            mutated[position] ^= mask;
            let e = T::decode(&hash, &mutated).unwrap_err();
            assert_eq!(e.class(), "hash-mismatch", "position {position}");
            assert_eq!(e.hash, Some(hash));
            match T::decode(&ContentHash::of(&mutated), &mutated) {
                Err(e) => assert_ne!(e.class(), "hash-mismatch"),
                Ok(other) => {
                    assert_ne!(&other, object, "position {position} mask {mask:#x}");
                    assert_eq!(other.encode().unwrap().0, mutated);
                }
            }
            count += 1;
        }
    }
    count
}

/// The generic envelope and canonical-form checks every kind must pass.
pub fn envelope_checks<T: ObjectKind + PartialEq + Debug>(object: &T) {
    let (bytes, _) = round_trip(object);

    // `v` in a longer head: "v" is the only one-character key, so the
    // canonical map starts with `61 76 01` after the map head.
    let head = if bytes[0] & 0x1f < 24 { 1 } else { 2 };
    assert_eq!(&bytes[head..head + 3], &[0x61, 0x76, 0x01]);
    let mut long_head = bytes[..head + 2].to_vec();
    long_head.extend_from_slice(&[0x18, 0x01]);
    long_head.extend_from_slice(&bytes[head + 3..]);
    assert_eq!(class_of::<T>(&long_head), "non-canonical:shortest-head");

    // Keys in reverse order.
    let mut reordered = vec![bytes[0]];
    if head == 2 {
        reordered.push(bytes[1]);
    }
    for (key, value) in entries(&bytes).into_iter().rev() {
        reordered.extend(cbor::encode_value(&key).unwrap());
        reordered.extend(cbor::encode_value(&value).unwrap());
    }
    assert_eq!(reordered.len(), bytes.len());
    assert_eq!(class_of::<T>(&reordered), "non-canonical:map-key-order");

    // Trailing and truncated bytes.
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(class_of::<T>(&trailing), "trailing-bytes");
    assert_eq!(class_of::<T>(&bytes[..bytes.len() - 1]), "truncated");

    // Wrong kind, unknown version, missing kind, unknown field, not a map.
    let wrong = with_entry(&bytes, "kind", Value::Text("other-kind".into()));
    assert_eq!(class_of::<T>(&wrong), "wrong-kind");
    let v2 = with_entry(&bytes, "v", Value::Integer(2.into()));
    assert_eq!(class_of::<T>(&v2), "unknown-version");
    let mut no_kind = entries(&bytes);
    no_kind.retain(|(k, _)| k.as_text() != Some("kind"));
    assert_eq!(class_of::<T>(&encode_entries(no_kind)), "shape");
    let unknown = with_entry(&bytes, "zz_extra", Value::Integer(1.into()));
    assert_eq!(class_of::<T>(&unknown), "shape");
    assert_eq!(class_of::<T>(&[0x80]), "shape");
    // Every field is required or canonical-when-absent: dropping each one
    // in turn is refused (shape, invariant or object-form — never a
    // silently different reading of the same bytes).
    for (key, _) in entries(&bytes) {
        let name = key.as_text().unwrap().to_owned();
        let mut fewer = entries(&bytes);
        fewer.retain(|(k, _)| k.as_text() != Some(&name));
        let fewer = encode_entries(fewer);
        if let Ok(other) = T::decode(&ContentHash::of(&fewer), &fewer) {
            assert_ne!(&other, object, "dropping {name} kept the object");
        }
    }
}
