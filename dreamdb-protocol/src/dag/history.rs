//! A bounded walk of the history of a Manifest (spec/0008 §1, §4).
//!
//! Breadth-first by decreasing height, each Manifest once: a Manifest is
//! returned only after every Manifest above it that the walk reaches, so
//! children come before parents. The walk checks what it reads — a missing
//! parent, a height that is not 1 + the largest parent height, a Manifest
//! of another dataset, or more Manifests than the bound are typed
//! [`DagError::History`] errors — so a hostile DAG costs bounded time.

use std::collections::{BinaryHeap, HashSet};

use dreamdb_core::ContentHash;

use super::graph::{Source, Walker};
use super::{DagError, Repo};
use crate::objects::Manifest;

/// An iterator-like walk of a history; call [`HistoryWalk::next`] until it
/// returns `None`.
pub struct HistoryWalk<'a> {
    repo: &'a Repo,
    walker: Walker<'a>,
    queue: BinaryHeap<(u64, ContentHash)>,
    seen: HashSet<ContentHash>,
    started: Option<ContentHash>,
}

impl<'a> HistoryWalk<'a> {
    pub(crate) fn new(repo: &'a Repo, from: ContentHash) -> Self {
        HistoryWalk {
            repo,
            walker: Walker::new(Source::Repo(repo), repo.config().history_limit),
            queue: BinaryHeap::new(),
            seen: HashSet::new(),
            started: Some(from),
        }
    }

    /// The next Manifest (highest first), or `None` when the history is
    /// exhausted.
    pub async fn next(&mut self) -> Result<Option<(ContentHash, Manifest)>, DagError> {
        if let Some(start) = self.started.take() {
            let height = self.walker.node(start).await?.height;
            self.seen.insert(start);
            self.queue.push((height, start));
        }
        let Some((_, hash)) = self.queue.pop() else {
            return Ok(None);
        };
        for (parent, height) in self.walker.parents(hash).await? {
            if self.seen.insert(parent) {
                self.queue.push((height, parent));
            }
        }
        let manifest = self.repo.manifest(&hash).await?;
        Ok(Some((hash, manifest)))
    }

    /// Collects the rest of the walk.
    pub async fn collect(mut self) -> Result<Vec<(ContentHash, Manifest)>, DagError> {
        let mut out = Vec::new();
        while let Some(item) = self.next().await? {
            out.push(item);
        }
        Ok(out)
    }
}
