//! Publishing a maintenance step: one Manifest, one compare-and-swap,
//! rebased onto a moved tip when the step's changes still apply there.
//!
//! A step edits one field's track relative to the version it was planned
//! on (its *base*). On a lost race the same edit is re-applied to the new
//! tip when the tip's track still holds every entry the edit removes and
//! names the same spatial index and compressor (a concurrent append of
//! other cells, a delete, a layer are fine). A whole-field rewrite
//! (rebuild, new compression) needs the tip's track unchanged. Anything
//! else is refused with `conflict`, and the written segments are left for
//! `gc`.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{CommitLoopOptions, DagError, Draft};
use dreamdb_protocol::objects::{Manifest, TrackState};
use dreamdb_protocol::track::{Change, KeyRange, Track};

use super::runs::{apply_delta, Entry};
use crate::dataset::{lock, Dataset};
use crate::write::compat;
use crate::write::stats::{load_stats, record_stats, StatsData};
use crate::DatasetError;

/// How a field's cell stats change.
#[derive(Debug, Clone)]
pub(crate) enum StatsEdit {
    /// Not an embedding field: no stats.
    None,
    /// Subtract `minus`, add `plus` (per cell).
    Delta { minus: StatsData, plus: StatsData },
}

/// One field's edit.
#[derive(Debug, Clone)]
pub(crate) struct FieldEdit {
    pub(crate) field: String,
    /// The field's state in the base version.
    pub(crate) base_state: TrackState,
    /// Entries removed (must still be in the tip's track).
    pub(crate) removed: Vec<Entry>,
    /// Entries added.
    pub(crate) added: Vec<Change>,
    /// The new spatial index and compressor (`None`: keep the tip's).
    pub(crate) spatial: Option<(Option<ContentHash>, Option<ContentHash>)>,
    pub(crate) stats: StatsEdit,
    /// Cell ids of the resulting index (stats are sized to it).
    pub(crate) cells: u32,
    /// The tip's track must equal the base's.
    pub(crate) whole: bool,
    /// Cells whose entries at the tip must be exactly the removed ones
    /// (cells an Ada-IVF step replaces: a record appended there meanwhile
    /// would be stranded under the new index).
    pub(crate) guard_cells: Vec<u32>,
}

/// A step to publish.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) base: ContentHash,
    pub(crate) base_manifest: Manifest,
    pub(crate) edits: Vec<FieldEdit>,
    /// A new schema (the tip's schema must still be the base's).
    pub(crate) schema: Option<ContentHash>,
    pub(crate) message: String,
    /// Objects to write before the commit.
    pub(crate) objects: Vec<Bytes>,
}

fn conflict(reason: String) -> DatasetError {
    DatasetError::Conflict { reason }
}

/// Writes the step's objects and publishes it; returns the Manifest.
pub(crate) async fn publish(ds: &Dataset, step: Step) -> Result<ContentHash, DatasetError> {
    let name = ds.writable_ref()?.clone();
    ds.store().put_many(step.objects.clone()).await?;
    let step = Arc::new(step);
    let abort: Arc<Mutex<Option<DatasetError>>> = Arc::new(Mutex::new(None));
    let result = {
        let ds2 = ds.clone();
        let step = step.clone();
        let abort = abort.clone();
        ds.repo()
            .commit_changes(
                &name,
                move |tip_hash, tip| {
                    let (ds, step, abort) = (ds2.clone(), step.clone(), abort.clone());
                    async move {
                        match rebase(&ds, &step, tip_hash, &tip).await {
                            Ok(draft) => Ok(draft),
                            Err(e) => {
                                *lock(&abort) = Some(e);
                                Err(DagError::InvalidArgument(
                                    "maintenance step aborted (see the dataset error)".to_owned(),
                                ))
                            }
                        }
                    }
                },
                &CommitLoopOptions::default(),
            )
            .await
    };
    match result {
        Ok(committed) => Ok(committed.manifest),
        Err(e) => match lock(&abort).take() {
            Some(e) => Err(e),
            None => Err(DatasetError::from_dag(e)),
        },
    }
}

async fn rebase(
    ds: &Dataset,
    step: &Step,
    tip_hash: ContentHash,
    tip: &Manifest,
) -> Result<Draft, DatasetError> {
    let store = ds.store();
    let track = Track::new(store.clone());
    let mut draft = Draft::from_manifest(tip, ds.writer(), &step.message);
    if let Some(schema) = step.schema {
        if tip.schema != step.base_manifest.schema {
            return Err(conflict(
                "the schema changed since the step was planned".to_owned(),
            ));
        }
        draft.schema = schema;
    }
    for edit in &step.edits {
        let Some(state) = tip.tracks.get(&edit.field) else {
            return Err(conflict(format!(
                "field {:?} has no track at the tip any more",
                edit.field
            )));
        };
        let moved = tip_hash != step.base && *state != edit.base_state;
        if moved {
            if edit.whole && state.root != edit.base_state.root {
                return Err(conflict(format!(
                    "field {:?} was written since the step was planned; run it again",
                    edit.field
                )));
            }
            if state.spatial_index != edit.base_state.spatial_index
                || state.compressor != edit.base_state.compressor
            {
                return Err(conflict(format!(
                    "field {:?} has another spatial index or compressor at the tip",
                    edit.field
                )));
            }
            for cell in &edit.guard_cells {
                let now = track.scan_all(&state.root, KeyRange::cell(*cell)).await?;
                if now.iter().any(|e| !edit.removed.contains(e)) {
                    return Err(conflict(format!(
                        "field {:?}: cell {cell} received records since the step was planned",
                        edit.field
                    )));
                }
            }
            for (key, value) in &edit.removed {
                if track.get(&state.root, key).await? != Some(*value) {
                    return Err(conflict(format!(
                        "field {:?}: an entry the step replaces changed at the tip",
                        edit.field
                    )));
                }
            }
        }
        let changes = edit
            .removed
            .iter()
            .map(|(k, _)| Change::Delete(*k))
            .chain(edit.added.iter().copied());
        let (root, _) = track.apply(&state.root, changes).await?;
        let (spatial_index, compressor) = edit
            .spatial
            .unwrap_or((state.spatial_index, state.compressor));
        let stats = match &edit.stats {
            StatsEdit::None => compat::stats_of(state).cloned(),
            StatsEdit::Delta { minus, plus } => {
                let base = match ds.memo_get(tip_hash, &edit.field) {
                    Some(memo) => (*memo).clone(),
                    None => load_stats(store, state, edit.cells).await?,
                };
                let mut new = apply_delta(&base, minus, plus);
                if new.counts.len() < edit.cells as usize {
                    new = new.plus(&StatsData::empty(edit.cells));
                }
                Some(record_stats(store, &new).await?)
            }
        };
        draft.tracks.insert(
            edit.field.clone(),
            compat::track_state(
                root,
                spatial_index,
                compressor,
                stats,
                compat::last_anchor_of(state),
            ),
        );
    }
    Ok(draft)
}
