//! `track` vectors: track keys and index pages (spec/0007, "Index Pages and
//! the track B-tree").
//!
//! - `case: "anchor-run-key"` (`first_anchor`, `segment`, `bytes`) and
//!   `case: "cell-run-key"` (`cell`, `segment`, `bytes`): building the key
//!   gives `bytes`, and parsing `bytes` gives the fields back.
//! - `case: "page"`, `valid: true` (`bytes`, `level`, `items`, `count`,
//!   `first_key`, `links`): the strict decoder accepts the page, it
//!   re-encodes to `bytes` exactly, and its level, item count, declared
//!   entry count, first key and links (every tag-65521 hash, in order) are
//!   as given.
//! - `case: "page"`, `valid: false` (`bytes`, `error`): the strict decoder
//!   refuses the page with the problem class `error`.
//! - `case: "root"`, `valid: true` (`bytes`, `form`, `height`, `count`,
//!   `page`, `links`): a track root as a Manifest holds it (T4) decodes
//!   strictly, re-encodes to `bytes`, and has this form (`inline`,
//!   `held` — the root page in the Manifest — or `stored`), height, entry
//!   count, root page name (for a held page, the hash its canonical bytes
//!   would have; empty for inline) and links.
//! - `case: "root"`, `valid: false` (`bytes`, `error`): the root is refused
//!   with the error class `error`.

use dreamdb_core::cbor;
use dreamdb_core::ContentHash;
use dreamdb_protocol::store::links;
use dreamdb_protocol::track::{IndexPage, TrackKey, TrackKeyKind, TrackRoot};

use crate::{expect_eq, fields, Vector};

fn hash_field(vector: &Vector, name: &str) -> Result<ContentHash, String> {
    ContentHash::from_hex(fields::str(vector, name)?).map_err(|e| format!("field {name:?}: {e}"))
}

pub(crate) fn check(vector: &Vector) -> Result<(), String> {
    let bytes = fields::hex(vector, "bytes")?;
    match fields::str(vector, "case")? {
        "anchor-run-key" => {
            let first_anchor = fields::u64(vector, "first_anchor")?;
            let segment = hash_field(vector, "segment")?;
            let key = TrackKey::anchor_run(first_anchor, &segment);
            expect_eq("key bytes", bytes.clone(), key.as_bytes().to_vec())?;
            let parsed = TrackKey::from_bytes(&bytes).map_err(|e| e.to_string())?;
            expect_eq(
                "parsed key",
                TrackKeyKind::AnchorRun {
                    first_anchor,
                    segment,
                },
                parsed.kind(),
            )
        }
        "cell-run-key" => {
            let cell = u32::try_from(fields::u64(vector, "cell")?)
                .map_err(|_| "field \"cell\" must fit in u32".to_owned())?;
            let segment = hash_field(vector, "segment")?;
            let key = TrackKey::cell_run(cell, &segment);
            expect_eq("key bytes", bytes.clone(), key.as_bytes().to_vec())?;
            let parsed = TrackKey::from_bytes(&bytes).map_err(|e| e.to_string())?;
            expect_eq(
                "parsed key",
                TrackKeyKind::CellRun { cell, segment },
                parsed.kind(),
            )
        }
        "page" => super::expect_outcome(
            vector,
            IndexPage::decode(&bytes),
            |e| e.class(),
            |page| check_page(vector, &bytes, &page),
        ),
        "root" => {
            let root = cbor::decode_value(&bytes)
                .map_err(|e| format!("cbor:{}", e.class()))
                .and_then(|v| TrackRoot::from_value(&v).map_err(|e| e.class()));
            super::expect_outcome(vector, root, String::clone, |root| {
                check_root(vector, &bytes, &root)
            })
        }
        other => Err(format!("unknown track case {other:?}")),
    }
}

fn check_root(vector: &Vector, bytes: &[u8], root: &TrackRoot) -> Result<(), String> {
    let encoded = cbor::to_vec(root).map_err(|e| e.to_string())?;
    expect_eq("re-encoding", bytes.to_vec(), encoded)?;
    let (form, page) = match root {
        TrackRoot::Inline { .. } => ("inline", String::new()),
        TrackRoot::Paged { page, top, .. } => {
            (if top.is_some() { "held" } else { "stored" }, page.to_hex())
        }
    };
    expect_eq("form", fields::str(vector, "form")?, form)?;
    expect_eq(
        "height",
        fields::u64(vector, "height")?,
        u64::from(root.height()),
    )?;
    expect_eq("count", fields::u64(vector, "count")?, root.count())?;
    expect_eq("page", fields::str(vector, "page")?, page.as_str())?;
    expect_links(vector, bytes)
}

fn expect_links(vector: &Vector, bytes: &[u8]) -> Result<(), String> {
    let expected_links: Vec<String> = fields::get(vector, "links")?
        .as_array()
        .ok_or("field \"links\" must be an array")?
        .iter()
        .map(|v| v.as_str().map(str::to_owned).ok_or("links must be strings"))
        .collect::<Result<_, _>>()?;
    let value = cbor::decode_value(bytes).map_err(|e| e.to_string())?;
    let actual: Vec<String> = links(&value).iter().map(ContentHash::to_hex).collect();
    expect_eq("links", expected_links, actual)
}

fn check_page(vector: &Vector, bytes: &[u8], page: &IndexPage) -> Result<(), String> {
    expect_eq("re-encoding", bytes.to_vec(), page.encode())?;
    expect_eq(
        "level",
        fields::u64(vector, "level")?,
        u64::from(page.level()),
    )?;
    expect_eq("items", fields::u64(vector, "items")?, page.len() as u64)?;
    expect_eq("count", Some(fields::u64(vector, "count")?), page.count())?;
    let first = fields::hex(vector, "first_key")?;
    expect_eq(
        "first key",
        Some(first),
        page.first_key().map(|k| k.as_bytes().to_vec()),
    )?;
    expect_links(vector, bytes)
}
