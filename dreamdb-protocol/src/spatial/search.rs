//! The in-memory search pipeline: probe cells, estimate from codes, rerank
//! exactly from raw vectors, return the top k by (distance, id).
//!
//! This is the reference of what a query over stored cells computes; the
//! storage layer feeds it the same per-cell arrays from segment objects.
//! Without a compressor it is IVF-flat: exact distances inside the probed
//! cells. With RaBitQ and raw vectors, the best `k · refine_factor`
//! estimates are reranked in ascending order of their lower bound
//! (estimate − error bound), and reranking stops at the first candidate
//! whose lower bound exceeds the current k-th exact distance: it and all
//! later ones cannot enter the top k (with the bound's confidence).

use std::cmp::Ordering;

use rayon::prelude::*;

use super::ivf::IvfIndex;
use super::metric::{check_vector, prepare, prepared_distance_many, Metric, REF_LANES};
use super::rabitq::quantised::QuantisedQuery;
use super::rabitq::{RaBitQ, DEFAULT_EPSILON0, FACTORS};
use super::topk::{BoundedTop, Ranked};
use super::SpatialError;

/// One cell's records, as parallel arrays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellData {
    /// Record ids.
    pub ids: Vec<u64>,
    /// Codes, `words_per_vector` u64 per record (empty without compressor).
    pub codes: Vec<u64>,
    /// Factors, [`FACTORS`] f32 per record (empty without compressor).
    pub factors: Vec<f32>,
    /// Prepared raw vectors (unit-normalised for cosine), `dim` per record.
    pub raw: Option<Vec<f32>>,
}

/// Search knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions {
    /// Results wanted.
    pub k: usize,
    /// Cells probed.
    pub nprobe: usize,
    /// Rerank `k · refine_factor` candidates exactly; 0 = no rerank.
    pub refine_factor: usize,
    /// ε₀ of the RaBitQ bound.
    pub epsilon0: f32,
}

/// Counters of one search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Cells probed.
    pub cells: usize,
    /// Codes estimated.
    pub estimated: usize,
    /// Exact distances computed.
    pub exact: usize,
    /// Rerank candidates skipped by the lower bound.
    pub skipped: usize,
}

/// An IVF index with its cells' data, optionally compressed.
#[derive(Debug, Clone)]
pub struct IvfStore {
    index: IvfIndex,
    compressor: Option<RaBitQ>,
    cells: Vec<CellData>,
    /// `R(c)` of every slot's centroid (padded), when compressed: a probed
    /// cell's rotated query residual is then `R(q) − R(c)`.
    rotated_centroids: Vec<f32>,
}

fn by_distance(a: &(f32, u64), b: &(f32, u64)) -> Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

