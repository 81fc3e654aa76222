//! Finding an object's outgoing links without knowing its kind.
//!
//! Every hash a DreamDB object holds is CBOR tag 65521 around the 33-byte
//! compact form (design 0001, "Envelope"), so the set of objects one object
//! references is a generic walk over its decoded value. `verify` and `gc`
//! use this and need no per-kind code.

use ciborium::value::Value;
use dreamdb_core::cbor::TAG_CONTENT_HASH;
use dreamdb_core::ContentHash;

/// Every content hash (tag 65521 around a well-formed compact hash) in
/// `value`, in document order, duplicates kept.
///
/// A tag 65521 whose content is not a 33-byte compact BLAKE3 hash names no
/// object and is skipped; the strict decoder of the object's kind refuses
/// such an object anyway. The walk uses an explicit stack, so deep values
/// cannot overflow the call stack.
pub fn links(value: &Value) -> Vec<ContentHash> {
    let mut found = Vec::new();
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Tag(TAG_CONTENT_HASH, inner) => match inner.as_ref() {
                Value::Bytes(bytes) => {
                    if let Ok(hash) = ContentHash::from_compact(bytes) {
                        found.push(hash);
                    }
                }
                other => stack.push(other),
            },
            Value::Tag(_, inner) => stack.push(inner),
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Map(entries) => {
                for (k, v) in entries.iter().rev() {
                    stack.push(v);
                    stack.push(k);
                }
            }
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_hashes_in_order() {
        let a = ContentHash::of(b"a");
        let b = ContentHash::of(b"b");
        let tag = |h: ContentHash| {
            Value::Tag(
                TAG_CONTENT_HASH,
                Box::new(Value::Bytes(h.to_compact().to_vec())),
            )
        };
        let value = Value::Map(vec![
            (Value::Text("x".into()), tag(a)),
            (
                Value::Text("y".into()),
                Value::Array(vec![Value::Integer(1.into()), tag(b), tag(a)]),
            ),
            (
                Value::Text("z".into()),
                Value::Tag(TAG_CONTENT_HASH, Box::new(Value::Bytes(vec![1, 2]))),
            ),
        ]);
        assert_eq!(links(&value), vec![a, b, a]);
    }
}
