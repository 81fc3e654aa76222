//! Mark-and-sweep garbage collection (spec/0006 §4, design 0003).
//!
//! 1. **Roots**: every ref and tag of every dataset (LIST `datasets/`).
//! 2. **Retain**: per ref, the tip, the first `keep_manifests` Manifests of
//!    its history (by height, every parent followed) and every Manifest of
//!    its history whose time is within `keep_since` of `now`; per tag, the
//!    Manifest it names.
//! 3. **Mark**: from the retained Manifests, every link of every reachable
//!    object, recursively — except a Manifest's `parents`, which are
//!    marked only if retained themselves.
//! 4. **Sweep**: LIST `objects/` (or, for shard `i` of `n`, the fan-out
//!    directories `d` with `d mod n = i`) and delete every unmarked object
//!    whose last-modified time is older than `now - grace`. Refs and tags
//!    are never touched.
//!
//! Safety: roots are read before marking and objects listed after it, so
//! anything a writer publishes meanwhile is either young (its new objects)
//! or reachable from a tip GC read (what it reuses, spec/0006 §3). An
//! object whose age is unknown is kept. A reachable object that cannot be
//! read (missing, corrupt) stops GC before anything is deleted: GC cannot
//! know what that object keeps alive. Before each deletion the object's
//! metadata is read again, and an object refreshed meanwhile (a writer
//! re-wrote it, spec/0006 §3) is kept.

use std::collections::HashSet;
use std::sync::Arc;

use dreamdb_connector::{Connector, ConnectorExt, KeyPrefix, ObjectKey};
use dreamdb_core::time::Ticks;
use dreamdb_core::ContentHash;
use futures::{StreamExt, TryStreamExt};

use super::{
    list_roots, split_links, tolerant_history, unix_nanos, MaintenanceError, ProgressFn, RootKind,
    DEFAULT_CONCURRENCY,
};
use crate::dag::DEFAULT_HISTORY_LIMIT;
use crate::store::{ObjectStore, StoreError};

/// Session cache of the store GC reads through (Manifests are read twice:
/// once to retain, once to mark).
const GC_CACHE_BYTES: u64 = 32 << 20;

/// Inputs of [`gc()`]: the retention policy, the grace period and the clock
/// are the caller's.
#[derive(Clone)]
pub struct GcOptions {
    /// Keep the first N Manifests of every ref's history (the tip counts
    /// as one; the tip is kept even with 0). `None`: only what the other
    /// rules keep.
    pub keep_manifests: Option<u64>,
    /// Keep every Manifest of every ref's history whose time is within
    /// this of `now_unix_nanos`.
    pub keep_since: Option<Ticks>,
    /// Never delete an object modified less than this long before
    /// `now_unix_nanos` (the safety margin for in-flight writers).
    pub grace: Ticks,
    /// Report what would be deleted, delete nothing.
    pub dry_run: bool,
    /// Sweep only shard `i` of `n` (`(i, n)`, `i < n <= 256`): fan-out
    /// directories `d` with `d mod n = i`. Marking is always complete.
    pub shard: Option<(u32, u32)>,
    /// The clock, in Unix nanoseconds.
    pub now_unix_nanos: u64,
    /// Requests in flight (reads while marking, deletes).
    pub concurrency: usize,
    /// Most Manifests read per ref's history walk.
    pub history_limit: u64,
    /// Progress reports, if wanted.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for GcOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcOptions")
            .field("keep_manifests", &self.keep_manifests)
            .field("keep_since", &self.keep_since)
            .field("grace", &self.grace)
            .field("dry_run", &self.dry_run)
            .field("shard", &self.shard)
            .field("now_unix_nanos", &self.now_unix_nanos)
            .field("concurrency", &self.concurrency)
            .field("history_limit", &self.history_limit)
            .finish_non_exhaustive()
    }
}

impl GcOptions {
    /// Tips and tags only, the given grace, now = `now_unix_nanos`, not a
    /// dry run, not sharded.
    pub fn new(grace: Ticks, now_unix_nanos: u64) -> Self {
        GcOptions {
            keep_manifests: None,
            keep_since: None,
            grace,
            dry_run: false,
            shard: None,
            now_unix_nanos,
            concurrency: DEFAULT_CONCURRENCY,
            history_limit: DEFAULT_HISTORY_LIMIT,
            progress: None,
        }
    }

