//! New Manifests: the first commit of a dataset, single commits, and the
//! rebasing commit loop of spec/0008 §3.
//!
//! A Manifest's height is 1 + the largest parent height and its time is
//! `max(now, latest parent time + 1 ns)`, so timestamps increase along
//! every writer's commits even when clocks disagree (they are informative
//! only; nothing here decides anything by them).
//!
//! [`Repo::commit_changes`] is the loop for commuting changes: read the
//! tip, re-derive the Manifest from it with the caller's closure, publish,
//! and on a lost race repeat (at once on the tip the loss re-read, then
//! with jittered backoff). [`Repo::apply_changes`]
//! is that loop for the common case — batches of track changes and
//! tombstones — and enforces the spatial-index rule of a rebase.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use dreamdb_core::ref_name::RefName;
use dreamdb_core::ContentHash;

use super::refs::{PublishOutcome, RefState};
use super::{roots, spatial, DagError, Repo, RetryPolicy, TOMBSTONES_KEY};
use crate::objects::{Genesis, Manifest, Schema, Tombstone, TombstoneList, TrackState};
use crate::track::Change;

/// Lost races retried at once on the re-read tip before backing off.
const IMMEDIATE_REBASES: u32 = 4;

/// Everything of a new Manifest that the commit machinery does not derive
/// (parents, height, time and Genesis are derived).
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// Who writes.
    pub writer: String,
    /// Commit message.
    pub message: String,
    /// The Schema.
    pub schema: ContentHash,
    /// Field → track.
    pub tracks: BTreeMap<String, TrackState>,
    /// Registry.
    pub registry: BTreeMap<String, ContentHash>,
    /// Live records.
    pub records: u64,
}

impl Draft {
    /// A draft that keeps everything of `manifest` (to be changed).
    pub fn from_manifest(manifest: &Manifest, writer: &str, message: &str) -> Self {
        Draft {
            writer: writer.to_owned(),
            message: message.to_owned(),
            schema: manifest.schema,
            tracks: manifest.tracks.clone(),
            registry: manifest.registry.clone(),
            records: manifest.records,
        }
    }
}

/// A new Manifest on explicit parents ([`Repo::commit`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CommitOptions {
    /// Parents, first parent first (at least one: the first commit of a
    /// dataset is made by [`Repo::create_dataset`]).
    pub parents: Vec<ContentHash>,
    /// The content.
    pub draft: Draft,
    /// The writer's clock reading to use instead of the system clock.
    pub time_unix_nanos: Option<u64>,
}

/// Creating a dataset ([`Repo::create_dataset`]).
#[derive(Debug, Clone, PartialEq)]
pub struct CreateDataset {
    /// The Genesis (its `dataset` must be the repo's).
    pub genesis: Genesis,
    /// The first Schema.
    pub schema: Schema,
    /// Who creates it.
    pub writer: String,
    /// Message of the first commit.
    pub message: String,
    /// Tracks of the first Manifest (usually empty).
    pub tracks: BTreeMap<String, TrackState>,
    /// Time of the first Manifest (default: the system clock).
    pub time_unix_nanos: Option<u64>,
}

/// Tunables of the rebasing loop.
#[derive(Debug, Clone, Default)]
pub struct CommitLoopOptions {
    /// Most attempts (default: the repo's retry policy).
    pub max_attempts: Option<u32>,
    /// Backoff (default: the repo's retry policy).
    pub retry: Option<RetryPolicy>,
}

/// A published commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The new Manifest.
    pub manifest: ContentHash,
    /// Attempts it took (1 = no race lost).
    pub attempts: u32,
    /// The ref after publishing.
    pub state: RefState,
}

/// Changes to one field's track.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldChanges {
    /// Entries to put or delete.
    pub changes: Vec<Change>,
    /// The spatial index the new cell-order entries were placed under
    /// (embedding fields); `None` for other fields.
    pub spatial_index: Option<ContentHash>,
    /// The vector compressor of the new entries, if any.
    pub compressor: Option<ContentHash>,
}

