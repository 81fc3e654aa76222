//! Reads: point lookups and ordered scans over a key range.
//!
//! Both descend from the root through validated pages (`walk`). A scan is
//! a [`TrackScan`] cursor that yields one leaf's worth of entries at a
//! time, reading pages lazily and skipping every subtree whose key range
//! lies outside the requested range, so "all runs of cell c" reads
//! O(height + matching leaves) pages. It can also be consumed as a
//! `futures` stream of entries.

use dreamdb_core::ContentHash;
use futures::stream::{self, Stream, TryStreamExt};

use super::error::TrackError;
use super::key::{KeyRange, TrackKey};
use super::page::{ChildRef, IndexPage, TrackEntry};
use super::root::TrackRoot;
use super::value::TrackValue;
use super::walk::{upper_of, Expect, Reader};
use crate::store::ObjectStore;

/// Looks `key` up.
pub(crate) async fn get(
    store: &ObjectStore,
    root: &TrackRoot,
    key: &TrackKey,
) -> Result<(Option<TrackValue>, u64), TrackError> {
    let (page, height, count) = match root {
        TrackRoot::Inline { entries } => {
            let found = entries
                .binary_search_by(|(k, _)| k.cmp(key))
                .ok()
                .map(|i| entries[i].1);
            return Ok((found, 0));
        }
        TrackRoot::Paged {
            page,
            height,
            count,
            ..
        } => (*page, *height, *count),
    };
    let mut reader = Reader::new(store.clone()).for_root(root);
    let mut hash = page;
    let mut expect = Expect::root(height, count)?;
    loop {
        match reader.load(&hash, &expect).await? {
            IndexPage::Leaf { entries } => {
                let found = entries
                    .binary_search_by(|(k, _)| k.cmp(key))
                    .ok()
                    .map(|i| entries[i].1);
                return Ok((found, reader.pages_read));
            }
            IndexPage::Internal { level, children } => {
                let after = children.partition_point(|c| c.first_key <= *key);
                if after == 0 {
                    return Ok((None, reader.pages_read));
                }
                let i = after - 1;
                hash = children[i].page;
                expect = Expect::child(&children, i, level, expect.upper);
            }
        }
    }
}

/// Most page reads in flight in [`TrackScan::collect`].
pub const COLLECT_CONCURRENCY: usize = 32;

/// One internal page being scanned.
#[derive(Debug)]
struct Frame {
    level: u8,
    children: Vec<ChildRef>,
    next: usize,
    upper: Option<TrackKey>,
}

/// An ordered scan over a key range, reading pages lazily.
#[derive(Debug)]
pub struct TrackScan {
    reader: Reader,
    range: KeyRange,
    root: Option<(ContentHash, u8, u64)>,
    inline: Option<Vec<TrackEntry>>,
    stack: Vec<Frame>,
}

impl TrackScan {
    pub(crate) fn new(store: &ObjectStore, root: &TrackRoot, range: KeyRange) -> Self {
        let mut scan = TrackScan {
            reader: Reader::new(store.clone()).for_root(root),
            range,
            root: None,
            inline: None,
            stack: Vec::new(),
        };
        match root {
            TrackRoot::Inline { entries } => scan.inline = Some(entries.clone()),
            TrackRoot::Paged {
                page,
                height,
                count,
                ..
            } => scan.root = Some((*page, *height, *count)),
        }
        scan
    }

    /// Pages read so far.
    pub fn pages_read(&self) -> u64 {
        self.reader.pages_read
    }