    fn report(&self, phase: &'static str, n: u64) {
        if let Some(progress) = &self.progress {
            progress(phase, n);
        }
    }
}

/// What a GC run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Whether nothing was deleted on purpose.
    pub dry_run: bool,
    /// The shard swept (`None`: all of `objects/`).
    pub shard: Option<(u32, u32)>,
    /// Datasets with at least one ref or tag.
    pub datasets: u64,
    /// Branches read.
    pub refs: u64,
    /// Tags read.
    pub tags: u64,
    /// Distinct Manifests retained.
    pub retained_manifests: u64,
    /// Distinct objects marked reachable (retained Manifests included).
    pub marked_objects: u64,
    /// Keys listed under the swept prefixes.
    pub listed_objects: u64,
    /// Objects deleted (or, in a dry run, that would be), sorted.
    pub deleted: Vec<ContentHash>,
    /// Their bytes (as listed).
    pub bytes_deleted: u64,
    /// Unreachable objects kept because they are younger than the grace
    /// period (or were refreshed before their deletion).
    pub kept_young: u64,
    /// Unreachable objects kept because the backend gave no modification
    /// time.
    pub kept_unknown_age: u64,
    /// Keys under `objects/` that are not object keys (left alone).
    pub foreign_keys: u64,
    /// Candidates that vanished before their deletion (another GC).
    pub vanished: u64,
    /// Parents of retained Manifests that are not stored (history cut by
    /// an earlier GC): `(missing parent, child)`.
    pub missing_parents: Vec<(ContentHash, ContentHash)>,
}

