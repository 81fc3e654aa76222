//! `append_many` and the commit step it shares with the layer verbs.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{CommitLoopOptions, DagError, Draft};
use dreamdb_protocol::objects::{
    FieldSpec, Manifest, ObjectKind, Schema, SpatialIndexObject, TrackRoot, TrackState, TrackStats,
};
use dreamdb_protocol::track::Track;
use rayon::prelude::*;

use super::anchors::{
    added_anchor_runs, existing_anchors, existing_in_runs, track_last_anchor, version_last_anchor,
};
use super::compat;
use super::layout::{self, load_spatial, LoadedSpatial};
use super::segments::{
    field_seed, plan_blob, plan_embedding, plan_scalar, spatial_objects, train_spatial,
    EmbeddingSpec, Encoded, FieldPlan,
};
use super::stats::{load_stats, record_stats, signals_of, Signals, StatsData};
use super::{AppendOptions, AppendResult};
use crate::batch::{Batch, Column};
use crate::dataset::{lock, now_nanos, Dataset};
use crate::DatasetError;

/// Most re-plans of an append whose assigned anchors collided with a
/// concurrent writer's (each re-plan writes new segments).
const MAX_REPLANS: u32 = 8;

/// Most spatial indexes one lineage check reads.
const SPATIAL_CHAIN_LIMIT: usize = 10_000;

/// How the commit step treats the schema.
#[derive(Debug, Clone)]
pub(crate) enum SchemaRule {
    /// The fields written must keep these specs in the tip's schema.
    Keep(Arc<Schema>, ContentHash),
    /// The tip's schema gains `field` (a layer); the tip must not have a
    /// different spec for it.
    Add {
        field: String,
        spec: dreamdb_protocol::objects::SchemaField,
    },
}

/// Everything the commit step needs (shared by every attempt).
pub(crate) struct CommitCtx {
    pub(crate) ds: Dataset,
    pub(crate) plans: Vec<FieldPlan>,
    /// The version the plans were made on.
    pub(crate) base: (ContentHash, Manifest),
    /// Anchors written (sorted), checked against concurrent appends, and
    /// whether the caller gave them.
    pub(crate) anchors: Option<(Vec<u64>, bool)>,
    pub(crate) schema: SchemaRule,
    pub(crate) records_delta: u64,
    pub(crate) message: String,
    /// Whether a tip whose spatial index or compressor no longer fits the
    /// plans makes the caller plan again (append: the batch is still in
    /// hand, so it is re-placed under the tip's index) rather than fail.
    pub(crate) replan_on_spatial: bool,
    /// The latest tip whose concurrently appended anchors were checked
    /// against the batch's (none yet: the base): the next attempt checks
    /// only what was appended since, so a writer that keeps losing races
    /// does not re-check an ever longer stretch of history.
    checked: Mutex<Option<(ContentHash, Manifest)>>,
    /// Why the last attempt aborted, when it did.
    abort: Mutex<Option<Abort>>,
    /// The stats computed by the last attempt, per field.
    last_stats: Mutex<BTreeMap<String, FieldStats>>,
}

/// A field's stats after an attempt: counts, the stored object (when
/// stored) and the live cells of its index.
type FieldStats = (Arc<StatsData>, Option<ContentHash>, Vec<u32>);

enum Abort {
    Error(DatasetError),
    Replan,
}

/// The outcome of the commit step.
pub(crate) enum Committed {
    Done {
        manifest: ContentHash,
        attempts: u32,
        signals: Signals,
    },
    /// Assigned anchors collided with a concurrent append: plan again.
    Replan { attempts: u32 },
}

impl CommitCtx {
    pub(crate) fn new(
        ds: Dataset,
        plans: Vec<FieldPlan>,
        base: (ContentHash, Manifest),
        anchors: Option<(Vec<u64>, bool)>,
        schema: SchemaRule,
        records_delta: u64,
        message: String,
    ) -> Self {
        CommitCtx {
            ds,
            plans,
            base,
            anchors,
            schema,
            records_delta,
            message,
            replan_on_spatial: false,
            checked: Mutex::new(None),
            abort: Mutex::new(None),
            last_stats: Mutex::new(BTreeMap::new()),
        }
    }

    fn abort(&self, why: Abort) -> DagError {
        *lock(&self.abort) = Some(why);
        DagError::InvalidArgument("append aborted (see the dataset error)".to_owned())
    }

