//! The fast estimator's popcount loop on AVX-512 (`VPOPCNTQ`).
//!
//! The portable loop ([`super::quantised`]) spends, per 64-bit code word,
//! four AND-popcounts against the query's bit planes and one popcount of
//! the word itself. Here eight words go through each instruction: a code
//! of up to 512 bits (384-d after padding) is one masked load, four
//! AND + `VPOPCNTQ`, one more `VPOPCNTQ` for `Σ u`, and one horizontal add
//! per code. The two sums share each 64-bit lane (`⟨u, q̄⟩` in the low 32
//! bits, `Σ u` in the high 32; neither can carry: `⟨u, q̄⟩ ≤ n · 15 · 255
//! < 2³²` for `n ≤ 65,536`), so the integers are exactly the portable
//! loop's and the distances are bit-identical to it (tests compare them).
//!
//! The query's quantisation ([`QuantisedQuery::set`]) runs here too, 16
//! coordinates per instruction with the same f32 operations in the same
//! order (no fused multiply-add), so the levels are the portable ones.
//!
//! Used when the CPU reports `avx512f` and `avx512vpopcntdq` at run time;
//! the portable loop otherwise.

#![allow(
    unsafe_code,
    reason = "AVX-512 intrinsics after run-time feature detection; raw loads within checked bounds"
)]

use std::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_add_epi64, _mm512_add_ps, _mm512_and_si512,
    _mm512_cvttps_epu32, _mm512_loadu_ps, _mm512_loadu_si512, _mm512_maskz_loadu_epi64,
    _mm512_max_ps, _mm512_min_epu32, _mm512_min_ps, _mm512_mul_ps, _mm512_popcnt_epi64,
    _mm512_reduce_add_epi32, _mm512_reduce_add_epi64, _mm512_reduce_max_ps, _mm512_reduce_min_ps,
    _mm512_set1_epi32, _mm512_set1_epi64, _mm512_set1_ps, _mm512_setzero_si512, _mm512_slli_epi64,
    _mm512_sllv_epi64, _mm512_sub_ps, _mm512_test_epi32_mask,
};

use super::quantised::{distance_of, Cell, QuantisedQuery, Records, QUERY_BITS};
use super::FACTORS;
use crate::spatial::metric::Metric;

/// Whether this CPU runs the AVX-512 loop (detection is cached by std).
#[inline]
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
}

/// `⟨u, q̄⟩ + 2³² Σ u` of the code at `code` (`bits · words` little-endian
/// words). `chunked` is the query's planes, plane-major per 8-word chunk
/// ([`QuantisedQuery::chunked`]).
///
/// # Safety
/// The CPU has `avx512f` and `avx512vpopcntdq`; `code` is valid for reads
/// of `8 · bits · words` bytes; `chunked.len() = 4 · 8 · ⌈words / 8⌉`.
#[inline]
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn dot_ones(chunked: &[u64], words: usize, bits: usize, code: *const u8) -> u64 {
    let mut acc: __m512i = _mm512_setzero_si512();
    for p in 0..bits {
        let shift = _mm512_set1_epi64((bits - 1 - p) as i64);
        let mut plane_acc = _mm512_setzero_si512();
        for (k, q) in chunked.chunks_exact(QUERY_BITS * 8).enumerate() {
            let left = words - 8 * k;
            let mask: u8 = if left >= 8 { 0xff } else { (1u8 << left) - 1 };
            // SAFETY: lanes past `left` are masked off (not read); the
            // others are within the code (`8k + lane < words`).
            let c = unsafe {
                _mm512_maskz_loadu_epi64(mask, code.add(8 * (p * words + 8 * k)).cast::<i64>())
            };
            // SAFETY: `q` holds 4 × 8 words.
            let (q0, q1, q2, q3) = unsafe {
                (
                    _mm512_loadu_si512(q.as_ptr().cast()),
                    _mm512_loadu_si512(q.as_ptr().add(8).cast()),
                    _mm512_loadu_si512(q.as_ptr().add(16).cast()),
                    _mm512_loadu_si512(q.as_ptr().add(24).cast()),
                )
            };
            let a0 = _mm512_popcnt_epi64(_mm512_and_si512(c, q0));
            let a1 = _mm512_popcnt_epi64(_mm512_and_si512(c, q1));
            let a2 = _mm512_popcnt_epi64(_mm512_and_si512(c, q2));
            let a3 = _mm512_popcnt_epi64(_mm512_and_si512(c, q3));
            let ones = _mm512_popcnt_epi64(c);
            let dot = _mm512_add_epi64(
                _mm512_add_epi64(a0, _mm512_slli_epi64::<1>(a1)),
                _mm512_add_epi64(_mm512_slli_epi64::<2>(a2), _mm512_slli_epi64::<3>(a3)),
            );
            plane_acc = _mm512_add_epi64(
                plane_acc,
                _mm512_add_epi64(dot, _mm512_slli_epi64::<32>(ones)),
            );
        }
        acc = _mm512_add_epi64(acc, _mm512_sllv_epi64(plane_acc, shift));
    }
    // `⟨u, q̄⟩` in the low 32 bits, `Σ u` in the high 32.
    _mm512_reduce_add_epi64(acc) as u64
}

