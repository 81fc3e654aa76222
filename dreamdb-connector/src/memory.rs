//! An in-process backend (`memory://`), for tests and experiments.
//!
//! Objects live in a `BTreeMap` behind one mutex, so every operation,
//! including the compare-and-swap writes, is atomic and listings come out in
//! key order for free. Versions are `m-<n>` from a process-wide counter, so
//! every write (even of the same bytes) yields a version never seen before.
//!
//! [`MemoryConnector::named`] looks stores up in a process-wide registry, so
//! `memory://name` opened twice shares its data; [`MemoryConnector::new`]
//! makes a private store. Named stores live until the process exits.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    ByteRange, Connector, ConnectorError, GetResult, KeyPrefix, ListStream, ObjectKey, ObjectMeta,
    PutMode, PutOutcome, Version,
};

/// How many objects one listing page takes from the map under the lock.
const LIST_PAGE: usize = 1000;

/// The source of `m-<n>` versions, shared by every store in the process.
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

/// Named stores (`memory://name`).
static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<Store>>>> = OnceLock::new();

/// One stored object.
#[derive(Debug, Clone)]
struct Entry {
    bytes: Bytes,
    version: Version,
    modified: SystemTime,
}

/// The shared state of one store: full keys (with any root prefix) to
/// objects.
#[derive(Debug, Default)]
struct Store {
    objects: Mutex<BTreeMap<String, Entry>>,
}

impl Store {
    /// Locks the map. A panic in another thread while holding the lock
    /// cannot leave the map half-updated (every update is one insert or
    /// remove), so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn next_version() -> Version {
    Version::new(format!(
        "m-{}",
        NEXT_VERSION.fetch_add(1, Ordering::Relaxed)
    ))
}

/// An in-memory [`Connector`]. Cloning shares the store.
#[derive(Debug, Clone)]
pub struct MemoryConnector {
    name: Option<String>,
    prefix: KeyPrefix,
    store: Arc<Store>,
}

impl Default for MemoryConnector {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryConnector {
    /// A fresh, private, empty store.
    pub fn new() -> Self {
        MemoryConnector {
            name: None,
            prefix: KeyPrefix::all(),
            store: Arc::new(Store::default()),
        }
    }

    /// The process-wide store called `name`, created empty on first use.
    /// Every connector opened with the same name sees the same objects.
    pub fn named(name: impl Into<String>) -> Self {
        let name = name.into();
        let registry = REGISTRY.get_or_init(|| Mutex::new(HashMap::new()));
        let mut registry = registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let store = registry.entry(name.clone()).or_default().clone();
        MemoryConnector {
            name: Some(name),
            prefix: KeyPrefix::all(),
            store,
        }
    }

    /// This store seen through a root prefix: every key is stored under
    /// `prefix` (nested under any prefix already set), and listings strip it.
    pub fn with_prefix(mut self, prefix: KeyPrefix) -> Self {
        self.prefix = prefix.under(&self.prefix);
        self
    }

    /// The root prefix (empty if none).
    pub fn prefix(&self) -> &KeyPrefix {
        &self.prefix
    }

    fn full(&self, key: &ObjectKey) -> ObjectKey {
        key.under(&self.prefix)
    }

    fn not_found(&self, key: &ObjectKey) -> ConnectorError {
        ConnectorError::NotFound {
            backend: self.describe(),
            key: key.to_string(),
        }
    }

    fn meta(key: &ObjectKey, entry: &Entry) -> ObjectMeta {
        ObjectMeta {
            key: key.clone(),
            size: entry.bytes.len() as u64,
            version: entry.version.clone(),
            last_modified: Some(entry.modified),
        }
    }

