//! RFC 8949 Appendix A ("Examples of Encoded CBOR Data Items"), every row.
//!
//! Each example whose encoding is deterministic must decode strictly,
//! re-encode byte for byte and print the RFC's diagnostic notation. The
//! others must be refused with the rule they break, at the right offset,
//! while the lenient decoder still reads them as the RFC says.
//!
//! The table is copied from the RFC; the classification is ours:
//! - indefinite-length strings, arrays and maps → `indefinite-length`;
//! - Infinity and -Infinity in single or double precision →
//!   `shortest-float` (half precision holds them exactly);
//! - NaN in single or double precision → `canonical-nan`;
//! - `undefined`, `simple(16)` and `simple(255)` → `simple-value`.
//!
//! `100000.0` (`fa 47 c3 50 00`), `3.4028234663852886e+38`
//! (`fa 7f 7f ff ff`), `1.1`, `-4.1`, `1.0e+300` and `1(1363896240.5)` are
//! *already* in their shortest exact width, so they are deterministic.
//!
//! The two bignum rows are deterministic too (2^64 and -2^64-1 do not fit
//! major types 0/1), but we print tags 2 and 3 as ordinary tags, so their
//! diagnostic is `2(h'010000000000000000')` rather than the RFC's decimal
//! number.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dreamdb_core::cbor::{
    check_canonical, decode_value, decode_value_lenient, diagnostic, encode_value, CborError,
};

/// How an example must be treated.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Deterministic: accepted, re-encoded identically, printed as the RFC.
    Valid,
    /// Deterministic, printed differently from the RFC (bignums).
    ValidAs(&'static str),
    /// Refused with this error class at this offset; the lenient decoder
    /// reads it and prints the given diagnostic (without encoding
    /// indicators), or refuses it too (`None`).
    Invalid(&'static str, usize, Option<&'static str>),
}

use Expect::{Invalid, Valid, ValidAs};

