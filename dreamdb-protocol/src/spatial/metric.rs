//! Metrics, input validation and the arithmetic that decides spatial keys.
//!
//! A spatial key is a pure function of the vector and the index, so the
//! arithmetic that ranks centroids is normative (spec 0004 §4): the
//! **scalar reference path** uses f32 arithmetic, folds every sum left to
//! right in index order starting from `0.0`, and never fuses a multiply
//! and an add. Argmin ties go to the lowest cell id; a NaN score ranks as
//! `+∞`.
//!
//! The **fast path** ([`CentroidSet::argmin_range`]) sums in 16 interleaved
//! lanes (which the compiler vectorises) and then proves its answer equals
//! the reference one: a standard forward error bound (`γ_d · Σ|terms|` per
//! path) gives every centroid an interval, and every centroid whose interval
//! can reach the fast minimum is re-scored with the reference path. Near
//! ties therefore cost a few reference evaluations and never change a key.

use serde::{Deserialize, Serialize};

use super::lanes::{
    fast_sum, fast_sums_rows, fast_sums_rows_block, ordered_sum, LaneOp, QUERY_BLOCK,
};

thread_local! {
    /// [`CentroidSet::argmin_range`]'s scores buffer, per thread.
    static SCORES: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    /// [`CentroidSet::argmin_range_block`]'s scores buffers, per thread.
    static BLOCK_SCORES: std::cell::Cell<[Vec<f32>; QUERY_BLOCK]> =
        std::cell::Cell::new(Default::default());
}
use super::SpatialError;

/// How closeness is measured. Every distance is "smaller is closer".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Metric {
    /// `1 − cos(a, b)`, computed on unit-normalised vectors.
    #[default]
    #[serde(rename = "cosine")]
    Cosine,
    /// Squared Euclidean distance `Σ (a_i − b_i)²`.
    #[serde(rename = "l2")]
    L2,
    /// Negated inner product `−Σ a_i b_i`.
    #[serde(rename = "ip")]
    InnerProduct,
}

impl Metric {
    /// The metric's short name as stored (`cosine`, `l2`, `ip`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::L2 => "l2",
            Metric::InnerProduct => "ip",
        }
    }

    /// The user-facing distance between `a` and `b` by the reference path
    /// (cosine normalises both; a zero vector has cosine distance 1).
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::L2 => l2sq_ref(a, b),
            Metric::InnerProduct => -dot_ref(a, b),
            Metric::Cosine => {
                let na = norm_ref(a);
                let nb = norm_ref(b);
                if na == 0.0 || nb == 0.0 {
                    return 1.0;
                }
                1.0 - dot_ref(a, b) / (na * nb)
            }
        }
    }

    /// The distance between an already prepared query and a prepared
    /// vector (cosine inputs unit-normalised by [`prepare`]).
    pub fn prepared_distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::L2 => l2sq_ref(a, b),
            Metric::InnerProduct => -dot_ref(a, b),
            Metric::Cosine => 1.0 - dot_ref(a, b),
        }
    }
}

/// Largest supported dimension.
pub const MAX_DIM: usize = 1 << 16;

/// Checks that `dim` is usable.
pub fn check_dim(dim: usize) -> Result<(), SpatialError> {
    if dim == 0 || dim > MAX_DIM {
        return Err(SpatialError::InvalidDimension(dim));
    }
    Ok(())
}

/// Checks one vector: length `dim` and every component finite.
pub fn check_vector(v: &[f32], dim: usize, row: usize) -> Result<(), SpatialError> {
    if v.len() != dim {
        return Err(SpatialError::WrongDimension {
            expected: dim,
            actual: v.len(),
        });
    }
    match v.iter().position(|x| !x.is_finite()) {
        Some(component) => Err(SpatialError::NonFinite {
            vector: row,
            component,
        }),
        None => Ok(()),
    }
}

