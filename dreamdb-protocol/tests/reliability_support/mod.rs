//! Shared helpers of the `reliability_*` tests: a small dataset whose
//! commits are batches of track entries pointing at real segment objects,
//! `verify_reachable` (everything a Manifest reaches exists and verifies),
//! a full read that must fail loudly on any damage, child-process plumbing,
//! a seeded PRNG (the protocol crate has no `rand` dev-dependency) and RSS.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ciborium::value::Value;
use dreamdb_connector::Connector;
use dreamdb_core::cbor;
use dreamdb_core::ref_name::RefName;
use dreamdb_core::time::TimeAnchor;
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{
    track_root_of, ChangeSet, CommitLoopOptions, CreateDataset, DagError, FieldChanges, Repo,
    RepoConfig, RetryPolicy, SleepFn, TOMBSTONES_KEY,
};
use dreamdb_protocol::objects::{
    DatasetName, FieldSpec, Genesis, ScalarDtype, Schema, SchemaField, SpatialIndexObject,
    Tombstone, TombstoneList,
};
use dreamdb_protocol::store::{links, ObjectStore};
use dreamdb_protocol::track::{Change, KeyRange, TrackConfig, TrackKey, TrackValue};

/// The two fields every batch writes (both scalar-like, anchor order).
pub const FIELDS: [&str; 2] = ["label", "img"];

/// Entries per field in one batch.
pub const ENTRIES_PER_FIELD: u64 = 2;

/// Records one batch adds (`records_delta`).
pub const RECORDS_PER_BATCH: i64 = ENTRIES_PER_FIELD as i64;

pub fn tokio_sleep() -> SleepFn {
    Arc::new(|d: Duration| Box::pin(tokio::time::sleep(d)))
}

/// Tiny pages (tracks page after a few entries, so commits write pages),
/// generous retries with quick tokio backoff.
pub fn config() -> RepoConfig {
    RepoConfig {
        track: TrackConfig {
            fanout: 4,
            page_target_bytes: 512,
            inline_max_bytes: 400,
        },
        retry: RetryPolicy {
            max_attempts: 400,
            base: Duration::from_millis(1),
            max: Duration::from_millis(25),
            ..RetryPolicy::default()
        }
        .with_sleep(tokio_sleep()),
        ..RepoConfig::default()
    }
}

pub const DATASET: &str = "reliability";

/// A fresh session (its own cache) on `connector`.
pub fn repo(connector: Arc<dyn Connector>) -> Repo {
    repo_named(connector, DATASET)
}

pub fn repo_named(connector: Arc<dyn Connector>, dataset: &str) -> Repo {
    repo_with(connector, dataset, config())
}

pub fn repo_with(connector: Arc<dyn Connector>, dataset: &str, config: RepoConfig) -> Repo {
    Repo::with_config(
        ObjectStore::new(connector, 8 << 20),
        DatasetName::parse(dataset).unwrap(),
        config,
    )
    .unwrap()
}

pub fn name(s: &str) -> RefName {
    RefName::parse(s).unwrap()
}

pub fn schema() -> Schema {
    let mut fields = BTreeMap::new();
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
    Schema { fields }
}

/// Creates the dataset; returns its first Manifest.
pub async fn create(repo: &Repo) -> ContentHash {
    let (_, m0) = repo
        .create_dataset(CreateDataset {
            genesis: Genesis {
                dataset: repo.dataset().as_str().to_owned(),
                created_unix_nanos: 1_000,
                nonce: [9; 16],
            },
            schema: schema(),
            writer: "reliability".to_owned(),
            message: "create".to_owned(),
            tracks: BTreeMap::new(),
            time_unix_nanos: Some(1_000),
        })
        .await
        .unwrap();
    m0
}

