//! Merges (spec/0008 §5): fast-forward, per-field 3-way union, ours/theirs,
//! refusal across incompatible spatial indexes, tombstone union, and the
//! N-way merge that finishes sharded ingest.
//!
//! A merge of `theirs` into branch `ours` first decides by ancestry: when
//! `theirs` is already in `ours`' history nothing moves; when `ours` is in
//! `theirs`' history the branch fast-forwards (unless a merge commit is
//! asked for). Otherwise the lowest common ancestor `B` is the base (several
//! LCAs — a criss-cross — are refused in this version) and each part of the
//! Manifest is merged against it:
//!
//! - **schema**: per field, a field changed on one side only is taken; a
//!   field changed differently on both sides is a conflict;
//! - **tracks**: per field, through `crate::track`'s `merge3` (entry sets:
//!   added on either side kept, removed on one side removed, changed
//!   differently on both a conflict). A field absent from `B` or from one
//!   side counts as an empty track under `B`'s index. Embedding, scalar, blob and fragment tracks all merge by
//!   this one rule;
//! - **spatial index** of a field: the same on both sides → kept; changed
//!   on one side only → taken only if every cell-order entry the other side
//!   added since `B` is still valid under the changed side's lineage
//!   (`super::spatial`); otherwise, and when both changed it differently,
//!   [`DagError::SpatialIndexIncompatible`];
//! - **registry**: `dreamdb.tombstones` lists are unioned; other keys are
//!   taken from the side that changed them, a conflict if both did;
//! - **record count**: `B + (ours − B) + (theirs − B)` — exact when the two
//!   sides' appends and deletes are disjoint, which unique run keys and
//!   unioned tombstones make the normal case (an anchor deleted on both
//!   sides is counted twice: the count is informative, never used to read).
//!
//! [`Strategy::Ours`] / [`Strategy::Theirs`] (or per-field [`Side`]
//! overrides) take a field's whole state (root, spatial index, compressor)
//! and its schema entry from one side. The result is one Manifest with
//! parents `[ours, theirs…]` published by one compare-and-swap; if `ours`
//! moved meanwhile the merge is redone against the new tip.

use std::collections::{BTreeMap, BTreeSet};

use dreamdb_core::ref_name::RefName;
use dreamdb_core::ContentHash;

use super::commit::{CommitOptions, Draft};
use super::refs::PublishOutcome;
use super::{roots, spatial, DagError, Repo, TOMBSTONES_KEY};
use crate::objects::{Manifest, Schema, TombstoneList, TrackState};
use crate::track::TrackRoot;

/// One side of a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The branch merged into.
    Ours,
    /// The branch merged in.
    Theirs,
}

/// How fields are merged by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    /// 3-way union per field (the default).
    #[default]
    Union,
    /// Every field from ours.
    Ours,
    /// Every field from theirs (the last branch merged wins in an N-way
    /// merge).
    Theirs,
}

/// Options of [`Repo::merge`] and [`Repo::merge_many`].
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// Default strategy.
    pub strategy: Strategy,
    /// Per-field overrides of the strategy.
    pub fields: BTreeMap<String, Side>,
    /// Who merges.
    pub writer: String,
    /// Commit message.
    pub message: String,
    /// Whether a merge whose `ours` is an ancestor of `theirs` may just
    /// move the branch (no new Manifest).
    pub allow_fast_forward: bool,
    /// Most attempts when `ours` keeps moving (default: the repo's retry
    /// policy).
    pub max_attempts: Option<u32>,
}

impl MergeOptions {
    /// Union merge by `writer`, fast-forward allowed.
    pub fn union(writer: &str, message: &str) -> Self {
        MergeOptions {
            strategy: Strategy::Union,
            fields: BTreeMap::new(),
            writer: writer.to_owned(),
            message: message.to_owned(),
            allow_fast_forward: true,
            max_attempts: None,
        }
    }

    /// These options with `strategy`.
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    fn side_of(&self, field: &str) -> Option<Side> {
        self.fields.get(field).copied().or(match self.strategy {
            Strategy::Union => None,
            Strategy::Ours => Some(Side::Ours),
            Strategy::Theirs => Some(Side::Theirs),
        })
    }
}

