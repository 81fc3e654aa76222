//! `dreamdb.imi-cosine`: the inverted multi-index (Babenko & Lempitsky,
//! CVPR 2012) on unit-normalised vectors.
//!
//! The normalised vector is split into a first half (`⌊dim/2⌋`
//! components) and a second half; each half has its own codebook trained
//! by Euclidean k-means ([`super::kmeans`], stream domains
//! `dreamdb.imi.kmeans++.0` / `.1`, sample `dreamdb.imi.sample`). The cell
//! of a vector is `i · k2 + j` where `i`, `j` are the reference-path
//! nearest codewords of its halves (squared L2, ties to the lowest id), so
//! `k1 · k2` cells cost only `k1 + k2` distance computations. A query
//! probes cells in increasing `d1[i] + d2[j]` by the multi-sequence
//! algorithm (a heap over rank pairs; ties by cell id).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use dreamdb_core::{cbor, ContentHash};
use serde::{Deserialize, Serialize};

use super::bytes::f32_le;
use super::kmeans;
use super::metric::{check_batch, check_dim, check_vector, norm_f64, prepare, CentroidSet, Metric};
use super::SpatialError;

/// The algorithm name.
pub const IMI_COSINE: &str = "dreamdb.imi-cosine";

/// IMI training parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImiParams {
    /// Codewords of the first half.
    pub k1: u32,
    /// Codewords of the second half.
    pub k2: u32,
    /// Seed of the k-means streams.
    pub seed: u64,
    /// Lloyd iterations per half.
    pub iterations: u32,
    /// Training sample size (all rows when `None`).
    pub sample: Option<u32>,
}

/// The stored description of an IMI index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImiDescription {
    /// Always `dreamdb.imi-cosine`.
    pub algorithm: String,
    /// Vector dimension (≥ 2).
    pub dim: u32,
    /// Parameters.
    pub params: ImiParams,
    /// First-half codebook, `k1 × ⌊dim/2⌋` little-endian f32.
    #[serde(with = "f32_le")]
    pub codebook1: Vec<f32>,
    /// Second-half codebook, `k2 × (dim − ⌊dim/2⌋)` little-endian f32.
    #[serde(with = "f32_le")]
    pub codebook2: Vec<f32>,
}

/// An IMI index.
#[derive(Debug, Clone)]
pub struct ImiIndex {
    desc: ImiDescription,
    first: CentroidSet,
    second: CentroidSet,
}

impl ImiIndex {
    /// Trains both codebooks on `data`.
    pub fn train(params: ImiParams, dim: usize, data: &[f32]) -> Result<ImiIndex, SpatialError> {
        if params.k1 == 0 || params.k2 == 0 {
            return Err(SpatialError::Zero { name: "k" });
        }
        if dim < 2 {
            return Err(SpatialError::InvalidDimension(dim));
        }
        if u64::from(params.k1) * u64::from(params.k2) > u64::from(u32::MAX) {
            return Err(SpatialError::OutOfRange {
                name: "k1 * k2",
                value: u64::from(params.k1) * u64::from(params.k2),
                min: 1,
                max: u64::from(u32::MAX),
            });
        }
        let n = check_batch(data, dim)?;
        if n == 0 {
            return Err(SpatialError::EmptyTrainingSet);
        }
        let chosen = match params.sample {
            Some(0) => return Err(SpatialError::Zero { name: "sample" }),
            Some(s) => kmeans::sample_indices(n, s as usize, params.seed, "dreamdb.imi.sample"),
            None => (0..n).collect(),
        };
        let kmax = params.k1.max(params.k2) as usize;
        if kmax > chosen.len() {
            return Err(SpatialError::KExceedsN {
                k: kmax,
                n: chosen.len(),
            });
        }
        let h = dim / 2;
        let mut halves = [Vec::new(), Vec::new()];
        for &i in &chosen {
            let p = prepare(Metric::Cosine, &data[i * dim..(i + 1) * dim], i)?;
            halves[0].extend_from_slice(&p[..h]);
            halves[1].extend_from_slice(&p[h..]);
        }
        let train = |rows: &[f32], d: usize, k: u32, part: usize| {
            kmeans::train(
                rows,
                d,
                k as usize,
                params.seed,
                params.iterations,
                Metric::L2,
                &format!("dreamdb.imi.kmeans++.{part}"),
            )
        };
        let codebook1 = train(&halves[0], h, params.k1, 0)?;
        let codebook2 = train(&halves[1], dim - h, params.k2, 1)?;
        ImiIndex::from_description(ImiDescription {
            algorithm: IMI_COSINE.to_owned(),
            dim: dim as u32,
            params,
            codebook1,
            codebook2,
        })
    }

