//! `manifest`: one version of a dataset — a commit in its DAG.
//!
//! A Manifest names its Genesis, its parents, the Schema, the root of each
//! field's track index (with the spatial index and compressor the track's
//! segments are placed under), and a registry of auxiliary objects keyed by
//! modality tag (`dreamdb.tombstones`, `dreamdb.recommendations`, ...).
//!
//! **Parent order is meaningful.** `parents` is not sorted: the first
//! parent is the branch the commit was made on ("ours" in a merge), the
//! others are merged in, in the order given. First-parent walks (history,
//! `--keep-manifests N`) depend on it. Parents are unique. The first commit
//! of a dataset has no parents and height 0; every other commit has height
//! `1 + max(parent heights)` (checked by the DAG code, which reads the
//! parents; this decoder checks only that height 0 ⇔ no parents).

use std::collections::BTreeMap;

use ciborium::value::Value;
use dreamdb_core::ContentHash;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::cell_stats::CellStats;
use super::common::{check_field_name, check_tag_shaped, check_unique};
use super::error::Invariant;
use super::ObjectKind;
use crate::track::TrackRoot;

/// Most cells whose stats a Manifest holds itself (8 bytes per cell, so at
/// most 16 KiB); a track with more cells stores a `cell-stats` object.
pub const HELD_STATS_MAX_CELLS: usize = 2048;

/// A track's cell stats as its state records them: held in the Manifest
/// (small indexes: no object of its own, design 0006) or a stored
/// `cell-stats` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackStats {
    /// The stats themselves: `{"counts", "runs"}` in the Manifest.
    Held(CellStats),
    /// A `cell-stats` object.
    Stored(ContentHash),
}

impl TrackStats {
    /// Whether a writer holds `stats` in the Manifest (up to
    /// [`HELD_STATS_MAX_CELLS`] cells) rather than storing an object.
    pub fn holds(stats: &CellStats) -> bool {
        stats.cells() <= HELD_STATS_MAX_CELLS
    }

    /// The stored object's hash, if the stats are stored.
    pub fn stored(&self) -> Option<ContentHash> {
        match self {
            TrackStats::Stored(h) => Some(*h),
            TrackStats::Held(_) => None,
        }
    }
}

impl Serialize for TrackStats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TrackStats::Held(stats) => stats.serialize(serializer),
            TrackStats::Stored(hash) => hash.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for TrackStats {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match value {
            Value::Map(_) => {
                let stats: CellStats = value.deserialized().map_err(D::Error::custom)?;
                stats
                    .validate()
                    .map_err(|e| D::Error::custom(format!("held cell stats: {e}")))?;
                Ok(TrackStats::Held(stats))
            }
            Value::Tag(..) => Ok(TrackStats::Stored(
                value.deserialized().map_err(D::Error::custom)?,
            )),
            _ => Err(D::Error::custom(
                "stats is a cell-stats hash or a held {counts, runs} map",
            )),
        }
    }
}

/// The state of one field's track in a Manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackState {
    /// The root of the track's index.
    pub root: TrackRoot,
    /// The spatial index of an embedding track (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spatial_index: Option<ContentHash>,
    /// The vector compressor of a compressed embedding track.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressor: Option<ContentHash>,
    /// This track's records and runs per cell, held or as a `cell-stats`
    /// object (embedding tracks; absent = not recorded, count the
    /// entries). Writers that change the track without recomputing it
    /// drop it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<TrackStats>,
    /// The largest anchor with an entry in this track (absent = not
    /// recorded, descend the anchor-order entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_anchor: Option<u64>,
}

impl TrackState {
    /// A state with no recorded stats or last anchor.
    pub fn new(
        root: TrackRoot,
        spatial_index: Option<ContentHash>,
        compressor: Option<ContentHash>,
    ) -> Self {
        TrackState {
            root,
            spatial_index,
            compressor,
            stats: None,
            last_anchor: None,
        }
    }
}

/// One version of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The dataset's Genesis.
    pub genesis: ContentHash,
    /// Parent Manifests; the first is "ours" (see the module docs).
    pub parents: Vec<ContentHash>,
    /// Distance from the first commit (0 for it).
    pub height: u64,
    /// Who wrote the commit (free text, not empty).
    pub writer: String,
    /// When, in Unix nanoseconds by the writer's clock (informative only:
    /// never trusted for ordering).
    pub time_unix_nanos: u64,
    /// Commit message.
    pub message: String,
    /// The Schema in force.
    pub schema: ContentHash,
    /// Field name → track.
    pub tracks: BTreeMap<String, TrackState>,
    /// Modality tag → auxiliary object (tombstones, recommendations, ...).
    pub registry: BTreeMap<String, ContentHash>,
    /// Number of live records.
    pub records: u64,
}

impl ObjectKind for Manifest {
    const KIND: &'static str = "manifest";

    fn validate(&self) -> Result<(), Invariant> {
        check_unique(&self.parents, "parents-unique", "parents")?;
        if self.parents.contains(&self.genesis) {
            return Err(Invariant::new(
                "parents-not-genesis",
                "the Genesis cannot be a parent Manifest",
            ));
        }
        if (self.height == 0) != self.parents.is_empty() {
            return Err(Invariant::new(
                "height",
                format!(
                    "height must be 0 exactly when there are no parents (height {}, {} parents)",
                    self.height,
                    self.parents.len()
                ),
            ));
        }
        if self.writer.is_empty() {
            return Err(Invariant::new("writer", "writer must not be empty"));
        }
        for (name, track) in &self.tracks {
            check_field_name(name)?;
            track
                .root
                .validate()
                .map_err(|e| Invariant::new("track-root", format!("track {name:?}: {e}")))?;
        }
        for key in self.registry.keys() {
            check_tag_shaped(key, "registry-key")?;
        }
        Ok(())
    }
}
