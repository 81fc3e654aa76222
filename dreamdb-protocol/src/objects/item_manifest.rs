//! `item-manifest`: a large item split into content-addressed chunks
//! (identical chunks dedupe across items and versions). `sizes` holds
//! each chunk's length (u64 LE), so a reader can map an item byte range to
//! chunks without fetching them.

use dreamdb_core::ContentHash;
use serde::{Deserialize, Serialize};

use super::common::{le_u64s, u64_at};
use super::error::Invariant;
use super::ObjectKind;

/// A chunked item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemManifest {
    /// The chunks, in item order.
    pub chunks: Vec<ContentHash>,
    /// Length of each chunk, u64 LE (≥ 1 each).
    #[serde(with = "serde_bytes")]
    pub sizes: Vec<u8>,
    /// Length of the item: the sum of `sizes`.
    pub total: u64,
}

impl ItemManifest {
    /// Size of chunk `i`.
    pub fn size(&self, i: usize) -> Option<u64> {
        (i < self.chunks.len() && self.sizes.len() >= 8 * (i + 1))
            .then(|| u64_at(&self.sizes, 8 * i))
    }

    /// The chunks overlapping item bytes `[start, end)`, with each chunk's
    /// offset in the item.
    pub fn chunks_for(&self, start: u64, end: u64) -> Vec<(ContentHash, u64)> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        for (i, chunk) in self.chunks.iter().enumerate() {
            let size = self.size(i).unwrap_or(0);
            let chunk_end = offset.saturating_add(size);
            if chunk_end > start && offset < end {
                out.push((*chunk, offset));
            }
            offset = chunk_end;
        }
        out
    }
}

impl ObjectKind for ItemManifest {
    const KIND: &'static str = "item-manifest";

    fn validate(&self) -> Result<(), Invariant> {
        if self.chunks.is_empty() {
            return Err(Invariant::new(
                "chunks-nonempty",
                "an item has at least one chunk",
            ));
        }
        let sizes = le_u64s(&self.sizes, "sizes-length", "sizes")?;
        if sizes.len() != self.chunks.len() {
            return Err(Invariant::new(
                "sizes-length",
                format!("{} chunks but {} sizes", self.chunks.len(), sizes.len()),
            ));
        }
        let mut sum = 0u64;
        for (i, size) in sizes.enumerate() {
            if size == 0 {
                return Err(Invariant::new(
                    "sizes-total",
                    format!("chunk {i} has size 0"),
                ));
            }
            sum = sum
                .checked_add(size)
                .ok_or_else(|| Invariant::new("sizes-total", "sizes overflow u64"))?;
        }
        if sum != self.total {
            return Err(Invariant::new(
                "sizes-total",
                format!("sizes add up to {sum}, total says {}", self.total),
            ));
        }
        Ok(())
    }
}
