//! The 16-lane sums behind the fast (non-normative) dot product and
//! squared L2 ([`super::metric::dot_fast`], [`super::metric::l2sq_fast`]).
//!
//! Lane `j` accumulates the products (or squared differences) of
//! coordinates `j, j + 16, j + 32, …` in index order, each product rounded
//! and then added, as the portable loop writes it. On a CPU with AVX-512
//! the sixteen lanes are one register and each step is one multiply and
//! one add (never a fused multiply-add), so the lane sums are bit-identical
//! on every machine. The lanes are then folded — in index order by the
//! portable loop, pairwise in the register on AVX-512 (a sequential fold
//! of 16 dependent adds costs more than the whole loop at 128-d) — and the
//! remainder added. Any summation order is within the error bound of spec
//! 0004 §3.4, and every fast score is used only under that bound (the
//! reference path decides near-ties), so keys, assignments and trained
//! indexes are the same either way.

/// Lanes per step.
pub const LANES: usize = 16;

/// What each lane accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneOp {
    /// `a_i · b_i`.
    Dot,
    /// `(a_i − b_i)²`.
    L2,
}

/// The lane sums folded in index order, then the remainder: the same bits
/// on every machine (the fast estimator's query norms, spec 0010, are
/// defined by it).
pub fn ordered_sum(a: &[f32], b: &[f32], op: LaneOp) -> f32 {
    with_remainder(a, b, op, |a, b| {
        #[cfg(target_arch = "x86_64")]
        if let Some(lanes) = x86::lane_sums(a, b, op) {
            return in_order(lanes);
        }
        in_order(portable(a, b, op))
    })
}

/// The fast sum of `op` over `a` and `b` (equal lengths; a longer one is
/// cut to the shorter), folded in whatever order is fastest here: only for
/// use under the error bound of spec 0004 §3.4.
#[inline]
pub fn fast_sum(a: &[f32], b: &[f32], op: LaneOp) -> f32 {
    with_remainder(a, b, op, |a, b| {
        #[cfg(target_arch = "x86_64")]
        if let Some(sum) = x86::folded(a, b, op) {
            return sum;
        }
        in_order(portable(a, b, op))
    })
}

/// `whole(a, b)` over the whole chunks of 16, then the remaining terms
/// added in index order.
#[inline(always)]
fn with_remainder(
    a: &[f32],
    b: &[f32],
    op: LaneOp,
    whole: impl FnOnce(&[f32], &[f32]) -> f32,
) -> f32 {
    let n = a.len().min(b.len());
    let cut = n - n % LANES;
    let mut s = whole(&a[..cut], &b[..cut]);
    for (x, y) in a[cut..n].iter().zip(&b[cut..n]) {
        s += term(*x, *y, op);
    }
    s
}

/// The lanes folded in index order.
fn in_order(lanes: [f32; LANES]) -> f32 {
    let mut s = 0.0f32;
    for v in lanes {
        s += v;
    }
    s
}