/// What a merge did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum MergeOutcome {
    /// Every branch merged in is already in `ours`' history.
    AlreadyUpToDate {
        /// The branch's target.
        at: ContentHash,
    },
    /// The branch moved to `to` (no new Manifest).
    FastForward {
        /// The new target.
        to: ContentHash,
    },
    /// A merge Manifest was published.
    Merged {
        /// The merge Manifest.
        manifest: ContentHash,
        /// Attempts it took (more than 1 when `ours` moved meanwhile).
        attempts: u32,
    },
}

/// The merge result being built: `ours` with each branch merged in turn.
struct Acc {
    schema_hash: ContentHash,
    schema: Option<Schema>,
    tracks: BTreeMap<String, TrackState>,
    registry: BTreeMap<String, ContentHash>,
    records: u64,
}

impl Acc {
    /// The result so far: `m` unchanged.
    fn of(m: &Manifest) -> Self {
        Acc {
            schema_hash: m.schema,
            schema: None,
            tracks: m.tracks.clone(),
            registry: m.registry.clone(),
            records: m.records,
        }
    }
}

/// A merge Manifest built for a tip that then moved.
struct BuiltMerge {
    /// The tip it was built on.
    on: ContentHash,
    /// The merge Manifest.
    merge: ContentHash,
    /// The branches it merged in.
    theirs: Vec<ContentHash>,
}

fn pick<T: PartialEq + Clone>(base: &T, ours: &T, theirs: &T) -> Option<T> {
    if ours == theirs || theirs == base {
        Some(ours.clone())
    } else if ours == base {
        Some(theirs.clone())
    } else {
        None
    }
}

fn short(hash: &Option<ContentHash>) -> String {
    hash.map_or_else(|| "none".to_owned(), |h| h.short())
}

impl Repo {
    /// Merges Manifest `theirs` into branch `ours` (spec/0008 §5).
    pub async fn merge(
        &self,
        ours: &RefName,
        theirs: ContentHash,
        options: &MergeOptions,
    ) -> Result<MergeOutcome, DagError> {
        self.merge_many(ours, &[theirs], options).await
    }

    /// Merges every Manifest of `theirs` into branch `ours` as ONE
    /// Manifest with parents `[ours, t1, …, tn]` and ONE compare-and-swap:
    /// each branch is 3-way merged from its LCA with `ours`, in order, into
    /// the result so far; any conflict refuses the whole merge. Branches
    /// already in `ours`' history are left out. With one branch left whose
    /// history contains `ours`, the branch fast-forwards if allowed.
    pub async fn merge_many(
        &self,
        ours: &RefName,
        theirs: &[ContentHash],
        options: &MergeOptions,
    ) -> Result<MergeOutcome, DagError> {
        let policy = self.config.retry.clone();
        let max_attempts = options.max_attempts.unwrap_or(policy.max_attempts).max(1);
        let mut first = None;
        let mut last = None;
        // The ref as the last lost CAS re-read it, and the merge built for
        // the tip before it: a lost race rebases that merge onto the new tip
        // instead of merging every branch again from its base.
        let mut known_tip = None;
        let mut prior: Option<BuiltMerge> = None;
        for attempt in 1..=max_attempts {
            let tip = self
                .tip_for_attempt(ours, known_tip.take(), attempt, &policy)
                .await?;
            first.get_or_insert(tip.manifest);
            let mut pending = Vec::new();
            for t in theirs {
                if !pending.contains(t) && !self.is_ancestor(*t, tip.manifest).await? {
                    pending.push(*t);
                }
            }
            let target = match pending.as_slice() {
                [] => return Ok(MergeOutcome::AlreadyUpToDate { at: tip.manifest }),
                [only]
                    if options.allow_fast_forward
                        && self.is_ancestor(tip.manifest, *only).await? =>
                {
                    *only
                }
                _ => {
                    let rebased = match prior.take() {
                        Some(built) if built.theirs == pending => {
                            self.rebase_merge(tip.manifest, &built, options).await?
                        }
                        _ => None,
                    };
                    match rebased {
                        Some(hash) => hash,
                        None => self.build_merge(tip.manifest, &pending, options).await?,
                    }
                }
            };
            match self.publish(ours, target, Some(&tip)).await? {
                PublishOutcome::Published { .. } if pending.as_slice() == [target] => {
                    return Ok(MergeOutcome::FastForward { to: target })
                }
                PublishOutcome::Published { .. } => {
                    return Ok(MergeOutcome::Merged {
                        manifest: target,
                        attempts: attempt,
                    })
                }
                PublishOutcome::Lost { tip: now } => {
                    last = Some(now.manifest);
                    if pending.as_slice() != [target] {
                        prior = Some(BuiltMerge {
                            on: tip.manifest,
                            merge: target,
                            theirs: pending,
                        });
                    }
                    known_tip = Some(now);
                }
            }
        }
        Err(DagError::Conflict {
            name: format!("refs/{ours}"),
            expected: first,
            actual: last,
        })
    }

