//! Track keys: byte strings compared bytewise.
//!
//! A track indexes *runs* of records, in two orders that share one B-tree
//! (design 0001, "Track index"):
//!
//! - anchor order: `0x41 ‖ first anchor (u64 BE) ‖ segment digest (32 bytes)`
//!   (41 bytes), read by `get`, `iter` and time ranges;
//! - cell order: `0x43 ‖ cell (u32 BE) ‖ segment digest` (37 bytes), read by
//!   queries.
//!
//! Big-endian integers make byte order equal numeric order, the one-byte
//! prefix keeps the two orders apart, and the segment digest makes every
//! key unique by construction. [`KeyRange`] expresses the scans the upper
//! layers need ("all runs of cell c", "anchor runs starting in [a, b)") as
//! half-open byte ranges.

use std::cmp::Ordering;
use std::fmt;
use std::ops::{Bound, RangeBounds};

use dreamdb_core::hash::DIGEST_LEN;
use dreamdb_core::ContentHash;

/// First byte of an anchor-run key (`'A'`).
pub const ANCHOR_RUN_PREFIX: u8 = 0x41;
/// First byte of a cell-run key (`'C'`).
pub const CELL_RUN_PREFIX: u8 = 0x43;
/// Length of an anchor-run key: prefix, u64, digest.
pub const ANCHOR_RUN_KEY_LEN: usize = 1 + 8 + DIGEST_LEN;
/// Length of a cell-run key: prefix, u32, digest.
pub const CELL_RUN_KEY_LEN: usize = 1 + 4 + DIGEST_LEN;

/// Which order a key belongs to, with its parsed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKeyKind {
    /// An anchor-order entry: one segment's run of records by anchor.
    AnchorRun {
        /// The run's first anchor.
        first_anchor: u64,
        /// The segment holding the run.
        segment: ContentHash,
    },
    /// A cell-order entry: one segment's records of one spatial cell.
    CellRun {
        /// The spatial cell.
        cell: u32,
        /// The segment holding the run.
        segment: ContentHash,
    },
}

/// Why bytes are not a track key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid track key {bytes_hex}: {reason}")]
pub struct KeyFormatError {
    /// The bytes, in hex (at most the first 64 bytes).
    pub bytes_hex: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// A track key: an anchor-run or cell-run key (41 or 37 bytes), ordered
/// bytewise. Fixed-size and `Copy`, so large batches of keys cost no
/// allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrackKey {
    len: u8,
    buf: [u8; ANCHOR_RUN_KEY_LEN],
}

impl TrackKey {
    /// The anchor-run key `0x41 ‖ first_anchor (BE) ‖ segment digest`.
    pub fn anchor_run(first_anchor: u64, segment: &ContentHash) -> Self {
        let mut buf = [0u8; ANCHOR_RUN_KEY_LEN];
        buf[0] = ANCHOR_RUN_PREFIX;
        buf[1..9].copy_from_slice(&first_anchor.to_be_bytes());
        buf[9..].copy_from_slice(segment.digest());
        TrackKey {
            len: ANCHOR_RUN_KEY_LEN as u8,
            buf,
        }
    }

    /// The cell-run key `0x43 ‖ cell (BE) ‖ segment digest`.
    pub fn cell_run(cell: u32, segment: &ContentHash) -> Self {
        let mut buf = [0u8; ANCHOR_RUN_KEY_LEN];
        buf[0] = CELL_RUN_PREFIX;
        buf[1..5].copy_from_slice(&cell.to_be_bytes());
        buf[5..CELL_RUN_KEY_LEN].copy_from_slice(segment.digest());
        TrackKey {
            len: CELL_RUN_KEY_LEN as u8,
            buf,
        }
    }

    /// Parses a key from its bytes: a known prefix and the exact length
    /// for it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyFormatError> {
        let fail = |reason| KeyFormatError {
            bytes_hex: hex_prefix(bytes),
            reason,
        };
        let expected = match bytes.first() {
            Some(&ANCHOR_RUN_PREFIX) => ANCHOR_RUN_KEY_LEN,
            Some(&CELL_RUN_PREFIX) => CELL_RUN_KEY_LEN,
            Some(_) => return Err(fail("unknown key prefix (expected 0x41 or 0x43)")),
            None => return Err(fail("empty key")),
        };
        if bytes.len() != expected {
            return Err(fail(
                "wrong length for its prefix (41 bytes for 0x41, 37 for 0x43)",
            ));
        }
        let mut buf = [0u8; ANCHOR_RUN_KEY_LEN];
        buf[..expected].copy_from_slice(bytes);
        Ok(TrackKey {
            len: expected as u8,
            buf,
        })
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// The key's order and fields.
    pub fn kind(&self) -> TrackKeyKind {
        let digest_at = self.len as usize - DIGEST_LEN;
        let mut digest = [0u8; DIGEST_LEN];
        digest.copy_from_slice(&self.buf[digest_at..self.len as usize]);
        let segment = ContentHash::from_digest(digest);
        if self.buf[0] == ANCHOR_RUN_PREFIX {
            let mut n = [0u8; 8];
            n.copy_from_slice(&self.buf[1..9]);
            TrackKeyKind::AnchorRun {
                first_anchor: u64::from_be_bytes(n),
                segment,
            }
        } else {
            let mut n = [0u8; 4];
            n.copy_from_slice(&self.buf[1..5]);
            TrackKeyKind::CellRun {
                cell: u32::from_be_bytes(n),
                segment,
            }
        }
    }