/// Runs GC over every dataset of `connector` (see the module docs).
pub async fn gc(
    connector: Arc<dyn Connector>,
    options: &GcOptions,
) -> Result<GcReport, MaintenanceError> {
    let shard_dirs = shard_dirs(options.shard)?;
    let store = ObjectStore::with_concurrency(
        connector.clone(),
        GC_CACHE_BYTES,
        options.concurrency.max(1),
    );
    let mut report = GcReport {
        dry_run: options.dry_run,
        shard: options.shard,
        ..GcReport::default()
    };
    let mut damaged: Vec<String> = Vec::new();

    // 1. Roots.
    let roots = list_roots(&connector).await?;
    options.report("roots", roots.len() as u64);
    let datasets: HashSet<&str> = roots.iter().map(|r| r.dataset.as_str()).collect();
    report.datasets = datasets.len() as u64;

    // 2. Retention.
    let cutoff = options
        .keep_since
        .map(|since| options.now_unix_nanos.saturating_sub(since.as_nanos()));
    let walk_limit = match (options.keep_since, options.keep_manifests) {
        (Some(_), _) => Some(options.history_limit),
        (None, Some(n)) if n > 1 => Some(n.min(options.history_limit)),
        _ => None,
    };
    let mut retained: Vec<ContentHash> = Vec::new();
    let mut retained_set: HashSet<ContentHash> = HashSet::new();
    for root in &roots {
        match root.kind {
            RootKind::Branch => report.refs += 1,
            RootKind::Tag => report.tags += 1,
        }
        let target = match &root.target {
            Ok(target) => target,
            Err(e) => {
                damaged.push(format!("{}: unreadable ref: {e}", root.label()));
                continue;
            }
        };
        if retained_set.insert(target.manifest) {
            retained.push(target.manifest);
        }
        let (RootKind::Branch, Some(limit)) = (root.kind, walk_limit) else {
            continue;
        };
        let keep_n = options.keep_manifests.unwrap_or(0);
        let mut index = 0u64;
        let mut keep = Vec::new();
        let walked = tolerant_history(&store, target.manifest, Some(limit), |w| {
            index += 1;
            let by_count = index <= keep_n;
            let by_time = cutoff.is_some_and(|c| w.manifest.time_unix_nanos >= c);
            if by_count || by_time {
                keep.push(w.hash);
            }
            true
        })
        .await;
        match walked {
            Ok(notes) => report.missing_parents.extend(notes.missing_parents),
            Err(e @ (StoreError::Missing { .. } | StoreError::Integrity { .. })) => {
                damaged.push(format!("{}: history: {e}", root.label()));
            }
            Err(e) => return Err(MaintenanceError::Store(Box::new(e))),
        }
        for hash in keep {
            if retained_set.insert(hash) {
                retained.push(hash);
            }
        }
        options.report("retain", retained.len() as u64);
    }
    report.missing_parents.sort();
    report.missing_parents.dedup();
    report.retained_manifests = retained.len() as u64;

    // 3. Mark. A parent of a marked Manifest that is younger than the grace
    // period is kept whole (marked like a retained one): GC keeps it for
    // its age anyway, and a kept Manifest missing pages is damage to
    // `verify` and to time travel. The first parent on each chain that is
    // old enough to go is a cut point, deleted before anything else (§4).
    let horizon = options
        .now_unix_nanos
        .saturating_sub(options.grace.as_nanos());
    let mut marked: HashSet<ContentHash> = retained_set;
    let mut cut_points: Vec<(ContentHash, ObjectKey, u64)> = Vec::new();
    let mut parents_seen: HashSet<ContentHash> = HashSet::new();
    let mut frontier = retained;
    while !frontier.is_empty() {
        let results: Vec<(ContentHash, Result<LinksOf, StoreError>)> =
            futures::stream::iter(frontier)
                .map(|hash| {
                    let store = &store;
                    async move {
                        let links = store.get_value(&hash).await.map(|v| split_links(&v));
                        (hash, links)
                    }
                })
                .buffer_unordered(options.concurrency.max(1))
                .collect()
                .await;
        let mut next = Vec::new();
        for (hash, result) in results {
            match result {
                Ok((links, parents)) => {
                    for link in links {
                        if marked.insert(link) {
                            next.push(link);
                        }
                    }
                    for parent in parents {
                        if marked.contains(&parent) || !parents_seen.insert(parent) {
                            continue;
                        }
                        let key = crate::store::object_key(&parent)
                            .map_err(|e| MaintenanceError::connector("objects/", e.into()))?;
                        let meta = connector
                            .head_opt(&key)
                            .await
                            .map_err(|e| MaintenanceError::connector(key.as_str(), e))?;
                        let size = meta.as_ref().map_or(0, |m| m.size);
                        match meta.and_then(|m| m.last_modified.map(unix_nanos)) {
                            Some(modified) if modified >= horizon => {
                                // Not marked yet: checked above.
                                marked.insert(parent);
                                next.push(parent);
                            }
                            Some(_) => cut_points.push((parent, key, size)),
                            // Gone already (history cut earlier), or of
                            // unknown age (the sweep keeps it).
                            None => {}
                        }
                    }
                }
                Err(e @ (StoreError::Missing { .. } | StoreError::Integrity { .. })) => {
                    damaged.push(format!("{hash}: {e}"));
                }
                Err(e) => return Err(MaintenanceError::Store(Box::new(e))),
            }
        }
        options.report("mark", marked.len() as u64);
        frontier = next;
    }
    report.marked_objects = marked.len() as u64;
    if !damaged.is_empty() {
        damaged.sort();
        return Err(MaintenanceError::Damaged { problems: damaged });
    }

    // 4. Cut history first: the old parents of kept Manifests go before
    // any object they reach, so a sweep interrupted at any point leaves
    // every Manifest still reachable through parents whole.
    cut_points.retain(|(hash, key, _)| {
        !marked.contains(hash)
            && shard_dirs
                .iter()
                .any(|d| key.as_str().starts_with(d.as_str()))
    });
    cut_points.sort();
    let mut cut_deleted: HashSet<ContentHash> = HashSet::new();
    if !options.dry_run {
        for (hash, key, size) in &cut_points {
            if let Outcome::Deleted = delete_if_old(connector.as_ref(), key, horizon).await? {
                cut_deleted.insert(*hash);
                report.deleted.push(*hash);
                report.bytes_deleted += size;
            }
        }
    }

    // 5. Sweep.
    let mut candidates: Vec<(ContentHash, ObjectKey, u64)> = Vec::new();
    for dir in &shard_dirs {
        let prefix = KeyPrefix::new(dir.as_str())
            .map_err(|e| MaintenanceError::connector(dir.as_str(), e.into()))?;
        let mut listing = connector.list(&prefix);
        while let Some(meta) = listing
            .try_next()
            .await
            .map_err(|e| MaintenanceError::connector(dir.as_str(), e))?
        {
            report.listed_objects += 1;
            if report.listed_objects.is_multiple_of(1024) {
                options.report("list", report.listed_objects);
            }
            let Some(hash) = super::hash_of_object_key(meta.key.as_str()) else {
                report.foreign_keys += 1;
                continue;
            };
            if marked.contains(&hash) {
                continue;
            }
            if cut_deleted.contains(&hash) {
                continue; // deleted above, listed by an eventually consistent LIST
            }
            match meta.last_modified.map(unix_nanos) {
                None => report.kept_unknown_age += 1,
                Some(modified) if modified >= horizon => report.kept_young += 1,
                Some(_) => candidates.push((hash, meta.key, meta.size)),
            }
        }
    }
    options.report("list", report.listed_objects);

    if options.dry_run {
        for (hash, _, size) in candidates {
            report.deleted.push(hash);
            report.bytes_deleted += size;
        }
    } else {
        let outcomes: Vec<Result<(ContentHash, u64, Outcome), MaintenanceError>> =
            futures::stream::iter(candidates)
                .map(|(hash, key, size)| {
                    let connector = &connector;
                    async move {
                        let outcome = delete_if_old(connector.as_ref(), &key, horizon).await?;
                        Ok((hash, size, outcome))
                    }
                })
                .buffer_unordered(options.concurrency.max(1))
                .collect()
                .await;
        for outcome in outcomes {
            let (hash, size, outcome) = outcome?;
            match outcome {
                Outcome::Deleted => {
                    report.deleted.push(hash);
                    report.bytes_deleted += size;
                    options.report("delete", report.deleted.len() as u64);
                }
                Outcome::Refreshed => report.kept_young += 1,
                Outcome::Vanished => report.vanished += 1,
            }
        }
    }
    report.deleted.sort();
    Ok(report)
}

