//! `objects` vectors: every object kind of spec/0001, 0007 and 0020.
//!
//! Each vector gives `kind` and `bytes`; the reader decodes the bytes as
//! that kind, expecting the name `claimed_hash` when present (a vector of
//! a wrong name) and `bytes_hash` otherwise. A valid vector's `summary`
//! lists a few decoded fields to compare; an invalid one's `error` is the
//! class of the refusal, and the error must name the kind and the object.

use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::{
    BlobSegment, Fragment, Genesis, ItemManifest, Manifest, ObjectError, ObjectKind, RefObject,
    ScalarBucket, Schema, SpatialBucket, SpatialIndexObject, TombstoneList, VectorCompressorObject,
    VectorStorage,
};
use serde_json::{Map, Value};

use crate::{expect_eq, fields, Vector};

type Summary = Map<String, Value>;

fn summary<const N: usize>(pairs: [(&str, Value); N]) -> Summary {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn text(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

fn read<T: ObjectKind>(
    hash: &ContentHash,
    bytes: &[u8],
    describe: impl FnOnce(&T) -> Result<Summary, ObjectError>,
) -> Result<Summary, ObjectError> {
    T::decode(hash, bytes).and_then(|object| describe(&object))
}

/// Decodes `bytes` as `kind` and summarises it; `Err(String)` for a kind
/// this suite does not know.
fn decode(
    kind: &str,
    hash: &ContentHash,
    bytes: &[u8],
) -> Result<Result<Summary, ObjectError>, String> {
    Ok(match kind {
        "genesis" => read(hash, bytes, |g: &Genesis| {
            Ok(summary([
                ("dataset", text(g.dataset.clone())),
                ("created_unix_nanos", g.created_unix_nanos.into()),
            ]))
        }),
        "schema" => read(hash, bytes, |s: &Schema| {
            let names: Vec<&str> = s.fields.keys().map(String::as_str).collect();
            Ok(summary([("fields", text(names.join(",")))]))
        }),
        "manifest" => read(hash, bytes, |m: &Manifest| {
            let tracks: Vec<&str> = m.tracks.keys().map(String::as_str).collect();
            Ok(summary([
                ("height", m.height.into()),
                ("parents", m.parents.len().into()),
                ("records", m.records.into()),
                ("tracks", text(tracks.join(","))),
                ("writer", text(m.writer.clone())),
            ]))
        }),
        "ref" => read(hash, bytes, |r: &RefObject| {
            Ok(summary([
                ("manifest", text(r.manifest.to_hex())),
                ("genesis", text(r.genesis.to_hex())),
            ]))
        }),
        "spatial-index" => read(hash, bytes, |s: &SpatialIndexObject| {
            Ok(summary([
                ("algorithm", text(s.algorithm.clone())),
                ("cells", s.cells.into()),
                ("dim", s.dim.into()),
                ("changed_cells", s.changed_cells.len().into()),
            ]))
        }),
        "vector-compressor" => read(hash, bytes, |c: &VectorCompressorObject| {
            Ok(summary([
                ("algorithm", text(c.algorithm.clone())),
                ("bits", c.bits.into()),
                ("dim", c.dim.into()),
                ("seed", c.seed.into()),
            ]))
        }),
        "spatial-bucket" => read(hash, bytes, |b: &SpatialBucket| {
            Ok(summary([
                ("count", b.count().into()),
                ("runs", b.runs.len().into()),
                ("record_size", b.record_size.into()),
                ("payload_offset", b.payload_offset()?.into()),
                ("anchors_offset", b.anchors_range()?.offset.into()),
            ]))
        }),
        "vector-storage" => read(hash, bytes, |v: &VectorStorage| {
            Ok(summary([
                ("count", v.count().into()),
                ("dim", v.dim.into()),
                ("vectors_offset", v.vectors_offset()?.into()),
            ]))
        }),
        "scalar-bucket" => read(hash, bytes, |s: &ScalarBucket| {
            let nulls = (0..s.count()).filter(|i| s.is_null(*i)).count();
            let dtype = serde_json::to_value(s.dtype).map_err(|e| {
                ObjectError::new(
                    ScalarBucket::KIND,
                    None,
                    dreamdb_protocol::objects::Problem::Encode(e.to_string()),
                )
            })?;
            Ok(summary([
                ("count", s.count().into()),
                ("dtype", dtype),
                ("nulls", nulls.into()),
            ]))
        }),
        "blob-segment" => read(hash, bytes, |b: &BlobSegment| {
            Ok(summary([
                ("count", b.count().into()),
                ("payload_offset", b.payload_offset()?.into()),
            ]))
        }),
        "fragment" => read(hash, bytes, |f: &Fragment| {
            Ok(summary([
                ("start", f.range.start().as_nanos().into()),
                ("end", f.range.end().as_nanos().into()),
                ("mime", text(f.mime.clone())),
                ("payload_offset", f.payload_range()?.offset.into()),
            ]))
        }),
        "item-manifest" => read(hash, bytes, |i: &ItemManifest| {
            Ok(summary([
                ("chunks", i.chunks.len().into()),
                ("total", i.total.into()),
            ]))
        }),
        "tombstones" => read(hash, bytes, |t: &TombstoneList| {
            Ok(summary([
                ("entries", t.entries.len().into()),
                ("parents", t.parents.len().into()),
            ]))
        }),
        other => return Err(format!("unknown object kind {other:?}")),
    })
}

pub(crate) fn check(vector: &Vector) -> Result<(), String> {
    let kind = fields::str(vector, "kind")?;
    let bytes = fields::hex(vector, "bytes")?;
    let name = match fields::opt_str(vector, "claimed_hash")? {
        Some(claimed) => claimed,
        None => fields::str(vector, "bytes_hash")?,
    };
    let expected = ContentHash::from_hex(name).map_err(|e| format!("bad hash {name:?}: {e}"))?;
    let outcome = decode(kind, &expected, &bytes)?;
    super::expect_outcome(
        vector,
        outcome,
        |e| {
            // The error must name the object: its kind and the name asked for.
            if e.kind != kind || e.hash != Some(expected) {
                format!("error does not name {kind} {expected}: {e}")
            } else {
                e.class()
            }
        },
        |computed| {
            let Some(Value::Object(wanted)) = vector.fields.get("summary") else {
                return Err("a valid vector needs a summary object".to_owned());
            };
            if wanted.is_empty() {
                return Err("summary is empty".to_owned());
            }
            for (field, value) in wanted {
                let actual = computed
                    .get(field)
                    .ok_or_else(|| format!("summary field {field:?} is not known for {kind}"))?;
                expect_eq(&format!("summary {field}"), value, actual)?;
            }
            Ok(())
        },
    )
}
