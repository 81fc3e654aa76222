//! The `index-page` object: one node of a track's B-tree.
//!
//! ```text
//! leaf:     {"v": 1, "kind": "index-page", "level": 0,
//!            "entries":  [[key bytes, value], ...]}
//! internal: {"v": 1, "kind": "index-page", "level": L (1..=15),
//!            "children": [[first key bytes, child page hash, entry count], ...]}
//! ```
//!
//! (Shown in canonical key order: `v`, `kind`, `level`, then the items.)
//! Items are sorted strictly by key bytes. A child's first key is exactly
//! the first key stored under it, and its count is the number of entries
//! under it, so a reader can check each page against its parent as it
//! walks (see the `walk` module). Decoding here checks everything a page
//! can say about itself; the walk checks what needs the parent.

use ciborium::value::Value;
use dreamdb_core::cbor;
use dreamdb_core::ContentHash;

use super::enc;
use super::error::PageProblem;
use super::key::TrackKey;
use super::value::TrackValue;
use super::MAX_HEIGHT;

/// The `kind` of an index page.
pub const INDEX_PAGE_KIND: &str = "index-page";
/// The format version of index pages.
pub const INDEX_PAGE_VERSION: u64 = 1;

/// One track entry: a key and what it says about its run.
pub type TrackEntry = (TrackKey, TrackValue);

/// An upper bound on a page's encoding beyond its items: the map head, the
/// `v`, `kind` and `level` fields, the item-list key and its array head.
pub(crate) const PAGE_OVERHEAD: usize = 40;

/// The smallest encoded size of one entry (an anchor run with every
/// integer below 24): array head 1, key 2 + 41, value 1 + 5·2 + 38 + 4·1.
/// A track of `n` entries cannot be inline if `n · MIN_ENTRY_LEN` exceeds
/// the inline limit, which spares reading big trees to decide.
pub(crate) const MIN_ENTRY_LEN: usize = 97;

/// An internal page's reference to a child page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildRef {
    /// The first key stored under the child.
    pub first_key: TrackKey,
    /// The child page's hash.
    pub page: ContentHash,
    /// Entries stored under the child (at least 1).
    pub count: u64,
}

/// One node of a track's B-tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexPage {
    /// Level 0: entries.
    Leaf {
        /// Sorted, unique entries.
        entries: Vec<TrackEntry>,
    },
    /// Level 1 and above: references to pages one level down.
    Internal {
        /// The page's level (1 ..= [`MAX_HEIGHT`] - 1).
        level: u8,
        /// Sorted by first key, unique.
        children: Vec<ChildRef>,
    },
}

/// Encoded size of one leaf entry.
pub(crate) fn entry_len(key: &TrackKey, value: &TrackValue) -> usize {
    1 + enc::bytes_len(key.as_bytes().len()) + value.encoded_len()
}

/// Encoded size of one child reference.
pub(crate) fn child_len(child: &ChildRef) -> usize {
    1 + enc::bytes_len(child.first_key.as_bytes().len())
        + enc::HASH_LEN
        + enc::head_len(child.count)
}

/// Encoded size of an inline entry list (a CBOR array of entries).
pub fn inline_len(entries: &[TrackEntry]) -> usize {
    enc::head_len(entries.len() as u64)
        + entries.iter().map(|(k, v)| entry_len(k, v)).sum::<usize>()
}

pub(crate) fn encode_entry(out: &mut Vec<u8>, key: &TrackKey, value: &TrackValue) {
    enc::array(out, 2);
    enc::bytes(out, key.as_bytes());
    value.encode_into(out);
}

impl IndexPage {
    /// The page's level (0 for a leaf).
    pub fn level(&self) -> u8 {
        match self {
            IndexPage::Leaf { .. } => 0,
            IndexPage::Internal { level, .. } => *level,
        }
    }

    /// Number of items (entries or children).
    pub fn len(&self) -> usize {
        match self {
            IndexPage::Leaf { entries } => entries.len(),
            IndexPage::Internal { children, .. } => children.len(),
        }
    }

    /// Whether the page has no items (never true of a decoded page).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first key stored under the page.
    pub fn first_key(&self) -> Option<TrackKey> {
        match self {
            IndexPage::Leaf { entries } => entries.first().map(|(k, _)| *k),
            IndexPage::Internal { children, .. } => children.first().map(|c| c.first_key),
        }
    }