/// The contiguous loop ([`super::RaBitQ::fast_distances_cell`]) on
/// AVX-512; `false` (and nothing done) if the CPU lacks it. The caller
/// has checked `q.words · bits = wpv`.
pub(super) fn cell_distances<F: FnMut(usize, f32)>(cell: &Cell<'_>, sink: &mut F) -> bool {
    if !available() || cell.q.words() * cell.bits != cell.wpv {
        return false;
    }
    let n = (cell.codes.len() / cell.wpv).min(cell.factors.len() / FACTORS);
    let (codes, wpv, factors) = (cell.codes, cell.wpv, cell.factors);
    let mut out = Vec::with_capacity(n);
    // SAFETY: the CPU has the features (checked); code `i < n` is
    // `codes[i·wpv .. (i+1)·wpv]`, in bounds, and `bits · words = wpv`.
    unsafe {
        distances(
            cell.metric,
            cell.q,
            cell.bits,
            n,
            |i| codes.as_ptr().wrapping_add(i * wpv).cast::<u8>(),
            |i| std::array::from_fn(|f| factors.get(i * FACTORS + f).copied().unwrap_or(f32::NAN)),
            &mut out,
        );
    }
    for (i, &d) in out.iter().enumerate() {
        sink(i, d);
    }
    true
}

/// The in-place loop ([`super::RaBitQ::fast_distances_records`]) on
/// AVX-512; `false` (and nothing done) if the CPU lacks it. The caller has
/// checked that each record holds `wpv = q.words · bits` code words.
pub(super) fn record_distances(set: &Records<'_>, out: &mut Vec<f32>) -> bool {
    let r = set.records;
    if !available()
        || set.q.words() * set.bits != set.wpv
        || r.record_size == 0
        || r.code_at + 8 * set.wpv > r.record_size
    {
        return false;
    }
    let base = r.bytes.as_ptr();
    // SAFETY: the CPU has the features (checked); record `i < len` spans
    // `bytes[i·size .. (i+1)·size]` and its code bytes `code_at .. code_at
    // + 8·wpv` lie inside it (checked).
    unsafe {
        distances(
            set.metric,
            set.q,
            set.bits,
            r.len(),
            |i| base.wrapping_add(i * r.record_size + r.code_at),
            |i| r.factors(i),
            out,
        );
    }
    true
}

/// Appends the estimated distances of `n` codes to `out`: code `i` at
/// `code(i)`, its factors `factors(i)`.
///
/// # Safety
/// As [`dot_ones`] for every `code(i)`, `i < n`; `q.chunked` is set.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
unsafe fn distances<C, G>(
    metric: Metric,
    q: &QuantisedQuery,
    bits: usize,
    n: usize,
    code: C,
    factors: G,
    out: &mut Vec<f32>,
) where
    C: Fn(usize) -> *const u8,
    G: Fn(usize) -> [f32; FACTORS],
{
    let (chunked, words) = (q.chunked(), q.words());
    let start = out.len();
    out.resize(start + n, 0.0);
    let Some(out) = out.get_mut(start..) else {
        return;
    };
    // Blocks of codes: first the integer sums (vector work only, no
    // dependency between codes), then the scalar finish, so neither
    // stalls the other.
    const BLOCK: usize = 64;
    let mut sums = [0u64; BLOCK];
    for (b, block) in out.chunks_mut(BLOCK).enumerate() {
        let first = b * BLOCK;
        for (j, sum) in sums.iter_mut().take(block.len()).enumerate() {
            // SAFETY: the caller's contract (`first + j < n`).
            *sum = unsafe { dot_ones(chunked, words, bits, code(first + j)) };
        }
        for (j, (slot, &sum)) in block.iter_mut().zip(&sums).enumerate() {
            *slot = distance_of(
                metric,
                q,
                (sum & 0xffff_ffff, sum >> 32),
                bits,
                &factors(first + j),
            );
        }
    }
}

