//! `dreamdb://` addresses: one text form for everything a user can point at.
//!
//! ```text
//! address  = "dreamdb://" target [ "#" locator ]
//! target   = "objects/" content-hash-hex   ; an immutable object (66 lowercase hex chars)
//!          / "refs/" ref-name               ; a branch, mutable
//!          / "tags/" ref-name               ; a tag, create-once
//! locator  = "bytes:" start "-" end         ; half-open [start, end), decimal u64,
//!                                           ; no leading zeros, start < end
//! ```
//!
//! A locator is only allowed on an `objects/` target: a byte range into
//! something that can change (a branch) or be re-pointed by name is
//! meaningless, so it is refused rather than resolved at some arbitrary
//! moment.
//!
//! Every address has exactly one spelling: the scheme and hex are
//! lowercase, there is no percent-encoding (ref names never need it), no
//! query string and no trailing slash. Parsing and [`fmt::Display`]
//! therefore round-trip byte for byte, so addresses can be compared as text.
//!
//! Encodings: a string in human-readable serde formats (JSON), and in CBOR
//! the text string wrapped in tag 65522 ([`crate::cbor::TAG_ADDRESS`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cbor::TAG_ADDRESS;
use crate::hash::{ContentHash, HashError};
use crate::ref_name::{RefError, RefName};

/// The scheme prefix every address starts with.
pub const SCHEME: &str = "dreamdb://";
const OBJECTS: &str = "objects/";
const REFS: &str = "refs/";
const TAGS: &str = "tags/";
const BYTES: &str = "bytes:";

/// Why a text is not an [`Address`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressRule {
    /// The text does not start with `dreamdb://`.
    BadScheme,
    /// The path is not `objects/…`, `refs/…` or `tags/…`.
    BadTarget,
    /// The object hash is not 66 lowercase hex characters of a BLAKE3
    /// multihash.
    BadHash(HashError),
    /// The ref or tag name is invalid.
    BadRefName(RefError),
    /// The locator after `#` is not `bytes:<start>-<end>` with
    /// `start < end`; the string says what is wrong.
    BadLocator(&'static str),
    /// A locator on a `refs/` or `tags/` target.
    LocatorOnMutableTarget,
}

impl AddressRule {
    /// A stable kebab-case identifier of the rule, used by the conformance
    /// vectors.
    pub fn class(&self) -> &'static str {
        match self {
            AddressRule::BadScheme => "bad-scheme",
            AddressRule::BadTarget => "bad-target",
            AddressRule::BadHash(_) => "bad-hash",
            AddressRule::BadRefName(_) => "bad-ref-name",
            AddressRule::BadLocator(_) => "bad-locator",
            AddressRule::LocatorOnMutableTarget => "locator-on-mutable-target",
        }
    }
}

impl fmt::Display for AddressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressRule::BadScheme => f.write_str("an address must start with \"dreamdb://\""),
            AddressRule::BadTarget => f.write_str(
                "the target must be \"objects/<hash>\", \"refs/<name>\" or \"tags/<name>\"",
            ),
            AddressRule::BadHash(e) => write!(f, "bad object hash: {e}"),
            AddressRule::BadRefName(e) => write!(f, "bad name: {}", e.reason),
            AddressRule::BadLocator(why) => write!(f, "bad locator: {why}"),
            AddressRule::LocatorOnMutableTarget => f.write_str(
                "a \"#bytes:\" locator is only allowed on an immutable \"objects/\" target",
            ),
        }
    }
}

/// A text that is not a valid [`Address`], and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid dreamdb address {input:?}: {reason}")]
pub struct AddressError {
    /// The text that was refused.
    pub input: String,
    /// What is wrong with it.
    pub reason: AddressRule,
}

impl AddressError {
    /// A stable kebab-case identifier of the error, used by the conformance
    /// vectors (see [`AddressRule::class`]).
    pub fn class(&self) -> &'static str {
        self.reason.class()
    }
}

/// A non-empty half-open byte range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteSpan {
    start: u64,
    end: u64,
}

impl ByteSpan {
    /// The range `[start, end)`; refused ([`AddressRule::BadLocator`])
    /// unless `start < end`.
    pub fn new(start: u64, end: u64) -> Result<ByteSpan, AddressError> {
        if start >= end {
            return Err(AddressError {
                input: format!("{BYTES}{start}-{end}"),
                reason: AddressRule::BadLocator("start must be less than end"),
            });
        }
        Ok(ByteSpan { start, end })
    }

    /// The first byte offset in the range.
    pub const fn start(&self) -> u64 {
        self.start
    }

    /// The first byte offset after the range.
    pub const fn end(&self) -> u64 {
        self.end
    }

    /// The number of bytes in the range (never zero).
    pub const fn len(&self) -> u64 {
        // Cannot underflow: `start < end` is an invariant.
        self.end - self.start
    }

    /// Always false: a span holds at least one byte. Provided for symmetry
    /// with [`ByteSpan::len`].
    pub const fn is_empty(&self) -> bool {
        false
    }
}

/// What an address points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressTarget {
    /// An immutable object, by content hash (`objects/<hash>`).
    Object(ContentHash),
    /// A branch, mutable (`refs/<name>`).
    Ref(RefName),
    /// A tag, create-once (`tags/<name>`).
    Tag(RefName),
}

impl AddressTarget {
    /// Whether what the target names can never change (only objects).
    pub fn is_immutable(&self) -> bool {
        matches!(self, AddressTarget::Object(_))
    }

    /// `"object"`, `"ref"` or `"tag"`.
    pub fn kind(&self) -> &'static str {
        match self {
            AddressTarget::Object(_) => "object",
            AddressTarget::Ref(_) => "ref",
            AddressTarget::Tag(_) => "tag",
        }
    }
}

