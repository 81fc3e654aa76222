//! `vector-compressor`: the parameters of a vector quantiser (RaBitQ,
//! spec/0010). Everything a reader needs to rebuild the quantiser
//! deterministically: algorithm, bits per dimension, dimension, metric and
//! the seed of its random rotation.

use serde::{Deserialize, Serialize};

use super::common::{check_dim, check_tag_shaped, Metric};
use super::error::Invariant;
use super::ObjectKind;

/// A vector compressor's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorCompressorObject {
    /// Algorithm modality tag, e.g. `dreamdb.rabitq`.
    pub algorithm: String,
    /// Bits per dimension, 1 ..= 8.
    pub bits: u8,
    /// Vector dimension.
    pub dim: u32,
    /// Distance the codes estimate.
    pub metric: Metric,
    /// Seed of the deterministic random rotation (spec/0009 §4.2).
    pub seed: u64,
}

impl ObjectKind for VectorCompressorObject {
    const KIND: &'static str = "vector-compressor";

    fn validate(&self) -> Result<(), Invariant> {
        check_tag_shaped(&self.algorithm, "algorithm")?;
        check_dim(self.dim)?;
        if !(1..=8).contains(&self.bits) {
            return Err(Invariant::new(
                "bits-range",
                format!("bits must be in 1..=8, got {}", self.bits),
            ));
        }
        Ok(())
    }
}