/// [`fast_sum`] of `q` against each `q.len()`-long row of `rows`, in
/// order, into `out` (cleared first).
pub fn fast_sums_rows(q: &[f32], rows: &[f32], op: LaneOp, out: &mut Vec<f32>) {
    out.clear();
    if q.is_empty() {
        out.resize(rows.len(), 0.0);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if x86::sums_rows(q, rows, op, out) {
        return;
    }
    out.extend(rows.chunks_exact(q.len()).map(|row| fast_sum(q, row, op)));
}

#[inline(always)]
fn term(x: f32, y: f32, op: LaneOp) -> f32 {
    match op {
        LaneOp::Dot => x * y,
        LaneOp::L2 => {
            let d = x - y;
            d * d
        }
    }
}

/// The portable loop (the definition).
#[inline]
pub fn portable(a: &[f32], b: &[f32], op: LaneOp) -> [f32; LANES] {
    let mut acc = [0.0f32; LANES];
    for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for j in 0..LANES {
            acc[j] += term(x[j], y[j], op);
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The lane loop in one AVX-512 register.
    #![allow(
        unsafe_code,
        reason = "AVX-512 intrinsics after run-time detection; loads of whole 16-float chunks"
    )]

    use std::arch::x86_64::{
        __m512, _mm512_add_ps, _mm512_loadu_ps, _mm512_mul_ps, _mm512_reduce_add_ps,
        _mm512_setzero_ps, _mm512_storeu_ps, _mm512_sub_ps,
    };

    use super::{LaneOp, LANES};

    /// The lane sums, `None` without AVX-512F.
    pub(super) fn lane_sums(a: &[f32], b: &[f32], op: LaneOp) -> Option<[f32; LANES]> {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return None;
        }
        let mut out = [0.0f32; LANES];
        // SAFETY: the CPU has avx512f (checked just above); `out` holds
        // 16 floats.
        unsafe { _mm512_storeu_ps(out.as_mut_ptr(), inner(a, b, op)) };
        Some(out)
    }

    /// The lane sums folded pairwise, `None` without AVX-512F.
    #[inline]
    pub(super) fn folded(a: &[f32], b: &[f32], op: LaneOp) -> Option<f32> {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return None;
        }
        // SAFETY: the CPU has avx512f (checked just above).
        Some(unsafe { fold(inner(a, b, op)) })
    }

    #[target_feature(enable = "avx512f")]
    fn fold(acc: __m512) -> f32 {
        _mm512_reduce_add_ps(acc)
    }

    /// [`super::fast_sums_rows`] in one call (everything inlined);
    /// `false` (nothing done) without AVX-512F.
    pub(super) fn sums_rows(q: &[f32], rows: &[f32], op: LaneOp, out: &mut Vec<f32>) -> bool {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return false;
        }
        // SAFETY: the CPU has avx512f (checked just above).
        unsafe { sums_rows_inner(q, rows, op, out) };
        true
    }

    #[target_feature(enable = "avx512f")]
    fn sums_rows_inner(q: &[f32], rows: &[f32], op: LaneOp, out: &mut Vec<f32>) {
        let whole = q.len() - q.len() % LANES;
        for row in rows.chunks_exact(q.len()) {
            let mut s = _mm512_reduce_add_ps(inner(&q[..whole], &row[..whole], op));
            for (x, y) in q[whole..].iter().zip(&row[whole..]) {
                s += super::term(*x, *y, op);
            }
            out.push(s);
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn inner(a: &[f32], b: &[f32], op: LaneOp) -> __m512 {
        let mut acc = _mm512_setzero_ps();
        for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
            // SAFETY: each chunk holds exactly 16 floats.
            let (x, y) = unsafe { (_mm512_loadu_ps(x.as_ptr()), _mm512_loadu_ps(y.as_ptr())) };
            let t = match op {
                LaneOp::Dot => _mm512_mul_ps(x, y),
                LaneOp::L2 => {
                    let d = _mm512_sub_ps(x, y);
                    _mm512_mul_ps(d, d)
                }
            };
            acc = _mm512_add_ps(acc, t);
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The register loop's lanes are the portable loop's, bit for bit.
        #[test]
        fn lane_sums_are_the_portable_sums(
            values in proptest::collection::vec(-1e6f32..1e6, 0..600),
            split in 0usize..300,
        ) {
            let half = values.len() / 2;
            let (a, b) = values.split_at(half.min(split.max(half)));
            for op in [LaneOp::Dot, LaneOp::L2] {
                #[cfg(target_arch = "x86_64")]
                if let Some(fast) = x86::lane_sums(a, b, op) {
                    prop_assert_eq!(fast.map(f32::to_bits), portable(a, b, op).map(f32::to_bits));
                }
                // The ordered sum is the portable definition, bit for bit.
                let mut defined = in_order(portable(a, b, op));
                let n = a.len().min(b.len());
                for (x, y) in a[n - n % LANES..n].iter().zip(&b[n - n % LANES..n]) {
                    defined += term(*x, *y, op);
                }
                prop_assert_eq!(ordered_sum(a, b, op).to_bits(), defined.to_bits());
                // The fast sum is within the summation bound of the exact
                // sum of the rounded terms.
                let terms: Vec<f64> = a[..n].iter().zip(&b[..n]).map(|(x, y)| f64::from(term(*x, *y, op))).collect();
                let exact: f64 = terms.iter().sum();
                let mass: f64 = terms.iter().map(|t| t.abs()).sum();
                let u = f64::powi(2.0, -24);
                let gamma = n as f64 * u / (1.0 - n as f64 * u);
                let fast = f64::from(fast_sum(a, b, op));
                prop_assert!((fast - exact).abs() <= gamma * mass + 1e-30, "{fast} vs {exact}");
            }
        }
    }
}