    /// Writes the plans' objects, then runs the rebasing commit loop.
    pub(crate) async fn run(self, max_attempts: Option<u32>) -> Result<Committed, DatasetError> {
        let objects: Vec<Bytes> = self
            .plans
            .iter()
            .flat_map(|p| p.objects.iter().map(|e: &Encoded| e.bytes.clone()))
            .collect();
        self.ds.store().put_many(objects).await?;
        let name = self.ds.writable_ref()?.clone();
        let ctx = Arc::new(self);
        let attempts = Arc::new(Mutex::new(0u32));
        let repo = ctx.ds.repo().clone();
        let result = {
            let ctx = ctx.clone();
            let attempts = attempts.clone();
            repo.commit_changes(
                &name,
                move |tip_hash, tip| {
                    let ctx = ctx.clone();
                    *lock(&attempts) += 1;
                    async move { ctx.rebase(tip_hash, tip).await }
                },
                &CommitLoopOptions {
                    max_attempts,
                    retry: None,
                },
            )
            .await
        };
        let attempts_made = *lock(&attempts);
        match result {
            Ok(committed) => {
                let mut signals = Signals::default();
                for (field, (stats, hash, live)) in lock(&ctx.last_stats).iter() {
                    ctx.ds.memo_put(committed.manifest, field, stats.clone());
                    signals
                        .fields
                        .insert(field.clone(), signals_of(stats, live, *hash));
                }
                Ok(Committed::Done {
                    manifest: committed.manifest,
                    attempts: committed.attempts,
                    signals,
                })
            }
            Err(e) => match lock(&ctx.abort).take() {
                Some(Abort::Replan) => Ok(Committed::Replan {
                    attempts: attempts_made,
                }),
                Some(Abort::Error(e)) => Err(e),
                None => Err(DatasetError::from_dag(e)),
            },
        }
    }

    /// The new content for tip `tip`: the same track changes applied to its
    /// roots (spec/0008 §3).
    async fn rebase(&self, tip_hash: ContentHash, tip: Manifest) -> Result<Draft, DagError> {
        match self.rebase_inner(tip_hash, &tip).await {
            Ok(draft) => Ok(draft),
            Err(Ok(abort)) => Err(self.abort(abort)),
            Err(Err(dag)) => Err(dag),
        }
    }

    /// The abort for a tip whose spatial machinery no longer fits the
    /// plans: plan again when allowed, else `conflict`.
    fn spatial_moved(&self, conflict: DatasetError) -> Result<Abort, DagError> {
        Ok(if self.replan_on_spatial {
            Abort::Replan
        } else {
            Abort::Error(conflict)
        })
    }

