//! RaBitQ encoding: residual, rotation, optimal grid quantisation, packing.
//!
//! For `bits = B` each rotated coordinate `o'_i` becomes a code
//! `u_i ∈ 0..2^B` standing for `y_i = u_i − (2^B − 1)/2`, a half-integer
//! with the sign of `o'_i` (`o'_i ≥ 0` counts as positive) and magnitude
//! `k_i + ½`, `k_i ∈ 0..2^(B−1)`. The magnitudes maximise
//! `⟨y, |o'|⟩ / ‖y‖` (the cosine between code and residual): with
//! `k_i(t) = min(⌊t·|o'_i|⌋, 2^(B−1) − 1)` the optimum is attained at one of
//! the critical scales `t = m / |o'_i|`, which are visited in increasing
//! order (ties by coordinate) from the all-zero state, keeping the first
//! best. For B = 1 this is plain RaBitQ: `u_i` is the sign bit.
//!
//! Codes are bit planes, most significant first, so plane 0 is always the
//! 1-bit RaBitQ code of the same vector.

use super::super::metric::norm_ref;
use super::{RaBitQ, FACTORS};

/// One encoded vector: `bits · padded / 64` code words and its factors
/// `[residual norm r, ⟨ō, o⟩, rescale s]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// Bit planes, MSB plane first; bit `j` of word `w` in a plane is
    /// coordinate `64 w + j`.
    pub code: Vec<u64>,
    /// `[r, ρ, s]`: `r = ‖e‖`, `ρ = ⟨y, o'⟩ / (‖y‖ ‖o'‖)`,
    /// `s = r ‖o'‖ / ⟨y, o'⟩` (0 when the residual is 0).
    pub factors: [f32; FACTORS],
}

/// The residual `v − c` (or `v`) by f32 subtraction.
pub(crate) fn residual(v: &[f32], centroid: Option<&[f32]>) -> Vec<f32> {
    match centroid {
        Some(c) => v.iter().zip(c).map(|(a, b)| a - b).collect(),
        None => v.to_vec(),
    }
}

/// Positive f64 as an order-preserving integer key (IEEE bit patterns of
/// positive floats sort like the floats).
fn key(t: f64) -> u64 {
    t.to_bits()
}

/// Optimal magnitudes `k_i` for `|o'|` with `levels = 2^(B−1)`.
fn magnitudes(a: &[f64], levels: u32) -> Vec<u32> {
    let n = a.len();
    let mut k = vec![0u32; n];
    if levels <= 1 {
        return k;
    }
    // The critical scales in increasing (t, i) order: each coordinate's
    // own scales `m / a_i` increase with `m`, so sorting all of them gives
    // exactly the visiting order. Then track the objective along it.
    let mut events: Vec<(u64, u32)> = Vec::with_capacity(n * (levels as usize - 1));
    for (i, &x) in a.iter().enumerate() {
        if x > 0.0 {
            for m in 1..levels {
                events.push((key(f64::from(m) / x), i as u32));
            }
        }
    }
    events.sort_unstable();
    let mut level = vec![0u32; n];
    let mut ip: f64 = a.iter().map(|x| 0.5 * x).sum();
    let mut nn: f64 = 0.25 * n as f64;
    let mut best = ip / nn.sqrt();
    let mut best_count = 0usize;
    for (count, &(_, i)) in events.iter().enumerate() {
        let i = i as usize;
        let ki = level[i];
        level[i] = ki + 1;
        ip += a[i];
        nn += f64::from(2 * ki + 2);
        let obj = ip / nn.sqrt();
        if obj > best {
            best = obj;
            best_count = count + 1;
        }
    }
    for &(_, i) in &events[..best_count] {
        k[i as usize] += 1;
    }
    k
}

/// Encodes a prepared vector (see the module docs).
pub(crate) fn encode_prepared(rq: &RaBitQ, v: &[f32], centroid: Option<&[f32]>) -> Encoded {
    let e = residual(v, centroid);
    let r = norm_ref(&e);
    let o = rq.rotation().apply(&e);
    let bits = rq.bits();
    if bits == 1 {
        return encode_one_bit(&o, r);
    }
    encode_rotated(&o, r, bits)
}

