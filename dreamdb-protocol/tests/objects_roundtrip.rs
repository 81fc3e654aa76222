#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Every kind: round trip, corruption at every byte, non-canonical
//! spellings, wrong kind, unknown version and unknown fields.

mod objects_samples;

use ciborium::value::Value;
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::*;
use objects_samples::*;

macro_rules! kind_tests {
    ($($name:ident => $sample:expr;)*) => {
        $(
            mod $name {
                use super::*;

                #[test]
                fn round_trip_and_envelope() {
                    envelope_checks(&$sample);
                }

                #[test]
                fn every_byte_flip_is_caught() {
                    let object = $sample;
                    let len = object.encode().unwrap().0.len();
                    assert!(flips_are_caught(&object, 0..len) >= 3 * len);
                }
            }
        )*
    };
}

kind_tests! {
    genesis => genesis();
    schema => schema();
    manifest => manifest();
    first_manifest => first_manifest();
    ref_object => ref_object();
    spatial_index => spatial_index();
    compressor => compressor();
    spatial_bucket => spatial_bucket();
    vector_storage => vector_storage();
    scalar_bucket => scalar_bucket();
    text_scalar_bucket => text_scalar_bucket();
    blob_segment => blob_segment();
    fragment => fragment();
    item_manifest => item_manifest();
    tombstones => tombstones();
}

#[test]
fn kinds_are_distinct_and_reading_one_as_another_is_wrong_kind() {
    let (genesis_bytes, _) = genesis().encode().unwrap();
    assert_eq!(class_of::<Manifest>(&genesis_bytes), "wrong-kind");
    let (manifest_bytes, _) = manifest().encode().unwrap();
    assert_eq!(class_of::<Genesis>(&manifest_bytes), "wrong-kind");
    let (bucket_bytes, _) = spatial_bucket().encode().unwrap();
    assert_eq!(class_of::<VectorStorage>(&bucket_bytes), "wrong-kind");
    let kinds = [
        Genesis::KIND,
        Schema::KIND,
        Manifest::KIND,
        RefObject::KIND,
        SpatialIndexObject::KIND,
        VectorCompressorObject::KIND,
        SpatialBucket::KIND,
        VectorStorage::KIND,
        ScalarBucket::KIND,
        BlobSegment::KIND,
        Fragment::KIND,
        ItemManifest::KIND,
        TombstoneList::KIND,
    ];
    let unique: std::collections::BTreeSet<_> = kinds.iter().collect();
    assert_eq!(unique.len(), kinds.len());
}

#[test]
fn a_null_where_a_field_is_absent_is_a_second_spelling() {
    // SpatialBucket without compressor leaves the key out; `null` is
    // refused even though serde would read it as None.
    let bucket = SpatialBucket::build(
        BucketParams {
            spatial_index: h("si"),
            compressor: None,
            dim: 2,
            factors: 0,
        },
        (0..5u64).map(|i| {
            (
                (i % 2) as u32,
                SpatialRecord {
                    anchor: dreamdb_core::time::TimeAnchor::new(i),
                    factors: vec![],
                    code: common::f32s_to_le(&[i as f32, 1.0]),
                },
            )
        }),
    )
    .unwrap();
    let (bytes, _) = round_trip(&bucket);
    let with_null = with_entry(&bytes, "compressor", Value::Null);
    assert_eq!(
        class_of::<SpatialBucket>(&with_null),
        "non-canonical:object-form"
    );

    let (bytes, _) = schema().encode().unwrap();
    let mut fields = entries(&bytes);
    let (_, value) = fields
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some("fields"))
        .unwrap();
    let image = value
        .as_map_mut()
        .unwrap()
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some("image"))
        .unwrap();
    image
        .1
        .as_map_mut()
        .unwrap()
        .push((Value::Text("tag".into()), Value::Null));
    assert_eq!(
        class_of::<Schema>(&encode_entries(fields)),
        "non-canonical:object-form"
    );
}

#[test]
fn a_stray_tag_is_refused() {
    // Around an integer: the value does not have the field's type.
    let (bytes, _) = compressor().encode().unwrap();
    let tagged = with_entry(
        &bytes,
        "dim",
        Value::Tag(65524, Box::new(Value::Integer(4.into()))),
    );
    assert_eq!(class_of::<VectorCompressorObject>(&tagged), "shape");
    // Around a byte string or text: serde reads through the tag, so only
    // the object-form check notices the second spelling.
    let (bytes, _) = genesis().encode().unwrap();
    let nonce = with_entry(
        &bytes,
        "nonce",
        Value::Tag(7, Box::new(Value::Bytes(genesis().nonce.to_vec()))),
    );
    assert_eq!(class_of::<Genesis>(&nonce), "non-canonical:object-form");
    let dataset = with_entry(
        &bytes,
        "dataset",
        Value::Tag(7, Box::new(Value::Text(genesis().dataset))),
    );
    assert_eq!(class_of::<Genesis>(&dataset), "non-canonical:object-form");
}

#[test]
fn an_untagged_hash_is_a_shape_error() {
    let (bytes, _) = ref_object().encode().unwrap();
    let untagged = with_entry(
        &bytes,
        "manifest",
        Value::Bytes(h("manifest").to_compact().to_vec()),
    );
    assert_eq!(class_of::<RefObject>(&untagged), "shape");
    let wrong_code = with_entry(
        &bytes,
        "manifest",
        Value::Tag(65521, Box::new(Value::Bytes(vec![0x12; 33]))),
    );
    assert_eq!(class_of::<RefObject>(&wrong_code), "shape");
}

#[test]
fn errors_name_the_object_and_the_problem() {
    let (bytes, hash) = manifest().encode().unwrap();
    let mut corrupt = bytes.clone();
    corrupt[5] ^= 1;
    let e = Manifest::decode(&hash, &corrupt).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("manifest object {hash}")),
        "{text}"
    );
    assert!(text.contains(&ContentHash::of(&corrupt).to_hex()), "{text}");
    let unverified = Manifest::decode_unverified(&bytes[..10]).unwrap_err();
    assert_eq!(unverified.hash, Some(ContentHash::of(&bytes[..10])));
    assert_eq!(unverified.class(), "truncated");
}

#[test]
fn genesis_nonce_must_be_16_bytes() {
    let (bytes, _) = genesis().encode().unwrap();
    let short = with_entry(&bytes, "nonce", Value::Bytes(vec![0; 15]));
    assert_eq!(class_of::<Genesis>(&short), "shape");
}

#[test]
fn spatial_index_params_are_opaque_but_canonical() {
    let mut index = spatial_index();
    index.params = Value::Array(vec![
        Value::Float(1.5),
        Value::Text("x".into()),
        Value::Tag(7, Box::new(Value::Null)),
    ]);
    round_trip(&index);
    // An unsorted map inside params is refused before encoding.
    index.params = Value::Map(vec![
        (Value::Text("zz".into()), Value::Integer(1.into())),
        (Value::Text("a".into()), Value::Integer(2.into())),
    ]);
    let e = index.encode().unwrap_err();
    assert_eq!(e.rule(), Some("params-canonical"));
}
