//! Refs and tags: reading, listing, publishing by compare-and-swap, and
//! the branch verbs of spec/0008 §2–§3.
//!
//! Every write of a ref is conditional: `create` for a new name,
//! `update(version)` to move one. When the outcome of a write is unclear —
//! the backend said the condition failed, or the request failed
//! transiently and its response may have been lost — the ref is re-read
//! and the outcome decided from what it names: a ref already at the
//! Manifest we wrote is *published*, never a conflict. Transient errors are
//! retried a bounded number of times with backoff.

use dreamdb_connector::Version;
use dreamdb_connector::{ConnectorError, ConnectorExt, KeyPrefix, ObjectKey, PutMode, PutOutcome};
use dreamdb_core::ref_name::RefName;
use dreamdb_core::ContentHash;
use futures::TryStreamExt;

use super::{DagError, HistoryProblem, Repo};
use crate::objects::{ref_key, tag_key, ObjectKind, RefObject};

/// What a ref (or tag) names, and the storage version it was read at (the
/// condition of the next compare-and-swap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefState {
    /// The Manifest it points at.
    pub manifest: ContentHash,
    /// The dataset's Genesis, as the Ref object states it.
    pub genesis: ContentHash,
    /// The storage version read.
    pub version: Version,
}

/// The result of [`Repo::publish`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum PublishOutcome {
    /// The ref now names the Manifest.
    Published {
        /// The ref after the write.
        state: RefState,
        /// Whether the outcome was decided by re-reading the ref (the
        /// write's own answer was a failed condition or a lost response).
        confirmed_by_reread: bool,
    },
    /// Another writer moved the ref first.
    Lost {
        /// What the ref names now.
        tip: RefState,
    },
}

#[derive(Clone, Copy)]
enum Kind {
    Branch,
    Tag,
}

impl Repo {
    fn key_of(&self, kind: Kind, name: &RefName) -> ObjectKey {
        match kind {
            Kind::Branch => ref_key(&self.dataset, name),
            Kind::Tag => tag_key(&self.dataset, name),
        }
    }

    fn label(kind: Kind, name: &RefName) -> String {
        match kind {
            Kind::Branch => format!("refs/{name}"),
            Kind::Tag => format!("tags/{name}"),
        }
    }

    fn connector_error(key: &ObjectKey, source: ConnectorError) -> DagError {
        DagError::Connector {
            key: key.to_string(),
            source: Box::new(source),
        }
    }

    /// Reads the Ref object at `key`, retrying transient errors.
    async fn read_key(&self, key: &ObjectKey) -> Result<Option<RefState>, DagError> {
        let policy = &self.config.retry;
        let mut failures = 0u32;
        loop {
            match self.connector.get_opt(key).await {
                Ok(None) => return Ok(None),
                Ok(Some(found)) => {
                    let object = RefObject::decode_unverified(&found.bytes)?;
                    return Ok(Some(RefState {
                        manifest: object.manifest,
                        genesis: object.genesis,
                        version: found.meta.version,
                    }));
                }
                Err(e) if e.is_transient() && failures < policy.max_transient => {
                    failures += 1;
                    policy.wait(failures + 1).await;
                }
                Err(e) => return Err(Self::connector_error(key, e)),
            }
        }
    }

    /// What branch `name` names, or `None` if it does not exist.
    pub async fn read_ref(&self, name: &RefName) -> Result<Option<RefState>, DagError> {
        self.read_key(&self.key_of(Kind::Branch, name)).await
    }

    /// What tag `name` names, or `None` if it does not exist.
    pub async fn read_tag(&self, name: &RefName) -> Result<Option<RefState>, DagError> {
        self.read_key(&self.key_of(Kind::Tag, name)).await
    }

    /// Branch `name`, which must exist.
    pub async fn require_ref(&self, name: &RefName) -> Result<RefState, DagError> {
        self.read_ref(name)
            .await?
            .ok_or_else(|| DagError::RefNotFound {
                name: Self::label(Kind::Branch, name),
            })
    }

