//! Track values: what a track entry says about its run.
//!
//! Each value is a canonical CBOR map with one-letter text keys, because
//! leaf size drives commit cost (a leaf is rewritten whenever one of its
//! entries changes) while text keys keep the objects readable by generic
//! tools (design 0001, "Alternatives"):
//!
//! | variant      | keys                                    |
//! |--------------|-----------------------------------------|
//! | `AnchorRun`  | `a` last anchor, `l` table length, `n` record count, `o` table offset, `s` segment |
//! | `CellRun`    | `h` run hash, `l` run length, `n` record count, `o` run offset, `s` segment |
//!
//! The variant is told by its key set (`a` or `h`). The segment is a tagged
//! hash, so `links` finds every segment a leaf references; it repeats the
//! digest in the key, and decoders check that the two agree.

use ciborium::value::Value;
use dreamdb_core::ContentHash;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::enc;
use super::key::{TrackKey, TrackKeyKind};

/// What a track entry records about one run of records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackValue {
    /// An anchor-order run: a segment's records by anchor.
    AnchorRun {
        /// The segment object.
        segment: ContentHash,
        /// The run's last anchor (the first is in the key).
        last_anchor: u64,
        /// Records in the run.
        count: u32,
        /// Byte offset of the segment's anchor table.
        table_offset: u64,
        /// Byte length of the anchor table.
        table_len: u64,
    },
    /// A cell-order run: one cell's records inside a segment.
    CellRun {
        /// The segment object.
        segment: ContentHash,
        /// Byte offset of the run inside the segment.
        offset: u64,
        /// Byte length of the run.
        len: u64,
        /// Records in the run.
        count: u32,
        /// BLAKE3 of the run's bytes, so a ranged read is verified
        /// without fetching the whole segment.
        run_hash: ContentHash,
    },
}

impl TrackValue {
    /// The segment the run lives in.
    pub fn segment(&self) -> &ContentHash {
        match self {
            TrackValue::AnchorRun { segment, .. } | TrackValue::CellRun { segment, .. } => segment,
        }
    }

    /// Records in the run.
    pub fn count(&self) -> u32 {
        match self {
            TrackValue::AnchorRun { count, .. } | TrackValue::CellRun { count, .. } => *count,
        }
    }

