//! Building one append's segments and track changes, per field, in memory
//! (CPU only: nothing here does I/O, so a refused batch writes nothing).
//!
//! - embedding: (train the spatial index and compressor when the field has
//!   none yet), assign cells, encode RaBitQ codes of residuals, one
//!   `spatial-bucket` grouped by cell, one `vector-storage` of raw rows in
//!   the same order when rerank is on; one anchor-order run and one
//!   cell-order run per touched cell;
//! - blob: one `blob-segment`, one anchor-order run;
//! - scalar: one `scalar-bucket`, one anchor-order run.

use bytes::Bytes;
use dreamdb_core::time::TimeAnchor;
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::{
    BlobSegment, BucketParams, Compression, IndexSpec, Metric, ObjectKind, ScalarBucket,
    ScalarDtype, ScalarValues, SpatialBucket, SpatialRecord, VectorStorage,
};
use dreamdb_protocol::spatial::flat::FlatIndex;
use dreamdb_protocol::spatial::imi::{ImiIndex, ImiParams};
use dreamdb_protocol::spatial::ivf::{IvfIndex, IvfParams};
use dreamdb_protocol::spatial::lsh::{LshIndex, LshParams};
use dreamdb_protocol::spatial::rabitq::{RaBitQ, VectorCompressor, FACTORS};
use dreamdb_protocol::spatial::SpatialIndex;
use dreamdb_protocol::track::{Change, TrackKey, TrackValue};
use rayon::prelude::*;

use super::compat::{self, RawRows};
use super::layout::{
    self, cell_count, object_of_compressor, object_of_index, residual_centroid, LoadedSpatial,
};
use super::stats::StatsData;
use crate::batch::ScalarColumn;
use crate::DatasetError;

/// Lloyd iterations of IVF / IMI training.
pub const TRAIN_ITERATIONS: u32 = 10;

/// Training rows drawn at most per cell (with a floor), so training cost
/// stays bounded for large first batches.
const TRAIN_ROWS_PER_CELL: u32 = 64;
const TRAIN_ROWS_MIN: u32 = 16_384;

/// One encoded object to write.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    pub(crate) hash: ContentHash,
    pub(crate) bytes: Bytes,
}

fn encode<T: ObjectKind>(object: &T) -> Result<Encoded, DatasetError> {
    let (bytes, hash) = object.encode()?;
    Ok(Encoded {
        hash,
        bytes: Bytes::from(bytes),
    })
}

/// What one field contributes to an append.
#[derive(Debug, Clone)]
pub(crate) struct FieldPlan {
    /// The field.
    pub(crate) field: String,
    /// New objects (segments, and the spatial index and compressor when
    /// trained by this append).
    pub(crate) objects: Vec<Encoded>,
    /// Track changes.
    pub(crate) changes: Vec<Change>,
    /// Embedding: the spatial index the records were placed under.
    pub(crate) spatial_index: Option<ContentHash>,
    /// Embedding: the compressor of the codes.
    pub(crate) compressor: Option<ContentHash>,
    /// Embedding: whether this append trained the index (the tip had none).
    pub(crate) trained: bool,
    /// Embedding: records and runs added per cell.
    pub(crate) stats_delta: Option<StatsData>,
    /// Embedding: cell ids of the index and its live cells.
    pub(crate) cells: Option<(u32, Vec<u32>)>,
    /// Largest anchor written.
    pub(crate) last_anchor: u64,
}

/// The embedding field's parameters from the schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EmbeddingSpec {
    pub(crate) dim: u32,
    pub(crate) metric: Metric,
    pub(crate) index: IndexSpec,
    pub(crate) compression: Option<Compression>,
    pub(crate) rerank: bool,
}

/// A seed per field, so training is deterministic for given data.
pub(crate) fn field_seed(field: &str, seed: u64) -> u64 {
    let digest = blake3::hash(field.as_bytes());
    let mut word = [0u8; 8];
    word.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(word) ^ seed
}

