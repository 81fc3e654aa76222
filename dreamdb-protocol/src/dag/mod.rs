//! The version-control core: the Manifest DAG, refs and tags, publishing by
//! compare-and-swap, rebasing commits, and merges (spec/0008).
//!
//! A dataset's versions are Manifests (`crate::objects::Manifest`), each
//! naming its parents, so they form a DAG. Branches are small Ref objects
//! moved only by conditional writes; tags are Ref objects written once.
//! This module is the only code that moves them:
//!
//! - [`Repo::publish`] is spec/0008 §3: one conditional write, and when its
//!   outcome is unclear (a lost response, a transient error) a re-read that
//!   decides it — a ref already at our Manifest is success, never a conflict;
//! - [`Repo::commit_changes`] and [`Repo::apply_changes`] rebase commuting
//!   changes onto a moved tip and retry with jittered backoff, refusing
//!   (typed) when the tip changed a spatial index the changes depend on;
//! - [`Repo::merge`] and [`Repo::merge_many`] are spec/0008 §5: fast-forward,
//!   per-field 3-way union through `crate::track`'s `merge3`, ours/theirs,
//!   refusal across incompatible spatial indexes, tombstone union;
//! - [`Repo::history`], [`Repo::is_ancestor`] and [`Repo::lca`] walk the DAG
//!   by decreasing height, bounded and checked against hostile histories.
//!
//! Module map: `error`, `graph` (ancestry, LCA), `history`, `refs` (read,
//! list, publish, branch/tag/reset/fast-forward/delete), `commit` (new
//! Manifests, the rebasing loop), `spatial` (spatial-index lineage), `merge`,
//! `retry` (backoff), `roots` (track-root conversion).

mod commit;
mod error;
pub mod graph;
mod history;
mod merge;
mod refs;
mod retry;
mod roots;
mod spatial;

use std::future::Future;
use std::sync::Arc;

use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::Connector;
use dreamdb_core::ContentHash;

pub use commit::{
    ChangeSet, CommitLoopOptions, CommitOptions, Committed, CreateDataset, Draft, FieldChanges,
};
pub use error::{DagError, HistoryProblem};
pub use history::HistoryWalk;
pub use merge::{MergeOptions, MergeOutcome, Side, Strategy};
pub use refs::{PublishOutcome, RefState};
pub use retry::{RetryPolicy, SleepFn};

use crate::objects::{DatasetName, Manifest, ObjectKind, Schema};
use crate::store::{ObjectStore, DEFAULT_CACHE_BYTES};
use crate::track::{Track, TrackConfig};

/// The track root of a Manifest's stored root (while `objects` keeps its
/// placeholder root type, the two differ; see `roots`).
pub fn track_root_of(
    stored: &crate::objects::TrackRoot,
) -> Result<crate::track::TrackRoot, DagError> {
    roots::to_track(stored)
}

/// The stored form of a track root, for building Manifests.
pub fn stored_root_of(
    root: &crate::track::TrackRoot,
) -> Result<crate::objects::TrackRoot, DagError> {
    roots::to_stored(root)
}

/// Runs `future` to completion on the calling thread, without an async
/// runtime: for tools and conformance checks over [`Repo::in_memory`],
/// whose backend completes without one.
pub fn run_blocking<F: Future>(future: F) -> F::Output {
    futures::executor::block_on(future)
}

/// The registry key of a Manifest's tombstone list (spec/0020).
pub const TOMBSTONES_KEY: &str = "dreamdb.tombstones";

/// Default bound on the Manifests one walk may read.
pub const DEFAULT_HISTORY_LIMIT: u64 = 1_000_000;

/// Default bound on the spatial indexes one lineage check may read.
pub const DEFAULT_SPATIAL_CHAIN_LIMIT: u64 = 10_000;

/// Tunables of a [`Repo`].
#[derive(Debug, Clone)]
pub struct RepoConfig {
    /// Most Manifests one walk (history, ancestry, LCA) may read.
    pub history_limit: u64,
    /// Most spatial indexes one lineage check may read.
    pub spatial_chain_limit: u64,
    /// Retries of publishes, rebases and transient errors.
    pub retry: RetryPolicy,
    /// Page thresholds of the tracks this repo writes.
    pub track: TrackConfig,
}

