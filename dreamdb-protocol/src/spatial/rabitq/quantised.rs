//! The fast RaBitQ estimator: a 4-bit quantised query and popcounts.
//!
//! The float-table estimator ([`super::estimate`]) spends one table lookup
//! and one f32 add per 4 coordinates and code plane. Here the rotated query
//! `q'` (padded length `n`) is quantised once per probed cell to
//! [`QUERY_BITS`] bits, as in the RaBitQ paper and Faiss:
//!
//! ```text
//! lo = min q'_i,  δ = (max q'_i − lo) / 15   (δ = 0 when all are equal)
//! q̄_i = min(15, ⌊(q'_i − lo) · (1/δ) + ½⌋)  (0 when δ = 0)
//! q̃_i = lo + δ q̄_i                           (so |q'_i − q̃_i| ≤ δ/2)
//! ```
//!
//! and stored as 4 bit planes of `n/64` u64 words. For a `B`-bit code with
//! planes `P_p` (MSB first) the integer `⟨u, q̄⟩ = Σ_p 2^(B−1−p) Σ_j 2^j
//! popcount(P_p ∧ Q_j)` and `Σ u = Σ_p 2^(B−1−p) popcount(P_p)` are exact,
//! and with `A = 2⟨u, q̄⟩ − (2^B − 1) Σ q̄` and `C = 2 Σ u − (2^B − 1) n`
//!
//! ```text
//! ⟨y, q̃⟩ = (δ·A + lo·C) / 2
//! ```
//!
//! replaces `⟨y, q'⟩` in the distance formulas of spec 0010 §5. The
//! replacement error is `⟨y, q' − q̃⟩`: a sum of `n` rounding errors, each
//! within `±δ/2` and spread like a uniform variable (the query is rotated
//! randomly), weighted by `y`. Its standard deviation is `‖y‖ δ / √12`, and
//! since `s ‖y‖ = r / ρ` the distance error has standard deviation
//! `(r/ρ) δ/√12` times the metric's scale (2 for L2, 1 otherwise). The
//! bound adds `ε₀` of those standard deviations to the RaBitQ bound, so the
//! rerank stop keeps the confidence it had with the float estimator. The
//! worst case `Σ_i |y_i| |q'_i − q̃_i|` is also available per query for
//! 1-bit codes ([`QuantisedQuery::worst_case_error`]); tests check both.
//!
//! Everything after the quantisation is integer arithmetic plus three f32
//! operations, so the estimate is bit-identical on every machine, with or
//! without the CPU's popcount instruction.

use super::super::metric::{dot_lanes, Metric};
use super::estimate::Estimate;
use super::RaBitQ;

/// Bits of the quantised query.
pub const QUERY_BITS: usize = 4;
/// Largest quantised query value, `2^QUERY_BITS − 1`.
const LEVELS: f32 = 15.0;
/// `1 / √12`: the standard deviation of a uniform variable on `[−½, ½]`.
const UNIFORM_SD: f32 = 0.288_675_13;

/// A query residual quantised for one probed cell; reused across cells
/// (no allocation after the first).
#[derive(Debug, Clone, Default)]
pub struct QuantisedQuery {
    /// Words per code plane, `n / 64`.
    words: usize,
    /// `words` groups of [`QUERY_BITS`] words: plane `j` of word `w` at
    /// `w · QUERY_BITS + j` (bit `j` of `q̄`).
    planes: Vec<u64>,
    lo: f32,
    delta: f32,
    /// `Σ q̄_i`.
    sum_levels: u64,
    /// `‖q − c‖` (L2, cosine) or `‖q‖` (inner product).
    q_norm: f32,
    /// `⟨q, c⟩` (inner product only; 0 otherwise).
    q_dot_c: f32,
    /// The planes again, plane-major in chunks of 8 words (zero-padded):
    /// chunk `k`, plane `j`, lane `l` at `32k + 8j + l` holds word
    /// `8k + l` of plane `j` (the AVX-512 loop's layout).
    chunked: Vec<u64>,
}

