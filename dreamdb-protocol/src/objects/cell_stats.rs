//! `cell-stats`: per-cell counts of one embedding field's track, rewritten
//! by every append (design/0002), so imbalance, density and fragmentation
//! signals never need a scan of the track.
//!
//! `counts` and `runs` are byte strings of one u32 (little-endian) per cell
//! of the field's spatial index, cell `i` at bytes `4i .. 4i + 4`:
//! `counts[i]` is the number of records placed in cell `i` (deleted records
//! included: tombstones suppress on read), `runs[i]` the number of
//! cell-order runs (entries) of cell `i` in the track. A cell with records
//! has at least one run and at most one run per record; an empty cell has
//! none.

use serde::{Deserialize, Serialize};

use super::error::Invariant;
use super::ObjectKind;

/// Records and runs per cell of one embedding field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellStats {
    /// Records per cell, u32 LE.
    #[serde(with = "serde_bytes")]
    pub counts: Vec<u8>,
    /// Runs per cell, u32 LE.
    #[serde(with = "serde_bytes")]
    pub runs: Vec<u8>,
}

fn le_u32s(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes.chunks_exact(4).map(|c| {
        let mut word = [0u8; 4];
        word.copy_from_slice(c);
        u32::from_le_bytes(word)
    })
}

impl CellStats {
    /// Stats from per-cell counts and runs (equal lengths).
    pub fn from_parts(counts: &[u32], runs: &[u32]) -> CellStats {
        CellStats {
            counts: counts.iter().flat_map(|c| c.to_le_bytes()).collect(),
            runs: runs.iter().flat_map(|r| r.to_le_bytes()).collect(),
        }
    }

    /// Number of cells.
    pub fn cells(&self) -> usize {
        self.counts.len() / 4
    }

    /// Records per cell.
    pub fn counts(&self) -> Vec<u32> {
        le_u32s(&self.counts).collect()
    }

    /// Runs per cell.
    pub fn runs(&self) -> Vec<u32> {
        le_u32s(&self.runs).collect()
    }
}

impl ObjectKind for CellStats {
    const KIND: &'static str = "cell-stats";

    fn validate(&self) -> Result<(), Invariant> {
        if self.counts.is_empty() || !self.counts.len().is_multiple_of(4) {
            return Err(Invariant::new(
                "counts-length",
                format!(
                    "counts is {} bytes, not a non-zero multiple of 4",
                    self.counts.len()
                ),
            ));
        }
        if self.runs.len() != self.counts.len() {
            return Err(Invariant::new(
                "runs-length",
                format!(
                    "runs is {} bytes, counts {}: one u32 of each per cell",
                    self.runs.len(),
                    self.counts.len()
                ),
            ));
        }
        for (cell, (count, runs)) in le_u32s(&self.counts).zip(le_u32s(&self.runs)).enumerate() {
            if runs > count || (count > 0 && runs == 0) {
                return Err(Invariant::new(
                    "runs-range",
                    format!(
                        "cell {cell} has {count} records in {runs} runs (need 1 ≤ runs ≤ records, or none)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_checks_its_rules() {
        let stats = CellStats::from_parts(&[3, 0, 7], &[1, 0, 2]);
        let (bytes, hash) = stats.encode().unwrap();
        let back = CellStats::decode(&hash, &bytes).unwrap();
        assert_eq!(back, stats);
        assert_eq!(back.cells(), 3);
        assert_eq!(back.counts(), vec![3, 0, 7]);
        assert_eq!(back.runs(), vec![1, 0, 2]);
        let rule = |s: CellStats| s.validate().unwrap_err().rule;
        assert_eq!(rule(CellStats::from_parts(&[], &[])), "counts-length");
        assert_eq!(rule(CellStats::from_parts(&[1, 2], &[1])), "runs-length");
        assert_eq!(rule(CellStats::from_parts(&[1], &[2])), "runs-range");
        assert_eq!(rule(CellStats::from_parts(&[4], &[0])), "runs-range");
        assert_eq!(rule(CellStats::from_parts(&[0], &[1])), "runs-range");
        let odd = CellStats {
            counts: vec![1, 0, 0],
            runs: vec![1, 0, 0],
        };
        assert_eq!(rule(odd), "counts-length");
    }
}