    async fn rebase_inner(
        &self,
        tip_hash: ContentHash,
        tip: &Manifest,
    ) -> Result<Draft, Result<Abort, DagError>> {
        let ds = &self.ds;
        let store = ds.store();
        let fail = |e: DatasetError| Ok(Abort::Error(e));
        let mut draft = Draft::from_manifest(tip, ds.writer(), &self.message);
        // Schema.
        match &self.schema {
            SchemaRule::Keep(schema, hash) => {
                if tip.schema != *hash {
                    let now: Schema = ds.repo().schema(&tip.schema).await.map_err(Err)?;
                    for plan in &self.plans {
                        if now.fields.get(&plan.field) != schema.fields.get(&plan.field) {
                            return Err(fail(DatasetError::Conflict {
                                reason: format!(
                                    "field {:?} changed in the schema since the batch was validated",
                                    plan.field
                                ),
                            }));
                        }
                    }
                }
            }
            SchemaRule::Add { field, spec } => {
                let mut now: Schema = ds.repo().schema(&tip.schema).await.map_err(Err)?;
                match now.fields.get(field) {
                    Some(existing) if existing.spec != spec.spec => {
                        return Err(fail(DatasetError::Conflict {
                            reason: format!(
                                "field {field:?} exists with another spec ({:?})",
                                existing.spec
                            ),
                        }))
                    }
                    Some(_) => {}
                    None => {
                        now.fields.insert(field.clone(), spec.clone());
                        let (bytes, hash) = now.encode().map_err(|e| Err(e.into()))?;
                        store
                            .put_bytes(bytes)
                            .await
                            .map_err(|e| Err(DagError::from(e)))?;
                        draft.schema = hash;
                    }
                }
            }
        }
        // Anchors appended concurrently.
        let checked = lock(&self.checked).clone();
        let (from_hash, from) = checked.as_ref().unwrap_or(&self.base);
        if tip_hash != *from_hash {
            if let Some((anchors, given)) = &self.anchors {
                let added = added_anchor_runs(store, from, tip).await.map_err(fail)?;
                let clash = existing_in_runs(store, &added, anchors)
                    .await
                    .map_err(fail)?;
                if let Some(first) = clash.first() {
                    return Err(if *given {
                        fail(DatasetError::invalid(
                            "_anchor",
                            format!("anchor {first} was appended concurrently by another writer"),
                        ))
                    } else {
                        Ok(Abort::Replan)
                    });
                }
                *lock(&self.checked) = Some((tip_hash, tip.clone()));
            }
        }
        let track = Track::with_config(store.clone(), ds.repo().config().track)
            .map_err(|e| Err(e.into()))?;
        // The fields are independent: rebase them concurrently, so the
        // window between reading the tip and publishing is one field's
        // round trips, not their sum.
        let outcomes = futures::future::join_all(
            self.plans
                .iter()
                .map(|plan| self.rebase_field(plan, tip_hash, tip, &track)),
        )
        .await;
        let mut stats_out = BTreeMap::new();
        for (plan, outcome) in self.plans.iter().zip(outcomes) {
            let (state, stats) = outcome?;
            draft.tracks.insert(plan.field.clone(), state);
            if let Some(stats) = stats {
                stats_out.insert(plan.field.clone(), stats);
            }
        }
        draft.records = tip.records.saturating_add(self.records_delta);
        *lock(&self.last_stats) = stats_out;
        Ok(draft)
    }

    /// One field's track state on `tip`, and its stats when the plan
    /// carries them.
    async fn rebase_field(
        &self,
        plan: &FieldPlan,
        tip_hash: ContentHash,
        tip: &Manifest,
        track: &Track,
    ) -> Result<(TrackState, Option<FieldStats>), Result<Abort, DagError>> {
        let ds = &self.ds;
        let store = ds.store();
        let fail = |e: DatasetError| Ok(Abort::Error(e));
        let current = tip.tracks.get(&plan.field);
        // Spatial index and compressor.
        let tip_si = current.and_then(|s| s.spatial_index);
        let spatial_index = match (plan.spatial_index, tip_si) {
            (Some(ours), Some(theirs)) if ours != theirs => {
                let cells: BTreeSet<u32> =
                    plan.changes.iter().filter_map(|c| c.key().cell()).collect();
                if !cells_still_valid(store, ours, theirs, &cells)
                    .await
                    .map_err(fail)?
                {
                    return Err(self.spatial_moved(DatasetError::Conflict {
                        reason: format!(
                            "field {:?}: the tip's spatial index {} is not the one the records were placed under ({}) nor a descendant keeping their cells; append again to re-place them",
                            plan.field, theirs.short(), ours.short()
                        ),
                    }));
                }
                Some(theirs)
            }
            (Some(ours), None) if !plan.trained && current.is_some() => {
                return Err(self.spatial_moved(DatasetError::Conflict {
                    reason: format!(
                        "field {:?}: the tip's track has no spatial index, the records were placed under {}",
                        plan.field,
                        ours.short()
                    ),
                }))
            }
            (ours, theirs) => theirs.or(ours),
        };
        let tip_comp = current.and_then(|s| s.compressor);
        let compressor = match (plan.compressor, tip_comp) {
            (Some(ours), Some(theirs)) if ours != theirs => {
                return Err(self.spatial_moved(DatasetError::Conflict {
                    reason: format!(
                        "field {:?}: the tip's compressor {} differs from the records' {}",
                        plan.field,
                        theirs.short(),
                        ours.short()
                    ),
                }))
            }
            (ours, theirs) => theirs.or(ours),
        };
        // Track.
        let root = current.map_or_else(TrackRoot::empty, |s| s.root.clone());
        let (new_root, _) = track
            .apply(&root, plan.changes.iter().copied())
            .await
            .map_err(|e| Err(e.into()))?;
        // Stats.
        let mut recorded = None;
        let mut field_stats = None;
        if let (Some(delta), Some((cells, live))) = (&plan.stats_delta, &plan.cells) {
            let (cells, live) = if spatial_index == plan.spatial_index {
                (*cells, live.clone())
            } else {
                let si = spatial_index.unwrap_or(ContentHash::EMPTY);
                let loaded = load_spatial(store, si, compressor).await.map_err(fail)?;
                (
                    layout::cell_count(&loaded.index).map_err(fail)?,
                    layout::live_cells(&loaded.index).map_err(fail)?,
                )
            };
            let base = match (current, ds.memo_get(tip_hash, &plan.field)) {
                (None, _) => Arc::new(StatsData::empty(cells)),
                (Some(_), Some(memo)) => memo,
                (Some(state), None) => {
                    Arc::new(load_stats(store, state, cells).await.map_err(fail)?)
                }
            };
            let new = Arc::new(base.plus(delta));
            if compat::TRACK_META {
                recorded = Some(record_stats(store, &new).await.map_err(fail)?);
            }
            let stored = recorded.as_ref().and_then(TrackStats::stored);
            field_stats = Some((new, stored, live));
        }
        let last_anchor = if compat::TRACK_META {
            // A state without a recorded last anchor (after a merge or
            // a generic commit) is descended once, never guessed.
            let before = match current {
                Some(state) => track_last_anchor(store, state).await.map_err(fail)?,
                None => None,
            };
            Some(before.map_or(plan.last_anchor, |b| b.max(plan.last_anchor)))
        } else {
            None
        };
        Ok((
            compat::track_state(new_root, spatial_index, compressor, recorded, last_anchor),
            field_stats,
        ))
    }
}

