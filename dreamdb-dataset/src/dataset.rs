//! [`Dataset`]: a handle on one dataset in one backend, following a ref
//! (reads re-read it, writes move it by compare-and-swap) or pinned to one
//! Manifest (read-only, no ref reads).
//!
//! ```no_run
//! # async fn demo() -> Result<(), dreamdb_dataset::DatasetError> {
//! use dreamdb_dataset::batch::{Batch, ScalarColumn};
//! use dreamdb_dataset::dataset::{CreateOptions, Version};
//! use dreamdb_dataset::schema::{EmbeddingField, ScalarType, SchemaBuilder};
//! use dreamdb_dataset::Dataset;
//!
//! let schema = SchemaBuilder::new()
//!     .embedding("embedding", EmbeddingField::new(4).ivf(2).rabitq(1).rerank(true))
//!     .scalar("label", ScalarType::Categorical)
//!     .build()?;
//! let ds = Dataset::create("./my-data", "demo", schema, CreateOptions::default()).await?;
//! let batch = Batch::new(2)
//!     .embeddings("embedding", 4, vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0])
//!     .scalars("label", ScalarColumn::Categorical(vec![Some("a".into()), Some("b".into())]));
//! let appended = ds.append_many(batch).await?;
//! let v1 = ds.snapshot("v1").await?;
//! ds.delete(&appended.anchors[..1], "mislabelled").await?;
//! let old = Dataset::open_at("./my-data", "demo", Version::Tag("v1".into())).await?;
//! assert_eq!(old.records().await?, 2);
//! # let _ = v1; Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dreamdb_connector::Connector;
use dreamdb_core::ref_name::RefName;
use dreamdb_core::time::TimeAnchor;
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{
    CommitLoopOptions, CreateDataset, DagError, Draft, MergeOptions, MergeOutcome, Repo,
    RepoConfig, RetryPolicy, Strategy, TOMBSTONES_KEY,
};
use dreamdb_protocol::objects::{
    DatasetName, Genesis, Manifest, ObjectKind, Schema, Tombstone, TombstoneList,
};
use dreamdb_protocol::store::ObjectStore;

use crate::schema::check_evolution;
use crate::write::anchors::existing_anchors;
use crate::write::stats::StatsData;
use crate::{DatasetError, Snapshot};

/// Default session cache: 256 MiB (design/0002 § Session cache).
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

/// The default writer identity recorded in Manifests.
pub const DEFAULT_WRITER: &str = "dreamdb-dataset";

/// The branch a dataset is created with and `open` follows by default.
pub const MAIN: &str = "main";

/// Options of [`Dataset::create`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Who writes (recorded in Manifests); default [`DEFAULT_WRITER`].
    pub writer: Option<String>,
    /// Session cache budget in bytes; default [`DEFAULT_CACHE_BYTES`].
    pub cache_bytes: Option<u64>,
}

/// Options of [`Dataset::open`].
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// The branch to follow; default `main`.
    pub ref_name: Option<String>,
    /// Session cache budget in bytes; default [`DEFAULT_CACHE_BYTES`].
    pub cache_bytes: Option<u64>,
    /// Who writes; default [`DEFAULT_WRITER`].
    pub writer: Option<String>,
}

/// A version to open read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// A tag (made by [`Dataset::snapshot`]).
    Tag(String),
    /// The current target of a branch (pinned at open).
    Ref(String),
    /// A Manifest hash.
    Manifest(ContentHash),
}

/// A named, immutable version: what [`Dataset::snapshot`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetVersion {
    /// The tag name.
    pub label: String,
    /// The Manifest it names.
    pub manifest: ContentHash,
}

impl From<DatasetVersion> for Version {
    fn from(v: DatasetVersion) -> Self {
        Version::Manifest(v.manifest)
    }
}

