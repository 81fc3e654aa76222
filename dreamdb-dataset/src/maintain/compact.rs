//! `compact`: fragmented or tombstoned cells of an embedding field become
//! one run each in one new bucket (tombstoned records dropped); blob and
//! scalar segments holding tombstoned anchors are rewritten without them.
//!
//! Which cells: those with more than one run or a tombstoned record, closed
//! over the buckets they share — a bucket is either kept whole or replaced
//! whole, because its anchor-order entry names its whole anchor table. The
//! closure is taken over the cell-order entries (index pages only); a
//! bucket with records but no anchor-order entry of its own (written by an
//! Ada-IVF step) or the other way round makes the compaction whole-field,
//! which restores the one-bucket-one-anchor-entry shape.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use dreamdb_connector::ByteRange;
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::{BlobSegment, FieldSpec, ObjectKind, ScalarBucket, ScalarValues};
use dreamdb_protocol::track::{Change, KeyRange, TrackKey, TrackValue};

use super::publish::{publish, FieldEdit, StatsEdit, Step};
use super::runs::{read_run, removed_stats, write_bucket, Entry, Rec};
use super::{entries, tombstoned, Base, WriteCost};
use crate::dataset::Dataset;
use crate::write::layout::cell_count;
use crate::write::stats::StatsData;
use crate::DatasetError;

/// What compaction did to one field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldCompaction {
    /// Cells rewritten into one run each (embedding fields).
    pub cells_rewritten: u64,
    /// Cell runs read (embedding fields).
    pub runs_read: u64,
    /// Tombstoned records dropped.
    pub records_dropped: u64,
    /// Segments replaced (their track entries removed).
    pub segments_replaced: u64,
    /// Whether every cell of the field was rewritten (a bucket without its
    /// own anchor-order entry was found).
    pub whole_field: bool,
}

/// What [`Dataset::compact`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// The published Manifest; `None` when there was nothing to compact.
    pub manifest: Option<ContentHash>,
    /// Per field that changed.
    pub fields: BTreeMap<String, FieldCompaction>,
    /// Cells rewritten over all fields.
    pub cells_rewritten: u64,
    /// Records dropped over all fields.
    pub records_dropped: u64,
    /// What was written.
    pub cost: WriteCost,
}

fn le_u64s(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect()
}

/// Whether an anchor-order run may hold a tombstoned anchor.
fn may_hold(tombs: &BTreeSet<u64>, first: u64, last: u64) -> bool {
    tombs.range(first..=last).next().is_some()
}

/// The anchors of an anchor-order run (one ranged read of its table).
async fn anchor_table(ds: &Dataset, value: &TrackValue) -> Result<Vec<u64>, DatasetError> {
    let TrackValue::AnchorRun {
        segment,
        table_offset,
        table_len,
        ..
    } = value
    else {
        return Ok(Vec::new());
    };
    if *table_len == 0 {
        return Ok(Vec::new());
    }
    let bytes = ds
        .store()
        .get_range(
            segment,
            ByteRange::new(*table_offset, table_offset + table_len),
            None,
        )
        .await?;
    Ok(le_u64s(&bytes))
}

struct FieldOut {
    edit: FieldEdit,
    objects: Vec<Bytes>,
    report: FieldCompaction,
}

