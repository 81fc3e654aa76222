//! Deterministic CBOR: one test group per canonical rule, plus the
//! well-formedness limits (truncation, trailing bytes, depth, UTF-8) and the
//! serde entry points.
//!
//! Every non-canonical input here is written by hand, with the rule and the
//! byte offset we expect the strict decoder to blame; the canonical spelling
//! of the same value is then produced by the encoder and accepted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ciborium::value::{Integer, Value};
use dreamdb_core::cbor::{
    self, check_canonical, decode_value, decode_value_lenient, diagnostic, encode_value,
    from_slice, to_vec, CanonicalRule, CborError, MAX_DEPTH,
};
use dreamdb_core::ContentHash;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

fn h(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap()
}

fn int(n: i128) -> Value {
    Value::Integer(Integer::try_from(n).unwrap())
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// Asserts that `input` is refused by the strict decoder for `rule` at
/// `offset`, that `check_canonical` agrees, and that the lenient decoder
/// reads it as `lenient` (diagnostic notation). Returns the lenient value.
fn assert_non_canonical(input: &str, rule: CanonicalRule, offset: usize, lenient: &str) -> Value {
    let bytes = h(input);
    let expected = CborError::NonCanonical { rule, offset };
    assert_eq!(
        decode_value(&bytes),
        Err(expected.clone()),
        "decode {input}"
    );
    assert_eq!(check_canonical(&bytes), Err(expected), "check {input}");
    let value = decode_value_lenient(&bytes).unwrap();
    assert_eq!(diagnostic(&value), lenient, "lenient {input}");
    value
}

/// Asserts that `expected_hex` is the canonical encoding of `value`, that it
/// is accepted strictly, and that it decodes back to the same encoding.
fn assert_canonical(value: &Value, expected_hex: &str) {
    let bytes = encode_value(value).unwrap();
    assert_eq!(hex::encode(&bytes), expected_hex.replace(' ', ""));
    check_canonical(&bytes).unwrap();
    assert_eq!(encode_value(&decode_value(&bytes).unwrap()).unwrap(), bytes);
}

// ---------------------------------------------------------------- rules

#[test]
fn rule_ids_are_stable_and_distinct() {
    let ids: Vec<&str> = CanonicalRule::ALL.iter().map(CanonicalRule::id).collect();
    assert_eq!(
        ids,
        [
            "shortest-head",
            "indefinite-length",
            "map-key-order",
            "duplicate-map-key",
            "shortest-float",
            "canonical-nan",
            "simple-value",
        ]
    );
}

#[test]
fn shortest_head_for_integers() {
    // 1 in a one-byte argument, 0 in a two-byte one, 255 in a four-byte one.
    let v = assert_non_canonical("18 01", CanonicalRule::ShortestHead, 0, "1");
    assert_canonical(&v, "01");
    assert_non_canonical("19 00 00", CanonicalRule::ShortestHead, 0, "0");
    assert_non_canonical("1a 00 00 00 ff", CanonicalRule::ShortestHead, 0, "255");
    assert_non_canonical(
        "1b 00 00 00 00 ff ff ff ff",
        CanonicalRule::ShortestHead,
        0,
        "4294967295",
    );
    // Negative: -1 as 38 00.
    assert_non_canonical("38 00", CanonicalRule::ShortestHead, 0, "-1");
    // Nested: the offset is that of the offending item.
    let v = assert_non_canonical("82 01 19 00 ff", CanonicalRule::ShortestHead, 2, "[1, 255]");
    assert_canonical(&v, "82 01 18 ff");
    // The boundaries themselves are canonical.
    for hex in [
        "17",
        "18 18",
        "18 ff",
        "19 01 00",
        "19 ff ff",
        "1a 00 01 00 00",
    ] {
        check_canonical(&h(hex)).unwrap();
    }
}

#[test]
fn shortest_head_for_lengths_and_tags() {
    // Text of length 1 with a one-byte length.
    let v = assert_non_canonical("78 01 61", CanonicalRule::ShortestHead, 0, "\"a\"");
    assert_canonical(&v, "61 61");
    // Byte string, array and map lengths.
    assert_non_canonical("58 00", CanonicalRule::ShortestHead, 0, "h''");
    assert_non_canonical("98 01 01", CanonicalRule::ShortestHead, 0, "[1]");
    assert_non_canonical("b8 00", CanonicalRule::ShortestHead, 0, "{}");
    // Tag 1 in a one-byte argument.
    let v = assert_non_canonical("d8 01 00", CanonicalRule::ShortestHead, 0, "1(0)");
    assert_canonical(&v, "c1 00");
    // DreamDB's tags need the two-byte form, not the four-byte one.
    assert_non_canonical(
        "da 00 00 ff f1 40",
        CanonicalRule::ShortestHead,
        0,
        "65521(h'')",
    );
    check_canonical(&h("d9 ff f1 40")).unwrap();
}

#[test]
fn indefinite_lengths_are_refused() {
    let v = assert_non_canonical("9f 01 ff", CanonicalRule::IndefiniteLength, 0, "[1]");
    assert_canonical(&v, "81 01");
    assert_non_canonical(
        "bf 61 61 01 ff",
        CanonicalRule::IndefiniteLength,
        0,
        "{\"a\": 1}",
    );
    assert_non_canonical(
        "5f 41 01 41 02 ff",
        CanonicalRule::IndefiniteLength,
        0,
        "h'0102'",
    );
    let v = assert_non_canonical(
        "7f 61 61 61 62 ff",
        CanonicalRule::IndefiniteLength,
        0,
        "\"ab\"",
    );
    assert_canonical(&v, "62 61 62");
    // Nested: blamed at the inner head.
    assert_non_canonical("82 01 9f ff", CanonicalRule::IndefiniteLength, 2, "[1, []]");
}

#[test]
fn map_keys_must_be_sorted_by_encoding() {
    // {"b": 1, "a": 2}: the second key is out of order.
    let v = assert_non_canonical(
        "a2 61 62 01 61 61 02",
        CanonicalRule::MapKeyOrder,
        4,
        "{\"b\": 1, \"a\": 2}",
    );
    assert_canonical(&v, "a2 61 61 02 61 62 01");
    // Bytewise order of encodings, not "length first" or numeric order:
    // 10 (0a) < 100 (18 64) < -1 (20) < "aa" (62 61 61)... and "b" (61 62)
    // sorts before "aa" because its head is smaller.
    let v = Value::Map(vec![
        (text("aa"), int(1)),
        (text("b"), int(2)),
        (int(-1), int(3)),
        (int(100), int(4)),
        (int(10), int(5)),
    ]);
    assert_canonical(&v, "a5 0a 05 18 64 04 20 03 61 62 02 62 61 61 01");
    // A map with -1 before 10 is out of order at the second key.
    assert_non_canonical(
        "a2 20 00 0a 00",
        CanonicalRule::MapKeyOrder,
        3,
        "{-1: 0, 10: 0}",
    );
    // Nested map: offset of the offending key inside.
    assert_non_canonical(
        "81 a2 02 00 01 00",
        CanonicalRule::MapKeyOrder,
        4,
        "[{2: 0, 1: 0}]",
    );
}

#[test]
fn duplicate_map_keys_are_refused() {
    assert_non_canonical(
        "a2 61 61 01 61 61 02",
        CanonicalRule::DuplicateMapKey,
        4,
        "{\"a\": 1, \"a\": 2}",
    );
    // The encoder refuses them too.
    let v = Value::Map(vec![(text("a"), int(1)), (text("a"), int(2))]);
    assert!(matches!(
        encode_value(&v),
        Err(CborError::NonCanonical {
            rule: CanonicalRule::DuplicateMapKey,
            ..
        })
    ));
    // 1 and 1.0 are different keys (no int/float unification).
    let v = Value::Map(vec![(Value::Float(1.0), int(1)), (int(1), int(2))]);
    assert_canonical(&v, "a2 01 02 f9 3c 00 01");
}

#[test]
fn floats_use_the_shortest_exact_width() {
    // 1.5 as single and as double; canonical is half.
    let v = assert_non_canonical("fa 3f c0 00 00", CanonicalRule::ShortestFloat, 0, "1.5");
    assert_canonical(&v, "f9 3e 00");
    assert_non_canonical(
        "fb 3f f8 00 00 00 00 00 00",
        CanonicalRule::ShortestFloat,
        0,
        "1.5",
    );
    // 100000.0 does not fit half precision but fits single: double is not
    // canonical, single is.
    assert_non_canonical(
        "fb 40 f8 6a 00 00 00 00 00",
        CanonicalRule::ShortestFloat,
        0,
        "100000.0",
    );
    check_canonical(&h("fa 47 c3 50 00")).unwrap();
    // Infinity and -0.0 fit half precision.
    assert_non_canonical(
        "fa 7f 80 00 00",
        CanonicalRule::ShortestFloat,
        0,
        "Infinity",
    );
    assert_non_canonical("fa 80 00 00 00", CanonicalRule::ShortestFloat, 0, "-0.0");
    // Encoder choices at each width, including subnormals.
    assert_eq!(to_vec(&1.5f64).unwrap(), h("f9 3e 00"));
    assert_eq!(to_vec(&1.5f32).unwrap(), h("f9 3e 00"));
    assert_eq!(to_vec(&65504.0f64).unwrap(), h("f9 7b ff"));
    assert_eq!(to_vec(&65505.0f64).unwrap(), h("fa 47 7f e1 00"));
    assert_eq!(to_vec(&100000.0f64).unwrap(), h("fa 47 c3 50 00"));
    assert_eq!(to_vec(&1.1f64).unwrap(), h("fb 3f f1 99 99 99 99 99 9a"));
    assert_eq!(to_vec(&1.1f32).unwrap(), h("fa 3f 8c cc cd"));
    assert_eq!(to_vec(&5.960464477539063e-8).unwrap(), h("f9 00 01"));
    assert_eq!(to_vec(&-0.0f64).unwrap(), h("f9 80 00"));
    assert_eq!(to_vec(&f64::NEG_INFINITY).unwrap(), h("f9 fc 00"));
    // Smallest f32 subnormal: not a half, exactly a single.
    assert_eq!(to_vec(&f32::from_bits(1)).unwrap(), h("fa 00 00 00 01"));
    // Smallest f64 subnormal needs a double.
    assert_eq!(
        to_vec(&f64::from_bits(1)).unwrap(),
        h("fb 00 00 00 00 00 00 00 01")
    );
}

#[test]
fn integers_and_floats_are_not_unified() {
    assert_eq!(to_vec(&1u8).unwrap(), h("01"));
    assert_eq!(to_vec(&1.0f64).unwrap(), h("f9 3c 00"));
    assert_eq!(to_vec(&0.0f64).unwrap(), h("f9 00 00"));
    assert_eq!(from_slice::<f64>(&h("f9 3c 00")).unwrap(), 1.0);
}

#[test]
fn nan_has_one_encoding() {
    // Half-precision NaN with a payload, negative NaN, and NaN at each
    // wider width.
    for (input, offset) in [
        ("f9 7e 01", 0),
        ("f9 fe 00", 0),
        ("f9 7c 01", 0),
        ("fa 7f c0 00 00", 0),
        ("fb 7f f8 00 00 00 00 00 00", 0),
        ("81 fb 7f f8 00 00 00 00 00 01", 1),
    ] {
        let lenient = if offset == 0 { "NaN" } else { "[NaN]" };
        assert_non_canonical(input, CanonicalRule::CanonicalNan, offset, lenient);
    }
    check_canonical(&h("f9 7e 00")).unwrap();
    for nan in [f64::NAN, -f64::NAN, f64::from_bits(0x7ff0_0000_0000_0001)] {
        assert_eq!(to_vec(&nan).unwrap(), h("f9 7e 00"));
    }
    assert_eq!(to_vec(&f32::NAN).unwrap(), h("f9 7e 00"));
}

#[test]
fn only_false_true_null_simple_values() {
    for (input, offset) in [
        ("f7", 0),
        ("f0", 0),
        ("e0", 0),
        ("f3", 0),
        ("f8 ff", 0),
        ("f8 20", 0),
        ("82 f6 f7", 2),
    ] {
        let bytes = h(input);
        let expected = CborError::NonCanonical {
            rule: CanonicalRule::SimpleValue,
            offset,
        };
        assert_eq!(decode_value(&bytes), Err(expected.clone()), "{input}");
        // ciborium::Value cannot hold them, so the lenient decoder refuses
        // them the same way.
        assert_eq!(decode_value_lenient(&bytes), Err(expected), "{input}");
    }
    assert_canonical(&Value::Bool(false), "f4");
    assert_canonical(&Value::Bool(true), "f5");
    assert_canonical(&Value::Null, "f6");
    assert_eq!(to_vec(&None::<u8>).unwrap(), h("f6"));
    assert_eq!(to_vec(&()).unwrap(), h("f6"));
}

// ------------------------------------------------- well-formedness limits

#[test]
fn malformed_input() {
    for (input, offset) in [
        ("1c", 0),          // reserved additional information 28
        ("1d", 0),          // 29
        ("5e", 0),          // 30
        ("ff", 0),          // lone break
        ("82 01 ff", 2),    // break inside a definite-length array
        ("1f", 0),          // indefinite unsigned integer
        ("3f", 0),          // indefinite negative integer
        ("df 00", 0),       // indefinite tag
        ("f8 18", 0),       // two-byte simple value below 32
        ("62 c3 28", 0),    // invalid UTF-8
        ("81 61 ff", 1),    // invalid UTF-8, nested
        ("63 ed a0 80", 0), // an encoded surrogate is not UTF-8
    ] {
        let bytes = h(input);
        match decode_value(&bytes) {
            Err(CborError::Malformed { offset: o, .. }) => assert_eq!(o, offset, "{input}"),
            other => panic!("{input}: {other:?}"),
        }
        match decode_value_lenient(&bytes) {
            Err(CborError::Malformed { offset: o, .. }) => assert_eq!(o, offset, "{input}"),
            other => panic!("{input} lenient: {other:?}"),
        }
    }
    // Lenient-only malformations of indefinite items.
    for (input, offset) in [
        ("5f 61 61 ff", 1),       // text chunk in a byte string
        ("7f 5f ff ff", 1),       // nested indefinite chunk
        ("bf 01 ff", 2),          // key without a value
        ("7f 61 c3 61 bc ff", 1), // each chunk must be valid UTF-8 on its own
    ] {
        match decode_value_lenient(&h(input)) {
            Err(CborError::Malformed { offset: o, .. }) => assert_eq!(o, offset, "{input}"),
            other => panic!("{input} lenient: {other:?}"),
        }
    }
}

#[test]
fn truncated_input() {
    for (input, offset) in [
        ("", 0),
        ("18", 0),
        ("19 01", 0),
        ("fb 3f f1", 0),
        ("62 61", 0),
        ("83 01 02", 0),
        ("82 01 83 01", 2),
        ("a1 01", 0),
        ("c1", 0),
        ("81 c1", 1),
        // Hostile lengths: must fail before allocating anything.
        ("5b ff ff ff ff ff ff ff ff", 0),
        ("7a ff ff ff ff", 0),
        ("9b ff ff ff ff ff ff ff ff", 0),
        ("bb ff ff ff ff ff ff ff ff", 0),
        ("bb 7f ff ff ff ff ff ff ff", 0),
        ("5f 5a ff ff ff ff", 1),
    ] {
        let bytes = h(input);
        assert_eq!(
            decode_value_lenient(&bytes),
            Err(CborError::Truncated { offset }),
            "{input}"
        );
        if !input.starts_with("5f") {
            assert_eq!(
                decode_value(&bytes),
                Err(CborError::Truncated { offset }),
                "{input}"
            );
        }
    }
    // A map of n pairs needs at least 2n bytes.
    assert_eq!(
        decode_value(&h("a2 01 02 03")),
        Err(CborError::Truncated { offset: 0 })
    );
}

#[test]
fn trailing_bytes() {
    assert_eq!(
        decode_value(&h("01 02")),
        Err(CborError::TrailingBytes { offset: 1 })
    );
    assert_eq!(
        decode_value_lenient(&h("81 01 00")),
        Err(CborError::TrailingBytes { offset: 2 })
    );
    assert!(matches!(
        from_slice::<u8>(&h("01 ff")),
        Err(CborError::TrailingBytes { offset: 1 })
    ));
}

fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut bytes = vec![0x81; depth - 1];
    bytes.push(0x80);
    bytes
}