/// Trains (or builds) the spatial index and compressor of a field.
pub(crate) fn train_spatial(
    field: &str,
    spec: &EmbeddingSpec,
    training: &[f32],
    seed: u64,
) -> Result<(SpatialIndex, Option<RaBitQ>), DatasetError> {
    let dim = spec.dim as usize;
    let metric = layout::spatial_metric(spec.metric);
    let rows = training.len() / dim.max(1);
    let refuse = |reason: String| DatasetError::invalid(field, reason);
    let index = match spec.index {
        IndexSpec::Ivf { k } => {
            if (k as usize) > rows {
                return Err(refuse(format!(
                    "training the IVF index needs at least k = {k} vectors, got {rows}; append a larger first batch or pass a training sample in AppendOptions"
                )));
            }
            let params = IvfParams {
                metric,
                k,
                seed,
                iterations: TRAIN_ITERATIONS,
                sample: Some(k.saturating_mul(TRAIN_ROWS_PER_CELL).max(TRAIN_ROWS_MIN)),
            };
            SpatialIndex::Ivf(
                IvfIndex::train(params, dim, training)
                    .map_err(|e| refuse(format!("training the IVF index: {e}")))?,
            )
        }
        IndexSpec::Lsh { tables, bits } => SpatialIndex::Lsh(
            LshIndex::new(dim, LshParams { tables, bits, seed })
                .map_err(|e| refuse(format!("building the LSH index: {e}")))?,
        ),
        IndexSpec::Imi { k1, k2 } => {
            if (k1.max(k2) as usize) > rows {
                return Err(refuse(format!(
                    "training the IMI index needs at least max(k1, k2) = {} vectors, got {rows}",
                    k1.max(k2)
                )));
            }
            let params = ImiParams {
                k1,
                k2,
                seed,
                iterations: TRAIN_ITERATIONS,
                sample: Some(
                    k1.max(k2)
                        .saturating_mul(TRAIN_ROWS_PER_CELL)
                        .max(TRAIN_ROWS_MIN),
                ),
            };
            SpatialIndex::Imi(
                ImiIndex::train(params, dim, training)
                    .map_err(|e| refuse(format!("training the IMI index: {e}")))?,
            )
        }
        IndexSpec::Flat => SpatialIndex::Flat(
            FlatIndex::new(dim, metric).map_err(|e| refuse(format!("flat index: {e}")))?,
        ),
    };
    let compressor = match spec.compression {
        Some(Compression::Rabitq { bits }) => Some(
            RaBitQ::new(VectorCompressor::rabitq(bits, spec.dim, seed, metric))
                .map_err(|e| refuse(format!("building the RaBitQ compressor: {e}")))?,
        ),
        None => None,
    };
    Ok((index, compressor))
}

/// The spatial objects of a freshly trained index and compressor.
pub(crate) fn spatial_objects(
    index: SpatialIndex,
    compressor: Option<RaBitQ>,
    metric: Metric,
) -> Result<(LoadedSpatial, Vec<Encoded>), DatasetError> {
    let index_object = encode(&object_of_index(&index, metric)?)?;
    let mut objects = vec![index_object.clone()];
    let compressor_hash = match &compressor {
        Some(c) => {
            let e = encode(&object_of_compressor(c))?;
            let h = e.hash;
            objects.push(e);
            Some(h)
        }
        None => None,
    };
    Ok((
        LoadedSpatial {
            index,
            index_hash: index_object.hash,
            compressor,
            compressor_hash,
        },
        objects,
    ))
}

/// The anchor-order entry of `segment`; `storage` names a spatial
/// bucket's vector storage (spec/0007 T2).
fn anchor_run(
    segment: ContentHash,
    anchors: &[u64],
    table: (u64, u64),
    storage: Option<ContentHash>,
) -> Change {
    let first = anchors.iter().copied().min().unwrap_or(0);
    let last = anchors.iter().copied().max().unwrap_or(0);
    Change::Put(
        TrackKey::anchor_run(first, &segment),
        TrackValue::AnchorRun {
            segment,
            last_anchor: last,
            count: anchors.len() as u32,
            table_offset: table.0,
            table_len: table.1,
            storage,
        },
    )
}

