//! `scalar-bucket`: one append's values of one scalar field, by anchor.
//!
//! `anchors` is u64 LE, strictly ascending. `values` depends on `dtype`:
//!
//! | dtype | `values` |
//! |---|---|
//! | `i64`, `timestamp` | byte string, i64 LE per record |
//! | `f64` | byte string, IEEE 754 binary64 LE per record |
//! | `bool` | byte string, one byte per record, `00` or `01` |
//! | `string`, `categorical` | array of text, one per record |
//!
//! `nulls`, present only if some record has no value, is a bitmap of
//! `ceil(n / 8)` bytes, bit `i % 8` (least significant first) of byte
//! `i / 8` set when record `i` is null; unused high bits are 0. A null
//! record's value slot holds the zero value (all-zero bytes, `00`, `""`),
//! so each bucket has one spelling.

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::common::{check_strictly_ascending, le_u64s, ByteRange};
use super::envelope::{encode_with_blobs, BlobLayout};
use super::error::Invariant;
use super::error::ObjectError;
use super::schema::ScalarDtype;
use super::ObjectKind;

/// The values of a scalar bucket: fixed-width bytes or text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScalarValues {
    /// Fixed-width little-endian values (numbers, timestamps, bools).
    Bytes(Vec<u8>),
    /// Text values (strings, categorical labels).
    Text(Vec<String>),
}

impl Serialize for ScalarValues {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ScalarValues::Bytes(bytes) => serializer.serialize_bytes(bytes),
            ScalarValues::Text(texts) => texts.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ScalarValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValuesVisitor;
        impl<'de> Visitor<'de> for ValuesVisitor {
            type Value = ScalarValues;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string or an array of text")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(ScalarValues::Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                Ok(ScalarValues::Bytes(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut texts = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(text) = seq.next_element::<String>()? {
                    texts.push(text);
                }
                Ok(ScalarValues::Text(texts))
            }
        }
        deserializer.deserialize_any(ValuesVisitor)
    }
}

/// One append's values of one scalar field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalarBucket {
    /// Value type.
    pub dtype: ScalarDtype,
    /// One anchor per record, u64 LE, strictly ascending.
    #[serde(with = "serde_bytes")]
    pub anchors: Vec<u8>,
    /// The values (see the module docs).
    pub values: ScalarValues,
    /// Null bitmap, present only when some value is null.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub nulls: Option<Vec<u8>>,
}

const ANCHORS_KEY: &str = "anchors";

/// The fields other than the anchor table, borrowed (for the writer that
/// keeps the table out of the value tree).
#[derive(Serialize)]
struct Header<'a> {
    dtype: ScalarDtype,
    values: &'a ScalarValues,
    #[serde(skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    nulls: &'a Option<Vec<u8>>,
}

impl ScalarBucket {
    fn header(&self) -> Header<'_> {
        Header {
            dtype: self.dtype,
            values: &self.values,
            nulls: &self.nulls,
        }
    }

    /// Absolute byte range of the anchor table in the encoded object.
    pub fn anchors_range(&self) -> Result<ByteRange, ObjectError> {
        let layout =
            BlobLayout::new::<Self, _>(&self.header(), &[(ANCHORS_KEY, self.anchors.len())])?;
        Ok(ByteRange {
            offset: layout.blob_offset(0),
            len: self.anchors.len() as u64,
        })
    }

    /// Number of records.
    pub fn count(&self) -> usize {
        self.anchors.len() / 8
    }

    /// Whether record `i` is null.
    pub fn is_null(&self, i: usize) -> bool {
        self.nulls
            .as_ref()
            .and_then(|bitmap| bitmap.get(i / 8))
            .is_some_and(|byte| byte & (1 << (i % 8)) != 0)
    }

    /// Width in bytes of one value, for fixed-width dtypes.
    fn width(dtype: ScalarDtype) -> Option<usize> {
        match dtype {
            ScalarDtype::I64 | ScalarDtype::F64 | ScalarDtype::Timestamp => Some(8),
            ScalarDtype::Bool => Some(1),
            ScalarDtype::String | ScalarDtype::Categorical => None,
        }
    }
}

impl ObjectKind for ScalarBucket {
    const KIND: &'static str = "scalar-bucket";

    fn validate(&self) -> Result<(), Invariant> {
        let anchors: Vec<u64> = le_u64s(&self.anchors, "anchors-length", "anchors")?.collect();
        let n = anchors.len();
        if n == 0 {
            return Err(Invariant::new(
                "anchors-length",
                "a bucket holds at least one value",
            ));
        }
        check_strictly_ascending(&anchors, "anchors-sorted", "anchors")?;
        if let Some(bitmap) = &self.nulls {
            if bitmap.len() != n.div_ceil(8) {
                return Err(Invariant::new(
                    "nulls",
                    format!(
                        "{n} records need a {}-byte bitmap, found {}",
                        n.div_ceil(8),
                        bitmap.len()
                    ),
                ));
            }
            let spare = bitmap.len() * 8 - n;
            if spare > 0 && bitmap.last().is_some_and(|last| last >> (8 - spare) != 0) {
                return Err(Invariant::new(
                    "nulls",
                    "bits past the last record must be 0",
                ));
            }
            if bitmap.iter().all(|byte| *byte == 0) {
                return Err(Invariant::new(
                    "nulls",
                    "the bitmap is present only when some record is null",
                ));
            }
        }
        let type_error = || {
            Invariant::new(
                "values-type",
                format!(
                    "values do not have the representation of dtype {:?}",
                    self.dtype
                ),
            )
        };
        match (&self.values, Self::width(self.dtype)) {
            (ScalarValues::Bytes(bytes), Some(width)) => {
                if bytes.len() != n * width {
                    return Err(Invariant::new(
                        "values-length",
                        format!(
                            "{n} values of {width} bytes need {} bytes, found {}",
                            n * width,
                            bytes.len()
                        ),
                    ));
                }
                for (i, value) in bytes.chunks_exact(width).enumerate() {
                    if self.dtype == ScalarDtype::Bool && value[0] > 1 {
                        return Err(Invariant::new(
                            "bool-value",
                            format!("bool value {i} is {:#04x}, not 00 or 01", value[0]),
                        ));
                    }
                    if self.is_null(i) && value.iter().any(|b| *b != 0) {
                        return Err(Invariant::new(
                            "null-value",
                            format!("null record {i} must hold the zero value"),
                        ));
                    }
                }
            }
            (ScalarValues::Text(texts), None) => {
                if texts.len() != n {
                    return Err(Invariant::new(
                        "values-length",
                        format!("{n} records but {} values", texts.len()),
                    ));
                }
                if let Some(i) = (0..n).find(|i| self.is_null(*i) && !texts[*i].is_empty()) {
                    return Err(Invariant::new(
                        "null-value",
                        format!("null record {i} must hold the empty string"),
                    ));
                }
            }
            _ => return Err(type_error()),
        }
        Ok(())
    }

    fn canonical_bytes(&self) -> Result<Vec<u8>, ObjectError> {
        encode_with_blobs::<Self, _>(&self.header(), &[(ANCHORS_KEY, &self.anchors)])
    }
}
