//! Diff and 3-way merge of two tracks, proportional to what changed.
//!
//! `diff` walks both trees at once with a cursor per tree. Each cursor's
//! head is either an entry or an unread subtree (its hash, level and first
//! key). When both heads are subtrees with the same hash they hold the same
//! entries and are skipped together unread; otherwise the head with the
//! smallest lower bound is expanded (the higher one first on a tie) or,
//! when both are entries, compared. Two versions that differ in one entry
//! therefore read O(height) pages on each side, whatever their size.
//!
//! `merge3` computes `diff(base, ours)` and `diff(base, theirs)` and
//! applies to `ours` every change of `theirs` that `ours` did not also
//! make. Entry keys are unique (they contain the segment digest), so this
//! is a set merge: an entry added or removed on one side is added or
//! removed; a key changed differently on both sides is a [`Conflict`] and
//! keeps `ours`' state in the result.

use std::cmp::Ordering;

use dreamdb_core::ContentHash;

use super::error::TrackError;
use super::key::TrackKey;
use super::page::IndexPage;
use super::root::TrackRoot;
use super::value::TrackValue;
use super::walk::{Expect, Reader};
use super::{Change, ReadStats};
use crate::store::ObjectStore;

/// One key whose entry differs between two tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffEntry {
    /// The key.
    pub key: TrackKey,
    /// Its value in the left track, if present.
    pub left: Option<TrackValue>,
    /// Its value in the right track, if present.
    pub right: Option<TrackValue>,
}

/// A key both sides of a merge changed, differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The key.
    pub key: TrackKey,
    /// Its value in the merge base.
    pub base: Option<TrackValue>,
    /// Its value in `ours` (kept in the merged track).
    pub ours: Option<TrackValue>,
    /// Its value in `theirs`.
    pub theirs: Option<TrackValue>,
}

/// The head of a cursor.
enum Head {
    Sub { hash: ContentHash, expect: Expect },
    Entry(TrackKey, TrackValue),
}

impl Head {
    /// A lower bound of the keys under the head (`None`: below every key).
    fn lower(&self) -> Option<TrackKey> {
        match self {
            Head::Sub { expect, .. } => expect.first,
            Head::Entry(k, _) => Some(*k),
        }
    }
}

/// Walks one tree in key order, expanding subtrees on demand.
struct Cursor {
    reader: Reader,
    /// Heads in reverse order: the last is the current one.
    stack: Vec<Head>,
}

impl Cursor {
    fn new(store: &ObjectStore, root: &TrackRoot) -> Result<Self, TrackError> {
        root.validate()?;
        let stack = match root {
            TrackRoot::Inline { entries } => entries
                .iter()
                .rev()
                .map(|(k, v)| Head::Entry(*k, *v))
                .collect(),
            TrackRoot::Paged {
                page,
                height,
                count,
                ..
            } => vec![Head::Sub {
                hash: *page,
                expect: Expect::root(*height, *count)?,
            }],
        };
        Ok(Cursor {
            reader: Reader::new(store.clone()).for_root(root),
            stack,
        })
    }

    fn head(&self) -> Option<&Head> {
        self.stack.last()
    }