/// The general path of [`encode_prepared`] from the rotated residual `o`
/// and its norm `r`.
fn encode_rotated(o: &[f32], r: f32, bits: u32) -> Encoded {
    let n = o.len();
    let levels = 1u32 << (bits - 1);
    let a: Vec<f64> = o.iter().map(|x| f64::from(x.abs())).collect();
    let k = magnitudes(&a, levels);
    let words = n / 64;
    let mut code = vec![0u64; bits as usize * words];
    let mut ip = 0.0f64;
    let mut nn = 0.0f64;
    for i in 0..n {
        let u = if o[i] >= 0.0 {
            levels + k[i]
        } else {
            levels - 1 - k[i]
        };
        let half = f64::from(k[i]) + 0.5;
        ip += half * a[i];
        nn += half * half;
        for p in 0..bits {
            if (u >> (bits - 1 - p)) & 1 == 1 {
                code[p as usize * words + i / 64] |= 1u64 << (i % 64);
            }
        }
    }
    let o_norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    Encoded {
        code,
        factors: factors_of(r, ip, nn, o_norm),
    }
}

/// `[r, ρ, s]` from the residual norm `r`, `⟨y, |o'|⟩`, `‖y‖²` and
/// `‖o'‖` (`[r, 1, 0]` when any of them makes the ratios undefined).
fn factors_of(r: f32, ip: f64, nn: f64, o_norm: f64) -> [f32; FACTORS] {
    if o_norm == 0.0 || ip == 0.0 || r == 0.0 {
        [r, 1.0, 0.0]
    } else {
        let rho = ip / (nn.sqrt() * o_norm);
        let s = f64::from(r) * o_norm / ip;
        [r, rho as f32, s as f32]
    }
}

/// [`encode_prepared`] for `B = 1`, where every magnitude is 0 and every
/// `y_i` is `±½`: the code is the sign bits, `⟨y, |o'|⟩ = Σ ½ |o'_i|` and
/// `‖y‖² = n / 4`, summed in the same order as the general path (the
/// same bits), with nothing allocated but the code.
fn encode_one_bit(o: &[f32], r: f32) -> Encoded {
    let n = o.len();
    let mut code = vec![0u64; n / 64];
    let mut ip = 0.0f64;
    let mut nn = 0.0f64;
    let mut sq = 0.0f64;
    for (word, chunk) in code.iter_mut().zip(o.chunks_exact(64)) {
        for (j, &x) in chunk.iter().enumerate() {
            let a = f64::from(x.abs());
            ip += 0.5 * a;
            nn += 0.25;
            sq += a * a;
            *word |= u64::from(x >= 0.0) << j;
        }
    }
    let o_norm = sq.sqrt();
    Encoded {
        code,
        factors: factors_of(r, ip, nn, o_norm),
    }
}

/// The code's half-integer values `y_i` (padded length).
pub(crate) fn code_values(rq: &RaBitQ, code: &[u64]) -> Vec<f32> {
    let n = rq.padded();
    let bits = rq.bits();
    let words = n / 64;
    let offset = ((1u32 << bits) - 1) as f32 / 2.0;
    (0..n)
        .map(|i| {
            let mut u = 0u32;
            for p in 0..bits as usize {
                let bit = (code[p * words + i / 64] >> (i % 64)) & 1;
                u = (u << 1) | bit as u32;
            }
            u as f32 - offset
        })
        .collect()
}

/// `c + r·ρ·ō` with `ō = R⁻¹(y / ‖y‖)`, truncated to `dim`.
pub(crate) fn decode(
    rq: &RaBitQ,
    code: &[u64],
    factors: &[f32],
    centroid: Option<&[f32]>,
) -> Vec<f32> {
    let y = code_values(rq, code);
    let y_norm = norm_ref(&y);
    let unit: Vec<f32> = y.iter().map(|v| v / y_norm).collect();
    let back = rq.rotation().apply_inverse(&unit);
    let scale = factors[0] * factors[1];
    (0..rq.dim())
        .map(|i| {
            let base = centroid.map_or(0.0, |c| c[i]);
            base + scale * back[i]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The 1-bit path gives the general path's code and factors.
        #[test]
        fn one_bit_path_is_the_general_path(
            words in 1usize..5,
            seed in proptest::collection::vec(-100f32..100.0, 1..80),
            r in 0f32..50.0,
        ) {
            let o: Vec<f32> = (0..64 * words)
                .map(|i| seed[i % seed.len()] * (1.0 - (i % 9) as f32 * 0.2))
                .collect();
            let fast = encode_one_bit(&o, r);
            let general = encode_rotated(&o, r, 1);
            prop_assert_eq!(&fast.code, &general.code);
            prop_assert_eq!(fast.factors.map(f32::to_bits), general.factors.map(f32::to_bits));
        }
    }
}
