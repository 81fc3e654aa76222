//! `blob-segment`: one append's blobs of one blob field.
//!
//! `anchors` (u64 LE, strictly ascending) says whose each blob is;
//! `offsets` (u64 LE, one more than the blobs) delimits blob `i` as
//! `payload[offsets[i] .. offsets[i + 1]]`; `digests` holds each blob's
//! 32-byte BLAKE3 digest. A reader fetches one blob by its absolute range
//! ([`BlobSegment::blob_range`]) with one ranged GET and checks it against
//! its digest, so a damaged byte range is an integrity error even though
//! the whole object's hash is not computed.

use dreamdb_core::ContentHash;
use serde::{Deserialize, Serialize};

use super::common::{check_mime, le_u64s, u64_at, ByteRange};
use super::envelope::{encode_with_blobs, BlobLayout};
use super::error::{Invariant, ObjectError};
use super::ObjectKind;

const PAYLOAD_KEY: &str = "payload";

/// Blobs of one append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobSegment {
    /// MIME type of every blob.
    pub mime: String,
    /// One anchor per blob, u64 LE, strictly ascending.
    #[serde(with = "serde_bytes")]
    pub anchors: Vec<u8>,
    /// One BLAKE3 digest (32 bytes) per blob, in blob order.
    #[serde(with = "serde_bytes")]
    pub digests: Vec<u8>,
    /// Blob boundaries, u64 LE, `count + 1` of them: `0`, ..., payload length.
    #[serde(with = "serde_bytes")]
    pub offsets: Vec<u8>,
    /// The blobs, back to back.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

#[derive(Serialize)]
struct Header<'a> {
    mime: &'a str,
}

const ANCHORS_KEY: &str = "anchors";
const DIGESTS_KEY: &str = "digests";
const OFFSETS_KEY: &str = "offsets";

/// Bytes of one blob's digest.
pub const BLOB_DIGEST_LEN: usize = 32;

impl BlobSegment {
    /// Builds a segment from `(anchor, blob)` pairs in anchor order.
    pub fn build<'a>(mime: &str, blobs: impl IntoIterator<Item = (u64, &'a [u8])>) -> BlobSegment {
        let mut anchors = Vec::new();
        let mut digests = Vec::new();
        let mut offsets = vec![0u8; 8];
        let mut payload = Vec::new();
        for (anchor, blob) in blobs {
            anchors.extend_from_slice(&anchor.to_le_bytes());
            digests.extend_from_slice(ContentHash::of(blob).digest());
            payload.extend_from_slice(blob);
            offsets.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        }
        BlobSegment {
            mime: mime.to_owned(),
            anchors,
            digests,
            offsets,
            payload,
        }
    }

    fn header(&self) -> Header<'_> {
        Header { mime: &self.mime }
    }

    /// Number of blobs.
    pub fn count(&self) -> usize {
        self.anchors.len() / 8
    }

    /// Anchor of blob `i`.
    pub fn anchor(&self, i: usize) -> Option<u64> {
        (i < self.count()).then(|| u64_at(&self.anchors, 8 * i))
    }

    /// Blob `i`'s range inside the payload.
    fn span(&self, i: usize) -> Option<(u64, u64)> {
        if i >= self.count() {
            return None;
        }
        let start = u64_at(&self.offsets, 8 * i);
        let end = u64_at(&self.offsets, 8 * (i + 1));
        Some((start, end.checked_sub(start)?))
    }

    /// Blob `i`'s bytes.
    pub fn blob(&self, i: usize) -> Option<&[u8]> {
        let (start, len) = self.span(i)?;
        let start = usize::try_from(start).ok()?;
        self.payload
            .get(start..start.checked_add(usize::try_from(len).ok()?)?)
    }

    fn layout(&self) -> Result<BlobLayout, ObjectError> {
        BlobLayout::new::<Self, _>(
            &self.header(),
            &[
                (ANCHORS_KEY, self.anchors.len()),
                (OFFSETS_KEY, self.offsets.len()),
                (PAYLOAD_KEY, self.payload.len()),
                (DIGESTS_KEY, self.digests.len()),
            ],
        )
    }

    /// Absolute offset of the payload's first byte in the encoded object.
    pub fn payload_offset(&self) -> Result<u64, ObjectError> {
        Ok(self.layout()?.blob_offset(2))
    }

    /// Absolute byte range of the anchor table (what a track's anchor-order
    /// entry records).
    pub fn anchors_range(&self) -> Result<ByteRange, ObjectError> {
        Ok(ByteRange {
            offset: self.layout()?.blob_offset(0),
            len: self.anchors.len() as u64,
        })
    }

    /// Absolute byte range of the digest table.
    pub fn digests_range(&self) -> Result<ByteRange, ObjectError> {
        Ok(ByteRange {
            offset: self.layout()?.blob_offset(3),
            len: self.digests.len() as u64,
        })
    }

    /// Blob `i`'s digest.
    pub fn digest(&self, i: usize) -> Option<&[u8]> {
        let at = i.checked_mul(BLOB_DIGEST_LEN)?;
        self.digests.get(at..at.checked_add(BLOB_DIGEST_LEN)?)
    }

    /// Absolute byte range of the offset table.
    pub fn offsets_range(&self) -> Result<ByteRange, ObjectError> {
        Ok(ByteRange {
            offset: self.layout()?.blob_offset(1),
            len: self.offsets.len() as u64,
        })
    }

    /// Absolute byte range of blob `i` in the encoded object (`None` if
    /// there is no blob `i`).
    pub fn blob_range(&self, i: usize) -> Result<Option<ByteRange>, ObjectError> {
        let Some((start, len)) = self.span(i) else {
            return Ok(None);
        };
        Ok(Some(ByteRange {
            offset: self.payload_offset()? + start,
            len,
        }))
    }
}