/// The bytes of writer `w`'s batch `i` segment. They start with 0xff (a
/// CBOR "break" outside any indefinite item), so a segment never passes
/// for a CBOR object in the generic walk.
pub fn segment_bytes(w: u64, i: u64) -> Vec<u8> {
    let mut bytes = vec![0xff];
    bytes.extend_from_slice(format!("segment writer {w} batch {i} ").as_bytes());
    bytes.extend(std::iter::repeat_n((w * 31 + i) as u8, 48));
    bytes
}

/// The first anchor of entry `e` of writer `w`'s batch `i` (disjoint for
/// every (w, i, e) below a million batches per writer).
pub fn anchor_of(w: u64, i: u64, e: u64) -> u64 {
    w * 1_000_000_000 + i * 1_000 + e * 10
}

/// The track keys of writer `w`'s batch `i` in `field` (the segment is
/// part of the key).
pub fn batch_keys(w: u64, i: u64) -> Vec<TrackKey> {
    let seg = ContentHash::of(&segment_bytes(w, i));
    (0..ENTRIES_PER_FIELD)
        .map(|e| TrackKey::anchor_run(anchor_of(w, i, e), &seg))
        .collect()
}

fn anchor_value(anchor: u64, segment: ContentHash, e: u64) -> TrackValue {
    TrackValue::AnchorRun {
        segment,
        last_anchor: anchor,
        count: 1,
        table_offset: e * 8,
        table_len: 8,
        storage: None,
    }
}

/// Writes writer `w`'s batch `i` segment through the store and returns the
/// change set that adds its entries to every field of [`FIELDS`].
pub async fn batch(repo: &Repo, w: u64, i: u64) -> ChangeSet {
    let seg = repo.store().put_bytes(segment_bytes(w, i)).await.unwrap();
    batch_changes(seg, w, i)
}

/// The change set of writer `w`'s batch `i`, its segment `seg` already
/// written.
pub fn batch_changes(seg: ContentHash, w: u64, i: u64) -> ChangeSet {
    let mut set = ChangeSet {
        writer: format!("writer-{w}"),
        message: batch_message(w, i),
        records_delta: RECORDS_PER_BATCH,
        ..ChangeSet::default()
    };
    for field in FIELDS {
        let changes = (0..ENTRIES_PER_FIELD)
            .map(|e| {
                let anchor = anchor_of(w, i, e);
                Change::Put(
                    TrackKey::anchor_run(anchor, &seg),
                    anchor_value(anchor, seg, e),
                )
            })
            .collect();
        set.fields.insert(
            field.to_owned(),
            FieldChanges {
                changes,
                ..FieldChanges::default()
            },
        );
    }
    set
}

pub fn batch_message(w: u64, i: u64) -> String {
    format!("batch w{w} i{i}")
}

/// A change set that tombstones `anchors` (and changes no track).
pub fn tombstone_changes(anchors: &[u64], writer: &str) -> ChangeSet {
    ChangeSet {
        writer: writer.to_owned(),
        message: format!("delete {anchors:?}"),
        tombstones: anchors
            .iter()
            .map(|a| Tombstone {
                anchor: TimeAnchor::new(*a),
                reason: "test".to_owned(),
                time_unix_nanos: 5,
            })
            .collect(),
        records_delta: -(anchors.len() as i64),
        ..ChangeSet::default()
    }
}

/// Commits writer `w`'s batch `i` on `branch` with the rebasing loop.
pub async fn commit_batch(
    repo: &Repo,
    branch: &str,
    w: u64,
    i: u64,
) -> Result<dreamdb_protocol::dag::Committed, DagError> {
    let set = batch(repo, w, i).await;
    repo.apply_changes(&name(branch), &set, &CommitLoopOptions::default())
        .await
}

/// The tip of `branch`, which must exist.
pub async fn tip(repo: &Repo, branch: &str) -> ContentHash {
    repo.read_ref(&name(branch))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("branch {branch} does not exist"))
        .manifest
}