    /// The segment the key's run lives in.
    pub fn segment(&self) -> ContentHash {
        match self.kind() {
            TrackKeyKind::AnchorRun { segment, .. } | TrackKeyKind::CellRun { segment, .. } => {
                segment
            }
        }
    }

    /// The first anchor, for an anchor-run key.
    pub fn first_anchor(&self) -> Option<u64> {
        match self.kind() {
            TrackKeyKind::AnchorRun { first_anchor, .. } => Some(first_anchor),
            TrackKeyKind::CellRun { .. } => None,
        }
    }

    /// The cell, for a cell-run key.
    pub fn cell(&self) -> Option<u32> {
        match self.kind() {
            TrackKeyKind::CellRun { cell, .. } => Some(cell),
            TrackKeyKind::AnchorRun { .. } => None,
        }
    }

    /// Whether this is an anchor-run key.
    pub fn is_anchor_run(&self) -> bool {
        self.buf[0] == ANCHOR_RUN_PREFIX
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(64)];
    shown.iter().map(|b| format!("{b:02x}")).collect()
}

impl Ord for TrackKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PartialOrd for TrackKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for TrackKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            TrackKeyKind::AnchorRun {
                first_anchor,
                segment,
            } => write!(f, "AnchorRun({first_anchor}, {})", segment.short()),
            TrackKeyKind::CellRun { cell, segment } => {
                write!(f, "CellRun({cell}, {})", segment.short())
            }
        }
    }
}

/// A half-open range of keys as raw bytes: `start <= key < end`, with no
/// end meaning "to the last key". Byte bounds (rather than keys) can name
/// prefixes such as "every cell-run key of cell 7".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Inclusive lower bound.
    pub start: Vec<u8>,
    /// Exclusive upper bound, or none.
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        KeyRange {
            start: Vec::new(),
            end: None,
        }
    }

    /// Every anchor-run key.
    pub fn anchor_runs() -> Self {
        KeyRange {
            start: vec![ANCHOR_RUN_PREFIX],
            end: Some(vec![ANCHOR_RUN_PREFIX + 1]),
        }
    }

    /// Every cell-run key.
    pub fn cell_runs() -> Self {
        KeyRange {
            start: vec![CELL_RUN_PREFIX],
            end: Some(vec![CELL_RUN_PREFIX + 1]),
        }
    }

    /// Anchor-run keys whose first anchor lies in `anchors`.
    pub fn anchors(anchors: impl RangeBounds<u64>) -> Self {
        let encode = |n: u64| n.to_be_bytes().to_vec();
        let (start, end) = int_bounds(anchors, u64::MAX, encode);
        prefixed(ANCHOR_RUN_PREFIX, start, end)
    }

    /// Cell-run keys whose cell lies in `cells`.
    pub fn cells(cells: impl RangeBounds<u32>) -> Self {
        let encode = |n: u32| n.to_be_bytes().to_vec();
        let (start, end) = int_bounds(cells, u32::MAX, encode);
        prefixed(CELL_RUN_PREFIX, start, end)
    }

    /// Every run of one cell.
    pub fn cell(cell: u32) -> Self {
        Self::cells(cell..=cell)
    }

    /// The keys within `bounds`.
    pub fn from_bounds(bounds: impl RangeBounds<TrackKey>) -> Self {
        let start = match bounds.start_bound() {
            Bound::Included(k) => k.as_bytes().to_vec(),
            // The immediate successor of k in bytewise order is k ‖ 0x00.
            Bound::Excluded(k) => successor(k.as_bytes()),
            Bound::Unbounded => Vec::new(),
        };
        let end = match bounds.end_bound() {
            Bound::Included(k) => Some(successor(k.as_bytes())),
            Bound::Excluded(k) => Some(k.as_bytes().to_vec()),
            Bound::Unbounded => None,
        };
        KeyRange { start, end }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &TrackKey) -> bool {
        key.as_bytes() >= self.start.as_slice() && !self.is_past_end(key)
    }

    /// Whether `key` is at or beyond the end of the range.
    pub fn is_past_end(&self, key: &TrackKey) -> bool {
        self.end
            .as_ref()
            .is_some_and(|end| key.as_bytes() >= end.as_slice())
    }

    /// Whether every key below `bound` (exclusive) is before the range.
    pub(crate) fn is_before_start(&self, bound: &TrackKey) -> bool {
        bound.as_bytes() <= self.start.as_slice()
    }
}