    /// Appends the canonical encoding.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        enc::map(out, 5);
        match self {
            TrackValue::AnchorRun {
                segment,
                last_anchor,
                count,
                table_offset,
                table_len,
            } => {
                enc::text(out, "a");
                enc::uint(out, *last_anchor);
                enc::text(out, "l");
                enc::uint(out, *table_len);
                enc::text(out, "n");
                enc::uint(out, u64::from(*count));
                enc::text(out, "o");
                enc::uint(out, *table_offset);
                enc::text(out, "s");
                enc::hash(out, segment);
            }
            TrackValue::CellRun {
                segment,
                offset,
                len,
                count,
                run_hash,
            } => {
                enc::text(out, "h");
                enc::hash(out, run_hash);
                enc::text(out, "l");
                enc::uint(out, *len);
                enc::text(out, "n");
                enc::uint(out, u64::from(*count));
                enc::text(out, "o");
                enc::uint(out, *offset);
                enc::text(out, "s");
                enc::hash(out, segment);
            }
        }
    }

    /// Exact size of the canonical encoding.
    pub(crate) fn encoded_len(&self) -> usize {
        // Map head, five one-letter keys (2 bytes each), the segment.
        let fixed = 1 + 5 * 2 + enc::HASH_LEN;
        match self {
            TrackValue::AnchorRun {
                last_anchor,
                count,
                table_offset,
                table_len,
                ..
            } => {
                fixed
                    + enc::head_len(*last_anchor)
                    + enc::head_len(u64::from(*count))
                    + enc::head_len(*table_offset)
                    + enc::head_len(*table_len)
            }
            TrackValue::CellRun {
                offset, len, count, ..
            } => {
                fixed
                    + enc::HASH_LEN
                    + enc::head_len(*offset)
                    + enc::head_len(*len)
                    + enc::head_len(u64::from(*count))
            }
        }
    }

    /// The value as a CBOR value tree.
    pub fn to_value(&self) -> Value {
        let t = |s: &str| Value::Text(s.to_owned());
        match self {
            TrackValue::AnchorRun {
                segment,
                last_anchor,
                count,
                table_offset,
                table_len,
            } => Value::Map(vec![
                (t("a"), enc::uint_value(*last_anchor)),
                (t("l"), enc::uint_value(*table_len)),
                (t("n"), enc::uint_value(u64::from(*count))),
                (t("o"), enc::uint_value(*table_offset)),
                (t("s"), enc::hash_value(segment)),
            ]),
            TrackValue::CellRun {
                segment,
                offset,
                len,
                count,
                run_hash,
            } => Value::Map(vec![
                (t("h"), enc::hash_value(run_hash)),
                (t("l"), enc::uint_value(*len)),
                (t("n"), enc::uint_value(u64::from(*count))),
                (t("o"), enc::uint_value(*offset)),
                (t("s"), enc::hash_value(segment)),
            ]),
        }
    }

    /// Reads a value from a CBOR value tree: exactly the keys of one
    /// variant, each of the right type and range.
    pub fn from_value(value: &Value) -> Result<Self, String> {
        let Value::Map(entries) = value else {
            return Err("a track value must be a map".to_owned());
        };
        let mut fields: [Option<&Value>; 6] = [None; 6];
        const NAMES: [&str; 6] = ["a", "h", "l", "n", "o", "s"];
        for (k, v) in entries {
            let name = enc::read_text_key(k)?;
            let Some(slot) = NAMES.iter().position(|n| *n == name) else {
                return Err(format!("unknown key {name:?} in a track value"));
            };
            if fields[slot].replace(v).is_some() {
                return Err(format!("duplicate key {name:?} in a track value"));
            }
        }
        let [a, h, l, n, o, s] = fields;
        fn need<'v>(v: Option<&'v Value>, name: &str) -> Result<&'v Value, String> {
            v.ok_or_else(|| format!("track value lacks key {name:?}"))
        }
        let count = enc::read_uint(need(n, "n")?)?;
        let count = u32::try_from(count).map_err(|_| "record count exceeds u32".to_owned())?;
        let segment = enc::read_hash(need(s, "s")?)?;
        let len = enc::read_uint(need(l, "l")?)?;
        let offset = enc::read_uint(need(o, "o")?)?;
        match (a, h) {
            (Some(a), None) => Ok(TrackValue::AnchorRun {
                segment,
                last_anchor: enc::read_uint(a)?,
                count,
                table_offset: offset,
                table_len: len,
            }),
            (None, Some(h)) => Ok(TrackValue::CellRun {
                segment,
                offset,
                len,
                count,
                run_hash: enc::read_hash(h)?,
            }),
            _ => Err(
                "a track value has exactly one of \"a\" (anchor run) or \"h\" (cell run)"
                    .to_owned(),
            ),
        }
    }

    /// Checks that this value may stand under `key`: the same order, the
    /// same segment, and for anchor runs `last_anchor >= first_anchor`.
    pub fn check_key(&self, key: &TrackKey) -> Result<(), String> {
        match (key.kind(), self) {
            (
                TrackKeyKind::AnchorRun {
                    first_anchor,
                    segment,
                },
                TrackValue::AnchorRun {
                    segment: s,
                    last_anchor,
                    ..
                },
            ) => {
                if segment != *s {
                    return Err("the value's segment differs from the key's".to_owned());
                }
                if *last_anchor < first_anchor {
                    return Err("last anchor precedes the key's first anchor".to_owned());
                }
                Ok(())
            }
            (TrackKeyKind::CellRun { segment, .. }, TrackValue::CellRun { segment: s, .. }) => {
                if segment != *s {
                    return Err("the value's segment differs from the key's".to_owned());
                }
                Ok(())
            }
            _ => Err(
                "an anchor-run key needs an anchor-run value, a cell-run key a cell-run value"
                    .to_owned(),
            ),
        }
    }
}

impl Serialize for TrackValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TrackValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        TrackValue::from_value(&value).map_err(D::Error::custom)
    }
}
