//! Shared helpers of the `dag_*` tests: backends, a small dataset, synthetic
//! track entries pointing at real (small) segment objects, spatial indexes,
//! and reading a Manifest's tracks back as plain maps.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ciborium::value::Value;
use dreamdb_connector::local::LocalConnector;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::Connector;
use dreamdb_core::ref_name::RefName;
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{CreateDataset, Repo, RepoConfig, RetryPolicy, SleepFn};
use dreamdb_protocol::objects::{
    DatasetName, FieldSpec, Genesis, IndexSpec, Metric, ObjectKind, ScalarDtype, Schema,
    SchemaField, SpatialIndexObject, TrackRoot as StoredRoot,
};
use dreamdb_protocol::store::ObjectStore;
use dreamdb_protocol::track::{KeyRange, TrackConfig, TrackKey, TrackRoot, TrackValue};

/// Field → key bytes → value: a Manifest's tracks as plain maps.
pub type Tracks = BTreeMap<String, BTreeMap<Vec<u8>, TrackValue>>;

/// A backend under test, with whatever must live as long as it.
pub struct Backend {
    pub name: &'static str,
    pub connector: Arc<dyn Connector>,
    pub _dir: Option<tempfile::TempDir>,
}

/// The backends every backend-generic test runs on. Extend here.
pub fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalConnector::open(dir.path().join("store")).unwrap();
    vec![
        Backend {
            name: "memory",
            connector: Arc::new(MemoryConnector::new()),
            _dir: None,
        },
        Backend {
            name: "local",
            connector: Arc::new(local),
            _dir: Some(dir),
        },
    ]
}

pub fn tokio_sleep() -> SleepFn {
    Arc::new(|d: Duration| Box::pin(tokio::time::sleep(d)))
}

/// A config with tiny pages (so tracks page after a few entries) and quick
/// tokio-based backoff.
pub fn config() -> RepoConfig {
    RepoConfig {
        track: TrackConfig {
            fanout: 4,
            page_target_bytes: 512,
            inline_max_bytes: 400,
        },
        retry: RetryPolicy {
            max_attempts: 64,
            base: Duration::from_millis(1),
            max: Duration::from_millis(20),
            ..RetryPolicy::default()
        }
        .with_sleep(tokio_sleep()),
        ..RepoConfig::default()
    }
}

pub fn dataset() -> DatasetName {
    DatasetName::parse("dagtest").unwrap()
}

pub fn repo(connector: Arc<dyn Connector>) -> Repo {
    repo_with(connector, config())
}

pub fn repo_with(connector: Arc<dyn Connector>, config: RepoConfig) -> Repo {
    Repo::with_config(ObjectStore::new(connector, 8 << 20), dataset(), config).unwrap()
}

/// A repo of dataset `name` (shared backends need a fresh name per run).
pub fn repo_named(connector: Arc<dyn Connector>, dataset: &str) -> Repo {
    Repo::with_config(
        ObjectStore::new(connector, 8 << 20),
        DatasetName::parse(dataset).unwrap(),
        config(),
    )
    .unwrap()
}

pub fn name(s: &str) -> RefName {
    RefName::parse(s).unwrap()
}

/// Fields of the test schema: an embedding, a scalar, a blob and a
/// fragment field.
pub const FIELDS: [&str; 4] = ["emb", "label", "img", "clip"];

pub fn schema() -> Schema {
    let mut fields = BTreeMap::new();
    fields.insert(
        "emb".to_owned(),
        SchemaField {
            spec: FieldSpec::Embedding {
                dim: 4,
                metric: Metric::L2,
                index: IndexSpec::Ivf { k: 8 },
                compression: None,
                rerank: false,
            },
            tag: None,
        },
    );
    fields.insert(
        "label".to_owned(),
        SchemaField {
            spec: FieldSpec::Scalar {
                dtype: ScalarDtype::I64,
                nullable: false,
            },
            tag: None,
        },
    );
    fields.insert(
        "img".to_owned(),
        SchemaField {
            spec: FieldSpec::Blob {
                mime: "image/png".to_owned(),
                max_bytes: 1 << 20,
            },
            tag: None,
        },
    );
    fields.insert(
        "clip".to_owned(),
        SchemaField {
            spec: FieldSpec::Fragment {
                mime: "video/mp4".to_owned(),
            },
            tag: None,
        },
    );
    Schema { fields }
}