/// Plans an embedding field: `values` row-major, `anchors` one per row.
pub(crate) fn plan_embedding(
    field: &str,
    spec: &EmbeddingSpec,
    values: &[f32],
    anchors: &[u64],
    spatial: &LoadedSpatial,
    mut objects: Vec<Encoded>,
    trained: bool,
) -> Result<FieldPlan, DatasetError> {
    let dim = spec.dim as usize;
    let n = anchors.len();
    let index = &spatial.index;
    let cells: Vec<u32> = match index {
        SpatialIndex::Ivf(i) => i.assign(values)?,
        other => (0..n)
            .into_par_iter()
            .map(|i| other.assign_one(&values[i * dim..(i + 1) * dim]))
            .collect::<Result<_, _>>()?,
    };
    let records: Vec<(u32, SpatialRecord)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let v = &values[i * dim..(i + 1) * dim];
            let cell = cells[i];
            let (factors, code) = match &spatial.compressor {
                Some(rq) => {
                    let e = rq.encode(v, residual_centroid(index, cell)?)?;
                    let code: Vec<u8> = e.code.iter().flat_map(|w| w.to_le_bytes()).collect();
                    (e.factors.to_vec(), code)
                }
                None => (Vec::new(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            };
            Ok((
                cell,
                SpatialRecord {
                    anchor: TimeAnchor::new(anchors[i]),
                    factors,
                    code,
                },
            ))
        })
        .collect::<Result<_, DatasetError>>()?;
    let params = BucketParams {
        spatial_index: spatial.index_hash,
        compressor: spatial.compressor_hash,
        dim: spec.dim,
        factors: if spatial.compressor.is_some() {
            FACTORS as u32
        } else {
            0
        },
    };
    let bucket = SpatialBucket::build(params, records)?;
    let bucket_object = encode(&bucket)?;
    let bucket_hash = bucket_object.hash;
    // The bucket's record order: by (cell, anchor).
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by_key(|&i| (cells[i], anchors[i]));
    let storage = if spec.rerank {
        Some(VectorStorage::encode_rows(
            bucket_hash,
            spec.dim,
            values,
            &order,
        )?)
    } else {
        None
    };
    let sorted_anchors: Vec<u64> = order.iter().map(|&i| anchors[i]).collect();
    let table = bucket.anchors_range()?;
    let mut changes = vec![anchor_run(
        bucket_hash,
        &sorted_anchors,
        (table.offset, table.len),
        storage.as_ref().map(|e| e.hash),
    )];
    let total_cells = cell_count(index)?;
    let mut delta = StatsData::empty(total_cells);
    for (run, range) in bucket.run_ranges()? {
        let raw = match &storage {
            Some(e) => {
                let r = e.rows_range(u64::from(run.first), u64::from(run.count));
                let hash = e
                    .rows_hash(u64::from(run.first), u64::from(run.count))
                    .ok_or_else(|| {
                        DatasetError::Protocol("raw rows out of the storage's range".to_owned())
                    })?;
                Some(RawRows {
                    storage: e.hash,
                    offset: r.offset,
                    len: r.len,
                    hash,
                })
            }
            None => None,
        };
        changes.push(Change::Put(
            TrackKey::cell_run(run.cell, &bucket_hash),
            compat::cell_run(
                bucket_hash,
                range.offset,
                range.len,
                run.count,
                bucket.run_hash(&run),
                raw,
            ),
        ));
        delta.add_run(run.cell, run.count);
    }
    objects.push(bucket_object);
    if let Some(e) = storage {
        objects.push(Encoded {
            hash: e.hash,
            bytes: Bytes::from(e.bytes),
        });
    }
    Ok(FieldPlan {
        field: field.to_owned(),
        objects,
        changes,
        spatial_index: Some(spatial.index_hash),
        compressor: spatial.compressor_hash,
        trained,
        stats_delta: Some(delta),
        cells: Some((total_cells, layout::live_cells(index)?)),
        last_anchor: anchors.iter().copied().max().unwrap_or(0),
    })
}

