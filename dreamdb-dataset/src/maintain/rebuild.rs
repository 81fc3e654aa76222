//! Whole-field rewrites: `rebuild-ivf` (retrain the IVF index on every
//! record and re-dispatch everything; the new index has no parent, so
//! buckets placed under the old one are all replaced) and `publish-rabitq`
//! (add or change RaBitQ compression: re-encode every record from its raw
//! row, or from the stored vector when the field was uncompressed).
//!
//! Both read every cell run of the field (one ranged GET each, plus its raw
//! rows), drop tombstoned records, write one new bucket (and vector
//! storage when raw rows are kept) and replace every entry of the field's
//! track. They hold the field's vectors in memory; a lost race against a
//! writer of the same field is `conflict` (run again).

use std::collections::BTreeSet;

use bytes::Bytes;
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::{Compression, FieldSpec, IndexSpec, ObjectKind};
use dreamdb_protocol::spatial::rabitq::{RaBitQ, VectorCompressor};
use dreamdb_protocol::track::KeyRange;

use super::publish::{publish, FieldEdit, StatsEdit, Step};
use super::runs::{read_run, redispatch, removed_stats, vector_of, write_bucket, Entry};
use super::{entries, tombstoned, Base, FieldCtx, WriteCost};
use crate::dataset::Dataset;
use crate::write::layout::{cell_count, object_of_compressor, spatial_metric, LoadedSpatial};
use crate::write::segments::{field_seed, spatial_objects, train_spatial, EmbeddingSpec};
use crate::DatasetError;

/// What [`Dataset::rebuild_ivf`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RebuildReport {
    /// The published Manifest.
    pub manifest: ContentHash,
    /// The new spatial index.
    pub spatial_index: ContentHash,
    /// Cells of the new index.
    pub k: u32,
    /// Records re-dispatched.
    pub records: u64,
    /// Tombstoned records dropped on the way.
    pub records_dropped: u64,
    /// Whether some vectors were reconstructed from RaBitQ codes because
    /// the field keeps no raw rows (the new index is trained on
    /// approximations: expect some recall drift).
    pub from_codes: bool,
    /// What was written.
    pub cost: WriteCost,
}

/// What [`Dataset::publish_rabitq`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RabitqReport {
    /// The published Manifest.
    pub manifest: ContentHash,
    /// The new compressor object.
    pub compressor: ContentHash,
    /// Bits per dimension before (`None`: uncompressed) and after.
    pub bits_before: Option<u8>,
    /// Bits per dimension now.
    pub bits: u8,
    /// Records re-encoded.
    pub records: u64,
    /// What was written.
    pub cost: WriteCost,
}

/// Every live record of a field, with its vector.
struct AllRecords {
    removed: Vec<Entry>,
    anchors: Vec<u64>,
    vectors: Vec<f32>,
    raw: Vec<Option<Vec<f32>>>,
    dropped: u64,
    from_codes: bool,
}

async fn read_all(ds: &Dataset, base: &Base, ctx: &FieldCtx) -> Result<AllRecords, DatasetError> {
    let tombs: BTreeSet<u64> = tombstoned(ds, &base.manifest).await?;
    let mut removed = entries(ds, &ctx.state, KeyRange::cell_runs()).await?;
    let compressed = ctx.spatial.compressor.is_some();
    let mut out = AllRecords {
        removed: Vec::new(),
        anchors: Vec::new(),
        vectors: Vec::new(),
        raw: Vec::new(),
        dropped: 0,
        from_codes: false,
    };
    for entry in &removed {
        for r in read_run(ds.store(), entry, ctx.spec.dim, compressed, true).await? {
            if tombs.contains(&r.anchor) {
                out.dropped += 1;
                continue;
            }
            let (v, exact) = vector_of(&r, &ctx.spatial)?;
            out.from_codes |= !exact;
            out.anchors.push(r.anchor);
            out.vectors.extend(v);
            out.raw.push(r.raw);
        }
    }
    removed.extend(entries(ds, &ctx.state, KeyRange::anchor_runs()).await?);
    out.removed = removed;
    Ok(out)
}

/// Re-dispatches every record under `spatial` and publishes the field's
/// new track (and schema).
#[allow(clippy::too_many_arguments)]
async fn rewrite_field(
    ds: &Dataset,
    base: &Base,
    ctx: &FieldCtx,
    all: AllRecords,
    spatial: &LoadedSpatial,
    mut objects: Vec<Bytes>,
    schema: Option<ContentHash>,
    message: String,
) -> Result<ContentHash, DatasetError> {
    let recs = redispatch(spatial, &all.anchors, &all.vectors, all.raw)?;
    let written = write_bucket(spatial, ctx.spec.dim, recs, ctx.spec.rerank, true)?;
    let minus = removed_stats(&all.removed);
    let (added, plus) = match written {
        Some(w) => {
            objects.extend(w.objects.into_iter().map(|(_, b)| b));
            (w.changes, w.added)
        }
        None => (Vec::new(), crate::write::stats::StatsData::empty(0)),
    };
    publish(
        ds,
        Step {
            base: base.hash,
            base_manifest: base.manifest.clone(),
            edits: vec![FieldEdit {
                field: ctx.field.clone(),
                base_state: ctx.state.clone(),
                removed: all.removed,
                added,
                spatial: Some((Some(spatial.index_hash), spatial.compressor_hash)),
                stats: StatsEdit::Delta { minus, plus },
                cells: cell_count(&spatial.index)?,
                whole: true,
                guard_cells: Vec::new(),
            }],
            schema,
            message,
            objects,
        },
    )
    .await
}

