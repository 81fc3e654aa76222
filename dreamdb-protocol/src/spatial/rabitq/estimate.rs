//! Query-side RaBitQ: per-cell lookup tables and the distance estimator.
//!
//! For a probed cell the query residual is rotated once (`q'`), and a
//! table of nibble sums is built: for every group of 4 coordinates and
//! every 4-bit mask `m`, `Σ_{t ∈ m} q'_{4g+t}`. A code plane then costs
//! `padded / 4` table lookups, and a B-bit code `Σ_p 2^(B−1−p)·plane_p`.
//! With `⟨y, q'⟩ = ⟨u, q'⟩ − (2^B − 1)/2 · Σ q'` and the factors
//! `[r, ρ, s]`:
//!
//! - L2: `d̂ = r² + ‖q−c‖² − 2 s ⟨y, q'⟩`;
//! - cosine (unit vectors): half of that, `1 − cos`;
//! - inner product (`q'` = rotated query, not residual):
//!   `d̂ = −(⟨q, c⟩ + s ⟨y, q'⟩)`.
//!
//! The error bound (RaBitQ Theorem 3.2): `|⟨ō,q⟩/ρ − ⟨o,q⟩| ≤
//! √((1 − ρ²)/ρ²) · ε₀ / √(n − 1)` for unit `o`, `q`, scaled by `2 r ‖q−c‖`
//! (L2), `r ‖q−c‖` (cosine) or `r ‖q‖` (inner product).

use super::super::metric::{dot_ref, norm_ref, Metric};
use super::encode::residual;
use super::RaBitQ;

/// A query prepared for one cell.
#[derive(Debug, Clone)]
pub struct QueryLut {
    /// `padded / 4` groups × 16 nibble sums.
    lut: Vec<f32>,
    /// `Σ q'_i`.
    sum: f32,
    /// `‖q − c‖` (L2, cosine) or `‖q‖` (inner product).
    q_norm: f32,
    /// `⟨q, c⟩` (inner product only; 0 otherwise).
    q_dot_c: f32,
}

/// An estimated distance with its error bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Estimated distance (the metric's "smaller is closer" value).
    pub distance: f32,
    /// Half-width of the confidence interval around it.
    pub bound: f32,
}

impl Estimate {
    /// `distance − bound`.
    pub fn lower(&self) -> f32 {
        self.distance - self.bound
    }
}

/// Builds the table for a prepared query.
pub(crate) fn prepare_prepared(rq: &RaBitQ, q: &[f32], centroid: Option<&[f32]>) -> QueryLut {
    let (target, q_dot_c) = match rq.metric() {
        Metric::InnerProduct => (q.to_vec(), centroid.map_or(0.0, |c| dot_ref(q, c))),
        Metric::L2 | Metric::Cosine => (residual(q, centroid), 0.0),
    };
    let q_norm = norm_ref(&target);
    let rotated = rq.rotation().apply(&target);
    let (lut, sum) = nibble_lut(&rotated);
    QueryLut {
        lut,
        sum,
        q_norm,
        q_dot_c,
    }
}

/// The nibble table of a rotated vector and its sum.
fn nibble_lut(rotated: &[f32]) -> (Vec<f32>, f32) {
    let groups = rotated.len() / 4;
    let mut lut = vec![0.0f32; groups * 16];
    for g in 0..groups {
        let t = &mut lut[g * 16..(g + 1) * 16];
        for m in 1..16usize {
            let low = m.trailing_zeros() as usize;
            t[m] = t[m & (m - 1)] + rotated[4 * g + low];
        }
    }
    let mut sum = 0.0f32;
    for x in rotated {
        sum += x;
    }
    (lut, sum)
}

/// `Σ u_i x_i` of a code by the float nibble table of `x` (a padded,
/// rotated-space vector): the reference the popcount path is tested
/// against.
#[cfg(test)]
pub(crate) fn lut_u_dot(rq: &RaBitQ, x: &[f32], code: &[u64]) -> f32 {
    let (lut, _) = nibble_lut(x);
    u_dot(rq, &lut, code)
}

/// `Σ_p 2^(B−1−p) · plane_sum_p`.
fn u_dot(rq: &RaBitQ, lut: &[f32], code: &[u64]) -> f32 {
    let bits = rq.bits() as usize;
    let words = rq.padded() / 64;
    let mut u_dot = 0.0f32;
    for p in 0..bits {
        let weight = (1u32 << (bits - 1 - p)) as f32;
        u_dot += weight * plane_sum(lut, &code[p * words..(p + 1) * words]);
    }
    u_dot
}

/// `Σ_{bit i set} q'_i` of one plane.
#[inline]
fn plane_sum(lut: &[f32], plane: &[u64]) -> f32 {
    let mut acc = [0.0f32; 4];
    for (w, &word) in plane.iter().enumerate() {
        let base = w * 16 * 16;
        let mut x = word;
        for j in 0..16 {
            acc[j & 3] += lut[base + j * 16 + (x & 15) as usize];
            x >>= 4;
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// Estimate for one code (lengths checked by the caller).
pub(crate) fn estimate_one(
    rq: &RaBitQ,
    q: &QueryLut,
    code: &[u64],
    factors: &[f32],
    epsilon0: f32,
) -> Estimate {
    let bits = rq.bits() as usize;
    let u_dot = u_dot(rq, &q.lut, code);
    let offset = ((1u32 << bits) - 1) as f32 / 2.0;
    let y_dot = u_dot - offset * q.sum;
    let (r, rho, s) = (factors[0], factors[1], factors[2]);
    let n = rq.padded() as f32;
    let spread = if rho > 0.0 {
        ((1.0 - rho * rho).max(0.0)).sqrt() / rho * epsilon0 / (n - 1.0).sqrt()
    } else {
        f32::INFINITY
    };
    match rq.metric() {
        Metric::L2 => Estimate {
            distance: r * r + q.q_norm * q.q_norm - 2.0 * s * y_dot,
            bound: 2.0 * r * q.q_norm * spread,
        },
        Metric::Cosine => Estimate {
            distance: 0.5 * (r * r + q.q_norm * q.q_norm - 2.0 * s * y_dot),
            bound: r * q.q_norm * spread,
        },
        Metric::InnerProduct => Estimate {
            distance: -(q.q_dot_c + s * y_dot),
            bound: r * q.q_norm * spread,
        },
    }
}

/// Estimates every code of a cell (`codes` and `factors` concatenated).
pub fn estimate_cell(
    rq: &RaBitQ,
    q: &QueryLut,
    codes: &[u64],
    factors: &[f32],
    epsilon0: f32,
    out: &mut Vec<Estimate>,
) {
    let wpv = rq.words_per_vector();
    for (code, f) in codes
        .chunks_exact(wpv.max(1))
        .zip(factors.chunks_exact(super::FACTORS))
    {
        out.push(estimate_one(rq, q, code, f, epsilon0));
    }
}
