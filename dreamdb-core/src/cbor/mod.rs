//! Deterministic CBOR (RFC 8949 §4.2.1) for DreamDB objects.
//!
//! Every immutable DreamDB object is named by the BLAKE3 hash of its bytes,
//! so the same value must always produce the same bytes, on every platform
//! and in every implementation. This module provides:
//!
//! - an encoder that always writes the one canonical encoding of a value
//!   ([`to_vec`], [`encode_value`]);
//! - a strict decoder that accepts *only* canonical bytes and, on anything
//!   else, names the [`CanonicalRule`] broken and the byte offset
//!   ([`from_slice`], [`decode_value`], [`check_canonical`]) — so a peer
//!   cannot smuggle a second spelling of an object past hash verification;
//! - a lenient decoder that checks well-formedness only
//!   ([`decode_value_lenient`]), to describe what rejected input *would*
//!   mean, and RFC 8949 §8 diagnostic notation to print it ([`diagnostic()`]);
//! - the tag numbers DreamDB assigns ([`TAG_CONTENT_HASH`] and friends).
//!
//! The canonical form ("DreamDB deterministic CBOR"):
//!
//! | rule id             | requirement                                             |
//! |---------------------|---------------------------------------------------------|
//! | `shortest-head`     | integers, lengths and tag numbers in the shortest head  |
//! | `indefinite-length` | definite lengths only                                   |
//! | `map-key-order`     | map keys sorted bytewise by their encodings             |
//! | `duplicate-map-key` | no two map keys with the same encoding                  |
//! | `shortest-float`    | shortest of f16/f32/f64 that keeps the value exactly    |
//! | `canonical-nan`     | the only NaN is `f9 7e 00`                              |
//! | `simple-value`      | only `false`, `true`, `null` (no `undefined` etc.)      |
//!
//! Integers and floats are never unified (`1` and `1.0` differ), and
//! bignums (tags 2 and 3) are treated as ordinary tags. Input is limited to
//! [`MAX_DEPTH`] levels of nesting, and declared lengths are checked against
//! the input before anything is allocated, so hostile bytes cannot make the
//! decoder overflow its stack or allocate more than the input's size.
//!
//! Serde values go through `ciborium::Value` (`Value::serialized` /
//! `Value::deserialized`); `ciborium`'s own reader and writer are not used,
//! because they neither produce nor check the canonical form.

mod decode;
mod encode;
mod error;
mod notation;
mod tags;

use ciborium::value::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use error::{CanonicalRule, CborError};
pub use tags::{TAG_ADDRESS, TAG_CONTENT_HASH, TAG_MODALITY, TAG_TIME_ANCHOR, TAG_TIME_RANGE};

/// Maximum nesting depth of arrays, maps and tags (a top-level array is at
/// depth 1). Deeper input is refused with [`CborError::TooDeep`].
pub const MAX_DEPTH: usize = 128;

/// Serializes `value` to its canonical CBOR bytes.
///
/// Fails with [`CborError::Serialize`] if serde refuses the value, or with
/// [`CanonicalRule::DuplicateMapKey`] if a map has two keys that encode
/// identically.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CborError> {
    let value = Value::serialized(value).map_err(|e| CborError::Serialize(e.to_string()))?;
    encode_value(&value)
}

/// Decodes canonical CBOR bytes into a `T`, exactly.
///
/// The bytes are first checked strictly (as by [`decode_value`]); a value
/// that is canonical but does not fit `T` is [`CborError::Deserialize`].
///
/// serde's value bridge is lenient in ways that would let two different
/// canonical byte strings decode to the same `T` (a tag in front of a plain
/// integer field is dropped, a double is narrowed into an `f32` field). So
/// the decoded `T` is encoded again and must give back exactly `bytes`;
/// otherwise the input is refused as [`CborError::Deserialize`]. One value,
/// one byte string — in both directions.
pub fn from_slice<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, CborError> {
    let value = decode_value(bytes)?;
    let decoded: T = value
        .deserialized()
        .map_err(|e| CborError::Deserialize(e.to_string()))?;
    if to_vec(&decoded)? != bytes {
        return Err(CborError::Deserialize(
            "the decoded value does not re-encode to the same bytes (a field accepted a \
             tagged, widened or narrowed form, or an unknown field was ignored)"
                .to_owned(),
        ));
    }
    Ok(decoded)
}

/// Decodes exactly one canonical CBOR data item, refusing any
/// non-canonical, malformed, truncated or over-deep input and trailing
/// bytes.
pub fn decode_value(bytes: &[u8]) -> Result<Value, CborError> {
    decode::decode(bytes, decode::Mode::Strict)
}

/// Encodes a `ciborium::Value` canonically (map entries sorted by their
/// encoded keys, shortest heads and floats, definite lengths).
pub fn encode_value(value: &Value) -> Result<Vec<u8>, CborError> {
    encode::encode(value)
}

/// Checks that `bytes` are exactly one canonical CBOR data item.
pub fn check_canonical(bytes: &[u8]) -> Result<(), CborError> {
    decode_value(bytes).map(drop)
}

/// Decodes exactly one *well-formed* CBOR data item, canonical or not:
/// any head size, definite or indefinite lengths (chunks of strings are
/// joined), any map key order, duplicate keys kept, any float width or NaN.
///
/// Meant for describing what rejected input would mean, never for reading
/// objects. Simple values other than `false`/`true`/`null` (such as
/// `undefined`) cannot be held by `ciborium::Value` and are still refused
/// with [`CanonicalRule::SimpleValue`]; the depth and length limits of the
/// strict decoder apply too.
pub fn decode_value_lenient(bytes: &[u8]) -> Result<Value, CborError> {
    decode::decode(bytes, decode::Mode::Lenient)
}

/// Renders `value` in RFC 8949 §8 diagnostic notation, in the style of
/// RFC 8949 Appendix A: `[1, [2, 3]]`, `{"a": 1}`, `h'0102'`, `"text"`,
/// `1.5`, `-0.0`, `1.0e+300`, `Infinity`, `NaN`, `1(1363896240)`, `true`,
/// `null`.
///
/// Floats are written with the shortest decimal digits that read back as
/// the same `f64` (so the value is exact), using ECMAScript number layout
/// with a mandatory fraction or exponent: `100000.0`, `0.00006103515625`,
/// `5.960464477539063e-8`, `1.0e+300`. Text is ASCII with JSON escapes
/// (`"\u00fc"`). The full grammar is documented in the private `notation`
/// module.
pub fn diagnostic(value: &Value) -> String {
    notation::render(value)
}
