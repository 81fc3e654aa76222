//! Copy-on-write updates: apply a batch of puts and deletes to a track.
//!
//! The batch is sorted once and pushed down the tree in one descent: each
//! internal page hands every child the slice of changes inside its key
//! range, children without changes are kept by hash without being read,
//! and only leaves whose entries really change (and their ancestors) are
//! rebuilt. Rebuilt pages are split when they pass the limits and merged
//! with a neighbour when underfull (`chunk`), level by level from the
//! bottom; the root grows a level when the top splits and shrinks when it
//! is left with one child. Finally the inline rule is applied in both
//! directions: a track whose entries encode in at most
//! `inline_max_bytes` is inline, any other is paged.
//!
//! An inline (or empty) track that outgrows the inline limit is bulk-loaded
//! bottom-up: leaves are split evenly, encoded in parallel and written
//! concurrently, then each level above, so a million entries cost one pass.

use bytes::Bytes;
use dreamdb_core::ContentHash;
use futures::future::BoxFuture;
use rayon::prelude::*;

use super::chunk::{concat, split_internal, split_leaf, split_page, underfull};
use super::error::TrackError;
use super::key::TrackKey;
use super::page::{inline_len, ChildRef, IndexPage, TrackEntry, MIN_ENTRY_LEN};
use super::root::TrackRoot;
use super::walk::{upper_of, Expect, Reader};
use super::{ApplyStats, Change, TrackConfig, MAX_HEIGHT};
use crate::store::ObjectStore;

/// Pages encoded in parallel once a level has at least this many.
const PARALLEL_ENCODE_MIN: usize = 16;

/// A node of a level being rebuilt: an unchanged child kept by hash, or a
/// new page not yet written.
enum Node {
    Kept(ChildRef),
    Fresh(IndexPage),
}

impl Node {
    fn first_key(&self) -> Option<TrackKey> {
        match self {
            Node::Kept(c) => Some(c.first_key),
            Node::Fresh(p) => p.first_key(),
        }
    }

    fn count(&self) -> Result<u64, TrackError> {
        match self {
            Node::Kept(c) => Ok(c.count),
            Node::Fresh(p) => p
                .count()
                .ok_or_else(|| TrackError::InvalidRoot("entry count overflows u64".to_owned())),
        }
    }
}

