//! The content-addressed object store: immutable objects over any
//! [`Connector`].
//!
//! Every immutable DreamDB object is stored under its BLAKE3 content hash
//! at `objects/<2 hex of the digest>/<66-hex text form>` (spec/0002 §5), and
//! everything read back is verified: the bytes must hash to the name they
//! were read under, typed values must be canonical CBOR, and byte ranges
//! read with an expected hash (a track entry's run hash) must match it.
//! A corrupt or truncated object is a typed [`StoreError`] naming it, never
//! wrong data.
//!
//! Because objects never change, an [`ObjectStore`] keeps a session cache
//! of objects it has read or written, bounded in bytes and shared by every
//! clone, so warm reads cost no I/O. It also remembers which objects it
//! wrote in the last [`WRITE_MEMORY`], so writing the same object twice in
//! one operation costs one PUT. That memory is short on purpose: knowing
//! an object once existed is no proof that GC kept it (spec/0006 §4), so an
//! older write, or an object merely read, is written again — which also
//! refreshes its age for GC's grace period.

mod cache;
mod error;
mod links;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dreamdb_connector::{ByteRange, Connector, ConnectorExt, KeyError, ObjectKey, PutMode};
use dreamdb_core::cbor;
use dreamdb_core::ContentHash;
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use cache::CacheStats;
pub use error::{IntegrityReason, StoreError};
pub use links::links;

use cache::{ByteLru, CacheKey};

/// Default bound of the session cache: 64 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// Default number of concurrent PUTs in [`ObjectStore::put_many`].
pub const DEFAULT_PUT_CONCURRENCY: usize = 16;

/// How many hashes the "known to exist" set remembers before it starts
/// over (64 MiB of entries at most).
const KNOWN_MAX: usize = 1 << 20;

/// How long a write of this session lets a later write of the same object
/// be skipped. GC's grace period must exceed the longest write plus this
/// (spec/0006 §4).
pub const WRITE_MEMORY: Duration = Duration::from_secs(60);

/// The storage key of the object named `hash`:
/// `objects/<first two hex digits of the digest>/<66-hex text form>`.
pub fn object_key(hash: &ContentHash) -> Result<ObjectKey, KeyError> {
    ObjectKey::new(format!(
        "objects/{:02x}/{}",
        hash.digest()[0],
        hash.to_hex()
    ))
}

/// Counters of what an [`ObjectStore`] (and its clones) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Whole-object reads sent to the connector.
    pub gets: u64,
    /// Ranged reads sent to the connector.
    pub range_gets: u64,
    /// Existence checks sent to the connector.
    pub heads: u64,
    /// PUTs sent to the connector.
    pub puts: u64,
    /// Writes skipped because the object was known to exist.
    pub puts_skipped: u64,
    /// Bytes sent by PUTs.
    pub bytes_written: u64,
    /// Bytes received by reads.
    pub bytes_read: u64,
    /// The session cache.
    pub cache: CacheStats,
}

#[derive(Debug, Default)]
struct Counters {
    gets: AtomicU64,
    range_gets: AtomicU64,
    heads: AtomicU64,
    puts: AtomicU64,
    puts_skipped: AtomicU64,
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    connector: Arc<dyn Connector>,
    cache: Mutex<ByteLru>,
    /// Objects known to exist, with when this session wrote them (`None`:
    /// read or found, never a reason to skip a write).
    known: Mutex<HashMap<ContentHash, Option<Instant>>>,
    concurrency: usize,
    counters: Counters,
}

