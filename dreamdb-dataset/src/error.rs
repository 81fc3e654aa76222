//! The dataset layer's error type: one enum, each variant naming what went
//! wrong (the field, the anchor, the ref) so a user can act on it.

use dreamdb_connector::ConnectorError;
use dreamdb_protocol::dag::DagError;
use dreamdb_protocol::objects::ObjectError;
use dreamdb_protocol::spatial::SpatialError;
use dreamdb_protocol::store::StoreError;
use dreamdb_protocol::track::TrackError;

/// Why a dataset operation failed. Input errors change nothing: no object is
/// written and no ref moves.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// Input that cannot be stored: wrong dimension, NaN, unknown field,
    /// missing field, duplicate anchor, oversized blob, ...
    #[error("invalid input for field {field:?}: {reason}")]
    InvalidInput {
        /// The field (or `"_anchor"`, `"_batch"` for batch-level problems).
        field: String,
        /// What is wrong, with the row where it applies.
        reason: String,
    },
    /// A schema that cannot be built or a change that is not forward-compatible.
    #[error("invalid schema: {reason}")]
    InvalidSchema {
        /// What is wrong.
        reason: String,
    },
    /// A name that is not a valid dataset, ref or tag name.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// No such dataset, ref, tag, Manifest or record.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// A dataset, ref or tag of that name already exists.
    #[error("already exists: {what}")]
    AlreadyExists {
        /// What exists.
        what: String,
    },
    /// A write lost its compare-and-swap after every retry, or a merge met a
    /// conflict, or the tip changed the spatial index under an append.
    #[error("conflict: {reason}")]
    Conflict {
        /// What conflicted.
        reason: String,
    },
    /// The handle is pinned to a version and cannot write.
    #[error("read-only: {reason}")]
    ReadOnly {
        /// Why.
        reason: String,
    },
    /// Stored bytes failed verification (hash, canonical form, shape).
    #[error("integrity error: {0}")]
    Integrity(String),
    /// The storage backend failed.
    #[error(transparent)]
    Backend(#[from] ConnectorError),
    /// A protocol-layer error not covered above.
    #[error("{0}")]
    Protocol(String),
}

impl DatasetError {
    /// A stable, kebab-case class for machines (CLI exit codes, Python
    /// exception kinds): `invalid-input`, `invalid-schema`, `invalid-name`,
    /// `not-found`, `already-exists`, `conflict`, `read-only`, `integrity`,
    /// `backend`, `protocol`.
    pub fn kind(&self) -> &'static str {
        match self {
            DatasetError::InvalidInput { .. } => "invalid-input",
            DatasetError::InvalidSchema { .. } => "invalid-schema",
            DatasetError::InvalidName { .. } => "invalid-name",
            DatasetError::NotFound { .. } => "not-found",
            DatasetError::AlreadyExists { .. } => "already-exists",
            DatasetError::Conflict { .. } => "conflict",
            DatasetError::ReadOnly { .. } => "read-only",
            DatasetError::Integrity(_) => "integrity",
            DatasetError::Backend(_) => "backend",
            DatasetError::Protocol(_) => "protocol",
        }
    }

    /// Shorthand for [`DatasetError::InvalidInput`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DatasetError::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<StoreError> for DatasetError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Connector { source, .. } => DatasetError::Backend(*source),
            StoreError::Missing { hash } => DatasetError::NotFound {
                what: format!("object {hash}"),
            },
            other => DatasetError::Integrity(other.to_string()),
        }
    }
}

impl From<ObjectError> for DatasetError {
    fn from(e: ObjectError) -> Self {
        DatasetError::Integrity(e.to_string())
    }
}

impl From<TrackError> for DatasetError {
    fn from(e: TrackError) -> Self {
        DatasetError::Protocol(e.to_string())
    }
}

impl From<SpatialError> for DatasetError {
    fn from(e: SpatialError) -> Self {
        DatasetError::InvalidInput {
            field: "_spatial".to_owned(),
            reason: e.to_string(),
        }
    }
}

impl From<DagError> for DatasetError {
    fn from(e: DagError) -> Self {
        DatasetError::Protocol(e.to_string())
    }
}

impl DatasetError {
    /// Maps a DAG error to the dataset error a user can act on: a missing
    /// ref is `not-found`, a taken name `already-exists`, a lost race, a
    /// merge conflict or an incompatible spatial index `conflict`.
    pub fn from_dag(e: DagError) -> Self {
        match e {
            DagError::RefNotFound { name } => DatasetError::NotFound { what: name },
            DagError::AlreadyExists { name, existing } => DatasetError::AlreadyExists {
                what: format!("{name} (at {existing})"),
            },
            e @ (DagError::Conflict { .. }
            | DagError::NotAncestor { .. }
            | DagError::MergeConflict { .. }
            | DagError::SpatialIndexIncompatible { .. }
            | DagError::CrissCross { .. }) => DatasetError::Conflict {
                reason: e.to_string(),
            },
            DagError::Store(e) => DatasetError::from(*e),
            DagError::Connector { source, .. } => DatasetError::Backend(*source),
            e @ (DagError::History { .. } | DagError::Object(_)) => {
                DatasetError::Integrity(e.to_string())
            }
            other => DatasetError::Protocol(other.to_string()),
        }
    }
}