impl Default for RepoConfig {
    fn default() -> Self {
        RepoConfig {
            history_limit: DEFAULT_HISTORY_LIMIT,
            spatial_chain_limit: DEFAULT_SPATIAL_CHAIN_LIMIT,
            retry: RetryPolicy::default(),
            track: TrackConfig::default(),
        }
    }
}

/// One dataset's version control over an object store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Repo {
    store: ObjectStore,
    connector: Arc<dyn Connector>,
    dataset: DatasetName,
    config: RepoConfig,
    track: Track,
}

impl Repo {
    /// The repository of `dataset` in `store`, with default tunables.
    pub fn new(store: ObjectStore, dataset: DatasetName) -> Self {
        let track = Track::new(store.clone());
        Repo {
            connector: store.connector().clone(),
            store,
            dataset,
            config: RepoConfig::default(),
            track,
        }
    }

    /// The repository of `dataset` in `store` with `config`.
    pub fn with_config(
        store: ObjectStore,
        dataset: DatasetName,
        config: RepoConfig,
    ) -> Result<Self, DagError> {
        let track = Track::with_config(store.clone(), config.track)?;
        Ok(Repo {
            connector: store.connector().clone(),
            store,
            dataset,
            config,
            track,
        })
    }

    /// A repository in a fresh in-memory backend (tests, tools,
    /// conformance checks).
    pub fn in_memory(dataset: DatasetName) -> Self {
        let connector: Arc<dyn Connector> = Arc::new(MemoryConnector::new());
        Repo::new(ObjectStore::new(connector, DEFAULT_CACHE_BYTES), dataset)
    }

    /// The object store.
    pub fn store(&self) -> &ObjectStore {
        &self.store
    }

    /// The connector refs are read and written through.
    pub fn connector(&self) -> &Arc<dyn Connector> {
        &self.connector
    }

    /// The dataset.
    pub fn dataset(&self) -> &DatasetName {
        &self.dataset
    }

    /// The tunables.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// Track operations over this repo's store.
    pub fn tracks(&self) -> &Track {
        &self.track
    }

    /// Writes an object and returns its hash.
    pub async fn put_object<T: ObjectKind>(&self, object: &T) -> Result<ContentHash, DagError> {
        let (bytes, _hash) = object.encode()?;
        Ok(self.store.put_bytes(bytes).await?)
    }

    /// Reads and verifies the object `hash`.
    pub async fn get_object<T: ObjectKind>(&self, hash: &ContentHash) -> Result<T, DagError> {
        let bytes = self.store.get_bytes(hash).await?;
        Ok(T::decode(hash, &bytes)?)
    }

    /// Reads the Manifest `hash`.
    pub async fn manifest(&self, hash: &ContentHash) -> Result<Manifest, DagError> {
        self.get_object(hash).await
    }

    /// Reads the Schema `hash`.
    pub async fn schema(&self, hash: &ContentHash) -> Result<Schema, DagError> {
        self.get_object(hash).await
    }

    /// The history of `from`: every Manifest it reaches, once each,
    /// highest first.
    pub fn history(&self, from: ContentHash) -> HistoryWalk<'_> {
        HistoryWalk::new(self, from)
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors.
    pub async fn is_ancestor(
        &self,
        ancestor: ContentHash,
        descendant: ContentHash,
    ) -> Result<bool, DagError> {
        let mut walker = graph::Walker::new(graph::Source::Repo(self), self.config.history_limit);
        graph::is_ancestor(&mut walker, ancestor, descendant).await
    }

    /// The lowest common ancestors of `a` and `b` (spec/0008 §4), highest
    /// first; several for a criss-cross, none for unrelated histories.
    pub async fn lca(&self, a: ContentHash, b: ContentHash) -> Result<Vec<ContentHash>, DagError> {
        let mut walker = graph::Walker::new(graph::Source::Repo(self), self.config.history_limit);
        graph::lca(&mut walker, a, b).await
    }
}
