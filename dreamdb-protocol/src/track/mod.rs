//! The paged track index: a content-addressed, copy-on-write B-tree.
//!
//! A track indexes one field's records by *runs* (design 0001, "Track
//! index"): anchor-order entries (`0x41 ‖ first anchor ‖ segment`) that
//! `get`, `iter` and time ranges read, and cell-order entries
//! (`0x43 ‖ cell ‖ segment`) that queries read, in one tree per track so a
//! track has one root. Small tracks sit inline in the Manifest; larger ones
//! are B-trees of `index-page` objects ([`IndexPage`]), each named by its
//! hash, so two versions share every unchanged page:
//!
//! - [`Track::apply`] rewrites only the leaves a batch touches and their
//!   ancestors (O(batch · height) pages), never the whole track;
//! - [`Track::diff`] skips subtrees whose hashes are equal, so comparing
//!   two versions costs what changed between them;
//! - [`Track::merge3`] is built on two diffs and one apply.
//!
//! Every page read is verified (hash, canonical CBOR, strict shape) and
//! checked against its parent (level, key range, count), and walks refuse
//! cycles and over-deep trees, so a hostile page is a typed error
//! ([`TrackError`]), never a hang, a panic or wrong data.
//!
//! Module map: `key` (keys and ranges), `value` (entry values), `page`
//! (the page object), `root` (inline or paged root), `walk` (validated
//! loading), `chunk` (splitting and merging), `apply`, `read`, `diff`.

mod apply;
mod chunk;
mod diff;
mod enc;
mod error;
mod key;
mod page;
mod read;
mod root;
mod value;
mod walk;

pub use diff::{Conflict, DiffEntry};
pub use error::{PageProblem, TrackError};
pub use key::{
    KeyFormatError, KeyRange, TrackKey, TrackKeyKind, ANCHOR_RUN_KEY_LEN, ANCHOR_RUN_PREFIX,
    CELL_RUN_KEY_LEN, CELL_RUN_PREFIX,
};
pub use page::{inline_len, ChildRef, IndexPage, TrackEntry, INDEX_PAGE_KIND, INDEX_PAGE_VERSION};
pub use read::TrackScan;
pub use root::TrackRoot;
pub use value::{RawRows, TrackValue};

use crate::store::ObjectStore;

/// Most items (entries or children) in one index page.
///
/// 256 (OQ-14): with DreamDB's entry sizes (about 100–130 bytes for a leaf
/// entry, about 85 for a child reference) the byte target binds first, so
/// the fanout is a backstop for tiny entries; internal pages of a full
/// tree still hold about 190 children, so 10⁹ runs fit in 4–5 levels.
pub const FANOUT: usize = 256;

/// Target encoded size of one index page: 16 KiB.
///
/// A one-entry commit rewrites one page per level; at 16 KiB and a height
/// of 3 that is 48 KiB for a million runs, inside the 64 KiB budget of a
/// one-record commit (design 0001), while pages stay large enough that a
/// scan reads ~140 runs per GET.
pub const PAGE_TARGET_BYTES: usize = 16 * 1024;

/// Largest encoded entry list kept inline in a Manifest: 16 KiB.
///
/// An inline track is rewritten inside every Manifest, so this bounds the
/// bytes a one-record commit writes for a small track (design 0001 changes
/// the earlier system's 1 MiB, OQ-15). Equal to the page target, so the
/// first paged form of a track is a single leaf-sized tree, not a tiny one.
pub const INLINE_MAX_BYTES: usize = 16 * 1024;

/// Most page levels a track may have; a deeper page or root is an
/// integrity error. 16 levels hold far more than 2⁶⁴ entries at the
/// default fanout; the bound exists to refuse hostile trees.
pub const MAX_HEIGHT: u8 = 16;

/// The page-size thresholds of a track. Tests use tiny values to build
/// deep trees from few entries; stored data uses [`TrackConfig::default`].
/// Readers accept any page that is well formed, whatever config wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackConfig {
    /// Most items per page (at least 2).
    pub fanout: usize,
    /// Target encoded page size in bytes.
    pub page_target_bytes: usize,
    /// Largest encoded entry list kept inline.
    pub inline_max_bytes: usize,
}

impl Default for TrackConfig {
    fn default() -> Self {
        TrackConfig {
            fanout: FANOUT,
            page_target_bytes: PAGE_TARGET_BYTES,
            inline_max_bytes: INLINE_MAX_BYTES,
        }
    }
}

impl TrackConfig {
    /// Checks the config can build trees.
    pub fn validate(&self) -> Result<(), TrackError> {
        if self.fanout < 2 {
            return Err(TrackError::InvalidConfig("fanout must be at least 2"));
        }
        Ok(())
    }
}

/// One change in a batch given to [`Track::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Insert or replace an entry.
    Put(TrackKey, TrackValue),
    /// Remove an entry (removing an absent key changes nothing).
    Delete(TrackKey),
}

impl Change {
    /// The key changed.
    pub fn key(&self) -> &TrackKey {
        match self {
            Change::Put(k, _) | Change::Delete(k) => k,
        }
    }
}