/// Field → every entry key of `manifest`'s track.
pub async fn track_keys(repo: &Repo, manifest: &ContentHash) -> BTreeMap<String, Vec<TrackKey>> {
    let m = repo.manifest(manifest).await.unwrap();
    let mut out = BTreeMap::new();
    for (field, state) in &m.tracks {
        let root = track_root_of(&state.root).unwrap();
        let entries = repo
            .tracks()
            .scan_all(&root, KeyRange::all())
            .await
            .unwrap();
        out.insert(field.clone(), entries.into_iter().map(|(k, _)| k).collect());
    }
    out
}

/// Every Manifest of `tip`'s history.
pub async fn history(repo: &Repo, tip: ContentHash) -> Vec<ContentHash> {
    repo.history(tip)
        .collect()
        .await
        .unwrap()
        .into_iter()
        .map(|(h, _)| h)
        .collect()
}

/// Checks that the batches `acked` (writer, batch) are each in `tip` exactly
/// once (their entries in every field, their Manifest — when given — in
/// history) and that the batches in `failed` left no trace; `extra`
/// commits (creation, merges) are allowed in history beyond one per
/// acknowledged batch. Returns the history length.
pub async fn check_batches(
    repo: &Repo,
    tip: ContentHash,
    acked: &[(u64, u64, Option<ContentHash>)],
    failed: &[(u64, u64)],
    extra_commits: usize,
) -> usize {
    let hist = history(repo, tip).await;
    let set: HashSet<ContentHash> = hist.iter().copied().collect();
    assert_eq!(set.len(), hist.len(), "history lists a Manifest twice");
    for (w, i, m) in acked {
        if let Some(m) = m {
            assert!(set.contains(m), "acknowledged commit {m} (w{w} i{i}) lost");
        }
    }
    // One commit per acknowledged batch, and no other batch commit.
    let mut messages: BTreeMap<String, usize> = BTreeMap::new();
    for h in &hist {
        let m = repo.manifest(h).await.unwrap();
        *messages.entry(m.message).or_default() += 1;
    }
    for (w, i, _) in acked {
        assert_eq!(
            messages.get(&batch_message(*w, *i)).copied(),
            Some(1),
            "batch w{w} i{i} must be committed exactly once"
        );
    }
    for (w, i) in failed {
        assert_eq!(
            messages.get(&batch_message(*w, *i)),
            None,
            "failed batch w{w} i{i} is visible"
        );
    }
    assert_eq!(
        hist.len(),
        acked.len() + extra_commits,
        "history has commits that no writer acknowledged"
    );
    let keys = track_keys(repo, &tip).await;
    let mut expected: BTreeSet<TrackKey> = BTreeSet::new();
    for (w, i, _) in acked {
        expected.extend(batch_keys(*w, *i));
    }
    for field in FIELDS {
        let got: BTreeSet<TrackKey> = keys
            .get(field)
            .map(|k| k.iter().copied().collect())
            .unwrap_or_default();
        let n = keys.get(field).map_or(0, Vec::len);
        assert_eq!(n, got.len(), "duplicate keys in {field}");
        assert_eq!(got, expected, "entries of {field}");
    }
    let m = repo.manifest(&tip).await.unwrap();
    assert_eq!(
        m.records,
        acked.len() as u64 * RECORDS_PER_BATCH as u64,
        "record count"
    );
    hist.len()
}

/// An acknowledged batch: writer, batch, and its Manifest when known.
pub type Acked = (u64, u64, Option<ContentHash>);

/// What a reachable object is, by how it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reached {
    /// A CBOR object of this `kind`.
    Object(&'static str),
    /// Raw bytes (a segment) named by a track entry.
    Segment,
}

fn kind_name(kind: &str) -> &'static str {
    match kind {
        "manifest" => "manifest",
        "genesis" => "genesis",
        "schema" => "schema",
        "index-page" => "index-page",
        "tombstones" => "tombstones",
        "spatial-index" => "spatial-index",
        _ => "other",
    }
}

