//! Track values: what a track entry says about its run.
//!
//! Each value is a canonical CBOR map with one-letter text keys, because
//! leaf size drives commit cost (a leaf is rewritten whenever one of its
//! entries changes) while text keys keep the objects readable by generic
//! tools (design 0001, "Alternatives"):
//!
//! | variant      | keys                                    |
//! |--------------|-----------------------------------------|
//! | `AnchorRun`  | `a` last anchor, `l` table length, `n` record count, `o` table offset, [`r` vector storage,] `s` segment |
//! | `CellRun`    | `h` run hash, `l` run length, `n` record count, `o` run offset, [`r` raw rows,] `s` segment |
//!
//! The run hash `h` is the compact hash form as a *plain* byte string: it
//! names a byte range, not an object, so it is not a link (spec/0009 §3.2).
//! The variant is told by its key set (`a` or `h`). The segment is a tagged
//! hash, so `links` finds every segment a leaf references; it repeats the
//! digest in the key, and decoders check that the two agree.
//!
//! `r`, present only when the field keeps raw vectors, is the map
//! `{"h": rows hash, "l": length, "o": offset, "s": vector-storage}`: the
//! byte range of the run's raw f32 rows inside the field's
//! `vector-storage` object (a tagged hash too, so the raw rows stay
//! reachable for `gc`) and the BLAKE3 hash of those bytes (plain bytes, like
//! the run hash), so a ranged read of raw rows is verified too.
//!
//! On an anchor run, `r` is the tagged hash of the bucket's whole
//! `vector-storage` object (when the field keeps raw vectors). It keeps the
//! exact rows reachable and findable for iteration after every cell run of
//! the bucket moved to other buckets (an Ada-IVF step), when no cell-run
//! value names the storage any more.

use ciborium::value::Value;
use dreamdb_core::ContentHash;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::enc;
use super::key::{TrackKey, TrackKeyKind};

/// Where a cell run's raw f32 rows are: a byte range of a
/// `vector-storage` object (same record order as the run's bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawRows {
    /// The vector-storage object.
    pub storage: ContentHash,
    /// Absolute byte offset of the run's first row in that object.
    pub offset: u64,
    /// Byte length of the run's rows.
    pub len: u64,
    /// BLAKE3 of the run's raw bytes (checked on every ranged read).
    pub hash: ContentHash,
}

impl RawRows {
    fn encoded_len(&self) -> usize {
        1 + 4 * 2
            + enc::HASH_LEN
            + enc::bytes_len(dreamdb_core::hash::COMPACT_LEN)
            + enc::head_len(self.offset)
            + enc::head_len(self.len)
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        enc::map(out, 4);
        enc::text(out, "h");
        enc::bytes(out, &self.hash.to_compact());
        enc::text(out, "l");
        enc::uint(out, self.len);
        enc::text(out, "o");
        enc::uint(out, self.offset);
        enc::text(out, "s");
        enc::hash(out, &self.storage);
    }

    fn to_value(self) -> Value {
        let t = |s: &str| Value::Text(s.to_owned());
        Value::Map(vec![
            (t("h"), Value::Bytes(self.hash.to_compact().to_vec())),
            (t("l"), enc::uint_value(self.len)),
            (t("o"), enc::uint_value(self.offset)),
            (t("s"), enc::hash_value(&self.storage)),
        ])
    }

