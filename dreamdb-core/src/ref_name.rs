//! Names of refs (branches) and tags.
//!
//! A [`RefName`] names a mutable branch (`refs/…`) or a create-once tag
//! (`tags/…`). Names appear in `dreamdb://` addresses, in object-store keys
//! and on command lines, so the grammar is deliberately narrow: every valid
//! name is safe as a path suffix and a URI path without any escaping, and
//! has exactly one spelling.
//!
//! Grammar: 1 to 255 bytes of `/`-separated segments; each segment is
//! non-empty, uses only ASCII `[A-Za-z0-9._-]`, does not start or end with
//! `.`, does not contain `..` and does not end with `.lock` (the suffix lock
//! files use). So `main`, `v1.0`, `sweep/run-001` and `users/alice/exp_3`
//! are names; `..`, `a//b`, `/a`, `a/`, `a b` and `é` are not.
//!
//! [`RefName::matches_glob`] implements the shell-style patterns used by
//! commands such as `sweep-summarize --pattern 'sweep/*'`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest allowed name, in bytes.
pub const MAX_REF_NAME_LEN: usize = 255;

/// Which rule a would-be ref name broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefNameRule {
    /// The name is empty.
    Empty,
    /// The name is longer than 255 bytes.
    TooLong,
    /// Leading, trailing or doubled `/`.
    EmptySegment,
    /// A character outside ASCII `[A-Za-z0-9._-]` (and `/` between segments).
    BadCharacter,
    /// A segment starts with `.`.
    LeadingDot,
    /// A segment ends with `.`.
    TrailingDot,
    /// A segment contains `..`.
    DoubleDot,
    /// A segment ends with `.lock`.
    LockSuffix,
}

impl RefNameRule {
    /// A stable kebab-case identifier of the rule, used by the conformance
    /// vectors.
    pub fn class(&self) -> &'static str {
        match self {
            RefNameRule::Empty => "empty",
            RefNameRule::TooLong => "too-long",
            RefNameRule::EmptySegment => "empty-segment",
            RefNameRule::BadCharacter => "bad-character",
            RefNameRule::LeadingDot => "leading-dot",
            RefNameRule::TrailingDot => "trailing-dot",
            RefNameRule::DoubleDot => "double-dot",
            RefNameRule::LockSuffix => "lock-suffix",
        }
    }
}

impl fmt::Display for RefNameRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefNameRule::Empty => "the name is empty",
            RefNameRule::TooLong => "the name is longer than 255 bytes",
            RefNameRule::EmptySegment => "a segment is empty (leading, trailing or doubled '/')",
            RefNameRule::BadCharacter => {
                "only ASCII letters, digits, '.', '_', '-' and '/' are allowed"
            }
            RefNameRule::LeadingDot => "a segment starts with '.'",
            RefNameRule::TrailingDot => "a segment ends with '.'",
            RefNameRule::DoubleDot => "a segment contains '..'",
            RefNameRule::LockSuffix => "a segment ends with '.lock'",
        })
    }
}

/// A string that is not a valid [`RefName`], and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ref name {name:?}: {reason}")]
pub struct RefError {
    /// The text that was refused.
    pub name: String,
    /// The rule it broke (the first one found, scanning left to right).
    pub reason: RefNameRule,
}

impl RefError {
    /// A stable kebab-case identifier of the error, used by the conformance
    /// vectors (see [`RefNameRule::class`]).
    pub fn class(&self) -> &'static str {
        self.reason.class()
    }
}

/// The name of a ref (branch) or tag; valid by construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefName(String);

fn check_segment(segment: &str) -> Result<(), RefNameRule> {
    if segment.is_empty() {
        return Err(RefNameRule::EmptySegment);
    }
    if !segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(RefNameRule::BadCharacter);
    }
    if segment.starts_with('.') {
        return Err(RefNameRule::LeadingDot);
    }
    if segment.contains("..") {
        return Err(RefNameRule::DoubleDot);
    }
    if segment.ends_with('.') {
        return Err(RefNameRule::TrailingDot);
    }
    if segment.ends_with(".lock") {
        return Err(RefNameRule::LockSuffix);
    }
    Ok(())
}

fn check(name: &str) -> Result<(), RefNameRule> {
    if name.is_empty() {
        return Err(RefNameRule::Empty);
    }
    if name.len() > MAX_REF_NAME_LEN {
        return Err(RefNameRule::TooLong);
    }
    // Report a bad character before structural problems so that, e.g.,
    // "a b/" is blamed on the space.
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
    {
        return Err(RefNameRule::BadCharacter);
    }
    name.split('/').try_for_each(check_segment)
}

/// Matches one segment against one pattern segment: `*` is any run of
/// bytes, `?` exactly one byte, everything else itself. Dynamic programming
/// over (pattern, text) prefixes: O(|pattern| × |text|), no recursion.
fn segment_matches(pattern: &[u8], text: &[u8]) -> bool {
    // row[j]: does the pattern prefix processed so far match text[..j]?
    let mut row = vec![false; text.len() + 1];
    row[0] = true;
    for &p in pattern {
        let mut next = vec![false; text.len() + 1];
        match p {
            b'*' => {
                let mut any = false;
                for j in 0..=text.len() {
                    any |= row[j];
                    next[j] = any;
                }
            }
            _ => {
                for j in 1..=text.len() {
                    next[j] = row[j - 1] && (p == b'?' || p == text[j - 1]);
                }
            }
        }
        row = next;
    }
    row[text.len()]
}

impl RefName {
    /// Parses and validates a name.
    pub fn parse(name: &str) -> Result<RefName, RefError> {
        check(name).map_err(|reason| RefError {
            name: name.to_owned(),
            reason,
        })?;
        Ok(RefName(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated segments, in order (never empty).
    pub fn segments(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.split('/')
    }

    /// Whether the name matches a shell-style pattern: `*` matches any run
    /// of characters (possibly none) within one segment, `?` exactly one
    /// character other than `/`, and every other character itself. `*`
    /// never crosses `/`, so `sweep/*` matches `sweep/run-001` but not
    /// `sweep/a/b`, and `**` means the same as `*`. There are no character
    /// classes or escapes (ref names cannot contain `*`, `?` or `[`).
    pub fn matches_glob(&self, pattern: &str) -> bool {
        let mut pattern_segments = pattern.split('/');
        let mut name_segments = self.0.split('/');
        loop {
            match (pattern_segments.next(), name_segments.next()) {
                (None, None) => return true,
                (Some(p), Some(n)) => {
                    if !segment_matches(p.as_bytes(), n.as_bytes()) {
                        return false;
                    }
                }
                _ => return false,
            }
        }
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RefName {
    type Err = RefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RefName::parse(s)
    }
}

impl TryFrom<String> for RefName {
    type Error = RefError;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        match check(&name) {
            Ok(()) => Ok(RefName(name)),
            Err(reason) => Err(RefError { name, reason }),
        }
    }
}

impl From<RefName> for String {
    fn from(name: RefName) -> String {
        name.0
    }
}

impl AsRef<str> for RefName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for RefName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RefName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        RefName::try_from(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_dp_basics() {
        assert!(segment_matches(b"*", b""));
        assert!(segment_matches(b"a*c", b"abbbc"));
        assert!(!segment_matches(b"a*c", b"abbb"));
        assert!(segment_matches(b"?b*", b"abc"));
        assert!(!segment_matches(b"?", b""));
        assert!(segment_matches(b"", b""));
        assert!(!segment_matches(b"", b"a"));
    }
}
