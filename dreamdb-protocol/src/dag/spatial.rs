//! Spatial-index lineage for merges and rebases (design 0001 § Spatial
//! lineage, spec/0008 §3 and §5).
//!
//! A cell-order entry placed under spatial index `A` is still valid under
//! a later index `C` iff `A` is on `C`'s lineage (reachable through
//! `parents`) and no index on the chain from `A` to `C` changed the entry's
//! cell. The chain is walked from `C` through `parents`, stopping at `A`;
//! every index visited other than `A` contributes its `changed_cells`.
//! When an index has several parents this may count cells changed on a
//! branch that does not lead to `A`: the check is conservative (it refuses
//! rather than mis-routes). The walk is bounded by
//! [`super::RepoConfig::spatial_chain_limit`].

use std::collections::{BTreeSet, HashSet};

use dreamdb_core::ContentHash;

use super::{DagError, HistoryProblem, Repo};
use crate::objects::SpatialIndexObject;

/// The cells changed on the chain from `ancestor` to `descendant`, or
/// `None` when `ancestor` is not on `descendant`'s lineage.
pub(crate) async fn changed_since(
    repo: &Repo,
    ancestor: ContentHash,
    descendant: ContentHash,
) -> Result<Option<BTreeSet<u32>>, DagError> {
    if ancestor == descendant {
        return Ok(Some(BTreeSet::new()));
    }
    let limit = repo.config().spatial_chain_limit;
    let mut changed = BTreeSet::new();
    let mut seen = HashSet::from([descendant]);
    let mut stack = vec![descendant];
    let mut found = false;
    while let Some(hash) = stack.pop() {
        if hash == ancestor {
            found = true;
            continue;
        }
        if seen.len() as u64 > limit {
            return Err(DagError::history(hash, HistoryProblem::TooLarge { limit }));
        }
        let index: SpatialIndexObject = repo.get_object(&hash).await?;
        changed.extend(index.changed_cells.iter().copied());
        for parent in index.parents {
            if seen.insert(parent) {
                stack.push(parent);
            }
        }
    }
    Ok(found.then_some(changed))
}

/// Whether entries of `cells` placed under `placed_under` are still valid
/// under `current`.
pub(crate) async fn cells_still_valid(
    repo: &Repo,
    placed_under: ContentHash,
    current: ContentHash,
    cells: &BTreeSet<u32>,
) -> Result<bool, DagError> {
    Ok(match changed_since(repo, placed_under, current).await? {
        Some(changed) => cells.is_disjoint(&changed),
        None => false,
    })
}