/// What an [`Track::apply`] cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// New index pages produced (written unless the store already had them).
    pub pages_written: u64,
    /// Their encoded bytes.
    pub bytes_written: u64,
    /// Pages read (cache hits included: this counts work, not I/O).
    pub pages_read: u64,
}

/// What a read-only walk cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Pages read (cache hits included).
    pub pages_read: u64,
}

/// Reads and updates tracks stored in one [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct Track {
    store: ObjectStore,
    config: TrackConfig,
}

impl Track {
    /// Tracks in `store` with the default thresholds.
    pub fn new(store: ObjectStore) -> Self {
        Track {
            store,
            config: TrackConfig::default(),
        }
    }

    /// Tracks in `store` with custom thresholds (tests, benchmarks).
    pub fn with_config(store: ObjectStore, config: TrackConfig) -> Result<Self, TrackError> {
        config.validate()?;
        Ok(Track { store, config })
    }

    /// The object store.
    pub fn store(&self) -> &ObjectStore {
        &self.store
    }

    /// The thresholds in use.
    pub fn config(&self) -> &TrackConfig {
        &self.config
    }

    /// Applies a batch of changes copy-on-write and returns the new root.
    /// The batch may be in any order; for a key changed twice the last
    /// change wins. A put whose value does not fit its key (other order,
    /// other segment) is refused before anything is written.
    pub async fn apply(
        &self,
        root: &TrackRoot,
        changes: impl IntoIterator<Item = Change>,
    ) -> Result<(TrackRoot, ApplyStats), TrackError> {
        let changes = apply::normalize(changes.into_iter().collect())?;
        apply::Applier::new(&self.store, &self.config)
            .run(root, &changes)
            .await
    }

    /// Builds a track holding exactly `entries` (any order, unique keys:
    /// the last wins) in one bottom-up pass.
    pub async fn build(
        &self,
        entries: impl IntoIterator<Item = TrackEntry>,
    ) -> Result<(TrackRoot, ApplyStats), TrackError> {
        self.apply(
            &TrackRoot::empty(),
            entries.into_iter().map(|(k, v)| Change::Put(k, v)),
        )
        .await
    }

    /// The value stored under `key`.
    pub async fn get(
        &self,
        root: &TrackRoot,
        key: &TrackKey,
    ) -> Result<Option<TrackValue>, TrackError> {
        Ok(read::get(&self.store, root, key).await?.0)
    }

    /// [`Track::get`], also returning the pages read.
    pub async fn get_with_stats(
        &self,
        root: &TrackRoot,
        key: &TrackKey,
    ) -> Result<(Option<TrackValue>, ReadStats), TrackError> {
        let (found, pages_read) = read::get(&self.store, root, key).await?;
        Ok((found, ReadStats { pages_read }))
    }

    /// An ordered scan of the entries in `range`, read lazily.
    pub fn scan(&self, root: &TrackRoot, range: KeyRange) -> TrackScan {
        TrackScan::new(&self.store, root, range)
    }

    /// Every entry in `range`, in key order.
    pub async fn scan_all(
        &self,
        root: &TrackRoot,
        range: KeyRange,
    ) -> Result<Vec<TrackEntry>, TrackError> {
        self.scan(root, range).collect().await
    }

    /// Number of entries (from the root; walks check it against the pages).
    pub fn count(&self, root: &TrackRoot) -> u64 {
        root.count()
    }

    /// Reads every page of the track, checking all of it.
    pub async fn verify(&self, root: &TrackRoot) -> Result<ReadStats, TrackError> {
        root.validate()?;
        let mut scan = self.scan(root, KeyRange::all());
        while scan.next_batch().await?.is_some() {}
        Ok(ReadStats {
            pages_read: scan.pages_read(),
        })
    }

    /// The entries that differ between `a` and `b`, in key order, reading
    /// only subtrees whose hashes differ.
    pub async fn diff(
        &self,
        a: &TrackRoot,
        b: &TrackRoot,
    ) -> Result<(Vec<DiffEntry>, ReadStats), TrackError> {
        diff::diff(&self.store, a, b).await
    }

    /// 3-way merge of entry sets: changes made on one side are taken; a
    /// key changed differently on both sides is a [`Conflict`] and keeps
    /// `ours`' state. Cost is proportional to the changes on both sides.
    pub async fn merge3(
        &self,
        base: &TrackRoot,
        ours: &TrackRoot,
        theirs: &TrackRoot,
    ) -> Result<(TrackRoot, Vec<Conflict>), TrackError> {
        // The two diffs read disjoint page paths: walk them concurrently.
        let (ours_diff, theirs_diff) =
            futures::future::try_join(self.diff(base, ours), self.diff(base, theirs)).await?;
        let (ours_diff, theirs_diff) = (ours_diff.0, theirs_diff.0);
        let (changes, conflicts) = diff::merge_changes(&ours_diff, &theirs_diff);
        let (root, _) = self.apply(ours, changes).await?;
        Ok((root, conflicts))
    }
}