/// A parsed `dreamdb://` address; valid by construction (a byte locator is
/// only ever present on an object target).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    target: AddressTarget,
    bytes: Option<ByteSpan>,
}

/// Parses a decimal u64 without sign or leading zeros.
fn parse_offset(text: &str) -> Result<u64, &'static str> {
    if text.is_empty() {
        return Err("missing offset");
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("offsets must be decimal digits");
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err("offsets must not have leading zeros");
    }
    text.parse::<u64>()
        .map_err(|_| "offset does not fit in 64 bits")
}

fn parse_locator(text: &str) -> Result<ByteSpan, &'static str> {
    let Some(range) = text.strip_prefix(BYTES) else {
        return Err("the locator must start with \"bytes:\"");
    };
    let Some((start, end)) = range.split_once('-') else {
        return Err("expected \"bytes:<start>-<end>\"");
    };
    let start = parse_offset(start)?;
    let end = parse_offset(end)?;
    if start >= end {
        return Err("start must be less than end");
    }
    Ok(ByteSpan { start, end })
}

impl Address {
    /// An address from its parts; a byte span on a mutable target is
    /// refused ([`AddressRule::LocatorOnMutableTarget`]).
    pub fn new(target: AddressTarget, bytes: Option<ByteSpan>) -> Result<Address, AddressError> {
        let address = Address { target, bytes };
        if bytes.is_some() && !address.target.is_immutable() {
            return Err(AddressError {
                input: address.render(),
                reason: AddressRule::LocatorOnMutableTarget,
            });
        }
        Ok(address)
    }

    /// `dreamdb://objects/<hash>`.
    pub fn object(hash: ContentHash) -> Address {
        Address {
            target: AddressTarget::Object(hash),
            bytes: None,
        }
    }

    /// `dreamdb://objects/<hash>#bytes:<start>-<end>`.
    pub fn object_bytes(hash: ContentHash, span: ByteSpan) -> Address {
        Address {
            target: AddressTarget::Object(hash),
            bytes: Some(span),
        }
    }

    /// `dreamdb://refs/<name>`.
    pub fn branch(name: RefName) -> Address {
        Address {
            target: AddressTarget::Ref(name),
            bytes: None,
        }
    }

    /// `dreamdb://tags/<name>`.
    pub fn tag(name: RefName) -> Address {
        Address {
            target: AddressTarget::Tag(name),
            bytes: None,
        }
    }

    /// Parses the one canonical spelling of an address.
    pub fn parse(input: &str) -> Result<Address, AddressError> {
        let fail = |reason: AddressRule| AddressError {
            input: input.to_owned(),
            reason,
        };
        let rest = input
            .strip_prefix(SCHEME)
            .ok_or_else(|| fail(AddressRule::BadScheme))?;
        let (path, locator) = match rest.split_once('#') {
            Some((path, locator)) => (path, Some(locator)),
            None => (rest, None),
        };
        let target = if let Some(hex) = path.strip_prefix(OBJECTS) {
            AddressTarget::Object(
                ContentHash::from_hex(hex).map_err(|e| fail(AddressRule::BadHash(e)))?,
            )
        } else if let Some(name) = path.strip_prefix(REFS) {
            AddressTarget::Ref(RefName::parse(name).map_err(|e| fail(AddressRule::BadRefName(e)))?)
        } else if let Some(name) = path.strip_prefix(TAGS) {
            AddressTarget::Tag(RefName::parse(name).map_err(|e| fail(AddressRule::BadRefName(e)))?)
        } else {
            return Err(fail(AddressRule::BadTarget));
        };
        let bytes = match locator {
            None => None,
            Some(_) if !target.is_immutable() => {
                return Err(fail(AddressRule::LocatorOnMutableTarget))
            }
            Some(text) => {
                Some(parse_locator(text).map_err(|why| fail(AddressRule::BadLocator(why)))?)
            }
        };
        Ok(Address { target, bytes })
    }

    /// What the address points at.
    pub fn target(&self) -> &AddressTarget {
        &self.target
    }

    /// The byte range, if the address has a `#bytes:` locator.
    pub fn bytes(&self) -> Option<ByteSpan> {
        self.bytes
    }

    /// The same address without its locator.
    pub fn without_locator(&self) -> Address {
        Address {
            target: self.target.clone(),
            bytes: None,
        }
    }

    fn render(&self) -> String {
        let mut out = String::from(SCHEME);
        match &self.target {
            AddressTarget::Object(hash) => {
                out.push_str(OBJECTS);
                out.push_str(&hash.to_hex());
            }
            AddressTarget::Ref(name) => {
                out.push_str(REFS);
                out.push_str(name.as_str());
            }
            AddressTarget::Tag(name) => {
                out.push_str(TAGS);
                out.push_str(name.as_str());
            }
        }
        if let Some(span) = self.bytes {
            out.push('#');
            out.push_str(BYTES);
            out.push_str(&span.start.to_string());
            out.push('-');
            out.push_str(&span.end.to_string());
        }
        out
    }
}

impl fmt::Display for Address {
    /// The canonical text form; [`Address::parse`] reads it back exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.render();
        if serializer.is_human_readable() {
            serializer.serialize_str(&text)
        } else {
            ciborium::tag::Required::<String, TAG_ADDRESS>(text).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = if deserializer.is_human_readable() {
            String::deserialize(deserializer)?
        } else {
            ciborium::tag::Required::<String, TAG_ADDRESS>::deserialize(deserializer)?.0
        };
        Address::parse(&text).map_err(serde::de::Error::custom)
    }
}