impl QuantisedQuery {
    /// An empty query; [`QuantisedQuery::set`] fills it.
    pub fn new() -> QuantisedQuery {
        QuantisedQuery::default()
    }

    /// Quantises `rotated` (`q'`, a multiple of 64 long) with the norms the
    /// metric needs: `q_norm = ‖q − c‖` (L2, cosine) or `‖q‖` (inner
    /// product), `q_dot_c = ⟨q, c⟩` (inner product; else 0).
    pub fn set(&mut self, rotated: &[f32], q_norm: f32, q_dot_c: f32) {
        let n = rotated.len();
        self.words = n / 64;
        self.q_norm = q_norm;
        self.q_dot_c = q_dot_c;
        #[cfg(target_arch = "x86_64")]
        let fast = super::simd::min_max(rotated);
        #[cfg(not(target_arch = "x86_64"))]
        let fast: Option<(f32, f32)> = None;
        let (mut lo, mut hi) = fast.unwrap_or_else(|| {
            rotated
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                })
        });
        if n == 0 {
            lo = 0.0;
            hi = 0.0;
        }
        let delta = (hi - lo) / LEVELS;
        self.lo = lo;
        self.delta = if delta.is_finite() && delta > 0.0 {
            delta
        } else {
            0.0
        };
        let inv = if self.delta > 0.0 {
            1.0 / self.delta
        } else {
            0.0
        };
        self.planes.clear();
        #[cfg(target_arch = "x86_64")]
        let fast = super::simd::quantise(rotated, lo, inv, &mut self.planes);
        #[cfg(not(target_arch = "x86_64"))]
        let fast: Option<u64> = None;
        self.sum_levels = match fast {
            Some(sum) => sum,
            None => portable_planes(rotated, lo, inv, &mut self.planes),
        };
        self.chunk_planes();
    }

    /// Rebuilds [`QuantisedQuery::chunked`] from the planes.
    fn chunk_planes(&mut self) {
        self.chunked.clear();
        let chunks = self.words.div_ceil(8);
        self.chunked.resize(chunks * QUERY_BITS * 8, 0);
        for (w, planes) in self.planes.chunks_exact(QUERY_BITS).enumerate() {
            let (k, lane) = (w / 8, w % 8);
            for (j, &plane) in planes.iter().enumerate() {
                if let Some(slot) = self.chunked.get_mut(k * QUERY_BITS * 8 + j * 8 + lane) {
                    *slot = plane;
                }
            }
        }
    }

    /// Words per code plane, `n / 64`.
    pub(super) fn words(&self) -> usize {
        self.words
    }

    /// The planes in the AVX-512 loop's layout (see the field).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(super) fn chunked(&self) -> &[u64] {
        &self.chunked
    }

    /// The quantised values `q̄_i`, read back from the bit planes.
    pub fn levels(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.words * 64);
        for group in self.planes.chunks_exact(QUERY_BITS) {
            for j in 0..64 {
                let mut level = 0u8;
                for (b, plane) in group.iter().enumerate() {
                    level |= (((plane >> j) & 1) as u8) << b;
                }
                out.push(level);
            }
        }
        out
    }

    /// `lo` and `δ`: `q̃_i = lo + δ q̄_i`.
    pub fn scale(&self) -> (f32, f32) {
        (self.lo, self.delta)
    }

    /// The largest possible `|⟨y, q' − q̃⟩|` of a 1-bit code (`|y_i| = ½`)
    /// when this query was set from `rotated`: `½ Σ |q'_i − q̃_i|`.
    pub fn worst_case_error(&self, rotated: &[f32]) -> f32 {
        let mut sum = 0.0f32;
        for (&x, l) in rotated.iter().zip(self.levels()) {
            sum += (x - (self.lo + self.delta * f32::from(l))).abs();
        }
        0.5 * sum
    }
}

