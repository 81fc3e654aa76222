//! `fragment`: one time-ranged media segment (a CMAF fragment, an audio
//! chunk, ...) of a fragment field, covering `[start, end)` of the
//! dataset's timeline.

use dreamdb_core::time::TimeRange;
use serde::{Deserialize, Serialize};

use super::common::{check_mime, ByteRange};
use super::envelope::{encode_with_blobs, BlobLayout};
use super::error::{Invariant, ObjectError};
use super::ObjectKind;

const PAYLOAD_KEY: &str = "payload";

/// One media segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fragment {
    /// The stretch of timeline covered (not empty).
    pub range: TimeRange,
    /// MIME type of the payload.
    pub mime: String,
    /// The media bytes (not empty).
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

#[derive(Serialize)]
struct Header<'a> {
    range: &'a TimeRange,
    mime: &'a str,
}

impl Fragment {
    fn header(&self) -> Header<'_> {
        Header {
            range: &self.range,
            mime: &self.mime,
        }
    }

    /// Absolute byte range of the payload in the encoded object.
    pub fn payload_range(&self) -> Result<ByteRange, ObjectError> {
        let layout =
            BlobLayout::new::<Self, _>(&self.header(), &[(PAYLOAD_KEY, self.payload.len())])?;
        Ok(ByteRange {
            offset: layout.blob_offset(0),
            len: self.payload.len() as u64,
        })
    }
}

impl ObjectKind for Fragment {
    const KIND: &'static str = "fragment";

    fn validate(&self) -> Result<(), Invariant> {
        if self.range.is_empty() {
            return Err(Invariant::new(
                "range-nonempty",
                "a fragment covers a non-empty range",
            ));
        }
        check_mime(&self.mime)?;
        if self.payload.is_empty() {
            return Err(Invariant::new(
                "payload-nonempty",
                "a fragment has payload bytes",
            ));
        }
        Ok(())
    }

    fn canonical_bytes(&self) -> Result<Vec<u8>, ObjectError> {
        encode_with_blobs::<Self, _>(&self.header(), &[(PAYLOAD_KEY, &self.payload)])
    }
}