#[test]
fn nesting_is_limited() {
    assert_eq!(MAX_DEPTH, 128);
    let ok = nested_arrays(MAX_DEPTH);
    let value = decode_value(&ok).unwrap();
    assert_eq!(encode_value(&value).unwrap(), ok);
    let deep = nested_arrays(MAX_DEPTH + 1);
    let expected = CborError::TooDeep {
        offset: MAX_DEPTH,
        limit: MAX_DEPTH,
    };
    assert_eq!(decode_value(&deep), Err(expected.clone()));
    assert_eq!(decode_value_lenient(&deep), Err(expected));
    // Tags and maps count too.
    let mut tags = vec![0xc1; MAX_DEPTH + 1];
    tags.push(0x00);
    assert!(matches!(
        decode_value(&tags),
        Err(CborError::TooDeep { offset: 128, .. })
    ));
    let mut maps = vec![];
    for _ in 0..=MAX_DEPTH {
        maps.extend_from_slice(&[0xa1, 0x00]);
    }
    maps.push(0x00);
    assert!(matches!(
        decode_value(&maps),
        Err(CborError::TooDeep { offset: 256, .. })
    ));
    // A million nested arrays are refused without overflowing the stack.
    let hostile = vec![0x81; 1_000_000];
    assert!(matches!(
        decode_value(&hostile),
        Err(CborError::TooDeep { .. })
    ));
    // The encoder refuses what the decoder would refuse.
    let mut value = Value::Array(vec![]);
    for _ in 0..MAX_DEPTH {
        value = Value::Array(vec![value]);
    }
    assert!(matches!(
        encode_value(&value),
        Err(CborError::TooDeep { limit: 128, .. })
    ));
}