/// The portable quantisation loop of [`QuantisedQuery::set`]: appends
/// each 64 coordinates' planes and returns `Σ levels`.
pub(super) fn portable_planes(rotated: &[f32], lo: f32, inv: f32, out: &mut Vec<u64>) -> u64 {
    let mut sum = 0u64;
    for chunk in rotated.chunks_exact(64) {
        // Levels as bytes, 8 to a word; then each plane gathers bit
        // `b` of 8 bytes at once (multiply-and-shift byte gather).
        let mut packed = [0u64; 8];
        for (word, xs) in packed.iter_mut().zip(chunk.chunks_exact(8)) {
            for (t, &x) in xs.iter().enumerate() {
                // `x ≥ lo`, so the saturating cast is the floor of a
                // non-negative value.
                let level = (((x - lo) * inv + 0.5) as u32).min(LEVELS as u32);
                sum += u64::from(level);
                *word |= u64::from(level) << (8 * t);
            }
        }
        let mut planes = [0u64; QUERY_BITS];
        for (b, plane) in planes.iter_mut().enumerate() {
            for (g, &word) in packed.iter().enumerate() {
                let bits = (word >> b) & 0x0101_0101_0101_0101;
                let gathered = bits.wrapping_mul(0x0102_0408_1020_4080) >> 56;
                *plane |= gathered << (8 * g);
            }
        }
        out.extend_from_slice(&planes);
    }
    sum
}

/// `(⟨u, q̄⟩, Σ u)` of one code by popcounts (lengths checked by callers:
/// `code.len() = bits · words`).
#[inline(always)]
fn code_dot(q: &QuantisedQuery, code: &[u64], bits: usize) -> (u64, u64) {
    let words = q.words;
    let mut dot = 0u64;
    let mut ones = 0u64;
    for p in 0..bits {
        let plane = &code[p * words..(p + 1) * words];
        let (mut a0, mut a1, mut a2, mut a3, mut pc) = (0u32, 0u32, 0u32, 0u32, 0u32);
        for (&c, qw) in plane.iter().zip(q.planes.chunks_exact(QUERY_BITS)) {
            a0 += (c & qw[0]).count_ones();
            a1 += (c & qw[1]).count_ones();
            a2 += (c & qw[2]).count_ones();
            a3 += (c & qw[3]).count_ones();
            pc += c.count_ones();
        }
        let plane_dot = u64::from(a0) + 2 * u64::from(a1) + 4 * u64::from(a2) + 8 * u64::from(a3);
        let shift = bits - 1 - p;
        dot += plane_dot << shift;
        ones += u64::from(pc) << shift;
    }
    (dot, ones)
}

/// `⟨y, q̃⟩` of one code.
#[inline(always)]
fn y_dot(q: &QuantisedQuery, code: &[u64], bits: usize) -> f32 {
    y_dot_of(q, code_dot(q, code, bits), bits)
}

/// `⟨y, q̃⟩` from the popcount sums `(⟨u, q̄⟩, Σ u)`.
#[inline(always)]
fn y_dot_of(q: &QuantisedQuery, (dot, ones): (u64, u64), bits: usize) -> f32 {
    let top = (1i64 << bits) - 1;
    let n = (q.words * 64) as i64;
    let a = 2 * dot as i64 - top * q.sum_levels as i64;
    let c = 2 * ones as i64 - top * n;
    0.5 * (q.delta * a as f32 + q.lo * c as f32)
}

/// The estimated distance of one code from its popcount sums
/// `(⟨u, q̄⟩, Σ u)` and factors.
#[inline(always)]
pub(super) fn distance_of(
    metric: Metric,
    q: &QuantisedQuery,
    sums: (u64, u64),
    bits: usize,
    factors: &[f32],
) -> f32 {
    distance(metric, q, y_dot_of(q, sums, bits), factors)
}

