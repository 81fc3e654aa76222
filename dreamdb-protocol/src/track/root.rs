//! The root of a track, as a Manifest holds it: inline entries, a root
//! page held in the Manifest, or a stored root page.
//!
//! ```text
//! inline:   {"entries": [[key bytes, value], ...]}
//! embedded: {"children": [[first key bytes, child hash, count], ...], "count": n, "height": h}
//! stored:   {"count": n, "height": h, "page": hash}
//! ```
//!
//! A track is inline exactly when its entries encode (as the CBOR array
//! above) in at most [`super::TrackConfig::inline_max_bytes`]; `apply`
//! keeps that rule in both directions, so the form depends only on the
//! entries, not on the history. `height` counts page levels (1 = the root
//! is a leaf), `count` is the number of entries, checked against the pages
//! whenever they are walked.
//!
//! **Embedded roots** (design 0006): when the root page is internal, a
//! writer keeps its children in the Manifest instead of storing the page.
//! The Manifest is rewritten by every commit anyway, so this saves one
//! object per commit, and a reader holding the Manifest knows the second
//! level's pages without another round trip. The embedded page still has
//! a name: the hash its canonical `index-page` bytes would have
//! ([`TrackRoot::Paged::page`]), under which walks and diffs treat it like
//! any page (equal names, equal subtrees); that name is never stored or
//! fetched. Readers accept both paged forms.

use std::sync::Arc;

use ciborium::value::Value;
use dreamdb_core::ContentHash;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::enc;
use super::error::TrackError;
use super::page::{read_entry, IndexPage, TrackEntry, INDEX_PAGE_KIND, INDEX_PAGE_VERSION};
use super::MAX_HEIGHT;

/// Where a track's entries are: inline in the Manifest, or in a B-tree of
/// index pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackRoot {
    /// Few entries: held directly, sorted and unique.
    Inline {
        /// The entries.
        entries: Vec<TrackEntry>,
    },
    /// Many entries: the root page of a B-tree.
    Paged {
        /// The root page's name: the hash of its canonical bytes (stored
        /// under it unless `top` holds the page).
        page: ContentHash,
        /// Page levels, 1 (the root is a leaf) ..= [`MAX_HEIGHT`].
        height: u8,
        /// Entries in the tree.
        count: u64,
        /// The root page itself when the Manifest holds it (an internal
        /// page); `None` when it is a stored object.
        top: Option<Arc<IndexPage>>,
    },
}

impl Default for TrackRoot {
    fn default() -> Self {
        Self::empty()
    }
}

impl TrackRoot {
    /// The empty track.
    pub fn empty() -> Self {
        TrackRoot::Inline {
            entries: Vec::new(),
        }
    }

    /// Number of entries.
    pub fn count(&self) -> u64 {
        match self {
            TrackRoot::Inline { entries } => entries.len() as u64,
            TrackRoot::Paged { count, .. } => *count,
        }
    }

    /// Whether the track has no entries.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Page levels: 0 for an inline track.
    pub fn height(&self) -> u8 {
        match self {
            TrackRoot::Inline { .. } => 0,
            TrackRoot::Paged { height, .. } => *height,
        }
    }

    /// Whether the track is paged.
    pub fn is_paged(&self) -> bool {
        matches!(self, TrackRoot::Paged { .. })
    }

    /// A paged root whose (internal) root page the Manifest holds; its
    /// name is the hash of the page's canonical bytes.
    pub fn embedded(page: IndexPage) -> Result<Self, TrackError> {
        let count = page
            .count()
            .ok_or_else(|| TrackError::InvalidRoot("the root's entry count overflows".into()))?;
        let height = page.level().saturating_add(1);
        let root = TrackRoot::Paged {
            page: ContentHash::of(&page.encode()),
            height,
            count,
            top: Some(Arc::new(page)),
        };
        root.validate()?;
        Ok(root)
    }

    /// A paged root whose root page is the stored object `page`.
    pub fn stored(page: ContentHash, height: u8, count: u64) -> Self {
        TrackRoot::Paged {
            page,
            height,
            count,
            top: None,
        }
    }

    /// The root page as a stored object to read, if it is one (`None` for
    /// an inline track or a root page the Manifest holds).
    pub fn stored_page(&self) -> Option<ContentHash> {
        match self {
            TrackRoot::Paged {
                page, top: None, ..
            } => Some(*page),
            _ => None,
        }
    }

    /// The root page the Manifest holds, if any.
    pub fn top(&self) -> Option<&Arc<IndexPage>> {
        match self {
            TrackRoot::Paged { top, .. } => top.as_ref(),
            TrackRoot::Inline { .. } => None,
        }
    }

