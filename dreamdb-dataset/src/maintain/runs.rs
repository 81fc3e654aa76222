//! Reading cell runs back (records, and their vectors: raw rows where the
//! field keeps them, else decoded codes) and writing re-dispatched records
//! as new segments with their track changes.
//!
//! A cell run is read with one ranged GET verified by its run hash; its raw
//! rows with one ranged GET of the vector storage. Nothing here reads a
//! whole segment of an embedding field.

use bytes::Bytes;
use dreamdb_connector::ByteRange;
use dreamdb_core::time::TimeAnchor;
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::{
    BucketParams, ObjectKind, RecordLayout, SpatialBucket, SpatialRecord, VectorStorage,
};
use dreamdb_protocol::spatial::rabitq::FACTORS;
use dreamdb_protocol::spatial::SpatialIndex;
use dreamdb_protocol::store::ObjectStore;
use dreamdb_protocol::track::{Change, TrackKey, TrackValue};
use rayon::prelude::*;

use crate::write::compat::{self, RawRows};
use crate::write::layout::{residual_centroid, LoadedSpatial};
use crate::write::stats::StatsData;
use crate::DatasetError;

pub(crate) fn le_f32s(bytes: &[u8], out: &mut Vec<f32>) {
    out.extend(bytes.chunks_exact(4).map(|c| {
        let mut w = [0u8; 4];
        w.copy_from_slice(c);
        f32::from_le_bytes(w)
    }));
}

fn integrity(what: impl std::fmt::Display) -> DatasetError {
    DatasetError::Integrity(what.to_string())
}

/// One record read back from a cell run.
#[derive(Debug, Clone)]
pub(crate) struct Rec {
    /// The record's anchor.
    pub(crate) anchor: u64,
    /// Its cell under the index it was read with.
    pub(crate) cell: u32,
    /// The stored record (code and factors as written).
    pub(crate) record: SpatialRecord,
    /// Its exact raw row, when the field keeps raw rows.
    pub(crate) raw: Option<Vec<f32>>,
}

/// A cell-order entry of the track.
pub(crate) type Entry = (TrackKey, TrackValue);

/// Reads the records of cell-order entry `entry` (cell `cell`), with raw
/// rows when the entry records them and `with_raw` is set.
pub(crate) async fn read_run(
    store: &ObjectStore,
    entry: &Entry,
    dim: u32,
    compressed: bool,
    with_raw: bool,
) -> Result<Vec<Rec>, DatasetError> {
    let (key, value) = entry;
    let TrackValue::CellRun {
        segment,
        offset,
        len,
        count,
        run_hash,
        ..
    } = value
    else {
        return Err(integrity(format!("{key:?} is not a cell run")));
    };
    let cell = key
        .cell()
        .ok_or_else(|| integrity(format!("{key:?} names no cell")))?;
    if *count == 0 || len % u64::from(*count) != 0 {
        return Err(integrity(format!(
            "cell run of {segment}: {len} bytes for {count} records"
        )));
    }
    let bytes = store
        .get_range(
            segment,
            ByteRange::new(*offset, offset + len),
            Some(*run_hash),
        )
        .await?;
    let layout = RecordLayout {
        factors: if compressed { FACTORS as u32 } else { 0 },
        record_size: u32::try_from(len / u64::from(*count))
            .map_err(|_| integrity("record size exceeds u32"))?,
    };
    let views = layout.decode_run(&bytes)?;
    let raw_rows = match (with_raw, compat::raw_rows_of(value)) {
        (true, Some(raw)) => Some(read_raw(store, &raw, dim, views.len()).await?),
        _ => None,
    };
    let d = dim as usize;
    Ok(views
        .iter()
        .enumerate()
        .map(|(i, v)| Rec {
            anchor: v.anchor().as_nanos(),
            cell,
            record: v.to_record(),
            raw: raw_rows
                .as_ref()
                .and_then(|rows| rows.get(i * d..(i + 1) * d).map(<[f32]>::to_vec)),
        })
        .collect())
}

