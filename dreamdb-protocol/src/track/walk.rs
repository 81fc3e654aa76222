//! Validated page loading: every page is checked against what its parent
//! (or the root) says about it.
//!
//! A page alone can prove it is well formed; only its parent can say
//! whether it belongs where it was found. Every walk (get, scan, apply,
//! diff) therefore loads pages through a [`Reader`], which checks:
//!
//! - the level is the parent's minus one (so a walk is at most
//!   [`super::MAX_HEIGHT`] pages deep, and a page pointing at itself or an
//!   ancestor fails at once);
//! - the first key is the one the parent records, and no key reaches the
//!   next sibling's first key (so key ranges nest exactly);
//! - the declared count matches (a leaf's entries, or the sum an internal
//!   page declares for its children);
//! - no page is reached twice in one walk (keys are unique, so a valid
//!   tree never shares a subtree with itself).
//!
//! Memory stays bounded by the pages actually read; nothing is allocated
//! from a declared count.

use std::collections::HashSet;
use std::sync::Arc;

use dreamdb_core::ContentHash;
use futures::{StreamExt, TryStreamExt};

use super::error::{PageProblem, TrackError};
use super::key::TrackKey;
use super::page::{ChildRef, IndexPage, TrackEntry};
use super::root::TrackRoot;
use super::MAX_HEIGHT;
use crate::store::ObjectStore;

/// What a parent (or the root) says about a page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect {
    pub(crate) level: u8,
    pub(crate) first: Option<TrackKey>,
    pub(crate) upper: Option<TrackKey>,
    pub(crate) count: u64,
}

impl Expect {
    /// The root page of a paged track.
    pub(crate) fn root(height: u8, count: u64) -> Result<Self, TrackError> {
        if height == 0 || height > MAX_HEIGHT {
            return Err(TrackError::InvalidRoot(format!(
                "height {height} is outside 1..={MAX_HEIGHT}"
            )));
        }
        Ok(Expect {
            level: height - 1,
            first: None,
            upper: None,
            count,
        })
    }

    /// Child `i` of an internal page at `parent_level` whose own upper
    /// bound is `upper`.
    pub(crate) fn child(
        children: &[ChildRef],
        i: usize,
        parent_level: u8,
        upper: Option<TrackKey>,
    ) -> Self {
        let c = &children[i];
        Expect {
            level: parent_level.saturating_sub(1),
            first: Some(c.first_key),
            upper: upper_of(children, i, upper),
            count: c.count,
        }
    }
}

/// The exclusive upper bound of child `i`: the next sibling's first key,
/// or the parent's own bound.
pub(crate) fn upper_of(
    children: &[ChildRef],
    i: usize,
    upper: Option<TrackKey>,
) -> Option<TrackKey> {
    children.get(i + 1).map(|c| c.first_key).or(upper)
}

/// Loads and checks pages for one walk, counting the pages read.
#[derive(Debug)]
pub(crate) struct Reader {
    store: ObjectStore,
    pub(crate) pages_read: u64,
    visited: Option<HashSet<ContentHash>>,
    /// The root page the Manifest holds, under its name (never fetched).
    held: Option<(ContentHash, Arc<IndexPage>)>,
}

impl Reader {
    /// A reader for a read-only walk: reaching a page twice is an error.
    pub(crate) fn new(store: ObjectStore) -> Self {
        Reader {
            store,
            pages_read: 0,
            visited: Some(HashSet::new()),
            held: None,
        }
    }

    /// The same reader, serving `root`'s held root page (if it has one)
    /// from the root instead of the store.
    pub(crate) fn for_root(mut self, root: &TrackRoot) -> Self {
        if let TrackRoot::Paged {
            page,
            top: Some(top),
            ..
        } = root
        {
            self.held = Some((*page, top.clone()));
        }
        self
    }

    /// The held root page if `hash` names it.
    fn held(&self, hash: &ContentHash) -> Option<IndexPage> {
        match &self.held {
            Some((name, page)) if name == hash => Some((**page).clone()),
            _ => None,
        }
    }

    /// A reader for copy-on-write updates, which may look at a page again
    /// (a neighbour merged after an unchanged descent). Cycles are still
    /// impossible: every load is one level below its parent.
    pub(crate) fn revisiting(store: ObjectStore) -> Self {
        Reader {
            store,
            pages_read: 0,
            visited: None,
            held: None,
        }
    }

    /// Loads page `hash` and checks it against `expect`.
    pub(crate) async fn load(
        &mut self,
        hash: &ContentHash,
        expect: &Expect,
    ) -> Result<IndexPage, TrackError> {
        self.note(hash)?;
        if let Some(page) = self.held(hash) {
            return check_loaded(hash, page, expect);
        }
        let bytes = self.store.get_bytes(hash).await?;
        check_page(hash, &bytes, expect)
    }

