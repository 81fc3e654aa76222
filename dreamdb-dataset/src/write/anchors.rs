//! Anchors of a version: the last one (to assign new anchors after it) and
//! which of some anchors already exist (to refuse duplicates), read from
//! the tracks' anchor-order entries — never by listing and never by
//! reading whole segments (only the anchor tables of runs whose range
//! covers a candidate, by ranged read).

use std::collections::BTreeSet;

use dreamdb_connector::ByteRange;
use dreamdb_protocol::objects::{Manifest, TrackRoot, TrackState};
use dreamdb_protocol::store::ObjectStore;
use dreamdb_protocol::track::{IndexPage, KeyRange, Track, TrackValue};

use super::compat;
use crate::DatasetError;

/// The last anchor of one track: the state's record when stored, else the
/// last anchor of the anchor-order run with the largest first anchor (one
/// descent of the rightmost anchor-order path: O(height) page reads).
pub(crate) async fn track_last_anchor(
    store: &ObjectStore,
    state: &TrackState,
) -> Result<Option<u64>, DatasetError> {
    if let Some(last) = compat::last_anchor_of(state) {
        return Ok(Some(last));
    }
    let last_of = |entries: &[(dreamdb_protocol::track::TrackKey, TrackValue)]| {
        entries
            .iter()
            .filter(|(k, _)| k.is_anchor_run())
            .filter_map(|(_, v)| match v {
                TrackValue::AnchorRun { last_anchor, .. } => Some(*last_anchor),
                TrackValue::CellRun { .. } => None,
            })
            .max()
    };
    let mut hash = match &state.root {
        TrackRoot::Inline { entries } => return Ok(last_of(entries)),
        TrackRoot::Paged { page, .. } => *page,
    };
    let held = state.root.top().map(|top| (hash, top.clone()));
    loop {
        let page = match &held {
            Some((name, top)) if *name == hash => (**top).clone(),
            _ => {
                let bytes = store.get_bytes(&hash).await?;
                IndexPage::decode(&bytes)
                    .map_err(|e| DatasetError::Integrity(format!("index page {hash}: {e}")))?
            }
        };
        match page {
            IndexPage::Leaf { entries } => return Ok(last_of(&entries)),
            IndexPage::Internal { children, .. } => {
                match children.iter().rev().find(|c| c.first_key.is_anchor_run()) {
                    Some(child) => hash = child.page,
                    None => return Ok(None),
                }
            }
        }
    }
}

/// The last anchor of a version: the largest of its tracks' last anchors.
pub(crate) async fn version_last_anchor(
    store: &ObjectStore,
    manifest: &Manifest,
) -> Result<Option<u64>, DatasetError> {
    let mut last = None;
    for state in manifest.tracks.values() {
        if let Some(a) = track_last_anchor(store, state).await? {
            last = last.max(Some(a));
        }
    }
    Ok(last)
}

/// Which of `anchors` (sorted, unique) lie in the anchor-order runs
/// `runs` (first anchor, value): runs whose range holds a candidate have
/// their anchor table read by range and searched.
pub(crate) async fn existing_in_runs(
    store: &ObjectStore,
    runs: &[(u64, TrackValue)],
    anchors: &[u64],
) -> Result<BTreeSet<u64>, DatasetError> {
    let mut found = BTreeSet::new();
    for (first, value) in runs {
        let TrackValue::AnchorRun {
            segment,
            last_anchor,
            table_offset,
            table_len,
            ..
        } = *value
        else {
            continue;
        };
        let start = anchors.partition_point(|a| *a < *first);
        let end = anchors.partition_point(|a| *a <= last_anchor);
        if start >= end {
            continue;
        }
        let range = ByteRange::new(table_offset, table_offset.saturating_add(table_len));
        let table = store.get_range(&segment, range, None).await?;
        let run: BTreeSet<u64> = table
            .chunks_exact(8)
            .map(|c| {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                u64::from_le_bytes(w)
            })
            .collect();
        found.extend(anchors[start..end].iter().filter(|a| run.contains(a)));
    }
    Ok(found)
}

/// Which of `anchors` (sorted, unique) already have a record in `manifest`
/// (in any track). Only anchor-order runs starting at or below the largest
/// candidate are scanned; tracks whose stored last anchor is below the
/// smallest candidate are skipped.
pub(crate) async fn existing_anchors(
    store: &ObjectStore,
    manifest: &Manifest,
    anchors: &[u64],
) -> Result<BTreeSet<u64>, DatasetError> {
    let mut found = BTreeSet::new();
    let (Some(&lo), Some(&hi)) = (anchors.first(), anchors.last()) else {
        return Ok(found);
    };
    let track = Track::new(store.clone());
    for state in manifest.tracks.values() {
        if compat::last_anchor_of(state).is_some_and(|last| last < lo) {
            continue;
        }
        let mut runs = Vec::new();
        let mut scan = track.scan(&state.root, KeyRange::anchors(..=hi));
        while let Some(batch) = scan.next_batch().await? {
            for (key, value) in batch {
                if let (Some(first), TrackValue::AnchorRun { last_anchor, .. }) =
                    (key.first_anchor(), value)
                {
                    if last_anchor >= lo {
                        runs.push((first, value));
                    }
                }
            }
        }
        found.extend(existing_in_runs(store, &runs, anchors).await?);
    }
    Ok(found)
}

/// The anchor-order runs `tip` has and `base` has not, over every track
/// (read by diffing the tracks: cost proportional to what changed).
pub(crate) async fn added_anchor_runs(
    store: &ObjectStore,
    base: &Manifest,
    tip: &Manifest,
) -> Result<Vec<(u64, TrackValue)>, DatasetError> {
    let track = Track::new(store.clone());
    let empty = TrackRoot::empty();
    // Fields are independent: diff them concurrently.
    let diffs = futures::future::try_join_all(
        tip.tracks
            .iter()
            .filter_map(|(name, state)| {
                let base_root = base.tracks.get(name).map_or(&empty, |s| &s.root);
                (*base_root != state.root).then_some((base_root, &state.root))
            })
            .map(|(from, to)| track.diff(from, to)),
    )
    .await?;
    let mut out = Vec::new();
    for (diff, _) in diffs {
        for d in diff {
            if let (Some(first), Some(value), None) = (d.key.first_anchor(), d.right, d.left) {
                out.push((first, value));
            }
        }
    }
    Ok(out)
}