impl Dataset {
    /// Retrains the IVF index of `field` from every record (raw rows where
    /// kept, else decoded codes — flagged in the report) with `cells`
    /// cells (default: the schema's k) and `seed`, re-dispatches every
    /// record and publishes the new index (no parent lineage) and track.
    pub async fn rebuild_ivf(
        &self,
        field: &str,
        cells: Option<u32>,
        seed: u64,
    ) -> Result<RebuildReport, DatasetError> {
        let base = self.step_base().await?;
        let ctx = self.embedding_field(&base, field).await?;
        let IndexSpec::Ivf { k } = ctx.spec.index else {
            return Err(DatasetError::invalid(
                field,
                "rebuild-ivf needs an IVF field (this one uses another index)",
            ));
        };
        let k = cells.unwrap_or(k);
        if k == 0 {
            return Err(DatasetError::invalid(field, "cells must be at least 1"));
        }
        let before = self.store_stats();
        let all = read_all(self, &base, &ctx).await?;
        let spec = EmbeddingSpec {
            index: IndexSpec::Ivf { k },
            compression: None,
            ..ctx.spec
        };
        let training = all.vectors.clone();
        let name = field.to_owned();
        let seed = field_seed(field, seed);
        let (index, _) =
            tokio::task::spawn_blocking(move || train_spatial(&name, &spec, &training, seed))
                .await
                .map_err(|e| DatasetError::Protocol(format!("training task failed: {e}")))??;
        let (mut spatial, objects) = spatial_objects(index, None, ctx.spec.metric)?;
        spatial.compressor = ctx.spatial.compressor.clone();
        spatial.compressor_hash = ctx.spatial.compressor_hash;
        let objects: Vec<Bytes> = objects.into_iter().map(|e| e.bytes).collect();
        let records = all.anchors.len() as u64;
        let dropped = all.dropped;
        let from_codes = all.from_codes;
        let message = format!("rebuild-ivf {field}: k = {k}, {records} records re-dispatched");
        let manifest =
            rewrite_field(self, &base, &ctx, all, &spatial, objects, None, message).await?;
        Ok(RebuildReport {
            manifest,
            spatial_index: spatial.index_hash,
            k: cell_count(&spatial.index)?,
            records,
            records_dropped: dropped,
            from_codes,
            cost: WriteCost::since(&before, &self.store_stats()),
        })
    }

    /// Adds RaBitQ compression with `bits` bits per dimension to `field`,
    /// or changes its bits: every record is re-encoded from its raw row
    /// (or from the stored vector of an uncompressed field) and the schema
    /// records the new compression. Refused (`invalid-input`, nothing
    /// written) when the field is compressed and keeps no raw rows, or
    /// already uses `bits`.
    pub async fn publish_rabitq(
        &self,
        field: &str,
        bits: u8,
    ) -> Result<RabitqReport, DatasetError> {
        let base = self.step_base().await?;
        let ctx = self.embedding_field(&base, field).await?;
        if !(1..=8).contains(&bits) {
            return Err(DatasetError::invalid(
                field,
                format!("RaBitQ bits must be 1..=8, got {bits}"),
            ));
        }
        let bits_before = ctx.spec.compression.map(|c| match c {
            Compression::Rabitq { bits } => bits,
        });
        if bits_before == Some(bits) {
            return Err(DatasetError::invalid(
                field,
                format!("the field already uses RaBitQ with {bits} bits"),
            ));
        }
        if bits_before.is_some() && !ctx.spec.rerank {
            return Err(DatasetError::invalid(
                field,
                "raw rows are absent (rerank is off), and re-encoding compressed codes with other bits needs the exact vectors",
            ));
        }
        let before = self.store_stats();
        let all = read_all(self, &base, &ctx).await?;
        if all.from_codes {
            return Err(DatasetError::invalid(
                field,
                "some records have no raw rows, and re-encoding compressed codes needs the exact vectors",
            ));
        }
        let seed = match &ctx.spatial.compressor {
            Some(rq) => rq.description().seed,
            None => field_seed(field, 0),
        };
        let rq = RaBitQ::new(VectorCompressor::rabitq(
            bits,
            ctx.spec.dim,
            seed,
            spatial_metric(ctx.spec.metric),
        ))
        .map_err(|e| {
            DatasetError::invalid(field, format!("building the RaBitQ compressor: {e}"))
        })?;
        let (cbytes, chash) = object_of_compressor(&rq).encode()?;
        let mut schema = base.schema.clone();
        if let Some(f) = schema.fields.get_mut(field) {
            if let FieldSpec::Embedding { compression, .. } = &mut f.spec {
                *compression = Some(Compression::Rabitq { bits });
            }
        }
        schema
            .validate()
            .map_err(|i| DatasetError::InvalidSchema { reason: i.detail })?;
        let (sbytes, shash) = schema.encode()?;
        let spatial = LoadedSpatial {
            index: ctx.spatial.index.clone(),
            index_hash: ctx.spatial.index_hash,
            compressor: Some(rq),
            compressor_hash: Some(chash),
        };
        let records = all.anchors.len() as u64;
        let message = format!("publish-rabitq {field}: {bits} bits, {records} records re-encoded");
        let manifest = rewrite_field(
            self,
            &base,
            &ctx,
            all,
            &spatial,
            vec![Bytes::from(cbytes), Bytes::from(sbytes)],
            Some(shash),
            message,
        )
        .await?;
        Ok(RabitqReport {
            manifest,
            compressor: chash,
            bits_before,
            bits,
            records,
            cost: WriteCost::since(&before, &self.store_stats()),
        })
    }
}