    /// The next entries in the range (one leaf's worth at most), or `None`
    /// at the end.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<TrackEntry>>, TrackError> {
        if let Some(entries) = self.inline.take() {
            let batch: Vec<TrackEntry> = entries
                .into_iter()
                .filter(|(k, _)| self.range.contains(k))
                .collect();
            return Ok((!batch.is_empty()).then_some(batch));
        }
        if let Some((hash, height, count)) = self.root.take() {
            let expect = Expect::root(height, count)?;
            if let Some(batch) = self.visit(hash, expect).await? {
                return Ok(Some(batch));
            }
        }
        loop {
            let Some(frame) = self.stack.last_mut() else {
                return Ok(None);
            };
            if frame.next >= frame.children.len() {
                self.stack.pop();
                continue;
            }
            let i = frame.next;
            frame.next += 1;
            let child = frame.children[i];
            let upper = upper_of(&frame.children, i, frame.upper);
            if upper.is_some_and(|u| self.range.is_before_start(&u)) {
                continue;
            }
            if self.range.is_past_end(&child.first_key) {
                self.stack.clear();
                return Ok(None);
            }
            let expect = Expect::child(&frame.children, i, frame.level, frame.upper);
            if let Some(batch) = self.visit(child.page, expect).await? {
                return Ok(Some(batch));
            }
        }
    }

    /// Loads a page: a leaf gives its entries in range (if any), an
    /// internal page is pushed for descent.
    async fn visit(
        &mut self,
        hash: ContentHash,
        expect: Expect,
    ) -> Result<Option<Vec<TrackEntry>>, TrackError> {
        match self.reader.load(&hash, &expect).await? {
            IndexPage::Leaf { entries } => {
                let batch: Vec<TrackEntry> = entries
                    .into_iter()
                    .filter(|(k, _)| self.range.contains(k))
                    .collect();
                Ok((!batch.is_empty()).then_some(batch))
            }
            IndexPage::Internal { level, children } => {
                self.stack.push(Frame {
                    level,
                    children,
                    next: 0,
                    upper: expect.upper,
                });
                Ok(None)
            }
        }
    }

    /// Every remaining entry in the range.
    ///
    /// A scan not yet started descends level by level, reading all the
    /// pages of a level that overlap the range concurrently (at most
    /// [`COLLECT_CONCURRENCY`] at once): its sequential reads are the
    /// tree's height, not the number of leaves in the range. Every page is
    /// checked as on the lazy path.
    pub async fn collect(mut self) -> Result<Vec<TrackEntry>, TrackError> {
        let mut out = Vec::new();
        if self.stack.is_empty() {
            if let Some((hash, height, count)) = self.root.take() {
                let mut level = vec![(hash, Expect::root(height, count)?)];
                while !level.is_empty() {
                    let pages = self.reader.load_many(&level, COLLECT_CONCURRENCY).await?;
                    let mut next = Vec::new();
                    for ((_, expect), page) in level.iter().zip(pages) {
                        match page {
                            IndexPage::Leaf { entries } => out.extend(
                                entries.into_iter().filter(|(k, _)| self.range.contains(k)),
                            ),
                            IndexPage::Internal {
                                level: at,
                                children,
                            } => {
                                for (i, child) in children.iter().enumerate() {
                                    let upper = upper_of(&children, i, expect.upper);
                                    if upper.is_some_and(|u| self.range.is_before_start(&u)) {
                                        continue;
                                    }
                                    if self.range.is_past_end(&child.first_key) {
                                        break;
                                    }
                                    next.push((
                                        child.page,
                                        Expect::child(&children, i, at, expect.upper),
                                    ));
                                }
                            }
                        }
                    }
                    level = next;
                }
                // Pages of one level come back in key order; a leaf can
                // only sit at level 0, so the entries are in order already
                // (kept sorted should a hostile tree mix levels).
                if !out.windows(2).all(|w| w[0].0 < w[1].0) {
                    out.sort_by_key(|a| a.0);
                }
                return Ok(out);
            }
        }
        while let Some(batch) = self.next_batch().await? {
            out.extend(batch);
        }
        Ok(out)
    }

    /// The scan as a stream of entries.
    pub fn into_stream(self) -> impl Stream<Item = Result<TrackEntry, TrackError>> + Send {
        stream::try_unfold(self, |mut scan| async move {
            let next = scan.next_batch().await?;
            Ok::<_, TrackError>(next.map(|batch| (batch, scan)))
        })
        .map_ok(|batch| stream::iter(batch.into_iter().map(Ok)))
        .try_flatten()
    }
}
