//! Errors of the version-control core.
//!
//! Every variant names what it concerns — the ref, the Manifest hashes,
//! the field — so a caller several layers up can say *which* branch lost a
//! race or *which* field refused to merge. Losing a compare-and-swap once
//! is not an error (see [`super::PublishOutcome::Lost`]); only verbs that
//! give up after their retries report [`DagError::Conflict`].

use dreamdb_connector::ConnectorError;
use dreamdb_core::ContentHash;

use crate::objects::ObjectError;
use crate::store::StoreError;
use crate::track::TrackError;

/// What is wrong with a stored history (hostile or damaged DAGs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryProblem {
    /// The Manifest is not in the store (named as a parent or a target).
    #[error("it is missing")]
    Missing,
    /// Its height is not 1 + the largest height of its parents (or not 0
    /// for a Manifest without parents).
    #[error("height {found} is inconsistent with its parents (expected {expected})")]
    Height {
        /// The height it claims.
        found: u64,
        /// The height its parents imply.
        expected: u64,
    },
    /// It belongs to another dataset (another Genesis).
    #[error("it names Genesis {found}, not {expected}")]
    ForeignGenesis {
        /// The Genesis of the walk's start.
        expected: ContentHash,
        /// The Genesis it names.
        found: ContentHash,
    },
    /// The walk would read more Manifests (or spatial indexes) than the
    /// configured bound.
    #[error("the walk exceeds its bound of {limit} objects")]
    TooLarge {
        /// The bound ([`super::RepoConfig::history_limit`]).
        limit: u64,
    },
}

/// Why a DAG operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DagError {
    /// No ref (or tag) of that name.
    #[error("{name} does not exist")]
    RefNotFound {
        /// `refs/<name>` or `tags/<name>`.
        name: String,
    },
    /// A create-once name is taken by another target.
    #[error("{name} already exists (at {existing})")]
    AlreadyExists {
        /// `refs/<name>` or `tags/<name>`.
        name: String,
        /// What it points at.
        existing: ContentHash,
    },
    /// A compare-and-swap of `name` was lost (after the retries allowed).
    #[error("{name} moved: expected {expected:?}, found {actual:?}")]
    Conflict {
        /// `refs/<name>`.
        name: String,
        /// The target the writer built on.
        expected: Option<ContentHash>,
        /// The target found.
        actual: Option<ContentHash>,
    },
    /// A fast-forward whose current target is not an ancestor of the new.
    #[error("{ancestor} is not an ancestor of {descendant}")]
    NotAncestor {
        /// The ref's current target.
        ancestor: ContentHash,
        /// The requested target.
        descendant: ContentHash,
    },
    /// Both sides of a merge changed `field` differently.
    #[error("merge conflict in {field}: {reason}")]
    MergeConflict {
        /// `schema:<field>`, `track:<field>`, `registry:<key>`, ...
        field: String,
        /// What differs.
        reason: String,
    },
    /// Merging (or rebasing onto) a field whose spatial index changed in a
    /// way the other side's entries cannot follow (spec/0008 §3, §5).
    #[error("spatial index of field {field} is incompatible: ours {ours:?}, theirs {theirs:?}")]
    SpatialIndexIncompatible {
        /// The field.
        field: String,
        /// Our spatial index (the append's, in a rebase).
        ours: Option<ContentHash>,
        /// Theirs (the new tip's, in a rebase).
        theirs: Option<ContentHash>,
    },
    /// The two sides have several lowest common ancestors.
    #[error("criss-cross merge of {ours} and {theirs}: {} common ancestors", bases.len())]
    CrissCross {
        /// Our side.
        ours: ContentHash,
        /// Their side.
        theirs: ContentHash,
        /// The lowest common ancestors.
        bases: Vec<ContentHash>,
    },
    /// The history reached from a Manifest is damaged or hostile.
    #[error("history at manifest {hash}: {problem}")]
    History {
        /// The Manifest concerned.
        hash: ContentHash,
        /// What is wrong.
        problem: HistoryProblem,
    },
    /// A caller-supplied argument is unusable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An object could not be read or written.
    #[error(transparent)]
    Store(Box<StoreError>),
    /// An object failed to encode or decode.
    #[error(transparent)]
    Object(Box<ObjectError>),
    /// A track operation failed.
    #[error(transparent)]
    Track(Box<TrackError>),
    /// Reading or writing a ref or tag failed.
    #[error("storage failed on {key}: {source}")]
    Connector {
        /// The key.
        key: String,
        /// The connector error.
        #[source]
        source: Box<ConnectorError>,
    },
}

impl From<StoreError> for DagError {
    fn from(e: StoreError) -> Self {
        DagError::Store(Box::new(e))
    }
}

impl From<ObjectError> for DagError {
    fn from(e: ObjectError) -> Self {
        DagError::Object(Box::new(e))
    }
}

impl From<TrackError> for DagError {
    fn from(e: TrackError) -> Self {
        DagError::Track(Box::new(e))
    }
}

impl DagError {
    /// A stable identifier of the error's class (used by conformance
    /// vectors and logs).
    pub fn class(&self) -> &'static str {
        match self {
            DagError::RefNotFound { .. } => "ref-not-found",
            DagError::AlreadyExists { .. } => "already-exists",
            DagError::Conflict { .. } => "conflict",
            DagError::NotAncestor { .. } => "not-ancestor",
            DagError::MergeConflict { .. } => "merge-conflict",
            DagError::SpatialIndexIncompatible { .. } => "spatial-index-incompatible",
            DagError::CrissCross { .. } => "criss-cross",
            DagError::History { problem, .. } => match problem {
                HistoryProblem::Missing => "history:missing",
                HistoryProblem::Height { .. } => "history:height",
                HistoryProblem::ForeignGenesis { .. } => "history:foreign-genesis",
                HistoryProblem::TooLarge { .. } => "history:too-large",
            },
            DagError::InvalidArgument(_) => "invalid-argument",
            DagError::Store(_) => "store",
            DagError::Object(_) => "object",
            DagError::Track(_) => "track",
            DagError::Connector { .. } => "connector",
        }
    }

    pub(crate) fn history(hash: ContentHash, problem: HistoryProblem) -> Self {
        DagError::History { hash, problem }
    }
}