/// Every object reachable from `manifest` (all history, every link),
/// each read and verified by the store: present, hashing to its name, and
/// — for CBOR objects — canonical. Raw byte objects (segments) are leaves.
/// Returns the objects with what they are.
pub async fn reachable(
    store: &ObjectStore,
    manifest: ContentHash,
) -> Result<BTreeMap<ContentHash, Reached>, String> {
    let mut out = BTreeMap::new();
    let mut queue = VecDeque::from([manifest]);
    while let Some(hash) = queue.pop_front() {
        if out.contains_key(&hash) {
            continue;
        }
        let bytes = store
            .get_bytes(&hash)
            .await
            .map_err(|e| format!("object {hash}: {e}"))?;
        let reached = match cbor::decode_value_lenient(&bytes) {
            Ok(Value::Map(entries)) => {
                let kind = entries
                    .iter()
                    .find_map(|(k, v)| match (k, v) {
                        (Value::Text(k), Value::Text(v)) if k == "kind" => Some(v.clone()),
                        _ => None,
                    })
                    .ok_or_else(|| format!("object {hash}: a map without a kind"))?;
                let value = cbor::decode_value(&bytes)
                    .map_err(|e| format!("object {hash} ({kind}) is not canonical: {e}"))?;
                queue.extend(links(&value));
                Reached::Object(kind_name(&kind))
            }
            _ => Reached::Segment,
        };
        out.insert(hash, reached);
    }
    Ok(out)
}

/// Checks that everything reachable from `manifest` exists and verifies:
/// every object by hash (and canonical CBOR), every Manifest, Genesis,
/// Schema, tombstone list and spatial index by its strict typed decoder,
/// every track by a full page walk (levels, key ranges, counts), and every
/// segment a track entry names. Returns the number of objects checked.
pub async fn verify_reachable(repo: &Repo, manifest: ContentHash) -> Result<usize, String> {
    let objects = reachable(repo.store(), manifest).await?;
    let e = |what: &str, h: &ContentHash, err: &dyn std::fmt::Display| -> String {
        format!("{what} {h}: {err}")
    };
    for (hash, reached) in &objects {
        match reached {
            Reached::Object("manifest") => {
                let m = repo
                    .manifest(hash)
                    .await
                    .map_err(|x| e("manifest", hash, &x))?;
                repo.get_object::<Genesis>(&m.genesis)
                    .await
                    .map_err(|x| e("genesis", &m.genesis, &x))?;
                repo.schema(&m.schema)
                    .await
                    .map_err(|x| e("schema", &m.schema, &x))?;
                for (field, state) in &m.tracks {
                    let root = track_root_of(&state.root).map_err(|x| e(field, hash, &x))?;
                    repo.tracks()
                        .verify(&root)
                        .await
                        .map_err(|x| e(&format!("track {field} of"), hash, &x))?;
                    let entries = repo
                        .tracks()
                        .scan_all(&root, KeyRange::all())
                        .await
                        .map_err(|x| e(&format!("track {field} of"), hash, &x))?;
                    for (_, v) in entries {
                        let seg = v.segment();
                        if !objects.contains_key(seg) {
                            return Err(format!("segment {seg} not reached"));
                        }
                    }
                    if let Some(si) = state.spatial_index {
                        repo.get_object::<SpatialIndexObject>(&si)
                            .await
                            .map_err(|x| e("spatial index", &si, &x))?;
                    }
                }
                if let Some(t) = m.registry.get(TOMBSTONES_KEY) {
                    repo.get_object::<TombstoneList>(t)
                        .await
                        .map_err(|x| e("tombstones", t, &x))?;
                }
                // The DAG's own checks (heights, parents, one dataset).
                let mut walk = repo.history(*hash);
                walk.next().await.map_err(|x| e("history of", hash, &x))?;
            }
            Reached::Object("tombstones") => {
                repo.get_object::<TombstoneList>(hash)
                    .await
                    .map_err(|x| e("tombstones", hash, &x))?;
            }
            _ => {}
        }
    }
    Ok(objects.len())
}

