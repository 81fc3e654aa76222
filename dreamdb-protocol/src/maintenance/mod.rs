//! Maintenance mechanisms over a whole backend: garbage collection
//! ([`gc`], spec/0006 §4) and verification ([`verify`], spec/0006 §6).
//!
//! Both start from the same roots — every ref and every tag of every
//! dataset in the backend, found by LIST of `datasets/` (maintenance is the
//! one place LIST is allowed) — and both follow links generically (every
//! tag-65521 hash, design 0001), so no object kind can be forgotten.
//!
//! These are mechanisms, not policy: retention (`keep_manifests`,
//! `keep_since`), the grace period and the clock are the caller's inputs;
//! nothing here schedules itself. The `dreamdb` CLI wraps them for cron and
//! k8s.
//!
//! Module map: this file (roots, the tolerant history walk, shared errors),
//! `gc` (mark and sweep), `verify` (walk, check and report every bad
//! object).

pub mod gc;
pub mod verify;

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ciborium::value::Value;
use dreamdb_connector::{Connector, ConnectorError, ConnectorExt, KeyPrefix, ObjectKey};
use dreamdb_core::ref_name::RefName;
use dreamdb_core::ContentHash;
use futures::TryStreamExt;

pub use gc::{gc, GcOptions, GcReport};
pub use verify::{
    verify, BadObject, BadRef, Referrer, TruncatedHistory, VerifyOptions, VerifyReport,
};

use crate::objects::{object_key, DatasetName, Manifest, ObjectKind, RefObject};
use crate::store::{links, ObjectStore, StoreError};

/// Default number of requests kept in flight by [`gc()`] and [`verify()`].
pub const DEFAULT_CONCURRENCY: usize = 32;

/// A progress callback: the phase (`"roots"`, `"retain"`, `"mark"`,
/// `"list"`, `"delete"`, `"verify"`) and a running count in that phase.
/// Called often; it must be cheap.
pub type ProgressFn = Arc<dyn Fn(&'static str, u64) + Send + Sync>;

/// Why a maintenance run stopped without a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MaintenanceError {
    /// The backend failed on `key` (not a missing object: those are
    /// reported, not errors).
    #[error("storage failed on {key}: {source}")]
    Connector {
        /// The key or prefix concerned.
        key: String,
        /// The backend's error.
        #[source]
        source: Box<ConnectorError>,
    },
    /// GC found objects it must read to know what they keep alive but
    /// cannot (missing, corrupt, undecodable, or an unreadable root). It
    /// deleted nothing; run `verify` for the full list.
    #[error("gc refused to sweep: {} reachable object(s) or root(s) are damaged (first: {}); nothing was deleted — run verify", problems.len(), problems.first().map(String::as_str).unwrap_or("?"))]
    Damaged {
        /// One line per damaged object or root.
        problems: Vec<String>,
    },
    /// An option is unusable (a shard outside `0..n`, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Reading an object failed for a reason other than damage.
    #[error(transparent)]
    Store(Box<StoreError>),
}

impl MaintenanceError {
    /// A stable identifier: `"connector"`, `"damaged"`, `"invalid-argument"`
    /// or `"store"`.
    pub fn class(&self) -> &'static str {
        match self {
            MaintenanceError::Connector { .. } => "connector",
            MaintenanceError::Damaged { .. } => "damaged",
            MaintenanceError::InvalidArgument(_) => "invalid-argument",
            MaintenanceError::Store(_) => "store",
        }
    }

    fn connector(key: impl Into<String>, source: ConnectorError) -> Self {
        MaintenanceError::Connector {
            key: key.into(),
            source: Box::new(source),
        }
    }
}

/// Branch or tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RootKind {
    /// `datasets/<d>/refs/<name>`.
    Branch,
    /// `datasets/<d>/tags/<name>`.
    Tag,
}

impl RootKind {
    /// `"refs"` or `"tags"`.
    pub fn dir(self) -> &'static str {
        match self {
            RootKind::Branch => "refs",
            RootKind::Tag => "tags",
        }
    }
}

/// One ref or tag found by listing `datasets/`.
#[derive(Debug, Clone)]
pub struct Root {
    /// The dataset.
    pub dataset: DatasetName,
    /// Branch or tag.
    pub kind: RootKind,
    /// Its name.
    pub name: RefName,
    /// Its storage key.
    pub key: ObjectKey,
    /// What it names, or why it could not be read.
    pub target: Result<RefObject, String>,
}

