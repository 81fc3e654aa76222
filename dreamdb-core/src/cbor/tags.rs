//! CBOR tag numbers assigned by DreamDB.
//!
//! DreamDB objects carry a few semantic types that must be recognisable
//! without knowing the object's kind (for example, so that `verify` and `gc`
//! can find every outgoing link by walking any object). Each gets a tag in
//! the first-come-first-served range of the IANA CBOR tags registry
//! (RFC 8949 §9.2), all encoded with a three-byte head (`d9 ff f1` ..).
//!
//! The values are plain `u64` constants so they can be used as const
//! generic arguments, e.g. `ciborium::tag::Required<_, { TAG_CONTENT_HASH }>`.

/// Tag for a content hash: wraps a byte string holding the 33-byte compact
/// multihash form (`0x1e` followed by the BLAKE3-256 digest).
pub const TAG_CONTENT_HASH: u64 = 65521;

/// Tag for a DreamDB address: wraps a text string holding a `dreamdb://` URI.
pub const TAG_ADDRESS: u64 = 65522;

/// Tag for a modality: wraps a text string holding a modality tag.
pub const TAG_MODALITY: u64 = 65523;

/// Tag for a time anchor: wraps an unsigned integer of nanosecond ticks.
pub const TAG_TIME_ANCHOR: u64 = 65524;

/// Tag for a time range: wraps an array of two unsigned integers of
/// nanosecond ticks, `[start, end]`, half-open (`start` included, `end`
/// excluded).
pub const TAG_TIME_RANGE: u64 = 65525;