// ------------------------------------------------------ integers, strings

#[test]
fn integer_range_and_heads() {
    let cases: [(i128, &str); 12] = [
        (0, "00"),
        (23, "17"),
        (24, "18 18"),
        (-24, "37"),
        (-25, "38 18"),
        (-256, "38 ff"),
        (-257, "39 01 00"),
        (65536, "1a 00 01 00 00"),
        (u64::MAX as i128, "1b ff ff ff ff ff ff ff ff"),
        (i64::MIN as i128, "3b 7f ff ff ff ff ff ff ff"),
        (-(1i128 << 64), "3b ff ff ff ff ff ff ff ff"),
        (1 << 32, "1b 00 00 00 01 00 00 00 00"),
    ];
    for (n, hex) in cases {
        assert_canonical(&int(n), hex);
    }
    assert_eq!(to_vec(&u64::MAX).unwrap(), h("1b ff ff ff ff ff ff ff ff"));
    assert_eq!(to_vec(&i64::MIN).unwrap(), h("3b 7f ff ff ff ff ff ff ff"));
    assert_eq!(
        from_slice::<i64>(&h("3b 7f ff ff ff ff ff ff ff")).unwrap(),
        i64::MIN
    );
}

#[test]
fn strings_round_trip() {
    assert_canonical(&Value::Bytes(vec![]), "40");
    assert_canonical(
        &Value::Bytes(vec![0; 24]),
        &format!("58 18 {}", "00".repeat(24)),
    );
    assert_canonical(&text("ü水𐅑"), "69 c3 bc e6 b0 b4 f0 90 85 91");
    assert_eq!(
        diagnostic(&text("ü水𐅑")),
        "\"\\u00fc\\u6c34\\ud800\\udd51\""
    );
    assert_eq!(diagnostic(&text("a\"\\\n\u{1}")), "\"a\\\"\\\\\\n\\u0001\"");
}

