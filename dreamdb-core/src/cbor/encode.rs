//! The canonical encoder: `ciborium::Value` to deterministic bytes.
//!
//! Rules applied (RFC 8949 §4.2.1, see [`CanonicalRule`]):
//! - every head (integer, length, tag number) in its shortest form;
//! - definite lengths only;
//! - map entries sorted by the bytes of their encoded keys, and two keys
//!   with the same encoding refused ([`CanonicalRule::DuplicateMapKey`]);
//! - each float in the shortest of half, single and double precision that
//!   holds its value exactly, and every NaN written as `f9 7e 00`.
//!
//! Integers stay integers and floats stay floats: `1` and `1.0` have
//! different encodings (RFC 8949 §4.2.2's numeric unification is *not*
//! applied), because schemas distinguish them.

use ciborium::value::Value;
use half::f16;

use super::error::{CanonicalRule, CborError};
use super::MAX_DEPTH;

/// Encodes `value` canonically.
pub(crate) fn encode(value: &Value) -> Result<Vec<u8>, CborError> {
    let mut out = Vec::new();
    encode_into(value, &mut out, 0)?;
    Ok(out)
}

/// True if `value` (not NaN) is exactly representable in half precision.
pub(crate) fn f32_fits_f16(value: f32) -> bool {
    f16::from_f32(value).to_f32().to_bits() == value.to_bits()
}

/// True if `value` (not NaN) is exactly representable in single precision.
pub(crate) fn f64_fits_f32(value: f64) -> bool {
    // The `as` conversion rounds to nearest; the round trip tells whether
    // anything was lost.
    #[allow(clippy::cast_possible_truncation)]
    let narrowed = value as f32;
    f64::from(narrowed).to_bits() == value.to_bits()
}

/// Writes a head: major type and argument in the shortest form.
fn head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let major = major << 5;
    if arg < 24 {
        out.push(major | arg as u8);
    } else if let Ok(byte) = u8::try_from(arg) {
        out.push(major | 24);
        out.push(byte);
    } else if let Ok(short) = u16::try_from(arg) {
        out.push(major | 25);
        out.extend_from_slice(&short.to_be_bytes());
    } else if let Ok(word) = u32::try_from(arg) {
        out.push(major | 26);
        out.extend_from_slice(&word.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// Writes a length as a head.
fn length(out: &mut Vec<u8>, major: u8, len: usize) -> Result<(), CborError> {
    let len = u64::try_from(len)
        .map_err(|_| CborError::Serialize("length does not fit in 64 bits".to_owned()))?;
    head(out, major, len);
    Ok(())
}

/// Writes a float in its shortest exact form.
fn float(out: &mut Vec<u8>, value: f64) {
    if value.is_nan() {
        out.extend_from_slice(&[0xf9, 0x7e, 0x00]);
        return;
    }
    if f64_fits_f32(value) {
        #[allow(clippy::cast_possible_truncation)]
        let single = value as f32;
        if f32_fits_f16(single) {
            out.push(0xf9);
            out.extend_from_slice(&f16::from_f32(single).to_bits().to_be_bytes());
        } else {
            out.push(0xfa);
            out.extend_from_slice(&single.to_bits().to_be_bytes());
        }
    } else {
        out.push(0xfb);
        out.extend_from_slice(&value.to_bits().to_be_bytes());
    }
}

/// Checks the nesting limit for a container at `depth` (1 = top level).
fn enter(depth: usize) -> Result<(), CborError> {
    if depth > MAX_DEPTH {
        return Err(CborError::TooDeep {
            offset: 0,
            limit: MAX_DEPTH,
        });
    }
    Ok(())
}

fn encode_into(value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), CborError> {
    match value {
        Value::Integer(integer) => {
            let n = i128::from(*integer);
            let (major, arg) = if n >= 0 { (0, n) } else { (1, -1 - n) };
            let arg = u64::try_from(arg)
                .map_err(|_| CborError::Serialize(format!("integer {n} out of CBOR range")))?;
            head(out, major, arg);
        }
        Value::Bytes(bytes) => {
            length(out, 2, bytes.len())?;
            out.extend_from_slice(bytes);
        }
        Value::Text(text) => {
            length(out, 3, text.len())?;
            out.extend_from_slice(text.as_bytes());
        }
        Value::Float(f) => float(out, *f),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Null => out.push(0xf6),
        Value::Tag(tag, inner) => {
            enter(depth + 1)?;
            head(out, 6, *tag);
            encode_into(inner, out, depth + 1)?;
        }
        Value::Array(items) => {
            enter(depth + 1)?;
            length(out, 4, items.len())?;
            for item in items {
                encode_into(item, out, depth + 1)?;
            }
        }
        Value::Map(entries) => {
            enter(depth + 1)?;
            let mut encoded = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                let mut key_bytes = Vec::new();
                encode_into(key, &mut key_bytes, depth + 1)?;
                let mut value_bytes = Vec::new();
                encode_into(value, &mut value_bytes, depth + 1)?;
                encoded.push((key_bytes, value_bytes));
            }
            encoded.sort_by(|a, b| a.0.cmp(&b.0));
            if encoded.windows(2).any(|pair| pair[0].0 == pair[1].0) {
                return Err(CborError::NonCanonical {
                    rule: CanonicalRule::DuplicateMapKey,
                    offset: 0,
                });
            }
            length(out, 5, encoded.len())?;
            for (key_bytes, value_bytes) in encoded {
                out.extend_from_slice(&key_bytes);
                out.extend_from_slice(&value_bytes);
            }
        }
        _ => {
            return Err(CborError::Serialize(
                "unsupported ciborium::Value variant".to_owned(),
            ))
        }
    }
    Ok(())
}