/// Content-addressed objects over a [`Connector`], with verification on
/// every read and a byte-bounded session cache. Cheap to clone; clones
/// share the cache.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the state consistent, so a poisoned
    // lock (a panic elsewhere while holding it) is simply taken over.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ObjectStore {
    /// A store over `connector` with a session cache of at most
    /// `cache_bytes` bytes (0 disables caching).
    pub fn new(connector: Arc<dyn Connector>, cache_bytes: u64) -> Self {
        Self::with_concurrency(connector, cache_bytes, DEFAULT_PUT_CONCURRENCY)
    }

    /// A store like [`ObjectStore::new`] that keeps `concurrency` PUTs in
    /// flight in [`ObjectStore::put_many`] (at least 1).
    pub fn with_concurrency(
        connector: Arc<dyn Connector>,
        cache_bytes: u64,
        concurrency: usize,
    ) -> Self {
        ObjectStore {
            inner: Arc::new(Inner {
                connector,
                cache: Mutex::new(ByteLru::new(cache_bytes)),
                known: Mutex::new(HashMap::new()),
                concurrency: concurrency.max(1),
                counters: Counters::default(),
            }),
        }
    }

    /// The connector underneath.
    pub fn connector(&self) -> &Arc<dyn Connector> {
        &self.inner.connector
    }

    /// What this store and its clones have done so far.
    pub fn stats(&self) -> StoreStats {
        let c = &self.inner.counters;
        StoreStats {
            gets: c.gets.load(Ordering::Relaxed),
            range_gets: c.range_gets.load(Ordering::Relaxed),
            heads: c.heads.load(Ordering::Relaxed),
            puts: c.puts.load(Ordering::Relaxed),
            puts_skipped: c.puts_skipped.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            bytes_read: c.bytes_read.load(Ordering::Relaxed),
            cache: lock(&self.inner.cache).stats(),
        }
    }

    fn key(hash: &ContentHash) -> Result<ObjectKey, StoreError> {
        object_key(hash).map_err(|e| StoreError::Connector {
            hash: *hash,
            source: Box::new(e.into()),
        })
    }

    /// Records that `hash` exists; `written` when this session just wrote
    /// it (a read never upgrades an entry to "written", nor downgrades it).
    fn remember(&self, hash: ContentHash, written: bool) {
        let mut known = lock(&self.inner.known);
        if known.len() >= KNOWN_MAX {
            known.clear();
        }
        let stamp = written.then(Instant::now);
        let entry = known.entry(hash).or_insert(None);
        if stamp.is_some() {
            *entry = stamp;
        }
    }

    /// Whether this session wrote `hash` within [`WRITE_MEMORY`].
    fn written_recently(&self, hash: &ContentHash) -> bool {
        lock(&self.inner.known)
            .get(hash)
            .copied()
            .flatten()
            .is_some_and(|at| at.elapsed() < WRITE_MEMORY)
    }

    /// Whether `hash` is known to exist (written, read or found).
    fn is_known(&self, hash: &ContentHash) -> bool {
        lock(&self.inner.known).contains_key(hash)
            || lock(&self.inner.cache).contains(&CacheKey::Object(*hash))
    }

    fn cache_insert(&self, hash: ContentHash, bytes: &Bytes) {
        lock(&self.inner.cache).insert(CacheKey::Object(hash), bytes.clone());
    }

    /// Stores `bytes` under their hash and returns it. Content-addressed
    /// objects are written with [`PutMode::Overwrite`] (the bytes under a
    /// key can only ever be these); a write this session made within
    /// [`WRITE_MEMORY`] is skipped, anything else is written (again).
    pub async fn put_bytes(&self, bytes: impl Into<Bytes>) -> Result<ContentHash, StoreError> {
        let bytes = bytes.into();
        let hash = ContentHash::of(&bytes);
        self.put_hashed(hash, bytes).await?;
        Ok(hash)
    }

    /// Stores bytes whose hash the caller already computed (crate-internal:
    /// a wrong hash here would store an object under a false name).
    pub(crate) async fn put_hashed(
        &self,
        hash: ContentHash,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        if self.written_recently(&hash) {
            self.inner
                .counters
                .puts_skipped
                .fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let key = Self::key(&hash)?;
        let len = bytes.len() as u64;
        self.inner.counters.puts.fetch_add(1, Ordering::Relaxed);
        self.inner
            .counters
            .bytes_written
            .fetch_add(len, Ordering::Relaxed);
        // Any outcome means the object is there: Overwrite never loses a
        // race, and identical bytes under the key are the same object.
        let _outcome = self
            .inner
            .connector
            .put(&key, bytes.clone(), PutMode::Overwrite)
            .await
            .map_err(|e| StoreError::from_connector(hash, e))?;
        self.remember(hash, true);
        self.cache_insert(hash, &bytes);
        Ok(())
    }

    /// Encodes `value` as canonical CBOR and stores it.
    pub async fn put<T: Serialize + ?Sized>(&self, value: &T) -> Result<ContentHash, StoreError> {
        let bytes = cbor::to_vec(value).map_err(StoreError::Encode)?;
        self.put_bytes(bytes).await
    }

    /// Stores many objects, up to the store's concurrency at a time, and
    /// returns their hashes in input order.
    pub async fn put_many<I>(&self, objects: I) -> Result<Vec<ContentHash>, StoreError>
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        let hashed: Vec<(ContentHash, Bytes)> = objects
            .into_iter()
            .map(|b| {
                let bytes = b.into();
                (ContentHash::of(&bytes), bytes)
            })
            .collect();
        let hashes = hashed.iter().map(|(h, _)| *h).collect();
        self.put_many_hashed(hashed).await?;
        Ok(hashes)
    }

    /// [`ObjectStore::put_many`] for objects already hashed (crate-internal).
    pub(crate) async fn put_many_hashed(
        &self,
        objects: Vec<(ContentHash, Bytes)>,
    ) -> Result<(), StoreError> {
        futures::stream::iter(objects)
            .map(|(hash, bytes)| async move { self.put_hashed(hash, bytes).await })
            .buffer_unordered(self.inner.concurrency)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Reads the object named `hash` and verifies that its bytes hash to
    /// that name. Served from the session cache when possible.
    pub async fn get_bytes(&self, hash: &ContentHash) -> Result<Bytes, StoreError> {
        if let Some(bytes) = lock(&self.inner.cache).get(&CacheKey::Object(*hash)) {
            return Ok(bytes);
        }
        let key = Self::key(hash)?;
        self.inner.counters.gets.fetch_add(1, Ordering::Relaxed);
        let found = self
            .inner
            .connector
            .get(&key)
            .await
            .map_err(|e| StoreError::from_connector(*hash, e))?;
        self.inner
            .counters
            .bytes_read
            .fetch_add(found.bytes.len() as u64, Ordering::Relaxed);
        let actual = ContentHash::of(&found.bytes);
        if actual != *hash {
            return Err(StoreError::Integrity {
                hash: *hash,
                reason: IntegrityReason::HashMismatch { actual },
            });
        }
        self.remember(*hash, false);
        self.cache_insert(*hash, &found.bytes);
        Ok(found.bytes)
    }

    /// Reads the object named `hash`, verifies it, and decodes it strictly
    /// (non-canonical CBOR is an integrity error naming the rule broken; a
    /// value that does not re-encode to the same bytes is refused too).
    pub async fn get<T: DeserializeOwned + Serialize>(
        &self,
        hash: &ContentHash,
    ) -> Result<T, StoreError> {
        let bytes = self.get_bytes(hash).await?;
        cbor::from_slice(&bytes).map_err(|e| StoreError::Integrity {
            hash: *hash,
            reason: IntegrityReason::Cbor(e),
        })
    }

    /// Reads the object named `hash` as a strictly decoded CBOR value.
    pub async fn get_value(&self, hash: &ContentHash) -> Result<ciborium::Value, StoreError> {
        let bytes = self.get_bytes(hash).await?;
        cbor::decode_value(&bytes).map_err(|e| StoreError::Integrity {
            hash: *hash,
            reason: IntegrityReason::Cbor(e),
        })
    }

    /// The objects `hash` links to (every tag-65521 hash in it).
    pub async fn links_of(&self, hash: &ContentHash) -> Result<Vec<ContentHash>, StoreError> {
        Ok(links(&self.get_value(hash).await?))
    }

    /// Reads `range` of the object named `hash`. The whole object's hash
    /// cannot be checked from a part of it, so when the caller knows the
    /// range's own hash (a track entry's run hash) it passes it as
    /// `expected_range_hash` and the bytes are verified against it; verified
    /// ranges are cached (a warm query reads its runs from memory, unhashed
    /// again). A range of a cached (verified) object is cut from the cache.
    pub async fn get_range(
        &self,
        hash: &ContentHash,
        range: ByteRange,
        expected_range_hash: Option<ContentHash>,
    ) -> Result<Bytes, StoreError> {
        self.read_range(hash, range, expected_range_hash, true)
            .await
    }

    /// [`ObjectStore::get_range`] for a scan, whose ranges are read once:
    /// verified the same way, served from the cache when there, but never
    /// added to it (a scan would evict the working set and grow memory to
    /// the bound for nothing).
    pub async fn get_range_uncached(
        &self,
        hash: &ContentHash,
        range: ByteRange,
        expected_range_hash: Option<ContentHash>,
    ) -> Result<Bytes, StoreError> {
        self.read_range(hash, range, expected_range_hash, false)
            .await
    }

    async fn read_range(
        &self,
        hash: &ContentHash,
        range: ByteRange,
        expected_range_hash: Option<ContentHash>,
        keep: bool,
    ) -> Result<Bytes, StoreError> {
        if let Some(bytes) =
            expected_range_hash.and_then(|verified| self.cached_range(hash, range, verified))
        {
            return Ok(bytes);
        }
        let cached = lock(&self.inner.cache).get(&CacheKey::Object(*hash));
        let bytes = match cached {
            Some(whole) => {
                if !range.fits(whole.len() as u64) {
                    return Err(StoreError::InvalidRange { hash: *hash, range });
                }
                // `fits` bounds both ends by the object's length.
                whole.slice(range.start as usize..range.end as usize)
            }
            None => {
                let key = Self::key(hash)?;
                self.inner
                    .counters
                    .range_gets
                    .fetch_add(1, Ordering::Relaxed);
                let bytes = self
                    .inner
                    .connector
                    .get_range(&key, range)
                    .await
                    .map_err(|e| StoreError::from_connector(*hash, e))?;
                self.inner
                    .counters
                    .bytes_read
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                if bytes.len() as u64 != range.len() {
                    return Err(StoreError::Integrity {
                        hash: *hash,
                        reason: IntegrityReason::Invalid(format!(
                            "range {range} returned {} bytes",
                            bytes.len()
                        )),
                    });
                }
                bytes
            }
        };
        if let Some(expected) = expected_range_hash {
            self.check_range(hash, range, expected, &bytes, keep)?;
        }
        Ok(bytes)
    }

    /// The bytes of `range` of `hash` when the session cache holds them,
    /// verified against `verified`: no I/O and no hashing.
    pub fn cached_range(
        &self,
        hash: &ContentHash,
        range: ByteRange,
        verified: ContentHash,
    ) -> Option<Bytes> {
        lock(&self.inner.cache).get(&CacheKey::Range {
            object: *hash,
            offset: range.start,
            len: range.len(),
            verified,
        })
    }

    /// Checks `bytes`, read as `range` of `hash` (perhaps inside a larger
    /// read), against their BLAKE3 hash `expected`; when `keep`, the
    /// session cache then keeps them, so later reads of the range
    /// ([`ObjectStore::get_range`], [`ObjectStore::cached_range`]) skip
    /// the I/O and the hash.
    pub fn check_range(
        &self,
        hash: &ContentHash,
        range: ByteRange,
        expected: ContentHash,
        bytes: &Bytes,
        keep: bool,
    ) -> Result<(), StoreError> {
        let actual = ContentHash::of(bytes);
        if bytes.len() as u64 != range.len() || actual != expected {
            return Err(StoreError::Integrity {
                hash: *hash,
                reason: IntegrityReason::RangeHashMismatch {
                    range,
                    expected,
                    actual,
                },
            });
        }
        if keep {
            let key = CacheKey::Range {
                object: *hash,
                offset: range.start,
                len: range.len(),
                verified: expected,
            };
            lock(&self.inner.cache).insert(key, bytes.clone());
        }
        Ok(())
    }

    /// Whether the object named `hash` exists (answered without I/O when
    /// this session wrote or read it).
    pub async fn exists(&self, hash: &ContentHash) -> Result<bool, StoreError> {
        if self.is_known(hash) {
            return Ok(true);
        }
        let key = Self::key(hash)?;
        self.inner.counters.heads.fetch_add(1, Ordering::Relaxed);
        let found = self
            .inner
            .connector
            .exists(&key)
            .await
            .map_err(|e| StoreError::from_connector(*hash, e))?;
        if found {
            self.remember(*hash, false);
        }
        Ok(found)
    }
}