impl Root {
    /// `<dataset>:refs/<name>` or `<dataset>:tags/<name>`.
    pub fn label(&self) -> String {
        format!("{}:{}/{}", self.dataset, self.kind.dir(), self.name)
    }
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// Every ref and tag of every dataset in the backend, sorted by dataset,
/// kind and name. Keys under `datasets/` that are not a ref or tag of a
/// valid dataset name are ignored; a ref that vanished between LIST and
/// GET is left out; one that cannot be decoded is returned with an error.
pub async fn list_roots(connector: &Arc<dyn Connector>) -> Result<Vec<Root>, MaintenanceError> {
    let text = "datasets/";
    let prefix = KeyPrefix::new(text).map_err(|e| MaintenanceError::connector(text, e.into()))?;
    let listed: Vec<_> = connector
        .list(&prefix)
        .try_collect()
        .await
        .map_err(|e| MaintenanceError::connector(text, e))?;
    let mut roots = Vec::new();
    for meta in listed {
        let Some(rest) = meta.key.as_str().strip_prefix(text) else {
            continue;
        };
        let Some((dataset, rest)) = rest.split_once('/') else {
            continue;
        };
        let Some((dir, name)) = rest.split_once('/') else {
            continue;
        };
        let kind = match dir {
            "refs" => RootKind::Branch,
            "tags" => RootKind::Tag,
            _ => continue,
        };
        let (Ok(dataset), Ok(name)) = (DatasetName::parse(dataset), RefName::parse(name)) else {
            continue;
        };
        let found = connector
            .get_opt(&meta.key)
            .await
            .map_err(|e| MaintenanceError::connector(meta.key.as_str(), e))?;
        let Some(found) = found else { continue };
        let target = RefObject::decode_unverified(&found.bytes).map_err(|e| e.to_string());
        roots.push(Root {
            dataset,
            kind,
            name,
            key: meta.key,
            target,
        });
    }
    roots.sort_by(|a, b| {
        (a.dataset.as_str(), a.kind, a.name.as_str()).cmp(&(
            b.dataset.as_str(),
            b.kind,
            b.name.as_str(),
        ))
    });
    Ok(roots)
}

/// The hash named by an object key `objects/<2hex>/<66hex>`, if `key` is
/// exactly the key of that hash.
pub fn hash_of_object_key(key: &str) -> Option<ContentHash> {
    let hex = key.strip_prefix("objects/")?.get(3..)?;
    let hash = ContentHash::from_hex(hex).ok()?;
    (object_key(&hash).as_str() == key).then_some(hash)
}

/// `time` in Unix nanoseconds (0 before the epoch, saturating far after).
pub fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Now, in Unix nanoseconds.
pub fn now_unix_nanos() -> u64 {
    unix_nanos(SystemTime::now())
}

/// The links of an object's decoded value, and separately the parents of
/// a Manifest (which GC does not follow unless the parent is retained).
///
/// Every tag-65521 hash is a link (design 0001, spec/0009 §3.2).
pub(crate) fn split_links(value: &Value) -> (Vec<ContentHash>, Vec<ContentHash>) {
    let kind = value.as_map().and_then(|entries| {
        entries
            .iter()
            .find(|(k, _)| k.as_text() == Some("kind"))
            .and_then(|(_, v)| v.as_text())
    });
    if kind != Some(<Manifest as ObjectKind>::KIND) {
        return (links(value), Vec::new());
    }
    let mut own = Vec::new();
    let mut parents = Vec::new();
    for (k, v) in value.as_map().into_iter().flatten() {
        if k.as_text() == Some("parents") {
            parents.extend(links(v));
        } else {
            own.extend(links(k));
            own.extend(links(v));
        }
    }
    (own, parents)
}

/// One Manifest of a tolerant history walk.
#[derive(Debug, Clone)]
pub struct WalkedManifest {
    /// Its hash.
    pub hash: ContentHash,
    /// The Manifest.
    pub manifest: Manifest,
}

/// What the tolerant walk found besides Manifests.
#[derive(Debug, Default)]
pub struct WalkNotes {
    /// Parents that are not stored (history cut by an earlier GC, or lost).
    /// `(missing parent, child)`.
    pub missing_parents: Vec<(ContentHash, ContentHash)>,
}

/// The history of `from`, highest first, each Manifest once, stopping
/// after `limit` Manifests (`None`: all) — like `Repo::history`, but a
/// missing parent ends that line of history with a note instead of an
/// error (after GC, parents of the oldest retained Manifests are gone by
/// design). A missing or unreadable `from`, or an unreadable parent, is
/// an error.
pub async fn tolerant_history(
    store: &ObjectStore,
    from: ContentHash,
    limit: Option<u64>,
    mut visit: impl FnMut(&WalkedManifest) -> bool,
) -> Result<WalkNotes, StoreError> {
    let mut notes = WalkNotes::default();
    let first: Manifest = read_manifest(store, &from).await?;
    let mut queue = BinaryHeap::new();
    let mut pending: HashMap<ContentHash, Manifest> = HashMap::new();
    let mut seen = HashSet::new();
    seen.insert(from);
    queue.push((first.height, from));
    pending.insert(from, first);
    let mut count = 0u64;
    while let Some((_, hash)) = queue.pop() {
        if limit.is_some_and(|l| count >= l) {
            break;
        }
        let Some(manifest) = pending.remove(&hash) else {
            continue;
        };
        count += 1;
        let walked = WalkedManifest { hash, manifest };
        let go_on = visit(&walked);
        if !go_on {
            break;
        }
        for parent in &walked.manifest.parents {
            if !seen.insert(*parent) {
                continue;
            }
            match read_manifest(store, parent).await {
                Ok(m) => {
                    queue.push((m.height, *parent));
                    pending.insert(*parent, m);
                }
                Err(StoreError::Missing { .. }) => notes.missing_parents.push((*parent, hash)),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(notes)
}

/// Reads and strictly decodes the Manifest `hash`.
pub async fn read_manifest(
    store: &ObjectStore,
    hash: &ContentHash,
) -> Result<Manifest, StoreError> {
    let bytes = store.get_bytes(hash).await?;
    Manifest::decode(hash, &bytes).map_err(|e| StoreError::Integrity {
        hash: *hash,
        reason: crate::store::IntegrityReason::Invalid(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn object_keys_round_trip() {
        let h = ContentHash::of(b"x");
        let key = object_key(&h);
        assert_eq!(hash_of_object_key(key.as_str()), Some(h));
        assert_eq!(hash_of_object_key("objects/00/zz"), None);
        let wrong_dir = format!("objects/zz/{}", h.to_hex());
        assert_eq!(hash_of_object_key(&wrong_dir), None);
    }
}
