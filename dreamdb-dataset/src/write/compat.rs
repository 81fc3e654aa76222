//! The one place that knows which optional per-track metadata the
//! protocol's object shapes carry: a track's `cell-stats` object and last
//! anchor (meant for `TrackState`), and the raw-rows location of a cell
//! run (`TrackValue::CellRun::raw`).
//!
//! `TrackState` does not carry `stats` / `last_anchor` yet (adding fields
//! to it breaks every struct literal of it in `dag` and the tests, which
//! are other engineers' files): the functions here report them absent and
//! the callers fall back — stats by counting the track's cell-order
//! entries (index pages only; once per session, then memoised per
//! Manifest), the last anchor by one descent of the track's rightmost
//! anchor-order path. Switching to stored fields changes only this file.

use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::{TrackRoot, TrackState, TrackStats};
use dreamdb_protocol::track::TrackValue;

/// Whether `TrackState` stores `stats` and `last_anchor`.
pub(crate) const TRACK_META: bool = true;

/// Where a cell run's raw f32 rows are (a byte range of the field's
/// `vector-storage` object) and their hash.
pub use dreamdb_protocol::track::RawRows;

/// The track's cell stats (held or stored), if the state records them.
pub(crate) fn stats_of(state: &TrackState) -> Option<&TrackStats> {
    state.stats.as_ref()
}

/// The track's last anchor, if the state records it.
pub(crate) fn last_anchor_of(state: &TrackState) -> Option<u64> {
    state.last_anchor
}

/// A track state.
pub(crate) fn track_state(
    root: TrackRoot,
    spatial_index: Option<ContentHash>,
    compressor: Option<ContentHash>,
    stats: Option<TrackStats>,
    last_anchor: Option<u64>,
) -> TrackState {
    TrackState {
        root,
        spatial_index,
        compressor,
        stats,
        last_anchor,
    }
}

/// A cell-order entry's value.
pub(crate) fn cell_run(
    segment: ContentHash,
    offset: u64,
    len: u64,
    count: u32,
    run_hash: ContentHash,
    raw: Option<RawRows>,
) -> TrackValue {
    let value = TrackValue::CellRun {
        segment,
        offset,
        len,
        count,
        run_hash,
        raw: None,
    };
    match raw {
        Some(r) => value.with_raw_rows(r),
        None => value,
    }
}

/// The raw rows of a cell-order entry, if it records them.
pub fn raw_rows_of(value: &TrackValue) -> Option<RawRows> {
    value.raw_rows()
}
