//! `dreamdb.lsh-cosine`: random-hyperplane LSH with multi-probe.
//!
//! Needs no training: the hyperplanes are a pure function of the seed
//! (ChaCha20 stream `dreamdb.lsh.hyperplanes`, `tables × bits × dim`
//! `next_f32_normal()` draws in (table, bit, component) order), so the
//! stored description is only `{algorithm, dim, params}`. The key of a
//! vector in table `t` packs the sign bits of its projections (bit `b` set
//! iff `dot_ref(v, h_{t,b}) ≥ 0`, left-fold reference order); its cell id
//! is `t · 2^bits + key`, so a vector has one cell per table and table 0
//! gives the primary cell.
//!
//! Multi-probe (Lv et al., VLDB 2007, query-directed): flipping the bits
//! with the smallest `|projection|` first. Perturbation sets of every
//! table are generated in increasing total `|projection|` by the
//! shift/expand heap, all tables merged in one heap; ties by (score,
//! table, set).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use dreamdb_core::random::DeterministicStream;
use dreamdb_core::{cbor, ContentHash};
use serde::{Deserialize, Serialize};

use super::metric::{check_dim, check_vector, dot_ref, norm_ref};
use super::SpatialError;

/// The algorithm name.
pub const LSH_COSINE: &str = "dreamdb.lsh-cosine";
/// The stream domain of the hyperplanes.
pub const DOMAIN_HYPERPLANES: &str = "dreamdb.lsh.hyperplanes";

/// LSH parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LshParams {
    /// Number of hash tables (≥ 1).
    pub tables: u32,
    /// Sign bits per table, 1..=24, with `tables · 2^bits ≤ 2^32`.
    pub bits: u32,
    /// Seed of the hyperplane stream.
    pub seed: u64,
}

/// The stored description of an LSH index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LshDescription {
    /// Always `dreamdb.lsh-cosine`.
    pub algorithm: String,
    /// Vector dimension.
    pub dim: u32,
    /// Parameters.
    pub params: LshParams,
}

/// An LSH index with its hyperplanes generated.
#[derive(Debug, Clone)]
pub struct LshIndex {
    desc: LshDescription,
    planes: Vec<f32>,
}

impl LshIndex {
    /// Builds the index (validates parameters, draws the hyperplanes).
    pub fn new(dim: usize, params: LshParams) -> Result<LshIndex, SpatialError> {
        LshIndex::from_description(LshDescription {
            algorithm: LSH_COSINE.to_owned(),
            dim: dim as u32,
            params,
        })
    }

    /// Validates a stored description and builds the index.
    pub fn from_description(desc: LshDescription) -> Result<LshIndex, SpatialError> {
        if desc.algorithm != LSH_COSINE {
            return Err(SpatialError::UnknownAlgorithm(desc.algorithm));
        }
        let dim = desc.dim as usize;
        check_dim(dim)?;
        let p = desc.params;
        if p.tables == 0 {
            return Err(SpatialError::Zero { name: "tables" });
        }
        if !(1..=24).contains(&p.bits) {
            return Err(SpatialError::OutOfRange {
                name: "bits",
                value: u64::from(p.bits),
                min: 1,
                max: 24,
            });
        }
        let max_tables = (1u64 << 32) >> p.bits;
        if u64::from(p.tables) > max_tables.min(1024) {
            return Err(SpatialError::OutOfRange {
                name: "tables",
                value: u64::from(p.tables),
                min: 1,
                max: max_tables.min(1024),
            });
        }
        let mut stream = DeterministicStream::from_seed(p.seed, DOMAIN_HYPERPLANES);
        let count = p.tables as usize * p.bits as usize * dim;
        let planes = (0..count).map(|_| stream.next_f32_normal()).collect();
        Ok(LshIndex { desc, planes })
    }

