//! Ada-IVF status and steps (design/0003 § Ada-IVF; arXiv 2411.00970).
//!
//! Status reads the track's `cell-stats` object (the stats path the append
//! signals use; no LIST, no segment read). A step is planned
//! deterministically from the base version's stats and the split cells'
//! rows, so every shard worker computes the same plan:
//!
//! 1. merges first: live cells with density < `merge_threshold`, smallest
//!    first (ties: lowest id), each into its nearest live neighbour that is
//!    not merged, not a merge source and not over `split_threshold`; at
//!    least two cells stay;
//! 2. then splits: cells with density > `split_threshold`, largest first,
//!    into `clamp(⌈density⌉, 2, max_parts)` parts by local k-means on the
//!    cell's rows (raw rows; decoded codes when the field keeps none —
//!    reported as drift), never a merge target, and never past
//!    `k ≤ ⌊2·√N⌋`;
//! 3. the child index (`ada_ivf::apply_changes`) names the old one as its
//!    parent and lists the changed cells; only the split and merged cells'
//!    runs are read and re-dispatched. Re-dispatched records of a bucket
//!    whose every run moved go to a new bucket with its own anchor-order
//!    entry (the old one's is removed); the others go to a bucket with
//!    cell-order entries only, their values still read through the old
//!    bucket's anchor-order entry. Unchanged cells' buckets are untouched.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::{ObjectKind, TrackState, TrackStats};
use dreamdb_protocol::spatial::ada_ivf::{
    apply_changes, densities, imbalance_score, merge_cell, split_cell, MergePlan, SplitPlan,
};
use dreamdb_protocol::spatial::ivf::IvfIndex;
use dreamdb_protocol::spatial::{sqrt_guidance, SpatialIndex};
use dreamdb_protocol::track::{Change, KeyRange, TrackValue};

use super::publish::{publish, FieldEdit, StatsEdit, Step};
use super::runs::{
    apply_delta, read_run, redispatch, removed_stats, vector_of, write_bucket, Entry, Rec,
};
use super::{check_threshold, entries, tombstoned, Base, FieldCtx, WriteCost};
use crate::dataset::Dataset;
use crate::write::layout::{cell_count, live_cells, object_of_index, LoadedSpatial};
use crate::write::segments::{field_seed, TRAIN_ITERATIONS};
use crate::write::stats::{load_stats, signals_of, Density, StatsData};
use crate::DatasetError;

/// One cell and its size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellSize {
    /// The cell id.
    pub cell: u32,
    /// Records placed in it (deleted ones included).
    pub records: u64,
    /// Records over the mean records per live cell.
    pub density: f64,
}

/// What [`Dataset::ada_ivf_status`] reports.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaIvfStatus {
    /// The field.
    pub field: String,
    /// The version read.
    pub manifest: ContentHash,
    /// The field's spatial index.
    pub spatial_index: ContentHash,
    /// Coefficient of variation of the live cells' sizes.
    pub imbalance: f64,
    /// Live cells.
    pub k: u64,
    /// Records placed (deleted ones included).
    pub n: u64,
    /// √N.
    pub sqrt_n: f64,
    /// ⌊2·√N⌋, the cap a step keeps k under.
    pub k_max: u64,
    /// Records per non-empty cell.
    pub density: Density,
    /// Runs per non-empty cell (1 after compaction).
    pub fragmentation: f64,
    /// Cell-order runs.
    pub runs: u64,
    /// Cells over `split_threshold` (largest first), when given.
    pub overpopulated: Vec<CellSize>,
    /// Cells under `merge_threshold` (smallest first), when given.
    pub underpopulated: Vec<CellSize>,
    /// Deleted records (tombstones): their bytes stay stored until a
    /// `compact` and a `gc` — the cheaply known GC candidates.
    pub tombstones: u64,
    /// The `cell-stats` object read, when the track names one.
    pub stats: Option<ContentHash>,
}

/// Options of [`Dataset::ada_ivf_step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaIvfStepOptions {
    /// Split cells whose density (size / mean size) exceeds this (> 0).
    pub split_threshold: f64,
    /// Merge cells whose density is below this (> 0).
    pub merge_threshold: f64,
    /// Seed of the local k-means (mixed with the field name and the cell).
    pub seed: u64,
    /// Most parts one split makes (≥ 2; default 4).
    pub max_parts: u32,
}

