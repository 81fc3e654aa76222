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
//! of 16 dependent adds costs more than the whole loop at 128-d; a tile of
//! sixteen accumulators folds by the same tree with one shuffle per pair
//! of registers) — and the remainder added. Any summation order is within the error bound of spec
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

/// Queries scored together by [`fast_sums_rows_block`].
pub const QUERY_BLOCK: usize = 4;

/// [`fast_sums_rows`] of [`QUERY_BLOCK`] queries at once: `outs[i]` gets
/// exactly the values `fast_sums_rows(qs[i], rows, op, …)` would, bit for
/// bit.
///
/// Each (query, row) pair keeps its own accumulator and adds its chunks
/// in the same order, so nothing about the sums changes; what changes is
/// that a tile of 4 queries × 4 rows loads 8 chunks for 16 products where
/// the one-query loop loads 2 for 1, which moves the kernel from waiting
/// on loads to waiting on the multiplier (k-means and cell assignment,
/// where every row meets every centroid).
pub fn fast_sums_rows_block(
    qs: [&[f32]; QUERY_BLOCK],
    rows: &[f32],
    op: LaneOp,
    outs: &mut [Vec<f32>; QUERY_BLOCK],
) {
    let dim = qs[0].len();
    if dim == 0 || qs.iter().any(|q| q.len() != dim) {
        for (q, out) in qs.iter().zip(outs.iter_mut()) {
            fast_sums_rows(q, rows, op, out);
        }
        return;
    }
    outs.iter_mut().for_each(Vec::clear);
    #[cfg(target_arch = "x86_64")]
    if x86::sums_rows_block(qs, rows, op, outs) {
        return;
    }
    for (q, out) in qs.iter().zip(outs.iter_mut()) {
        fast_sums_rows(q, rows, op, out);
    }
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
        __m512, _mm512_add_ps, _mm512_loadu_ps, _mm512_mul_ps, _mm512_setzero_ps,
        _mm512_shuffle_f32x4, _mm512_shuffle_ps, _mm512_storeu_ps, _mm512_sub_ps,
    };

    use super::{LaneOp, LANES, QUERY_BLOCK};

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

    /// The 16 lanes folded pairwise: lanes `i` and `i + 8`, then `i` and
    /// `i + 4`, then `i` and `i + 2`, then the last two — the same tree
    /// as [`fold_sixteen`] applies to each of its accumulators.
    #[target_feature(enable = "avx512f")]
    fn fold(acc: __m512) -> f32 {
        let t = _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x44>(acc, acc),
            _mm512_shuffle_f32x4::<0xEE>(acc, acc),
        );
        let u = _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x88>(t, t),
            _mm512_shuffle_f32x4::<0xDD>(t, t),
        );
        let v = _mm512_add_ps(
            _mm512_shuffle_ps::<0x44>(u, u),
            _mm512_shuffle_ps::<0xEE>(u, u),
        );
        let mut lanes = [0.0f32; LANES];
        // SAFETY: `lanes` holds 16 floats.
        unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), v) };
        lanes[0] + lanes[1]
    }

    /// Sixteen accumulators folded at once, each by [`fold`]'s tree
    /// (bit for bit), with the pairs of every level taken from two
    /// registers by one shuffle each instead of a reduction per
    /// accumulator. Returns the sums in accumulator order.
    #[target_feature(enable = "avx512f")]
    fn fold_sixteen(acc: &[__m512; 16]) -> [f32; 16] {
        // Level 1: lanes i + (i + 8); two accumulators per register.
        let t: [__m512; 8] = std::array::from_fn(|k| {
            let (a, b) = (acc[2 * k], acc[2 * k + 1]);
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0x44>(a, b),
                _mm512_shuffle_f32x4::<0xEE>(a, b),
            )
        });
        // Level 2: i + (i + 4); one 128-bit quarter per accumulator.
        let w: [__m512; 4] = std::array::from_fn(|m| {
            let (a, b) = (t[2 * m], t[2 * m + 1]);
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0x88>(a, b),
                _mm512_shuffle_f32x4::<0xDD>(a, b),
            )
        });
        // Level 3: i + (i + 2), within each quarter.
        let z: [__m512; 2] = std::array::from_fn(|p| {
            let (a, b) = (w[2 * p], w[2 * p + 1]);
            _mm512_add_ps(
                _mm512_shuffle_ps::<0x44>(a, b),
                _mm512_shuffle_ps::<0xEE>(a, b),
            )
        });
        // Level 4: the last pair. Quarter k, element e holds
        // accumulator k + 4e.
        let f = _mm512_add_ps(
            _mm512_shuffle_ps::<0x88>(z[0], z[1]),
            _mm512_shuffle_ps::<0xDD>(z[0], z[1]),
        );
        let mut lanes = [0.0f32; 16];
        // SAFETY: `lanes` holds 16 floats.
        unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), f) };
        std::array::from_fn(|j| lanes[4 * (j % 4) + j / 4])
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
            let mut s = fold(inner(&q[..whole], &row[..whole], op));
            for (x, y) in q[whole..].iter().zip(&row[whole..]) {
                s += super::term(*x, *y, op);
            }
            out.push(s);
        }
    }

    /// [`super::fast_sums_rows_block`] (queries of one length, outputs
    /// cleared); `false` (nothing done) without AVX-512F.
    pub(super) fn sums_rows_block(
        qs: [&[f32]; QUERY_BLOCK],
        rows: &[f32],
        op: LaneOp,
        outs: &mut [Vec<f32>; QUERY_BLOCK],
    ) -> bool {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return false;
        }
        // SAFETY: the CPU has avx512f (checked just above).
        unsafe {
            match op {
                LaneOp::Dot => sums_rows_block_inner::<false>(qs, rows, outs),
                LaneOp::L2 => sums_rows_block_inner::<true>(qs, rows, outs),
            }
        };
        true
    }

    /// Rows per tile of [`sums_rows_block_inner`].
    const ROW_TILE: usize = 4;

    #[target_feature(enable = "avx512f")]
    fn sums_rows_block_inner<const L2: bool>(
        qs: [&[f32]; QUERY_BLOCK],
        rows: &[f32],
        outs: &mut [Vec<f32>; QUERY_BLOCK],
    ) {
        let op = if L2 { LaneOp::L2 } else { LaneOp::Dot };
        let dim = qs[0].len();
        let whole = dim - dim % LANES;
        let mut tiles = rows.chunks_exact(dim * ROW_TILE);
        for tile in tiles.by_ref() {
            let (r0, rest) = tile.split_at(dim);
            let (r1, rest) = rest.split_at(dim);
            let (r2, r3) = rest.split_at(dim);
            let r = [r0, r1, r2, r3];
            let mut acc = [[_mm512_setzero_ps(); ROW_TILE]; QUERY_BLOCK];
            let mut c = 0;
            while c < whole {
                // SAFETY: `c + 16 <= whole <= dim`, the length of every
                // query and row slice. (Spelled out: `array::from_fn`
                // here is not always inlined.)
                let q: [__m512; QUERY_BLOCK] = unsafe {
                    [
                        _mm512_loadu_ps(qs[0].as_ptr().add(c)),
                        _mm512_loadu_ps(qs[1].as_ptr().add(c)),
                        _mm512_loadu_ps(qs[2].as_ptr().add(c)),
                        _mm512_loadu_ps(qs[3].as_ptr().add(c)),
                    ]
                };
                for j in 0..ROW_TILE {
                    // SAFETY: as above.
                    let y = unsafe { _mm512_loadu_ps(r[j].as_ptr().add(c)) };
                    for i in 0..QUERY_BLOCK {
                        let t = if L2 {
                            let d = _mm512_sub_ps(q[i], y);
                            _mm512_mul_ps(d, d)
                        } else {
                            _mm512_mul_ps(q[i], y)
                        };
                        acc[i][j] = _mm512_add_ps(acc[i][j], t);
                    }
                }
                c += LANES;
            }
            let [a0, a1, a2, a3] = acc;
            let flat: [__m512; 16] = [
                a0[0], a0[1], a0[2], a0[3], a1[0], a1[1], a1[2], a1[3], a2[0], a2[1], a2[2], a2[3],
                a3[0], a3[1], a3[2], a3[3],
            ];
            let sums = fold_sixteen(&flat);
            for i in 0..QUERY_BLOCK {
                for j in 0..ROW_TILE {
                    let mut s = sums[i * ROW_TILE + j];
                    for (x, y) in qs[i][whole..].iter().zip(&r[j][whole..]) {
                        s += super::term(*x, *y, op);
                    }
                    outs[i].push(s);
                }
            }
        }
        let rest = tiles.remainder();
        for i in 0..QUERY_BLOCK {
            let mut tail = Vec::new();
            sums_rows_inner(qs[i], rest, op, &mut tail);
            outs[i].extend_from_slice(&tail);
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

    /// The pairwise tree the register fold applies, written out.
    fn pairwise(l: [f32; LANES]) -> f32 {
        let h: [f32; 8] = std::array::from_fn(|i| l[i] + l[i + 8]);
        let q: [f32; 4] = std::array::from_fn(|i| h[i] + h[i + 4]);
        (q[0] + q[2]) + (q[1] + q[3])
    }

    proptest! {
        /// On AVX-512 the fast sum folds its lanes by the pairwise tree.
        #[test]
        fn fast_sum_folds_lanes_pairwise(
            values in proptest::collection::vec(-1e6f32..1e6, 32..200),
        ) {
            let n = values.len() / 2 / LANES * LANES;
            let (a, b) = (&values[..n], &values[n..2 * n]);
            for op in [LaneOp::Dot, LaneOp::L2] {
                #[cfg(target_arch = "x86_64")]
                if let Some(lanes) = x86::lane_sums(a, b, op) {
                    prop_assert_eq!(fast_sum(a, b, op).to_bits(), pairwise(lanes).to_bits());
                }
            }
        }
    }

    proptest! {
        /// A block of queries gets each query's own row sums, bit for bit.
        #[test]
        fn block_sums_are_each_querys_sums(
            dim in 1usize..80,
            rows in 0usize..11,
            seed in proptest::collection::vec(-1e3f32..1e3, 1..64),
        ) {
            let value = |k: usize| seed[k % seed.len()] * (1.0 + (k % 7) as f32 * 0.37);
            let queries: Vec<Vec<f32>> =
                (0..QUERY_BLOCK).map(|i| (0..dim).map(|k| value(k * 3 + i * 11)).collect()).collect();
            let data: Vec<f32> = (0..rows * dim).map(|k| value(k * 5 + 1)).collect();
            for op in [LaneOp::Dot, LaneOp::L2] {
                let mut outs: [Vec<f32>; QUERY_BLOCK] = Default::default();
                let qs: [&[f32]; QUERY_BLOCK] = std::array::from_fn(|i| queries[i].as_slice());
                fast_sums_rows_block(qs, &data, op, &mut outs);
                for (q, out) in queries.iter().zip(&outs) {
                    let mut one = Vec::new();
                    fast_sums_rows(q, &data, op, &mut one);
                    prop_assert_eq!(out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                                    one.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
                }
            }
        }
    }

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
