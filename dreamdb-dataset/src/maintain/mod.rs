//! Dataset-level maintenance (design/0003): the steps an operator
//! schedules — never run by the SDK on its own.
//!
//! - [`Dataset::compact`]: one run per fragmented cell, tombstoned
//!   records dropped, so a later `gc` reclaims their bytes;
//! - [`Dataset::rebuild_ivf`]: full retrain of an IVF field, everything
//!   re-dispatched (no lineage to the old index);
//! - [`Dataset::publish_rabitq`]: add or change RaBitQ compression;
//! - [`Dataset::ada_ivf_status`] / [`Dataset::ada_ivf_step`]: Ada-IVF
//!   signals from the track's cell stats, and one local step (merges, then
//!   splits) that rewrites only the changed cells;
//! - [`Dataset::ada_ivf_step_shard`] / [`Dataset::ada_ivf_orchestrate`]:
//!   the same step split over workers, finished by one publish.
//!
//! Every step publishes at most one Manifest with one compare-and-swap
//! (rebased onto a moved tip when its changes still apply, else
//! `conflict`); bad input is refused before anything is written.

mod ada;
mod compact;
mod job;
mod publish;
mod rebuild;
mod runs;

use std::collections::BTreeSet;

use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::TOMBSTONES_KEY;
use dreamdb_protocol::objects::{FieldSpec, Manifest, Schema, TombstoneList, TrackState};
use dreamdb_protocol::store::StoreStats;
use dreamdb_protocol::track::{KeyRange, Track};

pub use ada::{AdaIvfStatus, AdaIvfStepOptions, AdaIvfStepReport, CellSize};
pub use compact::{CompactReport, FieldCompaction};
pub use job::{ShardReport, JOB_FORMAT_VERSION};
pub use rebuild::{RabitqReport, RebuildReport};

use crate::dataset::Dataset;
use crate::write::layout::{load_spatial, LoadedSpatial};
use crate::write::segments::EmbeddingSpec;
use crate::DatasetError;
use runs::Entry;

/// What a step wrote: every PUT of this session during the step (segments,
/// index and stats objects, track pages, the Manifest).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCost {
    /// Bytes written.
    pub bytes_written: u64,
    /// Objects written (PUTs sent; already-known objects are skipped).
    pub objects_written: u64,
}

impl WriteCost {
    fn since(before: &StoreStats, after: &StoreStats) -> WriteCost {
        WriteCost {
            bytes_written: after.bytes_written.saturating_sub(before.bytes_written),
            objects_written: after.puts.saturating_sub(before.puts),
        }
    }
}

/// An embedding field as a step sees it in the base version.
#[derive(Debug, Clone)]
pub(crate) struct FieldCtx {
    pub(crate) field: String,
    pub(crate) spec: EmbeddingSpec,
    pub(crate) state: TrackState,
    pub(crate) spatial: LoadedSpatial,
}

/// The base version of a step.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    pub(crate) hash: ContentHash,
    pub(crate) manifest: Manifest,
    pub(crate) schema: Schema,
}

impl Dataset {
    /// The version a step is planned on.
    pub(crate) async fn step_base(&self) -> Result<Base, DatasetError> {
        self.writable_ref()?;
        let (hash, manifest) = self.tip().await?;
        self.step_base_at(hash, manifest).await
    }

    pub(crate) async fn step_base_at(
        &self,
        hash: ContentHash,
        manifest: Manifest,
    ) -> Result<Base, DatasetError> {
        let schema = self
            .repo()
            .schema(&manifest.schema)
            .await
            .map_err(DatasetError::from_dag)?;
        Ok(Base {
            hash,
            manifest,
            schema,
        })
    }

    /// The embedding field `field` of `base`, with its spatial machinery;
    /// `invalid-input` naming the problem when it is not one.
    pub(crate) async fn embedding_field(
        &self,
        base: &Base,
        field: &str,
    ) -> Result<FieldCtx, DatasetError> {
        let spec = base
            .schema
            .fields
            .get(field)
            .ok_or_else(|| DatasetError::invalid(field, "unknown field"))?;
        let spec = embedding_spec_of(&spec.spec).ok_or_else(|| {
            DatasetError::invalid(
                field,
                "not an embedding field (maintenance works on embeddings)",
            )
        })?;
        let state = base.manifest.tracks.get(field).cloned().ok_or_else(|| {
            DatasetError::invalid(field, "the field has no records yet (nothing to maintain)")
        })?;
        let index = state
            .spatial_index
            .ok_or_else(|| DatasetError::invalid(field, "the field has no spatial index yet"))?;
        let spatial = load_spatial(self.store(), index, state.compressor).await?;
        Ok(FieldCtx {
            field: field.to_owned(),
            spec,
            state,
            spatial,
        })
    }
}

/// The tombstoned anchors of a version.
pub(crate) async fn tombstoned(
    ds: &Dataset,
    manifest: &Manifest,
) -> Result<BTreeSet<u64>, DatasetError> {
    match manifest.registry.get(TOMBSTONES_KEY) {
        Some(hash) => {
            let list: TombstoneList = ds
                .repo()
                .get_object(hash)
                .await
                .map_err(DatasetError::from_dag)?;
            Ok(list.entries.iter().map(|t| t.anchor.as_nanos()).collect())
        }
        None => Ok(BTreeSet::new()),
    }
}

/// Every entry of `range` in a track (index pages only).
pub(crate) async fn entries(
    ds: &Dataset,
    state: &TrackState,
    range: KeyRange,
) -> Result<Vec<Entry>, DatasetError> {
    Ok(Track::new(ds.store().clone())
        .scan_all(&state.root, range)
        .await?)
}

/// The embedding parameters of a schema field.
pub(crate) fn embedding_spec_of(spec: &FieldSpec) -> Option<EmbeddingSpec> {
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

/// Checks a threshold: finite and > 0.
pub(crate) fn check_threshold(field: &str, name: &str, value: f64) -> Result<(), DatasetError> {
    if !value.is_finite() || value <= 0.0 {
        return Err(DatasetError::invalid(
            field,
            format!("{name} must be a finite number > 0, got {value}"),
        ));
    }
    Ok(())
}