/// `(min, max)` of `xs` (a non-empty multiple of 16 long, no NaN), or
/// `None` without AVX-512.
pub(super) fn min_max(xs: &[f32]) -> Option<(f32, f32)> {
    if !available() || xs.is_empty() || !xs.len().is_multiple_of(16) {
        return None;
    }
    // SAFETY: the CPU has avx512f (checked); every load reads 16 floats
    // of a chunk of exactly 16.
    unsafe { Some(min_max_inner(xs)) }
}

#[target_feature(enable = "avx512f")]
unsafe fn min_max_inner(xs: &[f32]) -> (f32, f32) {
    let mut lo = _mm512_set1_ps(f32::INFINITY);
    let mut hi = _mm512_set1_ps(f32::NEG_INFINITY);
    for chunk in xs.chunks_exact(16) {
        // SAFETY: the chunk holds 16 floats.
        let v = unsafe { _mm512_loadu_ps(chunk.as_ptr()) };
        lo = _mm512_min_ps(lo, v);
        hi = _mm512_max_ps(hi, v);
    }
    (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi))
}

/// Appends the [`QUERY_BITS`] bit planes of each 64 coordinates of
/// `rotated` (levels `min(15, ⌊(x − lo) · inv + ½⌋)`, plane `j` of word
/// `w` at `4w + j`) and returns `Σ levels`; `None` (nothing appended)
/// without AVX-512, or when `inv` is not finite (the portable loop then
/// keeps its own saturation rules).
pub(super) fn quantise(rotated: &[f32], lo: f32, inv: f32, planes: &mut Vec<u64>) -> Option<u64> {
    if !available() || !inv.is_finite() || !rotated.len().is_multiple_of(64) {
        return None;
    }
    // SAFETY: the CPU has avx512f (checked); loads read 16 floats of
    // 64-float chunks.
    unsafe { Some(quantise_inner(rotated, lo, inv, planes)) }
}

#[target_feature(enable = "avx512f")]
unsafe fn quantise_inner(rotated: &[f32], lo: f32, inv: f32, planes: &mut Vec<u64>) -> u64 {
    let (lo, inv, half) = (_mm512_set1_ps(lo), _mm512_set1_ps(inv), _mm512_set1_ps(0.5));
    let top = _mm512_set1_epi32(15);
    let bit: [__m512i; QUERY_BITS] = std::array::from_fn(|j| _mm512_set1_epi32(1 << j));
    let mut sum = _mm512_setzero_si512();
    for chunk in rotated.chunks_exact(64) {
        let mut word = [0u64; QUERY_BITS];
        for (g, xs) in chunk.chunks_exact(16).enumerate() {
            // SAFETY: `xs` holds 16 floats.
            let x = unsafe { _mm512_loadu_ps(xs.as_ptr()) };
            // (x − lo) · inv + ½, rounded as the portable loop rounds.
            let t = _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(x, lo), inv), half);
            let level = _mm512_min_epu32(_mm512_cvttps_epu32(t), top);
            sum = _mm512_add_epi32(sum, level);
            for (j, w) in word.iter_mut().enumerate() {
                *w |= u64::from(_mm512_test_epi32_mask(level, bit[j])) << (16 * g);
            }
        }
        planes.extend_from_slice(&word);
    }
    // Each lane sums at most n / 16 levels of 15: no overflow for n ≤ 2¹⁶.
    _mm512_reduce_add_epi32(sum) as u32 as u64
}

#[cfg(test)]
mod tests {
    use super::super::quantised::portable_planes;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The vector quantisation gives the portable levels, planes and
        /// sum, and the vector min/max the portable fold's, on any input
        /// (skipped only on a CPU without AVX-512, where neither runs).
        #[test]
        fn quantisation_equals_the_portable_loop(
            words in 1usize..10,
            values in proptest::collection::vec(-1e4f32..1e4, 640),
            spread in 1e-6f32..1e3,
        ) {
            if !available() {
                return Ok(());
            }
            let xs: Vec<f32> = values[..64 * words].iter().map(|x| x * spread).collect();
            let (lo, hi) = xs.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
            prop_assert_eq!(min_max(&xs), Some((lo, hi)));
            let delta = (hi - lo) / 15.0;
            let inv = if delta > 0.0 { 1.0 / delta } else { 0.0 };
            let (mut fast, mut portable) = (Vec::new(), Vec::new());
            let sum = quantise(&xs, lo, inv, &mut fast);
            prop_assert_eq!(sum, Some(portable_planes(&xs, lo, inv, &mut portable)));
            prop_assert_eq!(fast, portable);
        }
    }
}
