//! Validated object keys and listing prefixes.
//!
//! A key is a `/`-separated relative path. It must not be able to name
//! anything outside a backend's root, so the grammar is strict: segments are
//! non-empty, never `.` or `..`, and contain no control characters and no
//! backslash; the key does not start with `/`; it is at most 1,024 bytes.

use std::fmt;

/// The longest key accepted, in bytes (S3's limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// Why a key or prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid key {key:?}: {reason}")]
pub struct KeyError {
    /// The key as given.
    pub key: String,
    /// Which rule it broke.
    pub reason: &'static str,
}

fn check_segments(text: &str, allow_trailing_slash: bool) -> Result<(), &'static str> {
    if text.len() > MAX_KEY_BYTES {
        return Err("longer than 1024 bytes");
    }
    if text.starts_with('/') {
        return Err("absolute paths are not keys");
    }
    if text.chars().any(|c| c.is_control()) {
        return Err("control characters are not allowed");
    }
    if text.contains('\\') {
        return Err("backslashes are not allowed");
    }
    let body = match (allow_trailing_slash, text.strip_suffix('/')) {
        (true, Some(stripped)) => stripped,
        _ => text,
    };
    if body.is_empty() {
        return if allow_trailing_slash {
            Ok(())
        } else {
            Err("empty key")
        };
    }
    for segment in body.split('/') {
        match segment {
            "" => return Err("empty path segment"),
            "." | ".." => return Err("'.' and '..' segments are not allowed"),
            _ => {}
        }
    }
    Ok(())
}

/// A validated object key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Validates `key`.
    pub fn new(key: impl Into<String>) -> Result<Self, KeyError> {
        let key = key.into();
        if key.ends_with('/') {
            return Err(KeyError {
                key,
                reason: "a key cannot end with '/'",
            });
        }
        match check_segments(&key, false) {
            Ok(()) => Ok(ObjectKey(key)),
            Err(reason) => Err(KeyError { key, reason }),
        }
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This key with `prefix` in front (used by connectors with a root prefix).
    pub fn under(&self, prefix: &KeyPrefix) -> ObjectKey {
        ObjectKey(format!("{}{}", prefix.as_str(), self.0))
    }

    /// This key with `prefix` removed, if it starts with it.
    pub fn strip(&self, prefix: &KeyPrefix) -> Option<ObjectKey> {
        self.0
            .strip_prefix(prefix.as_str())
            .filter(|rest| !rest.is_empty())
            .map(|rest| ObjectKey(rest.to_owned()))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({:?})", self.0)
    }
}

/// A validated listing prefix: empty (everything) or key-like, optionally
/// ending with `/`. Prefix matching is by bytes, as in S3.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    /// The empty prefix: every key.
    pub fn all() -> Self {
        KeyPrefix(String::new())
    }

    /// Validates `prefix`.
    pub fn new(prefix: impl Into<String>) -> Result<Self, KeyError> {
        let prefix = prefix.into();
        match check_segments(&prefix, true) {
            Ok(()) => Ok(KeyPrefix(prefix)),
            Err(reason) => Err(KeyError {
                key: prefix,
                reason,
            }),
        }
    }

    /// The prefix text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `key` falls under this prefix.
    pub fn matches(&self, key: &ObjectKey) -> bool {
        key.as_str().starts_with(&self.0)
    }

    /// This prefix nested under `outer` (for connectors with a root prefix).
    pub fn under(&self, outer: &KeyPrefix) -> KeyPrefix {
        KeyPrefix(format!("{}{}", outer.as_str(), self.0))
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPrefix({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_keys() {
        for k in ["a", "objects/1e/1eab", "refs/sweep/run-001", "a.b/c..d"] {
            assert!(ObjectKey::new(k).is_ok(), "{k}");
        }
    }

    #[test]
    fn bad_keys_name_the_rule() {
        let cases = [
            ("", "empty key"),
            ("/etc/passwd", "absolute paths are not keys"),
            ("a/../b", "'.' and '..' segments are not allowed"),
            ("..", "'.' and '..' segments are not allowed"),
            ("a//b", "empty path segment"),
            ("a/\u{7}", "control characters are not allowed"),
            ("a\\b", "backslashes are not allowed"),
            ("dir/", "a key cannot end with '/'"),
        ];
        for (key, reason) in cases {
            let err = ObjectKey::new(key).unwrap_err();
            assert_eq!(err.reason, reason, "{key:?}");
        }
        assert!(ObjectKey::new("x".repeat(1025)).is_err());
    }

    #[test]
    fn prefixes() {
        assert!(KeyPrefix::new("").is_ok());
        assert!(KeyPrefix::new("objects/").is_ok());
        assert!(KeyPrefix::new("objects/1e").is_ok());
        assert!(KeyPrefix::new("../").is_err());
        let p = KeyPrefix::new("ds1/").unwrap();
        let k = ObjectKey::new("refs/main").unwrap();
        assert_eq!(k.under(&p).as_str(), "ds1/refs/main");
        assert_eq!(k.under(&p).strip(&p), Some(k));
    }
}
