//! The benchmark sets of each suite size, prepared once and cached as
//! `.npy` files that the Python peer driver reads too, so every system is
//! fed the same bytes.
//!
//! | size | sets |
//! |---|---|
//! | quick | bigann10k; synthetic 20,000 × 128; debian-minilm's first 20,000 rows (ground truth recomputed) |
//! | standard | bigann10k; synthetic 100,000 × 128; debian-minilm (100,000 × 384) |
//! | scale | standard + synthetic 1,000,000 × 128 |
//!
//! Each set lives in `<cache>/<name>/` as `base.f32.npy`,
//! `query.f32.npy` and `groundtruth.i32.npy` (top 10, best first). The
//! synthetic sets ([`GaussianSpec::BENCH`], seed 2026) and the recomputed
//! ground truths are computed only when their files are missing: exact
//! k-NN over 1M rows takes minutes on 2 cores.

use std::path::{Path, PathBuf};

use dreamdb_protocol::spatial::Metric;
use serde_json::json;

use crate::data::{
    bigann10k, debian_minilm, exact_knn, gaussian_with, read_npy_f32, read_npy_i32, truth_ids,
    write_npy_f32, write_npy_i32, DataError, GaussianSpec, IntMatrix, Matrix,
};

/// Suite sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A few minutes on 2 cores (CI smoke run).
    Quick,
    /// Under 30 minutes on 2 cores.
    Standard,
    /// Standard plus the 1,000,000-row set.
    Scale,
}

impl Mode {
    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Standard => "standard",
            Mode::Scale => "scale",
        }
    }
}

/// Neighbours kept in the cached ground truth.
pub const TRUTH_K: usize = 10;

/// One prepared set.
#[derive(Debug, Clone)]
pub struct BenchSet {
    /// Short name (directory and JSON key).
    pub name: String,
    /// Base vectors.
    pub base: Matrix,
    /// Query vectors (only those used).
    pub queries: Matrix,
    /// Exact top-10 ids per query.
    pub truth: Vec<Vec<u64>>,
    /// The metric.
    pub metric: Metric,
    /// IVF cells (≈ √rows).
    pub cells: u32,
    /// Rows the index is trained on (a prefix sample).
    pub train_rows: usize,
    /// Where its `.npy` files are.
    pub dir: PathBuf,
}

impl BenchSet {
    /// The set's description for `sets.json` (read by the peer driver).
    pub fn describe(&self) -> serde_json::Value {
        json!({
            "name": self.name,
            "dir": self.dir,
            "rows": self.base.rows,
            "dim": self.base.dim,
            "queries": self.queries.rows,
            "metric": match self.metric {
                Metric::L2 => "l2",
                Metric::Cosine => "cosine",
                Metric::InnerProduct => "dot",
            },
            "cells": self.cells,
            "train_rows": self.train_rows,
        })
    }
}

/// `≈ √rows` cells.
fn cells_for(rows: usize) -> u32 {
    ((rows as f64).sqrt().round() as u32).max(1)
}

fn rows_of(m: &Matrix, from: usize, n: usize) -> Matrix {
    let n = n.min(m.rows.saturating_sub(from));
    Matrix {
        rows: n,
        dim: m.dim,
        data: m.data[from * m.dim..(from + n) * m.dim].to_vec(),
    }
}

fn truth_matrix(truth: &[Vec<u64>]) -> IntMatrix {
    IntMatrix {
        rows: truth.len(),
        dim: TRUTH_K,
        data: truth
            .iter()
            .flat_map(|t| {
                let mut row: Vec<i32> = t.iter().take(TRUTH_K).map(|&i| i as i32).collect();
                row.resize(TRUTH_K, -1);
                row
            })
            .collect(),
    }
}

struct Spec {
    name: &'static str,
    metric: Metric,
    queries: usize,
}

