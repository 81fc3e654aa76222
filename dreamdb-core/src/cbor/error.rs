//! Typed errors for deterministic CBOR, and the canonical rules they name.
//!
//! A decoder that only said "invalid" would make non-canonical input hard to
//! debug and impossible to test precisely, so every rejection says *which*
//! rule was broken and *where* (a byte offset into the input). The ids
//! returned by [`CanonicalRule::id`] and [`CborError::class`] are stable:
//! the conformance vectors in `dreamdb-conformance/vectors/cbor.json` are
//! written in terms of them.

use std::fmt;

/// One rule of DreamDB's deterministic CBOR profile (RFC 8949 §4.2.1 core
/// deterministic encoding, plus the restriction of simple values to
/// `false`, `true` and `null`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CanonicalRule {
    /// Integers, lengths and tag numbers must use the shortest head that
    /// can hold them (RFC 8949 §4.2.1, "preferred serialization").
    ShortestHead,
    /// Strings, arrays and maps must have definite lengths
    /// (RFC 8949 §4.2.1: indefinite-length items are not allowed).
    IndefiniteLength,
    /// Map keys must be sorted in the bytewise lexicographic order of their
    /// deterministic encodings (RFC 8949 §4.2.1).
    MapKeyOrder,
    /// A map must not contain two keys with the same encoding
    /// (RFC 8949 §5.6: such a map is not valid CBOR).
    DuplicateMapKey,
    /// A float must use the shortest of half, single or double precision
    /// that represents its value exactly (RFC 8949 §4.2.1 with §4.2.2 not
    /// applied: integers and floats are never unified).
    ShortestFloat,
    /// The only NaN is the half-precision quiet NaN `f9 7e 00`
    /// (RFC 8949 §4.2.2, recommended for deterministic encoding).
    CanonicalNan,
    /// The only simple values are `false`, `true` and `null`; `undefined`
    /// and unassigned simple values are refused (DreamDB profile).
    SimpleValue,
}

impl CanonicalRule {
    /// Every rule, in a fixed order (useful for exhaustive tests).
    pub const ALL: [CanonicalRule; 7] = [
        CanonicalRule::ShortestHead,
        CanonicalRule::IndefiniteLength,
        CanonicalRule::MapKeyOrder,
        CanonicalRule::DuplicateMapKey,
        CanonicalRule::ShortestFloat,
        CanonicalRule::CanonicalNan,
        CanonicalRule::SimpleValue,
    ];

    /// The stable, kebab-case identifier of the rule (used in
    /// [`CborError::class`] and in conformance vectors).
    pub fn id(&self) -> &'static str {
        match self {
            CanonicalRule::ShortestHead => "shortest-head",
            CanonicalRule::IndefiniteLength => "indefinite-length",
            CanonicalRule::MapKeyOrder => "map-key-order",
            CanonicalRule::DuplicateMapKey => "duplicate-map-key",
            CanonicalRule::ShortestFloat => "shortest-float",
            CanonicalRule::CanonicalNan => "canonical-nan",
            CanonicalRule::SimpleValue => "simple-value",
        }
    }

    /// A one-sentence statement of the rule, for error messages.
    pub fn description(&self) -> &'static str {
        match self {
            CanonicalRule::ShortestHead => {
                "integers, lengths and tag numbers must be encoded in the shortest head"
            }
            CanonicalRule::IndefiniteLength => {
                "strings, arrays and maps must have definite lengths"
            }
            CanonicalRule::MapKeyOrder => {
                "map keys must be sorted bytewise lexicographically by their encodings"
            }
            CanonicalRule::DuplicateMapKey => "a map must not contain the same key twice",
            CanonicalRule::ShortestFloat => {
                "a float must use the shortest of half, single or double precision \
                 that represents it exactly"
            }
            CanonicalRule::CanonicalNan => "the only NaN encoding allowed is f9 7e 00",
            CanonicalRule::SimpleValue => "the only simple values allowed are false, true and null",
        }
    }
}

impl fmt::Display for CanonicalRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule `{}` broken: {}", self.id(), self.description())
    }
}

/// Why bytes could not be decoded as (deterministic) CBOR, or a value could
/// not be encoded.
///
/// Offsets are byte positions in the input. For errors raised while
/// *encoding* (a duplicate map key, a too-deep value) there is no input, and
/// the offset is 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CborError {
    /// Well-formed CBOR that breaks a deterministic-encoding rule.
    #[error(
        "non-canonical CBOR at byte {offset}: {rule} \
         (deterministic encoding, RFC 8949 §4.2.1)"
    )]
    NonCanonical {
        /// The rule broken.
        rule: CanonicalRule,
        /// Offset of the first byte of the offending data item (for map key
        /// rules: of the key that is out of order or repeated).
        offset: usize,
    },
    /// Input that is not well-formed CBOR (RFC 8949 §3, Appendix F).
    #[error("malformed CBOR at byte {offset}: {reason}")]
    Malformed {
        /// Offset of the first byte of the offending data item.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The input ends inside a data item.
    #[error(
        "truncated CBOR: the data item starting at byte {offset} runs past the end of the input"
    )]
    Truncated {
        /// Offset of the first byte of the innermost incomplete data item.
        offset: usize,
    },
    /// Bytes follow the single top-level data item.
    #[error("trailing bytes after the CBOR data item, starting at byte {offset}")]
    TrailingBytes {
        /// Offset of the first byte after the data item.
        offset: usize,
    },
    /// Arrays, maps and tags are nested deeper than the limit.
    #[error("CBOR nested deeper than {limit} levels at byte {offset}")]
    TooDeep {
        /// Offset of the first container that exceeds the limit.
        offset: usize,
        /// The nesting limit.
        limit: usize,
    },
    /// A Rust value could not be turned into CBOR.
    #[error("cannot serialize to CBOR: {0}")]
    Serialize(String),
    /// Valid deterministic CBOR that does not match the expected Rust type.
    #[error("CBOR does not match the expected type: {0}")]
    Deserialize(String),
}

impl CborError {
    /// A stable identifier of the kind of error: `"non-canonical:<rule-id>"`,
    /// `"malformed"`, `"truncated"`, `"trailing-bytes"`, `"too-deep"`,
    /// `"serialize"` or `"deserialize"`.
    pub fn class(&self) -> String {
        match self {
            CborError::NonCanonical { rule, .. } => format!("non-canonical:{}", rule.id()),
            CborError::Malformed { .. } => "malformed".to_owned(),
            CborError::Truncated { .. } => "truncated".to_owned(),
            CborError::TrailingBytes { .. } => "trailing-bytes".to_owned(),
            CborError::TooDeep { .. } => "too-deep".to_owned(),
            CborError::Serialize(_) => "serialize".to_owned(),
            CborError::Deserialize(_) => "deserialize".to_owned(),
        }
    }

    /// The byte offset the error refers to, if it has one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            CborError::NonCanonical { offset, .. }
            | CborError::Malformed { offset, .. }
            | CborError::Truncated { offset }
            | CborError::TrailingBytes { offset }
            | CborError::TooDeep { offset, .. } => Some(*offset),
            CborError::Serialize(_) | CborError::Deserialize(_) => None,
        }
    }
}
