//! Types and checks shared by several kinds: metrics, dataset names, field
//! names, MIME types, dimensions, and little-endian number arrays.

use std::fmt;

use dreamdb_core::modality::ModalityTag;
use dreamdb_core::ref_name::RefName;
use serde::{Deserialize, Serialize};

use super::error::Invariant;

/// The largest vector dimension any object accepts (2^16).
pub const MAX_DIM: u32 = 1 << 16;

/// The longest field name, in bytes.
pub const MAX_FIELD_NAME_LEN: usize = 64;

/// The longest MIME type, in bytes.
pub const MAX_MIME_LEN: usize = 255;

/// How closeness of vectors is measured. Stored as text: `cosine`, `l2`
/// or `ip` (the same spelling as `crate::spatial`'s metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Metric {
    /// Cosine distance on unit-normalised vectors.
    #[serde(rename = "cosine")]
    Cosine,
    /// Squared Euclidean distance.
    #[serde(rename = "l2")]
    L2,
    /// Negated inner product.
    #[serde(rename = "ip")]
    InnerProduct,
}

/// The name of a dataset: the `<dataset>` segment of
/// `datasets/<dataset>/refs/...` keys, and the `dataset` of its Genesis.
///
/// Grammar: one segment of a ref name (spec/0002 §7): 1 to 255 bytes of
/// ASCII letters, digits, `.`, `_` and `-`; not beginning or ending with
/// `.`, no `..`, not ending with `.lock`. So a dataset name is always a safe
/// single storage-key segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetName(String);

/// Why text is not a [`DatasetName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid dataset name {name:?}: {reason}")]
pub struct DatasetNameError {
    /// The text given.
    pub name: String,
    /// What is wrong.
    pub reason: String,
}

impl DatasetName {
    /// Validates `name`.
    pub fn parse(name: &str) -> Result<Self, DatasetNameError> {
        let fail = |reason: String| DatasetNameError {
            name: name.to_owned(),
            reason,
        };
        if name.contains('/') {
            return Err(fail("a dataset name is one segment: no '/'".to_owned()));
        }
        RefName::parse(name).map_err(|e| fail(e.to_string()))?;
        Ok(DatasetName(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a vector dimension: 1 ..= [`MAX_DIM`].
pub(crate) fn check_dim(dim: u32) -> Result<(), Invariant> {
    if dim == 0 || dim > MAX_DIM {
        return Err(Invariant::new(
            "dim-range",
            format!("dim must be in 1..={MAX_DIM}, got {dim}"),
        ));
    }
    Ok(())
}

/// Checks a field name: `[a-z_][a-z0-9_]*`, 1 to 64 bytes.
pub(crate) fn check_field_name(name: &str) -> Result<(), Invariant> {
    let fail = |why: &str| Invariant::new("field-name", format!("field name {name:?}: {why}"));
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return Err(fail("must not be empty")),
        Some(b) if b.is_ascii_lowercase() || b == b'_' => {}
        Some(_) => return Err(fail("must start with a-z or _")),
    }
    if !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(fail("only a-z, 0-9 and _ are allowed"));
    }
    if name.len() > MAX_FIELD_NAME_LEN {
        return Err(fail("longer than 64 bytes"));
    }
    Ok(())
}

fn mime_token(token: &str) -> bool {
    let mut bytes = token.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(
                    b,
                    b'!' | b'#' | b'$' | b'&' | b'-' | b'^' | b'_' | b'.' | b'+'
                )
        })
}

/// Checks a MIME type: `type/subtype`, lowercase RFC 6838 restricted names,
/// no parameters, at most 255 bytes (one spelling per type).
pub(crate) fn check_mime(mime: &str) -> Result<(), Invariant> {
    let ok = mime.len() <= MAX_MIME_LEN
        && mime
            .split_once('/')
            .is_some_and(|(kind, sub)| mime_token(kind) && mime_token(sub));
    if ok {
        Ok(())
    } else {
        Err(Invariant::new(
            "mime",
            format!("{mime:?} is not a lowercase type/subtype MIME type without parameters"),
        ))
    }
}

/// Checks that text is a modality tag (spec/0002 §6).
pub(crate) fn check_tag_shaped(text: &str, rule: &'static str) -> Result<(), Invariant> {
    ModalityTag::parse(text)
        .map(drop)
        .map_err(|e| Invariant::new(rule, e.to_string()))
}

/// Checks that `items` are strictly ascending (sorted, no duplicates).
pub(crate) fn check_strictly_ascending<T: Ord + fmt::Debug>(
    items: &[T],
    rule: &'static str,
    what: &str,
) -> Result<(), Invariant> {
    match items.windows(2).position(|pair| pair[0] >= pair[1]) {
        None => Ok(()),
        Some(i) => Err(Invariant::new(
            rule,
            format!(
                "{what} must be strictly ascending; item {} ({:?}) is not below item {} ({:?})",
                i,
                items[i],
                i + 1,
                items[i + 1]
            ),
        )),
    }
}

/// Checks that `items` hold no duplicates (order is free).
pub(crate) fn check_unique<T: Ord + Clone + fmt::Debug>(
    items: &[T],
    rule: &'static str,
    what: &str,
) -> Result<(), Invariant> {
    let mut sorted = items.to_vec();
    sorted.sort();
    match sorted.windows(2).find(|pair| pair[0] == pair[1]) {
        None => Ok(()),
        Some(pair) => Err(Invariant::new(
            rule,
            format!("{what} must not repeat; {:?} appears twice", pair[0]),
        )),
    }
}

/// Reads a byte string as little-endian u64s, checking its length is a
/// multiple of 8.
pub(crate) fn le_u64s<'a>(
    bytes: &'a [u8],
    rule: &'static str,
    what: &str,
) -> Result<impl ExactSizeIterator<Item = u64> + 'a, Invariant> {
    if !bytes.len().is_multiple_of(8) {
        return Err(Invariant::new(
            rule,
            format!("{what}: {} bytes is not a multiple of 8", bytes.len()),
        ));
    }
    Ok(bytes.chunks_exact(8).map(|chunk| {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        u64::from_le_bytes(word)
    }))
}

/// Writes u64s as a little-endian byte string.
pub fn u64s_to_le(values: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 8);
    for value in values {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

/// Writes f32s as a little-endian byte string.
pub fn f32s_to_le(values: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 4);
    for value in values {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

/// Reads a little-endian u64 at `at` (the caller checked the bounds).
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    if let Some(slice) = bytes.get(at..at + 8) {
        word.copy_from_slice(slice);
    }
    u64::from_le_bytes(word)
}

/// Reads a little-endian f32 at `at` (the caller checked the bounds).
pub(crate) fn f32_at(bytes: &[u8], at: usize) -> f32 {
    let mut word = [0u8; 4];
    if let Some(slice) = bytes.get(at..at + 4) {
        word.copy_from_slice(slice);
    }
    f32::from_le_bytes(word)
}

/// A byte range inside an encoded object, `[offset, offset + len)`: what a
/// reader asks for with one ranged GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// Absolute offset of the first byte in the encoded object.
    pub offset: u64,
    /// Number of bytes.
    pub len: u64,
}

impl ByteRange {
    /// The first byte after the range.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.len)
    }

    /// The range as `usize` indices into the encoded bytes, if it fits.
    pub fn as_usize_range(&self) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(self.offset).ok()?;
        let end = usize::try_from(self.offset.checked_add(self.len)?).ok()?;
        Some(start..end)
    }
}