impl Dataset {
    /// Compacts `field` (every field when `None`): see the module docs.
    /// One Manifest, one compare-and-swap; `manifest: None` in the report
    /// when nothing needed compaction (nothing is written then).
    pub async fn compact(&self, field: Option<&str>) -> Result<CompactReport, DatasetError> {
        let base = self.step_base().await?;
        let fields: Vec<String> = match field {
            Some(f) => {
                if !base.schema.fields.contains_key(f) {
                    return Err(DatasetError::invalid(f, "unknown field"));
                }
                vec![f.to_owned()]
            }
            None => base.manifest.tracks.keys().cloned().collect(),
        };
        let before = self.store_stats();
        let tombs = tombstoned(self, &base.manifest).await?;
        let mut outs = Vec::new();
        for f in &fields {
            let Some(spec) = base.schema.fields.get(f).map(|s| s.spec.clone()) else {
                continue;
            };
            if !base.manifest.tracks.contains_key(f) {
                continue;
            }
            let out = match spec {
                FieldSpec::Embedding { .. } => self.compact_embedding(&base, f, &tombs).await?,
                FieldSpec::Blob { .. } | FieldSpec::Scalar { .. } => {
                    self.compact_segments(&base, f, &spec, &tombs).await?
                }
                _ => None,
            };
            outs.extend(out);
        }
        let mut report = CompactReport::default();
        if outs.is_empty() {
            return Ok(report);
        }
        let mut objects = Vec::new();
        let mut edits = Vec::new();
        for out in outs {
            report.cells_rewritten += out.report.cells_rewritten;
            report.records_dropped += out.report.records_dropped;
            report.fields.insert(out.edit.field.clone(), out.report);
            objects.extend(out.objects);
            edits.push(out.edit);
        }
        let message = format!(
            "compact: {} cells rewritten, {} deleted records dropped",
            report.cells_rewritten, report.records_dropped
        );
        let manifest = publish(
            self,
            Step {
                base: base.hash,
                base_manifest: base.manifest.clone(),
                edits,
                schema: None,
                message,
                objects,
            },
        )
        .await?;
        report.manifest = Some(manifest);
        report.cost = WriteCost::since(&before, &self.store_stats());
        Ok(report)
    }

