//! Deterministic CBOR (placeholder).

/// CBOR tag for a content hash (compact multihash bytes).
pub const TAG_CONTENT_HASH: u64 = 65521;
