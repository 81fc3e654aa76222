//! BLAKE3-256 content hashes in multihash form.
//!
//! Every immutable DreamDB object is named by the BLAKE3-256 digest of its
//! canonical bytes. The multihash code for BLAKE3 is `0x1e`; because DreamDB
//! uses exactly one hash function with a fixed 32-byte digest, the *compact
//! binary form* is the code byte followed by the digest (33 bytes), and the
//! *text form* is those 33 bytes in lowercase hex (66 characters, always
//! starting `1e`). The full multihash (code, length `0x20`, digest: 34 bytes)
//! is available for interoperability with multiformats tooling.
//!
//! In CBOR a hash is a byte string of the compact form wrapped in tag
//! [`crate::cbor::TAG_CONTENT_HASH`], so any object's outgoing links can be
//! found without knowing the object's kind (used by `verify` and `gc`).
//! In human-readable serde formats (JSON) it is the hex text form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Multihash code of BLAKE3 (multiformats table).
pub const MULTIHASH_CODE_BLAKE3: u8 = 0x1e;
/// Length in bytes of a BLAKE3-256 digest.
pub const DIGEST_LEN: usize = 32;
/// Length in bytes of the compact binary form: code byte + digest.
pub const COMPACT_LEN: usize = 1 + DIGEST_LEN;
/// Length in bytes of the full multihash: code, length, digest.
pub const MULTIHASH_LEN: usize = 2 + DIGEST_LEN;
/// Length in characters of the hex text form.
pub const HEX_LEN: usize = 2 * COMPACT_LEN;

/// Why bytes or text could not be read as a [`ContentHash`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The input had the wrong length for the form being parsed.
    #[error("content hash must be {expected} {unit}, got {actual}")]
    WrongLength {
        /// Expected length.
        expected: usize,
        /// Actual length.
        actual: usize,
        /// "bytes" or "hex characters".
        unit: &'static str,
    },
    /// The multihash code is not BLAKE3's `0x1e`.
    #[error("unsupported multihash code 0x{code:02x} (only BLAKE3, 0x1e, is allowed)")]
    UnsupportedCode {
        /// The code found.
        code: u8,
    },
    /// The multihash length byte is not 32.
    #[error("multihash digest length must be 32, got {length}")]
    WrongDigestLength {
        /// The length byte found.
        length: u8,
    },
    /// A character of the text form is not a lowercase hex digit.
    #[error("content hash text must be lowercase hex; bad character {character:?} at {position}")]
    BadHexCharacter {
        /// The offending character.
        character: char,
        /// Its character position.
        position: usize,
    },
}

impl HashError {
    /// A stable identifier of the kind of error, used by conformance
    /// vectors: `"wrong-length"`, `"unsupported-code"`,
    /// `"wrong-digest-length"` or `"bad-hex-character"`.
    pub fn class(&self) -> &'static str {
        match self {
            HashError::WrongLength { .. } => "wrong-length",
            HashError::UnsupportedCode { .. } => "unsupported-code",
            HashError::WrongDigestLength { .. } => "wrong-digest-length",
            HashError::BadHexCharacter { .. } => "bad-hex-character",
        }
    }
}

/// A BLAKE3-256 content hash: the name of an immutable object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; DIGEST_LEN]);

