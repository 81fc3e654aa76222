//! Modality tags: what kind of data a record or index holds.
//!
//! A [`ModalityTag`] is a lowercase, dot-separated name such as
//! `dreamdb.embedding` or `com.example.lidar`. Tags in the `dreamdb.`
//! namespace are built in (reserved for DreamDB itself); every other tag is
//! user-defined and must be reverse-DNS under a domain its author controls,
//! with at least three segments, so independent users never collide.
//!
//! Grammar: at least two `.`-separated segments, at most 255 bytes in all;
//! each segment matches `[a-z][a-z0-9_-]{0,62}`. A tag has exactly one
//! spelling (no uppercase, no empty segments).
//!
//! Encodings: a string in human-readable serde formats (JSON), and in CBOR
//! the text string wrapped in tag 65523 ([`crate::cbor::TAG_MODALITY`]), so
//! modality tags can be found in any object without knowing its schema.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cbor::TAG_MODALITY;

/// Longest allowed tag, in bytes.
pub const MAX_MODALITY_LEN: usize = 255;
/// Longest allowed segment, in bytes.
pub const MAX_SEGMENT_LEN: usize = 63;
/// The first segment of every built-in tag.
pub const BUILTIN_NAMESPACE: &str = "dreamdb";

/// Which rule a would-be modality tag broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ModalityRule {
    /// The tag is empty.
    Empty,
    /// The tag is longer than 255 bytes.
    TooLong,
    /// Leading, trailing or doubled `.`.
    EmptySegment,
    /// A segment longer than 63 bytes.
    SegmentTooLong,
    /// A segment does not start with a lowercase ASCII letter.
    BadSegmentStart,
    /// A character outside `[a-z0-9_-]` (and `.` between segments).
    BadCharacter,
    /// Fewer than two segments.
    TooFewSegments,
    /// A user-defined tag (not `dreamdb.…`) with fewer than three segments,
    /// so not reverse-DNS.
    NotReverseDns,
}

impl ModalityRule {
    /// A stable kebab-case identifier of the rule, used by the conformance
    /// vectors.
    pub fn class(&self) -> &'static str {
        match self {
            ModalityRule::Empty => "empty",
            ModalityRule::TooLong => "too-long",
            ModalityRule::EmptySegment => "empty-segment",
            ModalityRule::SegmentTooLong => "segment-too-long",
            ModalityRule::BadSegmentStart => "bad-segment-start",
            ModalityRule::BadCharacter => "bad-character",
            ModalityRule::TooFewSegments => "too-few-segments",
            ModalityRule::NotReverseDns => "not-reverse-dns",
        }
    }
}

impl fmt::Display for ModalityRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModalityRule::Empty => "the tag is empty",
            ModalityRule::TooLong => "the tag is longer than 255 bytes",
            ModalityRule::EmptySegment => "a segment is empty (leading, trailing or doubled '.')",
            ModalityRule::SegmentTooLong => "a segment is longer than 63 bytes",
            ModalityRule::BadSegmentStart => "a segment does not start with a letter a-z",
            ModalityRule::BadCharacter => "only a-z, 0-9, '_', '-' and '.' are allowed",
            ModalityRule::TooFewSegments => "a tag needs at least two segments",
            ModalityRule::NotReverseDns => {
                "a user-defined tag must be reverse-DNS with at least three segments"
            }
        })
    }
}

/// A string that is not a valid [`ModalityTag`], and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid modality tag {tag:?}: {reason}")]
pub struct ModalityError {
    /// The text that was refused.
    pub tag: String,
    /// The rule it broke (the first one found).
    pub reason: ModalityRule,
}

impl ModalityError {
    /// A stable kebab-case identifier of the error, used by the conformance
    /// vectors (see [`ModalityRule::class`]).
    pub fn class(&self) -> &'static str {
        self.reason.class()
    }
}

/// A modality tag; valid by construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModalityTag(Cow<'static, str>);