// ------------------------------------------------------------ serde

/// Fields deliberately declared out of order.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Point {
    z: u8,
    a: u8,
    mm: u8,
}

#[test]
fn struct_fields_are_written_in_key_order() {
    let bytes = to_vec(&Point { z: 1, a: 2, mm: 3 }).unwrap();
    // {"a": 2, "z": 1, "mm": 3}: "a" (61 61) < "z" (61 7a) < "mm" (62 6d 6d).
    assert_eq!(hex::encode(&bytes), "a3616102617a01626d6d03");
    assert_eq!(
        from_slice::<Point>(&bytes).unwrap(),
        Point { z: 1, a: 2, mm: 3 }
    );
    // The same map in declaration order is not canonical.
    assert_eq!(
        from_slice::<Point>(&h("a3 61 7a 01 61 61 02 62 6d 6d 03")),
        Err(CborError::NonCanonical {
            rule: CanonicalRule::MapKeyOrder,
            offset: 4
        })
    );
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Blob {
    size: u64,
    hash: ContentHash,
    data: ByteBuf,
    label: Option<String>,
}

#[test]
fn content_hash_and_byte_buf_round_trip() {
    let blob = Blob {
        size: 3,
        hash: ContentHash::of(b"abc"),
        data: ByteBuf::from(b"abc".to_vec()),
        label: None,
    };
    let bytes = to_vec(&blob).unwrap();
    check_canonical(&bytes).unwrap();
    let compact = hex::encode(blob.hash.to_compact());
    // Keys in order "data" (64 64..), "hash" (64 68..), "size" (64 73..),
    // "label" (65 ..); the hash is tag 65521 (d9 ff f1) around 33 bytes.
    let expected = format!(
        "a4 6464617461 43616263 6468617368 d9fff1 5821{compact} 6473697a65 03 656c6162656c f6"
    );
    assert_eq!(hex::encode(&bytes), expected.replace(' ', ""));
    assert_eq!(from_slice::<Blob>(&bytes).unwrap(), blob);
    let value = decode_value(&bytes).unwrap();
    assert!(diagnostic(&value).contains(&format!("\"hash\": 65521(h'{compact}')")));
}

#[test]
fn schema_mismatch_is_deserialize_error() {
    let err = from_slice::<Point>(&h("a1 61 61 01")).unwrap_err();
    assert_eq!(err.class(), "deserialize");
    let err = from_slice::<u8>(&h("61 61")).unwrap_err();
    assert_eq!(err.class(), "deserialize");
    // A content hash must be tagged and carry a BLAKE3 multihash.
    let err = from_slice::<ContentHash>(&h("40")).unwrap_err();
    assert_eq!(err.class(), "deserialize");
    let err = from_slice::<ContentHash>(&h("d9 ff f1 41 1e")).unwrap_err();
    assert_eq!(err.class(), "deserialize");
}

#[test]
fn tag_constants() {
    assert_eq!(cbor::TAG_CONTENT_HASH, 65521);
    assert_eq!(cbor::TAG_ADDRESS, 65522);
    assert_eq!(cbor::TAG_MODALITY, 65523);
    assert_eq!(cbor::TAG_TIME_ANCHOR, 65524);
    assert_eq!(cbor::TAG_TIME_RANGE, 65525);
    let range = Value::Tag(
        cbor::TAG_TIME_RANGE,
        Box::new(Value::Array(vec![int(0), int(1_000)])),
    );
    assert_canonical(&range, "d9 ff f5 82 00 19 03 e8");
    assert_eq!(diagnostic(&range), "65525([0, 1000])");
}

// ------------------------------------------------------------ errors

#[test]
fn error_classes_and_messages() {
    let err = decode_value(&h("a2 61 62 01 61 61 02")).unwrap_err();
    assert_eq!(err.class(), "non-canonical:map-key-order");
    assert_eq!(err.offset(), Some(4));
    let message = err.to_string();
    assert!(message.contains("map-key-order"), "{message}");
    assert!(message.contains("RFC 8949 §4.2.1"), "{message}");
    assert!(message.contains("byte 4"), "{message}");
    for rule in CanonicalRule::ALL {
        let err = CborError::NonCanonical { rule, offset: 7 };
        assert_eq!(err.class(), format!("non-canonical:{}", rule.id()));
        assert!(err.to_string().contains(rule.id()));
        assert!(err.to_string().contains("RFC 8949 §4.2.1"));
    }
    let classes = [
        (decode_value(&h("ff")).unwrap_err(), "malformed"),
        (decode_value(&h("19")).unwrap_err(), "truncated"),
        (decode_value(&h("00 00")).unwrap_err(), "trailing-bytes"),
        (
            decode_value(&nested_arrays(MAX_DEPTH + 1)).unwrap_err(),
            "too-deep",
        ),
        (CborError::Serialize("x".into()), "serialize"),
        (CborError::Deserialize("x".into()), "deserialize"),
    ];
    for (err, class) in classes {
        assert_eq!(err.class(), class, "{err}");
    }
}

#[test]
fn serde_errors_are_serialize_errors() {
    // A map whose keys serialize identically cannot be encoded.
    use std::collections::BTreeMap;
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct Same(u8);
    impl Serialize for Same {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str("same")
        }
    }
    let map: BTreeMap<Same, u8> = [(Same(1), 1), (Same(2), 2)].into_iter().collect();
    assert_eq!(
        to_vec(&map).unwrap_err().class(),
        "non-canonical:duplicate-map-key"
    );
}