impl AdaIvfStepOptions {
    /// Options with the given thresholds, seed 0 and `max_parts` 4.
    pub fn new(split_threshold: f64, merge_threshold: f64) -> Self {
        AdaIvfStepOptions {
            split_threshold,
            merge_threshold,
            seed: 0,
            max_parts: 4,
        }
    }
}

/// What an Ada-IVF step did (or, for a shard worker, its part of it).
#[derive(Debug, Clone, PartialEq)]
pub struct AdaIvfStepReport {
    /// The published Manifest (`None`: nothing to change, or a shard
    /// worker, which publishes nothing).
    pub manifest: Option<ContentHash>,
    /// The base version the step was planned on.
    pub base: ContentHash,
    /// The index before.
    pub parent_index: ContentHash,
    /// The new index (`None` when nothing changed).
    pub spatial_index: Option<ContentHash>,
    /// Splits: (cell, parts).
    pub splits: Vec<(u32, u32)>,
    /// Merges: (cell, into).
    pub merges: Vec<(u32, u32)>,
    /// Live cells before and after.
    pub k_before: u64,
    /// Live cells after.
    pub k_after: u64,
    /// ⌊2·√N⌋.
    pub k_max: u64,
    /// Imbalance before.
    pub imbalance_before: f64,
    /// Imbalance after (from the new stats).
    pub imbalance_after: f64,
    /// Changed cells whose runs were read and re-dispatched.
    pub cells_rewritten: u64,
    /// Live cells left untouched (their buckets are not rewritten).
    pub cells_untouched: u64,
    /// Cell runs read.
    pub runs_read: u64,
    /// Records re-dispatched.
    pub records_rewritten: u64,
    /// New buckets written.
    pub buckets_written: u64,
    /// Whether some rows came from decoded codes (no raw rows kept): the
    /// split centroids and codes drift from the exact vectors.
    pub from_codes: bool,
    /// What was written.
    pub cost: WriteCost,
}

/// A deterministic step plan.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) splits: Vec<SplitPlan>,
    pub(crate) merges: Vec<MergePlan>,
    /// The new index, loaded (same compressor).
    pub(crate) spatial: LoadedSpatial,
    pub(crate) index_bytes: Bytes,
    /// Cells of the old index whose records move.
    pub(crate) changed: Vec<u32>,
    pub(crate) stats: StatsData,
    pub(crate) k_max: u64,
    pub(crate) from_codes: bool,
}

/// One worker's share of a step.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShardWork {
    pub(crate) removed: Vec<Entry>,
    pub(crate) added: Vec<Change>,
    pub(crate) plus: StatsData,
    pub(crate) cells: Vec<u32>,
    pub(crate) runs_read: u64,
    pub(crate) records: u64,
    pub(crate) buckets: u64,
    pub(crate) from_codes: bool,
}

/// Records gathered for one output bucket: anchors, vectors, raw rows.
type Group = (Vec<u64>, Vec<f32>, Vec<Option<Vec<f32>>>);

fn ivf_of(ctx: &FieldCtx) -> Result<&IvfIndex, DatasetError> {
    match &ctx.spatial.index {
        SpatialIndex::Ivf(i) => Ok(i),
        _ => Err(DatasetError::invalid(
            ctx.field.as_str(),
            "Ada-IVF needs an IVF field (this one uses another index)",
        )),
    }
}

/// The field's `cell-stats` object, when its stats are stored.
fn stored_stats(state: &TrackState) -> Option<ContentHash> {
    state.stats.as_ref().and_then(TrackStats::stored)
}

fn sizes_of(stats: &StatsData, live: &[u32]) -> Vec<usize> {
    live.iter()
        .map(|&c| stats.counts.get(c as usize).copied().unwrap_or(0) as usize)
        .collect()
}

pub(crate) fn check_options(field: &str, o: &AdaIvfStepOptions) -> Result<(), DatasetError> {
    check_threshold(field, "split threshold", o.split_threshold)?;
    check_threshold(field, "merge threshold", o.merge_threshold)?;
    if o.merge_threshold >= o.split_threshold {
        return Err(DatasetError::invalid(
            field,
            format!(
                "merge threshold {} must be below split threshold {}",
                o.merge_threshold, o.split_threshold
            ),
        ));
    }
    if o.max_parts < 2 {
        return Err(DatasetError::invalid(field, "max_parts must be at least 2"));
    }
    Ok(())
}

