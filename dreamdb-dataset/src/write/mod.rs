//! The write side: `append_many`, layers, and the shared machinery
//! (design/0002 § Write path).
//!
//! One append, per field of the batch (CPU work in parallel, before any
//! write, so a refused batch writes nothing):
//!
//! - **embedding**: train the spatial index on the first append (from the
//!   batch, or a sample given in [`AppendOptions`]), assign cells, encode
//!   RaBitQ codes of residuals, build one `spatial-bucket` grouped by cell
//!   and one `vector-storage` of raw rows in the same order (rerank);
//!   track changes: one anchor-order run, one cell-order run per touched
//!   cell;
//! - **blob**: one `blob-segment`, one anchor-order run;
//! - **scalar**: one `scalar-bucket`, one anchor-order run.
//!
//! The segments are written concurrently; then the rebasing commit loop
//! applies the track changes copy-on-write to the tip, rewrites each
//! embedding field's `cell-stats`, writes the Manifest and CASes the ref.
//! A lost race re-applies the same changes to the new tip; a tip whose
//! spatial index for a field is not the records' (nor a descendant keeping
//! their cells) is refused with `conflict`. Existing segments are never
//! read or rewritten, nothing is listed, and nothing is maintained: the
//! append returns [`Signals`] instead.

pub(crate) mod anchors;
mod append;
pub mod compat;
mod layers;
pub mod layout;
pub(crate) mod segments;
pub mod stats;

use std::collections::BTreeMap;

use dreamdb_core::ContentHash;

pub use compat::RawRows;
pub use stats::{Density, FieldSignals, Signals};

/// Options of [`crate::Dataset::append_many_with`].
#[derive(Debug, Clone, Default)]
pub struct AppendOptions {
    /// Per embedding field, a row-major sample to train the spatial index
    /// on when the field has none yet (default: the batch itself).
    pub training: BTreeMap<String, Vec<f32>>,
    /// Seed of index training and of the RaBitQ rotation (mixed with the
    /// field name); default 0.
    pub seed: u64,
    /// Commit message (default `append <n> records`).
    pub message: Option<String>,
    /// Most commit attempts when the ref keeps moving (default: the
    /// repository's retry policy).
    pub max_attempts: Option<u32>,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendResult {
    /// The records' anchors, in batch row order.
    pub anchors: Vec<u64>,
    /// The published Manifest.
    pub manifest: ContentHash,
    /// Commit attempts (1 = no race lost; each lost race is a rebase).
    pub attempts: u32,
    /// Signals per embedding field (never acted on).
    pub signals: Signals,
}

/// What a layer write did ([`crate::Dataset::add_scalar_layer`],
/// [`crate::Dataset::add_embedding_layer`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerResult {
    /// The published Manifest.
    pub manifest: ContentHash,
    /// Records that received a value.
    pub records: u64,
    /// Commit attempts.
    pub attempts: u32,
    /// Signals of an embedding layer.
    pub signals: Signals,
}
