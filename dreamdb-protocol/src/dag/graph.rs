//! Walks of the Manifest DAG: ancestry and lowest common ancestors
//! (spec/0008 §4).
//!
//! Both walks go breadth-first by decreasing height from their starting
//! points. A Manifest's parents all have smaller heights, so when a node is
//! taken from the queue every path into it from the starting points has
//! already been followed: its marks are final. That makes the walks exact
//! while visiting only what lies above the answer.
//!
//! The walks read nodes through a [`Walker`], which bounds the number of
//! Manifests read, refuses missing parents, inconsistent heights and
//! Manifests of another dataset, and serves a node from memory once read.
//! The same code runs over a repository or over an in-memory map of nodes
//! ([`lca_in`], [`is_ancestor_in`]), which the conformance vectors use.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};

use dreamdb_core::ContentHash;

use super::{DagError, HistoryProblem, Repo};
use crate::store::StoreError;

/// What the DAG algorithms need to know of a Manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its parents, first parent first.
    pub parents: Vec<ContentHash>,
    /// Its height.
    pub height: u64,
    /// Its dataset's Genesis.
    pub genesis: ContentHash,
}

/// Where nodes come from.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    Repo(&'a Repo),
    Map(&'a BTreeMap<ContentHash, Node>),
}

/// Reads nodes for one walk, bounded and checked.
pub(crate) struct Walker<'a> {
    source: Source<'a>,
    nodes: HashMap<ContentHash, Node>,
    checked: HashSet<ContentHash>,
    limit: u64,
    genesis: Option<ContentHash>,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(source: Source<'a>, limit: u64) -> Self {
        Walker {
            source,
            nodes: HashMap::new(),
            checked: HashSet::new(),
            limit,
            genesis: None,
        }
    }

    /// The node `hash` (read once per walk).
    pub(crate) async fn node(&mut self, hash: ContentHash) -> Result<Node, DagError> {
        if let Some(node) = self.nodes.get(&hash) {
            return Ok(node.clone());
        }
        if self.nodes.len() as u64 >= self.limit {
            return Err(DagError::history(
                hash,
                HistoryProblem::TooLarge { limit: self.limit },
            ));
        }
        let node = match self.source {
            Source::Map(map) => map
                .get(&hash)
                .cloned()
                .ok_or_else(|| DagError::history(hash, HistoryProblem::Missing))?,
            Source::Repo(repo) => match repo.manifest(&hash).await {
                Ok(m) => Node {
                    parents: m.parents,
                    height: m.height,
                    genesis: m.genesis,
                },
                Err(DagError::Store(e)) if matches!(*e, StoreError::Missing { .. }) => {
                    return Err(DagError::history(hash, HistoryProblem::Missing))
                }
                Err(e) => return Err(e),
            },
        };
        match self.genesis {
            None => self.genesis = Some(node.genesis),
            Some(expected) if expected != node.genesis => {
                return Err(DagError::history(
                    hash,
                    HistoryProblem::ForeignGenesis {
                        expected,
                        found: node.genesis,
                    },
                ))
            }
            Some(_) => {}
        }
        if node.parents.is_empty() && node.height != 0 {
            return Err(DagError::history(
                hash,
                HistoryProblem::Height {
                    found: node.height,
                    expected: 0,
                },
            ));
        }
        self.nodes.insert(hash, node.clone());
        Ok(node)
    }

    /// The parents of `hash` with their heights, after checking that its
    /// height is 1 + the largest of theirs.
    pub(crate) async fn parents(
        &mut self,
        hash: ContentHash,
    ) -> Result<Vec<(ContentHash, u64)>, DagError> {
        let node = self.node(hash).await?;
        let mut out = Vec::with_capacity(node.parents.len());
        for parent in &node.parents {
            let p = self.node(*parent).await.map_err(|e| match e {
                // A missing parent is reported as such, naming the parent.
                DagError::History {
                    problem: HistoryProblem::Missing,
                    hash,
                } => DagError::history(hash, HistoryProblem::Missing),
                other => other,
            })?;
            out.push((*parent, p.height));
        }
        if !self.checked.contains(&hash) {
            if let Some(max) = out.iter().map(|(_, h)| *h).max() {
                let expected = max.saturating_add(1);
                if node.height != expected {
                    return Err(DagError::history(
                        hash,
                        HistoryProblem::Height {
                            found: node.height,
                            expected,
                        },
                    ));
                }
            }
            self.checked.insert(hash);
        }
        Ok(out)
    }
}