    /// Loads pages concurrently (at most `concurrency` reads in flight),
    /// each checked against its `expect`; the pages come back in order.
    pub(crate) async fn load_many(
        &mut self,
        pages: &[(ContentHash, Expect)],
        concurrency: usize,
    ) -> Result<Vec<IndexPage>, TrackError> {
        for (hash, _) in pages {
            self.note(hash)?;
        }
        let store = self.store.clone();
        let held = self.held.clone();
        futures::stream::iter(pages.to_vec())
            .map(move |(hash, expect)| {
                let store = store.clone();
                let held = held.clone();
                async move {
                    if let Some((name, page)) = held.filter(|(name, _)| *name == hash) {
                        return check_loaded(&name, (*page).clone(), &expect);
                    }
                    let bytes = store.get_bytes(&hash).await?;
                    check_page(&hash, &bytes, &expect)
                }
            })
            .buffered(concurrency.max(1))
            .try_collect()
            .await
    }

    /// Counts a page read; a read-only walk refuses a page seen before.
    fn note(&mut self, hash: &ContentHash) -> Result<(), TrackError> {
        self.pages_read += 1;
        if let Some(visited) = &mut self.visited {
            if !visited.insert(*hash) {
                return Err(TrackError::corrupt(*hash, PageProblem::Revisited));
            }
        }
        Ok(())
    }

    /// Every entry under page `hash`, in key order, checking every page.
    pub(crate) async fn collect(
        &mut self,
        hash: &ContentHash,
        expect: Expect,
    ) -> Result<Vec<TrackEntry>, TrackError> {
        let mut out = Vec::new();
        let mut stack = vec![(*hash, expect)];
        while let Some((hash, expect)) = stack.pop() {
            match self.load(&hash, &expect).await? {
                IndexPage::Leaf { entries } => out.extend(entries),
                IndexPage::Internal { level, children } => {
                    for i in (0..children.len()).rev() {
                        let e = Expect::child(&children, i, level, expect.upper);
                        stack.push((children[i].page, e));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Decodes page `hash` and checks it against what its parent said of it.
fn check_page(hash: &ContentHash, bytes: &[u8], expect: &Expect) -> Result<IndexPage, TrackError> {
    let page = IndexPage::decode(bytes).map_err(|problem| TrackError::corrupt(*hash, problem))?;
    check_loaded(hash, page, expect)
}

/// Checks a decoded page `hash` against what its parent said of it.
fn check_loaded(
    hash: &ContentHash,
    page: IndexPage,
    expect: &Expect,
) -> Result<IndexPage, TrackError> {
    let corrupt = |problem| TrackError::corrupt(*hash, problem);
    if page.level() != expect.level {
        return Err(corrupt(PageProblem::LevelMismatch {
            expected: expect.level,
            found: page.level(),
        }));
    }
    if let (Some(expected), Some(found)) = (expect.first, page.first_key()) {
        if expected != found {
            return Err(corrupt(PageProblem::FirstKeyMismatch { expected, found }));
        }
    }
    if let (Some(upper), Some(last)) = (expect.upper, page.last_item_key()) {
        if last >= upper {
            return Err(corrupt(PageProblem::KeyOutOfRange { key: last }));
        }
    }
    match page.count() {
        Some(actual) if actual == expect.count => Ok(page),
        actual => Err(corrupt(PageProblem::CountMismatch {
            declared: expect.count,
            actual: actual.unwrap_or(u64::MAX),
        })),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use dreamdb_connector::memory::MemoryConnector;

    use super::*;
    use crate::track::{TrackKey, TrackValue};

    #[tokio::test]
    async fn a_page_reached_twice_in_one_walk_is_refused() {
        let store = ObjectStore::new(Arc::new(MemoryConnector::new()), 1 << 20);
        let segment = ContentHash::of(b"segment");
        let key = TrackKey::anchor_run(1, &segment);
        let value = TrackValue::AnchorRun {
            segment,
            last_anchor: 2,
            count: 2,
            table_offset: 0,
            table_len: 16,
            storage: None,
        };
        let page = IndexPage::Leaf {
            entries: vec![(key, value)],
        };
        let hash = store.put_bytes(page.encode()).await.unwrap();
        let expect = Expect::root(1, 1).unwrap();
        let mut reader = Reader::new(store.clone());
        assert_eq!(reader.load(&hash, &expect).await.unwrap(), page);
        let err = reader.load(&hash, &expect).await.unwrap_err();
        assert_eq!(err.class(), "corrupt:revisited");
        assert_eq!(reader.pages_read, 2);
        // Copy-on-write updates may look twice.
        let mut reader = Reader::revisiting(store);
        for _ in 0..2 {
            assert!(reader.load(&hash, &expect).await.is_ok());
        }
    }
}