    async fn list_kind(&self, kind: Kind, glob: &str) -> Result<Vec<RefName>, DagError> {
        let dir = match kind {
            Kind::Branch => "refs",
            Kind::Tag => "tags",
        };
        let text = format!("datasets/{}/{dir}/", self.dataset);
        let prefix = KeyPrefix::new(text.clone()).map_err(|e| DagError::Connector {
            key: text.clone(),
            source: Box::new(e.into()),
        })?;
        let listed: Vec<_> =
            self.connector
                .list(&prefix)
                .try_collect()
                .await
                .map_err(|source| DagError::Connector {
                    key: text.clone(),
                    source: Box::new(source),
                })?;
        let mut names: Vec<RefName> = listed
            .iter()
            .filter_map(|meta| meta.key.as_str().strip_prefix(text.as_str()))
            .filter_map(|rest| RefName::parse(rest).ok())
            .filter(|name| name.matches_glob(glob))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The branches whose names match `glob` (`*` and `?` within one
    /// `/`-segment). Uses LIST: for tools, never for hot paths.
    pub async fn list_refs(&self, glob: &str) -> Result<Vec<RefName>, DagError> {
        self.list_kind(Kind::Branch, glob).await
    }

    /// The tags whose names match `glob`. Uses LIST.
    pub async fn list_tags(&self, glob: &str) -> Result<Vec<RefName>, DagError> {
        self.list_kind(Kind::Tag, glob).await
    }

    /// Checks that `hash` is a Manifest of this dataset and returns its
    /// Genesis.
    async fn target_genesis(
        &self,
        hash: ContentHash,
        expected: Option<&RefState>,
    ) -> Result<ContentHash, DagError> {
        let manifest = self.manifest(&hash).await?;
        if let Some(state) = expected {
            if state.genesis != manifest.genesis {
                return Err(DagError::history(
                    hash,
                    HistoryProblem::ForeignGenesis {
                        expected: state.genesis,
                        found: manifest.genesis,
                    },
                ));
            }
        }
        Ok(manifest.genesis)
    }

    /// One conditional write of `key` to `manifest` (spec/0008 §3 steps
    /// 2–4): `create` when `expected` is `None`, else `update` from the
    /// version read.
    async fn cas(
        &self,
        kind: Kind,
        name: &RefName,
        manifest: ContentHash,
        expected: Option<&RefState>,
    ) -> Result<PublishOutcome, DagError> {
        let key = self.key_of(kind, name);
        let genesis = self.target_genesis(manifest, expected).await?;
        let (bytes, _) = RefObject { manifest, genesis }.encode()?;
        let bytes = bytes::Bytes::from(bytes);
        let mode = match expected {
            Some(state) => PutMode::Update(state.version.clone()),
            None => PutMode::Create,
        };
        let policy = &self.config.retry;
        let mut failures = 0u32;
        loop {
            let error = match self.connector.put(&key, bytes.clone(), mode.clone()).await {
                Ok(PutOutcome::Written(version)) => {
                    return Ok(PublishOutcome::Published {
                        state: RefState {
                            manifest,
                            genesis,
                            version,
                        },
                        confirmed_by_reread: false,
                    })
                }
                Ok(PutOutcome::AlreadyExists | PutOutcome::PreconditionFailed) => None,
                Err(e) if e.is_transient() => Some(e),
                Err(e) => {
                    // Even a permanent-looking error may follow a write that
                    // landed (e.g. the directory fsync failed after the
                    // rename): the ref decides, as for lost responses.
                    if let Ok(Some(state)) = self.read_key(&key).await {
                        if state.manifest == manifest {
                            return Ok(PublishOutcome::Published {
                                state,
                                confirmed_by_reread: true,
                            });
                        }
                    }
                    return Err(Self::connector_error(&key, e));
                }
            };
            // The write's outcome is unclear: the ref decides it.
            let current = self.read_key(&key).await?;
            match (&current, &error) {
                (Some(state), _) if state.manifest == manifest => {
                    return Ok(PublishOutcome::Published {
                        state: state.clone(),
                        confirmed_by_reread: true,
                    })
                }
                // A transient failure that did not land: retry the write.
                (Some(state), Some(_)) if expected.is_some_and(|e| e.version == state.version) => {}
                (None, Some(_)) if expected.is_none() => {}
                // Created and deleted again between our write and the read.
                (None, None) if expected.is_none() => {}
                (Some(state), _) => {
                    return Ok(PublishOutcome::Lost { tip: state.clone() });
                }
                (None, _) => {
                    return Err(DagError::RefNotFound {
                        name: Self::label(kind, name),
                    })
                }
            }
            failures += 1;
            if failures > policy.max_transient {
                return Err(match error {
                    Some(e) => Self::connector_error(&key, e),
                    None => DagError::Conflict {
                        name: Self::label(kind, name),
                        expected: expected.map(|s| s.manifest),
                        actual: None,
                    },
                });
            }
            policy.wait(failures + 1).await;
        }
    }

    /// Publishes Manifest `manifest` on branch `name` (spec/0008 §3):
    /// `update` from `expected` (as read), or `create` when `expected` is
    /// `None`. The Manifest and everything it reaches must already be
    /// written. A lost response is [`PublishOutcome::Published`]; a lost race
    /// is [`PublishOutcome::Lost`] with the new tip.
    pub async fn publish(
        &self,
        name: &RefName,
        manifest: ContentHash,
        expected: Option<&RefState>,
    ) -> Result<PublishOutcome, DagError> {
        self.cas(Kind::Branch, name, manifest, expected).await
    }

    async fn create_once(
        &self,
        kind: Kind,
        name: &RefName,
        at: ContentHash,
    ) -> Result<RefState, DagError> {
        match self.cas(kind, name, at, None).await? {
            PublishOutcome::Published { state, .. } => Ok(state),
            PublishOutcome::Lost { tip } => Err(DagError::AlreadyExists {
                name: Self::label(kind, name),
                existing: tip.manifest,
            }),
        }
    }

    /// Creates branch `name` at `at`; succeeds if it already points there,
    /// else [`DagError::AlreadyExists`].
    pub async fn branch(&self, name: &RefName, at: ContentHash) -> Result<RefState, DagError> {
        self.create_once(Kind::Branch, name, at).await
    }

    /// Creates tag `name` at `at` (create-once, never moved); succeeds if it
    /// already points there, else [`DagError::AlreadyExists`].
    pub async fn tag(&self, name: &RefName, at: ContentHash) -> Result<RefState, DagError> {
        self.create_once(Kind::Tag, name, at).await
    }

    /// Moves branch `name` to any Manifest `to` of the dataset, by one
    /// compare-and-swap from the version read. Not a commuting change: a
    /// lost race is [`DagError::Conflict`], not retried.
    pub async fn reset(&self, name: &RefName, to: ContentHash) -> Result<RefState, DagError> {
        let current = self.require_ref(name).await?;
        match self.publish(name, to, Some(&current)).await? {
            PublishOutcome::Published { state, .. } => Ok(state),
            PublishOutcome::Lost { tip } => Err(DagError::Conflict {
                name: Self::label(Kind::Branch, name),
                expected: Some(current.manifest),
                actual: Some(tip.manifest),
            }),
        }
    }

    /// Moves branch `name` to `to` if its current target is an ancestor of
    /// `to` ([`DagError::NotAncestor`] otherwise). A lost race is re-checked
    /// against the new target and retried.
    pub async fn fast_forward(
        &self,
        name: &RefName,
        to: ContentHash,
    ) -> Result<RefState, DagError> {
        let policy = self.config.retry.clone();
        let mut last = None;
        for attempt in 1..=policy.max_attempts.max(1) {
            policy.wait(attempt).await;
            let current = self.require_ref(name).await?;
            if current.manifest == to {
                return Ok(current);
            }
            if !self.is_ancestor(current.manifest, to).await? {
                return Err(DagError::NotAncestor {
                    ancestor: current.manifest,
                    descendant: to,
                });
            }
            match self.publish(name, to, Some(&current)).await? {
                PublishOutcome::Published { state, .. } => return Ok(state),
                PublishOutcome::Lost { tip } => last = Some(tip.manifest),
            }
        }
        Err(DagError::Conflict {
            name: Self::label(Kind::Branch, name),
            expected: None,
            actual: last,
        })
    }

    /// Removes branch `name` (never a tag). The connector has no
    /// conditional delete, so a concurrent move of the branch is lost.
    pub async fn delete_branch(&self, name: &RefName) -> Result<(), DagError> {
        let key = self.key_of(Kind::Branch, name);
        self.require_ref(name).await?;
        self.connector
            .delete(&key)
            .await
            .map_err(|e| Self::connector_error(&key, e))
    }
}