    /// Validates a description and builds the index.
    pub fn from_description(desc: ImiDescription) -> Result<ImiIndex, SpatialError> {
        if desc.algorithm != IMI_COSINE {
            return Err(SpatialError::UnknownAlgorithm(desc.algorithm));
        }
        let dim = desc.dim as usize;
        check_dim(dim)?;
        if dim < 2 {
            return Err(SpatialError::InvalidDimension(dim));
        }
        let h = dim / 2;
        let k1 = check_batch(&desc.codebook1, h)?;
        let k2 = check_batch(&desc.codebook2, dim - h)?;
        if k1 != desc.params.k1 as usize || k2 != desc.params.k2 as usize || k1 == 0 || k2 == 0 {
            return Err(SpatialError::Malformed(
                "codebook sizes differ from k1, k2".to_owned(),
            ));
        }
        let first = CentroidSet::new(Metric::L2, h, desc.codebook1.clone());
        let second = CentroidSet::new(Metric::L2, dim - h, desc.codebook2.clone());
        Ok(ImiIndex {
            desc,
            first,
            second,
        })
    }

    /// Decodes canonical CBOR bytes of an [`ImiDescription`].
    pub fn from_cbor(bytes: &[u8]) -> Result<ImiIndex, SpatialError> {
        ImiIndex::from_description(cbor::from_slice(bytes)?)
    }

    /// The stored description.
    pub fn description(&self) -> &ImiDescription {
        &self.desc
    }

    /// Canonical CBOR bytes.
    pub fn to_cbor(&self) -> Result<Vec<u8>, SpatialError> {
        Ok(cbor::to_vec(&self.desc)?)
    }

    /// Content hash.
    pub fn hash(&self) -> Result<ContentHash, SpatialError> {
        Ok(ContentHash::of(&self.to_cbor()?))
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.desc.dim as usize
    }

    /// `k1 · k2`.
    pub fn cell_count(&self) -> u64 {
        u64::from(self.desc.params.k1) * u64::from(self.desc.params.k2)
    }

    /// The cell of one vector: `i · k2 + j`.
    pub fn assign_one(&self, v: &[f32]) -> Result<u32, SpatialError> {
        check_vector(v, self.dim(), 0)?;
        let p = prepare(Metric::Cosine, v, 0)?;
        let h = self.dim() / 2;
        let (a, b) = (&p[..h], &p[h..]);
        let i = self
            .first
            .argmin_range(a, norm_f64(a), 0, self.first.len())
            .unwrap_or(0);
        let j = self
            .second
            .argmin_range(b, norm_f64(b), 0, self.second.len())
            .unwrap_or(0);
        Ok((i * self.second.len() + j) as u32)
    }

    /// `nprobe` cells by increasing `d1[i] + d2[j]` (multi-sequence).
    pub fn probe(&self, query: &[f32], nprobe: usize) -> Result<Vec<u32>, SpatialError> {
        if nprobe == 0 {
            return Err(SpatialError::Zero { name: "nprobe" });
        }
        check_vector(query, self.dim(), 0)?;
        let p = prepare(Metric::Cosine, query, 0)?;
        let h = self.dim() / 2;
        let r1 = self.first.rank_ref(&p[..h], 0..self.first.len());
        let r2 = self.second.rank_ref(&p[h..], 0..self.second.len());
        let k2 = self.second.len();
        let cell = |a: usize, b: usize| (r1[a].1 * k2 + r2[b].1) as u32;
        let score = |a: usize, b: usize| r1[a].0 + r2[b].0;
        let mut heap = BinaryHeap::new();
        let mut seen = HashSet::new();
        heap.push(Reverse((OrdF32(score(0, 0)), cell(0, 0), 0usize, 0usize)));
        seen.insert((0usize, 0usize));
        let mut out = Vec::with_capacity(nprobe);
        while let Some(Reverse((_, c, a, b))) = heap.pop() {
            out.push(c);
            if out.len() == nprobe {
                break;
            }
            for (x, y) in [(a + 1, b), (a, b + 1)] {
                if x < r1.len() && y < r2.len() && seen.insert((x, y)) {
                    heap.push(Reverse((OrdF32(score(x, y)), cell(x, y), x, y)));
                }
            }
        }
        Ok(out)
    }
}

/// f32 ordered by `total_cmp`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrdF32(f32);

impl Eq for OrdF32 {}

impl PartialOrd for OrdF32 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF32 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}
