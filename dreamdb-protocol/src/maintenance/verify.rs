//! Verification of everything reachable (spec/0006 §6).
//!
//! From every ref and tag of every dataset, every reachable object is read
//! straight from the backend (no session cache, so nothing read earlier
//! can mask damage) and checked:
//!
//! 1. it exists;
//! 2. its bytes hash to its name;
//! 3. it is canonical CBOR and decodes strictly as its kind (every kind
//!    this implementation knows, index pages included; an object of an
//!    unknown kind must at least be canonical CBOR with a text `kind`);
//! 4. every link resolves (each linked object is itself visited);
//! 5. a Manifest's height is 1 + its parents' largest height (when the
//!    parents are read).
//!
//! Every bad object is reported, with who references it — not only the
//! first. History is followed in full unless `max_depth` bounds it. A
//! missing *parent* Manifest reached only as a parent is where an earlier
//! GC cut history (design 0003): it is listed as truncated history, and
//! counted as damage only with `strict_history`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use ciborium::value::Value;
use dreamdb_connector::{Connector, ConnectorError};
use dreamdb_core::cbor;
use dreamdb_core::ContentHash;
use futures::StreamExt;

use super::{list_roots, split_links, MaintenanceError, ProgressFn, DEFAULT_CONCURRENCY};
use crate::objects::{
    object_key, BlobSegment, CellStats, Fragment, Genesis, ItemManifest, Manifest, ObjectKind,
    RefObject, ScalarBucket, Schema, SpatialBucket, SpatialIndexObject, TombstoneList,
    VectorCompressorObject, VectorStorage,
};
use crate::track::{IndexPage, INDEX_PAGE_KIND};

/// Most referrers remembered per object.
const MAX_REFERRERS: usize = 8;

/// Inputs of [`verify()`].
#[derive(Clone)]
pub struct VerifyOptions {
    /// Follow at most this many generations of parents from each root
    /// (0: the roots' Manifests only). `None`: all history.
    pub max_depth: Option<u64>,
    /// Count a missing parent Manifest (history cut by GC) as damage.
    pub strict_history: bool,
    /// Requests in flight.
    pub concurrency: usize,
    /// Progress reports (phase `"verify"`, objects checked).
    pub progress: Option<ProgressFn>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            max_depth: None,
            strict_history: false,
            concurrency: DEFAULT_CONCURRENCY,
            progress: None,
        }
    }
}

impl fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("max_depth", &self.max_depth)
            .field("strict_history", &self.strict_history)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// Who references a bad object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Referrer {
    /// Another object.
    Object(ContentHash),
    /// A ref or tag (`<dataset>:refs/<name>`).
    Root(String),
}

impl fmt::Display for Referrer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Referrer::Object(hash) => write!(f, "{hash}"),
            Referrer::Root(label) => f.write_str(label),
        }
    }
}

/// One damaged object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadObject {
    /// Its name.
    pub hash: ContentHash,
    /// Who references it (up to 8).
    pub referenced_by: Vec<Referrer>,
    /// A stable class: `missing`, `hash-mismatch`, `cbor:<rule>`,
    /// `decode:<class>`, `not-an-object`, `height`.
    pub class: String,
    /// What is wrong, for people.
    pub problem: String,
}

/// A ref or tag that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRef {
    /// `<dataset>:refs/<name>` or `<dataset>:tags/<name>`.
    pub root: String,
    /// What is wrong.
    pub problem: String,
}

/// A parent Manifest that is not stored, reached only as a parent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TruncatedHistory {
    /// The missing parent.
    pub missing: ContentHash,
    /// A Manifest naming it.
    pub child: ContentHash,
}

/// What [`verify()`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Datasets with at least one ref or tag.
    pub datasets: u64,
    /// Branches.
    pub refs: u64,
    /// Tags.
    pub tags: u64,
    /// Distinct objects checked (bad ones included).
    pub objects_checked: u64,
    /// Manifests among them.
    pub manifests_checked: u64,
    /// Bytes read.
    pub bytes_checked: u64,
    /// Objects of a kind this implementation does not know (checked as
    /// canonical CBOR with links only).
    pub unknown_kinds: u64,
    /// Every damaged object, sorted by hash.
    pub bad: Vec<BadObject>,
    /// Every unreadable ref or tag.
    pub bad_refs: Vec<BadRef>,
    /// History cut by GC (damage only with `strict_history`).
    pub truncated_history: Vec<TruncatedHistory>,
}

impl VerifyReport {
    /// Whether nothing is damaged.
    pub fn is_clean(&self) -> bool {
        self.bad.is_empty() && self.bad_refs.is_empty()
    }
}