/// (RFC diagnostic, RFC encoding, expectation), in the RFC's order.
const APPENDIX_A: &[(&str, &str, Expect)] = &[
    ("0", "00", Valid),
    ("1", "01", Valid),
    ("10", "0a", Valid),
    ("23", "17", Valid),
    ("24", "1818", Valid),
    ("25", "1819", Valid),
    ("100", "1864", Valid),
    ("1000", "1903e8", Valid),
    ("1000000", "1a000f4240", Valid),
    ("1000000000000", "1b000000e8d4a51000", Valid),
    ("18446744073709551615", "1bffffffffffffffff", Valid),
    (
        "18446744073709551616",
        "c249010000000000000000",
        ValidAs("2(h'010000000000000000')"),
    ),
    ("-18446744073709551616", "3bffffffffffffffff", Valid),
    (
        "-18446744073709551617",
        "c349010000000000000000",
        ValidAs("3(h'010000000000000000')"),
    ),
    ("-1", "20", Valid),
    ("-10", "29", Valid),
    ("-100", "3863", Valid),
    ("-1000", "3903e7", Valid),
    ("0.0", "f90000", Valid),
    ("-0.0", "f98000", Valid),
    ("1.0", "f93c00", Valid),
    ("1.1", "fb3ff199999999999a", Valid),
    ("1.5", "f93e00", Valid),
    ("65504.0", "f97bff", Valid),
    ("100000.0", "fa47c35000", Valid),
    ("3.4028234663852886e+38", "fa7f7fffff", Valid),
    ("1.0e+300", "fb7e37e43c8800759c", Valid),
    ("5.960464477539063e-8", "f90001", Valid),
    ("0.00006103515625", "f90400", Valid),
    ("-4.0", "f9c400", Valid),
    ("-4.1", "fbc010666666666666", Valid),
    ("Infinity", "f97c00", Valid),
    ("NaN", "f97e00", Valid),
    ("-Infinity", "f9fc00", Valid),
    (
        "Infinity",
        "fa7f800000",
        Invalid("non-canonical:shortest-float", 0, Some("Infinity")),
    ),
    (
        "NaN",
        "fa7fc00000",
        Invalid("non-canonical:canonical-nan", 0, Some("NaN")),
    ),
    (
        "-Infinity",
        "faff800000",
        Invalid("non-canonical:shortest-float", 0, Some("-Infinity")),
    ),
    (
        "Infinity",
        "fb7ff0000000000000",
        Invalid("non-canonical:shortest-float", 0, Some("Infinity")),
    ),
    (
        "NaN",
        "fb7ff8000000000000",
        Invalid("non-canonical:canonical-nan", 0, Some("NaN")),
    ),
    (
        "-Infinity",
        "fbfff0000000000000",
        Invalid("non-canonical:shortest-float", 0, Some("-Infinity")),
    ),
    ("false", "f4", Valid),
    ("true", "f5", Valid),
    ("null", "f6", Valid),
    (
        "undefined",
        "f7",
        Invalid("non-canonical:simple-value", 0, None),
    ),
    (
        "simple(16)",
        "f0",
        Invalid("non-canonical:simple-value", 0, None),
    ),
    (
        "simple(255)",
        "f8ff",
        Invalid("non-canonical:simple-value", 0, None),
    ),
    (
        "0(\"2013-03-21T20:04:00Z\")",
        "c074323031332d30332d32315432303a30343a30305a",
        Valid,
    ),
    ("1(1363896240)", "c11a514b67b0", Valid),
    ("1(1363896240.5)", "c1fb41d452d9ec200000", Valid),
    ("23(h'01020304')", "d74401020304", Valid),
    ("24(h'6449455446')", "d818456449455446", Valid),
    (
        "32(\"http://www.example.com\")",
        "d82076687474703a2f2f7777772e6578616d706c652e636f6d",
        Valid,
    ),
    ("h''", "40", Valid),
    ("h'01020304'", "4401020304", Valid),
    ("\"\"", "60", Valid),
    ("\"a\"", "6161", Valid),
    ("\"IETF\"", "6449455446", Valid),
    ("\"\\\"\\\\\"", "62225c", Valid),
    ("\"\\u00fc\"", "62c3bc", Valid),
    ("\"\\u6c34\"", "63e6b0b4", Valid),
    ("\"\\ud800\\udd51\"", "64f0908591", Valid),
    ("[]", "80", Valid),
    ("[1, 2, 3]", "83010203", Valid),
    ("[1, [2, 3], [4, 5]]", "8301820203820405", Valid),
    (
        "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]",
        "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
        Valid,
    ),
    ("{}", "a0", Valid),
    ("{1: 2, 3: 4}", "a201020304", Valid),
    ("{\"a\": 1, \"b\": [2, 3]}", "a26161016162820203", Valid),
    ("[\"a\", {\"b\": \"c\"}]", "826161a161626163", Valid),
    (
        "{\"a\": \"A\", \"b\": \"B\", \"c\": \"C\", \"d\": \"D\", \"e\": \"E\"}",
        "a56161614161626142616361436164614461656145",
        Valid,
    ),
    (
        "(_ h'0102', h'030405')",
        "5f42010243030405ff",
        Invalid("non-canonical:indefinite-length", 0, Some("h'0102030405'")),
    ),
    (
        "(_ \"strea\", \"ming\")",
        "7f657374726561646d696e67ff",
        Invalid("non-canonical:indefinite-length", 0, Some("\"streaming\"")),
    ),
    (
        "[_ ]",
        "9fff",
        Invalid("non-canonical:indefinite-length", 0, Some("[]")),
    ),
    (
        "[_ 1, [2, 3], [_ 4, 5]]",
        "9f018202039f0405ffff",
        Invalid(
            "non-canonical:indefinite-length",
            0,
            Some("[1, [2, 3], [4, 5]]"),
        ),
    ),
    (
        "[_ 1, [2, 3], [4, 5]]",
        "9f01820203820405ff",
        Invalid(
            "non-canonical:indefinite-length",
            0,
            Some("[1, [2, 3], [4, 5]]"),
        ),
    ),
    (
        "[1, [2, 3], [_ 4, 5]]",
        "83018202039f0405ff",
        Invalid(
            "non-canonical:indefinite-length",
            5,
            Some("[1, [2, 3], [4, 5]]"),
        ),
    ),
    (
        "[1, [_ 2, 3], [4, 5]]",
        "83019f0203ff820405",
        Invalid(
            "non-canonical:indefinite-length",
            2,
            Some("[1, [2, 3], [4, 5]]"),
        ),
    ),
    (
        "[_ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]",
        "9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff",
        Invalid(
            "non-canonical:indefinite-length",
            0,
            Some("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]"),
        ),
    ),
    (
        "{_ \"a\": 1, \"b\": [_ 2, 3]}",
        "bf61610161629f0203ffff",
        Invalid(
            "non-canonical:indefinite-length",
            0,
            Some("{\"a\": 1, \"b\": [2, 3]}"),
        ),
    ),
    (
        "[\"a\", {_ \"b\": \"c\"}]",
        "826161bf61626163ff",
        Invalid(
            "non-canonical:indefinite-length",
            3,
            Some("[\"a\", {\"b\": \"c\"}]"),
        ),
    ),
    (
        "{_ \"Fun\": true, \"Amt\": -2}",
        "bf6346756ef563416d7421ff",
        Invalid(
            "non-canonical:indefinite-length",
            0,
            Some("{\"Fun\": true, \"Amt\": -2}"),
        ),
    ),
];

