//! RaBitQ vector compression (Gao & Long, SIGMOD 2024) and its extended
//! multi-bit form (Gao et al., 2025), as the `dreamdb.rabitq` compressor.
//!
//! A vector is stored as a code relative to its cell's centroid: the
//! residual `e = o − c` is rotated by a seeded random orthogonal map
//! ([`rotation`]), and each rotated coordinate is quantised to `bits` bits
//! so that the code direction is as close as possible to `e`'s. Three f32
//! correction factors per vector make the distance estimator unbiased and
//! give it an error bound ([`estimate`]), which search uses to skip exact
//! reranking of candidates that cannot make the top k.
//!
//! A [`VectorCompressor`] describes the compressor completely (algorithm,
//! bits, dim, seed, metric), so any reader can rebuild the rotation,
//! estimate distances and decode. Byte layouts and steps: spec 0010.

pub mod encode;
pub mod estimate;
pub mod quantised;
pub mod rotation;
#[cfg(target_arch = "x86_64")]
mod simd;

use dreamdb_core::{cbor, ContentHash};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::metric::{check_batch, check_dim, check_vector, prepare, Metric};
use super::SpatialError;
pub use encode::Encoded;
pub use estimate::{Estimate, QueryLut};
use rotation::{padded_dim, Rotation};

/// The algorithm name of RaBitQ.
pub const RABITQ: &str = "dreamdb.rabitq";
/// Correction factors stored per vector: residual norm, `⟨ō, o⟩`, rescale.
pub const FACTORS: usize = 3;
/// The default ε₀ of the error bound (the RaBitQ paper's 1.9).
pub const DEFAULT_EPSILON0: f32 = 1.9;

/// The stored, content-addressed description of a compressor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorCompressor {
    /// Always `dreamdb.rabitq`.
    pub algorithm: String,
    /// Bits per dimension, 1..=8.
    pub bits: u8,
    /// Input dimension (the code has `padded_dim(dim)` coordinates).
    pub dim: u32,
    /// Seed of the rotation stream.
    pub seed: u64,
    /// Metric the estimator reports.
    pub metric: Metric,
}

impl VectorCompressor {
    /// A RaBitQ description.
    pub fn rabitq(bits: u8, dim: u32, seed: u64, metric: Metric) -> VectorCompressor {
        VectorCompressor {
            algorithm: RABITQ.to_owned(),
            bits,
            dim,
            seed,
            metric,
        }
    }

    /// Canonical CBOR bytes.
    pub fn to_cbor(&self) -> Result<Vec<u8>, SpatialError> {
        Ok(cbor::to_vec(self)?)
    }

    /// Content hash of [`VectorCompressor::to_cbor`].
    pub fn hash(&self) -> Result<ContentHash, SpatialError> {
        Ok(ContentHash::of(&self.to_cbor()?))
    }
}

/// A RaBitQ compressor ready to encode, estimate and decode.
#[derive(Debug, Clone)]
pub struct RaBitQ {
    desc: VectorCompressor,
    rotation: Rotation,
}

impl RaBitQ {
    /// Validates the description and builds the rotation.
    pub fn new(desc: VectorCompressor) -> Result<RaBitQ, SpatialError> {
        if desc.algorithm != RABITQ {
            return Err(SpatialError::UnknownAlgorithm(desc.algorithm));
        }
        if !(1..=8).contains(&desc.bits) {
            return Err(SpatialError::OutOfRange {
                name: "bits",
                value: u64::from(desc.bits),
                min: 1,
                max: 8,
            });
        }
        check_dim(desc.dim as usize)?;
        let rotation = Rotation::new(padded_dim(desc.dim as usize), desc.seed);
        Ok(RaBitQ { desc, rotation })
    }

    /// Decodes a description from canonical CBOR and builds it.
    pub fn from_cbor(bytes: &[u8]) -> Result<RaBitQ, SpatialError> {
        RaBitQ::new(cbor::from_slice(bytes)?)
    }

    /// The description.
    pub fn description(&self) -> &VectorCompressor {
        &self.desc
    }

    /// Input dimension.
    pub fn dim(&self) -> usize {
        self.desc.dim as usize
    }