#[derive(Default)]
struct Seen {
    referrers: Vec<Referrer>,
    /// Reached through something other than a Manifest's `parents`.
    non_parent: bool,
    /// Generation (parents from the nearest root) of a Manifest.
    depth: u64,
}

struct Checked {
    hash: ContentHash,
    bytes: u64,
    outcome: Result<Good, (String, String)>,
}

struct Good {
    links: Vec<ContentHash>,
    parents: Vec<ContentHash>,
    manifest_height: Option<u64>,
    unknown_kind: bool,
}

/// Verifies everything reachable in `connector` (see the module docs).
pub async fn verify(
    connector: Arc<dyn Connector>,
    options: &VerifyOptions,
) -> Result<VerifyReport, MaintenanceError> {
    let mut report = VerifyReport::default();
    let roots = list_roots(&connector).await?;
    let datasets: HashSet<&str> = roots.iter().map(|r| r.dataset.as_str()).collect();
    report.datasets = datasets.len() as u64;

    let mut seen: HashMap<ContentHash, Seen> = HashMap::new();
    let mut frontier: Vec<ContentHash> = Vec::new();
    for root in &roots {
        match root.kind {
            super::RootKind::Branch => report.refs += 1,
            super::RootKind::Tag => report.tags += 1,
        }
        match &root.target {
            Ok(RefObject { manifest, genesis }) => {
                let by = Referrer::Root(root.label());
                note(&mut seen, &mut frontier, *manifest, by.clone(), true, 0);
                note(&mut seen, &mut frontier, *genesis, by, true, 0);
            }
            Err(problem) => report.bad_refs.push(BadRef {
                root: root.label(),
                problem: problem.clone(),
            }),
        }
    }

    let mut heights: HashMap<ContentHash, u64> = HashMap::new();
    let mut manifest_parents: Vec<(ContentHash, u64, Vec<ContentHash>)> = Vec::new();
    let mut failures: HashMap<ContentHash, (String, String)> = HashMap::new();
    while !frontier.is_empty() {
        let checked: Vec<Result<Checked, MaintenanceError>> = futures::stream::iter(frontier)
            .map(|hash| {
                let connector = &connector;
                async move { check_object(connector.as_ref(), hash).await }
            })
            .buffer_unordered(options.concurrency.max(1))
            .collect()
            .await;
        let mut next = Vec::new();
        for checked in checked {
            let checked = checked?;
            report.objects_checked += 1;
            report.bytes_checked += checked.bytes;
            let hash = checked.hash;
            let depth = seen.get(&hash).map_or(0, |s| s.depth);
            match checked.outcome {
                Ok(good) => {
                    if good.unknown_kind {
                        report.unknown_kinds += 1;
                    }
                    for link in good.links {
                        note(
                            &mut seen,
                            &mut next,
                            link,
                            Referrer::Object(hash),
                            true,
                            depth,
                        );
                    }
                    if let Some(height) = good.manifest_height {
                        report.manifests_checked += 1;
                        heights.insert(hash, height);
                        manifest_parents.push((hash, height, good.parents.clone()));
                        if options.max_depth.is_none_or(|max| depth < max) {
                            for parent in good.parents {
                                note(
                                    &mut seen,
                                    &mut next,
                                    parent,
                                    Referrer::Object(hash),
                                    false,
                                    depth + 1,
                                );
                            }
                        }
                    }
                }
                Err(problem) => {
                    failures.insert(hash, problem);
                }
            }
        }
        if let Some(progress) = &options.progress {
            progress("verify", report.objects_checked);
        }
        frontier = next;
    }

    // Heights, where every parent was read.
    for (hash, height, parents) in manifest_parents {
        if parents.is_empty() || failures.contains_key(&hash) {
            continue;
        }
        let parent_heights: Option<Vec<u64>> =
            parents.iter().map(|p| heights.get(p).copied()).collect();
        if let Some(ph) = parent_heights {
            let expected = ph.iter().max().map_or(0, |m| m + 1);
            if height != expected {
                failures.insert(
                    hash,
                    (
                        "height".to_owned(),
                        format!("height {height}, but its parents imply {expected}"),
                    ),
                );
            }
        }
    }

    for (hash, (class, problem)) in failures {
        let s = seen.remove(&hash).unwrap_or_default();
        if class == "missing" && !s.non_parent && !options.strict_history {
            for referrer in &s.referrers {
                if let Referrer::Object(child) = referrer {
                    report.truncated_history.push(TruncatedHistory {
                        missing: hash,
                        child: *child,
                    });
                }
            }
            continue;
        }
        let mut referenced_by = s.referrers;
        referenced_by.sort();
        report.bad.push(BadObject {
            hash,
            referenced_by,
            class,
            problem,
        });
    }
    report.bad.sort_by_key(|b| b.hash);
    report.truncated_history.sort();
    Ok(report)
}

