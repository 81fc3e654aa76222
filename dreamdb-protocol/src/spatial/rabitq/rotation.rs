//! The RaBitQ random rotation: a randomized Hadamard transform.
//!
//! RaBitQ needs a random orthogonal map `R`. A dense Gaussian matrix
//! orthonormalised by Gram–Schmidt costs `O(D²)` per vector and its
//! f32 dot products would need the left-fold reference order to be
//! reproducible. DreamDB uses a structured rotation instead (as the RaBitQ
//! library's FHT rotator does): pad the vector with zeros to
//! `n = max(64, next_power_of_two(dim))` and apply three rounds of
//!
//! ```text
//! x ← x ⊙ s_r          (random ±1 signs from the seed)
//! x ← FWHT(x) · (1/√n)  (fast Walsh–Hadamard transform, fixed butterflies)
//! ```
//!
//! Every step is a fixed sequence of IEEE f32 additions, subtractions and
//! multiplications, so the result is bit-identical on every platform and
//! costs `O(n log n)`. The signs come from the ChaCha20 stream
//! `("dreamdb.rabitq.rotation", seed)`: for each round, `n / 64` calls of
//! `next_u64()`, bit `j` of word `w` giving the sign of coordinate
//! `64 w + j` (1 → −1).

use dreamdb_core::random::DeterministicStream;

/// The stream domain of the rotation signs.
pub const DOMAIN_ROTATION: &str = "dreamdb.rabitq.rotation";
/// Number of sign-flip + Hadamard rounds.
pub const ROUNDS: usize = 3;

/// The padded dimension for `dim`: `max(64, next_power_of_two(dim))`.
pub fn padded_dim(dim: usize) -> usize {
    dim.next_power_of_two().max(64)
}

/// A randomized Hadamard rotation of `n`-vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    n: usize,
    /// `ROUNDS × n` sign multipliers (±1.0).
    signs: Vec<f32>,
    scale: f32,
}

impl Rotation {
    /// The rotation for padded dimension `n` (a power of two ≥ 64) and seed.
    pub fn new(n: usize, seed: u64) -> Rotation {
        let mut stream = DeterministicStream::from_seed(seed, DOMAIN_ROTATION);
        let mut signs = Vec::with_capacity(ROUNDS * n);
        for _ in 0..ROUNDS {
            for _ in 0..n / 64 {
                let w = stream.next_u64();
                for j in 0..64 {
                    signs.push(if (w >> j) & 1 == 1 { -1.0 } else { 1.0 });
                }
            }
        }
        Rotation {
            n,
            signs,
            scale: (1.0 / (n as f64).sqrt()) as f32,
        }
    }

    /// The padded dimension.
    pub fn n(&self) -> usize {
        self.n
    }

    /// `R(x)`: `x` zero-padded to `n`, then the three rounds.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let mut v = Vec::with_capacity(self.n);
        self.apply_into(x, &mut v);
        v
    }

    /// [`Rotation::apply`] into a reused buffer.
    pub fn apply_into(&self, x: &[f32], v: &mut Vec<f32>) {
        v.clear();
        v.extend(x.iter().take(self.n));
        v.resize(self.n, 0.0);
        for r in 0..ROUNDS {
            let signs = &self.signs[r * self.n..(r + 1) * self.n];
            for (x, s) in v.iter_mut().zip(signs) {
                *x *= s;
            }
            fwht(v);
            for x in v.iter_mut() {
                *x *= self.scale;
            }
        }
    }

    /// `R⁻¹(x)` for an `n`-vector: the rounds undone in reverse order
    /// (Hadamard and scale, then the signs).
    pub fn apply_inverse(&self, x: &[f32]) -> Vec<f32> {
        let mut v = x.to_vec();
        v.resize(self.n, 0.0);
        for r in (0..ROUNDS).rev() {
            fwht(&mut v);
            for x in v.iter_mut() {
                *x *= self.scale;
            }
            let signs = &self.signs[r * self.n..(r + 1) * self.n];
            for (x, s) in v.iter_mut().zip(signs) {
                *x *= s;
            }
        }
        v
    }
}

/// Width of the blocks [`fwht`] takes its first levels in.
const SMALL_LEVELS_BLOCK: usize = 16;

/// Levels `h = 1, 2, 4, 8` of [`fwht`] on one aligned 16-block.
#[inline]
fn fwht_small_levels(b: &mut [f32; SMALL_LEVELS_BLOCK]) {
    let mut h = 1;
    while h < SMALL_LEVELS_BLOCK {
        let mut i = 0;
        while i < SMALL_LEVELS_BLOCK {
            for j in i..i + h {
                let (x, y) = (b[j], b[j + h]);
                b[j] = x + y;
                b[j + h] = x - y;
            }
            i += 2 * h;
        }
        h *= 2;
    }
}

/// In-place unnormalised fast Walsh–Hadamard transform: for `h = 1, 2, 4,
/// …` and each block start `i` (step `2h`), each `j` in `i..i+h`:
/// `(a, b) = (v[j], v[j+h]); v[j] = a + b; v[j+h] = a − b`.
pub fn fwht(v: &mut [f32]) {
    let n = v.len();
    let mut h = 1;
    // The levels h = 1, 2, 4, 8 stay within aligned 16-blocks, so each
    // block can take all four at once: the same butterflies on the same
    // operands (the same bits), unrolled, instead of thousands of
    // one-pair inner loops.
    if n >= SMALL_LEVELS_BLOCK && n.is_power_of_two() {
        for block in v.chunks_exact_mut(SMALL_LEVELS_BLOCK) {
            if let Ok(block) = <&mut [f32; SMALL_LEVELS_BLOCK]>::try_from(block) {
                fwht_small_levels(block);
            }
        }
        h = SMALL_LEVELS_BLOCK;
    }
    while h < n {
        for block in v.chunks_exact_mut(2 * h) {
            let (lo, hi) = block.split_at_mut(h);
            for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
                let (x, y) = (*a, *b);
                *a = x + y;
                *b = x - y;
            }
        }
        h *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The transform as its doc defines it, one level at a time.
    fn fwht_by_definition(v: &mut [f32]) {
        let n = v.len();
        let mut h = 1;
        while h < n {
            let mut i = 0;
            while i + 2 * h <= n {
                for j in i..i + h {
                    let (x, y) = (v[j], v[j + h]);
                    v[j] = x + y;
                    v[j + h] = x - y;
                }
                i += 2 * h;
            }
            h *= 2;
        }
    }

    proptest! {
        /// Taking the first four levels per 16-block changes no bit.
        #[test]
        fn fwht_is_the_definition_bit_for_bit(
            log in 0u32..11,
            seed in proptest::collection::vec(-1e4f32..1e4, 1..97),
        ) {
            let n = 1usize << log;
            let v: Vec<f32> = (0..n).map(|i| seed[i % seed.len()] * (1.0 + (i % 13) as f32 * 0.1)).collect();
            let (mut fast, mut slow) = (v.clone(), v);
            fwht(&mut fast);
            fwht_by_definition(&mut slow);
            prop_assert_eq!(
                fast.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                slow.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}
