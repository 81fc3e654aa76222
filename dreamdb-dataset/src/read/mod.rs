//! The read side of the SDK (design/0002 "Read path"): every function takes
//! a pinned [`Snapshot`], so a read never sees a ref move underneath it.
//!
//! - [`get()`]: one record by anchor — the anchor-order runs covering it, the
//!   run's anchor table by range, then the record's bytes by range;
//! - [`query()`]: top-k by vector — probe cells, fetch the probed cells' runs
//!   (ranged, verified by run hash, concurrently), estimate with RaBitQ,
//!   rerank exactly from raw rows, drop tombstones, apply a scalar
//!   [`Filter`], fetch the requested fields of the hits;
//! - [`iter_stream()`] / [`iter()`]: every live record in anchor order, in
//!   bounded memory with backpressure, fetching only the fields asked for;
//! - [`iter_arrow_batches()`]: the same as Arrow `RecordBatch`es, with a
//!   deterministic shuffle and a shard selector;
//! - [`compare_refs()`]: one field across versions as a wide Arrow table
//!   with summary statistics.
//!
//! No function here issues a LIST (spec/0006 §1); objects and index pages
//! come through the snapshot's session cache, byte ranges of segments are
//! read with ranged GETs.
//!
//! **Values.** Embeddings come back exactly as appended when the field
//! stores raw f32 vectors (no compression, or compression with `rerank`);
//! a compressed field without raw vectors can only give the RaBitQ
//! reconstruction (approximate, in the metric's prepared space: unit
//! length for cosine). Timestamps come back as `I64` nanoseconds since the
//! Unix epoch, categorical values as `Str`. Fragment fields are not
//! readable through these verbs.

mod arrow;
mod column;
mod compare;
mod fetch;
mod filter;
mod get;
mod huge_pages;
mod iter;
mod kept;
mod query;
mod wrappers;

use std::collections::BTreeMap;

use bytes::Bytes;
use dreamdb_core::time::TimeAnchor;
use dreamdb_protocol::dag::TOMBSTONES_KEY;
use dreamdb_protocol::objects::{
    Compression, FieldSpec, Metric, ObjectKind, ScalarDtype, TombstoneList,
};

pub use arrow::{arrow_schema, iter_arrow_batches, to_record_batch, ArrowOptions};
pub use column::{ReadBatch, ReadColumn};
pub use compare::{compare_refs, Comparison, RefSummary};
pub use filter::{Filter, Predicate};
pub use get::get;
pub use iter::{iter, iter_stream, iter_stream_monitored, IterMonitor, IterOptions};
pub(crate) use query::every_first_read;
pub use query::{clear_decoded_caches, query, Hit, QueryRequest, QueryResult, QueryStats};

use crate::{DatasetError, Snapshot};

/// One value of one field of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An embedding vector.
    Embedding(Vec<f32>),
    /// A blob.
    Blob(Bytes),
    /// A signed integer (also timestamps: Unix nanoseconds).
    I64(i64),
    /// A double.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// Text (also categorical labels).
    Str(String),
    /// No value (a null scalar, or a field the record does not have).
    Null,
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I64(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::F64(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(v)
    }
}

/// One record: its anchor and the values of the fields asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The record's anchor (nanoseconds since the dataset's Genesis).
    pub anchor: u64,
    /// Field → value ([`Value::Null`] where the record has none).
    pub fields: BTreeMap<String, Value>,
}

/// What a readable field is, from the Schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    /// Embeddings: `dim`, metric, whether codes are compressed, whether
    /// raw vectors are kept.
    Embedding {
        dim: u32,
        metric: Metric,
        compressed: bool,
        rerank: bool,
    },
    /// Blobs.
    Blob,
    /// Scalars.
    Scalar { dtype: ScalarDtype, nullable: bool },
}

impl FieldKind {
    fn of(name: &str, spec: &FieldSpec) -> Result<FieldKind, DatasetError> {
        Ok(match spec {
            FieldSpec::Embedding {
                dim,
                metric,
                compression,
                rerank,
                ..
            } => FieldKind::Embedding {
                dim: *dim,
                metric: *metric,
                compressed: matches!(compression, Some(Compression::Rabitq { .. })),
                rerank: *rerank,
            },
            FieldSpec::Blob { .. } => FieldKind::Blob,
            FieldSpec::Scalar { dtype, nullable } => FieldKind::Scalar {
                dtype: *dtype,
                nullable: *nullable,
            },
            FieldSpec::Fragment { .. } => {
                return Err(DatasetError::invalid(
                    name,
                    "fragment fields are not readable through get/query/iter",
                ))
            }
        })
    }
}

/// The kind of field `name` in the snapshot's schema (unknown → typed
/// error naming the known fields).
pub(crate) fn field_kind(snapshot: &Snapshot, name: &str) -> Result<FieldKind, DatasetError> {
    let Some(field) = snapshot.schema().fields.get(name) else {
        let known: Vec<&str> = snapshot
            .schema()
            .fields
            .keys()
            .map(String::as_str)
            .collect();
        return Err(DatasetError::invalid(
            name,
            format!("unknown field (the schema has {known:?})"),
        ));
    };
    FieldKind::of(name, &field.spec)
}

/// Resolves a field selection: `None` = every readable field (fragments
/// skipped), `Some(list)` = exactly those (each checked, duplicates
/// removed, order kept).
pub(crate) fn resolve_fields(
    snapshot: &Snapshot,
    fields: Option<&[String]>,
) -> Result<Vec<(String, FieldKind)>, DatasetError> {
    match fields {
        None => Ok(snapshot
            .schema()
            .fields
            .iter()
            .filter_map(|(name, f)| {
                FieldKind::of(name, &f.spec)
                    .ok()
                    .map(|kind| (name.clone(), kind))
            })
            .collect()),
        Some(list) => {
            let mut out: Vec<(String, FieldKind)> = Vec::with_capacity(list.len());
            for name in list {
                if out.iter().any(|(n, _)| n == name) {
                    continue;
                }
                out.push((name.clone(), field_kind(snapshot, name)?));
            }
            Ok(out)
        }
    }
}

/// The snapshot's tombstones (one cached object read; none → empty).
#[derive(Debug, Clone, Default)]
pub(crate) struct Tombstones(Option<std::sync::Arc<TombstoneList>>);

impl Tombstones {
    pub(crate) async fn load(snapshot: &Snapshot) -> Result<Tombstones, DatasetError> {
        let Some(hash) = snapshot.manifest().registry.get(TOMBSTONES_KEY) else {
            return Ok(Tombstones(None));
        };
        let bytes = snapshot.store().get_bytes(hash).await?;
        let list = TombstoneList::decode(hash, &bytes)?;
        Ok(Tombstones(
            (!list.entries.is_empty()).then(|| std::sync::Arc::new(list)),
        ))
    }

    /// Whether nothing is deleted in this version.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Whether `anchor` is deleted in this version.
    pub(crate) fn contains(&self, anchor: u64) -> bool {
        self.0
            .as_ref()
            .is_some_and(|list| list.contains(TimeAnchor::new(anchor)))
    }
}