/// Records that `by` links to `hash`; queues `hash` the first time.
fn note(
    seen: &mut HashMap<ContentHash, Seen>,
    frontier: &mut Vec<ContentHash>,
    hash: ContentHash,
    by: Referrer,
    non_parent: bool,
    depth: u64,
) {
    let entry = seen.entry(hash);
    let fresh = matches!(entry, std::collections::hash_map::Entry::Vacant(_));
    let s = entry.or_default();
    if s.referrers.len() < MAX_REFERRERS && !s.referrers.contains(&by) {
        s.referrers.push(by);
    }
    s.non_parent |= non_parent;
    if fresh {
        s.depth = depth;
        frontier.push(hash);
    } else {
        s.depth = s.depth.min(depth);
    }
}

/// Reads and checks one object. Only a backend failure other than "not
/// found" is an error; damage is an outcome.
async fn check_object(
    connector: &dyn Connector,
    hash: ContentHash,
) -> Result<Checked, MaintenanceError> {
    let key = object_key(&hash);
    let bytes = match connector.get(&key).await {
        Ok(found) => found.bytes,
        Err(ConnectorError::NotFound { .. }) => {
            return Ok(Checked {
                hash,
                bytes: 0,
                outcome: Err(("missing".to_owned(), "not stored".to_owned())),
            })
        }
        Err(e) => return Err(MaintenanceError::connector(key.as_str(), e)),
    };
    let len = bytes.len() as u64;
    Ok(Checked {
        hash,
        bytes: len,
        outcome: check_bytes(&hash, &bytes),
    })
}

fn check_bytes(hash: &ContentHash, bytes: &[u8]) -> Result<Good, (String, String)> {
    let actual = ContentHash::of(bytes);
    if actual != *hash {
        return Err((
            "hash-mismatch".to_owned(),
            format!("{} bytes hash to {actual}", bytes.len()),
        ));
    }
    let value = cbor::decode_value(bytes).map_err(|e| {
        (
            format!("cbor:{}", e.class()),
            format!("not canonical CBOR: {e}"),
        )
    })?;
    let kind = value
        .as_map()
        .and_then(|entries| {
            entries
                .iter()
                .find(|(k, _)| k.as_text() == Some("kind"))
                .and_then(|(_, v)| v.as_text())
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            (
                "not-an-object".to_owned(),
                "not a CBOR map with a text `kind`".to_owned(),
            )
        })?;
    let known = decode_as_kind(hash, bytes, &kind)?;
    let (links, parents) = split_links(&value);
    let manifest_height = if kind == <Manifest as ObjectKind>::KIND {
        manifest_height(&value)
    } else {
        None
    };
    Ok(Good {
        links,
        parents,
        manifest_height,
        unknown_kind: !known,
    })
}

fn manifest_height(value: &Value) -> Option<u64> {
    value
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some("height"))
        .and_then(|(_, v)| v.as_integer())
        .and_then(|i| u64::try_from(i).ok())
}

/// Decodes `bytes` strictly as `kind`; `Ok(false)` for a kind this
/// implementation does not know.
fn decode_as_kind(hash: &ContentHash, bytes: &[u8], kind: &str) -> Result<bool, (String, String)> {
    fn check<T: ObjectKind>(hash: &ContentHash, bytes: &[u8]) -> Result<bool, (String, String)> {
        T::decode(hash, bytes)
            .map(|_| true)
            .map_err(|e| (format!("decode:{}", e.class()), e.to_string()))
    }
    match kind {
        "manifest" => check::<Manifest>(hash, bytes),
        "genesis" => check::<Genesis>(hash, bytes),
        "schema" => check::<Schema>(hash, bytes),
        "spatial-index" => check::<SpatialIndexObject>(hash, bytes),
        "vector-compressor" => check::<VectorCompressorObject>(hash, bytes),
        "spatial-bucket" => check::<SpatialBucket>(hash, bytes),
        "vector-storage" => check::<VectorStorage>(hash, bytes),
        "scalar-bucket" => check::<ScalarBucket>(hash, bytes),
        "blob-segment" => check::<BlobSegment>(hash, bytes),
        "fragment" => check::<Fragment>(hash, bytes),
        "item-manifest" => check::<ItemManifest>(hash, bytes),
        "tombstones" => check::<TombstoneList>(hash, bytes),
        "cell-stats" => check::<CellStats>(hash, bytes),
        "ref" => check::<RefObject>(hash, bytes),
        INDEX_PAGE_KIND => IndexPage::decode(bytes)
            .map(|_| true)
            .map_err(|e| ("decode:index-page".to_owned(), e.to_string())),
        _ => Ok(false),
    }
}