/// Whether `ancestor` is `descendant` or one of its ancestors.
pub(crate) async fn is_ancestor(
    walker: &mut Walker<'_>,
    ancestor: ContentHash,
    descendant: ContentHash,
) -> Result<bool, DagError> {
    if ancestor == descendant {
        return Ok(true);
    }
    let target = walker.node(ancestor).await?.height;
    let start = walker.node(descendant).await?.height;
    let mut queue = BinaryHeap::from([(start, descendant)]);
    let mut seen = HashSet::from([descendant]);
    while let Some((height, hash)) = queue.pop() {
        if hash == ancestor {
            return Ok(true);
        }
        if height <= target {
            // Everything left is no higher than the target: not above it.
            continue;
        }
        for (parent, h) in walker.parents(hash).await? {
            if h >= target && seen.insert(parent) {
                queue.push((h, parent));
            }
        }
    }
    Ok(false)
}

const FROM_A: u8 = 1;
const FROM_B: u8 = 2;
const BOTH: u8 = FROM_A | FROM_B;
const STALE: u8 = 4;

/// The lowest common ancestors of `a` and `b`, highest first (ties by
/// hash). Empty when the two share no history.
pub(crate) async fn lca(
    walker: &mut Walker<'_>,
    a: ContentHash,
    b: ContentHash,
) -> Result<Vec<ContentHash>, DagError> {
    if a == b {
        walker.node(a).await?;
        return Ok(vec![a]);
    }
    let ha = walker.node(a).await?.height;
    let hb = walker.node(b).await?.height;
    let mut flags: HashMap<ContentHash, u8> = HashMap::from([(a, FROM_A), (b, FROM_B)]);
    let mut queue = BinaryHeap::from([(ha, a), (hb, b)]);
    // Queued entries not yet marked stale: the walk ends when none is left.
    let mut live = 2usize;
    let mut found = Vec::new();
    while live > 0 {
        let Some((height, hash)) = queue.pop() else {
            break;
        };
        let mut f = flags.get(&hash).copied().unwrap_or(0);
        if f & STALE == 0 {
            live -= 1;
        }
        if f & BOTH == BOTH && f & STALE == 0 {
            found.push((height, hash));
            f |= STALE;
        }
        for (parent, h) in walker.parents(hash).await? {
            let old = flags.get(&parent).copied();
            let new = old.unwrap_or(0) | f;
            flags.insert(parent, new);
            match old {
                None => {
                    queue.push((h, parent));
                    if new & STALE == 0 {
                        live += 1;
                    }
                }
                Some(o) if o & STALE == 0 && new & STALE != 0 => live -= 1,
                Some(_) => {}
            }
        }
    }
    found.sort_by_key(|(h, hash)| (Reverse(*h), *hash));
    Ok(found.into_iter().map(|(_, h)| h).collect())
}

/// [`lca`] over an in-memory map of nodes (no I/O; for conformance
/// vectors and tools). `limit` bounds the nodes read.
pub fn lca_in(
    nodes: &BTreeMap<ContentHash, Node>,
    a: ContentHash,
    b: ContentHash,
    limit: u64,
) -> Result<Vec<ContentHash>, DagError> {
    let mut walker = Walker::new(Source::Map(nodes), limit);
    futures::executor::block_on(lca(&mut walker, a, b))
}

/// [`is_ancestor`] over an in-memory map of nodes.
pub fn is_ancestor_in(
    nodes: &BTreeMap<ContentHash, Node>,
    ancestor: ContentHash,
    descendant: ContentHash,
    limit: u64,
) -> Result<bool, DagError> {
    let mut walker = Walker::new(Source::Map(nodes), limit);
    futures::executor::block_on(is_ancestor(&mut walker, ancestor, descendant))
}