/// A commuting batch of changes ([`Repo::apply_changes`]): re-applied to
/// whichever tip it lands on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    /// Field → changes.
    pub fields: BTreeMap<String, FieldChanges>,
    /// New tombstones, added to the tip's list.
    pub tombstones: Vec<Tombstone>,
    /// Change of the live record count.
    pub records_delta: i64,
    /// Who writes.
    pub writer: String,
    /// Commit message.
    pub message: String,
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Repo {
    /// Creates the dataset: writes the Genesis, the Schema and the first
    /// Manifest (no parents, height 0) and creates branch `main` with a
    /// conditional create. Returns the Genesis and Manifest hashes.
    pub async fn create_dataset(
        &self,
        options: CreateDataset,
    ) -> Result<(ContentHash, ContentHash), DagError> {
        if options.genesis.dataset != self.dataset.as_str() {
            return Err(DagError::InvalidArgument(format!(
                "genesis names dataset {:?}, this repo is {:?}",
                options.genesis.dataset,
                self.dataset.as_str()
            )));
        }
        let genesis = self.put_object(&options.genesis).await?;
        let schema = self.put_object(&options.schema).await?;
        let manifest = Manifest {
            genesis,
            parents: Vec::new(),
            height: 0,
            writer: options.writer,
            time_unix_nanos: options.time_unix_nanos.unwrap_or_else(now_nanos),
            message: options.message,
            schema,
            tracks: options.tracks,
            registry: BTreeMap::new(),
            records: 0,
        };
        let hash = self.put_object(&manifest).await?;
        let main = RefName::parse("main").map_err(|e| DagError::InvalidArgument(e.to_string()))?;
        self.branch(&main, hash).await?;
        Ok((genesis, hash))
    }

    /// Writes a Manifest on `options.parents` (height and time derived,
    /// Genesis taken from the parents, which must agree). Does not move
    /// any ref.
    pub async fn commit(
        &self,
        options: CommitOptions,
    ) -> Result<(ContentHash, Manifest), DagError> {
        let mut parents = Vec::with_capacity(options.parents.len());
        for hash in &options.parents {
            parents.push(self.manifest(hash).await?);
        }
        let Some(first) = parents.first() else {
            return Err(DagError::InvalidArgument(
                "a commit needs at least one parent".to_owned(),
            ));
        };
        let genesis = first.genesis;
        if let Some(other) = parents.iter().find(|p| p.genesis != genesis) {
            return Err(DagError::InvalidArgument(format!(
                "parents of different datasets ({} and {})",
                genesis, other.genesis
            )));
        }
        let height = parents
            .iter()
            .map(|p| p.height)
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| {
                DagError::InvalidArgument(
                    "a parent claims the largest possible height; refusing to build on it"
                        .to_owned(),
                )
            })?;
        let latest = parents.iter().map(|p| p.time_unix_nanos).max().unwrap_or(0);
        let now = options.time_unix_nanos.unwrap_or_else(now_nanos);
        let draft = options.draft;
        let manifest = Manifest {
            genesis,
            parents: options.parents,
            height,
            writer: draft.writer,
            time_unix_nanos: now.max(latest.saturating_add(1)),
            message: draft.message,
            schema: draft.schema,
            tracks: draft.tracks,
            registry: draft.registry,
            records: draft.records,
        };
        let hash = self.put_object(&manifest).await?;
        Ok((hash, manifest))
    }

    /// The rebasing commit loop for commuting changes: reads the tip of
    /// `name`, asks `change` for the new content built on it (the closure
    /// gets the tip's hash and Manifest and may refuse with an error, e.g.
    /// a changed spatial index), commits it with `parents = [tip]`, and
    /// publishes; on a lost race repeats with jittered backoff.
    pub async fn commit_changes<F, Fut>(
        &self,
        name: &RefName,
        mut change: F,
        options: &CommitLoopOptions,
    ) -> Result<Committed, DagError>
    where
        F: FnMut(ContentHash, Manifest) -> Fut,
        Fut: Future<Output = Result<Draft, DagError>>,
    {
        let policy = options
            .retry
            .clone()
            .unwrap_or_else(|| self.config.retry.clone());
        let max_attempts = options.max_attempts.unwrap_or(policy.max_attempts).max(1);
        let mut first_tip = None;
        let mut last_tip = None;
        // The ref as the last lost CAS re-read it: the next attempt starts
        // from it instead of reading the ref again, which shortens the
        // window between reading the tip and publishing (under sustained
        // commits by others, that window decides who starves).
        let mut known_tip = None;
        for attempt in 1..=max_attempts {
            let tip = self
                .tip_for_attempt(name, known_tip.take(), attempt, &policy)
                .await?;
            first_tip.get_or_insert(tip.manifest);
            let tip_manifest = self.manifest(&tip.manifest).await?;
            let draft = change(tip.manifest, tip_manifest).await?;
            let (hash, _) = self
                .commit(CommitOptions {
                    parents: vec![tip.manifest],
                    draft,
                    time_unix_nanos: None,
                })
                .await?;
            match self.publish(name, hash, Some(&tip)).await? {
                PublishOutcome::Published { state, .. } => {
                    return Ok(Committed {
                        manifest: hash,
                        attempts: attempt,
                        state,
                    })
                }
                PublishOutcome::Lost { tip } => {
                    last_tip = Some(tip.manifest);
                    known_tip = Some(tip);
                }
            }
        }
        Err(DagError::Conflict {
            name: format!("refs/{name}"),
            expected: first_tip,
            actual: last_tip,
        })
    }

    /// The tip attempt `attempt` of a publish loop builds on. The first
    /// rebases after a lost race start at once on the tip the loss re-read
    /// (`known`); later ones back off (jittered) and read the ref again,
    /// which spreads out many writers hammering one ref.
    pub(super) async fn tip_for_attempt(
        &self,
        name: &RefName,
        known: Option<RefState>,
        attempt: u32,
        policy: &RetryPolicy,
    ) -> Result<RefState, DagError> {
        match known {
            Some(tip) if attempt <= IMMEDIATE_REBASES + 1 => Ok(tip),
            _ => {
                policy.wait(attempt.saturating_sub(IMMEDIATE_REBASES)).await;
                self.require_ref(name).await
            }
        }
    }

    /// Applies a commuting [`ChangeSet`] to branch `name` with the
    /// rebasing loop: on every attempt the same track changes are applied
    /// to the current tip's roots (`track::apply`), the tombstones added to
    /// its list and the record count adjusted.
    ///
    /// A rebase is refused with [`DagError::SpatialIndexIncompatible`] when
    /// the tip's spatial index of a changed field differs from the one the
    /// changes were placed under, unless that index is on the tip's
    /// lineage and no index on the chain changed a cell the changes write
    /// (spec/0008 §3); the caller must then re-place its records.
    pub async fn apply_changes(
        &self,
        name: &RefName,
        changes: &ChangeSet,
        options: &CommitLoopOptions,
    ) -> Result<Committed, DagError> {
        self.commit_changes(
            name,
            |_tip, manifest| async move { self.rebase_draft(&manifest, changes).await },
            options,
        )
        .await
    }

    /// The content of `changes` applied on `tip`.
    async fn rebase_draft(&self, tip: &Manifest, changes: &ChangeSet) -> Result<Draft, DagError> {
        let mut draft = Draft::from_manifest(tip, &changes.writer, &changes.message);
        for (field, fc) in &changes.fields {
            let current = tip.tracks.get(field);
            let tip_si = current.and_then(|t| t.spatial_index);
            let spatial_index = match (fc.spatial_index, tip_si) {
                (Some(ours), Some(theirs)) if ours != theirs => {
                    let cells: BTreeSet<u32> = fc
                        .changes
                        .iter()
                        .filter_map(|c| match c {
                            Change::Put(k, _) => k.cell(),
                            Change::Delete(_) => None,
                        })
                        .collect();
                    if !spatial::cells_still_valid(self, ours, theirs, &cells).await? {
                        return Err(DagError::SpatialIndexIncompatible {
                            field: field.clone(),
                            ours: Some(ours),
                            theirs: Some(theirs),
                        });
                    }
                    Some(theirs)
                }
                (ours, theirs) => theirs.or(ours),
            };
            let compressor = match (fc.compressor, current.and_then(|t| t.compressor)) {
                (Some(ours), Some(theirs)) if ours != theirs => {
                    return Err(DagError::MergeConflict {
                        field: format!("track:{field}"),
                        reason: format!("the tip's compressor is {theirs}, the changes use {ours}"),
                    })
                }
                (ours, theirs) => theirs.or(ours),
            };
            let root = match current {
                Some(state) => roots::to_track(&state.root)?,
                None => crate::track::TrackRoot::empty(),
            };
            let (new_root, _) = self.track.apply(&root, fc.changes.iter().copied()).await?;
            draft.tracks.insert(
                field.clone(),
                // Generic changes: the track's stats and last anchor are
                // not recomputed here, so they are dropped.
                TrackState::new(roots::to_stored(&new_root)?, spatial_index, compressor),
            );
        }
        if !changes.tombstones.is_empty() {
            let list = self.add_tombstones(tip, &changes.tombstones).await?;
            draft.registry.insert(TOMBSTONES_KEY.to_owned(), list);
        }
        let records = i128::from(tip.records) + i128::from(changes.records_delta);
        draft.records = u64::try_from(records.max(0)).unwrap_or(u64::MAX);
        Ok(draft)
    }

    /// Writes the tip's tombstone list extended by `added`.
    async fn add_tombstones(
        &self,
        tip: &Manifest,
        added: &[Tombstone],
    ) -> Result<ContentHash, DagError> {
        let (parents, mut entries) = match tip.registry.get(TOMBSTONES_KEY) {
            Some(hash) => {
                let list: TombstoneList = self.get_object(hash).await?;
                (vec![*hash], list.entries)
            }
            None => (Vec::new(), Vec::new()),
        };
        let mut by_anchor: BTreeMap<_, Tombstone> =
            entries.drain(..).map(|t| (t.anchor, t)).collect();
        for t in added {
            by_anchor.entry(t.anchor).or_insert_with(|| t.clone());
        }
        let list = TombstoneList {
            parents,
            entries: by_anchor.into_values().collect(),
        };
        self.put_object(&list).await
    }
}