#[test]
fn table_is_complete() {
    // RFC 8949 Appendix A has 81 rows (RFC 7049's `simple(24)` = f818 was
    // dropped because it is not well-formed under RFC 8949 §3.3).
    assert_eq!(APPENDIX_A.len(), 81);
    let valid = APPENDIX_A
        .iter()
        .filter(|(_, _, e)| matches!(e, Valid | ValidAs(_)))
        .count();
    assert_eq!(valid, 61);
}

#[test]
fn deterministic_examples_round_trip_and_print_as_the_rfc() {
    for &(rfc_diagnostic, hex, expect) in APPENDIX_A {
        let printed = match expect {
            Valid => rfc_diagnostic,
            ValidAs(ours) => ours,
            Invalid(..) => continue,
        };
        let bytes = hex::decode(hex).unwrap();
        let value = decode_value(&bytes).unwrap_or_else(|e| panic!("{hex}: {e}"));
        assert_eq!(encode_value(&value).unwrap(), bytes, "{hex}");
        assert_eq!(diagnostic(&value), printed, "{hex}");
        // Lenient decoding agrees on canonical input (compared through the
        // encoding, since NaN != NaN).
        let lenient = decode_value_lenient(&bytes).unwrap();
        assert_eq!(encode_value(&lenient).unwrap(), bytes, "{hex}");
    }
}

#[test]
fn non_deterministic_examples_are_refused_with_the_rule() {
    for &(rfc_diagnostic, hex, expect) in APPENDIX_A {
        let Invalid(class, offset, lenient) = expect else {
            continue;
        };
        let bytes = hex::decode(hex).unwrap();
        let err = decode_value(&bytes).unwrap_err();
        assert_eq!(err.class(), class, "{hex} ({rfc_diagnostic}): {err}");
        assert_eq!(err.offset(), Some(offset), "{hex}");
        assert_eq!(check_canonical(&bytes), Err(err.clone()), "{hex}");
        match (decode_value_lenient(&bytes), lenient) {
            (Ok(value), Some(printed)) => {
                assert_eq!(diagnostic(&value), printed, "{hex}");
                // Its canonical re-encoding is accepted and differs.
                let canonical = encode_value(&value).unwrap();
                assert_ne!(canonical, bytes, "{hex}");
                check_canonical(&canonical).unwrap();
            }
            (Err(lenient_err), None) => assert_eq!(lenient_err, err, "{hex}"),
            (other, expected) => panic!("{hex}: lenient {other:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn rfc7049_simple_24_is_malformed() {
    // RFC 7049 listed `simple(24)` as f8 18; RFC 8949 §3.3 makes it
    // not well-formed.
    assert!(matches!(
        decode_value_lenient(&[0xf8, 0x18]),
        Err(CborError::Malformed { offset: 0, .. })
    ));
}