/// Creates the dataset; returns its first Manifest.
pub async fn create(repo: &Repo) -> ContentHash {
    let (_, m0) = repo
        .create_dataset(CreateDataset {
            genesis: Genesis {
                dataset: repo.dataset().as_str().to_owned(),
                created_unix_nanos: 1_000,
                nonce: [7; 16],
            },
            schema: schema(),
            writer: "test".to_owned(),
            message: "create".to_owned(),
            tracks: BTreeMap::new(),
            time_unix_nanos: Some(1_000),
        })
        .await
        .unwrap();
    m0
}

/// Writes a small real segment object named by `tag` and returns its hash.
pub async fn segment(repo: &Repo, tag: &str) -> ContentHash {
    repo.store()
        .put_bytes(format!("segment {tag}").into_bytes())
        .await
        .unwrap()
}

/// A cell-order entry of `segment` in `cell`, `count` records.
pub fn cell_entry(cell: u32, segment: ContentHash, count: u32) -> (TrackKey, TrackValue) {
    (
        TrackKey::cell_run(cell, &segment),
        TrackValue::CellRun {
            segment,
            offset: 0,
            len: 16,
            count,
            run_hash: ContentHash::of(&count.to_le_bytes()),
            raw: None,
        },
    )
}

/// An anchor-order entry of `segment` starting at `anchor`.
pub fn anchor_entry(anchor: u64, segment: ContentHash, count: u32) -> (TrackKey, TrackValue) {
    (
        TrackKey::anchor_run(anchor, &segment),
        TrackValue::AnchorRun {
            segment,
            last_anchor: anchor + u64::from(count.max(1)) - 1,
            count,
            table_offset: 0,
            table_len: 8 * u64::from(count),
            storage: None,
        },
    )
}

/// Converts a stored root to a track root (the two types may differ while
/// `objects` keeps its placeholder; see `dag::roots`).
pub fn track_root(root: &StoredRoot) -> TrackRoot {
    let mut value = Value::serialized(root).unwrap();
    if let Value::Map(fields) = &value {
        if let [(Value::Text(n), inner)] = fields.as_slice() {
            if n == "inline" || n == "paged" {
                value = inner.clone();
            }
        }
    }
    value.deserialized().unwrap()
}

/// Every entry of every track of `manifest` (fields with no entries are
/// left out, so "absent" and "empty" compare equal).
pub async fn tracks_of(repo: &Repo, manifest: &ContentHash) -> Tracks {
    let m = repo.manifest(manifest).await.unwrap();
    let mut out = Tracks::new();
    for (field, state) in &m.tracks {
        let root = track_root(&state.root);
        let entries = repo
            .tracks()
            .scan_all(&root, KeyRange::all())
            .await
            .unwrap();
        if !entries.is_empty() {
            out.insert(
                field.clone(),
                entries
                    .into_iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), v))
                    .collect(),
            );
        }
    }
    out
}

/// Writes a spatial index with `parents` and `changed_cells` (distinct
/// per `seed`).
pub async fn spatial_index(
    repo: &Repo,
    seed: u64,
    parents: Vec<ContentHash>,
    changed_cells: Vec<u32>,
) -> ContentHash {
    let index = SpatialIndexObject {
        algorithm: "dreamdb.ivf".to_owned(),
        metric: Metric::L2,
        dim: 4,
        cells: 8,
        params: Value::Integer(seed.into()),
        parents,
        changed_cells,
    };
    let (bytes, hash) = index.encode().unwrap();
    repo.store().put_bytes(bytes).await.unwrap();
    hash
}

/// Runs before a conditional write of `main`'s ref; given how many such
/// runs are left (counting this one).
pub type BeforeMainUpdate =
    Box<dyn Fn(usize) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// A connector that counts PUTs to ref keys (`.../refs/...`) and can run
/// a hook (another writer's commit, say) before each of the next
/// `hook_runs` conditional writes of `main`'s ref.
pub struct RefPutCounter {
    pub inner: Arc<dyn Connector>,
    pub ref_puts: std::sync::atomic::AtomicU64,
    hook_runs: std::sync::atomic::AtomicUsize,
    hook: Option<BeforeMainUpdate>,
}

impl std::fmt::Debug for RefPutCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefPutCounter")
            .field("ref_puts", &self.ref_puts)
            .field("hook_runs", &self.hook_runs)
            .finish_non_exhaustive()
    }
}

impl RefPutCounter {
    pub fn new(inner: Arc<dyn Connector>) -> Self {
        RefPutCounter {
            inner,
            ref_puts: std::sync::atomic::AtomicU64::new(0),
            hook_runs: std::sync::atomic::AtomicUsize::new(0),
            hook: None,
        }
    }

