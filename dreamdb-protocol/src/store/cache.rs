//! A byte-bounded LRU cache of immutable objects and of verified byte
//! ranges of them, keyed by content hash (and range).
//!
//! Objects never change under their hash, so a cached copy never goes
//! stale; the only question is memory. The cache is bounded in *bytes* (not
//! entries), because objects range from a few hundred bytes (a small index
//! page) to megabytes (a segment). Recency is a logical clock: every hit or
//! insert stamps the entry with the next tick, and eviction removes the
//! smallest stamp first (an ordered map from stamp to hash), so every
//! operation is `O(log n)`.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use dreamdb_core::ContentHash;

/// What a cache entry holds: a whole object, or a byte range of one that
/// was verified against the range hash the caller knew (a track entry's
/// run hash). Either can never go stale: the object under a hash never
/// changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CacheKey {
    /// The whole object named by the hash.
    Object(ContentHash),
    /// Bytes `offset .. offset + len` of the object, whose BLAKE3 is
    /// `verified` (checked when they were read).
    Range {
        object: ContentHash,
        offset: u64,
        len: u64,
        verified: ContentHash,
    },
}

/// A snapshot of the cache's occupancy and effectiveness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// The bound, in bytes.
    pub capacity_bytes: u64,
    /// Bytes currently held (always `<= capacity_bytes`).
    pub used_bytes: u64,
    /// The largest `used_bytes` ever reached.
    pub peak_bytes: u64,
    /// Objects currently held.
    pub entries: u64,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that missed.
    pub misses: u64,
    /// Objects evicted to stay under the bound.
    pub evictions: u64,
}

/// The cache proper; callers wrap it in a mutex.
#[derive(Debug)]
pub(crate) struct ByteLru {
    map: HashMap<CacheKey, (Bytes, u64)>,
    order: BTreeMap<u64, CacheKey>,
    tick: u64,
    stats: CacheStats,
}

impl ByteLru {
    /// An empty cache holding at most `capacity_bytes` bytes of objects.
    pub(crate) fn new(capacity_bytes: u64) -> Self {
        ByteLru {
            map: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            stats: CacheStats {
                capacity_bytes,
                ..CacheStats::default()
            },
        }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// Whether an object of `len` bytes is worth caching: objects larger
    /// than a quarter of the bound would evict too much of the working set.
    pub(crate) fn admits(&self, len: usize) -> bool {
        (len as u64).saturating_mul(4) <= self.stats.capacity_bytes
    }

    /// The cached object, marking it most recently used.
    pub(crate) fn get(&mut self, hash: &CacheKey) -> Option<Bytes> {
        let tick = self.next_tick();
        match self.map.get_mut(hash) {
            Some((bytes, stamp)) => {
                self.order.remove(stamp);
                *stamp = tick;
                self.order.insert(tick, *hash);
                self.stats.hits += 1;
                Some(bytes.clone())
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Whether the object is cached (does not change recency).
    pub(crate) fn contains(&self, hash: &CacheKey) -> bool {
        self.map.contains_key(hash)
    }

    /// Caches an object, evicting least recently used objects until it
    /// fits. Objects that [`ByteLru::admits`] refuses are not cached.
    pub(crate) fn insert(&mut self, hash: CacheKey, bytes: Bytes) {
        if !self.admits(bytes.len()) {
            return;
        }
        let tick = self.next_tick();
        if let Some((_, stamp)) = self.map.get_mut(&hash) {
            self.order.remove(stamp);
            *stamp = tick;
            self.order.insert(tick, hash);
            return;
        }
        // A `Bytes` may be a slice of a larger buffer (an HTTP client's read
        // buffer, a whole object a range was cut from): holding it would pin
        // the whole buffer while the bound counts only the slice. The cache
        // keeps its own exact-size copy, so the bound is real memory.
        let bytes = Bytes::copy_from_slice(&bytes);
        let len = bytes.len() as u64;
        while self.stats.used_bytes + len > self.stats.capacity_bytes {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            if let Some((old, _)) = self.map.remove(&victim) {
                self.stats.used_bytes -= old.len() as u64;
                self.stats.evictions += 1;
            }
        }
        if self.stats.used_bytes + len > self.stats.capacity_bytes {
            return;
        }
        self.stats.used_bytes += len;
        self.stats.peak_bytes = self.stats.peak_bytes.max(self.stats.used_bytes);
        self.map.insert(hash, (bytes, tick));
        self.order.insert(tick, hash);
    }

    /// Current statistics.
    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.map.len() as u64,
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_and_respects_bound() {
        let mut lru = ByteLru::new(100);
        let h = |i: u8| CacheKey::Object(ContentHash::of(&[i]));
        lru.insert(h(1), Bytes::from(vec![0; 20]));
        lru.insert(h(2), Bytes::from(vec![0; 20]));
        lru.insert(h(3), Bytes::from(vec![0; 20]));
        assert!(lru.get(&h(1)).is_some());
        lru.insert(h(4), Bytes::from(vec![0; 25]));
        lru.insert(h(5), Bytes::from(vec![0; 25]));
        // 1 was used recently, so 2 is the first victim.
        assert!(lru.contains(&h(1)));
        assert!(!lru.contains(&h(2)));
        assert!(lru.stats().used_bytes <= 100);
        assert_eq!(lru.stats().peak_bytes, lru.stats().peak_bytes.min(100));
        // Too large for the cache: refused, nothing evicted.
        lru.insert(h(6), Bytes::from(vec![0; 26]));
        assert!(!lru.contains(&h(6)));
    }
}