/// Checks a row-major batch: a whole number of `dim`-vectors, all finite.
/// Returns the number of rows.
pub fn check_batch(batch: &[f32], dim: usize) -> Result<usize, SpatialError> {
    check_dim(dim)?;
    let rest = batch.chunks_exact(dim).remainder().len();
    if rest != 0 {
        return Err(SpatialError::WrongDimension {
            expected: dim,
            actual: rest,
        });
    }
    if let Some(i) = batch.iter().position(|x| !x.is_finite()) {
        return Err(SpatialError::NonFinite {
            vector: i / dim,
            component: i % dim,
        });
    }
    Ok(batch.len() / dim)
}

/// Reference dot product: `s = 0; s = s + a_i * b_i` for i ascending.
pub fn dot_ref(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        s += x * y;
    }
    s
}

/// Reference squared L2: `s = 0; d = a_i − b_i; s = s + d * d`.
pub fn l2sq_ref(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        let d = x - y;
        s += d * d;
    }
    s
}

/// Reference norm: `sqrt(dot_ref(v, v))` (IEEE correctly rounded sqrt).
pub fn norm_ref(v: &[f32]) -> f32 {
    dot_ref(v, v).sqrt()
}

/// Prepares a vector for `metric` by the reference path: cosine divides
/// every component by [`norm_ref`] (a zero vector is an error); the other
/// metrics copy it.
pub fn prepare(metric: Metric, v: &[f32], row: usize) -> Result<Vec<f32>, SpatialError> {
    let mut out = Vec::with_capacity(v.len());
    prepare_into(metric, v, row, &mut out)?;
    Ok(out)
}

/// [`prepare`] into `out` (cleared first), reusing its allocation: the
/// same values, bit for bit.
pub fn prepare_into(
    metric: Metric,
    v: &[f32],
    row: usize,
    out: &mut Vec<f32>,
) -> Result<(), SpatialError> {
    out.clear();
    match metric {
        Metric::Cosine => {
            let n = norm_ref(v);
            if n == 0.0 || !n.is_finite() {
                return Err(SpatialError::ZeroVector { vector: row });
            }
            out.extend(v.iter().map(|x| x / n));
        }
        Metric::L2 | Metric::InnerProduct => out.extend_from_slice(v),
    }
    Ok(())
}

/// Rows scored together by [`score_ref_many`].
pub const REF_LANES: usize = 8;

/// [`score_ref`] of `q` against [`REF_LANES`] rows at once. Each lane is
/// its own left fold in index order (the reference path, bit for bit);
/// interleaving independent folds only hides the add latency that makes a
/// single fold slow.
pub fn score_ref_many(metric: Metric, q: &[f32], rows: [&[f32]; REF_LANES]) -> [f32; REF_LANES] {
    let n = q.len();
    if rows.iter().any(|r| r.len() != n) {
        return rows.map(|r| score_ref(metric, q, r));
    }
    let mut s = [0.0f32; REF_LANES];
    match metric {
        Metric::L2 => {
            for (i, &x) in q.iter().enumerate().take(n) {
                for (acc, row) in s.iter_mut().zip(&rows) {
                    let d = x - row[i];
                    *acc += d * d;
                }
            }
            s
        }
        Metric::Cosine | Metric::InnerProduct => {
            for (i, &x) in q.iter().enumerate().take(n) {
                for (acc, row) in s.iter_mut().zip(&rows) {
                    *acc += x * row[i];
                }
            }
            s.map(|v| -v)
        }
    }
}

/// [`Metric::prepared_distance`] of `q` against [`REF_LANES`] rows at once
/// (bit for bit, see [`score_ref_many`]).
pub fn prepared_distance_many(
    metric: Metric,
    q: &[f32],
    rows: [&[f32]; REF_LANES],
) -> [f32; REF_LANES] {
    let scores = score_ref_many(metric, q, rows);
    match metric {
        // score = −dot exactly, and 1 − dot is the prepared distance.
        Metric::Cosine => scores.map(|s| 1.0 - (-s)),
        Metric::L2 | Metric::InnerProduct => scores,
    }
}