impl IvfStore {
    /// Assigns `vectors` (row-major) to cells, encodes them when a
    /// compressor is given, and keeps the prepared raw vectors when
    /// `keep_raw` (required without a compressor).
    pub fn build(
        index: IvfIndex,
        compressor: Option<RaBitQ>,
        ids: &[u64],
        vectors: &[f32],
        keep_raw: bool,
    ) -> Result<IvfStore, SpatialError> {
        let dim = index.dim();
        let cells_of = index.assign(vectors)?;
        if ids.len() != cells_of.len() {
            return Err(SpatialError::LengthMismatch {
                what: "ids",
                expected: cells_of.len(),
                actual: ids.len(),
            });
        }
        if let Some(c) = &compressor {
            if c.dim() != dim || c.metric() != index.metric() {
                return Err(SpatialError::Malformed(
                    "compressor dim or metric differs from the index".to_owned(),
                ));
            }
        }
        let keep_raw = keep_raw || compressor.is_none();
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); index.slots()];
        for (i, &c) in cells_of.iter().enumerate() {
            members[c as usize].push(i);
        }
        let metric = index.metric();
        let cells: Result<Vec<CellData>, SpatialError> = members
            .par_iter()
            .enumerate()
            .map(|(cell, rows)| {
                let mut prepared = Vec::with_capacity(rows.len() * dim);
                for &i in rows {
                    prepared.extend(prepare(metric, &vectors[i * dim..(i + 1) * dim], i)?);
                }
                let (codes, factors) = match &compressor {
                    Some(rq) => {
                        let centroid = index.centroid(cell as u32)?;
                        encode_prepared_batch(rq, &prepared, centroid)
                    }
                    None => (Vec::new(), Vec::new()),
                };
                Ok(CellData {
                    ids: rows.iter().map(|&i| ids[i]).collect(),
                    codes,
                    factors,
                    raw: keep_raw.then_some(prepared),
                })
            })
            .collect();
        IvfStore::from_parts(index, compressor, cells?)
    }

    /// Wraps existing cell data (one entry per slot of the index).
    pub fn from_parts(
        index: IvfIndex,
        compressor: Option<RaBitQ>,
        cells: Vec<CellData>,
    ) -> Result<IvfStore, SpatialError> {
        if cells.len() != index.slots() {
            return Err(SpatialError::LengthMismatch {
                what: "cells",
                expected: index.slots(),
                actual: cells.len(),
            });
        }
        let dim = index.dim();
        for c in &cells {
            let n = c.ids.len();
            if let Some(raw) = &c.raw {
                if raw.len() != n * dim {
                    return Err(SpatialError::LengthMismatch {
                        what: "raw",
                        expected: n * dim,
                        actual: raw.len(),
                    });
                }
            }
            if let Some(rq) = &compressor {
                if c.codes.len() != n * rq.words_per_vector() || c.factors.len() != n * FACTORS {
                    return Err(SpatialError::LengthMismatch {
                        what: "codes",
                        expected: n * rq.words_per_vector(),
                        actual: c.codes.len(),
                    });
                }
            } else if c.raw.is_none() && n > 0 {
                return Err(SpatialError::Malformed(
                    "a cell without codes must keep raw vectors".to_owned(),
                ));
            }
        }
        let mut rotated_centroids = Vec::new();
        if let Some(rq) = &compressor {
            rotated_centroids.reserve(index.slots() * rq.padded());
            for slot in 0..index.slots() {
                rotated_centroids.extend(rq.rotation().apply(index.centroid(slot as u32)?));
            }
        }
        Ok(IvfStore {
            index,
            compressor,
            cells,
            rotated_centroids,
        })
    }

    /// The index.
    pub fn index(&self) -> &IvfIndex {
        &self.index
    }

    /// The compressor, if any.
    pub fn compressor(&self) -> Option<&RaBitQ> {
        self.compressor.as_ref()
    }

    /// Data of cell `cell` (empty for non-leaf slots).
    pub fn cell(&self, cell: u32) -> Option<&CellData> {
        self.cells.get(cell as usize)
    }

    /// Records per slot.
    pub fn cell_sizes(&self) -> Vec<usize> {
        self.cells.iter().map(|c| c.ids.len()).collect()
    }

    /// Top `k` by (distance, id) probing `nprobe` cells, reranking
    /// `k · refine_factor` candidates (0 = return estimates).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        nprobe: usize,
        refine_factor: usize,
    ) -> Result<Vec<(u64, f32)>, SpatialError> {
        let opts = SearchOptions {
            k,
            nprobe,
            refine_factor,
            epsilon0: DEFAULT_EPSILON0,
        };
        Ok(self.search_with(query, &opts)?.0)
    }

    /// [`IvfStore::search`] with every knob and the counters.
    pub fn search_with(
        &self,
        query: &[f32],
        opts: &SearchOptions,
    ) -> Result<(Vec<(u64, f32)>, SearchStats), SpatialError> {
        self.search_with_scratch(query, opts, &mut SearchScratch::new())
    }

    /// [`IvfStore::search_with`] reusing `scratch`'s buffers.
    pub fn search_with_scratch(
        &self,
        query: &[f32],
        opts: &SearchOptions,
        scratch: &mut SearchScratch,
    ) -> Result<(Vec<(u64, f32)>, SearchStats), SpatialError> {
        if opts.k == 0 {
            return Err(SpatialError::Zero { name: "k" });
        }
        if opts.nprobe == 0 {
            return Err(SpatialError::Zero { name: "nprobe" });
        }
        if !opts.epsilon0.is_finite() || opts.epsilon0 < 0.0 {
            return Err(SpatialError::InvalidThreshold { name: "epsilon0" });
        }
        check_vector(query, self.index.dim(), 0)?;
        let metric = self.index.metric();
        let q = prepare(metric, query, 0)?;
        let probed = self.index.probe_prepared(&q, opts.nprobe);
        let mut stats = SearchStats {
            cells: probed.len(),
            ..SearchStats::default()
        };
        let hits = match &self.compressor {
            None => self.exact_in(&q, &probed, opts.k, &mut stats),
            Some(rq) => self.compressed(rq, &q, &probed, opts, &mut stats, scratch)?,
        };
        Ok((hits.into_iter().map(|(d, id)| (id, d)).collect(), stats))
    }

    /// Exact top k among the probed cells' raw vectors.
    fn exact_in(
        &self,
        q: &[f32],
        probed: &[u32],
        k: usize,
        stats: &mut SearchStats,
    ) -> Vec<(f32, u64)> {
        let metric = self.index.metric();
        let dim = self.index.dim();
        let mut all = Vec::new();
        for &c in probed {
            let cell = &self.cells[c as usize];
            if let Some(raw) = &cell.raw {
                for (row, id) in raw.chunks_exact(dim).zip(&cell.ids) {
                    all.push((metric.prepared_distance(q, row), *id));
                }
            }
        }
        stats.exact += all.len();
        top_k(all, k)
    }

    fn compressed(
        &self,
        rq: &RaBitQ,
        q: &[f32],
        probed: &[u32],
        opts: &SearchOptions,
        stats: &mut SearchStats,
        scratch: &mut SearchScratch,
    ) -> Result<Vec<(f32, u64)>, SpatialError> {
        let SearchScratch {
            rotated_query,
            residual,
            quantised,
            top,
            pool,
        } = scratch;
        let has_raw = probed.iter().all(|&c| self.cells[c as usize].raw.is_some());
        let rerank = opts.refine_factor > 0 && has_raw;
        let keep = if rerank {
            opts.k.saturating_mul(opts.refine_factor)
        } else {
            opts.k
        };
        top.reset(keep);
        rq.rotate_into(q, rotated_query);
        let n = rq.padded();
        for &c in probed {
            let cell = &self.cells[c as usize];
            if cell.ids.is_empty() {
                continue;
            }
            let centroid = self.index.centroid(c)?;
            let rotated_centroid = self
                .rotated_centroids
                .get(c as usize * n..(c as usize + 1) * n)
                .ok_or(SpatialError::UnknownCell { cell: c })?;
            rq.quantise_query(
                q,
                rotated_query,
                Some((centroid, rotated_centroid)),
                residual,
                quantised,
            );
            let quantised = &*quantised;
            rq.fast_distances_cell(quantised, &cell.codes, &cell.factors, |i, d| {
                if top.admits(d) {
                    let f = &cell.factors[i * FACTORS..(i + 1) * FACTORS];
                    let bound = rq.fast_bound(quantised, f, opts.epsilon0);
                    top.push(d, cell.ids[i], (c, i as u32, bound));
                }
            });
            stats.estimated += cell.ids.len();
        }
        pool.clear();
        top.drain_sorted(pool);
        if !rerank {
            return Ok(pool.iter().map(|r| (r.distance, r.id)).collect());
        }
        let lower = |r: &Ranked<(u32, u32, f32)>| r.distance - r.payload.2;
        pool.sort_by(|a, b| lower(a).total_cmp(&lower(b)).then(a.id.cmp(&b.id)));
        let metric: Metric = self.index.metric();
        let dim = self.index.dim();
        let row_of = |at: usize| -> &[f32] {
            let Some(cand) = pool.get(at.min(pool.len().saturating_sub(1))) else {
                return &[];
            };
            let (c, i, _) = cand.payload;
            let raw = self.cells[c as usize].raw.as_deref().unwrap_or(&[]);
            raw.get(i as usize * dim..(i as usize + 1) * dim)
                .unwrap_or(&[])
        };
        let mut best: Vec<(f32, u64)> = Vec::with_capacity(opts.k + 1);
        // Exact distances are computed REF_LANES candidates at a time (the
        // reference folds interleaved); those past the stop are unused.
        let mut block = [0.0f32; REF_LANES];
        for (at, cand) in pool.iter().enumerate() {
            if best.len() == opts.k && best.last().is_some_and(|w| lower(cand) > w.0) {
                stats.skipped = pool.len() - at;
                break;
            }
            if at % REF_LANES == 0 {
                let rows = std::array::from_fn(|j| row_of(at + j));
                block = prepared_distance_many(metric, q, rows);
            }
            let d = block[at % REF_LANES];
            stats.exact += 1;
            let item = (d, cand.id);
            let pos = best.partition_point(|x| by_distance(x, &item) == Ordering::Less);
            if pos < opts.k {
                best.insert(pos, item);
                best.truncate(opts.k);
            }
        }
        Ok(best)
    }
}

