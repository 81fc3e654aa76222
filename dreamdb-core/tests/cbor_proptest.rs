//! Property tests for deterministic CBOR.
//!
//! - Any `ciborium::Value` tree (integers over the whole CBOR range, byte
//!   and text strings, floats including specials and subnormals, arrays,
//!   maps, tags) encodes to bytes that the strict decoder accepts and that
//!   re-encode to themselves.
//! - Arbitrary and mutated bytes never make either decoder panic, and
//!   whenever the strict decoder accepts bytes, encoding the result gives
//!   those exact bytes back (so there is exactly one accepted spelling per
//!   value).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ciborium::value::{Integer, Value};
use dreamdb_core::cbor::{
    check_canonical, decode_value, decode_value_lenient, diagnostic, encode_value,
};
use proptest::prelude::*;

fn integer() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-30i128..30).boxed(),
        any::<u64>().prop_map(i128::from).boxed(),
        any::<u64>().prop_map(|n| -1 - i128::from(n)).boxed(),
        prop_oneof![
            Just(0i128),
            Just(23),
            Just(24),
            Just(255),
            Just(256),
            Just(65535),
            Just(65536),
            Just(u32::MAX.into()),
            Just(i128::from(u32::MAX) + 1),
            Just(u64::MAX.into()),
            Just(-1 - i128::from(u64::MAX)),
        ]
        .boxed(),
    ]
    .prop_map(|n| Value::Integer(Integer::try_from(n).unwrap()))
}

fn float() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>(),
        any::<f32>().prop_map(f64::from),
        any::<u16>().prop_map(|bits| half::f16::from_bits(bits).to_f64()),
        any::<u64>().prop_map(f64::from_bits),
        prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::NAN),
            Just(-f64::NAN),
            Just(f64::MIN_POSITIVE),
            Just(f64::from_bits(1)),
            Just(65504.0),
            Just(65505.0),
        ],
    ]
    .prop_map(Value::Float)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => integer(),
        2 => float(),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        2 => any::<String>().prop_map(Value::Text),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(Value::Null),
    ]
}

/// Keeps the first of any map entries whose keys encode identically.
fn dedup_keys(entries: Vec<(Value, Value)>) -> Value {
    let mut seen = Vec::new();
    let mut kept = Vec::new();
    for (key, value) in entries {
        let encoded = encode_value(&key).unwrap();
        if !seen.contains(&encoded) {
            seen.push(encoded);
            kept.push((key, value));
        }
    }
    Value::Map(kept)
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..8).prop_map(dedup_keys),
            (prop_oneof![0u64..30, any::<u64>(), Just(65521u64)], inner)
                .prop_map(|(tag, v)| Value::Tag(tag, Box::new(v))),
        ]
    })
}

/// The checks every byte string must pass, canonical or not.
fn check_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    let strict = decode_value(bytes);
    let lenient = decode_value_lenient(bytes);
    if let Ok(value) = &strict {
        prop_assert_eq!(encode_value(value).unwrap(), bytes.to_vec());
        prop_assert!(check_canonical(bytes).is_ok());
        let lenient = lenient.as_ref().unwrap();
        prop_assert_eq!(encode_value(lenient).unwrap(), bytes.to_vec());
    }
    if let Ok(value) = &lenient {
        // Whatever is well-formed has a canonical form (unless it repeats a
        // map key), and that form is accepted.
        let _ = diagnostic(value);
        if let Ok(canonical) = encode_value(value) {
            prop_assert!(check_canonical(&canonical).is_ok());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_decode_encode_is_identity(v in value()) {
        let bytes = encode_value(&v).unwrap();
        let decoded = decode_value(&bytes).unwrap();
        prop_assert_eq!(encode_value(&decoded).unwrap(), bytes.clone());
        prop_assert_eq!(check_canonical(&bytes), Ok(()));
        let lenient = decode_value_lenient(&bytes).unwrap();
        prop_assert_eq!(encode_value(&lenient).unwrap(), bytes.clone());
        prop_assert_eq!(diagnostic(&decoded), diagnostic(&lenient));
        // Any strict prefix is truncated, never accepted.
        if !bytes.is_empty() {
            let cut = bytes.len() / 2;
            prop_assert!(decode_value(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        check_bytes(&bytes)?;
    }

    #[test]
    fn mutated_encodings_never_panic(
        v in value(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = encode_value(&v).unwrap();
        let mut mutated = bytes.clone();
        let i = position.index(mutated.len());
        mutated[i] = byte;
        check_bytes(&mutated)?;
        check_bytes(&bytes[..cut.index(bytes.len())])?;
        let mut extended = bytes.clone();
        extended.push(byte);
        prop_assert!(decode_value(&extended).is_err());
    }
}