    /// The merge `built` (made on an earlier tip) carried onto tip `now`:
    /// a 3-way union with the earlier tip as base and parents `[now,
    /// theirs…]`. Equal to merging every branch into `now` from its own
    /// base when the union strategy is used and nothing conflicts, at the
    /// cost of the changes since the earlier tip. `None` (redo the merge in
    /// full) for other strategies, when `now` does not descend from the
    /// earlier tip (the ref was reset), or on any conflict — the full merge
    /// then reports it against the real bases.
    async fn rebase_merge(
        &self,
        now: ContentHash,
        built: &BuiltMerge,
        options: &MergeOptions,
    ) -> Result<Option<ContentHash>, DagError> {
        if options.strategy != Strategy::Union
            || !options.fields.is_empty()
            || !self.is_ancestor(built.on, now).await?
        {
            return Ok(None);
        }
        let n = self.manifest(&now).await?;
        let before = self.manifest(&built.on).await?;
        let merged = self.manifest(&built.merge).await?;
        let mut acc = Acc::of(&n);
        match self.merge_step(&mut acc, &before, &merged, options).await {
            Ok(()) => {}
            Err(
                DagError::MergeConflict { .. }
                | DagError::SpatialIndexIncompatible { .. }
                | DagError::CrissCross { .. },
            ) => return Ok(None),
            Err(e) => return Err(e),
        }
        self.finish_merge(now, &built.theirs, acc, options)
            .await
            .map(Some)
    }

    /// Writes the merge Manifest of `theirs` into `ours` (not published).
    async fn build_merge(
        &self,
        ours: ContentHash,
        theirs: &[ContentHash],
        options: &MergeOptions,
    ) -> Result<ContentHash, DagError> {
        let o = self.manifest(&ours).await?;
        let mut acc = Acc::of(&o);
        for t in theirs {
            let bases = self.lca(ours, *t).await?;
            let base = match bases.as_slice() {
                [one] => *one,
                [] => {
                    return Err(DagError::MergeConflict {
                        field: "history".to_owned(),
                        reason: format!("{} and {} share no history", ours.short(), t.short()),
                    })
                }
                _ => {
                    return Err(DagError::CrissCross {
                        ours,
                        theirs: *t,
                        bases,
                    })
                }
            };
            let b = self.manifest(&base).await?;
            let tm = self.manifest(t).await?;
            self.merge_step(&mut acc, &b, &tm, options).await?;
        }
        self.finish_merge(ours, theirs, acc, options).await
    }

    /// Writes the merge Manifest of `acc` with parents `[ours, theirs…]`.
    async fn finish_merge(
        &self,
        ours: ContentHash,
        theirs: &[ContentHash],
        acc: Acc,
        options: &MergeOptions,
    ) -> Result<ContentHash, DagError> {
        let schema = match acc.schema {
            Some(schema) => self.put_object(&schema).await?,
            None => acc.schema_hash,
        };
        let mut parents = vec![ours];
        parents.extend_from_slice(theirs);
        let (hash, _) = self
            .commit(CommitOptions {
                parents,
                draft: Draft {
                    writer: options.writer.clone(),
                    message: options.message.clone(),
                    schema,
                    tracks: acc.tracks,
                    registry: acc.registry,
                    records: acc.records,
                },
                time_unix_nanos: None,
            })
            .await?;
        Ok(hash)
    }