/// Whether records of `cells` placed under index `placed_under` are still
/// correctly placed under `current`: `placed_under` is on `current`'s
/// lineage and no index on the chain changed one of the cells (design 0001
/// § Spatial lineage; conservative with several parents).
pub(crate) async fn cells_still_valid(
    store: &dreamdb_protocol::store::ObjectStore,
    placed_under: ContentHash,
    current: ContentHash,
    cells: &BTreeSet<u32>,
) -> Result<bool, DatasetError> {
    if placed_under == current {
        return Ok(true);
    }
    let mut changed = BTreeSet::new();
    let mut seen = HashSet::from([current]);
    let mut stack = vec![current];
    let mut found = false;
    while let Some(hash) = stack.pop() {
        if hash == placed_under {
            found = true;
            continue;
        }
        if seen.len() > SPATIAL_CHAIN_LIMIT {
            return Err(DatasetError::Integrity(format!(
                "the spatial index lineage of {current} exceeds {SPATIAL_CHAIN_LIMIT} indexes"
            )));
        }
        let bytes = store.get_bytes(&hash).await?;
        let index = SpatialIndexObject::decode(&hash, &bytes)?;
        changed.extend(index.changed_cells.iter().copied());
        for parent in index.parents {
            if seen.insert(parent) {
                stack.push(parent);
            }
        }
    }
    Ok(found && cells.is_disjoint(&changed))
}

/// The embedding spec of a schema field.
pub(crate) fn embedding_spec(spec: &FieldSpec) -> Option<EmbeddingSpec> {
    match spec {
        FieldSpec::Embedding {
            dim,
            metric,
            index,
            compression,
            rerank,
        } => Some(EmbeddingSpec {
            dim: *dim,
            metric: *metric,
            index: *index,
            compression: *compression,
            rerank: *rerank,
        }),
        _ => None,
    }
}

/// The spatial machinery of a field: the tip's, or freshly trained on
/// `training` (with the objects to write).
/// The rows a field's index is trained on when it has none yet.
pub(crate) enum TrainingRows {
    /// A caller's sample (`AppendOptions::training`).
    Sample(Vec<f32>),
    /// The field's own column in the batch being written, read in place
    /// (a first batch can be large, and training samples it anyway).
    Column(Arc<Batch>, String),
}

impl TrainingRows {
    /// The rows, row-major (empty when the column is missing).
    fn rows(&self) -> &[f32] {
        match self {
            TrainingRows::Sample(rows) => rows,
            TrainingRows::Column(batch, field) => match batch.columns().get(field) {
                Some(Column::Embedding { values, .. }) => values,
                _ => &[],
            },
        }
    }
}

