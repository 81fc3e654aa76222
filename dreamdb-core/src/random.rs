//! Deterministic random streams: ChaCha20 keystreams keyed from a seed.
//!
//! LSH hyperplanes, k-means seeding, RaBitQ rotations and shuffles must
//! come out bit-identical on every platform and in every release, or index
//! objects built from the same inputs would get different content hashes.
//! So DreamDB never uses an OS or library RNG for them; it uses the
//! ChaCha20 keystream (RFC 8439, via the RustCrypto `chacha20` crate) and
//! derives every number from keystream bytes with fixed, documented
//! arithmetic.
//!
//! - [`DeterministicStream::from_seed`] keys the stream with
//!   `blake3::derive_key("dreamdb 2026-11 chacha20 stream v1", domain ‖ 0x00 ‖ seed_le)`,
//!   nonce all zero, block counter 0. The `domain` (e.g. `"dreamdb.lsh"`)
//!   separates uses: the same seed gives independent streams in different
//!   domains.
//! - Integers are little-endian keystream bytes; [`DeterministicStream::below`]
//!   is unbiased by rejection sampling.
//! - Floats are computed from integers, and the normal deviate uses the
//!   pure-Rust `libm` crate in f64, never the platform's math library.
//!
//! Each method documents exactly how many keystream bytes it consumes,
//! because that is part of the stream's definition.

use std::fmt;
use std::num::NonZeroU64;

use chacha20::cipher::{KeyIvInit, StreamCipherCore, StreamCipherSeekCore};
use chacha20::{ChaChaCore, Key, Nonce};

type ChaCha20Core = ChaChaCore<chacha20::cipher::consts::U10>;

/// The BLAKE3 key-derivation context of [`DeterministicStream::from_seed`].
pub const SEED_CONTEXT: &str = "dreamdb 2026-11 chacha20 stream v1";

const BLOCK_LEN: usize = 64;

/// Why a random draw could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RandomError {
    /// [`DeterministicStream::below`] was asked for a number below 0.
    #[error("cannot draw a number below 0: the range is empty")]
    EmptyRange,
}

impl RandomError {
    /// A stable kebab-case identifier of the error kind.
    pub fn class(&self) -> &'static str {
        match self {
            RandomError::EmptyRange => "empty-range",
        }
    }
}

/// A ChaCha20 keystream read as bytes, integers and floats.
///
/// The 32-bit block counter allows 2^32 blocks (256 GiB) per nonce. Rather
/// than wrap around and repeat, the stream then carries into the nonce,
/// read as three little-endian 32-bit words, first word first: with the
/// all-zero nonce of [`DeterministicStream::from_seed`] that is exactly the
/// original 64-bit-counter ChaCha20 layout. No DreamDB use comes anywhere
/// near this; it is defined so the stream is total and never repeats
/// (only after 2^128 blocks would the nonce itself wrap).
#[derive(Clone)]
pub struct DeterministicStream {
    key: [u8; 32],
    nonce: [u8; 12],
    /// Counter of the next block to generate.
    counter: u32,
    /// The current keystream block.
    block: [u8; BLOCK_LEN],
    /// Bytes of `block` already used (`BLOCK_LEN` means none left).
    used: usize,
}

impl fmt::Debug for DeterministicStream {
    /// Shows the position but not the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeterministicStream")
            .field("next_block", &self.counter)
            .field("used_in_block", &self.used)
            .finish_non_exhaustive()
    }
}

impl DeterministicStream {
    /// The stream for `seed` in `domain`: key
    /// `blake3::derive_key(SEED_CONTEXT, domain bytes ‖ 0x00 ‖ seed as 8 LE bytes)`,
    /// 12-byte zero nonce, block counter 0.
    pub fn from_seed(seed: u64, domain: &str) -> DeterministicStream {
        let mut material = Vec::with_capacity(domain.len() + 9);
        material.extend_from_slice(domain.as_bytes());
        material.push(0);
        material.extend_from_slice(&seed.to_le_bytes());
        let key = blake3::derive_key(SEED_CONTEXT, &material);
        DeterministicStream::from_key(key, [0; 12], 0)
    }

    /// The raw RFC 8439 ChaCha20 keystream for `key` and `nonce`, starting
    /// at block `counter`.
    pub fn from_key(key: [u8; 32], nonce: [u8; 12], counter: u32) -> DeterministicStream {
        DeterministicStream {
            key,
            nonce,
            counter,
            block: [0; BLOCK_LEN],
            used: BLOCK_LEN,
        }
    }

