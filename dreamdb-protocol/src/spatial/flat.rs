//! `dreamdb.flat`: one cell. Every vector's key is 0 and a query probes
//! that one cell, i.e. an exact scan; useful for small sets and as the
//! baseline other indexes are measured against.

use dreamdb_core::{cbor, ContentHash};
use serde::{Deserialize, Serialize};

use super::metric::{check_dim, check_vector, Metric};
use super::SpatialError;

/// The algorithm name.
pub const FLAT: &str = "dreamdb.flat";

/// The stored description of a flat index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlatIndex {
    /// Always `dreamdb.flat`.
    pub algorithm: String,
    /// Vector dimension.
    pub dim: u32,
    /// Metric of search.
    pub metric: Metric,
}

impl FlatIndex {
    /// A flat index.
    pub fn new(dim: usize, metric: Metric) -> Result<FlatIndex, SpatialError> {
        check_dim(dim)?;
        Ok(FlatIndex {
            algorithm: FLAT.to_owned(),
            dim: dim as u32,
            metric,
        })
    }

    /// Decodes and validates canonical CBOR.
    pub fn from_cbor(bytes: &[u8]) -> Result<FlatIndex, SpatialError> {
        let f: FlatIndex = cbor::from_slice(bytes)?;
        if f.algorithm != FLAT {
            return Err(SpatialError::UnknownAlgorithm(f.algorithm));
        }
        check_dim(f.dim as usize)?;
        Ok(f)
    }

    /// Canonical CBOR bytes.
    pub fn to_cbor(&self) -> Result<Vec<u8>, SpatialError> {
        Ok(cbor::to_vec(self)?)
    }

    /// Content hash.
    pub fn hash(&self) -> Result<ContentHash, SpatialError> {
        Ok(ContentHash::of(&self.to_cbor()?))
    }

    /// Always cell 0 (after validating the vector).
    pub fn assign_one(&self, v: &[f32]) -> Result<u32, SpatialError> {
        check_vector(v, self.dim as usize, 0)?;
        Ok(0)
    }

    /// Always `[0]`.
    pub fn probe(&self, query: &[f32], nprobe: usize) -> Result<Vec<u32>, SpatialError> {
        if nprobe == 0 {
            return Err(SpatialError::Zero { name: "nprobe" });
        }
        check_vector(query, self.dim as usize, 0)?;
        Ok(vec![0])
    }
}