pub(crate) async fn spatial_for(
    ds: &Dataset,
    tip: &Manifest,
    field: &str,
    spec: EmbeddingSpec,
    training: Option<TrainingRows>,
    seed: u64,
) -> Result<(LoadedSpatial, Vec<Encoded>, bool), DatasetError> {
    if let Some(si) = tip.tracks.get(field).and_then(|s| s.spatial_index) {
        let compressor = tip.tracks.get(field).and_then(|s| s.compressor);
        let loaded = load_spatial(ds.store(), si, compressor).await?;
        return Ok((loaded, Vec::new(), false));
    }
    let training = training.unwrap_or(TrainingRows::Sample(Vec::new()));
    let field_owned = field.to_owned();
    let seed = field_seed(field, seed);
    let (index, compressor) = tokio::task::spawn_blocking(move || {
        train_spatial(&field_owned, &spec, training.rows(), seed)
    })
    .await
    .map_err(|e| DatasetError::Protocol(format!("training task failed: {e}")))??;
    let (loaded, objects) = spatial_objects(index, compressor, spec.metric)?;
    Ok((loaded, objects, true))
}

fn check_training(field: &str, dim: u32, sample: &[f32]) -> Result<(), DatasetError> {
    let dim = dim as usize;
    if sample.is_empty() || !sample.len().is_multiple_of(dim) {
        return Err(DatasetError::invalid(
            field,
            format!(
                "training sample of {} values is not a whole number of {dim}-dimensional rows",
                sample.len()
            ),
        ));
    }
    if let Some(i) = sample.iter().position(|x| !x.is_finite()) {
        return Err(DatasetError::invalid(
            field,
            format!("training sample row {}: not a finite number", i / dim),
        ));
    }
    Ok(())
}

impl Dataset {
    /// Appends a batch of records (design/0002 § Write path; spec/0006
    /// §5.4). See [`Dataset::append_many_with`].
    pub async fn append_many(&self, batch: Batch) -> Result<AppendResult, DatasetError> {
        self.append_many_with(batch, AppendOptions::default()).await
    }

    /// Appends a batch: validates it against the tip's schema (a refused
    /// batch writes nothing and moves no ref), assigns anchors when not
    /// given, writes one segment per field (two with raw vectors), and
    /// publishes one Manifest, rebasing onto a moved tip.
    pub async fn append_many_with(
        &self,
        batch: Batch,
        options: AppendOptions,
    ) -> Result<AppendResult, DatasetError> {
        self.writable_ref()?;
        let batch = Arc::new(batch);
        let (mut base_hash, mut base) = self.tip().await?;
        let schema: Arc<Schema> = Arc::new(
            self.repo()
                .schema(&base.schema)
                .await
                .map_err(DatasetError::from_dag)?,
        );
        let schema_hash = base.schema;
        batch.validate(&schema)?;
        for (field, sample) in &options.training {
            let Some(spec) = schema
                .fields
                .get(field)
                .and_then(|f| embedding_spec(&f.spec))
            else {
                return Err(DatasetError::invalid(
                    field.as_str(),
                    "a training sample is given for a field that is not an embedding",
                ));
            };
            check_training(field, spec.dim, sample)?;
        }
        let rows = batch.rows() as u64;
        let message = options
            .message
            .clone()
            .unwrap_or_else(|| format!("append {rows} records"));
        let mut attempts = 0u32;
        for _ in 0..MAX_REPLANS {
            let (anchors, given) = match batch.given_anchors() {
                Some(given) => {
                    let mut sorted = given.to_vec();
                    sorted.sort_unstable();
                    let existing = existing_anchors(self.store(), &base, &sorted).await?;
                    if let Some(first) = existing.first() {
                        return Err(DatasetError::invalid(
                            "_anchor",
                            format!(
                                "anchor {first} already has a record{}",
                                if existing.len() > 1 {
                                    format!(" ({} of the batch's anchors exist)", existing.len())
                                } else {
                                    String::new()
                                }
                            ),
                        ));
                    }
                    (given.to_vec(), true)
                }
                None => (self.assign_anchors(&base, rows).await?, false),
            };
            let plans = self
                .plan_batch(&base, &schema, batch.clone(), &anchors, &options)
                .await?;
            let mut sorted = anchors.clone();
            sorted.sort_unstable();
            let mut ctx = CommitCtx::new(
                self.clone(),
                plans,
                (base_hash, base.clone()),
                Some((sorted, given)),
                SchemaRule::Keep(schema.clone(), schema_hash),
                rows,
                message.clone(),
            );
            ctx.replan_on_spatial = true;
            match ctx.run(options.max_attempts).await? {
                Committed::Done {
                    manifest,
                    attempts: a,
                    signals,
                } => {
                    return Ok(AppendResult {
                        anchors,
                        manifest,
                        attempts: attempts + a,
                        signals,
                    })
                }
                Committed::Replan { attempts: a } => {
                    attempts += a;
                    (base_hash, base) = self.tip().await?;
                }
            }
        }
        Err(DatasetError::Conflict {
            reason: format!(
                "concurrent writers kept moving the tip under the batch (colliding assigned anchors or a new spatial index) through {MAX_REPLANS} plans"
            ),
        })
    }

