//! Per-cell statistics of an embedding track and the signals computed from
//! them (design/0002 § Signals). Signals are reported, never acted on.

use std::collections::BTreeMap;

use dreamdb_core::ContentHash;
#[cfg(doc)]
use dreamdb_protocol::objects::HELD_STATS_MAX_CELLS;
use dreamdb_protocol::objects::{CellStats, ObjectKind, TrackStats};
use dreamdb_protocol::spatial::ada_ivf::imbalance_score;
use dreamdb_protocol::spatial::sqrt_guidance;
use dreamdb_protocol::store::ObjectStore;
use dreamdb_protocol::track::{KeyRange, Track, TrackValue};

use super::compat;
use crate::DatasetError;
use dreamdb_protocol::objects::TrackState;

/// Records and runs per cell of one embedding track.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StatsData {
    pub(crate) counts: Vec<u32>,
    pub(crate) runs: Vec<u32>,
}

impl StatsData {
    pub(crate) fn empty(cells: u32) -> Self {
        StatsData {
            counts: vec![0; cells as usize],
            runs: vec![0; cells as usize],
        }
    }

    fn grow(&mut self, cells: usize) {
        if self.counts.len() < cells {
            self.counts.resize(cells, 0);
            self.runs.resize(cells, 0);
        }
    }

    /// Adds one run of `count` records in `cell`.
    pub(crate) fn add_run(&mut self, cell: u32, count: u32) {
        self.grow(cell as usize + 1);
        let i = cell as usize;
        self.counts[i] = self.counts[i].saturating_add(count);
        self.runs[i] = self.runs[i].saturating_add(1);
    }

    /// The sum of two stats (one of them a delta).
    pub(crate) fn plus(&self, delta: &StatsData) -> StatsData {
        let mut out = self.clone();
        out.grow(delta.counts.len());
        for (i, (c, r)) in delta.counts.iter().zip(&delta.runs).enumerate() {
            out.counts[i] = out.counts[i].saturating_add(*c);
            out.runs[i] = out.runs[i].saturating_add(*r);
        }
        out
    }

    pub(crate) fn to_object(&self) -> CellStats {
        CellStats::from_parts(&self.counts, &self.runs)
    }

    fn of_object(object: &CellStats) -> Self {
        StatsData {
            counts: object.counts(),
            runs: object.runs(),
        }
    }
}

/// `stats` as a Manifest records them: held in it up to
/// [`HELD_STATS_MAX_CELLS`] cells (no object of their own, design 0006),
/// else written as a `cell-stats` object.
pub(crate) async fn record_stats(
    store: &ObjectStore,
    stats: &StatsData,
) -> Result<TrackStats, DatasetError> {
    let object = stats.to_object();
    if TrackStats::holds(&object) {
        return Ok(TrackStats::Held(object));
    }
    let (bytes, hash) = object.encode()?;
    store.put_bytes(bytes).await?;
    Ok(TrackStats::Stored(hash))
}

/// The stats of a track: held in its state or its `cell-stats` object,
/// else counted from its cell-order entries (one scan of the index pages,
/// no segment read).
pub(crate) async fn load_stats(
    store: &ObjectStore,
    state: &TrackState,
    cells: u32,
) -> Result<StatsData, DatasetError> {
    match compat::stats_of(state) {
        Some(TrackStats::Stored(hash)) => {
            let bytes = store.get_bytes(hash).await?;
            let mut stats = StatsData::of_object(&CellStats::decode(hash, &bytes)?);
            stats.grow(cells as usize);
            return Ok(stats);
        }
        Some(TrackStats::Held(held)) => {
            let mut stats = StatsData::of_object(held);
            stats.grow(cells as usize);
            return Ok(stats);
        }
        None => {}
    }
    let mut stats = StatsData::empty(cells);
    let track = Track::new(store.clone());
    let mut scan = track.scan(&state.root, KeyRange::cell_runs());
    while let Some(batch) = scan.next_batch().await? {
        for (key, value) in batch {
            if let (Some(cell), TrackValue::CellRun { count, .. }) = (key.cell(), value) {
                stats.add_run(cell, count);
            }
        }
    }
    Ok(stats)
}

/// Density of records over the non-empty cells of a field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Density {
    /// Fewest records in a non-empty cell.
    pub min: u64,
    /// Median records per non-empty cell.
    pub median: f64,
    /// Most records in a cell.
    pub max: u64,
    /// Cells holding records.
    pub non_empty_cells: u64,
    /// Live cells holding none.
    pub empty_cells: u64,
}

/// The signals of one embedding field after an append.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSignals {
    /// Coefficient of variation of the live cells' record counts
    /// (0 = perfectly even).
    pub imbalance: f64,
    /// Live cells of the spatial index.
    pub k: u64,
    /// Records placed in the field's track (deleted ones included).
    pub n: u64,
    /// √N, the usual choice of k.
    pub sqrt_n: f64,
    /// ⌊2·√N⌋, the cap Ada-IVF keeps k under.
    pub k_max: u64,
    /// Records per non-empty cell.
    pub density: Density,
    /// Runs per non-empty cell (1 = one run each; compaction brings it
    /// back to 1).
    pub fragmentation: f64,
    /// Cell-order runs in the track.
    pub runs: u64,
    /// The field's `cell-stats` object, when stored.
    pub stats: Option<ContentHash>,
}

/// Signals of an append, per embedding field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    /// Field → signals.
    pub fields: BTreeMap<String, FieldSignals>,
}

/// Computes a field's signals from its stats over `live` cells.
pub(crate) fn signals_of(
    stats: &StatsData,
    live: &[u32],
    stats_hash: Option<ContentHash>,
) -> FieldSignals {
    let sizes: Vec<usize> = live
        .iter()
        .map(|&c| stats.counts.get(c as usize).copied().unwrap_or(0) as usize)
        .collect();
    let n: u64 = stats.counts.iter().map(|&c| u64::from(c)).sum();
    let runs: u64 = stats.runs.iter().map(|&r| u64::from(r)).sum();
    let mut non_empty: Vec<u64> = sizes
        .iter()
        .filter(|&&s| s > 0)
        .map(|&s| s as u64)
        .collect();
    non_empty.sort_unstable();
    let median = match non_empty.len() {
        0 => 0.0,
        len if len % 2 == 1 => non_empty[len / 2] as f64,
        len => (non_empty[len / 2 - 1] + non_empty[len / 2]) as f64 / 2.0,
    };
    let guidance = sqrt_guidance(n);
    let non_empty_cells = non_empty.len() as u64;
    FieldSignals {
        imbalance: imbalance_score(&sizes),
        k: live.len() as u64,
        n,
        sqrt_n: guidance.sqrt_n,
        k_max: guidance.k_max,
        density: Density {
            min: non_empty.first().copied().unwrap_or(0),
            median,
            max: non_empty.last().copied().unwrap_or(0),
            non_empty_cells,
            empty_cells: live.len() as u64 - non_empty_cells,
        },
        fragmentation: if non_empty_cells == 0 {
            0.0
        } else {
            runs as f64 / non_empty_cells as f64
        },
        runs,
        stats: stats_hash,
    }
}
