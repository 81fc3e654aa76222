//! A small process-wide cache of values derived from immutable,
//! content-addressed objects, shared by every session of the process.
//!
//! Decoding some objects costs more than the work that reads them (a warm
//! query's scan, an iteration of a small set): a spatial index's centroids,
//! a compressor's rotation, the cell entries of a track root, the raw-row
//! geometry of a bucket. Each is a pure function of content hashes, so an
//! entry never goes stale; the caches are bounded by entry count and
//! cleared only for cold measurements
//! ([`clear_decoded_caches`](super::query::clear_decoded_caches)).

use std::sync::{Arc, Mutex, MutexGuard};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A first-in-first-out cache of at most `cap` entries.
pub(crate) struct Kept<K, V> {
    cap: usize,
    entries: Mutex<Vec<(K, Arc<V>)>>,
}

impl<K: PartialEq, V> Kept<K, V> {
    pub(crate) const fn new(cap: usize) -> Self {
        Kept {
            cap,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The value under `key`, if kept.
    pub(crate) fn get(&self, key: &K) -> Option<Arc<V>> {
        lock(&self.entries)
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// Drops every entry.
    pub(crate) fn clear(&self) {
        lock(&self.entries).clear();
    }

    /// The value under `key`, inserting `make()` if there is none.
    pub(crate) fn get_or_insert(&self, key: K, make: impl FnOnce() -> V) -> Arc<V> {
        let mut entries = lock(&self.entries);
        if let Some((_, v)) = entries.iter().find(|(k, _)| *k == key) {
            return v.clone();
        }
        if entries.len() >= self.cap {
            entries.remove(0);
        }
        let v = Arc::new(make());
        entries.push((key, v.clone()));
        v
    }
}