    /// This counter, running `hook` before the next `runs` conditional
    /// writes of `main`'s ref.
    pub fn with_hook(mut self, runs: usize, hook: BeforeMainUpdate) -> Self {
        self.hook_runs = std::sync::atomic::AtomicUsize::new(runs);
        self.hook = Some(hook);
        self
    }

    pub fn ref_puts(&self) -> u64 {
        self.ref_puts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Connector for RefPutCounter {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn get(
        &self,
        key: &dreamdb_connector::ObjectKey,
    ) -> Result<dreamdb_connector::GetResult, dreamdb_connector::ConnectorError> {
        self.inner.get(key).await
    }
    async fn get_range(
        &self,
        key: &dreamdb_connector::ObjectKey,
        range: dreamdb_connector::ByteRange,
    ) -> Result<bytes::Bytes, dreamdb_connector::ConnectorError> {
        self.inner.get_range(key, range).await
    }
    async fn head(
        &self,
        key: &dreamdb_connector::ObjectKey,
    ) -> Result<dreamdb_connector::ObjectMeta, dreamdb_connector::ConnectorError> {
        self.inner.head(key).await
    }
    async fn put(
        &self,
        key: &dreamdb_connector::ObjectKey,
        bytes: bytes::Bytes,
        mode: dreamdb_connector::PutMode,
    ) -> Result<dreamdb_connector::PutOutcome, dreamdb_connector::ConnectorError> {
        use std::sync::atomic::Ordering;
        if key.as_str().contains("/refs/") {
            self.ref_puts.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(hook) = &self.hook {
            if key.as_str().ends_with("/refs/main")
                && matches!(mode, dreamdb_connector::PutMode::Update(_))
            {
                let left = self.hook_runs.load(Ordering::SeqCst);
                if left > 0 {
                    self.hook_runs.store(left - 1, Ordering::SeqCst);
                    hook(left).await;
                }
            }
        }
        self.inner.put(key, bytes, mode).await
    }
    fn list<'a>(
        &'a self,
        prefix: &'a dreamdb_connector::KeyPrefix,
    ) -> dreamdb_connector::ListStream<'a> {
        self.inner.list(prefix)
    }
    async fn delete(
        &self,
        key: &dreamdb_connector::ObjectKey,
    ) -> Result<(), dreamdb_connector::ConnectorError> {
        self.inner.delete(key).await
    }
}

/// Appends `entries` to `field` on branch `branch` (a rebasing commit),
/// placed under `si`; returns the new Manifest.
pub async fn append(
    repo: &Repo,
    branch: &str,
    field: &str,
    entries: Vec<(TrackKey, TrackValue)>,
    si: Option<ContentHash>,
) -> Result<ContentHash, dreamdb_protocol::dag::DagError> {
    use dreamdb_protocol::dag::{ChangeSet, CommitLoopOptions, FieldChanges};
    use dreamdb_protocol::track::Change;
    let delta: i64 = entries
        .iter()
        .filter(|(k, _)| k.is_anchor_run())
        .map(|(_, v)| i64::from(v.count()))
        .sum();
    let mut set = ChangeSet {
        writer: "test".to_owned(),
        message: format!("append to {field}"),
        records_delta: delta,
        ..ChangeSet::default()
    };
    set.fields.insert(
        field.to_owned(),
        FieldChanges {
            changes: entries
                .into_iter()
                .map(|(k, v)| Change::Put(k, v))
                .collect(),
            spatial_index: si,
            compressor: None,
        },
    );
    Ok(repo
        .apply_changes(&name(branch), &set, &CommitLoopOptions::default())
        .await?
        .manifest)
}

/// Deletes `keys` from `field` on `branch`.
pub async fn delete(repo: &Repo, branch: &str, field: &str, keys: Vec<TrackKey>) -> ContentHash {
    use dreamdb_protocol::dag::{ChangeSet, CommitLoopOptions, FieldChanges};
    use dreamdb_protocol::track::Change;
    let mut set = ChangeSet {
        writer: "test".to_owned(),
        message: format!("delete from {field}"),
        ..ChangeSet::default()
    };
    set.fields.insert(
        field.to_owned(),
        FieldChanges {
            changes: keys.into_iter().map(Change::Delete).collect(),
            ..FieldChanges::default()
        },
    );
    repo.apply_changes(&name(branch), &set, &CommitLoopOptions::default())
        .await
        .unwrap()
        .manifest
}

/// A maintenance step on `branch`: sets `field`'s spatial index to `si`
/// and applies `changes` (a rebuild of the changed cells).
pub async fn set_spatial_index(
    repo: &Repo,
    branch: &str,
    field: &str,
    si: ContentHash,
    changes: Vec<dreamdb_protocol::track::Change>,
) -> ContentHash {
    use dreamdb_protocol::dag::{CommitLoopOptions, Draft};
    use dreamdb_protocol::objects::TrackState;
    let changes = &changes;
    repo.commit_changes(
        &name(branch),
        |_tip, m| async move {
            let mut draft = Draft::from_manifest(&m, "maint", "rebuild");
            let root = match m.tracks.get(field) {
                Some(s) => track_root(&s.root),
                None => TrackRoot::empty(),
            };
            let (root, _) = repo.tracks().apply(&root, changes.iter().copied()).await?;
            let stored = stored_root(&root);
            draft.tracks.insert(
                field.to_owned(),
                TrackState {
                    root: stored,
                    spatial_index: Some(si),
                    compressor: None,
                    stats: None,
                    last_anchor: None,
                },
            );
            Ok(draft)
        },
        &CommitLoopOptions::default(),
    )
    .await
    .unwrap()
    .manifest
}

/// The stored form of a track root (inverse of [`track_root`]).
pub fn stored_root(root: &TrackRoot) -> StoredRoot {
    let value = Value::serialized(root).unwrap();
    if let Ok(r) = value.deserialized::<StoredRoot>() {
        return r;
    }
    let inline = matches!(&value, Value::Map(f) if f.iter().any(|(k, _)| matches!(k, Value::Text(t) if t == "entries")));
    let name = if inline { "inline" } else { "paged" };
    Value::Map(vec![(Value::Text(name.to_owned()), value)])
        .deserialized()
        .unwrap()
}

/// The entry writer `w`'s commit `i` appends in a race.
pub fn race_entry(seg: ContentHash, w: usize, i: usize) -> (TrackKey, TrackValue) {
    anchor_entry((w as u64) * 1_000_000 + i as u64, seg, 1)
}

/// Writer `w` appends `commits` entries to `label` on `main`, one commit
/// each; returns its published Manifests and total attempts.
pub async fn race_writer(repo: &Repo, w: usize, commits: usize) -> (Vec<ContentHash>, u32) {
    use dreamdb_protocol::dag::{ChangeSet, CommitLoopOptions, FieldChanges};
    use dreamdb_protocol::track::Change;
    let seg = segment(repo, &format!("writer-{w}")).await;
    let mut published = Vec::new();
    let mut attempts = 0;
    for i in 0..commits {
        let (k, v) = race_entry(seg, w, i);
        let mut set = ChangeSet {
            writer: format!("writer-{w}"),
            message: format!("commit {i}"),
            records_delta: 1,
            ..ChangeSet::default()
        };
        set.fields.insert(
            "label".to_owned(),
            FieldChanges {
                changes: vec![Change::Put(k, v)],
                ..FieldChanges::default()
            },
        );
        let done = repo
            .apply_changes(&name("main"), &set, &CommitLoopOptions::default())
            .await
            .unwrap();
        attempts += done.attempts;
        published.push(done.manifest);
    }
    (published, attempts)
}

/// Checks that nothing was lost: every published Manifest is in `main`'s
/// history, `main` holds every writer's entries, and the record count is
/// exact.
pub async fn check_race(repo: &Repo, published: &[ContentHash], writers: usize, commits: usize) {
    let tip = repo
        .read_ref(&name("main"))
        .await
        .unwrap()
        .unwrap()
        .manifest;
    let history: std::collections::HashSet<ContentHash> = repo
        .history(tip)
        .collect()
        .await
        .unwrap()
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    for p in published {
        assert!(
            history.contains(p),
            "published commit {p} is not in history"
        );
    }
    assert_eq!(history.len(), writers * commits + 1);
    let tracks = tracks_of(repo, &tip).await;
    let mut expected = Vec::new();
    for w in 0..writers {
        let seg = ContentHash::of(format!("segment writer-{w}").as_bytes());
        for i in 0..commits {
            expected.push(race_entry(seg, w, i).0.as_bytes().to_vec());
        }
    }
    expected.sort();
    let got: Vec<Vec<u8>> = tracks["label"].keys().cloned().collect();
    assert_eq!(got, expected);
    let m = repo.manifest(&tip).await.unwrap();
    assert_eq!(m.records, (writers * commits) as u64);
}

pub mod model;
