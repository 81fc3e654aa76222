//! Errors of the track index.
//!
//! A corrupt or hostile index page is an error naming the page and the
//! rule it breaks ([`PageProblem`]), never a panic, a hang or wrong data.

use dreamdb_core::cbor::CborError;
use dreamdb_core::ContentHash;

use super::key::TrackKey;
use crate::store::StoreError;

/// What is wrong with an index page (or with how its parent refers to it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PageProblem {
    /// Not canonical CBOR (the error names the rule).
    #[error("{0}")]
    Cbor(CborError),
    /// Not the shape of an index page: wrong kind, unknown or missing key,
    /// wrong type.
    #[error("not an index page: {0}")]
    Shape(String),
    /// A format version this implementation does not know.
    #[error("unsupported index-page version {0}")]
    UnsupportedVersion(u64),
    /// A page with no entries or children.
    #[error("empty page")]
    Empty,
    /// A level at or beyond the height limit.
    #[error("level {level} is beyond the height limit of {limit}")]
    TooDeep {
        /// The level found.
        level: u64,
        /// [`super::MAX_HEIGHT`].
        limit: u8,
    },
    /// Keys not strictly increasing (unsorted or repeated) at this index.
    #[error("keys not strictly increasing at item {index}")]
    UnsortedKeys {
        /// Index of the first item out of order.
        index: usize,
    },
    /// An item that is not a valid key, value or child reference.
    #[error("item {index} is invalid: {reason}")]
    InvalidItem {
        /// The item's index.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The page's level is not its parent's level minus one.
    #[error("page is at level {found}, its parent expects level {expected}")]
    LevelMismatch {
        /// The level the parent implies.
        expected: u8,
        /// The page's level.
        found: u8,
    },
    /// The page's first key differs from the one its parent records.
    #[error("first key {found:?} differs from the parent's {expected:?}")]
    FirstKeyMismatch {
        /// What the parent records.
        expected: TrackKey,
        /// The page's first key.
        found: TrackKey,
    },
    /// The page holds a key at or beyond the next sibling's first key.
    #[error("key {key:?} is not below the next sibling's first key")]
    KeyOutOfRange {
        /// The offending key.
        key: TrackKey,
    },
    /// The entries under the page disagree with the count declared for it.
    #[error("declared count {declared}, found {actual}")]
    CountMismatch {
        /// The count the parent (or root) declares.
        declared: u64,
        /// The count the page holds (or the sum its children declare).
        actual: u64,
    },
    /// The page was reached twice in one walk: a cycle or a shared subtree,
    /// neither of which a valid tree has.
    #[error("page reached twice in one walk (cycle or shared subtree)")]
    Revisited,
}

impl PageProblem {
    /// A stable identifier (used by conformance vectors): `"cbor:<class>"`,
    /// `"shape"`, `"unsupported-version"`, `"empty"`, `"too-deep"`,
    /// `"unsorted-keys"`, `"invalid-item"`, `"level-mismatch"`,
    /// `"first-key-mismatch"`, `"key-out-of-range"`, `"count-mismatch"`,
    /// `"revisited"`.
    pub fn class(&self) -> String {
        match self {
            PageProblem::Cbor(e) => format!("cbor:{}", e.class()),
            PageProblem::Shape(_) => "shape".to_owned(),
            PageProblem::UnsupportedVersion(_) => "unsupported-version".to_owned(),
            PageProblem::Empty => "empty".to_owned(),
            PageProblem::TooDeep { .. } => "too-deep".to_owned(),
            PageProblem::UnsortedKeys { .. } => "unsorted-keys".to_owned(),
            PageProblem::InvalidItem { .. } => "invalid-item".to_owned(),
            PageProblem::LevelMismatch { .. } => "level-mismatch".to_owned(),
            PageProblem::FirstKeyMismatch { .. } => "first-key-mismatch".to_owned(),
            PageProblem::KeyOutOfRange { .. } => "key-out-of-range".to_owned(),
            PageProblem::CountMismatch { .. } => "count-mismatch".to_owned(),
            PageProblem::Revisited => "revisited".to_owned(),
        }
    }
}

/// Why a track operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackError {
    /// Reading or writing an object failed (missing, corrupt bytes,
    /// backend error). Boxed to keep `Result`s small.
    #[error(transparent)]
    Store(Box<StoreError>),
    /// An index page is corrupt or hostile.
    #[error("index page {page} is invalid: {problem}")]
    Corrupt {
        /// The page.
        page: ContentHash,
        /// What is wrong (boxed to keep `Result`s small).
        problem: Box<PageProblem>,
    },
    /// A track root is invalid (height out of range, unsorted inline
    /// entries, ...).
    #[error("invalid track root: {0}")]
    InvalidRoot(String),
    /// A change cannot be applied: its value does not fit its key.
    #[error("invalid entry {key:?}: {reason}")]
    InvalidEntry {
        /// The key.
        key: TrackKey,
        /// What is wrong.
        reason: String,
    },
    /// The tree would grow beyond [`super::MAX_HEIGHT`] levels (only with
    /// a degenerate [`super::TrackConfig`]).
    #[error("the track would need more than {limit} levels")]
    TooDeep {
        /// [`super::MAX_HEIGHT`].
        limit: u8,
    },
    /// A [`super::TrackConfig`] that cannot build a tree.
    #[error("invalid track config: {0}")]
    InvalidConfig(&'static str),
    /// Encoding failed.
    #[error("cannot encode: {0}")]
    Encode(#[source] CborError),
}

impl TrackError {
    /// A stable identifier: `"store:<class>"`, `"corrupt:<problem>"`,
    /// `"invalid-root"`, `"invalid-entry"`, `"too-deep"`,
    /// `"invalid-config"` or `"encode"`.
    pub fn class(&self) -> String {
        match self {
            TrackError::Store(e) => format!("store:{}", e.class()),
            TrackError::Corrupt { problem, .. } => format!("corrupt:{}", problem.class()),
            TrackError::InvalidRoot(_) => "invalid-root".to_owned(),
            TrackError::InvalidEntry { .. } => "invalid-entry".to_owned(),
            TrackError::TooDeep { .. } => "too-deep".to_owned(),
            TrackError::InvalidConfig(_) => "invalid-config".to_owned(),
            TrackError::Encode(_) => "encode".to_owned(),
        }
    }

    /// A corrupt-page error.
    pub fn corrupt(page: ContentHash, problem: PageProblem) -> Self {
        TrackError::Corrupt {
            page,
            problem: Box::new(problem),
        }
    }

    /// The store error, if this is one.
    pub fn store_error(&self) -> Option<&StoreError> {
        match self {
            TrackError::Store(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// The page problem, if this is a corrupt-page error.
    pub fn page_problem(&self) -> Option<&PageProblem> {
        match self {
            TrackError::Corrupt { problem, .. } => Some(problem.as_ref()),
            _ => None,
        }
    }
}

impl From<StoreError> for TrackError {
    fn from(e: StoreError) -> Self {
        TrackError::Store(Box::new(e))
    }
}