impl ObjectKind for BlobSegment {
    const KIND: &'static str = "blob-segment";

    fn validate(&self) -> Result<(), Invariant> {
        check_mime(&self.mime)?;
        let anchors: Vec<u64> = le_u64s(&self.anchors, "anchors-length", "anchors")?.collect();
        if anchors.is_empty() {
            return Err(Invariant::new(
                "anchors-length",
                "a segment holds at least one blob",
            ));
        }
        super::common::check_strictly_ascending(&anchors, "anchors-sorted", "anchors")?;
        let offsets = le_u64s(&self.offsets, "offsets", "offsets")?;
        if offsets.len() != anchors.len() + 1 {
            return Err(Invariant::new(
                "offsets",
                format!(
                    "{} blobs need {} offsets, found {}",
                    anchors.len(),
                    anchors.len() + 1,
                    offsets.len()
                ),
            ));
        }
        let mut previous = None;
        for (i, offset) in offsets.enumerate() {
            let ok = match previous {
                None => offset == 0,
                Some(p) => offset >= p,
            };
            if !ok {
                return Err(Invariant::new(
                    "offsets",
                    format!("offset {i} ({offset}) breaks 0 = first ≤ ... ≤ last"),
                ));
            }
            previous = Some(offset);
        }
        if previous != Some(self.payload.len() as u64) {
            return Err(Invariant::new(
                "offsets",
                format!(
                    "last offset {previous:?} must equal the payload length {}",
                    self.payload.len()
                ),
            ));
        }
        if self.digests.len() != anchors.len() * BLOB_DIGEST_LEN {
            return Err(Invariant::new(
                "digests",
                format!(
                    "{} blobs need {} digest bytes, found {}",
                    anchors.len(),
                    anchors.len() * BLOB_DIGEST_LEN,
                    self.digests.len()
                ),
            ));
        }
        for i in 0..anchors.len() {
            let (Some(blob), Some(digest)) = (self.blob(i), self.digest(i)) else {
                return Err(Invariant::new(
                    "offsets",
                    format!("blob {i} is out of range"),
                ));
            };
            if ContentHash::of(blob).digest()[..] != *digest {
                return Err(Invariant::new(
                    "digests",
                    format!("blob {i}'s digest does not match its bytes"),
                ));
            }
        }
        Ok(())
    }

    fn canonical_bytes(&self) -> Result<Vec<u8>, ObjectError> {
        encode_with_blobs::<Self, _>(
            &self.header(),
            &[
                (ANCHORS_KEY, &self.anchors),
                (OFFSETS_KEY, &self.offsets),
                (PAYLOAD_KEY, &self.payload),
                (DIGESTS_KEY, &self.digests),
            ],
        )
    }
}