async fn read_raw(
    store: &ObjectStore,
    raw: &RawRows,
    dim: u32,
    count: usize,
) -> Result<Vec<f32>, DatasetError> {
    if raw.len != count as u64 * 4 * u64::from(dim) {
        return Err(integrity(format!(
            "raw rows in {}: {} bytes for {count} rows of dim {dim}",
            raw.storage, raw.len
        )));
    }
    let bytes = store
        .get_range(
            &raw.storage,
            ByteRange::new(raw.offset, raw.offset + raw.len),
            None,
        )
        .await?;
    let mut out = Vec::with_capacity(count * dim as usize);
    le_f32s(&bytes, &mut out);
    Ok(out)
}

/// The vector of a record: its raw row, else the code (uncompressed: the
/// code is the vector; compressed: the RaBitQ reconstruction relative to
/// its cell's centroid under `spatial`). The flag says whether it is exact.
pub(crate) fn vector_of(
    rec: &Rec,
    spatial: &LoadedSpatial,
) -> Result<(Vec<f32>, bool), DatasetError> {
    if let Some(raw) = &rec.raw {
        return Ok((raw.clone(), true));
    }
    match &spatial.compressor {
        None => {
            let mut out = Vec::with_capacity(rec.record.code.len() / 4);
            le_f32s(&rec.record.code, &mut out);
            Ok((out, true))
        }
        Some(rq) => {
            let words: Vec<u64> = rec
                .record
                .code
                .chunks_exact(8)
                .map(|c| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(c);
                    u64::from_le_bytes(w)
                })
                .collect();
            let centroid = residual_centroid(&spatial.index, rec.cell)?;
            Ok((rq.decode(&words, &rec.record.factors, centroid)?, false))
        }
    }
}

