//! Ada-IVF maintenance primitives (Mohoney et al., arXiv 2411.00970):
//! signals, local splits, merges and lineage-preserving index updates.
//!
//! These are mechanisms, not policy: thresholds are inputs, nothing here
//! decides when to run, and the operator verb that schedules them lives
//! above this crate (seeds/001 §1, §3). Both directions exist — splits of
//! hot cells and merges of cold ones — so `k` can be held under a cap such
//! as `2·√N` ([`super::sqrt_guidance`]).
//!
//! [`apply_changes`] builds a child index whose description names its
//! parent (`parents`) and the cells it changed. Changes are local by
//! construction ([`super::ivf`]): a split re-routes only vectors of the
//! split cell, a merge moves only the merged cell's vectors into its
//! target. Every other cell keeps its id and every record in it stays
//! valid, so [`cells_to_rewrite`] lists exactly the cells whose records
//! must be re-dispatched (from raw f32 where kept: architecture §3.5).

use dreamdb_core::ContentHash;

use super::ivf::{CellChanges, IvfDescription, IvfIndex, MergeEntry, SlotKind, SplitEntry};
use super::kmeans;
use super::metric::{check_batch, prepare};
use super::SpatialError;

/// Coefficient of variation of the sizes (population standard deviation
/// over mean); 0 for no cells or an all-empty index.
pub fn imbalance_score(sizes: &[usize]) -> f64 {
    if sizes.is_empty() {
        return 0.0;
    }
    let n = sizes.len() as f64;
    let mean = sizes.iter().map(|&s| s as f64).sum::<f64>() / n;
    if mean == 0.0 {
        return 0.0;
    }
    let var = sizes
        .iter()
        .map(|&s| (s as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    var.sqrt() / mean
}

/// Per-cell density: size over the mean size (1.0 = average).
pub fn densities(sizes: &[usize]) -> Vec<f64> {
    let n = sizes.len().max(1) as f64;
    let mean = sizes.iter().map(|&s| s as f64).sum::<f64>() / n;
    sizes
        .iter()
        .map(|&s| if mean > 0.0 { s as f64 / mean } else { 0.0 })
        .collect()
}

fn check_threshold(t: f64) -> Result<(), SpatialError> {
    if !t.is_finite() || t < 0.0 {
        return Err(SpatialError::InvalidThreshold { name: "threshold" });
    }
    Ok(())
}

/// Cells whose density exceeds `threshold` (positions in `sizes`).
pub fn overpopulated(sizes: &[usize], threshold: f64) -> Result<Vec<usize>, SpatialError> {
    check_threshold(threshold)?;
    Ok(densities(sizes)
        .iter()
        .enumerate()
        .filter(|(_, d)| **d > threshold)
        .map(|(i, _)| i)
        .collect())
}

/// Cells whose density is below `threshold` (positions in `sizes`).
pub fn underpopulated(sizes: &[usize], threshold: f64) -> Result<Vec<usize>, SpatialError> {
    check_threshold(threshold)?;
    Ok(densities(sizes)
        .iter()
        .enumerate()
        .filter(|(_, d)| **d < threshold)
        .map(|(i, _)| i)
        .collect())
}

/// A planned split: the cell and its children's centroids.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitPlan {
    /// The live cell to split.
    pub cell: u32,
    /// `parts × dim` child centroids.
    pub centroids: Vec<f32>,
}

/// A planned merge: `cell`'s region joins `into`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergePlan {
    /// The cold cell.
    pub cell: u32,
    /// Its nearest live neighbour.
    pub into: u32,
}

fn live(index: &IvfIndex, cell: u32) -> Result<(), SpatialError> {
    match index.slot_kind(cell) {
        Some(SlotKind::Leaf) => Ok(()),
        _ => Err(SpatialError::UnknownCell { cell }),
    }
}

/// Plans an n-way split of `cell` by local k-means on its raw vectors
/// (row-major; stream domain `dreamdb.ada-ivf.split.<cell>`).
pub fn split_cell(
    index: &IvfIndex,
    cell: u32,
    vectors: &[f32],
    parts: u32,
    seed: u64,
    iterations: u32,
) -> Result<SplitPlan, SpatialError> {
    live(index, cell)?;
    if parts < 2 {
        return Err(SpatialError::OutOfRange {
            name: "parts",
            value: u64::from(parts),
            min: 2,
            max: u64::from(u32::MAX),
        });
    }
    let dim = index.dim();
    let n = check_batch(vectors, dim)?;
    let mut rows = Vec::with_capacity(vectors.len());
    for i in 0..n {
        rows.extend(prepare(
            index.metric(),
            &vectors[i * dim..(i + 1) * dim],
            i,
        )?);
    }
    let centroids = kmeans::train(
        &rows,
        dim,
        parts as usize,
        seed,
        iterations,
        kmeans::training_metric(index.metric()),
        &format!("dreamdb.ada-ivf.split.{cell}"),
    )?;
    Ok(SplitPlan { cell, centroids })
}