impl Dataset {
    /// The field's stats in `base` (the memo, else the `cell-stats` object).
    async fn field_stats(&self, base: &Base, ctx: &FieldCtx) -> Result<StatsData, DatasetError> {
        let cells = cell_count(&ctx.spatial.index)?;
        if let Some(memo) = self.memo_get(base.hash, &ctx.field) {
            return Ok((*memo).clone());
        }
        load_stats(self.store(), &ctx.state, cells).await
    }

    /// Ada-IVF signals of `field` in the current version, with the cells
    /// over / under the given thresholds. Reads the ref, the Manifest, the
    /// spatial index and the `cell-stats` object: no LIST, no segment.
    pub async fn ada_ivf_status(
        &self,
        field: &str,
        split_threshold: Option<f64>,
        merge_threshold: Option<f64>,
    ) -> Result<AdaIvfStatus, DatasetError> {
        if let Some(t) = split_threshold {
            check_threshold(field, "split threshold", t)?;
        }
        if let Some(t) = merge_threshold {
            check_threshold(field, "merge threshold", t)?;
        }
        let (hash, manifest) = self.tip().await?;
        let base = self.step_base_at(hash, manifest).await?;
        let ctx = self.embedding_field(&base, field).await?;
        let stats = self.field_stats(&base, &ctx).await?;
        let live = live_cells(&ctx.spatial.index)?;
        let signals = signals_of(&stats, &live, stored_stats(&ctx.state));
        let sizes = sizes_of(&stats, &live);
        let dens = densities(&sizes);
        let cells: Vec<CellSize> = live
            .iter()
            .zip(&sizes)
            .zip(&dens)
            .map(|((&cell, &s), &d)| CellSize {
                cell,
                records: s as u64,
                density: d,
            })
            .collect();
        let mut over: Vec<CellSize> = match split_threshold {
            Some(t) => cells.iter().filter(|c| c.density > t).copied().collect(),
            None => Vec::new(),
        };
        over.sort_by(|a, b| b.records.cmp(&a.records).then(a.cell.cmp(&b.cell)));
        let mut under: Vec<CellSize> = match merge_threshold {
            Some(t) => cells.iter().filter(|c| c.density < t).copied().collect(),
            None => Vec::new(),
        };
        under.sort_by(|a, b| a.records.cmp(&b.records).then(a.cell.cmp(&b.cell)));
        Ok(AdaIvfStatus {
            field: field.to_owned(),
            manifest: base.hash,
            spatial_index: ctx.spatial.index_hash,
            imbalance: signals.imbalance,
            k: signals.k,
            n: signals.n,
            sqrt_n: signals.sqrt_n,
            k_max: signals.k_max,
            density: signals.density,
            fragmentation: signals.fragmentation,
            runs: signals.runs,
            overpopulated: over,
            underpopulated: under,
            tombstones: tombstoned(self, &base.manifest).await?.len() as u64,
            stats: stored_stats(&ctx.state),
        })
    }

    /// The rows of `cell` in `base` (ascending anchor), exact or decoded.
    async fn cell_rows(&self, ctx: &FieldCtx, cell: u32) -> Result<(Vec<f32>, bool), DatasetError> {
        let compressed = ctx.spatial.compressor.is_some();
        let mut recs: Vec<Rec> = Vec::new();
        for entry in entries(self, &ctx.state, KeyRange::cell(cell)).await? {
            recs.extend(read_run(self.store(), &entry, ctx.spec.dim, compressed, true).await?);
        }
        recs.sort_by_key(|r| r.anchor);
        let mut rows = Vec::with_capacity(recs.len() * ctx.spec.dim as usize);
        let mut from_codes = false;
        for r in &recs {
            let (v, exact) = vector_of(r, &ctx.spatial)?;
            from_codes |= !exact;
            rows.extend(v);
        }
        Ok((rows, from_codes))
    }