/// Reusable buffers of a search (one per thread): after the first query,
/// [`IvfStore::search_with_scratch`] allocates only its result.
#[derive(Debug, Clone, Default)]
pub struct SearchScratch {
    rotated_query: Vec<f32>,
    residual: Vec<f32>,
    quantised: QuantisedQuery,
    top: BoundedTop<(u32, u32, f32)>,
    pool: Vec<Ranked<(u32, u32, f32)>>,
}

impl SearchScratch {
    /// Empty buffers.
    pub fn new() -> SearchScratch {
        SearchScratch::default()
    }
}

/// Encodes prepared rows against a centroid.
fn encode_prepared_batch(rq: &RaBitQ, prepared: &[f32], centroid: &[f32]) -> (Vec<u64>, Vec<f32>) {
    let dim = rq.dim();
    let mut codes = Vec::new();
    let mut factors = Vec::new();
    for row in prepared.chunks_exact(dim) {
        let e = super::rabitq::encode::encode_prepared(rq, row, Some(centroid));
        codes.extend_from_slice(&e.code);
        factors.extend_from_slice(&e.factors);
    }
    (codes, factors)
}

/// The `k` smallest by (distance, id), sorted.
pub fn top_k(mut all: Vec<(f32, u64)>, k: usize) -> Vec<(f32, u64)> {
    if all.len() > k && k > 0 {
        all.select_nth_unstable_by(k - 1, by_distance);
        all.truncate(k);
    }
    all.sort_by(by_distance);
    all
}