    fn from_value(value: &Value) -> Result<Self, String> {
        let Value::Map(entries) = value else {
            return Err("raw rows (\"r\") must be a map".to_owned());
        };
        let mut fields: [Option<&Value>; 4] = [None; 4];
        const NAMES: [&str; 4] = ["h", "l", "o", "s"];
        for (k, v) in entries {
            let name = enc::read_text_key(k)?;
            let Some(slot) = NAMES.iter().position(|n| *n == name) else {
                return Err(format!("unknown key {name:?} in raw rows"));
            };
            if fields[slot].replace(v).is_some() {
                return Err(format!("duplicate key {name:?} in raw rows"));
            }
        }
        let [h, l, o, s] = fields;
        fn need<'v>(v: Option<&'v Value>, name: &str) -> Result<&'v Value, String> {
            v.ok_or_else(|| format!("raw rows lack key {name:?}"))
        }
        Ok(RawRows {
            len: enc::read_uint(need(l, "l")?)?,
            offset: enc::read_uint(need(o, "o")?)?,
            storage: enc::read_hash(need(s, "s")?)?,
            hash: read_run_hash(need(h, "h")?)?,
        })
    }
}

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
        /// The bucket's `vector-storage` object, when the field keeps raw
        /// vectors (its rows are in the bucket's record order).
        storage: Option<ContentHash>,
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
        /// Where the run's raw f32 rows are, when the field keeps them.
        raw: Option<RawRows>,
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

    /// A cell-order value with its raw rows' location and hash; other
    /// values are returned unchanged.
    pub fn with_raw_rows(self, raw: RawRows) -> Self {
        match self {
            TrackValue::CellRun {
                segment,
                offset: o,
                len: l,
                count,
                run_hash,
                ..
            } => TrackValue::CellRun {
                segment,
                offset: o,
                len: l,
                count,
                run_hash,
                raw: Some(raw),
            },
            other => other,
        }
    }

    /// The vector storage an anchor-order value names, if any.
    pub fn anchor_storage(&self) -> Option<ContentHash> {
        match self {
            TrackValue::AnchorRun { storage, .. } => *storage,
            TrackValue::CellRun { .. } => None,
        }
    }

    /// The raw rows' location of a cell-order value, if it records one.
    pub fn raw_rows(&self) -> Option<RawRows> {
        match self {
            TrackValue::CellRun { raw, .. } => *raw,
            TrackValue::AnchorRun { .. } => None,
        }
    }

    /// Appends the canonical encoding.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        let with_raw = matches!(
            self,
            TrackValue::CellRun { raw: Some(_), .. }
                | TrackValue::AnchorRun {
                    storage: Some(_),
                    ..
                }
        );
        enc::map(out, if with_raw { 6 } else { 5 });
        match self {
            TrackValue::AnchorRun {
                segment,
                last_anchor,
                count,
                table_offset,
                table_len,
                storage,
            } => {
                enc::text(out, "a");
                enc::uint(out, *last_anchor);
                enc::text(out, "l");
                enc::uint(out, *table_len);
                enc::text(out, "n");
                enc::uint(out, u64::from(*count));
                enc::text(out, "o");
                enc::uint(out, *table_offset);
                if let Some(storage) = storage {
                    enc::text(out, "r");
                    enc::hash(out, storage);
                }
                enc::text(out, "s");
                enc::hash(out, segment);
            }
            TrackValue::CellRun {
                segment,
                offset,
                len,
                count,
                run_hash,
                raw,
            } => {
                enc::text(out, "h");
                enc::bytes(out, &run_hash.to_compact());
                enc::text(out, "l");
                enc::uint(out, *len);
                enc::text(out, "n");
                enc::uint(out, u64::from(*count));
                enc::text(out, "o");
                enc::uint(out, *offset);
                if let Some(raw) = raw {
                    enc::text(out, "r");
                    raw.encode_into(out);
                }
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
                storage,
                ..
            } => {
                fixed
                    + enc::head_len(*last_anchor)
                    + enc::head_len(u64::from(*count))
                    + enc::head_len(*table_offset)
                    + enc::head_len(*table_len)
                    + storage.map_or(0, |_| 2 + enc::HASH_LEN)
            }
            TrackValue::CellRun {
                offset,
                len,
                count,
                raw,
                ..
            } => {
                fixed
                    + enc::bytes_len(dreamdb_core::hash::COMPACT_LEN)
                    + enc::head_len(*offset)
                    + enc::head_len(*len)
                    + enc::head_len(u64::from(*count))
                    + raw.as_ref().map_or(0, |r| 2 + r.encoded_len())
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
                storage,
            } => {
                let mut entries = vec![
                    (t("a"), enc::uint_value(*last_anchor)),
                    (t("l"), enc::uint_value(*table_len)),
                    (t("n"), enc::uint_value(u64::from(*count))),
                    (t("o"), enc::uint_value(*table_offset)),
                ];
                if let Some(storage) = storage {
                    entries.push((t("r"), enc::hash_value(storage)));
                }
                entries.push((t("s"), enc::hash_value(segment)));
                Value::Map(entries)
            }
            TrackValue::CellRun {
                segment,
                offset,
                len,
                count,
                run_hash,
                raw,
            } => {
                let mut entries = vec![
                    (t("h"), Value::Bytes(run_hash.to_compact().to_vec())),
                    (t("l"), enc::uint_value(*len)),
                    (t("n"), enc::uint_value(u64::from(*count))),
                    (t("o"), enc::uint_value(*offset)),
                ];
                if let Some(raw) = raw {
                    entries.push((t("r"), raw.to_value()));
                }
                entries.push((t("s"), enc::hash_value(segment)));
                Value::Map(entries)
            }
        }
    }

    /// Reads a value from a CBOR value tree: exactly the keys of one
    /// variant, each of the right type and range.
    pub fn from_value(value: &Value) -> Result<Self, String> {
        let Value::Map(entries) = value else {
            return Err("a track value must be a map".to_owned());
        };
        let mut fields: [Option<&Value>; 7] = [None; 7];
        const NAMES: [&str; 7] = ["a", "h", "l", "n", "o", "r", "s"];
        for (k, v) in entries {
            let name = enc::read_text_key(k)?;
            let Some(slot) = NAMES.iter().position(|n| *n == name) else {
                return Err(format!("unknown key {name:?} in a track value"));
            };
            if fields[slot].replace(v).is_some() {
                return Err(format!("duplicate key {name:?} in a track value"));
            }
        }
        let [a, h, l, n, o, r, s] = fields;
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
                storage: r
                    .map(|r| {
                        enc::read_hash(r).map_err(|e| {
                            format!("an anchor run's \"r\" must be a vector-storage hash: {e}")
                        })
                    })
                    .transpose()?,
            }),
            (None, Some(h)) => Ok(TrackValue::CellRun {
                segment,
                offset,
                len,
                count,
                run_hash: read_run_hash(h)?,
                raw: r.map(RawRows::from_value).transpose()?,
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

/// Reads a run hash: the compact hash form as a plain byte string. It is
/// deliberately *not* tagged 65521, because it names a byte range of the
/// segment, not an object (tag 65521 values are links, spec/0009 §3.2).
fn read_run_hash(value: &Value) -> Result<ContentHash, String> {
    match value {
        Value::Bytes(b) => ContentHash::from_compact(b).map_err(|e| format!("run hash: {e}")),
        _ => Err("a run hash (\"h\") must be a plain byte string".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cell(raw: Option<RawRows>) -> TrackValue {
        TrackValue::CellRun {
            segment: ContentHash::of(b"bucket"),
            offset: 300,
            len: 70_000,
            count: 2_500,
            run_hash: ContentHash::of(b"run"),
            raw,
        }
    }

    /// Encodes `value`, checks its length, canonical form, value tree and
    /// decoding; returns the tree.
    fn round_trips_canonically(value: &TrackValue) -> Value {
        let mut out = Vec::new();
        value.encode_into(&mut out);
        assert_eq!(out.len(), value.encoded_len());
        let tree = dreamdb_core::cbor::decode_value(&out).unwrap();
        assert_eq!(dreamdb_core::cbor::encode_value(&tree).unwrap(), out);
        assert_eq!(tree, value.to_value());
        assert_eq!(TrackValue::from_value(&tree).unwrap(), *value);
        tree
    }

    #[test]
    fn raw_rows_round_trip_canonically() {
        let raw = RawRows {
            storage: ContentHash::of(b"storage"),
            offset: 123_456_789,
            len: 1_280_000,
            hash: ContentHash::of(b"rows"),
        };
        for value in [cell(None), cell(Some(raw))] {
            round_trips_canonically(&value);
        }
        assert_eq!(cell(None).with_raw_rows(raw), cell(Some(raw)));
        assert_eq!(cell(Some(raw)).raw_rows(), Some(raw));
        // The storage is a tagged hash: generic link walks find it.
        let links = crate::store::links(&cell(Some(raw)).to_value());
        assert!(links.contains(&raw.storage));
    }

    #[test]
    fn an_anchor_run_names_its_vector_storage_as_a_link() {
        let storage = ContentHash::of(b"storage");
        let value = TrackValue::AnchorRun {
            segment: ContentHash::of(b"bucket"),
            last_anchor: 1 << 40,
            count: 1_000,
            table_offset: 70_000,
            table_len: 8_000,
            storage: Some(storage),
        };
        let tree = round_trips_canonically(&value);
        assert_eq!(value.anchor_storage(), Some(storage));
        // Reachable for gc through the generic link walk.
        assert!(crate::store::links(&tree).contains(&storage));
        // A plain byte string is not a link: refused.
        let mut plain = value.to_value();
        if let Value::Map(entries) = &mut plain {
            entries[4].1 = Value::Bytes(storage.to_compact().to_vec());
        }
        assert!(TrackValue::from_value(&plain)
            .unwrap_err()
            .contains("vector-storage hash"));
    }

    #[test]
    fn raw_rows_are_refused_on_anchor_runs_and_checked() {
        let anchor = TrackValue::AnchorRun {
            segment: ContentHash::of(b"s"),
            last_anchor: 9,
            count: 1,
            table_offset: 1,
            table_len: 8,
            storage: None,
        };
        let mut tree = anchor.to_value();
        if let Value::Map(entries) = &mut tree {
            entries.push((
                Value::Text("r".into()),
                Value::Map(vec![(Value::Text("l".into()), enc::uint_value(1))]),
            ));
        }
        assert!(TrackValue::from_value(&tree).is_err());
        let mut bad = cell(None).to_value();
        if let Value::Map(entries) = &mut bad {
            entries.insert(
                4,
                (
                    Value::Text("r".into()),
                    Value::Map(vec![(Value::Text("x".into()), enc::uint_value(1))]),
                ),
            );
        }
        assert!(TrackValue::from_value(&bad)
            .unwrap_err()
            .contains("unknown key"));
    }
}