/// How [`Dataset::merge`] combines two branches (spec/0008 §5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MergeStrategy {
    /// Fast-forward when possible, else a 3-way union per field.
    #[default]
    Union,
    /// Only a fast-forward; anything else is refused (`conflict`).
    FastForwardOnly,
    /// A merge commit taking every field from this branch.
    Ours,
    /// A merge commit taking every field from the other branch.
    Theirs,
}

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    /// The other side was already in this branch's history.
    AlreadyUpToDate,
    /// The branch moved to the other side's Manifest.
    FastForward,
    /// A merge Manifest was published.
    Merged,
}

/// The result of a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeResult {
    /// What happened.
    pub kind: MergeKind,
    /// The branch's Manifest afterwards.
    pub manifest: ContentHash,
}

/// One version in a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The Manifest.
    pub manifest: ContentHash,
    /// Its parents (first: the branch it was made on).
    pub parents: Vec<ContentHash>,
    /// Who wrote it.
    pub writer: String,
    /// When, Unix nanoseconds (informative).
    pub time: u64,
    /// Commit message.
    pub message: String,
    /// Live records.
    pub records: u64,
}

/// Where a handle stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Position {
    /// Follows a branch.
    Ref(RefName),
    /// Pinned to a Manifest (what it was opened as, for messages).
    Pinned {
        manifest: ContentHash,
        label: String,
    },
}

/// Stats memo bound (entries), so a long-lived handle stays small.
const MEMO_MAX: usize = 256;

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) url: String,
    pub(crate) name: DatasetName,
    pub(crate) repo: Repo,
    pub(crate) writer: String,
    pub(crate) position: Position,
    /// (Manifest, field) → the field's cell stats in that version.
    pub(crate) memo: Mutex<HashMap<(ContentHash, String), Arc<StatsData>>>,
    /// The dataset's Genesis (hash, object), once read.
    pub(crate) genesis: Mutex<Option<(ContentHash, Genesis)>>,
    /// The last version read, decoded: reads of an unchanged version reuse
    /// it instead of decoding its Manifest and Schema again.
    pub(crate) last_snapshot: Mutex<Option<crate::Snapshot>>,
}

/// A dataset handle. Cheap to clone; clones share the session cache.
#[derive(Clone)]
pub struct Dataset {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Dataset");
        d.field("url", &self.inner.url)
            .field("name", &self.inner.name.as_str());
        match &self.inner.position {
            Position::Ref(name) => d.field("ref", &name.as_str()),
            Position::Pinned { label, .. } => d.field("pinned", label),
        };
        d.finish()
    }
}

fn parse_name(name: &str) -> Result<DatasetName, DatasetError> {
    DatasetName::parse(name).map_err(|e| DatasetError::InvalidName {
        name: name.to_owned(),
        reason: e.reason,
    })
}