impl ContentHash {
    /// The hash of empty input (a known-answer constant, checked in tests
    /// against the `blake3` crate).
    pub const EMPTY: ContentHash = ContentHash([
        0xaf, 0x13, 0x49, 0xb9, 0xf5, 0xf9, 0xa1, 0xa6, 0xa0, 0x40, 0x4d, 0xea, 0x36, 0xdc, 0xc9,
        0x49, 0x9b, 0xcb, 0x25, 0xc9, 0xad, 0xc1, 0x12, 0xb7, 0xcc, 0x9a, 0x93, 0xca, 0xe4, 0x1f,
        0x32, 0x62,
    ]);

    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ContentHash(*blake3::hash(bytes).as_bytes())
    }

    /// Wraps a raw 32-byte BLAKE3 digest.
    pub const fn from_digest(digest: [u8; DIGEST_LEN]) -> Self {
        ContentHash(digest)
    }

    /// The raw 32-byte digest.
    pub const fn digest(&self) -> &[u8; DIGEST_LEN] {
        &self.0
    }

    /// The compact binary form: `0x1e` followed by the digest.
    pub fn to_compact(&self) -> [u8; COMPACT_LEN] {
        let mut out = [0u8; COMPACT_LEN];
        out[0] = MULTIHASH_CODE_BLAKE3;
        out[1..].copy_from_slice(&self.0);
        out
    }

    /// Parses the compact binary form.
    pub fn from_compact(bytes: &[u8]) -> Result<Self, HashError> {
        if bytes.len() != COMPACT_LEN {
            return Err(HashError::WrongLength {
                expected: COMPACT_LEN,
                actual: bytes.len(),
                unit: "bytes",
            });
        }
        if bytes[0] != MULTIHASH_CODE_BLAKE3 {
            return Err(HashError::UnsupportedCode { code: bytes[0] });
        }
        let mut digest = [0u8; DIGEST_LEN];
        digest.copy_from_slice(&bytes[1..]);
        Ok(ContentHash(digest))
    }

    /// The full multihash: code `0x1e`, length `0x20`, digest.
    pub fn to_multihash(&self) -> [u8; MULTIHASH_LEN] {
        let mut out = [0u8; MULTIHASH_LEN];
        out[0] = MULTIHASH_CODE_BLAKE3;
        out[1] = DIGEST_LEN as u8;
        out[2..].copy_from_slice(&self.0);
        out
    }

    /// Parses the full multihash form.
    pub fn from_multihash(bytes: &[u8]) -> Result<Self, HashError> {
        if bytes.len() != MULTIHASH_LEN {
            return Err(HashError::WrongLength {
                expected: MULTIHASH_LEN,
                actual: bytes.len(),
                unit: "bytes",
            });
        }
        if bytes[0] != MULTIHASH_CODE_BLAKE3 {
            return Err(HashError::UnsupportedCode { code: bytes[0] });
        }
        if bytes[1] as usize != DIGEST_LEN {
            return Err(HashError::WrongDigestLength { length: bytes[1] });
        }
        Self::from_compact(&[&bytes[..1], &bytes[2..]].concat())
    }

    /// The text form: 66 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_compact())
    }

    /// Parses the text form. Only lowercase hex is accepted, so that every
    /// hash has exactly one spelling.
    pub fn from_hex(text: &str) -> Result<Self, HashError> {
        if let Some((position, character)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| !matches!(c, '0'..='9' | 'a'..='f'))
        {
            return Err(HashError::BadHexCharacter {
                character,
                position,
            });
        }
        if text.len() != HEX_LEN {
            return Err(HashError::WrongLength {
                expected: HEX_LEN,
                actual: text.len(),
                unit: "hex characters",
            });
        }
        let mut bytes = [0u8; COMPACT_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| HashError::WrongLength {
            expected: HEX_LEN,
            actual: text.len(),
            unit: "hex characters",
        })?;
        Self::from_compact(&bytes)
    }

    /// A short prefix of the hex form for logs and tables (not unique).
    pub fn short(&self) -> String {
        let mut text = self.to_hex();
        text.truncate(14);
        text
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

impl FromStr for ContentHash {
    type Err = HashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl Serialize for ContentHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            let compact = serde_bytes::Bytes::new(&self.to_compact()).to_owned();
            ciborium::tag::Required::<serde_bytes::ByteBuf, { crate::cbor::TAG_CONTENT_HASH }>(
                compact,
            )
            .serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            ContentHash::from_hex(&text).map_err(serde::de::Error::custom)
        } else {
            let tagged = ciborium::tag::Required::<
                serde_bytes::ByteBuf,
                { crate::cbor::TAG_CONTENT_HASH },
            >::deserialize(deserializer)?;
            ContentHash::from_compact(&tagged.0).map_err(serde::de::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_constant_matches_blake3() {
        assert_eq!(ContentHash::of(b""), ContentHash::EMPTY);
        assert_eq!(
            ContentHash::EMPTY.to_hex(),
            "1eaf1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn compact_and_multihash_round_trip() {
        let h = ContentHash::of(b"dreamdb");
        assert_eq!(ContentHash::from_compact(&h.to_compact()), Ok(h));
        assert_eq!(ContentHash::from_multihash(&h.to_multihash()), Ok(h));
        assert_eq!(h.to_string().parse::<ContentHash>(), Ok(h));
    }

    #[test]
    fn error_classes_are_stable() {
        let cases = [
            (
                HashError::WrongLength {
                    expected: 33,
                    actual: 1,
                    unit: "bytes",
                },
                "wrong-length",
            ),
            (
                HashError::UnsupportedCode { code: 0x12 },
                "unsupported-code",
            ),
            (
                HashError::WrongDigestLength { length: 1 },
                "wrong-digest-length",
            ),
            (
                HashError::BadHexCharacter {
                    character: 'X',
                    position: 0,
                },
                "bad-hex-character",
            ),
        ];
        for (error, class) in cases {
            assert_eq!(error.class(), class, "{error}");
        }
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let h = ContentHash::of(b"x");
        let mut wrong_code = h.to_compact();
        wrong_code[0] = 0x12;
        assert_eq!(
            ContentHash::from_compact(&wrong_code),
            Err(HashError::UnsupportedCode { code: 0x12 })
        );
        assert!(matches!(
            ContentHash::from_compact(&wrong_code[..32]),
            Err(HashError::WrongLength { actual: 32, .. })
        ));
        let upper = h.to_hex().to_uppercase();
        assert!(matches!(
            ContentHash::from_hex(&upper),
            Err(HashError::BadHexCharacter { position: 1, .. })
        ));
        let mut mh = h.to_multihash();
        mh[1] = 0x40;
        assert_eq!(
            ContentHash::from_multihash(&mh),
            Err(HashError::WrongDigestLength { length: 0x40 })
        );
    }
}
