//! `tombstones`: the records deleted from a dataset (spec/0020).
//!
//! A list holds the *complete* set of tombstones of one version, sorted by
//! anchor with each anchor at most once, so a reader suppresses deleted
//! records with one object and a binary search per record. `parents` names
//! the lists this one extends (sorted, unique): one for a delete, two or
//! more for a merge, none for the first. The Manifest registry points at
//! the current list under `dreamdb.tombstones`.

use dreamdb_core::time::TimeAnchor;
use dreamdb_core::ContentHash;
use serde::{Deserialize, Serialize};

use super::common::{check_strictly_ascending, check_unique};
use super::error::{Invariant, ObjectError};
use super::ObjectKind;

/// One deleted record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tombstone {
    /// The record's anchor.
    pub anchor: TimeAnchor,
    /// Why it was deleted (free text, may be empty).
    pub reason: String,
    /// When it was deleted, in Unix nanoseconds (informative).
    pub time_unix_nanos: u64,
}

/// The tombstones of one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TombstoneList {
    /// The lists this one extends: sorted, unique.
    pub parents: Vec<ContentHash>,
    /// Tombstones, strictly ascending by anchor.
    pub entries: Vec<Tombstone>,
}

impl TombstoneList {
    /// Whether the record at `anchor` is deleted.
    pub fn contains(&self, anchor: TimeAnchor) -> bool {
        self.entries
            .binary_search_by(|t| t.anchor.cmp(&anchor))
            .is_ok()
    }

    /// The merge of two lists: every anchor deleted in either, with
    /// `parents` = the two lists' hashes (sorted; one if they are equal).
    ///
    /// When both lists delete one anchor with different details, the
    /// earlier deletion (smaller `time_unix_nanos`, then smaller `reason`)
    /// is kept, so `union(a, b) == union(b, a)`.
    pub fn union(a: &TombstoneList, b: &TombstoneList) -> Result<TombstoneList, ObjectError> {
        let (_, hash_a) = a.encode()?;
        let (_, hash_b) = b.encode()?;
        if hash_a == hash_b {
            return Ok(a.clone());
        }
        let mut parents = vec![hash_a, hash_b];
        parents.sort();
        let mut entries = Vec::with_capacity(a.entries.len() + b.entries.len());
        let (mut i, mut j) = (0, 0);
        while i < a.entries.len() && j < b.entries.len() {
            let (x, y) = (&a.entries[i], &b.entries[j]);
            match x.anchor.cmp(&y.anchor) {
                std::cmp::Ordering::Less => {
                    entries.push(x.clone());
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    entries.push(y.clone());
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let keep = if (x.time_unix_nanos, &x.reason) <= (y.time_unix_nanos, &y.reason) {
                        x
                    } else {
                        y
                    };
                    entries.push(keep.clone());
                    i += 1;
                    j += 1;
                }
            }
        }
        entries.extend_from_slice(&a.entries[i..]);
        entries.extend_from_slice(&b.entries[j..]);
        Ok(TombstoneList { parents, entries })
    }
}

impl ObjectKind for TombstoneList {
    const KIND: &'static str = "tombstones";

    fn validate(&self) -> Result<(), Invariant> {
        check_unique(&self.parents, "parents-unique", "parents")?;
        check_strictly_ascending(&self.parents, "parents-sorted", "parents")?;
        let anchors: Vec<TimeAnchor> = self.entries.iter().map(|t| t.anchor).collect();
        check_strictly_ascending(&anchors, "entries-sorted", "tombstone anchors")
    }
}