    /// Replaces the head subtree by its items.
    async fn expand(&mut self) -> Result<(), TrackError> {
        let Some(Head::Sub { hash, expect }) = self.stack.pop() else {
            return Ok(());
        };
        match self.reader.load(&hash, &expect).await? {
            IndexPage::Leaf { entries } => {
                self.stack
                    .extend(entries.into_iter().rev().map(|(k, v)| Head::Entry(k, v)));
            }
            IndexPage::Internal { level, children } => {
                for i in (0..children.len()).rev() {
                    self.stack.push(Head::Sub {
                        hash: children[i].page,
                        expect: Expect::child(&children, i, level, expect.upper),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Which cursor(s) to advance next. Lives for one loop iteration, so the
/// size of `Emit` does not matter.
#[allow(clippy::large_enum_variant)]
enum Step {
    Done,
    SkipBoth,
    ExpandLeft,
    ExpandRight,
    ExpandBoth,
    Emit(DiffEntry, bool, bool),
}

fn plan(left: Option<&Head>, right: Option<&Head>) -> Step {
    match (left, right) {
        (None, None) => Step::Done,
        (Some(Head::Entry(k, v)), None) => Step::Emit(entry(*k, Some(*v), None), true, false),
        (None, Some(Head::Entry(k, v))) => Step::Emit(entry(*k, None, Some(*v)), false, true),
        (Some(Head::Sub { .. }), None) => Step::ExpandLeft,
        (None, Some(Head::Sub { .. })) => Step::ExpandRight,
        (Some(a), Some(b)) => {
            if let (Head::Sub { hash: ha, .. }, Head::Sub { hash: hb, .. }) = (a, b) {
                if ha == hb {
                    return Step::SkipBoth;
                }
            }
            match (a, b) {
                (Head::Entry(ka, va), Head::Entry(kb, vb)) => match ka.cmp(kb) {
                    Ordering::Less => Step::Emit(entry(*ka, Some(*va), None), true, false),
                    Ordering::Greater => Step::Emit(entry(*kb, None, Some(*vb)), false, true),
                    Ordering::Equal if va == vb => Step::SkipBoth,
                    Ordering::Equal => Step::Emit(entry(*ka, Some(*va), Some(*vb)), true, true),
                },
                (Head::Sub { .. }, Head::Entry(kb, vb)) => {
                    if a.lower() <= Some(*kb) {
                        Step::ExpandLeft
                    } else {
                        Step::Emit(entry(*kb, None, Some(*vb)), false, true)
                    }
                }
                (Head::Entry(ka, va), Head::Sub { .. }) => {
                    if b.lower() <= Some(*ka) {
                        Step::ExpandRight
                    } else {
                        Step::Emit(entry(*ka, Some(*va), None), true, false)
                    }
                }
                (Head::Sub { expect: ea, .. }, Head::Sub { expect: eb, .. }) => {
                    match ea.first.cmp(&eb.first) {
                        Ordering::Less => Step::ExpandLeft,
                        Ordering::Greater => Step::ExpandRight,
                        Ordering::Equal => match ea.level.cmp(&eb.level) {
                            Ordering::Greater => Step::ExpandLeft,
                            Ordering::Less => Step::ExpandRight,
                            Ordering::Equal => Step::ExpandBoth,
                        },
                    }
                }
            }
        }
    }
}

fn entry(key: TrackKey, left: Option<TrackValue>, right: Option<TrackValue>) -> DiffEntry {
    DiffEntry { key, left, right }
}

/// Every key whose entry differs between `a` (left) and `b` (right), in
/// key order, and the pages read on both sides.
pub(crate) async fn diff(
    store: &ObjectStore,
    a: &TrackRoot,
    b: &TrackRoot,
) -> Result<(Vec<DiffEntry>, ReadStats), TrackError> {
    let mut left = Cursor::new(store, a)?;
    let mut right = Cursor::new(store, b)?;
    let mut out = Vec::new();
    loop {
        match plan(left.head(), right.head()) {
            Step::Done => break,
            Step::SkipBoth => {
                left.stack.pop();
                right.stack.pop();
            }
            Step::ExpandLeft => left.expand().await?,
            Step::ExpandRight => right.expand().await?,
            Step::ExpandBoth => {
                left.expand().await?;
                right.expand().await?;
            }
            Step::Emit(d, pop_left, pop_right) => {
                out.push(d);
                if pop_left {
                    left.stack.pop();
                }
                if pop_right {
                    right.stack.pop();
                }
            }
        }
    }
    let stats = ReadStats {
        pages_read: left.reader.pages_read + right.reader.pages_read,
    };
    Ok((out, stats))
}

/// The changes that turn `ours` into the 3-way merge, and the conflicts.
pub(crate) fn merge_changes(
    ours: &[DiffEntry],
    theirs: &[DiffEntry],
) -> (Vec<Change>, Vec<Conflict>) {
    let mut changes = Vec::new();
    let mut conflicts = Vec::new();
    let mut i = 0;
    for t in theirs {
        while i < ours.len() && ours[i].key < t.key {
            i += 1;
        }
        match ours.get(i).filter(|o| o.key == t.key) {
            // Only theirs changed the key: take their change.
            None => changes.push(match t.right {
                Some(v) => Change::Put(t.key, v),
                None => Change::Delete(t.key),
            }),
            // Both changed it the same way: already in ours.
            Some(o) if o.right == t.right => {}
            Some(o) => conflicts.push(Conflict {
                key: t.key,
                base: t.left,
                ours: o.right,
                theirs: t.right,
            }),
        }
    }
    (changes, conflicts)
}