    /// Merges `t` (with base `b`) into the result so far.
    async fn merge_step(
        &self,
        acc: &mut Acc,
        b: &Manifest,
        t: &Manifest,
        options: &MergeOptions,
    ) -> Result<(), DagError> {
        self.merge_schema(acc, b, t, options).await?;
        let names: BTreeSet<String> = b
            .tracks
            .keys()
            .chain(acc.tracks.keys())
            .chain(t.tracks.keys())
            .cloned()
            .collect();
        // Fields merge independently: concurrently, so a merge waits for
        // its slowest field's page reads, not for their sum.
        let merged = futures::future::try_join_all(names.iter().map(|name| {
            let ours = acc.tracks.get(name).cloned();
            let theirs = t.tracks.get(name).cloned();
            async move {
                match options.side_of(name) {
                    Some(Side::Ours) => Ok(ours),
                    Some(Side::Theirs) => Ok(theirs),
                    None => {
                        self.merge_track(name, b.tracks.get(name), ours.as_ref(), theirs.as_ref())
                            .await
                    }
                }
            }
        }))
        .await?;
        for (name, merged) in names.into_iter().zip(merged) {
            match merged {
                Some(state) => acc.tracks.insert(name, state),
                None => acc.tracks.remove(&name),
            };
        }
        self.merge_registry(acc, b, t).await?;
        acc.records = match options.strategy {
            Strategy::Ours if options.fields.is_empty() => acc.records,
            Strategy::Theirs if options.fields.is_empty() => t.records,
            _ => {
                let sum = i128::from(acc.records) + i128::from(t.records) - i128::from(b.records);
                u64::try_from(sum.max(0)).unwrap_or(u64::MAX)
            }
        };
        Ok(())
    }

    async fn merge_schema(
        &self,
        acc: &mut Acc,
        b: &Manifest,
        t: &Manifest,
        options: &MergeOptions,
    ) -> Result<(), DagError> {
        if t.schema == acc.schema_hash || t.schema == b.schema {
            return Ok(());
        }
        if acc.schema_hash == b.schema && acc.schema.is_none() {
            acc.schema_hash = t.schema;
            return Ok(());
        }
        let base = self.schema(&b.schema).await?;
        let ours = match acc.schema.take() {
            Some(s) => s,
            None => self.schema(&acc.schema_hash).await?,
        };
        let theirs = self.schema(&t.schema).await?;
        let names: BTreeSet<&String> = base
            .fields
            .keys()
            .chain(ours.fields.keys())
            .chain(theirs.fields.keys())
            .collect();
        let mut fields = BTreeMap::new();
        for name in names {
            let (bf, of, tf) = (
                base.fields.get(name),
                ours.fields.get(name),
                theirs.fields.get(name),
            );
            let chosen = match (pick(&bf, &of, &tf), options.side_of(name)) {
                (_, Some(Side::Ours)) => of,
                (_, Some(Side::Theirs)) => tf,
                (Some(field), None) => field,
                (None, None) => {
                    return Err(DagError::MergeConflict {
                        field: format!("schema:{name}"),
                        reason: "the field's spec changed differently on both sides".to_owned(),
                    })
                }
            };
            if let Some(field) = chosen {
                fields.insert(name.clone(), field.clone());
            }
        }
        let merged = Schema { fields };
        let (_, hash) = crate::objects::ObjectKind::encode(&merged)?;
        acc.schema_hash = hash;
        acc.schema = Some(merged);
        Ok(())
    }