/// serde's value bridge drops a tag in front of a plain integer field and
/// narrows doubles into f32 fields; `from_slice` must still refuse such
/// input, because the decoded value would re-encode to other bytes.
#[test]
fn from_slice_refuses_inputs_that_do_not_re_encode_identically() {
    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct Plain {
        n: u64,
        x: f32,
    }
    let canonical = dreamdb_core::cbor::to_vec(&Plain { n: 5, x: 1.5 }).unwrap();
    assert_eq!(
        dreamdb_core::cbor::from_slice::<Plain>(&canonical).unwrap(),
        Plain { n: 5, x: 1.5 }
    );
    // {"n": 65521(5), "x": 1.5}: canonical CBOR, but not what Plain encodes to.
    let tagged = hex::decode("a2616ed9fff1056178f93e00").unwrap();
    dreamdb_core::cbor::check_canonical(&tagged).unwrap();
    let err = dreamdb_core::cbor::from_slice::<Plain>(&tagged).unwrap_err();
    assert_eq!(err.class(), "deserialize", "{err}");
    // {"n": 5, "x": 1.1 as a double}: narrowing it into f32 would change it.
    let widened = hex::decode("a2616e056178fb3ff199999999999a").unwrap();
    dreamdb_core::cbor::check_canonical(&widened).unwrap();
    assert!(dreamdb_core::cbor::from_slice::<Plain>(&widened).is_err());
}
