//! The envelope every object shares, and the generic encode and decode
//! paths.
//!
//! An object is one canonical CBOR map with text keys. Two keys are common
//! to every kind: `kind` (text) and `v` (the format version, 1). The kind's
//! own fields are the other keys; its Rust type never holds `kind` or `v`
//! itself — they are added on encoding and checked and removed on decoding,
//! so a type cannot be encoded under the wrong kind.
//!
//! Decoding is strict, in this order: the content hash (when read by hash),
//! the deterministic-CBOR rules (spec/0002 §4), the envelope (`kind`, `v`),
//! the shape (unknown or missing fields), the kind's invariants, and last
//! that re-encoding the decoded value gives back exactly the input — so an
//! object has one spelling even where serde would accept two (a `null`
//! where a field should be absent, a stray tag around a number).
//!
//! Objects with large byte strings (segment payloads, anchor tables) are
//! written by `encode_with_blobs`, which writes the map itself around
//! them instead of copying them into a value tree; it produces the same
//! bytes as the generic path ([`encode_generic`]) and knows each byte
//! string's absolute offset, which readers use for ranged GETs.

use ciborium::value::Value;
use dreamdb_core::cbor;
use dreamdb_core::ContentHash;
use serde::Serialize;

use super::error::{ObjectError, Problem};
use super::ObjectKind;

/// The only format version this implementation reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// The key of the kind field.
pub const KEY_KIND: &str = "kind";
/// The key of the version field.
pub const KEY_VERSION: &str = "v";

fn encode_error<T: ObjectKind>(detail: impl Into<String>) -> ObjectError {
    ObjectError::new(T::KIND, None, Problem::Encode(detail.into()))
}

/// The envelope entries (`kind`, `v`) of kind `kind`.
fn envelope_entries(kind: &'static str) -> [(Value, Value); 2] {
    [
        (
            Value::Text(KEY_KIND.to_owned()),
            Value::Text(kind.to_owned()),
        ),
        (
            Value::Text(KEY_VERSION.to_owned()),
            Value::Integer(FORMAT_VERSION.into()),
        ),
    ]
}

/// `fields` (a serde struct) as a map of entries, with the envelope added.
fn entries_with_envelope<T: ObjectKind, F: Serialize + ?Sized>(
    fields: &F,
) -> Result<Vec<(Value, Value)>, ObjectError> {
    let value = Value::serialized(fields).map_err(|e| encode_error::<T>(e.to_string()))?;
    let mut entries = value
        .into_map()
        .map_err(|_| encode_error::<T>("an object's fields must serialize to a map"))?;
    entries.extend(envelope_entries(T::KIND));
    Ok(entries)
}

/// The canonical bytes of `object` by the generic path: the value tree is
/// built, the envelope added, and the tree encoded canonically.
///
/// This is the reference every specialised writer is tested against; it
/// copies large byte strings several times, so kinds with a large payload
/// override [`ObjectKind::canonical_bytes`] with a writer that keeps them
/// out of the value tree.
pub fn encode_generic<T: ObjectKind>(object: &T) -> Result<Vec<u8>, ObjectError> {
    let entries = entries_with_envelope::<T, T>(object)?;
    cbor::encode_value(&Value::Map(entries))
        .map_err(|e| ObjectError::new(T::KIND, None, Problem::Encode(e.to_string())))
}

/// Appends a CBOR head (major type and argument, shortest form).
pub(crate) fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
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