    /// One page of a listing: up to [`LIST_PAGE`] objects after the full
    /// key `after`, and the cursor for the next page (`None` at the end).
    fn list_page(
        &self,
        full_prefix: &KeyPrefix,
        after: Option<&str>,
    ) -> (Vec<ObjectMeta>, Option<String>) {
        let start = match after {
            Some(last) => Bound::Excluded(last),
            None => Bound::Included(full_prefix.as_str()),
        };
        let objects = self.store.lock();
        let mut page = Vec::new();
        let mut seen = 0;
        let mut last = None;
        for (key, entry) in objects
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(full_prefix.as_str()))
            .take(LIST_PAGE)
        {
            seen += 1;
            last = Some(key);
            // Stored keys were validated on the way in; a full key equal to
            // the root prefix itself has no name below the root.
            let relative = ObjectKey::new(key.as_str())
                .ok()
                .and_then(|full| full.strip(&self.prefix));
            if let Some(relative) = relative {
                page.push(Self::meta(&relative, entry));
            }
        }
        let next = if seen < LIST_PAGE {
            None
        } else {
            last.cloned()
        };
        (page, next)
    }
}

#[async_trait]
impl Connector for MemoryConnector {
    fn describe(&self) -> String {
        let name = self.name.as_deref().unwrap_or("");
        if self.prefix.as_str().is_empty() {
            format!("memory://{name}")
        } else {
            format!("memory://{name} (prefix {})", self.prefix)
        }
    }

    async fn get(&self, key: &ObjectKey) -> Result<GetResult, ConnectorError> {
        let full = self.full(key);
        let objects = self.store.lock();
        match objects.get(full.as_str()) {
            Some(entry) => Ok(GetResult {
                bytes: entry.bytes.clone(),
                meta: Self::meta(key, entry),
            }),
            None => Err(self.not_found(key)),
        }
    }

    async fn get_range(&self, key: &ObjectKey, range: ByteRange) -> Result<Bytes, ConnectorError> {
        let full = self.full(key);
        let objects = self.store.lock();
        let entry = objects
            .get(full.as_str())
            .ok_or_else(|| self.not_found(key))?;
        let size = entry.bytes.len() as u64;
        if !range.fits(size) {
            return Err(ConnectorError::InvalidRange {
                key: key.to_string(),
                range,
                size,
            });
        }
        // `fits` guarantees start < end <= size, which fits in usize.
        Ok(entry.bytes.slice(range.start as usize..range.end as usize))
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ConnectorError> {
        let full = self.full(key);
        let objects = self.store.lock();
        match objects.get(full.as_str()) {
            Some(entry) => Ok(Self::meta(key, entry)),
            None => Err(self.not_found(key)),
        }
    }

    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, ConnectorError> {
        let full = self.full(key);
        let mut objects = self.store.lock();
        match (&mode, objects.get(full.as_str())) {
            (PutMode::Create, Some(_)) => return Ok(PutOutcome::AlreadyExists),
            (PutMode::Update(_), None) => return Ok(PutOutcome::PreconditionFailed),
            (PutMode::Update(expected), Some(current)) if &current.version != expected => {
                return Ok(PutOutcome::PreconditionFailed)
            }
            _ => {}
        }
        let version = next_version();
        objects.insert(
            full.as_str().to_owned(),
            Entry {
                bytes,
                version: version.clone(),
                modified: SystemTime::now(),
            },
        );
        Ok(PutOutcome::Written(version))
    }

    fn list<'a>(&'a self, prefix: &'a KeyPrefix) -> ListStream<'a> {
        let full_prefix = prefix.under(&self.prefix);
        // Page lazily: each page is taken under the lock, so a listing never
        // blocks writers for long; objects written behind the cursor during
        // a listing are not seen, as with S3.
        let pages = futures::stream::unfold(
            (Some(None::<String>), full_prefix),
            move |(cursor, full_prefix)| async move {
                let after = cursor?;
                let (page, next) = self.list_page(&full_prefix, after.as_deref());
                Some((page, (next.map(Some), full_prefix)))
            },
        );
        Box::pin(futures::StreamExt::flat_map(pages, |page| {
            futures::stream::iter(page.into_iter().map(Ok))
        }))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), ConnectorError> {
        let full = self.full(key);
        self.store.lock().remove(full.as_str());
        Ok(())
    }
}
