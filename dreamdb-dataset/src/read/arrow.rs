//! `iter_arrow_batches`: the records as Arrow `RecordBatch`es.
//!
//! Column types (the first column is always `_anchor: UInt64`, not null):
//!
//! | field | Arrow type | nullable |
//! |---|---|---|
//! | embedding (dim d) | `FixedSizeList<Float32>(d)` (item not null) | yes¹ |
//! | blob | `Binary` | yes¹ |
//! | scalar i64 | `Int64` | as the schema says |
//! | scalar f64 | `Float64` | as the schema says |
//! | scalar bool | `Boolean` | as the schema says |
//! | scalar string | `Utf8` | as the schema says |
//! | scalar categorical | `Dictionary(Int32, Utf8)` (keys per batch) | as the schema says |
//! | scalar timestamp | `Timestamp(Nanosecond, "UTC")` | as the schema says |
//!
//! ¹ Embedding and blob fields are required in every append, but a field
//! added later by a layer has no value for older records, so their columns
//! are declared nullable.
//!
//! Arrays are built by moving the decoded buffers (an embedding column is
//! one `Float32Array` over the batch's `rows × dim` values wrapped in a
//! `FixedSizeListArray`), with no per-row boxing.
//!
//! **Shuffle.** With a seed, the plan's units (anchor intervals, normally
//! one append's runs) are permuted by
//! `DeterministicStream::from_seed(seed, "dreamdb.iter.shuffle")`, then the
//! rows of each unit (the bounded window) by the same stream continued. The
//! same seed and snapshot give the same order on every machine.
//!
//! **Shards.** `shard: Some((i, n))` keeps the units whose position after
//! the shuffle is `i mod n`: shards `0..n` are disjoint and together hold
//! every record, each shard reads only its own units (for data-parallel
//! training with one shard per (rank, worker)).

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, DictionaryArray, FixedSizeListArray, Float32Array,
    Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray, UInt64Array,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};
use dreamdb_core::time::TimeRange;
use dreamdb_protocol::objects::ScalarDtype;
use futures::{Stream, StreamExt};

use super::column::{ReadBatch, ReadColumn};
use super::iter::{batches, IterOptions, Order};
use super::{resolve_fields, FieldKind};
use crate::batch::ScalarColumn;
use crate::{DatasetError, Snapshot};

/// The name of the anchor column.
pub const ANCHOR_COLUMN: &str = "_anchor";

/// Options of [`iter_arrow_batches`].
#[derive(Debug, Clone, PartialEq)]
pub struct ArrowOptions {
    /// Rows per batch (≥ 1; the last batch may be shorter).
    pub batch_size: usize,
    /// Fields (`None`: every readable field).
    pub fields: Option<Vec<String>>,
    /// Deterministic shuffle (see the module docs).
    pub shuffle_seed: Option<u64>,
    /// `(i, n)`: only shard `i` of `n`.
    pub shard: Option<(usize, usize)>,
    /// Only anchors in this range.
    pub range: Option<TimeRange>,
    /// Units fetched ahead of the consumer.
    pub prefetch_runs: usize,
}

impl Default for ArrowOptions {
    fn default() -> Self {
        ArrowOptions {
            batch_size: 1024,
            fields: None,
            shuffle_seed: None,
            shard: None,
            range: None,
            prefetch_runs: 4,
        }
    }
}

fn arrow_error(e: arrow_schema::ArrowError) -> DatasetError {
    DatasetError::Protocol(format!("arrow: {e}"))
}

/// The Arrow field of one dataset field named `name`.
pub(crate) fn arrow_field(name: &str, kind: FieldKind) -> Field {
    match kind {
        FieldKind::Embedding { dim, .. } => Field::new(
            name,
            DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::Float32, false)),
                dim as i32,
            ),
            true,
        ),
        FieldKind::Blob => Field::new(name, DataType::Binary, true),
        FieldKind::Scalar { dtype, nullable } => {
            let t = match dtype {
                ScalarDtype::I64 => DataType::Int64,
                ScalarDtype::F64 => DataType::Float64,
                ScalarDtype::Bool => DataType::Boolean,
                ScalarDtype::String => DataType::Utf8,
                ScalarDtype::Categorical => {
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
                }
                ScalarDtype::Timestamp => {
                    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
                }
            };
            Field::new(name, t, nullable)
        }
    }
}