/// The normative ranking score of a prepared query against a stored
/// centroid: L2 → [`l2sq_ref`], cosine and inner product → `−dot_ref`.
pub fn score_ref(metric: Metric, q: &[f32], c: &[f32]) -> f32 {
    match metric {
        Metric::L2 => l2sq_ref(q, c),
        Metric::Cosine | Metric::InnerProduct => -dot_ref(q, c),
    }
}

/// Fast dot product: 16 interleaved lane sums, folded
/// ([`fast_sum`]). Not normative; used only under an error bound.
pub fn dot_fast(a: &[f32], b: &[f32]) -> f32 {
    fast_sum(a, b, LaneOp::Dot)
}

/// Dot product in 16 lanes folded in index order ([`ordered_sum`]): the
/// same bits on every machine, for values a format defines (the fast
/// estimator's query norms, spec 0010).
pub fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    ordered_sum(a, b, LaneOp::Dot)
}

/// Fast squared L2 in 16 lanes (see [`dot_fast`]).
pub fn l2sq_fast(a: &[f32], b: &[f32]) -> f32 {
    fast_sum(a, b, LaneOp::L2)
}

/// `score` with NaN mapped to `+∞`, for comparisons.
fn key(score: f32) -> f32 {
    if score.is_nan() {
        f32::INFINITY
    } else {
        score
    }
}

/// `2.02 γ / (1 − γ)` and `2.02 γ (1 + 4u)`: a fast score's error bound is
/// the first times the score (L2) or the second times `‖q‖ ‖c‖` (dot
/// products), plus `10⁻³⁸`.
#[derive(Debug, Clone, Copy)]
struct ErrorFactors {
    l2: f64,
    dot: f64,
}

impl ErrorFactors {
    /// The bound of centroid `i`'s fast score `s`.
    #[inline]
    fn of(&self, set: &CentroidSet, i: usize, s: f32, q_norm: f64) -> f64 {
        let e = match set.metric {
            Metric::L2 => self.l2 * f64::from(s),
            Metric::Cosine | Metric::InnerProduct => {
                self.dot * q_norm * set.norms.get(i).copied().unwrap_or(f64::INFINITY)
            }
        };
        e + 1e-38
    }
}

/// The index of the first smallest of `scores` (all finite; 0 when
/// empty). The minimum is found in 16 independent lanes (which compile to
/// vector minima), then its first position.
fn first_minimum(scores: &[f32]) -> usize {
    let mut lanes = [f32::INFINITY; 16];
    let mut chunks = scores.chunks_exact(16);
    for chunk in chunks.by_ref() {
        for (m, &s) in lanes.iter_mut().zip(chunk) {
            *m = if s < *m { s } else { *m };
        }
    }
    let mut min = lanes
        .iter()
        .copied()
        .fold(f32::INFINITY, |a, b| if b < a { b } else { a });
    for &s in chunks.remainder() {
        if s < min {
            min = s;
        }
    }
    scores.iter().position(|&s| s == min).unwrap_or(0)
}

/// The smallest f32 not below `x` (`+∞` past the f32 range, and for NaN,
/// so a comparison against it never rules out too much).
fn f32_at_least(x: f64) -> f32 {
    if x.is_nan() {
        return f32::INFINITY;
    }
    let r = x as f32;
    if f64::from(r) < x {
        r.next_up()
    } else {
        r
    }
}

/// A set of centroids in row-major f32 with what the fast path needs.
#[derive(Debug, Clone, PartialEq)]
pub struct CentroidSet {
    metric: Metric,
    dim: usize,
    data: Vec<f32>,
    /// Euclidean norms in f64, for the dot-product error bound.
    norms: Vec<f64>,
    /// The largest of `norms` (0 when empty).
    max_norm: f64,
}