    /// The last key held by the page itself (for an internal page, the
    /// last child's first key).
    pub(crate) fn last_item_key(&self) -> Option<TrackKey> {
        match self {
            IndexPage::Leaf { entries } => entries.last().map(|(k, _)| *k),
            IndexPage::Internal { children, .. } => children.last().map(|c| c.first_key),
        }
    }

    /// Entries under the page as the page declares them (for an internal
    /// page the sum of its children's counts; `None` on overflow).
    pub fn count(&self) -> Option<u64> {
        match self {
            IndexPage::Leaf { entries } => Some(entries.len() as u64),
            IndexPage::Internal { children, .. } => children
                .iter()
                .try_fold(0u64, |sum, c| sum.checked_add(c.count)),
        }
    }

    /// Encoded size of the items (without the page overhead).
    pub(crate) fn items_len(&self) -> usize {
        match self {
            IndexPage::Leaf { entries } => entries.iter().map(|(k, v)| entry_len(k, v)).sum(),
            IndexPage::Internal { children, .. } => children.iter().map(child_len).sum(),
        }
    }

    /// The canonical CBOR bytes of the page.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.items_len() + PAGE_OVERHEAD);
        enc::map(&mut out, 4);
        enc::text(&mut out, "v");
        enc::uint(&mut out, INDEX_PAGE_VERSION);
        enc::text(&mut out, "kind");
        enc::text(&mut out, INDEX_PAGE_KIND);
        enc::text(&mut out, "level");
        enc::uint(&mut out, u64::from(self.level()));
        match self {
            IndexPage::Leaf { entries } => {
                enc::text(&mut out, "entries");
                enc::array(&mut out, entries.len());
                for (k, v) in entries {
                    encode_entry(&mut out, k, v);
                }
            }
            IndexPage::Internal { children, .. } => {
                enc::text(&mut out, "children");
                enc::array(&mut out, children.len());
                for c in children {
                    enc::array(&mut out, 3);
                    enc::bytes(&mut out, c.first_key.as_bytes());
                    enc::hash(&mut out, &c.page);
                    enc::uint(&mut out, c.count);
                }
            }
        }
        out
    }

    /// The page as a CBOR value tree (same content as [`IndexPage::encode`]).
    pub fn to_value(&self) -> Value {
        let t = |s: &str| Value::Text(s.to_owned());
        let items = match self {
            IndexPage::Leaf { entries } => (
                t("entries"),
                Value::Array(
                    entries
                        .iter()
                        .map(|(k, v)| {
                            Value::Array(vec![Value::Bytes(k.as_bytes().to_vec()), v.to_value()])
                        })
                        .collect(),
                ),
            ),
            IndexPage::Internal { children, .. } => (
                t("children"),
                Value::Array(
                    children
                        .iter()
                        .map(|c| {
                            Value::Array(vec![
                                Value::Bytes(c.first_key.as_bytes().to_vec()),
                                enc::hash_value(&c.page),
                                enc::uint_value(c.count),
                            ])
                        })
                        .collect(),
                ),
            ),
        };
        Value::Map(vec![
            (t("v"), enc::uint_value(INDEX_PAGE_VERSION)),
            (t("kind"), t(INDEX_PAGE_KIND)),
            (t("level"), enc::uint_value(u64::from(self.level()))),
            items,
        ])
    }

    /// Decodes a page strictly: canonical CBOR, the exact shape above,
    /// keys strictly increasing, every key and value valid and consistent,
    /// child counts at least 1, level below [`MAX_HEIGHT`].
    pub fn decode(bytes: &[u8]) -> Result<Self, PageProblem> {
        let value = cbor::decode_value(bytes).map_err(PageProblem::Cbor)?;
        Self::from_value(&value)
    }

    /// [`IndexPage::decode`] from a value tree.
    pub fn from_value(value: &Value) -> Result<Self, PageProblem> {
        let shape = |s: &str| PageProblem::Shape(s.to_owned());
        let Value::Map(fields) = value else {
            return Err(shape("an index page is a map"));
        };
        let (mut v, mut kind, mut level, mut entries, mut children) =
            (None, None, None, None, None);
        for (k, val) in fields {
            let name = enc::read_text_key(k).map_err(PageProblem::Shape)?;
            let slot = match name {
                "v" => &mut v,
                "kind" => &mut kind,
                "level" => &mut level,
                "entries" => &mut entries,
                "children" => &mut children,
                other => return Err(PageProblem::Shape(format!("unknown key {other:?}"))),
            };
            if slot.replace(val).is_some() {
                return Err(PageProblem::Shape(format!("duplicate key {name:?}")));
            }
        }
        match kind {
            Some(Value::Text(k)) if k == INDEX_PAGE_KIND => {}
            Some(_) => return Err(shape("kind is not \"index-page\"")),
            None => return Err(shape("missing key \"kind\"")),
        }
        let version = enc::read_uint(v.ok_or_else(|| shape("missing key \"v\""))?)
            .map_err(PageProblem::Shape)?;
        if version != INDEX_PAGE_VERSION {
            return Err(PageProblem::UnsupportedVersion(version));
        }
        let level = enc::read_uint(level.ok_or_else(|| shape("missing key \"level\""))?)
            .map_err(PageProblem::Shape)?;
        if level >= u64::from(MAX_HEIGHT) {
            return Err(PageProblem::TooDeep {
                level,
                limit: MAX_HEIGHT,
            });
        }
        let items = |v: &Value| match v {
            Value::Array(items) if items.is_empty() => Err(PageProblem::Empty),
            Value::Array(items) => Ok(items.len()),
            _ => Err(shape("items must be an array")),
        };
        match (level, entries, children) {
            (0, Some(list), None) => {
                items(list)?;
                let Value::Array(list) = list else {
                    return Err(shape("items must be an array"));
                };
                let mut out: Vec<TrackEntry> = Vec::with_capacity(list.len());
                for (index, item) in list.iter().enumerate() {
                    let entry = read_entry(item)
                        .map_err(|reason| PageProblem::InvalidItem { index, reason })?;
                    if out.last().is_some_and(|(prev, _)| *prev >= entry.0) {
                        return Err(PageProblem::UnsortedKeys { index });
                    }
                    out.push(entry);
                }
                Ok(IndexPage::Leaf { entries: out })
            }
            (1.., None, Some(list)) => {
                items(list)?;
                let Value::Array(list) = list else {
                    return Err(shape("items must be an array"));
                };
                let mut out: Vec<ChildRef> = Vec::with_capacity(list.len());
                for (index, item) in list.iter().enumerate() {
                    let child = read_child(item)
                        .map_err(|reason| PageProblem::InvalidItem { index, reason })?;
                    if out
                        .last()
                        .is_some_and(|prev| prev.first_key >= child.first_key)
                    {
                        return Err(PageProblem::UnsortedKeys { index });
                    }
                    out.push(child);
                }
                Ok(IndexPage::Internal {
                    // Checked against MAX_HEIGHT above.
                    level: level as u8,
                    children: out,
                })
            }
            (0, _, _) => Err(shape(
                "a leaf (level 0) has exactly the item key \"entries\"",
            )),
            _ => Err(shape(
                "an internal page (level >= 1) has exactly the item key \"children\"",
            )),
        }
    }
}

/// Reads one `[key bytes, value]` entry and checks the value fits the key.
pub(crate) fn read_entry(item: &Value) -> Result<TrackEntry, String> {
    let Value::Array(pair) = item else {
        return Err("an entry is a two-item array".to_owned());
    };
    let [Value::Bytes(key), value] = pair.as_slice() else {
        return Err("an entry is [key bytes, value]".to_owned());
    };
    let key = TrackKey::from_bytes(key).map_err(|e| e.to_string())?;
    let value = TrackValue::from_value(value)?;
    value.check_key(&key)?;
    Ok((key, value))
}

fn read_child(item: &Value) -> Result<ChildRef, String> {
    let Value::Array(triple) = item else {
        return Err("a child reference is a three-item array".to_owned());
    };
    let [Value::Bytes(key), page, count] = triple.as_slice() else {
        return Err("a child reference is [first key bytes, page hash, count]".to_owned());
    };
    let first_key = TrackKey::from_bytes(key).map_err(|e| e.to_string())?;
    let page = enc::read_hash(page)?;
    let count = enc::read_uint(count)?;
    if count == 0 {
        return Err("a child's entry count must be at least 1".to_owned());
    }
    Ok(ChildRef {
        first_key,
        page,
        count,
    })
}
