//! Errors of the object store.
//!
//! Every error names the object it concerns (its content hash), so a caller
//! several layers up can still say *which* object is missing or damaged.
//! Integrity failures carry a typed [`IntegrityReason`]: tests and the
//! `verify` verb need to tell a flipped byte from non-canonical CBOR.

use dreamdb_connector::{ByteRange, ConnectorError};
use dreamdb_core::cbor::CborError;
use dreamdb_core::ContentHash;

/// Why an object's bytes cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityReason {
    /// The bytes read do not hash to the name they were read under.
    #[error("its bytes hash to {actual}")]
    HashMismatch {
        /// The hash of the bytes actually read.
        actual: ContentHash,
    },
    /// A byte range read with an expected hash did not match it.
    #[error("bytes {range} hash to {actual}, expected {expected}")]
    RangeHashMismatch {
        /// The range read.
        range: ByteRange,
        /// The hash the caller expected (from a track entry).
        expected: ContentHash,
        /// The hash of the bytes read.
        actual: ContentHash,
    },
    /// The bytes are not canonical CBOR, or not the expected shape. For
    /// non-canonical input the [`CborError`] names the rule broken.
    #[error("{0}")]
    Cbor(CborError),
    /// The bytes decode but break a rule of the object's kind.
    #[error("{0}")]
    Invalid(String),
}

impl IntegrityReason {
    /// A stable identifier: `"hash-mismatch"`, `"range-hash-mismatch"`,
    /// the [`CborError::class`] (e.g. `"non-canonical:map-key-order"`), or
    /// `"invalid"`.
    pub fn class(&self) -> String {
        match self {
            IntegrityReason::HashMismatch { .. } => "hash-mismatch".to_owned(),
            IntegrityReason::RangeHashMismatch { .. } => "range-hash-mismatch".to_owned(),
            IntegrityReason::Cbor(e) => e.class(),
            IntegrityReason::Invalid(_) => "invalid".to_owned(),
        }
    }
}

/// Why an object-store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No object is stored under this hash.
    #[error("object {hash} is missing")]
    Missing {
        /// The object asked for.
        hash: ContentHash,
    },
    /// The object was read but its bytes cannot be trusted.
    #[error("object {hash} failed its integrity check: {reason}")]
    Integrity {
        /// The object read.
        hash: ContentHash,
        /// What is wrong with it.
        reason: IntegrityReason,
    },
    /// A byte range does not lie inside the object.
    #[error("byte range {range} is not inside object {hash}")]
    InvalidRange {
        /// The object read.
        hash: ContentHash,
        /// The range asked for.
        range: ByteRange,
    },
    /// A value could not be encoded as canonical CBOR.
    #[error("cannot encode object: {0}")]
    Encode(#[source] CborError),
    /// The backend failed.
    #[error("storage failed on object {hash}: {source}")]
    Connector {
        /// The object concerned.
        hash: ContentHash,
        /// The backend's error (boxed: it is large, and rare).
        #[source]
        source: Box<ConnectorError>,
    },
}

impl StoreError {
    /// A stable identifier of the kind of error: `"missing"`,
    /// `"integrity:<reason class>"`, `"invalid-range"`, `"encode"` or
    /// `"connector"`.
    pub fn class(&self) -> String {
        match self {
            StoreError::Missing { .. } => "missing".to_owned(),
            StoreError::Integrity { reason, .. } => format!("integrity:{}", reason.class()),
            StoreError::InvalidRange { .. } => "invalid-range".to_owned(),
            StoreError::Encode(_) => "encode".to_owned(),
            StoreError::Connector { .. } => "connector".to_owned(),
        }
    }

    /// The object the error concerns, if it names one.
    pub fn hash(&self) -> Option<&ContentHash> {
        match self {
            StoreError::Missing { hash }
            | StoreError::Integrity { hash, .. }
            | StoreError::InvalidRange { hash, .. }
            | StoreError::Connector { hash, .. } => Some(hash),
            StoreError::Encode(_) => None,
        }
    }

    /// Maps a connector error for `hash`: not-found becomes
    /// [`StoreError::Missing`], a bad range [`StoreError::InvalidRange`].
    pub(crate) fn from_connector(hash: ContentHash, source: ConnectorError) -> Self {
        match source {
            ConnectorError::NotFound { .. } => StoreError::Missing { hash },
            ConnectorError::InvalidRange { range, .. } => StoreError::InvalidRange { hash, range },
            source => StoreError::Connector {
                hash,
                source: Box::new(source),
            },
        }
    }
}