/// The estimated distance of one code from `⟨y, q̃⟩` and factors `[r, ρ, s]`.
#[inline(always)]
fn distance(metric: Metric, q: &QuantisedQuery, y_dot: f32, factors: &[f32]) -> f32 {
    let (r, s) = (factors[0], factors[2]);
    match metric {
        Metric::L2 => r * r + q.q_norm * q.q_norm - 2.0 * s * y_dot,
        Metric::Cosine => 0.5 * (r * r + q.q_norm * q.q_norm - 2.0 * s * y_dot),
        Metric::InnerProduct => -(q.q_dot_c + s * y_dot),
    }
}

impl RaBitQ {
    /// Quantises the query for a probed cell from the already rotated
    /// prepared query `R(q)` and rotated centroid `R(c)` (`None` for the
    /// origin): `q' = R(q) − R(c)` for L2 and cosine, `R(q)` for inner
    /// product. `query` and `centroid` are the prepared (unrotated) query
    /// and the centroid, for the norms. `buf` is scratch.
    pub fn quantise_query(
        &self,
        query: &[f32],
        rotated_query: &[f32],
        centroid: Option<(&[f32], &[f32])>,
        buf: &mut Vec<f32>,
        out: &mut QuantisedQuery,
    ) {
        match self.metric() {
            Metric::InnerProduct => {
                let q_norm = dot_lanes(query, query).sqrt();
                let q_dot_c = centroid.map_or(0.0, |(c, _)| dot_lanes(query, c));
                out.set(rotated_query, q_norm, q_dot_c);
            }
            Metric::L2 | Metric::Cosine => {
                buf.clear();
                match centroid {
                    Some((_, rc)) => buf.extend(rotated_query.iter().zip(rc).map(|(a, b)| a - b)),
                    None => buf.extend_from_slice(rotated_query),
                }
                let q_norm = dot_lanes(buf, buf).sqrt();
                out.set(buf, q_norm, 0.0);
            }
        }
    }

    /// `R(v)` zero-padded, into `out` (scratch reused).
    pub fn rotate_into(&self, v: &[f32], out: &mut Vec<f32>) {
        self.rotation().apply_into(v, out);
    }

    /// The estimated distance of one code under a quantised query
    /// (`code.len() = words_per_vector`, `factors.len() = 3`; shorter
    /// inputs give NaN).
    #[inline]
    pub fn fast_distance(&self, q: &QuantisedQuery, code: &[u64], factors: &[f32]) -> f32 {
        let bits = self.bits() as usize;
        if code.len() < bits * q.words || factors.len() < super::FACTORS {
            return f32::NAN;
        }
        distance(self.metric(), q, y_dot(q, code, bits), factors)
    }

    /// The error bound of a fast estimate: the RaBitQ bound of spec 0010
    /// §5 plus `ε₀` standard deviations of the query-quantisation error.
    #[inline]
    pub fn fast_bound(&self, q: &QuantisedQuery, factors: &[f32], epsilon0: f32) -> f32 {
        if factors.len() < super::FACTORS {
            return f32::INFINITY;
        }
        let (r, rho) = (factors[0], factors[1]);
        let n = self.padded() as f32;
        let per_unit = if rho > 0.0 {
            let spread = ((1.0 - rho * rho).max(0.0)).sqrt() / rho * epsilon0 / (n - 1.0).sqrt();
            r * (q.q_norm * spread + epsilon0 * q.delta * UNIFORM_SD / rho)
        } else {
            f32::INFINITY
        };
        match self.metric() {
            Metric::L2 => 2.0 * per_unit,
            Metric::Cosine | Metric::InnerProduct => per_unit,
        }
    }

    /// [`RaBitQ::fast_distance`] and [`RaBitQ::fast_bound`] together.
    pub fn fast_estimate(
        &self,
        q: &QuantisedQuery,
        code: &[u64],
        factors: &[f32],
        epsilon0: f32,
    ) -> Estimate {
        Estimate {
            distance: self.fast_distance(q, code, factors),
            bound: self.fast_bound(q, factors, epsilon0),
        }
    }