/// Loads `<dir>/*.npy` if all three exist, else builds them with `make`
/// and writes them.
fn cached(
    dir: &Path,
    spec: &Spec,
    make: impl FnOnce() -> Result<(Matrix, Matrix, Vec<Vec<u64>>), DataError>,
) -> Result<BenchSet, DataError> {
    let (b, q, g) = (
        dir.join("base.f32.npy"),
        dir.join("query.f32.npy"),
        dir.join("groundtruth.i32.npy"),
    );
    let (base, queries, truth) = if b.is_file() && q.is_file() && g.is_file() {
        let truth = truth_ids(&read_npy_i32(&g)?);
        (read_npy_f32(&b)?, read_npy_f32(&q)?, truth)
    } else {
        let (base, queries, truth) = make()?;
        write_npy_f32(&b, &base)?;
        write_npy_f32(&q, &queries)?;
        write_npy_i32(&g, &truth_matrix(&truth))?;
        (base, queries, truth)
    };
    let cells = cells_for(base.rows);
    Ok(BenchSet {
        name: spec.name.to_owned(),
        train_rows: base.rows.min(32_000.max(40 * cells as usize)),
        cells,
        base,
        queries,
        truth,
        metric: spec.metric,
        dir: dir.to_owned(),
    })
}

/// A shared set: first `rows` base rows and first `queries` queries; the
/// shipped ground truth when every base row is kept, else recomputed.
fn shared(
    cache: &Path,
    spec: &Spec,
    rows: Option<usize>,
    load: fn() -> Result<crate::data::Dataset, DataError>,
) -> Result<BenchSet, DataError> {
    cached(&cache.join(spec.name), spec, || {
        let ds = load()?;
        let queries = rows_of(&ds.queries, 0, spec.queries);
        match rows {
            Some(n) if n < ds.base.rows => {
                let base = rows_of(&ds.base, 0, n);
                let truth = exact_knn(&base, &queries, TRUTH_K, spec.metric)?;
                Ok((base, queries, truth))
            }
            _ => {
                let truth = truth_ids(&ds.groundtruth)
                    .into_iter()
                    .take(queries.rows)
                    .collect();
                Ok((ds.base, queries, truth))
            }
        }
    })
}

fn synthetic(cache: &Path, spec: &Spec, rows: usize) -> Result<BenchSet, DataError> {
    cached(&cache.join(spec.name), spec, || {
        let all = gaussian_with(GaussianSpec::BENCH, rows + spec.queries, 128, 2026);
        let base = rows_of(&all, 0, rows);
        let queries = rows_of(&all, rows, spec.queries);
        let truth = exact_knn(&base, &queries, TRUTH_K, spec.metric)?;
        Ok((base, queries, truth))
    })
}

/// The sets of `mode`, prepared under `cache` (see the module docs).
pub fn bench_sets(mode: Mode, cache: &Path) -> Result<Vec<BenchSet>, DataError> {
    let q = |name, metric, queries| Spec {
        name,
        metric,
        queries,
    };
    let mut out = vec![shared(
        cache,
        &q("bigann10k", Metric::L2, 100),
        None,
        bigann10k,
    )?];
    if mode == Mode::Quick {
        out.push(synthetic(
            cache,
            &q("synthetic-20k", Metric::L2, 200),
            20_000,
        )?);
        out.push(shared(
            cache,
            &q("debian-minilm-20k", Metric::Cosine, 200),
            Some(20_000),
            debian_minilm,
        )?);
        return Ok(out);
    }
    out.push(synthetic(
        cache,
        &q("synthetic-100k", Metric::L2, 500),
        100_000,
    )?);
    out.push(shared(
        cache,
        &q("debian-minilm", Metric::Cosine, 500),
        None,
        debian_minilm,
    )?);
    if mode == Mode::Scale {
        out.push(synthetic(
            cache,
            &q("synthetic-1m", Metric::L2, 500),
            1_000_000,
        )?);
    }
    Ok(out)
}