    /// Anchors for `rows` new records: strictly increasing from
    /// `max(clock anchor, last anchor of the tip + 1)` (spec/0003 §7).
    async fn assign_anchors(&self, tip: &Manifest, rows: u64) -> Result<Vec<u64>, DatasetError> {
        let genesis = self.genesis(tip.genesis).await?;
        let clock = now_nanos().saturating_sub(genesis.created_unix_nanos);
        let next = match version_last_anchor(self.store(), tip).await? {
            Some(last) => last.checked_add(1).ok_or_else(|| {
                DatasetError::invalid("_anchor", "the dataset's last anchor is the largest one")
            })?,
            None => 0,
        };
        let start = clock.max(next);
        let end = start.checked_add(rows).ok_or_else(|| {
            DatasetError::invalid("_anchor", "assigned anchors would overflow u64")
        })?;
        Ok((start..end).collect())
    }

    /// Builds every field's plan (CPU work off the async threads).
    async fn plan_batch(
        &self,
        tip: &Manifest,
        schema: &Schema,
        batch: Arc<Batch>,
        anchors: &[u64],
        options: &AppendOptions,
    ) -> Result<Vec<FieldPlan>, DatasetError> {
        // Spatial machinery of every embedding field first (may train).
        let mut spatial = BTreeMap::new();
        for (field, column) in batch.columns() {
            let (Some(spec), Column::Embedding { .. }) = (
                schema
                    .fields
                    .get(field)
                    .and_then(|f| embedding_spec(&f.spec)),
                column,
            ) else {
                continue;
            };
            let untrained = tip
                .tracks
                .get(field)
                .is_none_or(|s| s.spatial_index.is_none());
            let training = match options.training.get(field) {
                Some(sample) => Some(TrainingRows::Sample(sample.clone())),
                None if untrained => Some(TrainingRows::Column(batch.clone(), field.clone())),
                None => None,
            };
            let loaded = spatial_for(self, tip, field, spec, training, options.seed).await?;
            spatial.insert(field.clone(), (spec, loaded));
        }
        let schema = schema.clone();
        let anchors = anchors.to_vec();
        tokio::task::spawn_blocking(move || {
            let jobs: Vec<(&String, &Column)> = batch.columns().iter().collect();
            jobs.into_par_iter()
                .map(|(field, column)| -> Result<FieldPlan, DatasetError> {
                    let spec = schema
                        .fields
                        .get(field)
                        .map(|f| f.spec.clone())
                        .ok_or_else(|| DatasetError::invalid(field.as_str(), "unknown field"))?;
                    match (&spec, column) {
                        (FieldSpec::Embedding { .. }, Column::Embedding { values, .. }) => {
                            let Some((spec, (loaded, objects, trained))) = spatial.get(field)
                            else {
                                return Err(DatasetError::invalid(
                                    field.as_str(),
                                    "no spatial index",
                                ));
                            };
                            plan_embedding(
                                field,
                                spec,
                                values,
                                &anchors,
                                loaded,
                                objects.clone(),
                                *trained,
                            )
                        }
                        (FieldSpec::Blob { mime, .. }, Column::Blob(blobs)) => {
                            plan_blob(field, mime, blobs, &anchors)
                        }
                        (FieldSpec::Scalar { dtype, .. }, Column::Scalar(values)) => {
                            plan_scalar(field, *dtype, values, &anchors)
                        }
                        _ => Err(DatasetError::invalid(
                            field.as_str(),
                            "column does not fit the field",
                        )),
                    }
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| DatasetError::Protocol(format!("planning task failed: {e}")))?
    }
}