    async fn compact_embedding(
        &self,
        base: &Base,
        field: &str,
        tombs: &BTreeSet<u64>,
    ) -> Result<Option<FieldOut>, DatasetError> {
        let ctx = self.embedding_field(base, field).await?;
        let cell_entries = entries(self, &ctx.state, KeyRange::cell_runs()).await?;
        let anchor_entries = entries(self, &ctx.state, KeyRange::anchor_runs()).await?;
        // Buckets ↔ cells.
        let mut cells_of: BTreeMap<ContentHash, BTreeSet<u32>> = BTreeMap::new();
        let mut buckets_of: BTreeMap<u32, BTreeSet<ContentHash>> = BTreeMap::new();
        for (key, value) in &cell_entries {
            if let Some(cell) = key.cell() {
                cells_of.entry(*value.segment()).or_default().insert(cell);
                buckets_of.entry(cell).or_default().insert(*value.segment());
            }
        }
        let anchored: BTreeSet<ContentHash> =
            anchor_entries.iter().map(|(_, v)| *v.segment()).collect();
        let whole = cells_of.keys().any(|b| !anchored.contains(b))
            || anchored.iter().any(|b| !cells_of.contains_key(b));
        // Seed cells: fragmented, or in a bucket holding a tombstoned anchor.
        let mut seeds: BTreeSet<u32> = buckets_of
            .iter()
            .filter(|(_, b)| b.len() > 1)
            .map(|(c, _)| *c)
            .collect();
        for (key, value) in &anchor_entries {
            let (Some(first), TrackValue::AnchorRun { last_anchor, .. }) =
                (key.first_anchor(), value)
            else {
                continue;
            };
            if may_hold(tombs, first, *last_anchor) {
                let table = anchor_table(self, value).await?;
                if table.iter().any(|a| tombs.contains(a)) {
                    seeds.extend(cells_of.get(value.segment()).into_iter().flatten());
                }
            }
        }
        if seeds.is_empty() && !whole {
            return Ok(None);
        }
        // Closure over shared buckets.
        let (cells, buckets): (BTreeSet<u32>, BTreeSet<ContentHash>) = if whole {
            (
                buckets_of.keys().copied().collect(),
                cells_of
                    .keys()
                    .copied()
                    .chain(anchored.iter().copied())
                    .collect(),
            )
        } else {
            let mut cells = BTreeSet::new();
            let mut buckets = BTreeSet::new();
            let mut stack: Vec<u32> = seeds.into_iter().collect();
            while let Some(c) = stack.pop() {
                if !cells.insert(c) {
                    continue;
                }
                for b in buckets_of.get(&c).into_iter().flatten() {
                    if buckets.insert(*b) {
                        stack.extend(cells_of.get(b).into_iter().flatten().copied());
                    }
                }
            }
            (cells, buckets)
        };
        let removed: Vec<Entry> = cell_entries
            .iter()
            .filter(|(k, _)| k.cell().is_some_and(|c| cells.contains(&c)))
            .copied()
            .collect();
        let removed_anchor: Vec<Entry> = anchor_entries
            .iter()
            .filter(|(_, v)| buckets.contains(v.segment()))
            .copied()
            .collect();
        let compressed = ctx.spatial.compressor.is_some();
        let mut recs: Vec<Rec> = Vec::new();
        let mut dropped = 0u64;
        for entry in &removed {
            for r in read_run(
                self.store(),
                entry,
                ctx.spec.dim,
                compressed,
                ctx.spec.rerank,
            )
            .await?
            {
                if tombs.contains(&r.anchor) {
                    dropped += 1;
                } else {
                    recs.push(r);
                }
            }
        }
        let written = write_bucket(&ctx.spatial, ctx.spec.dim, recs, ctx.spec.rerank, true)?;
        let (objects, added, plus) = match written {
            Some(w) => (
                w.objects.into_iter().map(|(_, b)| b).collect(),
                w.changes,
                w.added,
            ),
            None => (Vec::new(), Vec::new(), StatsData::empty(0)),
        };
        let report = FieldCompaction {
            cells_rewritten: cells.len() as u64,
            runs_read: removed.len() as u64,
            records_dropped: dropped,
            segments_replaced: buckets.len() as u64,
            whole_field: whole,
        };
        let minus = removed_stats(&removed);
        let mut all_removed = removed;
        all_removed.extend(removed_anchor);
        Ok(Some(FieldOut {
            edit: FieldEdit {
                field: field.to_owned(),
                base_state: ctx.state.clone(),
                removed: all_removed,
                added,
                spatial: None,
                stats: StatsEdit::Delta { minus, plus },
                cells: cell_count(&ctx.spatial.index)?,
                whole: false,
                guard_cells: Vec::new(),
            },
            objects,
            report,
        }))
    }