/// The length of the CBOR head that carries `arg`.
pub(crate) fn head_len(arg: u64) -> usize {
    match arg {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// The encoded map of an object whose large byte strings ("blobs") are
/// kept out of the value tree: every other entry encoded, all entries
/// sorted by encoded key, and the absolute offset of each blob.
pub(crate) struct BlobLayout {
    /// Encoded (key, value) pairs in canonical order; a blob's value is
    /// only its byte-string head.
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// For each entry, the index of its blob in the caller's list.
    blob_of_entry: Vec<Option<usize>>,
    /// Length of each blob, in the caller's order.
    blob_lens: Vec<usize>,
    /// Absolute offset of each blob's first byte, in the caller's order.
    blob_offsets: Vec<usize>,
    /// Total encoded length.
    total_len: usize,
}

impl BlobLayout {
    /// Lays out the object of kind `T` whose fields other than the blobs
    /// are `header` (a serde struct), and whose blobs are `(key, length)`.
    pub(crate) fn new<T: ObjectKind, H: Serialize + ?Sized>(
        header: &H,
        blobs: &[(&str, usize)],
    ) -> Result<Self, ObjectError> {
        let fail = |e: cbor::CborError| encode_error::<T>(e.to_string());
        let mut entries: Vec<(Vec<u8>, Vec<u8>, Option<usize>)> = Vec::new();
        for (key, value) in entries_with_envelope::<T, H>(header)? {
            entries.push((
                cbor::encode_value(&key).map_err(fail)?,
                cbor::encode_value(&value).map_err(fail)?,
                None,
            ));
        }
        for (index, (key, len)) in blobs.iter().enumerate() {
            let key_bytes = cbor::encode_value(&Value::Text((*key).to_owned())).map_err(fail)?;
            let len = u64::try_from(*len)
                .map_err(|_| encode_error::<T>("blob longer than 2^64 bytes"))?;
            let mut head = Vec::with_capacity(9);
            write_head(&mut head, 2, len);
            entries.push((key_bytes, head, Some(index)));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if entries.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return Err(encode_error::<T>("two fields share one key"));
        }
        let count =
            u64::try_from(entries.len()).map_err(|_| encode_error::<T>("too many fields"))?;
        let blob_lens: Vec<usize> = blobs.iter().map(|(_, len)| *len).collect();
        let mut blob_offsets = vec![0; blobs.len()];
        let mut offset = head_len(count);
        for (key, value, blob) in &entries {
            offset += key.len() + value.len();
            if let Some(index) = blob {
                blob_offsets[*index] = offset;
                offset += blob_lens[*index];
            }
        }
        let blob_of_entry = entries.iter().map(|(_, _, blob)| *blob).collect();
        Ok(BlobLayout {
            entries: entries.into_iter().map(|(k, v, _)| (k, v)).collect(),
            blob_of_entry,
            blob_lens,
            blob_offsets,
            total_len: offset,
        })
    }

    /// Absolute offset of blob `index`'s first byte in the encoded object.
    pub(crate) fn blob_offset(&self, index: usize) -> u64 {
        self.blob_offsets.get(index).copied().unwrap_or(0) as u64
    }

    /// Writes the object, with `blobs` (in the order given to
    /// [`BlobLayout::new`]) as the blobs' contents. The output is allocated
    /// once, at its exact size.
    pub(crate) fn write<T: ObjectKind>(&self, blobs: &[&[u8]]) -> Result<Vec<u8>, ObjectError> {
        let lens: Vec<usize> = blobs.iter().map(|b| b.len()).collect();
        if lens != self.blob_lens {
            return Err(encode_error::<T>("blob lengths changed after layout"));
        }
        let mut out = Vec::with_capacity(self.total_len);
        write_head(&mut out, 5, self.entries.len() as u64);
        for ((key, value), blob) in self.entries.iter().zip(&self.blob_of_entry) {
            out.extend_from_slice(key);
            out.extend_from_slice(value);
            if let Some(blob) = blob.and_then(|index| blobs.get(index)) {
                out.extend_from_slice(blob);
            }
        }
        Ok(out)
    }
}

impl BlobLayout {
    /// [`BlobLayout::write`] with each blob's bytes appended by
    /// `fill(index, out)` in place, so a blob assembled from pieces is
    /// never built on its own first. `fill` must append exactly the
    /// length given to [`BlobLayout::new`].
    pub(crate) fn write_filled<T: ObjectKind>(
        &self,
        mut fill: impl FnMut(usize, &mut Vec<u8>),
    ) -> Result<Vec<u8>, ObjectError> {
        let mut out = Vec::with_capacity(self.total_len);
        write_head(&mut out, 5, self.entries.len() as u64);
        for ((key, value), blob) in self.entries.iter().zip(&self.blob_of_entry) {
            out.extend_from_slice(key);
            out.extend_from_slice(value);
            if let Some(index) = *blob {
                let before = out.len();
                fill(index, &mut out);
                if out.len() - before != self.blob_lens.get(index).copied().unwrap_or(0) {
                    return Err(encode_error::<T>("a blob's length changed after layout"));
                }
            }
        }
        Ok(out)
    }
}

/// Encodes an object whose fields other than some large byte strings are
/// `header`, without copying the byte strings into a value tree. The
/// bytes equal [`encode_generic`]'s for the same object.
pub(crate) fn encode_with_blobs<T: ObjectKind, H: Serialize + ?Sized>(
    header: &H,
    blobs: &[(&str, &[u8])],
) -> Result<Vec<u8>, ObjectError> {
    let lens: Vec<(&str, usize)> = blobs.iter().map(|(k, b)| (*k, b.len())).collect();
    let contents: Vec<&[u8]> = blobs.iter().map(|(_, b)| *b).collect();
    BlobLayout::new::<T, H>(header, &lens)?.write::<T>(&contents)
}

/// Decodes `bytes` as an object of kind `T`, named `hash` in errors. The
/// content hash is *not* checked here (see [`ObjectKind::decode`]).
pub(crate) fn decode_checked<T: ObjectKind>(
    hash: ContentHash,
    bytes: &[u8],
) -> Result<T, ObjectError> {
    let fail = |problem: Problem| ObjectError::new(T::KIND, Some(hash), problem);
    let value = cbor::decode_value(bytes).map_err(|e| fail(Problem::Cbor(e)))?;
    let entries = value
        .into_map()
        .map_err(|_| fail(Problem::Shape("an object must be a CBOR map".to_owned())))?;
    let mut kind = None;
    let mut version = None;
    let mut fields = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        match key.as_text() {
            Some(KEY_KIND) => kind = Some(value),
            Some(KEY_VERSION) => version = Some(value),
            Some(_) => fields.push((key, value)),
            None => {
                return Err(fail(Problem::Shape(
                    "every key of an object must be text".to_owned(),
                )))
            }
        }
    }
    match kind {
        None => return Err(fail(Problem::Shape("missing field `kind`".to_owned()))),
        Some(Value::Text(found)) if found == T::KIND => {}
        Some(Value::Text(found)) => {
            return Err(fail(Problem::WrongKind {
                expected: T::KIND,
                found,
            }))
        }
        Some(_) => return Err(fail(Problem::Shape("field `kind` must be text".to_owned()))),
    }
    match version {
        None => return Err(fail(Problem::Shape("missing field `v`".to_owned()))),
        Some(Value::Integer(found)) => match u64::try_from(found) {
            Ok(FORMAT_VERSION) => {}
            Ok(found) => return Err(fail(Problem::UnknownVersion { found })),
            Err(_) => {
                return Err(fail(Problem::Shape(
                    "field `v` must be an unsigned integer".to_owned(),
                )))
            }
        },
        Some(_) => {
            return Err(fail(Problem::Shape(
                "field `v` must be an unsigned integer".to_owned(),
            )))
        }
    }
    let object: T = Value::Map(fields)
        .deserialized()
        .map_err(|e| fail(Problem::Shape(e.to_string())))?;
    object
        .validate()
        .map_err(|invariant| fail(Problem::Invariant(invariant)))?;
    let canonical = object.canonical_bytes().map_err(|e| fail(e.problem))?;
    if canonical != bytes {
        return Err(fail(Problem::ObjectForm));
    }
    Ok(object)
}