/// Reads everything a reader of `tip` can read: the history, every
/// Manifest's tracks (pages) and the segment bytes they name (verified by
/// hash), tombstone lists. Any error is returned as text; success returns
/// a fingerprint of what was read, to compare against a clean read.
pub async fn full_read(repo: &Repo, tip: ContentHash) -> Result<String, String> {
    let walk = repo
        .history(tip)
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    let mut fingerprint = String::new();
    for (hash, m) in walk {
        fingerprint.push_str(&format!("{hash} {}\n", m.records));
        repo.get_object::<Genesis>(&m.genesis)
            .await
            .map_err(|e| e.to_string())?;
        repo.schema(&m.schema).await.map_err(|e| e.to_string())?;
        for (field, state) in &m.tracks {
            let root = track_root_of(&state.root).map_err(|e| e.to_string())?;
            let entries = repo
                .tracks()
                .scan_all(&root, KeyRange::all())
                .await
                .map_err(|e| e.to_string())?;
            for (k, v) in entries {
                let bytes = repo
                    .store()
                    .get_bytes(v.segment())
                    .await
                    .map_err(|e| e.to_string())?;
                fingerprint.push_str(&format!("{field} {k:?} {}\n", bytes.len()));
            }
        }
        if let Some(t) = m.registry.get(TOMBSTONES_KEY) {
            let list: TombstoneList = repo.get_object(t).await.map_err(|e| e.to_string())?;
            fingerprint.push_str(&format!("tombstones {}\n", list.entries.len()));
        }
    }
    Ok(fingerprint)
}

/// splitmix64: a seeded, reproducible PRNG for delays and choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

/// The seed of a randomised test: `DREAMDB_SEED` if set, else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("DREAMDB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A duration from env var `var` in seconds, else `default`.
pub fn env_secs(var: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default),
    )
}

/// This process's resident set size in KiB (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Env var naming a child's role; the child test returns at once without it.
pub const ROLE: &str = "DREAMDB_RELIABILITY_ROLE";
/// Env var: the local store root a child works on.
pub const ROOT: &str = "DREAMDB_RELIABILITY_ROOT";
/// Env var: the child's writer id.
pub const CHILD_ID: &str = "DREAMDB_RELIABILITY_CHILD_ID";
/// Env var: a file the parent creates to start every child at once.
pub const GO: &str = "DREAMDB_RELIABILITY_GO";
/// Env var: a file a child appends its acknowledgements to.
pub const ACK: &str = "DREAMDB_RELIABILITY_ACK";

/// Spawns this test binary as a child running only test `test`, with
/// `envs`; stdout and stderr are piped.
pub fn spawn_child(test: &str, envs: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits (bounded) until `path` exists.
pub fn wait_for_file(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A multi-threaded tokio runtime for a child process.
pub fn child_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Appends `line` to `path` and fsyncs it (an acknowledgement that must
/// survive the writer being killed right after).
pub fn append_synced(path: &Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
    f.sync_all().unwrap();
}

/// Parses `ACK <w> <i> <manifest hex>` lines (ignoring a torn last line).
pub fn parse_acks(text: &str) -> Vec<(u64, u64, Option<ContentHash>)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("ACK ")?;
            let mut parts = rest.split_whitespace();
            let w = parts.next()?.parse().ok()?;
            let i = parts.next()?.parse().ok()?;
            let h = ContentHash::from_hex(parts.next()?).ok()?;
            Some((w, i, Some(h)))
        })
        .collect()
}

/// Parses `FAILED <w> <i>` lines.
pub fn parse_failed(text: &str) -> Vec<(u64, u64)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("FAILED ")?;
            let mut parts = rest.split_whitespace();
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .collect()
}