    /// Decodes canonical CBOR bytes of an [`LshDescription`].
    pub fn from_cbor(bytes: &[u8]) -> Result<LshIndex, SpatialError> {
        LshIndex::from_description(cbor::from_slice(bytes)?)
    }

    /// The stored description.
    pub fn description(&self) -> &LshDescription {
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

    /// Number of cells: `tables · 2^bits`.
    pub fn cell_count(&self) -> u64 {
        u64::from(self.desc.params.tables) << self.desc.params.bits
    }

    fn projections(&self, v: &[f32]) -> Vec<f32> {
        self.planes
            .chunks_exact(self.dim())
            .map(|h| dot_ref(v, h))
            .collect()
    }

    fn check(&self, v: &[f32]) -> Result<(), SpatialError> {
        check_vector(v, self.dim(), 0)?;
        if norm_ref(v) == 0.0 {
            return Err(SpatialError::ZeroVector { vector: 0 });
        }
        Ok(())
    }

    /// The vector's cell in every table (`t · 2^bits + key`).
    pub fn keys(&self, v: &[f32]) -> Result<Vec<u32>, SpatialError> {
        self.check(v)?;
        let bits = self.desc.params.bits as usize;
        let proj = self.projections(v);
        Ok(proj
            .chunks_exact(bits)
            .enumerate()
            .map(|(t, p)| {
                let key = p
                    .iter()
                    .enumerate()
                    .fold(0u32, |k, (b, x)| if *x >= 0.0 { k | (1 << b) } else { k });
                ((t as u32) << bits) | key
            })
            .collect())
    }

    /// The primary cell (table 0's).
    pub fn assign_one(&self, v: &[f32]) -> Result<u32, SpatialError> {
        Ok(self.keys(v)?.first().copied().unwrap_or(0))
    }

    /// `nprobe` cells in multi-probe order: every table's own key first
    /// (score 0, table order), then perturbations by increasing score.
    pub fn probe(&self, query: &[f32], nprobe: usize) -> Result<Vec<u32>, SpatialError> {
        if nprobe == 0 {
            return Err(SpatialError::Zero { name: "nprobe" });
        }
        let keys = self.keys(query)?;
        let bits = self.desc.params.bits as usize;
        let proj = self.projections(query);
        // Per table: bit positions sorted by |projection| (ties: position).
        let tables: Vec<(Vec<usize>, Vec<f64>)> = proj
            .chunks_exact(bits)
            .map(|p| {
                let mut order: Vec<usize> = (0..bits).collect();
                order.sort_by(|&a, &b| p[a].abs().total_cmp(&p[b].abs()).then(a.cmp(&b)));
                let z = order.iter().map(|&b| f64::from(p[b].abs())).collect();
                (order, z)
            })
            .collect();
        let mut out: Vec<u32> = keys.iter().copied().take(nprobe).collect();
        // Heap of (score, table, sorted-position set as a bitmask).
        let mut heap = BinaryHeap::new();
        for (t, (_, z)) in tables.iter().enumerate() {
            heap.push(Reverse((z[0].to_bits(), t, 1u32)));
        }
        while out.len() < nprobe {
            let Some(Reverse((score, t, set))) = heap.pop() else {
                break;
            };
            let (order, z) = &tables[t];
            let mut flip = 0u32;
            for (pos, &b) in order.iter().enumerate() {
                if set & (1 << pos) != 0 {
                    flip |= 1 << b;
                }
            }
            out.push(keys[t] ^ flip);
            let top = 31 - set.leading_zeros() as usize;
            if top + 1 < bits {
                let s = f64::from_bits(score);
                // shift: replace the largest position with the next one.
                let shifted = (set & !(1 << top)) | (1 << (top + 1));
                heap.push(Reverse(((s - z[top] + z[top + 1]).to_bits(), t, shifted)));
                // expand: add the next position.
                heap.push(Reverse((
                    (s + z[top + 1]).to_bits(),
                    t,
                    set | (1 << (top + 1)),
                )));
            }
        }
        Ok(out)
    }
}