pub(crate) fn parse_ref(name: &str) -> Result<RefName, DatasetError> {
    RefName::parse(name).map_err(|e| DatasetError::InvalidName {
        name: name.to_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A Genesis nonce: BLAKE3 of the clock, the process and a counter (unique
/// per creation; it need not be secret).
fn nonce() -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&now_nanos().to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let local = 0u8;
    hasher.update(&(std::ptr::addr_of!(local) as usize).to_le_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    out
}

fn repo_config() -> RepoConfig {
    let sleep: dreamdb_protocol::dag::SleepFn =
        Arc::new(|d: Duration| Box::pin(tokio::time::sleep(d)));
    RepoConfig {
        retry: RetryPolicy::default().with_sleep(sleep),
        ..RepoConfig::default()
    }
}

impl Dataset {
    fn new_handle(
        url: &str,
        name: DatasetName,
        connector: Arc<dyn Connector>,
        cache_bytes: Option<u64>,
        writer: Option<String>,
        position: Position,
    ) -> Result<Self, DatasetError> {
        let store = ObjectStore::new(connector, cache_bytes.unwrap_or(DEFAULT_CACHE_BYTES));
        let repo = Repo::with_config(store, name.clone(), repo_config())
            .map_err(DatasetError::from_dag)?;
        Ok(Dataset {
            inner: Arc::new(Inner {
                url: url.to_owned(),
                name,
                repo,
                writer: writer.unwrap_or_else(|| DEFAULT_WRITER.to_owned()),
                position,
                memo: Mutex::new(HashMap::new()),
                genesis: Mutex::new(None),
                last_snapshot: Mutex::new(None),
            }),
        })
    }

    /// A handle like this one at another position (same session).
    fn at(&self, position: Position) -> Dataset {
        Dataset {
            inner: Arc::new(Inner {
                url: self.inner.url.clone(),
                name: self.inner.name.clone(),
                repo: self.inner.repo.clone(),
                writer: self.inner.writer.clone(),
                position,
                memo: Mutex::new(HashMap::new()),
                genesis: Mutex::new(lock(&self.inner.genesis).clone()),
                last_snapshot: Mutex::new(None),
            }),
        }
    }

    async fn connect(url: &str) -> Result<Arc<dyn Connector>, DatasetError> {
        Ok(dreamdb_connector_http::connect(url).await?)
    }

    /// Creates dataset `name` in the backend at `url` (a directory path,
    /// `file://`, `memory://`, `http(s)://host/bucket[/prefix]`) with
    /// `schema`, and returns a handle on its `main` branch. Refused with
    /// `already-exists` if the dataset exists.
    pub async fn create(
        url: &str,
        name: &str,
        schema: Schema,
        options: CreateOptions,
    ) -> Result<Dataset, DatasetError> {
        let connector = Self::connect(url).await?;
        Self::create_on(connector, url, name, schema, options).await
    }

    /// [`Dataset::create`] on a connector the caller built (tests wrap one
    /// to count calls or inject faults).
    pub async fn create_on(
        connector: Arc<dyn Connector>,
        url: &str,
        name: &str,
        schema: Schema,
        options: CreateOptions,
    ) -> Result<Dataset, DatasetError> {
        let name = parse_name(name)?;
        schema
            .validate()
            .map_err(|i| DatasetError::InvalidSchema { reason: i.detail })?;
        let main = parse_ref(MAIN)?;
        let ds = Self::new_handle(
            url,
            name.clone(),
            connector,
            options.cache_bytes,
            options.writer,
            Position::Ref(main.clone()),
        )?;
        let repo = &ds.inner.repo;
        if let Some(state) = repo.read_ref(&main).await.map_err(DatasetError::from_dag)? {
            return Err(DatasetError::AlreadyExists {
                what: format!("dataset {name} (main at {})", state.manifest),
            });
        }
        let genesis = Genesis {
            dataset: name.as_str().to_owned(),
            created_unix_nanos: now_nanos(),
            nonce: nonce(),
        };
        repo.create_dataset(CreateDataset {
            genesis,
            schema,
            writer: ds.inner.writer.clone(),
            message: format!("create dataset {name}"),
            tracks: BTreeMap::new(),
            time_unix_nanos: None,
        })
        .await
        .map_err(|e| match e {
            DagError::AlreadyExists { existing, .. } => DatasetError::AlreadyExists {
                what: format!("dataset {name} (main at {existing})"),
            },
            other => DatasetError::from_dag(other),
        })?;
        Ok(ds)
    }

    /// Opens dataset `name` following branch `options.ref_name` (default
    /// `main`): one ref read to check it exists, then the current version
    /// is warmed (its Manifest, then its Schema and what a query reads
    /// first, see [`Dataset::warm`]).
    pub async fn open(
        url: &str,
        name: &str,
        options: OpenOptions,
    ) -> Result<Dataset, DatasetError> {
        let connector = Self::connect(url).await?;
        Self::open_on(connector, url, name, options).await
    }

    /// [`Dataset::open`] on a connector the caller built.
    pub async fn open_on(
        connector: Arc<dyn Connector>,
        url: &str,
        name: &str,
        options: OpenOptions,
    ) -> Result<Dataset, DatasetError> {
        let name = parse_name(name)?;
        let branch = parse_ref(options.ref_name.as_deref().unwrap_or(MAIN))?;
        let ds = Self::new_handle(
            url,
            name,
            connector,
            options.cache_bytes,
            options.writer,
            Position::Ref(branch.clone()),
        )?;
        let state = ds
            .inner
            .repo
            .require_ref(&branch)
            .await
            .map_err(|e| ds.not_found(e))?;
        if let Ok(snapshot) = Self::warm(ds.store(), state.manifest).await {
            *lock(&ds.inner.last_snapshot) = Some(snapshot);
        }
        Ok(ds)
    }

    /// Opens version `manifest` for the reads to come: the Manifest, then
    /// in one round trip its Schema and every object a query of an indexed
    /// field reads first (spatial index, compressor, tombstones, and the
    /// track's leaves when the Manifest holds a root page over few of
    /// them; design 0006). A handle keeps the result as its last version,
    /// so its first query goes straight to the cells' runs. Warming is an
    /// optimisation only: its errors are left for the read that needs the
    /// objects to report.
    async fn warm(
        store: &ObjectStore,
        manifest: ContentHash,
    ) -> Result<crate::Snapshot, DatasetError> {
        crate::Snapshot::open_prefetching(store.clone(), manifest, crate::read::every_first_read)
            .await
    }

    /// Opens one version read-only: a tag, a branch's current target, or a
    /// Manifest hash. The handle is pinned: it never reads a ref again, and
    /// writes are refused with `read-only`.
    pub async fn open_at(url: &str, name: &str, version: Version) -> Result<Dataset, DatasetError> {
        let connector = Self::connect(url).await?;
        Self::open_at_on(connector, url, name, version, OpenOptions::default()).await
    }

    /// [`Dataset::open_at`] on a connector the caller built, with options
    /// (`ref_name` is ignored).
    pub async fn open_at_on(
        connector: Arc<dyn Connector>,
        url: &str,
        name: &str,
        version: Version,
        options: OpenOptions,
    ) -> Result<Dataset, DatasetError> {
        let name = parse_name(name)?;
        let ds = Self::new_handle(
            url,
            name,
            connector,
            options.cache_bytes,
            options.writer,
            Position::Ref(parse_ref(MAIN)?),
        )?;
        let (manifest, label, warmed) = ds.resolve(&version).await?;
        let pinned = ds.at(Position::Pinned { manifest, label });
        *lock(&pinned.inner.last_snapshot) = warmed;
        Ok(pinned)
    }

    /// The Manifest a version names (checked to be of this dataset).
    /// The version is warmed (see [`Dataset::warm`]) in the same round trip
    /// as its Genesis is read.
    async fn resolve(
        &self,
        version: &Version,
    ) -> Result<(ContentHash, String, Option<crate::Snapshot>), DatasetError> {
        let repo = &self.inner.repo;
        let (manifest, label) = match version {
            Version::Tag(tag) => {
                let state = repo
                    .read_tag(&parse_ref(tag)?)
                    .await
                    .map_err(DatasetError::from_dag)?
                    .ok_or_else(|| DatasetError::NotFound {
                        what: format!("tag {tag:?} of dataset {}", self.inner.name),
                    })?;
                (state.manifest, format!("tags/{tag}"))
            }
            Version::Ref(branch) => {
                let state = repo
                    .read_ref(&parse_ref(branch)?)
                    .await
                    .map_err(DatasetError::from_dag)?
                    .ok_or_else(|| DatasetError::NotFound {
                        what: format!("branch {branch:?} of dataset {}", self.inner.name),
                    })?;
                (state.manifest, format!("refs/{branch}"))
            }
            Version::Manifest(hash) => (*hash, format!("manifest {}", hash.short())),
        };
        let m = repo.manifest(&manifest).await.map_err(|e| match e {
            DagError::Store(s)
                if matches!(*s, dreamdb_protocol::store::StoreError::Missing { .. }) =>
            {
                DatasetError::NotFound {
                    what: format!("manifest {manifest}"),
                }
            }
            other => DatasetError::from_dag(other),
        })?;
        let (genesis, warmed) = futures::future::join(
            repo.get_object::<Genesis>(&m.genesis),
            Self::warm(self.store(), manifest),
        )
        .await;
        let genesis = genesis.map_err(DatasetError::from_dag)?;
        if genesis.dataset != self.inner.name.as_str() {
            return Err(DatasetError::NotFound {
                what: format!(
                    "manifest {manifest} belongs to dataset {:?}, not {}",
                    genesis.dataset, self.inner.name
                ),
            });
        }
        *lock(&self.inner.genesis) = Some((m.genesis, genesis));
        Ok((manifest, label, warmed.ok()))
    }

    fn not_found(&self, e: DagError) -> DatasetError {
        match e {
            DagError::RefNotFound { name } => DatasetError::NotFound {
                what: format!("{name} of dataset {}", self.inner.name),
            },
            other => DatasetError::from_dag(other),
        }
    }

    // ----- internals shared with write/ and read/ -----

    /// The object store session.
    pub(crate) fn store(&self) -> &ObjectStore {
        self.inner.repo.store()
    }

    /// The version-control core.
    pub(crate) fn repo(&self) -> &Repo {
        &self.inner.repo
    }

    /// The branch this handle writes to, or `read-only`.
    pub(crate) fn writable_ref(&self) -> Result<&RefName, DatasetError> {
        match &self.inner.position {
            Position::Ref(name) => Ok(name),
            Position::Pinned { label, .. } => Err(DatasetError::ReadOnly {
                reason: format!(
                    "this handle is pinned to {label}; open the dataset on a branch to write"
                ),
            }),
        }
    }

    /// The Manifest this handle reads now: the ref's target (one ref read)
    /// or the pinned one (no read).
    pub(crate) async fn current(&self) -> Result<ContentHash, DatasetError> {
        match &self.inner.position {
            Position::Ref(name) => Ok(self
                .inner
                .repo
                .require_ref(name)
                .await
                .map_err(|e| self.not_found(e))?
                .manifest),
            Position::Pinned { manifest, .. } => Ok(*manifest),
        }
    }

    /// The current Manifest, read.
    pub(crate) async fn tip(&self) -> Result<(ContentHash, Manifest), DatasetError> {
        let hash = self.current().await?;
        let manifest = self
            .inner
            .repo
            .manifest(&hash)
            .await
            .map_err(DatasetError::from_dag)?;
        Ok((hash, manifest))
    }

    /// The version this handle reads, as a [`Snapshot`]: follows the ref
    /// (one ref read) or uses the pinned Manifest (no read; the Manifest
    /// and Schema come from the session cache when warm).
    pub(crate) async fn read_snapshot(&self) -> Result<Snapshot, DatasetError> {
        let hash = self.current().await?;
        self.snapshot_of(hash).await
    }

    /// The [`Snapshot`] of Manifest `hash` (verified, strictly decoded
    /// objects; served from the session cache when warm).
    pub(crate) async fn snapshot_of(&self, hash: ContentHash) -> Result<Snapshot, DatasetError> {
        Snapshot::open(self.store().clone(), hash).await
    }

    /// The dataset's Genesis (read once per handle).
    pub(crate) async fn genesis(&self, hash: ContentHash) -> Result<Genesis, DatasetError> {
        if let Some((h, g)) = lock(&self.inner.genesis).clone() {
            if h == hash {
                return Ok(g);
            }
        }
        let g: Genesis = self
            .inner
            .repo
            .get_object(&hash)
            .await
            .map_err(DatasetError::from_dag)?;
        *lock(&self.inner.genesis) = Some((hash, g.clone()));
        Ok(g)
    }

    pub(crate) fn memo_get(&self, manifest: ContentHash, field: &str) -> Option<Arc<StatsData>> {
        lock(&self.inner.memo)
            .get(&(manifest, field.to_owned()))
            .cloned()
    }

    pub(crate) fn memo_put(&self, manifest: ContentHash, field: &str, stats: Arc<StatsData>) {
        let mut memo = lock(&self.inner.memo);
        if memo.len() >= MEMO_MAX {
            memo.clear();
        }
        memo.insert((manifest, field.to_owned()), stats);
    }

    pub(crate) fn writer(&self) -> &str {
        &self.inner.writer
    }

    // ----- accessors -----

    /// The dataset's name.
    pub fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    /// The backend URL this handle was opened with.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The branch this handle follows (`None` when pinned).
    pub fn ref_name(&self) -> Option<&str> {
        match &self.inner.position {
            Position::Ref(name) => Some(name.as_str()),
            Position::Pinned { .. } => None,
        }
    }

    /// Whether the handle is pinned to one version (read-only).
    pub fn is_pinned(&self) -> bool {
        matches!(self.inner.position, Position::Pinned { .. })
    }

    /// The Manifest this handle reads now.
    pub async fn manifest_hash(&self) -> Result<ContentHash, DatasetError> {
        self.current().await
    }

    /// The Schema of the current version.
    pub async fn schema(&self) -> Result<Schema, DatasetError> {
        Ok(self.read_snapshot().await?.schema().clone())
    }

    /// Live records of the current version.
    pub async fn records(&self) -> Result<u64, DatasetError> {
        Ok(self.read_snapshot().await?.records())
    }

    /// What this session's object store has done (requests, bytes, cache).
    pub fn store_stats(&self) -> dreamdb_protocol::store::StoreStats {
        self.store().stats()
    }

    // ----- versions -----

    /// Tags the current version as `label` (create-once: a tag never
    /// moves; tagging the same version twice succeeds, another version is
    /// `already-exists`).
    pub async fn snapshot(&self, label: &str) -> Result<DatasetVersion, DatasetError> {
        let tag = parse_ref(label)?;
        let manifest = self.current().await?;
        self.inner
            .repo
            .tag(&tag, manifest)
            .await
            .map_err(DatasetError::from_dag)?;
        Ok(DatasetVersion {
            label: label.to_owned(),
            manifest,
        })
    }

    /// Creates branch `name` at the current version and returns a handle on
    /// it (sharing this session). A pinned handle branches from its pinned
    /// version.
    pub async fn branch(&self, name: &str) -> Result<Dataset, DatasetError> {
        let branch = parse_ref(name)?;
        let manifest = self.current().await?;
        self.inner
            .repo
            .branch(&branch, manifest)
            .await
            .map_err(DatasetError::from_dag)?;
        Ok(self.at(Position::Ref(branch)))
    }

    /// A handle on another existing branch (same session).
    pub async fn checkout(&self, name: &str) -> Result<Dataset, DatasetError> {
        let branch = parse_ref(name)?;
        self.inner
            .repo
            .require_ref(&branch)
            .await
            .map_err(|e| self.not_found(e))?;
        Ok(self.at(Position::Ref(branch)))
    }

    /// Merges branch `other` into this handle's branch (spec/0008 §5, and
    /// spec/0006 §5.7).
    pub async fn merge(
        &self,
        other: &str,
        strategy: MergeStrategy,
    ) -> Result<MergeResult, DatasetError> {
        let ours = self.writable_ref()?.clone();
        let theirs = self.branch_target(other).await?;
        let repo = &self.inner.repo;
        let outcome = match strategy {
            MergeStrategy::FastForwardOnly => {
                let state = repo
                    .fast_forward(&ours, theirs)
                    .await
                    .map_err(DatasetError::from_dag)?;
                return Ok(MergeResult {
                    kind: if state.manifest == theirs {
                        MergeKind::FastForward
                    } else {
                        MergeKind::AlreadyUpToDate
                    },
                    manifest: state.manifest,
                });
            }
            MergeStrategy::Union => {
                let options = self.merge_options(other, Strategy::Union, true);
                repo.merge(&ours, theirs, &options).await
            }
            MergeStrategy::Ours => {
                let options = self.merge_options(other, Strategy::Ours, false);
                repo.merge(&ours, theirs, &options).await
            }
            MergeStrategy::Theirs => {
                let options = self.merge_options(other, Strategy::Theirs, false);
                repo.merge(&ours, theirs, &options).await
            }
        }
        .map_err(DatasetError::from_dag)?;
        Ok(merge_result(outcome))
    }

    /// Merges every branch of `others` into this handle's branch as ONE
    /// Manifest and ONE compare-and-swap (3-way union per branch, in
    /// order; any conflict refuses the whole merge).
    pub async fn merge_many(&self, others: &[&str]) -> Result<MergeResult, DatasetError> {
        let ours = self.writable_ref()?.clone();
        let mut targets = Vec::with_capacity(others.len());
        for other in others {
            targets.push(self.branch_target(other).await?);
        }
        let options = self.merge_options(&others.join(", "), Strategy::Union, true);
        let outcome = self
            .inner
            .repo
            .merge_many(&ours, &targets, &options)
            .await
            .map_err(DatasetError::from_dag)?;
        Ok(merge_result(outcome))
    }

    fn merge_options(&self, other: &str, strategy: Strategy, ff: bool) -> MergeOptions {
        let mut options = MergeOptions::union(&self.inner.writer, &format!("merge {other}"))
            .with_strategy(strategy);
        options.allow_fast_forward = ff;
        options
    }

    async fn branch_target(&self, name: &str) -> Result<ContentHash, DatasetError> {
        Ok(self
            .inner
            .repo
            .require_ref(&parse_ref(name)?)
            .await
            .map_err(|e| self.not_found(e))?
            .manifest)
    }

    /// The history of the current version, newest first, at most `limit`
    /// entries (every parent followed).
    pub async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, DatasetError> {
        let start = self.current().await?;
        let mut walk = self.inner.repo.history(start);
        let mut out = Vec::new();
        while out.len() < limit {
            let Some((hash, m)) = walk.next().await.map_err(DatasetError::from_dag)? else {
                break;
            };
            out.push(HistoryEntry {
                manifest: hash,
                parents: m.parents,
                writer: m.writer,
                time: m.time_unix_nanos,
                message: m.message,
                records: m.records,
            });
        }
        Ok(out)
    }

    // ----- deletes -----

    /// Deletes the records at `anchors` (spec/0020): a new tombstone list
    /// extending the previous one, `records` decremented by the live
    /// records deleted. Anchors without a record are refused
    /// (`invalid-input`, nothing written); already deleted ones are kept
    /// as they are. Rebases onto a moved tip like an append.
    pub async fn delete(&self, anchors: &[u64], reason: &str) -> Result<u64, DatasetError> {
        let name = self.writable_ref()?.clone();
        if anchors.is_empty() {
            return Err(DatasetError::invalid("_anchor", "no anchors to delete"));
        }
        let wanted: BTreeSet<u64> = anchors.iter().copied().collect();
        let sorted: Vec<u64> = wanted.iter().copied().collect();
        let (_, tip) = self.tip().await?;
        let found = existing_anchors(self.store(), &tip, &sorted).await?;
        if let Some(missing) = sorted.iter().find(|a| !found.contains(a)) {
            let count = sorted.iter().filter(|a| !found.contains(a)).count();
            return Err(DatasetError::invalid(
                "_anchor",
                format!(
                    "no record at anchor {missing} ({}){}",
                    TimeAnchor::new(*missing),
                    if count > 1 {
                        format!(" and {} other anchors", count - 1)
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        let time = now_nanos();
        let deleted = Arc::new(Mutex::new(0u64));
        let repo = self.inner.repo.clone();
        let writer = self.inner.writer.clone();
        let reason = reason.to_owned();
        let message = format!("delete {} records: {reason}", sorted.len());
        let counter = deleted.clone();
        repo.commit_changes(
            &name,
            |_hash, tip: Manifest| {
                let repo = repo.clone();
                let sorted = sorted.clone();
                let (writer, reason, message) = (writer.clone(), reason.clone(), message.clone());
                let counter = counter.clone();
                async move {
                    let (parents, mut entries) = match tip.registry.get(TOMBSTONES_KEY) {
                        Some(hash) => {
                            let list: TombstoneList = repo.get_object(hash).await?;
                            (vec![*hash], list.entries)
                        }
                        None => (Vec::new(), Vec::new()),
                    };
                    let before = entries.len();
                    let mut by_anchor: BTreeMap<TimeAnchor, Tombstone> =
                        entries.drain(..).map(|t| (t.anchor, t)).collect();
                    for a in &sorted {
                        by_anchor
                            .entry(TimeAnchor::new(*a))
                            .or_insert_with(|| Tombstone {
                                anchor: TimeAnchor::new(*a),
                                reason: reason.clone(),
                                time_unix_nanos: time,
                            });
                    }
                    let newly = (by_anchor.len() - before) as u64;
                    *lock(&counter) = newly;
                    let list = TombstoneList {
                        parents,
                        entries: by_anchor.into_values().collect(),
                    };
                    let list_hash = repo.put_object(&list).await?;
                    let mut draft = Draft::from_manifest(&tip, &writer, &message);
                    draft.registry.insert(TOMBSTONES_KEY.to_owned(), list_hash);
                    draft.records = tip.records.saturating_sub(newly);
                    Ok(draft)
                }
            },
            &CommitLoopOptions::default(),
        )
        .await
        .map_err(DatasetError::from_dag)?;
        let n = *lock(&deleted);
        Ok(n)
    }

    /// The tombstones of the current version, by anchor.
    pub async fn tombstones(&self) -> Result<Vec<Tombstone>, DatasetError> {
        let (_, tip) = self.tip().await?;
        match tip.registry.get(TOMBSTONES_KEY) {
            Some(hash) => {
                let list: TombstoneList = self
                    .inner
                    .repo
                    .get_object(hash)
                    .await
                    .map_err(DatasetError::from_dag)?;
                Ok(list.entries)
            }
            None => Ok(Vec::new()),
        }
    }

    // ----- schema -----

    /// Replaces the schema by `new`, which must be a forward-compatible
    /// evolution of the current one (spec/0017): existing fields unchanged,
    /// added fields nullable scalars or fragment fields. Not a commuting
    /// change: a lost race is reported (`conflict`), not rebased.
    pub async fn update_schema(&self, new: Schema) -> Result<ContentHash, DatasetError> {
        let name = self.writable_ref()?.clone();
        let (_, tip) = self.tip().await?;
        let old: Schema = self
            .inner
            .repo
            .schema(&tip.schema)
            .await
            .map_err(DatasetError::from_dag)?;
        let added = check_evolution(&old, &new)?;
        if added.is_empty() {
            return Err(DatasetError::InvalidSchema {
                reason: "the new schema adds nothing".to_owned(),
            });
        }
        let (bytes, schema_hash) = new.encode()?;
        self.store().put_bytes(bytes).await?;
        let base_schema = tip.schema;
        let writer = self.inner.writer.clone();
        let message = format!("update schema: add {}", added.join(", "));
        let committed = self
            .inner
            .repo
            .commit_changes(
                &name,
                |_hash, tip: Manifest| {
                    let (writer, message) = (writer.clone(), message.clone());
                    async move {
                        if tip.schema != base_schema {
                            return Err(DagError::MergeConflict {
                                field: "schema".to_owned(),
                                reason: "the schema changed since it was read".to_owned(),
                            });
                        }
                        let mut draft = Draft::from_manifest(&tip, &writer, &message);
                        draft.schema = schema_hash;
                        Ok(draft)
                    }
                },
                &CommitLoopOptions {
                    max_attempts: Some(1),
                    retry: None,
                },
            )
            .await
            .map_err(DatasetError::from_dag)?;
        Ok(committed.manifest)
    }
}

fn merge_result(outcome: MergeOutcome) -> MergeResult {
    match outcome {
        MergeOutcome::AlreadyUpToDate { at } => MergeResult {
            kind: MergeKind::AlreadyUpToDate,
            manifest: at,
        },
        MergeOutcome::FastForward { to } => MergeResult {
            kind: MergeKind::FastForward,
            manifest: to,
        },
        MergeOutcome::Merged { manifest, .. } => MergeResult {
            kind: MergeKind::Merged,
            manifest,
        },
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