    /// Calls `sink(row, distance)` for every code of a cell (`codes` and
    /// `factors` concatenated; a cell whose lengths do not fit gives NaN
    /// distances). Uses the CPU's popcount instruction when it has one;
    /// the result is the same integer either way.
    #[inline]
    pub fn fast_distances_cell(
        &self,
        q: &QuantisedQuery,
        codes: &[u64],
        factors: &[f32],
        mut sink: impl FnMut(usize, f32),
    ) {
        let bits = self.bits() as usize;
        let wpv = self.words_per_vector().max(1);
        if q.words * bits != wpv {
            for i in 0..codes.len() / wpv {
                sink(i, f32::NAN);
            }
            return;
        }
        let cell = Cell {
            metric: self.metric(),
            q,
            codes,
            factors,
            bits,
            wpv,
        };
        #[cfg(target_arch = "x86_64")]
        if super::simd::cell_distances(&cell, &mut sink) {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if x86::cell_popcnt(&cell, &mut sink) {
            return;
        }
        cell_distances(&cell, &mut sink);
    }
}

/// Fixed-size records that each hold a code and its factors, as a
/// spatial bucket's cell run stores them (spec 0010 §3): record `i` is
/// `bytes[i · record_size ..]`, its [`FACTORS`](super::FACTORS) factors
/// little-endian f32 at `factors_at`, its code little-endian u64 words
/// at `code_at`. The estimator reads them in place: no copy of the run.
#[derive(Debug, Clone, Copy)]
pub struct RecordCodes<'a> {
    /// The records, back to back.
    pub bytes: &'a [u8],
    /// Bytes per record.
    pub record_size: usize,
    /// Offset of the factors in a record.
    pub factors_at: usize,
    /// Offset of the code in a record.
    pub code_at: usize,
}

impl RecordCodes<'_> {
    /// Number of whole records.
    pub fn len(&self) -> usize {
        self.bytes.len().checked_div(self.record_size).unwrap_or(0)
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The factors of record `i` (NaN when out of range).
    #[inline]
    pub fn factors(&self, i: usize) -> [f32; super::FACTORS] {
        let at = i * self.record_size + self.factors_at;
        std::array::from_fn(|f| {
            self.bytes
                .get(at + 4 * f..at + 4 * f + 4)
                .and_then(|b| b.try_into().ok())
                .map_or(f32::NAN, f32::from_le_bytes)
        })
    }

    /// Whether every record holds `wpv` code words and the factors.
    fn fits(&self, wpv: usize) -> bool {
        self.record_size > 0
            && self.factors_at + 4 * super::FACTORS <= self.record_size
            && self.code_at + 8 * wpv <= self.record_size
    }
}

impl RaBitQ {
    /// [`RaBitQ::fast_distances_cell`] over records read in place: puts
    /// every record's estimated distance in `out` (cleared first; read
    /// the factors of the ones kept with [`RecordCodes::factors`]).
    /// Records whose layout does not fit the compressor give NaN
    /// distances. Same integers, same distances as the contiguous loop.
    pub fn fast_distances_records(
        &self,
        q: &QuantisedQuery,
        records: RecordCodes<'_>,
        scratch: &mut Vec<u64>,
        out: &mut Vec<f32>,
    ) {
        out.clear();
        let bits = self.bits() as usize;
        let wpv = self.words_per_vector().max(1);
        let n = records.len();
        if q.words * bits != wpv || !records.fits(wpv) {
            out.resize(n, f32::NAN);
            return;
        }
        let set = Records {
            metric: self.metric(),
            q,
            records,
            bits,
            wpv,
        };
        #[cfg(target_arch = "x86_64")]
        if super::simd::record_distances(&set, out) {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if x86::records_popcnt(&set, scratch, out) {
            return;
        }
        record_distances(&set, scratch, out);
    }
}

/// One run's inputs to the in-place estimation loop.
pub(super) struct Records<'a> {
    pub(super) metric: Metric,
    pub(super) q: &'a QuantisedQuery,
    pub(super) records: RecordCodes<'a>,
    pub(super) bits: usize,
    pub(super) wpv: usize,
}