/// An object's links: its own, and a Manifest's parents.
type LinksOf = (Vec<ContentHash>, Vec<ContentHash>);

enum Outcome {
    Deleted,
    Refreshed,
    Vanished,
}

/// Deletes `key` unless it was refreshed (or deleted) since it was listed.
async fn delete_if_old(
    connector: &dyn Connector,
    key: &ObjectKey,
    horizon: u64,
) -> Result<Outcome, MaintenanceError> {
    let meta = connector
        .head_opt(key)
        .await
        .map_err(|e| MaintenanceError::connector(key.as_str(), e))?;
    let Some(meta) = meta else {
        return Ok(Outcome::Vanished);
    };
    match meta.last_modified.map(unix_nanos) {
        Some(modified) if modified < horizon => {}
        _ => return Ok(Outcome::Refreshed),
    }
    connector
        .delete(key)
        .await
        .map_err(|e| MaintenanceError::connector(key.as_str(), e))?;
    Ok(Outcome::Deleted)
}

/// The prefixes a sweep lists.
fn shard_dirs(shard: Option<(u32, u32)>) -> Result<Vec<String>, MaintenanceError> {
    match shard {
        None => Ok(vec!["objects/".to_owned()]),
        Some((i, n)) => {
            if n == 0 || n > 256 || i >= n {
                return Err(MaintenanceError::InvalidArgument(format!(
                    "shard {i} of {n}: need 0 <= i < n <= 256"
                )));
            }
            Ok((0..256u32)
                .filter(|d| d % n == i)
                .map(|d| format!("objects/{d:02x}/"))
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shards_partition_the_fan_out() {
        let mut all: Vec<String> = (0..5)
            .flat_map(|i| shard_dirs(Some((i, 5))).unwrap())
            .collect();
        all.sort();
        assert_eq!(all.len(), 256);
        all.dedup();
        assert_eq!(all.len(), 256);
        assert!(shard_dirs(Some((3, 3))).is_err());
        assert!(shard_dirs(Some((0, 0))).is_err());
        assert!(shard_dirs(Some((0, 257))).is_err());
    }
}