impl CentroidSet {
    /// Wraps `data` (`len = count · dim`, validated by the caller).
    pub fn new(metric: Metric, dim: usize, data: Vec<f32>) -> CentroidSet {
        let norms = data
            .chunks_exact(dim.max(1))
            .map(|c| {
                c.iter()
                    .map(|&x| f64::from(x) * f64::from(x))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect::<Vec<f64>>();
        let max_norm = norms.iter().copied().fold(0.0, f64::max);
        CentroidSet {
            metric,
            dim,
            data,
            norms,
            max_norm,
        }
    }

    /// Number of centroids.
    pub fn len(&self) -> usize {
        self.norms.len()
    }

    /// Whether there are no centroids.
    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Centroid `i` (empty if out of range).
    pub fn row(&self, i: usize) -> &[f32] {
        self.data
            .get(i * self.dim..(i + 1) * self.dim)
            .unwrap_or(&[])
    }

    /// All centroids, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Reference score of prepared query `q` against centroid `i`.
    pub fn score_ref(&self, q: &[f32], i: usize) -> f32 {
        score_ref(self.metric, q, self.row(i))
    }

    fn score_fast(&self, q: &[f32], i: usize) -> f32 {
        match self.metric {
            Metric::L2 => l2sq_fast(q, self.row(i)),
            Metric::Cosine | Metric::InnerProduct => -dot_fast(q, self.row(i)),
        }
    }

    /// Reference argmin over centroids `start..end` (lowest id on ties).
    /// `None` if the range is empty.
    pub fn argmin_range_ref(&self, q: &[f32], start: usize, end: usize) -> Option<usize> {
        let mut best: Option<(usize, f32)> = None;
        for i in start..end.min(self.len()) {
            let s = key(self.score_ref(q, i));
            if best.is_none_or(|(_, b)| s < b) {
                best = Some((i, s));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Fast argmin over `start..end`, provably equal to
    /// [`CentroidSet::argmin_range_ref`]. `q_norm` is `‖q‖` in f64.
    pub fn argmin_range(&self, q: &[f32], q_norm: f64, start: usize, end: usize) -> Option<usize> {
        let end = end.min(self.len());
        if start >= end {
            return None;
        }
        if end - start == 1 {
            return Some(start);
        }
        // One scores buffer per thread, reused row after row: assignment
        // calls this once per row, and a fresh buffer per call was
        // allocator traffic (and, with freed pages purged, page faults).
        SCORES.with(|cell| {
            let mut scores = cell.take();
            let found = self.argmin_scored(q, q_norm, start, end, &mut scores);
            cell.set(scores);
            found
        })
    }

    fn argmin_scored(
        &self,
        q: &[f32],
        q_norm: f64,
        start: usize,
        end: usize,
        scores: &mut Vec<f32>,
    ) -> Option<usize> {
        let rows = self.rows_of(start, end);
        match self.metric {
            Metric::L2 => fast_sums_rows(q, rows, LaneOp::L2, scores),
            Metric::Cosine | Metric::InnerProduct => {
                fast_sums_rows(q, rows, LaneOp::Dot, scores);
                scores.iter_mut().for_each(|s| *s = -*s);
            }
        }
        self.argmin_of_scores(q, q_norm, start, end, scores)
    }

    /// Centroids `start..end`, row-major (empty when out of range).
    fn rows_of(&self, start: usize, end: usize) -> &[f32] {
        self.data
            .get(start * self.dim..end * self.dim)
            .unwrap_or(&[])
    }

    /// [`CentroidSet::argmin_range`] of [`QUERY_BLOCK`] queries at once:
    /// the same answers, with the fast scores of the whole block computed
    /// in one tiled pass over the centroids (see
    /// [`fast_sums_rows_block`]).
    pub fn argmin_range_block(
        &self,
        qs: [&[f32]; QUERY_BLOCK],
        q_norms: [f64; QUERY_BLOCK],
        start: usize,
        end: usize,
    ) -> [Option<usize>; QUERY_BLOCK] {
        let end = end.min(self.len());
        if start >= end {
            return [None; QUERY_BLOCK];
        }
        if end - start == 1 {
            return [Some(start); QUERY_BLOCK];
        }
        BLOCK_SCORES.with(|cell| {
            let mut scores = cell.take();
            let rows = self.rows_of(start, end);
            let op = match self.metric {
                Metric::L2 => LaneOp::L2,
                Metric::Cosine | Metric::InnerProduct => LaneOp::Dot,
            };
            fast_sums_rows_block(qs, rows, op, &mut scores);
            let found = std::array::from_fn(|i| {
                if op == LaneOp::Dot {
                    scores[i].iter_mut().for_each(|s| *s = -*s);
                }
                self.argmin_of_scores(qs[i], q_norms[i], start, end, &scores[i])
            });
            cell.set(scores);
            found
        })
    }

    /// The proved argmin of `start..end` from the fast scores of `q`
    /// against those centroids: every centroid whose error interval can
    /// reach the fast minimum is re-scored by the reference path.
    fn argmin_of_scores(
        &self,
        q: &[f32],
        q_norm: f64,
        start: usize,
        end: usize,
        scores: &[f32],
    ) -> Option<usize> {
        if scores.len() != end - start || !scores.iter().all(|s| s.is_finite()) {
            return self.argmin_range_ref(q, start, end);
        }
        let b = first_minimum(scores);
        let factors = self.error_factors();
        let err = |j: usize, s: f32| factors.of(self, start + j, s, q_norm);
        let limit = f64::from(scores[b]) + err(b, scores[b]);
        // A candidate is a centroid whose interval reaches `limit`:
        // `s ≤ limit + err(s)`. `reach` is above every such score with
        // room for the rounding of that test (L2: the bound is `l2 · s`,
        // so the test is `s (1 − l2) ≤ limit`; dot products: no bound
        // exceeds the one of the largest centroid norm), so one f32
        // comparison rules out almost every centroid, and the exact test
        // runs only on the rest.
        let reach = match self.metric {
            Metric::L2 => {
                let base = limit + 1e-38;
                base / (1.0 - factors.l2) + base.abs() * 1e-12
            }
            Metric::Cosine | Metric::InnerProduct => {
                let widest = factors.dot * q_norm * self.max_norm + 1e-38;
                limit + widest + (limit + widest).abs() * 1e-12
            }
        };
        let reach32 = f32_at_least(reach);
        let is_candidate =
            |j: usize, s: f32| j == b || (s <= reach32 && f64::from(s) <= limit + err(j, s));
        let rivals = scores.iter().filter(|&&s| s <= reach32).count();
        if rivals <= 1 {
            // Only `b` itself comes near its own bound.
            return Some(start + b);
        }
        let mut best: Option<(usize, f32)> = None;
        let mut count = 0usize;
        for (j, &s) in scores.iter().enumerate() {
            if !is_candidate(j, s) {
                continue;
            }
            count += 1;
            let r = key(self.score_ref(q, start + j));
            if best.is_none_or(|(_, bs)| r < bs) {
                best = Some((start + j, r));
            }
        }
        if count == 1 {
            return Some(start + b);
        }
        best.map(|(i, _)| i)
    }

    /// How far a fast score can be from its reference score, for this
    /// dimension (see [`ErrorFactors`]).
    fn error_factors(&self) -> ErrorFactors {
        let u = f64::powi(2.0, -24);
        let m = self.dim as f64;
        let gamma = m * u / (1.0 - m * u);
        // Each path is within gamma·Σ|terms| of the exact sum of the
        // (identically rounded) terms, so the two differ by at most twice
        // that; the 1.01 factor absorbs the rounding of the bound itself.
        ErrorFactors {
            l2: 2.02 * gamma / (1.0 - gamma),
            dot: 2.02 * gamma * (1.0 + 4.0 * u),
        }
    }

    /// The first `m` entries of [`CentroidSet::rank_ref`] over `ids`,
    /// equal to them: every centroid gets a fast score with its error
    /// bound, and only those whose lower bound is at most the `m`-th
    /// smallest upper bound are scored by the reference path (any other
    /// has a reference score above `m` of them). `q_norm` is `‖q‖` in f64.
    pub fn rank_ref_prefix(
        &self,
        q: &[f32],
        q_norm: f64,
        ids: &[usize],
        m: usize,
    ) -> Vec<(f32, usize)> {
        if m >= ids.len() {
            return self.rank_ref(q, ids.iter().copied());
        }
        let factors = self.error_factors();
        let mut bounds: Vec<(f64, f64)> = Vec::with_capacity(ids.len());
        for &i in ids {
            let s = self.score_fast(q, i);
            if !s.is_finite() {
                let mut all = self.rank_ref(q, ids.iter().copied());
                all.truncate(m);
                return all;
            }
            let e = factors.of(self, i, s, q_norm);
            bounds.push((f64::from(s) - e, f64::from(s) + e));
        }
        let mut uppers: Vec<f64> = bounds.iter().map(|b| b.1).collect();
        let (_, &mut cut, _) = uppers.select_nth_unstable_by(m.saturating_sub(1), f64::total_cmp);
        let near = ids
            .iter()
            .zip(&bounds)
            .filter(|(_, b)| b.0 <= cut)
            .map(|(&i, _)| i);
        let mut ranked = self.rank_ref(q, near);
        ranked.truncate(m);
        ranked
    }

    /// Every centroid in `ids` scored by the reference path and sorted by
    /// (score, id).
    pub fn rank_ref(&self, q: &[f32], ids: impl Iterator<Item = usize>) -> Vec<(f32, usize)> {
        let ids: Vec<usize> = ids.collect();
        let mut all: Vec<(f32, usize)> = Vec::with_capacity(ids.len());
        let mut chunks = ids.chunks_exact(REF_LANES);
        for chunk in &mut chunks {
            let rows = std::array::from_fn(|j| self.row(chunk[j]));
            let scores = score_ref_many(self.metric, q, rows);
            all.extend(scores.iter().zip(chunk).map(|(&s, &i)| (key(s), i)));
        }
        for &i in chunks.remainder() {
            all.push((key(self.score_ref(q, i)), i));
        }
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        all
    }
}

/// `‖v‖` in f64, for [`CentroidSet::argmin_range`].
pub fn norm_f64(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

/// Fast score of `q` against `c` with a bound on its distance to the
/// reference score: `|fast − score_ref| ≤ err` (norms in f64).
pub fn score_fast_bounded(
    metric: Metric,
    q: &[f32],
    q_norm: f64,
    c: &[f32],
    c_norm: f64,
) -> (f32, f64) {
    let u = f64::powi(2.0, -24);
    let m = q.len() as f64;
    let gamma = m * u / (1.0 - m * u);
    match metric {
        Metric::L2 => {
            let s = l2sq_fast(q, c);
            (s, 2.02 * gamma * f64::from(s) / (1.0 - gamma) + 1e-38)
        }
        Metric::Cosine | Metric::InnerProduct => {
            let s = -dot_fast(q, c);
            (s, 2.02 * gamma * q_norm * c_norm * (1.0 + 4.0 * u) + 1e-38)
        }
    }
}

/// [`score_fast_bounded`] of each `c.len()`-long row of `rows` (with
/// its norm in `row_norms`) against `c`, into `out` (cleared first): the
/// same scores and bounds, from one pass over the rows.
pub fn score_fast_bounded_rows(
    metric: Metric,
    c: &[f32],
    c_norm: f64,
    rows: &[f32],
    row_norms: &[f64],
    out: &mut Vec<(f32, f64)>,
) {
    let u = f64::powi(2.0, -24);
    let m = c.len() as f64;
    let gamma = m * u / (1.0 - m * u);
    let mut sums = Vec::with_capacity(row_norms.len());
    let op = match metric {
        Metric::L2 => LaneOp::L2,
        Metric::Cosine | Metric::InnerProduct => LaneOp::Dot,
    };
    fast_sums_rows(c, rows, op, &mut sums);
    out.clear();
    out.extend(sums.iter().zip(row_norms).map(|(&s, &norm)| match metric {
        Metric::L2 => (s, 2.02 * gamma * f64::from(s) / (1.0 - gamma) + 1e-38),
        Metric::Cosine | Metric::InnerProduct => {
            (-s, 2.02 * gamma * norm * c_norm * (1.0 + 4.0 * u) + 1e-38)
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The row-at-a-time bounded scores are the one-pair ones.
        #[test]
        fn bounded_rows_are_the_bounded_pairs(
            dim in 1usize..70,
            rows in 1usize..6,
            seed in proptest::collection::vec(-10f32..10.0, 1..50),
        ) {
            let v = |k: usize| seed[k % seed.len()] * (1.0 + (k % 5) as f32 * 0.3);
            let c: Vec<f32> = (0..dim).map(|k| v(k * 7 + 3)).collect();
            let data: Vec<f32> = (0..rows * dim).map(|k| v(k * 3 + 1)).collect();
            let norms: Vec<f64> = data.chunks_exact(dim).map(norm_f64).collect();
            for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
                let mut out = Vec::new();
                score_fast_bounded_rows(metric, &c, norm_f64(&c), &data, &norms, &mut out);
                for (i, row) in data.chunks_exact(dim).enumerate() {
                    let (s, e) = score_fast_bounded(metric, row, norms[i], &c, norm_f64(&c));
                    prop_assert_eq!(out[i].0.to_bits(), s.to_bits());
                    prop_assert_eq!(out[i].1.to_bits(), e.to_bits());
                }
            }
        }
    }

    proptest! {
        /// Interleaved folds are the reference folds, bit for bit.
        #[test]
        fn score_ref_many_is_the_reference(
            dim in 1usize..100,
            values in proptest::collection::vec(-1e3f32..1e3, 900),
            metric in 0u8..3,
        ) {
            let metric = [Metric::L2, Metric::Cosine, Metric::InnerProduct][metric as usize];
            let q = &values[..dim];
            let rows: [&[f32]; REF_LANES] =
                std::array::from_fn(|j| &values[(j + 1) * dim..(j + 2) * dim]);
            let many = score_ref_many(metric, q, rows);
            let dist = prepared_distance_many(metric, q, rows);
            for (j, row) in rows.iter().enumerate() {
                prop_assert_eq!(many[j].to_bits(), score_ref(metric, q, row).to_bits());
                prop_assert_eq!(dist[j].to_bits(), metric.prepared_distance(q, row).to_bits());
            }
        }

        /// The bounded prefix is the reference ranking's prefix, entry for
        /// entry, also with duplicated centroids (exact ties) and
        /// centroids a rounding error apart.
        #[test]
        fn rank_ref_prefix_is_the_reference_prefix(
            dim in 1usize..64,
            rows in 1usize..60,
            values in proptest::collection::vec(-10f32..10.0, 64 * 61),
            metric in 0u8..3,
            m in 1usize..70,
            dup in 0usize..60,
        ) {
            let metric = [Metric::L2, Metric::Cosine, Metric::InnerProduct][metric as usize];
            let mut data = values[dim..dim * (rows + 1)].to_vec();
            // Row `dup` repeats row 0; the next is row 0 nudged by 1 ulp.
            if dup + 1 < rows {
                let first = data[..dim].to_vec();
                data[dup * dim..(dup + 1) * dim].copy_from_slice(&first);
                let nudged: Vec<f32> = first.iter().map(|x| f32::from_bits(x.to_bits() + 1)).collect();
                data[(dup + 1) * dim..(dup + 2) * dim].copy_from_slice(&nudged);
            }
            let set = CentroidSet::new(metric, dim, data);
            let q = &values[..dim];
            let ids: Vec<usize> = (0..rows).collect();
            let full = set.rank_ref(q, ids.iter().copied());
            let prefix = set.rank_ref_prefix(q, norm_f64(q), &ids, m);
            prop_assert_eq!(prefix.len(), m.min(rows));
            for (a, b) in prefix.iter().zip(&full) {
                prop_assert_eq!((a.0.to_bits(), a.1), (b.0.to_bits(), b.1));
            }
        }
    }
}