/// The Arrow schema of batches of `fields` (`None`: every readable field).
pub fn arrow_schema(
    snapshot: &Snapshot,
    fields: Option<&[String]>,
) -> Result<SchemaRef, DatasetError> {
    let mut out = vec![Field::new(ANCHOR_COLUMN, DataType::UInt64, false)];
    for (name, kind) in resolve_fields(snapshot, fields)? {
        out.push(arrow_field(&name, kind));
    }
    Ok(Arc::new(ArrowSchema::new(out)))
}

fn nulls_of(valid: &[bool]) -> Option<NullBuffer> {
    (!valid.iter().all(|v| *v)).then(|| NullBuffer::from(valid.to_vec()))
}

/// One column as an Arrow array of `field`'s type.
pub(crate) fn column_array(field: &Field, column: ReadColumn) -> Result<ArrayRef, DatasetError> {
    Ok(match column {
        ReadColumn::Embedding { dim, values, valid } => {
            let DataType::FixedSizeList(item, _) = field.data_type() else {
                return Err(DatasetError::Protocol("arrow: embedding field type".into()));
            };
            Arc::new(
                FixedSizeListArray::try_new(
                    item.clone(),
                    dim as i32,
                    Arc::new(Float32Array::new(values, None)),
                    nulls_of(&valid),
                )
                .map_err(arrow_error)?,
            )
        }
        ReadColumn::Blob(v) => Arc::new(BinaryArray::from_iter(v.iter().map(|b| b.as_deref()))),
        ReadColumn::Scalar(c) => match c {
            ScalarColumn::I64(v) => Arc::new(Int64Array::from(v)),
            ScalarColumn::F64(v) => Arc::new(Float64Array::from(v)),
            ScalarColumn::Bool(v) => Arc::new(BooleanArray::from(v)),
            ScalarColumn::Str(v) => Arc::new(StringArray::from(v)),
            ScalarColumn::Categorical(v) => Arc::new(
                v.iter()
                    .map(|s| s.as_deref())
                    .collect::<DictionaryArray<Int32Type>>(),
            ),
            ScalarColumn::Timestamp(v) => {
                Arc::new(TimestampNanosecondArray::from(v).with_timezone("UTC"))
            }
        },
    })
}

/// Converts a [`ReadBatch`] to a `RecordBatch` of `schema` (from
/// [`arrow_schema`] for the same fields).
pub fn to_record_batch(
    schema: &SchemaRef,
    mut batch: ReadBatch,
) -> Result<RecordBatch, DatasetError> {
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    arrays.push(Arc::new(UInt64Array::from(std::mem::take(
        &mut batch.anchors,
    ))));
    for field in schema.fields().iter().skip(1) {
        let column = batch.columns.remove(field.name()).ok_or_else(|| {
            DatasetError::Protocol(format!("arrow: batch lacks field {:?}", field.name()))
        })?;
        if !field.is_nullable() && (0..column.len()).any(|i| !column.is_valid(i)) {
            return Err(DatasetError::Integrity(format!(
                "field {:?} is not nullable but some records have no value",
                field.name()
            )));
        }
        arrays.push(column_array(field, column)?);
    }
    RecordBatch::try_new(schema.clone(), arrays).map_err(arrow_error)
}

/// The records as Arrow batches (see the module docs for types, shuffle and
/// shards). Option errors are returned at once; read errors end the stream.
pub fn iter_arrow_batches(
    snapshot: &Snapshot,
    options: ArrowOptions,
) -> Result<
    impl Stream<Item = Result<RecordBatch, DatasetError>> + Send + Unpin + 'static,
    DatasetError,
> {
    let schema = arrow_schema(snapshot, options.fields.as_deref())?;
    let iter = IterOptions {
        fields: Some(
            schema
                .fields()
                .iter()
                .skip(1)
                .map(|f| f.name().clone())
                .collect(),
        ),
        range: options.range,
        batch_size: options.batch_size,
        prefetch_runs: options.prefetch_runs,
    };
    let order = Order {
        shuffle_seed: options.shuffle_seed,
        shard: options.shard,
    };
    let (stream, _monitor) = batches(snapshot, &iter, order)?;
    Ok(stream.map(move |b| b.and_then(|b| to_record_batch(&schema, b))))
}
