//! The strict CBOR decoder: never panics; accepts exactly the canonical
//! encodings (decode → encode gives back the input); agrees with
//! `check_canonical` and with `from_slice`; anything strict accepts, the
//! lenient decoder accepts as the same value.
#![no_main]

use ciborium::value::Value;
use dreamdb_core::cbor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let strict = cbor::decode_value(data);
    assert_eq!(
        strict.is_ok(),
        cbor::check_canonical(data).is_ok(),
        "decode_value and check_canonical disagree"
    );
    let lenient = cbor::decode_value_lenient(data);
    if let Ok(value) = &strict {
        let again = cbor::encode_value(value).expect("a decoded value re-encodes");
        assert_eq!(again.as_slice(), data, "canonical round trip");
        // Compared by encoding: NaN != NaN as values.
        let typed: Value =
            cbor::from_slice(data).expect("from_slice accepts what decode_value does");
        assert_eq!(cbor::encode_value(&typed).ok().as_deref(), Some(data));
        let lenient = lenient.as_ref().expect("lenient accepts what strict does");
        assert_eq!(
            cbor::encode_value(lenient).ok().as_deref(),
            Some(data),
            "lenient disagrees"
        );
        let _ = cbor::diagnostic(value);
    } else if let Ok(value) = &lenient {
        // Non-canonical but well formed: printing it must not panic, and
        // its canonical re-encoding must be accepted strictly.
        let _ = cbor::diagnostic(value);
        if let Ok(bytes) = cbor::encode_value(value) {
            let back = cbor::decode_value(&bytes).expect("canonical encoding decodes strictly");
            assert_eq!(cbor::encode_value(&back).ok(), Some(bytes));
        }
    }
});