    /// The deterministic plan of a step on `base`.
    pub(crate) async fn ada_plan(
        &self,
        base: &Base,
        ctx: &FieldCtx,
        o: &AdaIvfStepOptions,
    ) -> Result<Option<Plan>, DatasetError> {
        let ivf = ivf_of(ctx)?;
        let stats = self.field_stats(base, ctx).await?;
        let live = ivf.cells();
        let sizes = sizes_of(&stats, &live);
        let dens = densities(&sizes);
        let n: u64 = sizes.iter().map(|&s| s as u64).sum();
        let k_max = sqrt_guidance(n).k_max.max(1);
        let size_of: BTreeMap<u32, usize> =
            live.iter().copied().zip(sizes.iter().copied()).collect();
        let dens_of: BTreeMap<u32, f64> = live.iter().copied().zip(dens.iter().copied()).collect();
        let hot: BTreeSet<u32> = dens_of
            .iter()
            .filter(|(_, d)| **d > o.split_threshold)
            .map(|(c, _)| *c)
            .collect();
        // 1. Merges, smallest first.
        let mut cold: Vec<u32> = dens_of
            .iter()
            .filter(|(_, d)| **d < o.merge_threshold)
            .map(|(c, _)| *c)
            .collect();
        cold.sort_by_key(|c| (size_of.get(c).copied().unwrap_or(0), *c));
        let mut merges: Vec<MergePlan> = Vec::new();
        let mut sources: BTreeSet<u32> = BTreeSet::new();
        let mut targets: BTreeSet<u32> = BTreeSet::new();
        let mut k = live.len() as u64;
        for c in cold {
            if k <= 2 || targets.contains(&c) {
                continue;
            }
            let exclude: Vec<u32> = sources
                .iter()
                .chain(hot.iter())
                .chain(std::iter::once(&c))
                .copied()
                .collect();
            let Ok(plan) = merge_cell(ivf, c, &exclude) else {
                continue;
            };
            sources.insert(c);
            targets.insert(plan.into);
            merges.push(plan);
            k -= 1;
        }
        // 2. Splits, largest first, under the cap.
        let mut hot_sorted: Vec<u32> = hot.iter().copied().collect();
        hot_sorted.sort_by_key(|c| (std::cmp::Reverse(size_of.get(c).copied().unwrap_or(0)), *c));
        let mut splits = Vec::new();
        let mut from_codes = false;
        for c in hot_sorted {
            if targets.contains(&c) || sources.contains(&c) {
                continue;
            }
            let size = size_of.get(&c).copied().unwrap_or(0) as u64;
            let want = dens_of.get(&c).copied().unwrap_or(0.0).ceil() as u64;
            let room = k_max.saturating_sub(k) + 1;
            let parts = want.clamp(2, u64::from(o.max_parts)).min(room).min(size);
            if parts < 2 {
                continue;
            }
            let (rows, codes) = self.cell_rows(ctx, c).await?;
            from_codes |= codes;
            let seed = field_seed(&ctx.field, o.seed) ^ u64::from(c);
            let plan = {
                let ivf = ivf.clone();
                tokio::task::spawn_blocking(move || {
                    split_cell(&ivf, c, &rows, parts as u32, seed, TRAIN_ITERATIONS)
                })
                .await
                .map_err(|e| DatasetError::Protocol(format!("split task failed: {e}")))??
            };
            splits.push(plan);
            k += parts - 1;
        }
        if splits.is_empty() && merges.is_empty() {
            return Ok(None);
        }
        let child = apply_changes(ivf, &splits, &merges)?;
        // `apply_changes` names the parent by the hash of its description;
        // the stored lineage (spec: a `spatial-index` object's `parents`,
        // followed by gc, verify and the append's lineage check) names
        // stored objects, so the child names the parent's object.
        let mut desc = child.description().clone();
        desc.parents = vec![ctx.spatial.index_hash];
        let child = IvfIndex::from_description(desc)?;
        let index = SpatialIndex::Ivf(child);
        let (bytes, hash) = object_of_index(&index, ctx.spec.metric)?.encode()?;
        let mut changed: Vec<u32> = splits
            .iter()
            .map(|s| s.cell)
            .chain(merges.iter().map(|m| m.cell))
            .collect();
        changed.sort_unstable();
        Ok(Some(Plan {
            splits,
            merges,
            spatial: LoadedSpatial {
                index,
                index_hash: hash,
                compressor: ctx.spatial.compressor.clone(),
                compressor_hash: ctx.spatial.compressor_hash,
            },
            index_bytes: Bytes::from(bytes),
            changed,
            stats,
            k_max,
            from_codes,
        }))
    }