    /// Rewrites the blob or scalar segments of `field` that hold a
    /// tombstoned anchor without those records.
    async fn compact_segments(
        &self,
        base: &Base,
        field: &str,
        spec: &FieldSpec,
        tombs: &BTreeSet<u64>,
    ) -> Result<Option<FieldOut>, DatasetError> {
        let Some(state) = base.manifest.tracks.get(field) else {
            return Ok(None);
        };
        if tombs.is_empty() {
            return Ok(None);
        }
        let runs = entries(self, state, KeyRange::anchor_runs()).await?;
        let mut removed = Vec::new();
        let mut added = Vec::new();
        let mut objects = Vec::new();
        let mut dropped = 0u64;
        for entry in runs {
            let (key, value) = entry;
            let (
                Some(first),
                TrackValue::AnchorRun {
                    segment,
                    last_anchor,
                    ..
                },
            ) = (key.first_anchor(), value)
            else {
                continue;
            };
            if !may_hold(tombs, first, last_anchor) {
                continue;
            }
            let bytes = self.store().get_bytes(&segment).await?;
            let rebuilt = match spec {
                FieldSpec::Blob { .. } => {
                    let seg = BlobSegment::decode(&segment, &bytes)?;
                    let kept: Vec<(u64, &[u8])> = (0..seg.count())
                        .filter_map(|i| Some((seg.anchor(i)?, seg.blob(i)?)))
                        .filter(|(a, _)| !tombs.contains(a))
                        .collect();
                    if kept.len() == seg.count() {
                        continue;
                    }
                    dropped += (seg.count() - kept.len()) as u64;
                    if kept.is_empty() {
                        None
                    } else {
                        let anchors: Vec<u64> = kept.iter().map(|(a, _)| *a).collect();
                        let new = BlobSegment::build(&seg.mime, kept);
                        let table = new.anchors_range()?;
                        let (b, h) = new.encode()?;
                        Some((b, h, anchors, table))
                    }
                }
                FieldSpec::Scalar { .. } => {
                    let seg = ScalarBucket::decode(&segment, &bytes)?;
                    let anchors = le_u64s(&seg.anchors);
                    let keep: Vec<usize> = (0..anchors.len())
                        .filter(|&i| !tombs.contains(&anchors[i]))
                        .collect();
                    if keep.len() == anchors.len() {
                        continue;
                    }
                    dropped += (anchors.len() - keep.len()) as u64;
                    if keep.is_empty() {
                        None
                    } else {
                        let new = scalar_subset(&seg, &keep)?;
                        let kept: Vec<u64> = keep.iter().map(|&i| anchors[i]).collect();
                        let table = new.anchors_range()?;
                        let (b, h) = new.encode()?;
                        Some((b, h, kept, table))
                    }
                }
                _ => continue,
            };
            removed.push((key, value));
            if let Some((b, h, anchors, table)) = rebuilt {
                let first = anchors.first().copied().unwrap_or(0);
                let last = anchors.last().copied().unwrap_or(0);
                added.push(Change::Put(
                    TrackKey::anchor_run(first, &h),
                    TrackValue::AnchorRun {
                        segment: h,
                        last_anchor: last,
                        count: anchors.len() as u32,
                        table_offset: table.offset,
                        table_len: table.len,
                        storage: None,
                    },
                ));
                objects.push(Bytes::from(b));
            }
        }
        if removed.is_empty() {
            return Ok(None);
        }
        let report = FieldCompaction {
            cells_rewritten: 0,
            runs_read: 0,
            records_dropped: dropped,
            segments_replaced: removed.len() as u64,
            whole_field: false,
        };
        Ok(Some(FieldOut {
            edit: FieldEdit {
                field: field.to_owned(),
                base_state: state.clone(),
                removed,
                added,
                spatial: None,
                stats: StatsEdit::None,
                cells: 0,
                whole: false,
                guard_cells: Vec::new(),
            },
            objects,
            report,
        }))
    }
}

/// The records `keep` (ascending positions) of a scalar bucket.
fn scalar_subset(seg: &ScalarBucket, keep: &[usize]) -> Result<ScalarBucket, DatasetError> {
    let n = seg.count();
    let values = match &seg.values {
        ScalarValues::Bytes(b) => {
            let width = b.len().checked_div(n).unwrap_or(0);
            ScalarValues::Bytes(
                keep.iter()
                    .flat_map(|&i| {
                        b.get(i * width..(i + 1) * width)
                            .unwrap_or(&[])
                            .iter()
                            .copied()
                    })
                    .collect(),
            )
        }
        ScalarValues::Text(t) => ScalarValues::Text(
            keep.iter()
                .map(|&i| t.get(i).cloned().unwrap_or_default())
                .collect(),
        ),
    };
    let mut nulls = vec![0u8; keep.len().div_ceil(8)];
    let mut any = false;
    for (j, &i) in keep.iter().enumerate() {
        if seg.is_null(i) {
            nulls[j / 8] |= 1 << (j % 8);
            any = true;
        }
    }
    Ok(ScalarBucket {
        dtype: seg.dtype,
        anchors: keep
            .iter()
            .flat_map(|&i| seg.anchors[i * 8..(i + 1) * 8].iter().copied())
            .collect(),
        values,
        nulls: any.then_some(nulls),
    })
}