/// Sorts a batch by key, keeps the last change per key, and checks every
/// put's value against its key.
pub(crate) fn normalize(changes: Vec<Change>) -> Result<Vec<Change>, TrackError> {
    for c in &changes {
        if let Change::Put(k, v) = c {
            v.check_key(k)
                .map_err(|reason| TrackError::InvalidEntry { key: *k, reason })?;
        }
    }
    let mut changes = changes;
    // Stable, so "last change wins" survives the sort.
    changes.sort_by(|a, b| a.key().cmp(b.key()));
    let mut out: Vec<Change> = Vec::with_capacity(changes.len());
    for c in changes {
        match out.last_mut() {
            Some(last) if last.key() == c.key() => *last = c,
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Merges sorted, unique changes into sorted entries; also says whether
/// anything really changed.
pub(crate) fn merge_entries(entries: &[TrackEntry], changes: &[Change]) -> (Vec<TrackEntry>, bool) {
    let mut out = Vec::with_capacity(entries.len() + changes.len());
    let mut changed = false;
    let mut i = 0;
    for change in changes {
        let key = change.key();
        while i < entries.len() && entries[i].0 < *key {
            out.push(entries[i]);
            i += 1;
        }
        let existing = if i < entries.len() && entries[i].0 == *key {
            i += 1;
            Some(entries[i - 1].1)
        } else {
            None
        };
        match (change, existing) {
            (Change::Put(k, v), old) => {
                changed |= old != Some(*v);
                out.push((*k, *v));
            }
            (Change::Delete(_), Some(_)) => changed = true,
            (Change::Delete(_), None) => {}
        }
    }
    out.extend_from_slice(&entries[i..]);
    (out, changed)
}

/// One copy-on-write update.
pub(crate) struct Applier<'a> {
    store: &'a ObjectStore,
    cfg: &'a TrackConfig,
    reader: Reader,
    stats: ApplyStats,
}

impl<'a> Applier<'a> {
    pub(crate) fn new(store: &'a ObjectStore, cfg: &'a TrackConfig) -> Self {
        Applier {
            store,
            cfg,
            reader: Reader::revisiting(store.clone()),
            stats: ApplyStats::default(),
        }
    }

    /// Applies normalized `changes` to `root`.
    pub(crate) async fn run(
        mut self,
        root: &TrackRoot,
        changes: &[Change],
    ) -> Result<(TrackRoot, ApplyStats), TrackError> {
        root.validate()?;
        self.reader = Reader::revisiting(self.store.clone()).for_root(root);
        let new_root = match root {
            TrackRoot::Inline { entries } => {
                let (merged, changed) = merge_entries(entries, changes);
                if changed {
                    self.root_of_entries(merged).await?
                } else {
                    root.clone()
                }
            }
            TrackRoot::Paged {
                page,
                height,
                count,
                ..
            } => {
                let expect = Expect::root(*height, *count)?;
                if changes.is_empty() {
                    root.clone()
                } else {
                    match self.rebuild(*page, expect, changes).await? {
                        None => root.clone(),
                        Some(nodes) => self.finish(nodes, *height - 1).await?,
                    }
                }
            }
        };
        self.stats.pages_read = self.reader.pages_read;
        Ok((new_root, self.stats))
    }

    /// A root for exactly these sorted entries: inline if they fit, else a
    /// bulk-loaded tree.
    pub(crate) async fn root_of_entries(
        &mut self,
        entries: Vec<TrackEntry>,
    ) -> Result<TrackRoot, TrackError> {
        if inline_len(&entries) <= self.cfg.inline_max_bytes {
            return Ok(TrackRoot::Inline { entries });
        }
        let leaves = split_leaf(entries, self.cfg);
        self.grow(leaves.into_iter().map(Node::Fresh).collect(), 0)
            .await
    }

    /// Rebuilds the subtree at `hash` under `changes` (non-empty, all inside
    /// its key range). `None` means nothing changed.
    fn rebuild<'b>(
        &'b mut self,
        hash: ContentHash,
        expect: Expect,
        changes: &'b [Change],
    ) -> BoxFuture<'b, Result<Option<Vec<Node>>, TrackError>> {
        Box::pin(async move {
            match self.reader.load(&hash, &expect).await? {
                IndexPage::Leaf { entries } => {
                    let (merged, changed) = merge_entries(&entries, changes);
                    if !changed {
                        return Ok(None);
                    }
                    Ok(Some(
                        split_leaf(merged, self.cfg)
                            .into_iter()
                            .map(Node::Fresh)
                            .collect(),
                    ))
                }
                IndexPage::Internal { level, children } => {
                    let mut out = Vec::with_capacity(children.len() + 2);
                    let mut changed = false;
                    let mut rest = changes;
                    for i in 0..children.len() {
                        let take = match upper_of(&children, i, expect.upper) {
                            Some(upper) => rest.partition_point(|c| *c.key() < upper),
                            None => rest.len(),
                        };
                        let (mine, tail) = rest.split_at(take);
                        rest = tail;
                        if mine.is_empty() {
                            out.push(Node::Kept(children[i]));
                            continue;
                        }
                        let child = Expect::child(&children, i, level, expect.upper);
                        match self.rebuild(children[i].page, child, mine).await? {
                            None => out.push(Node::Kept(children[i])),
                            Some(nodes) => {
                                changed = true;
                                out.extend(nodes);
                            }
                        }
                    }
                    if !changed {
                        return Ok(None);
                    }
                    self.fix_underfull(&mut out, level - 1, expect.upper)
                        .await?;
                    let refs = self.write_nodes(out).await?;
                    Ok(Some(
                        split_internal(level, refs, self.cfg)
                            .into_iter()
                            .map(Node::Fresh)
                            .collect(),
                    ))
                }
            }
        })
    }

    /// Merges every underfull new page of one level with a neighbour.
    async fn fix_underfull(
        &mut self,
        out: &mut Vec<Node>,
        level: u8,
        upper: Option<TrackKey>,
    ) -> Result<(), TrackError> {
        let mut i = 0;
        while i < out.len() && out.len() >= 2 {
            if !matches!(&out[i], Node::Fresh(p) if underfull(p, self.cfg)) {
                i += 1;
                continue;
            }
            let lo = if i + 1 < out.len() { i } else { i - 1 };
            let upper_right = out.get(lo + 2).and_then(Node::first_key).or(upper);
            let right = out.remove(lo + 1);
            let left = out.remove(lo);
            let left_upper = right.first_key();
            let left = self.materialize(left, level, left_upper).await?;
            let right = self.materialize(right, level, upper_right).await?;
            let merged = split_page(concat(left, right), self.cfg);
            let n = merged.len();
            out.splice(lo..lo, merged.into_iter().map(Node::Fresh));
            // One page: check it again (it may still be small). Several:
            // an even split of more than a page is not underfull.
            i = if n >= 2 { lo + n } else { lo };
        }
        Ok(())
    }

    async fn materialize(
        &mut self,
        node: Node,
        level: u8,
        upper: Option<TrackKey>,
    ) -> Result<IndexPage, TrackError> {
        match node {
            Node::Fresh(page) => Ok(page),
            Node::Kept(c) => {
                let expect = Expect {
                    level,
                    first: Some(c.first_key),
                    upper,
                    count: c.count,
                };
                self.reader.load(&c.page, &expect).await
            }
        }
    }

    /// Writes the new pages among `nodes`; returns every node's reference.
    async fn write_nodes(&mut self, nodes: Vec<Node>) -> Result<Vec<ChildRef>, TrackError> {
        let fresh: Vec<&IndexPage> = nodes
            .iter()
            .filter_map(|n| match n {
                Node::Fresh(p) => Some(p),
                Node::Kept(_) => None,
            })
            .collect();
        let encode = |p: &&IndexPage| {
            let bytes = p.encode();
            (ContentHash::of(&bytes), Bytes::from(bytes))
        };
        let encoded: Vec<(ContentHash, Bytes)> = if fresh.len() >= PARALLEL_ENCODE_MIN {
            fresh.par_iter().map(encode).collect()
        } else {
            fresh.iter().map(encode).collect()
        };
        self.stats.pages_written += encoded.len() as u64;
        self.stats.bytes_written += encoded.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
        let hashes: Vec<ContentHash> = encoded.iter().map(|(h, _)| *h).collect();
        self.store.put_many_hashed(encoded).await?;
        let mut hashes = hashes.into_iter();
        let mut refs = Vec::with_capacity(nodes.len());
        for node in &nodes {
            match node {
                Node::Kept(c) => refs.push(*c),
                Node::Fresh(p) => {
                    let (Some(first_key), Some(page)) = (p.first_key(), hashes.next()) else {
                        return Err(TrackError::InvalidRoot(
                            "an empty page was built".to_owned(),
                        ));
                    };
                    refs.push(ChildRef {
                        first_key,
                        page,
                        count: node.count()?,
                    });
                }
            }
        }
        Ok(refs)
    }

    /// Turns the top level of a rebuilt tree into a root, applying the
    /// inline rule.
    async fn finish(&mut self, nodes: Vec<Node>, level: u8) -> Result<TrackRoot, TrackError> {
        let mut count = 0u64;
        for n in &nodes {
            count = count.saturating_add(n.count()?);
        }
        if count.saturating_mul(MIN_ENTRY_LEN as u64) <= self.cfg.inline_max_bytes as u64 {
            let entries = self.entries_of(&nodes, level).await?;
            if inline_len(&entries) <= self.cfg.inline_max_bytes {
                return Ok(TrackRoot::Inline { entries });
            }
        }
        self.grow(nodes, level).await
    }

    /// Every entry under `nodes` (a small tree: used by the inline check).
    async fn entries_of(
        &mut self,
        nodes: &[Node],
        level: u8,
    ) -> Result<Vec<TrackEntry>, TrackError> {
        let mut out = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let upper = nodes.get(i + 1).and_then(Node::first_key);
            match node {
                Node::Fresh(IndexPage::Leaf { entries }) => out.extend_from_slice(entries),
                Node::Fresh(IndexPage::Internal { level, children }) => {
                    for j in 0..children.len() {
                        let e = Expect::child(children, j, *level, upper);
                        out.extend(self.reader.collect(&children[j].page, e).await?);
                    }
                }
                Node::Kept(c) => {
                    let e = Expect {
                        level,
                        first: Some(c.first_key),
                        upper,
                        count: c.count,
                    };
                    out.extend(self.reader.collect(&c.page, e).await?);
                }
            }
        }
        Ok(out)
    }

    /// Adds levels until one page remains (and removes single-child
    /// levels at the top); writes the root.
    async fn grow(&mut self, mut nodes: Vec<Node>, mut level: u8) -> Result<TrackRoot, TrackError> {
        loop {
            if nodes.len() >= 2 {
                let refs = self.write_nodes(nodes).await?;
                level += 1;
                if level >= MAX_HEIGHT {
                    return Err(TrackError::TooDeep { limit: MAX_HEIGHT });
                }
                nodes = split_internal(level, refs, self.cfg)
                    .into_iter()
                    .map(Node::Fresh)
                    .collect();
                continue;
            }
            let Some(node) = nodes.pop() else {
                return Ok(TrackRoot::empty());
            };
            match node {
                Node::Fresh(IndexPage::Internal { children, .. }) if children.len() == 1 => {
                    nodes.push(Node::Kept(children[0]));
                    level -= 1;
                }
                Node::Kept(c) if level > 0 => {
                    let expect = Expect {
                        level,
                        first: Some(c.first_key),
                        upper: None,
                        count: c.count,
                    };
                    match self.reader.load(&c.page, &expect).await? {
                        IndexPage::Internal { children, .. } if children.len() == 1 => {
                            nodes.push(Node::Kept(children[0]));
                            level -= 1;
                        }
                        // An internal root is held in the Manifest.
                        internal => return TrackRoot::embedded(internal),
                    }
                }
                Node::Kept(c) => return Ok(paged(c, level)),
                Node::Fresh(internal @ IndexPage::Internal { .. }) => {
                    return TrackRoot::embedded(internal);
                }
                fresh @ Node::Fresh(_) => {
                    let refs = self.write_nodes(vec![fresh]).await?;
                    let Some(c) = refs.first() else {
                        return Ok(TrackRoot::empty());
                    };
                    return Ok(paged(*c, level));
                }
            }
        }
    }
}

/// A root whose (leaf) root page is the stored page `c`.
fn paged(c: ChildRef, level: u8) -> TrackRoot {
    TrackRoot::stored(c.page, level + 1, c.count)
}
