//! `spatial-index`: a spatial partitioning of one embedding field (IVF
//! centroids, LSH hyperplanes, IMI codebooks) and its lineage.
//!
//! The common fields are typed; the algorithm's own parameters are an
//! opaque canonical CBOR value (`params`) owned by `crate::spatial`, so the
//! two evolve independently. `parents` and `changed_cells` make lineage
//! chain-aware (design 0001 § Spatial lineage): a bucket placed under an
//! ancestor index stays valid for every cell that no index on the chain
//! changed.

use ciborium::value::Value;
use dreamdb_core::cbor;
use dreamdb_core::ContentHash;
use serde::{Deserialize, Serialize};

use super::common::{check_dim, check_strictly_ascending, check_tag_shaped, check_unique, Metric};
use super::error::Invariant;
use super::ObjectKind;

/// A spatial index over one embedding field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpatialIndexObject {
    /// Algorithm modality tag, e.g. `dreamdb.ivf-cosine`.
    pub algorithm: String,
    /// Distance the index partitions by.
    pub metric: Metric,
    /// Vector dimension.
    pub dim: u32,
    /// Number of cells (spatial keys are `0 .. cells`).
    pub cells: u32,
    /// The algorithm's parameters (centroids, hyperplanes, ...), as a
    /// canonical CBOR value defined by the algorithm's spec.
    pub params: Value,
    /// The indexes this one evolves from (empty for a first build).
    pub parents: Vec<ContentHash>,
    /// Cells replaced, added or removed relative to the parents: sorted,
    /// unique; empty when there are no parents.
    pub changed_cells: Vec<u32>,
}

impl SpatialIndexObject {
    /// Whether `cell` is unchanged relative to the parents, i.e. records
    /// placed in `cell` under a parent are still correctly placed.
    pub fn keeps_cell(&self, cell: u32) -> bool {
        self.changed_cells.binary_search(&cell).is_err()
    }
}

/// Whether `value` is already in canonical form: encoding and decoding it
/// gives it back (maps sorted by encoded key, no duplicate keys, only the
/// simple values a canonical decoder returns).
pub(crate) fn is_canonical_value(value: &Value) -> bool {
    cbor::encode_value(value)
        .ok()
        .and_then(|bytes| cbor::decode_value(&bytes).ok())
        .is_some_and(|back| back == *value)
}

impl ObjectKind for SpatialIndexObject {
    const KIND: &'static str = "spatial-index";

    fn validate(&self) -> Result<(), Invariant> {
        check_tag_shaped(&self.algorithm, "algorithm")?;
        check_dim(self.dim)?;
        if self.cells == 0 {
            return Err(Invariant::new(
                "cells-nonzero",
                "an index has at least one cell",
            ));
        }
        if !is_canonical_value(&self.params) {
            return Err(Invariant::new(
                "params-canonical",
                "params must be a canonical CBOR value (maps sorted by encoded key)",
            ));
        }
        check_unique(&self.parents, "parents-unique", "parents")?;
        check_strictly_ascending(&self.changed_cells, "changed-cells-sorted", "changed_cells")?;
        if self.parents.is_empty() && !self.changed_cells.is_empty() {
            return Err(Invariant::new(
                "changed-cells-without-parents",
                "an index without parents cannot list changed cells",
            ));
        }
        Ok(())
    }
}