    /// 3-way merge of one field's track state (`None`: field absent).
    async fn merge_track(
        &self,
        field: &str,
        base: Option<&TrackState>,
        ours: Option<&TrackState>,
        theirs: Option<&TrackState>,
    ) -> Result<Option<TrackState>, DagError> {
        if let Some(state) = pick(&base, &ours, &theirs) {
            return Ok(state.cloned());
        }
        // A side without the field holds no entries of it and changed
        // nothing of its index: an empty track under the base's index.
        let absent = TrackState::new(
            roots::to_stored(&TrackRoot::empty())?,
            base.and_then(|b| b.spatial_index),
            base.and_then(|b| b.compressor),
        );
        let o = ours.unwrap_or(&absent);
        let t = theirs.unwrap_or(&absent);
        let b_root = match base {
            Some(b) => roots::to_track(&b.root)?,
            None => TrackRoot::empty(),
        };
        let o_root = roots::to_track(&o.root)?;
        let t_root = roots::to_track(&t.root)?;
        let b_si = base.and_then(|b| b.spatial_index);
        let (o_si, t_si) = (o.spatial_index, t.spatial_index);
        let spatial_index = if o_si == t_si {
            o_si
        } else if o_si == b_si {
            // Theirs changed the index: our new entries must follow it.
            self.follows(field, &b_root, &o_root, o_si, t_si, o_si, t_si)
                .await?;
            t_si
        } else if t_si == b_si {
            self.follows(field, &b_root, &t_root, t_si, o_si, o_si, t_si)
                .await?;
            o_si
        } else {
            return Err(DagError::SpatialIndexIncompatible {
                field: field.to_owned(),
                ours: o_si,
                theirs: t_si,
            });
        };
        let b_comp = base.and_then(|b| b.compressor);
        let Some(compressor) = pick(&b_comp, &o.compressor, &t.compressor) else {
            return Err(DagError::MergeConflict {
                field: format!("track:{field}"),
                reason: format!(
                    "compressor changed on both sides ({} and {})",
                    short(&o.compressor),
                    short(&t.compressor)
                ),
            });
        };
        let (root, conflicts) = self.track.merge3(&b_root, &o_root, &t_root).await?;
        if let Some(first) = conflicts.first() {
            return Err(DagError::MergeConflict {
                field: format!("track:{field}"),
                reason: format!(
                    "{} entries changed differently on both sides (first: key {:?})",
                    conflicts.len(),
                    first.key
                ),
            });
        }
        if ours.is_none() && root.is_empty() {
            return Ok(None);
        }
        // Both sides changed the track: their stats and last anchors no
        // longer describe it, and readers count entries instead.
        Ok(Some(TrackState::new(
            roots::to_stored(&root)?,
            spatial_index,
            compressor,
        )))
    }

    /// Checks that the cell-order entries added between `base` and `side`
    /// (placed under `placed_under`) are valid under `target`; errors name
    /// the merge's two indexes.
    #[allow(clippy::too_many_arguments)]
    async fn follows(
        &self,
        field: &str,
        base: &TrackRoot,
        side: &TrackRoot,
        placed_under: Option<ContentHash>,
        target: Option<ContentHash>,
        ours: Option<ContentHash>,
        theirs: Option<ContentHash>,
    ) -> Result<(), DagError> {
        let (diff, _) = self.track.diff(base, side).await?;
        let cells: BTreeSet<u32> = diff
            .iter()
            .filter(|d| d.right.is_some() && d.right != d.left)
            .filter_map(|d| d.key.cell())
            .collect();
        let valid = if cells.is_empty() {
            true
        } else {
            match (placed_under, target) {
                (Some(from), Some(to)) => {
                    spatial::cells_still_valid(self, from, to, &cells).await?
                }
                _ => false,
            }
        };
        if valid {
            Ok(())
        } else {
            Err(DagError::SpatialIndexIncompatible {
                field: field.to_owned(),
                ours,
                theirs,
            })
        }
    }

    async fn merge_registry(
        &self,
        acc: &mut Acc,
        b: &Manifest,
        t: &Manifest,
    ) -> Result<(), DagError> {
        let keys: BTreeSet<String> = b
            .registry
            .keys()
            .chain(acc.registry.keys())
            .chain(t.registry.keys())
            .cloned()
            .collect();
        for key in keys {
            let (bv, ov, tv) = (
                b.registry.get(&key).copied(),
                acc.registry.get(&key).copied(),
                t.registry.get(&key).copied(),
            );
            let merged = match pick(&bv, &ov, &tv) {
                Some(v) => v,
                None if key == TOMBSTONES_KEY => match (ov, tv) {
                    (Some(oh), Some(th)) => {
                        let ol: TombstoneList = self.get_object(&oh).await?;
                        let tl: TombstoneList = self.get_object(&th).await?;
                        Some(self.put_object(&TombstoneList::union(&ol, &tl)?).await?)
                    }
                    (one, other) => one.or(other),
                },
                None => {
                    return Err(DagError::MergeConflict {
                        field: format!("registry:{key}"),
                        reason: format!(
                            "changed on both sides ({} and {})",
                            short(&ov),
                            short(&tv)
                        ),
                    })
                }
            };
            match merged {
                Some(v) => acc.registry.insert(key, v),
                None => acc.registry.remove(&key),
            };
        }
        Ok(())
    }
}
