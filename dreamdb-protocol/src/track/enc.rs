//! A small canonical CBOR writer for index pages, and exact encoded sizes.
//!
//! Index pages are the hottest objects DreamDB writes (a bulk load of a
//! million runs encodes thousands of them), and the layouts are fixed, so
//! they are written directly rather than through a generic value tree.
//! The output is the deterministic encoding of spec/0002 §4 (shortest
//! heads, map keys in bytewise order of their encodings); a unit test
//! checks it byte for byte against `dreamdb_core::cbor::encode_value`.
//! The size functions let the page splitter work without encoding.

use ciborium::value::{Integer, Value};
use dreamdb_core::cbor::TAG_CONTENT_HASH;
use dreamdb_core::hash::COMPACT_LEN;
use dreamdb_core::ContentHash;

const MAJOR_UINT: u8 = 0;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;

/// Writes a head: major type and argument, shortest form.
pub(crate) fn head(out: &mut Vec<u8>, major: u8, value: u64) {
    let m = major << 5;
    if value < 24 {
        out.push(m | value as u8);
    } else if value <= 0xff {
        out.push(m | 24);
        out.push(value as u8);
    } else if value <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(value as u16).to_be_bytes());
    } else if value <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(value as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Size of a head with this argument.
pub(crate) const fn head_len(value: u64) -> usize {
    if value < 24 {
        1
    } else if value <= 0xff {
        2
    } else if value <= 0xffff {
        3
    } else if value <= 0xffff_ffff {
        5
    } else {
        9
    }
}

pub(crate) fn uint(out: &mut Vec<u8>, value: u64) {
    head(out, MAJOR_UINT, value);
}

pub(crate) fn text(out: &mut Vec<u8>, s: &str) {
    head(out, MAJOR_TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, MAJOR_BYTES, b.len() as u64);
    out.extend_from_slice(b);
}

pub(crate) fn array(out: &mut Vec<u8>, len: usize) {
    head(out, MAJOR_ARRAY, len as u64);
}

pub(crate) fn map(out: &mut Vec<u8>, len: usize) {
    head(out, MAJOR_MAP, len as u64);
}

pub(crate) fn hash(out: &mut Vec<u8>, h: &ContentHash) {
    head(out, MAJOR_TAG, TAG_CONTENT_HASH);
    bytes(out, &h.to_compact());
}

/// Encoded size of a tagged content hash.
pub(crate) const HASH_LEN: usize =
    head_len(TAG_CONTENT_HASH) + head_len(COMPACT_LEN as u64) + COMPACT_LEN;

/// Encoded size of a byte string of `len` bytes.
pub(crate) const fn bytes_len(len: usize) -> usize {
    head_len(len as u64) + len
}

/// A tagged content hash as a value.
pub(crate) fn hash_value(h: &ContentHash) -> Value {
    Value::Tag(
        TAG_CONTENT_HASH,
        Box::new(Value::Bytes(h.to_compact().to_vec())),
    )
}

/// An unsigned integer as a value.
pub(crate) fn uint_value(n: u64) -> Value {
    Value::Integer(Integer::from(n))
}

/// Reads a tagged content hash.
pub(crate) fn read_hash(value: &Value) -> Result<ContentHash, String> {
    match value {
        Value::Tag(TAG_CONTENT_HASH, inner) => match inner.as_ref() {
            Value::Bytes(b) => ContentHash::from_compact(b).map_err(|e| e.to_string()),
            _ => Err("tag 65521 must wrap a byte string".to_owned()),
        },
        _ => Err("expected a content hash (tag 65521)".to_owned()),
    }
}

/// Reads an unsigned integer.
pub(crate) fn read_uint(value: &Value) -> Result<u64, String> {
    match value {
        Value::Integer(i) => {
            u64::try_from(*i).map_err(|_| "expected an unsigned integer".to_owned())
        }
        _ => Err("expected an unsigned integer".to_owned()),
    }
}

/// The text key of a map entry.
pub(crate) fn read_text_key(value: &Value) -> Result<&str, String> {
    match value {
        Value::Text(t) => Ok(t.as_str()),
        _ => Err("map keys must be text".to_owned()),
    }
}
