//! The one error type of object encoding and decoding.
//!
//! Every error names the object it is about — its kind and, once known, its
//! content hash — and says what is wrong with a stable class id
//! ([`ObjectError::class`]) that conformance vectors and callers can match
//! on without parsing messages.

use std::fmt;

use dreamdb_core::cbor::CborError;
use dreamdb_core::ContentHash;

/// A per-kind rule that a decoded (or to-be-encoded) object breaks.
///
/// `rule` is a stable kebab-case id (for example `runs-sorted` or
/// `dim-range`); `detail` says what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invariant {
    /// Stable id of the rule broken.
    pub rule: &'static str,
    /// What was found, for humans.
    pub detail: String,
}

impl Invariant {
    /// An invariant violation of `rule`, described by `detail`.
    pub fn new(rule: &'static str, detail: impl Into<String>) -> Self {
        Invariant {
            rule,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant `{}` broken: {}", self.rule, self.detail)
    }
}

/// What is wrong with an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The bytes do not hash to the name they were fetched under.
    #[error("bytes hash to {actual}, not to the expected name")]
    HashMismatch {
        /// The hash of the bytes actually read.
        actual: ContentHash,
    },
    /// The bytes are not one canonical CBOR data item (a rule of spec/0002
    /// §4 is broken, or the input is malformed, truncated or too deep).
    #[error("{0}")]
    Cbor(CborError),
    /// The bytes are canonical CBOR and decode to a valid object, but that
    /// object's canonical encoding differs from them: the same value was
    /// spelled another way (a field given as null instead of being left
    /// out, an unexpected tag around a number, ...).
    #[error("not the canonical form of the object it decodes to (a second spelling of one value)")]
    ObjectForm,
    /// The `kind` field names another kind.
    #[error("expected kind {expected:?}, found {found:?}")]
    WrongKind {
        /// The kind the reader asked for.
        expected: &'static str,
        /// The kind the object says it is.
        found: String,
    },
    /// The `v` field holds a format version this implementation does not
    /// know.
    #[error("unknown format version {found} (this implementation reads v = 1)")]
    UnknownVersion {
        /// The version found.
        found: u64,
    },
    /// The value does not have the kind's shape: not a map, a missing or
    /// unknown field, a field of the wrong type.
    #[error("wrong shape: {0}")]
    Shape(String),
    /// The value has the right shape but breaks one of the kind's rules.
    #[error("{0}")]
    Invariant(Invariant),
    /// The value could not be encoded at all.
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Why an object could not be encoded or decoded.
///
/// Always names the object: its `kind` and, except for objects that were
/// never encoded, its content `hash` (the name it was expected under when
/// it was read by hash, the hash of the bytes otherwise).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct ObjectError {
    /// The kind of object (`manifest`, `spatial-bucket`, ...).
    pub kind: &'static str,
    /// The object's content hash, when known.
    pub hash: Option<ContentHash>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hash {
            Some(hash) => write!(f, "{} object {hash}: {}", self.kind, self.problem),
            None => write!(f, "{} object (not encoded): {}", self.kind, self.problem),
        }
    }
}

impl ObjectError {
    /// An error about the object of `kind` named `hash`.
    pub fn new(kind: &'static str, hash: Option<ContentHash>, problem: Problem) -> Self {
        ObjectError {
            kind,
            hash,
            problem,
        }
    }

    /// A stable identifier of the kind of error:
    ///
    /// | class | meaning |
    /// |---|---|
    /// | `hash-mismatch` | the bytes do not hash to the expected name |
    /// | `non-canonical:<rule>` | a deterministic-CBOR rule of spec/0002 §4 is broken |
    /// | `non-canonical:object-form` | canonical CBOR, but not the object's one spelling |
    /// | `malformed`, `truncated`, `trailing-bytes`, `too-deep` | not one well-formed CBOR item |
    /// | `wrong-kind` | the `kind` field names another kind |
    /// | `unknown-version` | the `v` field is not 1 |
    /// | `shape` | missing, unknown or mistyped fields |
    /// | `invariant` | a rule of the kind is broken (see [`ObjectError::rule`]) |
    /// | `encode` | a value that cannot be encoded |
    pub fn class(&self) -> String {
        match &self.problem {
            Problem::HashMismatch { .. } => "hash-mismatch".to_owned(),
            Problem::Cbor(e) => e.class(),
            Problem::ObjectForm => "non-canonical:object-form".to_owned(),
            Problem::WrongKind { .. } => "wrong-kind".to_owned(),
            Problem::UnknownVersion { .. } => "unknown-version".to_owned(),
            Problem::Shape(_) => "shape".to_owned(),
            Problem::Invariant(_) => "invariant".to_owned(),
            Problem::Encode(_) => "encode".to_owned(),
        }
    }

    /// For invariant errors, the stable id of the rule broken.
    pub fn rule(&self) -> Option<&'static str> {
        match &self.problem {
            Problem::Invariant(invariant) => Some(invariant.rule),
            _ => None,
        }
    }
}