    fn refill(&mut self) {
        let mut core = ChaCha20Core::new(&Key::from(self.key), &Nonce::from(self.nonce));
        core.set_block_pos(self.counter);
        let mut block = chacha20::cipher::Block::<ChaCha20Core>::default();
        core.write_keystream_block(&mut block);
        self.block.copy_from_slice(&block);
        self.used = 0;
        match self.counter.checked_add(1) {
            Some(next) => self.counter = next,
            None => {
                self.counter = 0;
                // Carry into the nonce words, little-endian, first word first.
                for word in self.nonce.chunks_exact_mut(4) {
                    let mut bytes = [0u8; 4];
                    bytes.copy_from_slice(word);
                    let (value, carry) = u32::from_le_bytes(bytes).overflowing_add(1);
                    word.copy_from_slice(&value.to_le_bytes());
                    if !carry {
                        break;
                    }
                }
            }
        }
    }

    /// Fills `out` with the next `out.len()` keystream bytes.
    pub fn fill_bytes(&mut self, out: &mut [u8]) {
        let mut filled = 0;
        while filled < out.len() {
            if self.used == BLOCK_LEN {
                self.refill();
            }
            let take = (BLOCK_LEN - self.used).min(out.len() - filled);
            out[filled..filled + take].copy_from_slice(&self.block[self.used..self.used + take]);
            self.used += take;
            filled += take;
        }
    }

    /// The next 4 keystream bytes as a little-endian u32.
    pub fn next_u32(&mut self) -> u32 {
        let mut bytes = [0u8; 4];
        self.fill_bytes(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    /// The next 8 keystream bytes as a little-endian u64.
    pub fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.fill_bytes(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    /// A uniform f32 in `[0, 1)`: `(next_u32() >> 8) as f32 * 2^-24`, exact
    /// (every value is a multiple of 2^-24). Consumes 4 bytes.
    pub fn next_f32_unit(&mut self) -> f32 {
        const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
        (self.next_u32() >> 8) as f32 * SCALE
    }

    /// A standard normal f32 by the Box–Muller transform, computed in f64
    /// with the pure-Rust `libm` crate so the result is identical on every
    /// platform:
    ///
    /// - `u1 = ((next_u64() >> 11) + 1) * 2^-53`, in `(0, 1]` (so `ln u1` is
    ///   finite);
    /// - `u2 = (next_u64() >> 11) * 2^-53`, in `[0, 1)`;
    /// - result `(sqrt(-2 ln u1) * cos(2π u2)) as f32`.
    ///
    /// The sine half of the pair is discarded, so every call consumes
    /// exactly 16 bytes and the stream position never depends on history.
    pub fn next_f32_normal(&mut self) -> f32 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        let u1 = ((self.next_u64() >> 11) + 1) as f64 * SCALE;
        let u2 = (self.next_u64() >> 11) as f64 * SCALE;
        let radius = libm::sqrt(-2.0 * libm::log(u1));
        (radius * libm::cos(std::f64::consts::TAU * u2)) as f32
    }

    /// A uniform integer in `[0, n)` for non-zero `n`, without modulo bias:
    /// draws `x = next_u64()` until `x >= 2^64 mod n`, then returns
    /// `x % n`. Consumes 8 bytes per draw; more than one draw happens with
    /// probability below `n / 2^64`.
    pub fn below_nonzero(&mut self, n: NonZeroU64) -> u64 {
        let n = n.get();
        // 2^64 mod n, computed without overflow since n >= 1.
        let threshold = (u64::MAX - (n - 1)) % n;
        loop {
            let x = self.next_u64();
            if x >= threshold {
                return x % n;
            }
        }
    }

    /// Like [`DeterministicStream::below_nonzero`];
    /// [`RandomError::EmptyRange`] (consuming nothing) when `n == 0`.
    pub fn below(&mut self, n: u64) -> Result<u64, RandomError> {
        let n = NonZeroU64::new(n).ok_or(RandomError::EmptyRange)?;
        Ok(self.below_nonzero(n))
    }

    /// Shuffles `items` in place by Fisher–Yates from the end: for `i` from
    /// `len - 1` down to 1, swap `items[i]` with `items[below(i + 1)]`.
    /// Slices of length 0 or 1 consume nothing.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let bound = NonZeroU64::new(i as u64 + 1).unwrap_or(NonZeroU64::MIN);
            let j = self.below_nonzero(bound);
            // j <= i < items.len(), so it fits usize.
            items.swap(i, j as usize);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_carries_into_nonce() {
        let key = [7u8; 32];
        let mut end = DeterministicStream::from_key(key, [0; 12], u32::MAX);
        let mut skip = [0u8; 64];
        end.fill_bytes(&mut skip);
        let mut after = [0u8; 64];
        end.fill_bytes(&mut after);
        let mut next = DeterministicStream::from_key(key, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 0);
        let mut expected = [0u8; 64];
        next.fill_bytes(&mut expected);
        assert_eq!(after, expected);
    }
}