/// Plans a blob field.
pub(crate) fn plan_blob(
    field: &str,
    mime: &str,
    blobs: &[Bytes],
    anchors: &[u64],
) -> Result<FieldPlan, DatasetError> {
    let mut order: Vec<usize> = (0..anchors.len()).collect();
    order.sort_unstable_by_key(|&i| anchors[i]);
    let segment = BlobSegment::build(mime, order.iter().map(|&i| (anchors[i], &blobs[i][..])));
    let encoded = encode(&segment)?;
    let table = segment.anchors_range()?;
    let sorted: Vec<u64> = order.iter().map(|&i| anchors[i]).collect();
    Ok(FieldPlan {
        field: field.to_owned(),
        changes: vec![anchor_run(
            encoded.hash,
            &sorted,
            (table.offset, table.len),
            None,
        )],
        objects: vec![encoded],
        spatial_index: None,
        compressor: None,
        trained: false,
        stats_delta: None,
        cells: None,
        last_anchor: sorted.last().copied().unwrap_or(0),
    })
}

/// A scalar bucket of `column`'s rows (any order) at `anchors`, and the
/// anchors sorted.
pub(crate) fn scalar_bucket(
    dtype: ScalarDtype,
    column: &ScalarColumn,
    anchors: &[u64],
) -> (ScalarBucket, Vec<u64>) {
    let mut order: Vec<usize> = (0..anchors.len()).collect();
    order.sort_unstable_by_key(|&i| anchors[i]);
    let column = column.take(&order);
    let sorted: Vec<u64> = order.iter().map(|&i| anchors[i]).collect();
    let n = sorted.len();
    let mut nulls = vec![0u8; n.div_ceil(8)];
    let mut any_null = false;
    let mut mark = |i: usize| {
        nulls[i / 8] |= 1 << (i % 8);
        any_null = true;
    };
    let values = match &column {
        ScalarColumn::I64(v) | ScalarColumn::Timestamp(v) => {
            let mut out = Vec::with_capacity(8 * n);
            for (i, x) in v.iter().enumerate() {
                if x.is_none() {
                    mark(i);
                }
                out.extend_from_slice(&x.unwrap_or(0).to_le_bytes());
            }
            ScalarValues::Bytes(out)
        }
        ScalarColumn::F64(v) => {
            let mut out = Vec::with_capacity(8 * n);
            for (i, x) in v.iter().enumerate() {
                if x.is_none() {
                    mark(i);
                }
                // A null holds all-zero bytes (0.0, not -0.0).
                out.extend_from_slice(&x.map_or(0u64, f64::to_bits).to_le_bytes());
            }
            ScalarValues::Bytes(out)
        }
        ScalarColumn::Bool(v) => {
            let mut out = Vec::with_capacity(n);
            for (i, x) in v.iter().enumerate() {
                if x.is_none() {
                    mark(i);
                }
                out.push(u8::from(x.unwrap_or(false)));
            }
            ScalarValues::Bytes(out)
        }
        ScalarColumn::Str(v) | ScalarColumn::Categorical(v) => {
            let mut out = Vec::with_capacity(n);
            for (i, x) in v.iter().enumerate() {
                if x.is_none() {
                    mark(i);
                }
                out.push(x.clone().unwrap_or_default());
            }
            ScalarValues::Text(out)
        }
    };
    let bucket = ScalarBucket {
        dtype,
        anchors: sorted.iter().flat_map(|a| a.to_le_bytes()).collect(),
        values,
        nulls: any_null.then_some(nulls),
    };
    (bucket, sorted)
}

/// Plans a scalar field.
pub(crate) fn plan_scalar(
    field: &str,
    dtype: ScalarDtype,
    column: &ScalarColumn,
    anchors: &[u64],
) -> Result<FieldPlan, DatasetError> {
    let (bucket, sorted) = scalar_bucket(dtype, column, anchors);
    let encoded = encode(&bucket)?;
    let table = bucket.anchors_range()?;
    Ok(FieldPlan {
        field: field.to_owned(),
        changes: vec![anchor_run(
            encoded.hash,
            &sorted,
            (table.offset, table.len),
            None,
        )],
        objects: vec![encoded],
        spatial_index: None,
        compressor: None,
        trained: false,
        stats_delta: None,
        cells: None,
        last_anchor: sorted.last().copied().unwrap_or(0),
    })
}
