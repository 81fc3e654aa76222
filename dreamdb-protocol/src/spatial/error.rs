//! Typed errors of the spatial algorithms.
//!
//! Every function of [`crate::spatial`] validates its input and reports a
//! problem as one of these variants; none panics on input. Each variant
//! names one problem and carries the values needed to understand it.

use dreamdb_core::cbor::CborError;

/// Why a spatial or compression operation refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SpatialError {
    /// A vector (or a flat batch) does not have the expected dimension.
    #[error("wrong dimension: expected {expected}, got {actual}")]
    WrongDimension {
        /// The dimension the index or compressor was built for.
        expected: usize,
        /// The length seen.
        actual: usize,
    },
    /// The dimension itself is 0 or too large.
    #[error("invalid dimension {0}: must be between 1 and {max}", max = super::MAX_DIM)]
    InvalidDimension(usize),
    /// A value is NaN or infinite.
    #[error("non-finite value (NaN or infinity) at vector {vector}, component {component}")]
    NonFinite {
        /// Row of the batch (0 for a single vector).
        vector: usize,
        /// Component index inside the vector.
        component: usize,
    },
    /// A cosine input has zero norm, so it has no direction.
    #[error("vector {vector} has zero norm and no cosine direction")]
    ZeroVector {
        /// Row of the batch.
        vector: usize,
    },
    /// A count parameter (`k`, `nprobe`, `tables`, ...) is 0.
    #[error("{name} must be at least 1")]
    Zero {
        /// Which parameter.
        name: &'static str,
    },
    /// `k` exceeds the number of training vectors.
    #[error("k = {k} exceeds the {n} training vectors")]
    KExceedsN {
        /// Requested number of cells.
        k: usize,
        /// Training vectors available.
        n: usize,
    },
    /// No training vectors were given.
    #[error("empty training set")]
    EmptyTrainingSet,
    /// A parameter is outside its allowed range.
    #[error("{name} = {value} is out of range {min}..={max}")]
    OutOfRange {
        /// Which parameter.
        name: &'static str,
        /// The value given.
        value: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A threshold or factor is NaN, infinite or negative.
    #[error("{name} must be a finite, non-negative number")]
    InvalidThreshold {
        /// Which parameter.
        name: &'static str,
    },
    /// A cell id does not name a live cell of the index.
    #[error("cell {cell} is not a live cell of this index")]
    UnknownCell {
        /// The cell id.
        cell: u32,
    },
    /// A stored description names a different algorithm than expected.
    #[error("unknown or mismatched algorithm {0:?}")]
    UnknownAlgorithm(String),
    /// A stored description is internally inconsistent.
    #[error("malformed description: {0}")]
    Malformed(String),
    /// Parallel arrays of a cell or batch disagree in length.
    #[error("length mismatch: {what}: expected {expected}, got {actual}")]
    LengthMismatch {
        /// Which array.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        actual: usize,
    },
    /// Canonical CBOR encoding or decoding failed.
    #[error("cbor: {0}")]
    Cbor(String),
}

impl SpatialError {
    /// A stable kebab-case identifier of the error kind (used by the
    /// conformance vectors).
    pub fn class(&self) -> &'static str {
        match self {
            SpatialError::WrongDimension { .. } => "wrong-dimension",
            SpatialError::InvalidDimension(_) => "invalid-dimension",
            SpatialError::NonFinite { .. } => "non-finite",
            SpatialError::ZeroVector { .. } => "zero-vector",
            SpatialError::Zero { .. } => "zero-count",
            SpatialError::KExceedsN { .. } => "k-exceeds-n",
            SpatialError::EmptyTrainingSet => "empty-training-set",
            SpatialError::OutOfRange { .. } => "out-of-range",
            SpatialError::InvalidThreshold { .. } => "invalid-threshold",
            SpatialError::UnknownCell { .. } => "unknown-cell",
            SpatialError::UnknownAlgorithm(_) => "unknown-algorithm",
            SpatialError::Malformed(_) => "malformed",
            SpatialError::LengthMismatch { .. } => "length-mismatch",
            SpatialError::Cbor(_) => "cbor",
        }
    }
}

impl From<CborError> for SpatialError {
    fn from(e: CborError) -> Self {
        SpatialError::Cbor(e.to_string())
    }
}