    /// Padded (rotated) dimension.
    pub fn padded(&self) -> usize {
        self.rotation.n()
    }

    /// Bits per dimension.
    pub fn bits(&self) -> u32 {
        u32::from(self.desc.bits)
    }

    /// Metric.
    pub fn metric(&self) -> Metric {
        self.desc.metric
    }

    /// u64 words per code: `bits · padded / 64`.
    pub fn words_per_vector(&self) -> usize {
        self.bits() as usize * self.padded() / 64
    }

    /// The rotation.
    pub fn rotation(&self) -> &Rotation {
        &self.rotation
    }

    fn check_centroid(&self, centroid: Option<&[f32]>) -> Result<(), SpatialError> {
        match centroid {
            Some(c) => check_vector(c, self.dim(), 0),
            None => Ok(()),
        }
    }

    /// Encodes one vector relative to `centroid` (the origin when `None`).
    pub fn encode(&self, v: &[f32], centroid: Option<&[f32]>) -> Result<Encoded, SpatialError> {
        check_vector(v, self.dim(), 0)?;
        self.check_centroid(centroid)?;
        let p = prepare(self.metric(), v, 0)?;
        Ok(encode::encode_prepared(self, &p, centroid))
    }

    /// Encodes a row-major batch relative to one centroid, in parallel:
    /// the concatenated codes and the concatenated factors.
    pub fn encode_batch(
        &self,
        batch: &[f32],
        centroid: Option<&[f32]>,
    ) -> Result<(Vec<u64>, Vec<f32>), SpatialError> {
        let dim = self.dim();
        let n = check_batch(batch, dim)?;
        self.check_centroid(centroid)?;
        let parts: Result<Vec<Encoded>, SpatialError> = (0..n)
            .into_par_iter()
            .map(|i| {
                let p = prepare(self.metric(), &batch[i * dim..(i + 1) * dim], i)?;
                Ok(encode::encode_prepared(self, &p, centroid))
            })
            .collect();
        let parts = parts?;
        let mut codes = Vec::with_capacity(n * self.words_per_vector());
        let mut factors = Vec::with_capacity(n * FACTORS);
        for e in parts {
            codes.extend_from_slice(&e.code);
            factors.extend_from_slice(&e.factors);
        }
        Ok((codes, factors))
    }

    /// The per-cell query table for `query` and the cell's `centroid`.
    pub fn prepare_query(
        &self,
        query: &[f32],
        centroid: Option<&[f32]>,
    ) -> Result<QueryLut, SpatialError> {
        check_vector(query, self.dim(), 0)?;
        self.check_centroid(centroid)?;
        let q = prepare(self.metric(), query, 0)?;
        Ok(estimate::prepare_prepared(self, &q, centroid))
    }

    /// Estimated distance and error bound of one code.
    pub fn estimate(
        &self,
        lut: &QueryLut,
        code: &[u64],
        factors: &[f32],
        epsilon0: f32,
    ) -> Result<Estimate, SpatialError> {
        if code.len() != self.words_per_vector() {
            return Err(SpatialError::LengthMismatch {
                what: "code words",
                expected: self.words_per_vector(),
                actual: code.len(),
            });
        }
        if factors.len() != FACTORS {
            return Err(SpatialError::LengthMismatch {
                what: "factors",
                expected: FACTORS,
                actual: factors.len(),
            });
        }
        Ok(estimate::estimate_one(self, lut, code, factors, epsilon0))
    }

    /// Approximate reconstruction `c + r·⟨ō,o⟩·ō` of an encoded vector (in
    /// the prepared space: unit-normalised for cosine).
    pub fn decode(
        &self,
        code: &[u64],
        factors: &[f32],
        centroid: Option<&[f32]>,
    ) -> Result<Vec<f32>, SpatialError> {
        if code.len() != self.words_per_vector() || factors.len() != FACTORS {
            return Err(SpatialError::LengthMismatch {
                what: "code words",
                expected: self.words_per_vector(),
                actual: code.len(),
            });
        }
        self.check_centroid(centroid)?;
        Ok(encode::decode(self, code, factors, centroid))
    }
}