/// Re-places records under `spatial`: each vector is assigned a cell and
/// encoded relative to it (RaBitQ when compressed; the vector itself
/// otherwise). `raw` says which rows are exact raw rows (kept as such).
pub(crate) fn redispatch(
    spatial: &LoadedSpatial,
    anchors: &[u64],
    vectors: &[f32],
    raw: Vec<Option<Vec<f32>>>,
) -> Result<Vec<Rec>, DatasetError> {
    let n = anchors.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let dim = vectors.len() / n;
    let index = &spatial.index;
    let cells: Vec<u32> = match index {
        SpatialIndex::Ivf(i) => i.assign(vectors)?,
        other => (0..n)
            .into_par_iter()
            .map(|i| other.assign_one(&vectors[i * dim..(i + 1) * dim]))
            .collect::<Result<_, _>>()?,
    };
    let records: Vec<SpatialRecord> = (0..n)
        .into_par_iter()
        .map(|i| {
            let v = &vectors[i * dim..(i + 1) * dim];
            let (factors, code) = match &spatial.compressor {
                Some(rq) => {
                    let e = rq.encode(v, residual_centroid(index, cells[i])?)?;
                    let code: Vec<u8> = e.code.iter().flat_map(|w| w.to_le_bytes()).collect();
                    (e.factors.to_vec(), code)
                }
                None => (Vec::new(), v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            };
            Ok(SpatialRecord {
                anchor: TimeAnchor::new(anchors[i]),
                factors,
                code,
            })
        })
        .collect::<Result<_, DatasetError>>()?;
    Ok(records
        .into_iter()
        .zip(cells)
        .zip(raw)
        .zip(anchors)
        .map(|(((record, cell), raw), &anchor)| Rec {
            anchor,
            cell,
            record,
            raw,
        })
        .collect())
}

/// One written segment group: its objects, track changes and stats delta.
#[derive(Debug, Clone, Default)]
pub(crate) struct Written {
    /// New objects (bucket, vector storage).
    pub(crate) objects: Vec<(ContentHash, Bytes)>,
    /// Track puts.
    pub(crate) changes: Vec<Change>,
    /// Records and runs added per cell.
    pub(crate) added: StatsData,
}

/// Builds one spatial bucket (and its vector storage when `keep_raw` and
/// every record has a raw row) holding `recs` grouped by cell, with a
/// cell-order entry per run and, when `anchor_run`, one anchor-order entry.
pub(crate) fn write_bucket(
    spatial: &LoadedSpatial,
    dim: u32,
    recs: Vec<Rec>,
    keep_raw: bool,
    anchor_run: bool,
) -> Result<Option<Written>, DatasetError> {
    if recs.is_empty() {
        return Ok(None);
    }
    let params = BucketParams {
        spatial_index: spatial.index_hash,
        compressor: spatial.compressor_hash,
        dim,
        factors: if spatial.compressor.is_some() {
            FACTORS as u32
        } else {
            0
        },
    };
    let with_raw = keep_raw && recs.iter().all(|r| r.raw.is_some());
    // The bucket's record order is (cell, anchor).
    let mut order: Vec<usize> = (0..recs.len()).collect();
    order.sort_unstable_by_key(|&i| (recs[i].cell, recs[i].anchor));
    let bucket = SpatialBucket::build(params, recs.iter().map(|r| (r.cell, r.record.clone())))?;
    let (bucket_bytes, bucket_hash) = bucket.encode()?;
    let mut objects = vec![(bucket_hash, Bytes::from(bucket_bytes))];
    let storage = if with_raw {
        let mut raw = Vec::with_capacity(recs.len() * dim as usize * 4);
        for &i in &order {
            for x in recs[i].raw.iter().flatten() {
                raw.extend_from_slice(&x.to_le_bytes());
            }
        }
        let storage = VectorStorage {
            bucket: bucket_hash,
            dim,
            vectors: raw,
        };
        let (bytes, hash) = storage.encode()?;
        objects.push((hash, Bytes::from(bytes)));
        Some((storage, hash))
    } else {
        None
    };
    let mut changes = Vec::new();
    if anchor_run {
        let sorted: Vec<u64> = order.iter().map(|&i| recs[i].anchor).collect();
        let table = bucket.anchors_range()?;
        let first = sorted.iter().copied().min().unwrap_or(0);
        let last = sorted.iter().copied().max().unwrap_or(0);
        changes.push(Change::Put(
            TrackKey::anchor_run(first, &bucket_hash),
            TrackValue::AnchorRun {
                segment: bucket_hash,
                last_anchor: last,
                count: sorted.len() as u32,
                table_offset: table.offset,
                table_len: table.len,
                storage: storage.as_ref().map(|(_, hash)| *hash),
            },
        ));
    }
    let mut added = StatsData::empty(0);
    for (run, range) in bucket.run_ranges()? {
        let raw = match &storage {
            Some((s, hash)) => {
                let r = s.rows_range(u64::from(run.first), u64::from(run.count))?;
                let rows_hash = s
                    .rows_hash(u64::from(run.first), u64::from(run.count))
                    .ok_or_else(|| {
                        DatasetError::Protocol("raw rows out of the storage's range".to_owned())
                    })?;
                Some(RawRows {
                    storage: *hash,
                    offset: r.offset,
                    len: r.len,
                    hash: rows_hash,
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
        added.add_run(run.cell, run.count);
    }
    Ok(Some(Written {
        objects,
        changes,
        added,
    }))
}

/// Records and runs per cell removed by deleting `entries`.
pub(crate) fn removed_stats(entries: &[Entry]) -> StatsData {
    let mut out = StatsData::empty(0);
    for (key, value) in entries {
        if let Some(cell) = key.cell() {
            out.add_run(cell, value.count());
        }
    }
    out
}

/// `base - minus + plus`, per cell (saturating at zero).
pub(crate) fn apply_delta(base: &StatsData, minus: &StatsData, plus: &StatsData) -> StatsData {
    let mut out = base.plus(&StatsData::empty(minus.counts.len() as u32));
    for (i, (c, r)) in minus.counts.iter().zip(&minus.runs).enumerate() {
        out.counts[i] = out.counts[i].saturating_sub(*c);
        out.runs[i] = out.runs[i].saturating_sub(*r);
    }
    out.plus(plus)
}