/// Plans merging `cell` into the live cell whose centroid is nearest to
/// its own (reference score, lowest id on ties), skipping `exclude`.
pub fn merge_cell(index: &IvfIndex, cell: u32, exclude: &[u32]) -> Result<MergePlan, SpatialError> {
    live(index, cell)?;
    let c = index.centroid(cell)?;
    let candidates = index
        .cells()
        .into_iter()
        .filter(|&x| x != cell && !exclude.contains(&x))
        .map(|x| x as usize);
    let ranked = index.centroid_set().rank_ref(c, candidates);
    let into = ranked
        .first()
        .map(|&(_, i)| i as u32)
        .ok_or(SpatialError::Zero {
            name: "merge candidates",
        })?;
    Ok(MergePlan { cell, into })
}

/// Builds the child index: split cells become inner nodes whose children
/// are appended as new slots (in plan order), merged cells become
/// redirects. `parents = [hash(parent)]`; `changes` lists replaced, added,
/// removed and absorbed cells.
pub fn apply_changes(
    parent: &IvfIndex,
    splits: &[SplitPlan],
    merges: &[MergePlan],
) -> Result<IvfIndex, SpatialError> {
    let dim = parent.dim();
    let mut desc: IvfDescription = parent.description().clone();
    let mut changes = CellChanges::default();
    let mut touched = std::collections::BTreeSet::new();
    for s in splits {
        live(parent, s.cell)?;
        if !touched.insert(s.cell) {
            return Err(SpatialError::Malformed(format!(
                "cell {} changed twice",
                s.cell
            )));
        }
        let parts = check_batch(&s.centroids, dim)?;
        if parts < 2 {
            return Err(SpatialError::Malformed(format!(
                "split of {} into {parts}",
                s.cell
            )));
        }
        let first = (desc.centroids.len() / dim) as u32;
        desc.centroids.extend_from_slice(&s.centroids);
        desc.splits.push(SplitEntry {
            slot: s.cell,
            first_child: first,
            children: parts as u32,
        });
        changes.replaced.push(s.cell);
        changes.added.extend(first..first + parts as u32);
    }
    let merged: Vec<u32> = merges.iter().map(|m| m.cell).collect();
    for m in merges {
        live(parent, m.cell)?;
        live(parent, m.into)?;
        if !touched.insert(m.cell) {
            return Err(SpatialError::Malformed(format!(
                "cell {} changed twice",
                m.cell
            )));
        }
        if merged.contains(&m.into) {
            return Err(SpatialError::Malformed(format!(
                "merge target {} is itself merged",
                m.into
            )));
        }
        desc.merges.push(MergeEntry {
            slot: m.cell,
            into: m.into,
        });
        changes.removed.push(m.cell);
        if !touched.contains(&m.into) {
            changes.absorbed.push(m.into);
        }
    }
    desc.splits.sort_by_key(|s| s.slot);
    desc.merges.sort_by_key(|m| m.slot);
    for list in [
        &mut changes.replaced,
        &mut changes.added,
        &mut changes.removed,
        &mut changes.absorbed,
    ] {
        list.sort_unstable();
        list.dedup();
    }
    desc.parents = vec![parent.hash()?];
    desc.changes = changes;
    IvfIndex::from_description(desc)
}

/// The cells of `ancestor` whose records must be re-dispatched to be valid
/// under `descendant` (cells that were split or merged away), ascending.
/// Every other cell of `ancestor` keeps its id and its records. Fails if
/// `descendant` does not extend `ancestor` (same roots, same centroids in
/// the ancestor's slots, ancestor's splits and merges kept).
pub fn cells_to_rewrite(
    ancestor: &IvfIndex,
    descendant: &IvfIndex,
) -> Result<Vec<u32>, SpatialError> {
    let (a, d) = (ancestor.description(), descendant.description());
    let prefix = a.centroids.len();
    let extends = a.dim == d.dim
        && a.params == d.params
        && a.roots == d.roots
        && d.centroids.len() >= prefix
        && d.centroids[..prefix]
            .iter()
            .zip(&a.centroids)
            .all(|(x, y)| x.to_bits() == y.to_bits())
        && a.splits.iter().all(|s| d.splits.contains(s))
        && a.merges.iter().all(|m| d.merges.contains(m));
    if !extends {
        return Err(SpatialError::Malformed(
            "the second index does not descend from the first".to_owned(),
        ));
    }
    Ok(ancestor
        .cells()
        .into_iter()
        .filter(|&c| descendant.slot_kind(c) != Some(SlotKind::Leaf))
        .collect())
}

/// Whether `child` names `parent` among its parents.
pub fn is_child_of(child: &IvfIndex, parent_hash: &ContentHash) -> bool {
    child.description().parents.contains(parent_hash)
}