    /// Re-dispatches the changed cells `c` with `c mod of == shard` and
    /// writes their new buckets (objects written; track changes returned).
    pub(crate) async fn ada_shard_work(
        &self,
        ctx: &FieldCtx,
        plan: &Plan,
        shard: u32,
        of: u32,
    ) -> Result<ShardWork, DatasetError> {
        let all_cells = entries(self, &ctx.state, KeyRange::cell_runs()).await?;
        let anchors = entries(self, &ctx.state, KeyRange::anchor_runs()).await?;
        let changed: BTreeSet<u32> = plan.changed.iter().copied().collect();
        // Per bucket: records in changed cells vs all of its cell runs.
        let mut moved: BTreeMap<ContentHash, u64> = BTreeMap::new();
        let mut kept: BTreeSet<ContentHash> = BTreeSet::new();
        for (key, value) in &all_cells {
            if key.cell().is_some_and(|c| changed.contains(&c)) {
                *moved.entry(*value.segment()).or_default() += u64::from(value.count());
            } else {
                kept.insert(*value.segment());
            }
        }
        let mut full: BTreeMap<ContentHash, Entry> = BTreeMap::new();
        for entry in &anchors {
            let seg = *entry.1.segment();
            if let (Some(m), TrackValue::AnchorRun { count, .. }) = (moved.get(&seg), entry.1) {
                if !kept.contains(&seg) && *m == u64::from(count) {
                    full.insert(seg, *entry);
                }
            }
        }
        let mut work = ShardWork::default();
        let compressed = ctx.spatial.compressor.is_some();
        let mut groups: [Group; 2] = Default::default();
        let mut full_used: BTreeSet<ContentHash> = BTreeSet::new();
        for (key, value) in &all_cells {
            let Some(cell) = key.cell() else { continue };
            if !changed.contains(&cell) || cell % of != shard {
                continue;
            }
            work.removed.push((*key, *value));
            work.runs_read += 1;
            if !work.cells.contains(&cell) {
                work.cells.push(cell);
            }
            let is_full = full.contains_key(value.segment());
            if is_full {
                full_used.insert(*value.segment());
            }
            let g = &mut groups[usize::from(is_full)];
            for r in read_run(
                self.store(),
                &(*key, *value),
                ctx.spec.dim,
                compressed,
                true,
            )
            .await?
            {
                let (v, exact) = vector_of(&r, &ctx.spatial)?;
                work.from_codes |= !exact;
                g.0.push(r.anchor);
                g.1.extend(v);
                g.2.push(r.raw);
            }
        }
        for seg in &full_used {
            if let Some(e) = full.get(seg) {
                work.removed.push(*e);
            }
        }
        let mut objects = Vec::new();
        for (i, (anchors, vectors, raw)) in groups.into_iter().enumerate() {
            work.records += anchors.len() as u64;
            let recs = redispatch(&plan.spatial, &anchors, &vectors, raw)?;
            if let Some(w) =
                write_bucket(&plan.spatial, ctx.spec.dim, recs, ctx.spec.rerank, i == 1)?
            {
                objects.extend(w.objects.into_iter().map(|(_, b)| b));
                work.added.extend(w.changes);
                work.plus = work.plus.plus(&w.added);
                work.buckets += 1;
            }
        }
        let mut all_objects = vec![plan.index_bytes.clone()];
        all_objects.extend(objects);
        self.store().put_many(all_objects).await?;
        work.from_codes |= plan.from_codes;
        Ok(work)
    }

    /// Publishes a step's (merged) work on `base`.
    pub(crate) async fn ada_publish(
        &self,
        base: &Base,
        ctx: &FieldCtx,
        spatial: &LoadedSpatial,
        work: &ShardWork,
        message: String,
    ) -> Result<ContentHash, DatasetError> {
        let minus = removed_stats(&work.removed);
        publish(
            self,
            Step {
                base: base.hash,
                base_manifest: base.manifest.clone(),
                edits: vec![FieldEdit {
                    field: ctx.field.clone(),
                    base_state: ctx.state.clone(),
                    removed: work.removed.clone(),
                    added: work.added.clone(),
                    spatial: Some((Some(spatial.index_hash), spatial.compressor_hash)),
                    stats: StatsEdit::Delta {
                        minus,
                        plus: work.plus.clone(),
                    },
                    cells: cell_count(&spatial.index)?,
                    whole: false,
                    guard_cells: work.cells.clone(),
                }],
                schema: None,
                message,
                objects: Vec::new(),
            },
        )
        .await
    }