/// The in-place estimation loop, inlined into each instruction-set
/// variant (layout checked by the caller).
#[inline(always)]
fn record_distances(set: &Records<'_>, scratch: &mut Vec<u64>, out: &mut Vec<f32>) {
    let r = &set.records;
    for (i, record) in r.bytes.chunks_exact(r.record_size).enumerate() {
        let code = record
            .get(r.code_at..r.code_at + 8 * set.wpv)
            .unwrap_or(&[]);
        scratch.clear();
        scratch.extend(code.chunks_exact(8).map(|w| {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            u64::from_le_bytes(b)
        }));
        scratch.resize(set.wpv, 0);
        out.push(distance(
            set.metric,
            set.q,
            y_dot(set.q, scratch, set.bits),
            &r.factors(i),
        ));
    }
}

/// One cell's inputs to the estimation loop.
pub(super) struct Cell<'a> {
    pub(super) metric: Metric,
    pub(super) q: &'a QuantisedQuery,
    pub(super) codes: &'a [u64],
    pub(super) factors: &'a [f32],
    pub(super) bits: usize,
    pub(super) wpv: usize,
}

/// The estimation loop, inlined into each instruction-set variant.
#[inline(always)]
fn cell_distances<F: FnMut(usize, f32)>(cell: &Cell<'_>, sink: &mut F) {
    for (i, (code, f)) in cell
        .codes
        .chunks_exact(cell.wpv)
        .zip(cell.factors.chunks_exact(super::FACTORS))
        .enumerate()
    {
        sink(
            i,
            distance(cell.metric, cell.q, y_dot(cell.q, code, cell.bits), f),
        );
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The estimation loop compiled with the `popcnt` instruction.
    #![allow(
        unsafe_code,
        reason = "calling a #[target_feature] function after runtime detection"
    )]

    use super::{cell_distances, record_distances, Cell, Records};

    #[target_feature(enable = "popcnt")]
    fn cell_popcnt_inner<F: FnMut(usize, f32)>(cell: &Cell<'_>, sink: &mut F) {
        cell_distances(cell, sink);
    }

    #[target_feature(enable = "popcnt")]
    fn records_popcnt_inner(set: &Records<'_>, scratch: &mut Vec<u64>, out: &mut Vec<f32>) {
        record_distances(set, scratch, out);
    }

    /// [`record_distances`] with `popcnt` if the CPU has it; `false` (and
    /// nothing done) otherwise.
    #[inline]
    pub(super) fn records_popcnt(
        set: &Records<'_>,
        scratch: &mut Vec<u64>,
        out: &mut Vec<f32>,
    ) -> bool {
        if !std::arch::is_x86_feature_detected!("popcnt") {
            return false;
        }
        // SAFETY: the CPU has popcnt (checked just above).
        unsafe { records_popcnt_inner(set, scratch, out) };
        true
    }

    /// Runs the loop with `popcnt` if the CPU has it; `false` (and
    /// nothing done) otherwise.
    #[inline]
    pub(super) fn cell_popcnt<F: FnMut(usize, f32)>(cell: &Cell<'_>, sink: &mut F) -> bool {
        if !std::arch::is_x86_feature_detected!("popcnt") {
            return false;
        }
        // SAFETY: the CPU has popcnt (checked just above).
        unsafe { cell_popcnt_inner(cell, sink) };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::estimate::lut_u_dot;
    use super::super::{RaBitQ, VectorCompressor, DEFAULT_EPSILON0};
    use super::*;
    use proptest::prelude::*;

    fn vector(seed: u64, dim: usize, scale: f32) -> Vec<f32> {
        let mut s = dreamdb_core::random::DeterministicStream::from_seed(seed, "test.quantised");
        (0..dim).map(|_| scale * s.next_f32_normal()).collect()
    }

    fn metric_of(i: u8) -> Metric {
        match i % 3 {
            0 => Metric::L2,
            1 => Metric::Cosine,
            _ => Metric::InnerProduct,
        }
    }

    /// The quantised query of `q` for `centroid`, and `q'` itself.
    fn quantised(rq: &RaBitQ, q: &[f32], c: &[f32]) -> (QuantisedQuery, Vec<f32>) {
        let mut rotated = Vec::new();
        rq.rotate_into(q, &mut rotated);
        let rc = rq.rotation().apply(c);
        let mut buf = Vec::new();
        let mut out = QuantisedQuery::new();
        rq.quantise_query(q, &rotated, Some((c, &rc)), &mut buf, &mut out);
        let target = match rq.metric() {
            Metric::InnerProduct => rotated,
            Metric::L2 | Metric::Cosine => buf,
        };
        (out, target)
    }

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The popcount sums are exactly the float-table sums of the
        /// quantised query (small integers are exact in f32), so the fast
        /// estimate is the float-table estimate of `q̃`.
        #[test]
        fn popcount_equals_the_float_table_of_the_quantised_query(
            seed in any::<u64>(),
            dim in 1usize..200,
            bits in 1u8..=8,
            metric in 0u8..3,
            scale in 0.01f32..100.0,
        ) {
            let metric = metric_of(metric);
            let rq = RaBitQ::new(VectorCompressor::rabitq(bits, dim as u32, seed, metric)).unwrap();
            let (mut q, mut c, mut o) =
                (vector(seed, dim, scale), vector(seed ^ 1, dim, scale), vector(seed ^ 2, dim, scale));
            if metric == Metric::Cosine {
                q = unit(q);
                c = unit(c);
                o = unit(o);
            }
            let (qq, target) = quantised(&rq, &q, &c);
            let levels = qq.levels();
            let (lo, delta) = qq.scale();
            prop_assert_eq!(levels.len(), rq.padded());
            for (&x, &l) in target.iter().zip(&levels) {
                prop_assert!(l <= 15);
                let err = (x - (lo + delta * f32::from(l))).abs();
                prop_assert!(err <= 0.5 * delta * 1.0001 + 1e-6 * x.abs(), "{err} > δ/2 = {}", delta / 2.0);
            }
            let e = rq.encode(&o, Some(&c)).unwrap();
            let (dot, ones) = code_dot(&qq, &e.code, bits as usize);
            let as_f32: Vec<f32> = levels.iter().map(|&l| f32::from(l)).collect();
            prop_assert_eq!(dot as f32, lut_u_dot(&rq, &as_f32, &e.code));
            prop_assert_eq!(ones as f32, lut_u_dot(&rq, &vec![1.0; rq.padded()], &e.code));
            prop_assert_eq!(qq.sum_levels, levels.iter().map(|&l| u64::from(l)).sum::<u64>());
            // The cell loop gives the single-code answer, with or without popcnt.
            let mut from_cell = Vec::new();
            rq.fast_distances_cell(&qq, &e.code, &e.factors, |_, d| from_cell.push(d));
            let mut portable = Vec::new();
            let cell = Cell { metric, q: &qq, codes: &e.code, factors: &e.factors, bits: bits as usize, wpv: rq.words_per_vector() };
            cell_distances(&cell, &mut |_, d| portable.push(d));
            let single = rq.fast_distance(&qq, &e.code, &e.factors);
            prop_assert_eq!(from_cell[0].to_bits(), single.to_bits());
            prop_assert_eq!(portable[0].to_bits(), single.to_bits());
            // In place, as a bucket stores it (anchor, factors, code; two
            // records so the stride matters), on this CPU's loop and on
            // the portable one.
            let mut record = 7u64.to_le_bytes().to_vec();
            record.extend(e.factors.iter().flat_map(|f| f.to_le_bytes()));
            record.extend(e.code.iter().flat_map(|w| w.to_le_bytes()));
            let bytes = [record.clone(), record].concat();
            let records = RecordCodes { bytes: &bytes, record_size: bytes.len() / 2, factors_at: 8, code_at: 20 };
            let (mut scratch, mut in_place) = (Vec::new(), Vec::new());
            rq.fast_distances_records(&qq, records, &mut scratch, &mut in_place);
            let set = Records { metric, q: &qq, records, bits: bits as usize, wpv: rq.words_per_vector() };
            let mut portable_in_place = Vec::new();
            record_distances(&set, &mut scratch, &mut portable_in_place);
            prop_assert_eq!(in_place.len(), 2);
            for d in in_place.iter().chain(&portable_in_place) {
                prop_assert_eq!(d.to_bits(), single.to_bits());
            }
            prop_assert_eq!(records.factors(1), [e.factors[0], e.factors[1], e.factors[2]]);
        }

        /// For 1-bit codes the quantisation moves `⟨y, q'⟩` by at most
        /// `½ Σ |q'_i − q̃_i|`: compare with the float-table estimate.
        #[test]
        fn quantisation_error_within_the_worst_case(
            seed in any::<u64>(),
            dim in 1usize..300,
            scale in 0.01f32..100.0,
        ) {
            let rq = RaBitQ::new(VectorCompressor::rabitq(1, dim as u32, seed, Metric::L2)).unwrap();
            let (q, c, o) = (vector(seed, dim, scale), vector(seed ^ 1, dim, scale), vector(seed ^ 2, dim, scale));
            let (qq, target) = quantised(&rq, &q, &c);
            let e = rq.encode(&o, Some(&c)).unwrap();
            let float = rq
                .estimate(&rq.prepare_query(&q, Some(&c)).unwrap(), &e.code, &e.factors, 1.9)
                .unwrap();
            let fast = rq.fast_distance(&qq, &e.code, &e.factors);
            let worst = 2.0 * e.factors[2] * qq.worst_case_error(&target);
            // f32 slack: the two paths round differently (rotation of the
            // difference vs difference of rotations, sums).
            let slack = 1e-4 * (float.distance.abs() + e.factors[0] * e.factors[0] + scale * scale);
            prop_assert!((fast - float.distance).abs() <= worst + slack,
                "|{fast} − {}| > {worst}", float.distance);
        }
    }

    /// On random data, the exact distance lies within the fast bound about
    /// as often as ε₀ = 1.9 promises (≈ 94 %), for every metric and width.
    #[test]
    fn fast_bound_holds_on_random_data() {
        for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
            for bits in [1u8, 2, 4] {
                let dim = 96;
                let rq =
                    RaBitQ::new(VectorCompressor::rabitq(bits, dim as u32, 5, metric)).unwrap();
                let prep = |v: Vec<f32>| if metric == Metric::Cosine { unit(v) } else { v };
                let c = prep(vector(1, dim, 1.0));
                let mut outside = 0;
                let total = 2000;
                for i in 0..total {
                    let q = prep(vector(100 + i, dim, 1.0));
                    let o = prep(vector(10_000 + i, dim, 1.0));
                    let (qq, _) = quantised(&rq, &q, &c);
                    let e = rq.encode(&o, Some(&c)).unwrap();
                    let est = rq.fast_estimate(&qq, &e.code, &e.factors, DEFAULT_EPSILON0);
                    let exact = metric.prepared_distance(&q, &o);
                    if (est.distance - exact).abs() > est.bound {
                        outside += 1;
                    }
                }
                assert!(
                    outside * 100 <= total * 9,
                    "{metric:?} {bits}-bit: {outside} of {total} outside the bound"
                );
            }
        }
    }
}