fn successor(bytes: &[u8]) -> Vec<u8> {
    let mut next = bytes.to_vec();
    next.push(0);
    next
}

/// Start and end byte bounds of an integer range; `None` start means the
/// range is empty, `None` end means "to the end of the prefix".
fn int_bounds<T: Copy + PartialOrd + num_like::Step>(
    range: impl RangeBounds<T>,
    max: T,
    encode: impl Fn(T) -> Vec<u8>,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let start = match range.start_bound() {
        Bound::Included(&n) => Some(encode(n)),
        Bound::Excluded(&n) if n == max => None,
        Bound::Excluded(&n) => Some(encode(n.step())),
        Bound::Unbounded => Some(Vec::new()),
    };
    let end = match range.end_bound() {
        Bound::Included(&n) if n == max => None,
        Bound::Included(&n) => Some(encode(n.step())),
        Bound::Excluded(&n) => Some(encode(n)),
        Bound::Unbounded => None,
    };
    (start, end)
}

fn prefixed(prefix: u8, start: Option<Vec<u8>>, end: Option<Vec<u8>>) -> KeyRange {
    let next_prefix = vec![prefix + 1];
    match start {
        // An empty range: start at the end of the prefix.
        None => KeyRange {
            start: next_prefix.clone(),
            end: Some(next_prefix),
        },
        Some(start) => KeyRange {
            start: [&[prefix][..], &start].concat(),
            end: Some(end.map_or(next_prefix, |e| [&[prefix][..], &e].concat())),
        },
    }
}

mod num_like {
    /// The next integer (only called below the maximum).
    pub(super) trait Step {
        fn step(self) -> Self;
    }
    impl Step for u64 {
        fn step(self) -> Self {
            self.saturating_add(1)
        }
    }
    impl Step for u32 {
        fn step(self) -> Self {
            self.saturating_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_and_round_trips() {
        let seg = ContentHash::of(b"segment");
        let a = TrackKey::anchor_run(0x0102_0304_0506_0708, &seg);
        assert_eq!(a.as_bytes().len(), 41);
        assert_eq!(&a.as_bytes()[..9], &[0x41, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&a.as_bytes()[9..], seg.digest());
        assert_eq!(TrackKey::from_bytes(a.as_bytes()), Ok(a));
        assert_eq!(a.first_anchor(), Some(0x0102_0304_0506_0708));
        let c = TrackKey::cell_run(7, &seg);
        assert_eq!(&c.as_bytes()[..5], &[0x43, 0, 0, 0, 7]);
        assert_eq!(c.cell(), Some(7));
        assert_eq!(c.segment(), seg);
        assert!(a < c);
        assert!(TrackKey::from_bytes(&a.as_bytes()[..40]).is_err());
        assert!(TrackKey::from_bytes(&[0x42; 41]).is_err());
    }

    #[test]
    fn ranges() {
        let seg = ContentHash::of(b"s");
        let r = KeyRange::cell(5);
        assert!(r.contains(&TrackKey::cell_run(5, &seg)));
        assert!(!r.contains(&TrackKey::cell_run(6, &seg)));
        assert!(!r.contains(&TrackKey::cell_run(4, &seg)));
        let r = KeyRange::cell(u32::MAX);
        assert!(r.contains(&TrackKey::cell_run(u32::MAX, &seg)));
        assert!(!r.contains(&TrackKey::anchor_run(0, &seg)));
        let r = KeyRange::anchors(10..20);
        assert!(r.contains(&TrackKey::anchor_run(10, &seg)));
        assert!(r.contains(&TrackKey::anchor_run(19, &seg)));
        assert!(!r.contains(&TrackKey::anchor_run(20, &seg)));
        let k = TrackKey::anchor_run(3, &seg);
        let r = KeyRange::from_bounds(k..=k);
        assert!(r.contains(&k));
        let r = KeyRange::from_bounds((Bound::Excluded(k), Bound::Unbounded));
        assert!(!r.contains(&k));
        assert!(KeyRange::anchor_runs().contains(&k));
        assert!(!KeyRange::cell_runs().contains(&k));
    }
}