    /// Checks what the root can say about itself: inline entries sorted,
    /// unique and consistent; a paged root's height in range and count at
    /// least 1.
    pub fn validate(&self) -> Result<(), TrackError> {
        match self {
            TrackRoot::Inline { entries } => {
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 && entries[i - 1].0 >= *k {
                        return Err(TrackError::InvalidRoot(format!(
                            "inline entries not strictly increasing at {i}"
                        )));
                    }
                    v.check_key(k)
                        .map_err(|reason| TrackError::InvalidEntry { key: *k, reason })?;
                }
                Ok(())
            }
            TrackRoot::Paged {
                height, count, top, ..
            } => {
                if *height == 0 || *height > MAX_HEIGHT {
                    return Err(TrackError::InvalidRoot(format!(
                        "height {height} is outside 1..={MAX_HEIGHT}"
                    )));
                }
                if *count == 0 {
                    return Err(TrackError::InvalidRoot(
                        "a paged track has at least one entry".to_owned(),
                    ));
                }
                if let Some(page) = top {
                    if !matches!(**page, IndexPage::Internal { .. }) || *height < 2 {
                        return Err(TrackError::InvalidRoot(
                            "a root page held in the Manifest is internal (height at least 2)"
                                .to_owned(),
                        ));
                    }
                    if page.level() + 1 != *height {
                        return Err(TrackError::InvalidRoot(format!(
                            "the held root page is at level {} under height {height}",
                            page.level()
                        )));
                    }
                    if page.count() != Some(*count) {
                        return Err(TrackError::InvalidRoot(format!(
                            "the held root page's children count {:?} entries, the root {count}",
                            page.count()
                        )));
                    }
                }
                Ok(())
            }
        }
    }

    /// The root as a CBOR value tree.
    pub fn to_value(&self) -> Value {
        let t = |s: &str| Value::Text(s.to_owned());
        match self {
            TrackRoot::Inline { entries } => Value::Map(vec![(
                t("entries"),
                Value::Array(
                    entries
                        .iter()
                        .map(|(k, v)| {
                            Value::Array(vec![Value::Bytes(k.as_bytes().to_vec()), v.to_value()])
                        })
                        .collect(),
                ),
            )]),
            TrackRoot::Paged {
                top: Some(page),
                height,
                count,
                ..
            } => {
                let children = match page.to_value() {
                    Value::Map(fields) => fields
                        .into_iter()
                        .find(|(k, _)| matches!(k, Value::Text(n) if n == "children"))
                        .map(|(_, v)| v),
                    _ => None,
                };
                Value::Map(vec![
                    (t("children"), children.unwrap_or(Value::Array(Vec::new()))),
                    (t("count"), enc::uint_value(*count)),
                    (t("height"), enc::uint_value(u64::from(*height))),
                ])
            }
            TrackRoot::Paged {
                page,
                height,
                count,
                top: None,
            } => Value::Map(vec![
                (t("count"), enc::uint_value(*count)),
                (t("height"), enc::uint_value(u64::from(*height))),
                (t("page"), enc::hash_value(page)),
            ]),
        }
    }

    /// Reads a root from a CBOR value tree, strictly (see
    /// [`TrackRoot::validate`]).
    pub fn from_value(value: &Value) -> Result<Self, TrackError> {
        let bad = |s: String| TrackError::InvalidRoot(s);
        let t = |s: &str| Value::Text(s.to_owned());
        let Value::Map(fields) = value else {
            return Err(bad("a track root is a map".to_owned()));
        };
        let mut names = Vec::with_capacity(fields.len());
        for (k, _) in fields {
            names.push(enc::read_text_key(k).map_err(bad)?);
        }
        let field = |name: &str| {
            fields
                .iter()
                .zip(&names)
                .find(|(_, n)| **n == name)
                .map(|((_, v), _)| v)
        };
        let mut sorted = names.clone();
        sorted.sort_unstable();
        let root = match sorted.as_slice() {
            ["entries"] => {
                let Some(Value::Array(items)) = field("entries") else {
                    return Err(bad("inline entries must be an array".to_owned()));
                };
                let entries = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| read_entry(item).map_err(|e| bad(format!("entry {i}: {e}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                TrackRoot::Inline { entries }
            }
            ["count", "height", "page"] => {
                let need = |name: &str| field(name).ok_or_else(|| bad(format!("missing {name}")));
                let count = enc::read_uint(need("count")?).map_err(bad)?;
                let height = enc::read_uint(need("height")?).map_err(bad)?;
                let page = enc::read_hash(need("page")?).map_err(bad)?;
                let height = u8::try_from(height)
                    .map_err(|_| bad(format!("height {height} is outside 1..={MAX_HEIGHT}")))?;
                TrackRoot::stored(page, height, count)
            }
            ["children", "count", "height"] => {
                let need = |name: &str| field(name).ok_or_else(|| bad(format!("missing {name}")));
                let count = enc::read_uint(need("count")?).map_err(bad)?;
                let height = enc::read_uint(need("height")?).map_err(bad)?;
                if !(2..=u64::from(MAX_HEIGHT)).contains(&height) {
                    return Err(bad(format!(
                        "a held root page's height {height} is outside 2..={MAX_HEIGHT}"
                    )));
                }
                // The children are read as the page they are, by the page's
                // own strict rules (sorted, valid keys, counts at least 1).
                let page = IndexPage::from_value(&Value::Map(vec![
                    (t("v"), enc::uint_value(INDEX_PAGE_VERSION)),
                    (t("kind"), t(INDEX_PAGE_KIND)),
                    (t("level"), enc::uint_value(height - 1)),
                    (t("children"), need("children")?.clone()),
                ]))
                .map_err(|e| bad(format!("held root page: {e}")))?;
                let root = TrackRoot::embedded(page)?;
                if root.count() != count {
                    return Err(bad(format!(
                        "the root declares {count} entries, its children {}",
                        root.count()
                    )));
                }
                root
            }
            _ => {
                return Err(bad(
                    "a track root has the keys [entries], [children, count, height] or [count, height, page]"
                        .to_owned(),
                ))
            }
        };
        root.validate()?;
        Ok(root)
    }
}

impl Serialize for TrackRoot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TrackRoot {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        TrackRoot::from_value(&value).map_err(D::Error::custom)
    }
}