    /// One Ada-IVF step on `field` (see the module docs): merges before
    /// splits, only changed cells rewritten, one Manifest and one CAS.
    /// `manifest: None` in the report when no cell crossed a threshold.
    pub async fn ada_ivf_step(
        &self,
        field: &str,
        options: AdaIvfStepOptions,
    ) -> Result<AdaIvfStepReport, DatasetError> {
        check_options(field, &options)?;
        let base = self.step_base().await?;
        let ctx = self.embedding_field(&base, field).await?;
        let before = self.store_stats();
        let Some(plan) = self.ada_plan(&base, &ctx, &options).await? else {
            return self.no_step_report(&base, &ctx).await;
        };
        let work = self.ada_shard_work(&ctx, &plan, 0, 1).await?;
        let message = step_message(field, &plan);
        let manifest = self
            .ada_publish(&base, &ctx, &plan.spatial, &work, message)
            .await?;
        let mut report = step_report(&base, &ctx, &plan, &work)?;
        report.manifest = Some(manifest);
        report.cost = WriteCost::since(&before, &self.store_stats());
        Ok(report)
    }

    pub(crate) async fn no_step_report(
        &self,
        base: &Base,
        ctx: &FieldCtx,
    ) -> Result<AdaIvfStepReport, DatasetError> {
        let stats = self.field_stats(base, ctx).await?;
        let live = live_cells(&ctx.spatial.index)?;
        let signals = signals_of(&stats, &live, stored_stats(&ctx.state));
        Ok(AdaIvfStepReport {
            base: base.hash,
            parent_index: ctx.spatial.index_hash,
            k_before: signals.k,
            k_after: signals.k,
            k_max: signals.k_max,
            imbalance_before: signals.imbalance,
            imbalance_after: signals.imbalance,
            cells_untouched: signals.k,
            manifest: None,
            spatial_index: None,
            splits: Vec::new(),
            merges: Vec::new(),
            cells_rewritten: 0,
            runs_read: 0,
            records_rewritten: 0,
            buckets_written: 0,
            from_codes: false,
            cost: WriteCost::default(),
        })
    }
}

pub(crate) fn step_message(field: &str, plan: &Plan) -> String {
    format!(
        "ada-ivf-step {field}: {} splits, {} merges",
        plan.splits.len(),
        plan.merges.len()
    )
}

/// The report of a step from its plan and (merged) work.
pub(crate) fn step_report(
    base: &Base,
    ctx: &FieldCtx,
    plan: &Plan,
    work: &ShardWork,
) -> Result<AdaIvfStepReport, DatasetError> {
    let old_live = live_cells(&ctx.spatial.index)?;
    let new_live = live_cells(&plan.spatial.index)?;
    let after = apply_delta(&plan.stats, &removed_stats(&work.removed), &work.plus);
    Ok(AdaIvfStepReport {
        manifest: None,
        base: base.hash,
        parent_index: ctx.spatial.index_hash,
        spatial_index: Some(plan.spatial.index_hash),
        splits: plan
            .splits
            .iter()
            .map(|s| (s.cell, (s.centroids.len() / ctx.spec.dim as usize) as u32))
            .collect(),
        merges: plan.merges.iter().map(|m| (m.cell, m.into)).collect(),
        k_before: old_live.len() as u64,
        k_after: new_live.len() as u64,
        k_max: plan.k_max,
        imbalance_before: imbalance_score(&sizes_of(&plan.stats, &old_live)),
        imbalance_after: imbalance_score(&sizes_of(&after, &new_live)),
        cells_rewritten: plan.changed.len() as u64,
        cells_untouched: (old_live.len() - plan.changed.len()) as u64,
        runs_read: work.runs_read,
        records_rewritten: work.records,
        buckets_written: work.buckets,
        from_codes: work.from_codes,
        cost: WriteCost::default(),
    })
}