fn check(tag: &str) -> Result<(), ModalityRule> {
    if tag.is_empty() {
        return Err(ModalityRule::Empty);
    }
    if tag.len() > MAX_MODALITY_LEN {
        return Err(ModalityRule::TooLong);
    }
    if !tag
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.'))
    {
        return Err(ModalityRule::BadCharacter);
    }
    let mut count = 0usize;
    for segment in tag.split('.') {
        count += 1;
        let Some(first) = segment.bytes().next() else {
            return Err(ModalityRule::EmptySegment);
        };
        if !first.is_ascii_lowercase() {
            return Err(ModalityRule::BadSegmentStart);
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return Err(ModalityRule::SegmentTooLong);
        }
    }
    if count < 2 {
        return Err(ModalityRule::TooFewSegments);
    }
    if !is_builtin_text(tag) && count < 3 {
        return Err(ModalityRule::NotReverseDns);
    }
    Ok(())
}

fn is_builtin_text(tag: &str) -> bool {
    tag.split('.').next() == Some(BUILTIN_NAMESPACE)
}

impl ModalityTag {
    /// `dreamdb.embedding`: dense embedding vectors.
    pub const EMBEDDING: ModalityTag = ModalityTag(Cow::Borrowed("dreamdb.embedding"));
    /// `dreamdb.ivf-cosine`: an IVF index under cosine similarity.
    pub const IVF_COSINE: ModalityTag = ModalityTag(Cow::Borrowed("dreamdb.ivf-cosine"));
    /// `dreamdb.lsh-cosine`: an LSH index under cosine similarity.
    pub const LSH_COSINE: ModalityTag = ModalityTag(Cow::Borrowed("dreamdb.lsh-cosine"));
    /// `dreamdb.rabitq`: a RaBitQ quantized index.
    pub const RABITQ: ModalityTag = ModalityTag(Cow::Borrowed("dreamdb.rabitq"));
    /// `dreamdb.tombstones`: deletion markers.
    pub const TOMBSTONES: ModalityTag = ModalityTag(Cow::Borrowed("dreamdb.tombstones"));
    /// `dreamdb.recommendations`: recommendation records.
    pub const RECOMMENDATIONS: ModalityTag = ModalityTag(Cow::Borrowed("dreamdb.recommendations"));

    /// Parses and validates a tag.
    pub fn parse(tag: &str) -> Result<ModalityTag, ModalityError> {
        check(tag).map_err(|reason| ModalityError {
            tag: tag.to_owned(),
            reason,
        })?;
        Ok(ModalityTag(Cow::Owned(tag.to_owned())))
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the tag is in the reserved `dreamdb.` namespace.
    pub fn is_builtin(&self) -> bool {
        is_builtin_text(&self.0)
    }

    /// The `.`-separated segments, in order (at least two).
    pub fn segments(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.split('.')
    }
}

impl fmt::Display for ModalityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ModalityTag {
    type Err = ModalityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModalityTag::parse(s)
    }
}

impl TryFrom<String> for ModalityTag {
    type Error = ModalityError;
    fn try_from(tag: String) -> Result<Self, Self::Error> {
        match check(&tag) {
            Ok(()) => Ok(ModalityTag(Cow::Owned(tag))),
            Err(reason) => Err(ModalityError { tag, reason }),
        }
    }
}

impl AsRef<str> for ModalityTag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for ModalityTag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.0)
        } else {
            ciborium::tag::Required::<&str, TAG_MODALITY>(&self.0).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for ModalityTag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = if deserializer.is_human_readable() {
            String::deserialize(deserializer)?
        } else {
            ciborium::tag::Required::<String, TAG_MODALITY>::deserialize(deserializer)?.0
        };
        ModalityTag::try_from(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_constants_are_valid() {
        for tag in [
            ModalityTag::EMBEDDING,
            ModalityTag::IVF_COSINE,
            ModalityTag::LSH_COSINE,
            ModalityTag::RABITQ,
            ModalityTag::TOMBSTONES,
            ModalityTag::RECOMMENDATIONS,
        ] {
            assert_eq!(ModalityTag::parse(tag.as_str()), Ok(tag.clone()));
            assert!(tag.is_builtin());
        }
    }
}
