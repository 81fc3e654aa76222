//! Reading segments by byte range: the anchor-order runs of a field, their
//! anchor tables, and the values at chosen positions of a run — without
//! fetching the rest of the segment where the format allows it.
//!
//! What one run costs, by field kind (n = records in the segment):
//!
//! - every kind: one ranged GET of the anchor table (8 n bytes), named by
//!   the track entry;
//! - scalar: the whole `scalar-bucket` (values sit in its header; cached by
//!   the session, verified by hash);
//! - blob: one ranged GET of the offset table (8 (n + 1) bytes, just after
//!   the anchor table) and ranged GETs of the wanted blobs (neighbouring
//!   ones coalesced);
//! - embedding: one small ranged GET after the anchor table (the payload's
//!   position and record size), then ranged GETs of the wanted records (no
//!   compression: the code is the vector) or, for compressed fields with
//!   raw vectors, of the wanted rows of the `vector-storage` (located by
//!   the bucket's first still-indexed cell run: the bucket header up to the
//!   anchor table plus one cell-run scan of the track).
//!
//! Anchor tables, offset tables and raw rows are not covered by a run hash,
//! so those ranges are checked for shape (lengths, the anchors inside the
//! records agreeing with the table) rather than by hash; cell runs (query)
//! are verified by their run hash.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dreamdb_connector::ByteRange;
use dreamdb_core::time::TimeRange;
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::{
    ObjectKind, ScalarBucket, ScalarDtype, ScalarValues, VectorStorage,
};
use dreamdb_protocol::spatial::rabitq::FACTORS;
use dreamdb_protocol::track::{KeyRange, Track, TrackRoot, TrackValue};
use futures::{StreamExt, TryStreamExt};

use super::column::ReadColumn;
use super::kept::Kept;
use super::query::scan_cells;
use super::FieldKind;
use crate::batch::ScalarColumn;
use crate::write::compat;
use crate::write::layout::{self, LoadedSpatial};
use crate::{DatasetError, Snapshot};

/// Ranged reads kept in flight at once by one read operation.
pub(crate) const FETCH_CONCURRENCY: usize = 16;

/// Two wanted byte ranges closer than this are read with one GET.
const COALESCE_GAP: u64 = 64 * 1024;

/// Longest range a coalesced read grows to: longer spans are split so
/// that several reads are in flight at once (and none holds a huge
/// buffer alone).
const COALESCE_MAX: u64 = 4 << 20;

/// Counters of the reads one operation issued (ranged or whole-object
/// requests made through the store; whole-object requests may be served by
/// the session cache and then cost no I/O).
#[derive(Debug, Default)]
pub(crate) struct ReadCounter {
    pub(crate) requests: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

impl ReadCounter {
    pub(crate) fn add(&self, bytes: usize) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

fn integrity(what: impl std::fmt::Display) -> DatasetError {
    DatasetError::Integrity(what.to_string())
}

/// One anchor-order run of a field (a track entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunRef {
    /// First anchor (from the key).
    pub(crate) first: u64,
    /// Last anchor.
    pub(crate) last: u64,
    /// Records.
    pub(crate) count: u32,
    /// The segment.
    pub(crate) segment: ContentHash,
    /// The anchor table's byte range in the segment.
    pub(crate) table_offset: u64,
    pub(crate) table_len: u64,
    /// The bucket's vector storage, when the entry names it.
    pub(crate) storage: Option<ContentHash>,
}

impl RunRef {
    fn table_end(&self) -> u64 {
        self.table_offset + self.table_len
    }

    /// Whether the run's anchor interval meets `range`.
    pub(crate) fn overlaps(&self, range: &TimeRange) -> bool {
        self.first < range.end().as_nanos() && self.last >= range.start().as_nanos()
    }
}

/// The anchor-order runs of `field`, in key order (first anchor, then
/// segment). `up_to` stops the scan at runs starting after it (exclusive
/// upper bound on the first anchor). A field without a track has none.
pub(crate) async fn anchor_runs(
    snapshot: &Snapshot,
    field: &str,
    up_to: Option<u64>,
) -> Result<Vec<RunRef>, DatasetError> {
    let Some(state) = snapshot.manifest().tracks.get(field) else {
        return Ok(Vec::new());
    };
    let range = match up_to {
        Some(end) => KeyRange::anchors(..end),
        None => KeyRange::anchor_runs(),
    };
    let entries = Track::new(snapshot.store().clone())
        .scan_all(&state.root, range)
        .await?;
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let (
            Some(first),
            TrackValue::AnchorRun {
                segment,
                last_anchor,
                count,
                table_offset,
                table_len,
                storage,
            },
        ) = (key.first_anchor(), value)
        else {
            return Err(integrity(format!(
                "track of field {field:?}: {key:?} is not an anchor run"
            )));
        };
        out.push(RunRef {
            first,
            last: last_anchor,
            count,
            segment,
            table_offset,
            table_len,
            storage,
        });
    }
    Ok(out)
}

/// Reads `range` of `segment`, counting it. For iteration and record
/// reads: the range is verified when `expected` is given but not kept in
/// the session cache (a scan reads each range once; caching it would
/// evict the working set and hold memory up to the bound for nothing).
pub(crate) async fn read_range(
    snapshot: &Snapshot,
    counter: &ReadCounter,
    segment: &ContentHash,
    start: u64,
    end: u64,
    expected: Option<ContentHash>,
) -> Result<Bytes, DatasetError> {
    let bytes = snapshot
        .store()
        .get_range_uncached(segment, ByteRange::new(start, end), expected)
        .await?;
    counter.add(bytes.len());
    Ok(bytes)
}

/// [`read_range`] whose verified range the session cache keeps: the runs
/// and raw rows a query reads again on the next query.
pub(crate) async fn read_range_cached(
    snapshot: &Snapshot,
    counter: &ReadCounter,
    segment: &ContentHash,
    start: u64,
    end: u64,
    expected: Option<ContentHash>,
) -> Result<Bytes, DatasetError> {
    let bytes = snapshot
        .store()
        .get_range(segment, ByteRange::new(start, end), expected)
        .await?;
    counter.add(bytes.len());
    Ok(bytes)
}

fn le_u64s(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            u64::from_le_bytes(w)
        })
        .collect()
}

pub(crate) fn le_f32s(bytes: &[u8], out: &mut Vec<f32>) {
    out.extend(bytes.chunks_exact(4).map(|c| {
        let mut w = [0u8; 4];
        w.copy_from_slice(c);
        f32::from_le_bytes(w)
    }));
}

/// The run's anchor table (segment order).
pub(crate) async fn read_anchor_table(
    snapshot: &Snapshot,
    counter: &ReadCounter,
    run: &RunRef,
) -> Result<Vec<u64>, DatasetError> {
    if run.table_len != 8 * u64::from(run.count) {
        return Err(integrity(format!(
            "anchor run of {}: table of {} bytes for {} records",
            run.segment, run.table_len, run.count
        )));
    }
    let bytes = read_range(
        snapshot,
        counter,
        &run.segment,
        run.table_offset,
        run.table_end(),
        None,
    )
    .await?;
    let table = le_u64s(&bytes);
    if table.iter().any(|a| *a < run.first || *a > run.last) {
        return Err(integrity(format!(
            "anchor table of {} has an anchor outside [{}, {}]",
            run.segment, run.first, run.last
        )));
    }
    Ok(table)
}

/// A tiny reader of canonical CBOR heads, for the few bytes around a
/// segment's anchor table.
struct Cur<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn byte(&mut self) -> Result<u8, DatasetError> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or_else(|| integrity("segment header ends early"))?;
        self.at += 1;
        Ok(b)
    }

    fn head(&mut self) -> Result<(u8, u64), DatasetError> {
        let b = self.byte()?;
        let (major, info) = (b >> 5, b & 31);
        let arg = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                let mut v = 0u64;
                for _ in 0..n {
                    v = (v << 8) | u64::from(self.byte()?);
                }
                v
            }
            _ => return Err(integrity("segment header: unsupported CBOR item")),
        };
        Ok((major, arg))
    }

    fn text(&mut self) -> Result<&'a str, DatasetError> {
        let (major, len) = self.head()?;
        if major != 3 {
            return Err(integrity("segment header: expected a text key"));
        }
        let end = self.at + len as usize;
        let s = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| integrity("segment header ends early"))?;
        self.at = end;
        std::str::from_utf8(s).map_err(|_| integrity("segment header: key is not UTF-8"))
    }

    fn key(&mut self, want: &str) -> Result<(), DatasetError> {
        let got = self.text()?;
        if got != want {
            return Err(integrity(format!(
                "segment layout: expected key {want:?}, found {got:?}"
            )));
        }
        Ok(())
    }

    fn uint(&mut self) -> Result<u64, DatasetError> {
        match self.head()? {
            (0, v) => Ok(v),
            _ => Err(integrity("segment header: expected an unsigned integer")),
        }
    }
}

/// Length of the CBOR head carrying `arg`.
fn head_len(arg: u64) -> u64 {
    match arg {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Where a spatial bucket's records are.
#[derive(Debug, Clone, Copy)]
struct BucketGeom {
    payload_offset: u64,
    record_size: u64,
    factors: u64,
}

/// Where a bucket's raw rows are: the storage object and, per cell run
/// (in bucket record order), its rows' byte range and hash, so every
/// ranged read of raw rows is verified (spec/0007: track values, `r`).
#[derive(Debug, Clone)]
struct RawGeom {
    storage: ContentHash,
    /// `(first record, count, offset, len, hash)`, sorted by first record.
    /// The hash is absent for a run whose cell-order entry moved to another
    /// bucket (an Ada-IVF step; `compact` rewrites them): its rows are read
    /// from the whole storage object, checked against the object's hash
    /// (offsets are then unused).
    runs: Vec<(u64, u64, u64, u64, Option<ContentHash>)>,
}

/// Vector sources kept across operations, by (track root page, bucket
/// segment, dim): a few KB each.
static VECTOR_SOURCES: Kept<(ContentHash, ContentHash, u32), VectorSource> =
    Kept::new(VECTOR_SOURCES_KEPT);

/// Buckets whose vector source is kept.
const VECTOR_SOURCES_KEPT: usize = 256;

/// Drops the kept vector sources (see [`super::kept`]).
pub(crate) fn clear_vector_sources() {
    VECTOR_SOURCES.clear();
}

/// How a compressed embedding's values are obtained for one bucket.
#[derive(Debug, Clone)]
enum VectorSource {
    /// Raw rows in a vector storage.
    Raw(RawGeom),
    /// Only codes: approximate reconstruction; the bucket's runs (cell,
    /// first, count) tell each record's cell.
    Approx(Vec<[u32; 3]>),
}

/// Reads a field's values out of its segments, remembering each segment's
/// geometry for the life of one operation.
#[derive(Debug)]
pub(crate) struct FieldReader {
    pub(crate) snapshot: Snapshot,
    pub(crate) field: String,
    pub(crate) kind: FieldKind,
    pub(crate) counter: Arc<ReadCounter>,
    geoms: Mutex<HashMap<ContentHash, BucketGeom>>,
    sources: Mutex<HashMap<ContentHash, VectorSource>>,
    spatial: tokio::sync::OnceCell<Arc<LoadedSpatial>>,
    last_scalar: Mutex<Option<(ContentHash, Arc<ScalarBucket>)>>,
    /// Whether verified raw-row runs are kept in the session cache (an
    /// iteration of a field small beside the cache: later passes skip the
    /// read and the hash).
    keep_reads: bool,
}

/// One wanted byte range, for position `idx` of the request.
struct Want {
    idx: usize,
    start: u64,
    end: u64,
}

/// Reads the wanted ranges of `segment`, coalescing neighbours, and
/// returns each one's bytes (in `wants` order).
async fn read_coalesced(
    snapshot: &Snapshot,
    counter: &ReadCounter,
    segment: &ContentHash,
    mut wants: Vec<Want>,
) -> Result<Vec<Bytes>, DatasetError> {
    wants.sort_by_key(|w| w.start);
    let mut groups: Vec<(u64, u64, Vec<usize>)> = Vec::new();
    for (i, w) in wants.iter().enumerate() {
        match groups.last_mut() {
            Some((start, end, members))
                if w.start <= end.saturating_add(COALESCE_GAP)
                    && w.end.saturating_sub(*start) <= COALESCE_MAX =>
            {
                *end = (*end).max(w.end);
                members.push(i);
            }
            _ => groups.push((w.start, w.end, vec![i])),
        }
    }
    let fetched: Vec<(u64, Bytes, Vec<usize>)> = futures::stream::iter(groups)
        .map(|(start, end, members)| async move {
            let bytes = if end > start {
                read_range(snapshot, counter, segment, start, end, None).await?
            } else {
                Bytes::new()
            };
            Ok::<_, DatasetError>((start, bytes, members))
        })
        .buffer_unordered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
    let mut out = vec![Bytes::new(); wants.len()];
    for (start, bytes, members) in fetched {
        for m in members {
            let w = &wants[m];
            let (a, b) = ((w.start - start) as usize, (w.end - start) as usize);
            let slice = if a == b {
                Bytes::new()
            } else {
                bytes
                    .get(a..b)
                    .map(|_| bytes.slice(a..b))
                    .ok_or_else(|| integrity("short ranged read"))?
            };
            if let Some(slot) = out.get_mut(w.idx) {
                *slot = slice;
            }
        }
    }
    Ok(out)
}

impl FieldReader {
    pub(crate) fn new(
        snapshot: &Snapshot,
        field: &str,
        kind: FieldKind,
        counter: Arc<ReadCounter>,
    ) -> FieldReader {
        FieldReader {
            snapshot: snapshot.clone(),
            field: field.to_owned(),
            kind,
            counter,
            geoms: Mutex::new(HashMap::new()),
            sources: Mutex::new(HashMap::new()),
            spatial: tokio::sync::OnceCell::new(),
            last_scalar: Mutex::new(None),
            keep_reads: false,
        }
    }

    /// This reader keeping the raw-row runs it verifies in the session
    /// cache when `keep`.
    pub(crate) fn keeping_reads(mut self, keep: bool) -> FieldReader {
        self.keep_reads = keep;
        self
    }

    /// The field's spatial index and compressor (loaded once, cached).
    pub(crate) async fn spatial(&self) -> Result<Option<Arc<LoadedSpatial>>, DatasetError> {
        let Some(state) = self.snapshot.manifest().tracks.get(&self.field) else {
            return Ok(None);
        };
        let Some(index) = state.spatial_index else {
            return Ok(None);
        };
        let loaded = self
            .spatial
            .get_or_try_init(|| async {
                layout::load_spatial(self.snapshot.store(), index, state.compressor)
                    .await
                    .map(Arc::new)
            })
            .await?;
        Ok(Some(loaded.clone()))
    }

    /// The run's anchor table. Scalar buckets are read whole anyway (their
    /// values sit in the header), so their table is taken from the
    /// (cached, hash-verified) object instead of a second ranged read.
    pub(crate) async fn anchor_table(&self, run: &RunRef) -> Result<Vec<u64>, DatasetError> {
        if !matches!(self.kind, FieldKind::Scalar { .. }) {
            return read_anchor_table(&self.snapshot, &self.counter, run).await;
        }
        let bucket = self.scalar_bucket(run).await?;
        let table = le_u64s(&bucket.anchors);
        if table.len() != run.count as usize
            || table.iter().any(|a| *a < run.first || *a > run.last)
        {
            return Err(integrity(format!(
                "scalar bucket {} disagrees with its track entry",
                run.segment
            )));
        }
        Ok(table)
    }

    /// The scalar bucket of `run`, decoded once per reader (the last one
    /// is kept, so the table and the values of a run cost one read even
    /// with the session cache disabled).
    async fn scalar_bucket(&self, run: &RunRef) -> Result<Arc<ScalarBucket>, DatasetError> {
        if let Some((hash, bucket)) = self.last_scalar.lock().ok().and_then(|l| l.clone()) {
            if hash == run.segment {
                return Ok(bucket);
            }
        }
        let bytes = self.snapshot.store().get_bytes(&run.segment).await?;
        self.counter.add(bytes.len());
        let bucket = Arc::new(ScalarBucket::decode(&run.segment, &bytes)?);
        if let Ok(mut last) = self.last_scalar.lock() {
            *last = Some((run.segment, bucket.clone()));
        }
        Ok(bucket)
    }

    /// The values at `positions` (indices into the run's anchor table) of
    /// one run, in `positions` order. `table` is the run's anchor table.
    pub(crate) async fn values(
        &self,
        run: &RunRef,
        table: &[u64],
        positions: &[usize],
    ) -> Result<ReadColumn, DatasetError> {
        if let Some(p) = positions.iter().find(|p| **p >= table.len()) {
            return Err(integrity(format!(
                "position {p} outside the {} records of {}",
                table.len(),
                run.segment
            )));
        }
        match self.kind {
            FieldKind::Scalar { dtype, .. } => self.scalar_values(run, dtype, positions).await,
            FieldKind::Blob => self.blob_values(run, positions).await,
            FieldKind::Embedding {
                dim, compressed, ..
            } => {
                self.embedding_values(run, table, positions, dim, compressed)
                    .await
            }
        }
    }

    async fn scalar_values(
        &self,
        run: &RunRef,
        dtype: ScalarDtype,
        positions: &[usize],
    ) -> Result<ReadColumn, DatasetError> {
        let bucket = self.scalar_bucket(run).await?;
        if bucket.dtype != dtype || bucket.count() != run.count as usize {
            return Err(integrity(format!(
                "scalar bucket {} does not match field {:?} (dtype {:?}, {} records)",
                run.segment,
                self.field,
                bucket.dtype,
                bucket.count()
            )));
        }
        let null = |i: usize| bucket.is_null(i);
        let fixed = |width: usize| -> Result<Vec<&[u8]>, DatasetError> {
            match &bucket.values {
                ScalarValues::Bytes(b) => Ok(positions
                    .iter()
                    .map(|&i| b.get(i * width..(i + 1) * width).unwrap_or(&[]))
                    .collect()),
                ScalarValues::Text(_) => Err(integrity(
                    "scalar bucket: text values for a fixed-width dtype",
                )),
            }
        };
        let word = |w: &[u8]| {
            let mut a = [0u8; 8];
            if w.len() == 8 {
                a.copy_from_slice(w);
            }
            a
        };
        let column = match dtype {
            ScalarDtype::I64 | ScalarDtype::Timestamp => {
                let v: Vec<Option<i64>> = fixed(8)?
                    .iter()
                    .zip(positions)
                    .map(|(w, &i)| (!null(i)).then(|| i64::from_le_bytes(word(w))))
                    .collect();
                if dtype == ScalarDtype::I64 {
                    ScalarColumn::I64(v)
                } else {
                    ScalarColumn::Timestamp(v)
                }
            }
            ScalarDtype::F64 => ScalarColumn::F64(
                fixed(8)?
                    .iter()
                    .zip(positions)
                    .map(|(w, &i)| (!null(i)).then(|| f64::from_le_bytes(word(w))))
                    .collect(),
            ),
            ScalarDtype::Bool => ScalarColumn::Bool(
                fixed(1)?
                    .iter()
                    .zip(positions)
                    .map(|(w, &i)| (!null(i)).then(|| w.first() == Some(&1)))
                    .collect(),
            ),
            ScalarDtype::String | ScalarDtype::Categorical => {
                let ScalarValues::Text(texts) = &bucket.values else {
                    return Err(integrity("scalar bucket: bytes for a text dtype"));
                };
                let v: Vec<Option<String>> = positions
                    .iter()
                    .map(|&i| (!null(i)).then(|| texts.get(i).cloned().unwrap_or_default()))
                    .collect();
                if dtype == ScalarDtype::String {
                    ScalarColumn::Str(v)
                } else {
                    ScalarColumn::Categorical(v)
                }
            }
        };
        Ok(ReadColumn::Scalar(column))
    }

    async fn blob_values(
        &self,
        run: &RunRef,
        positions: &[usize],
    ) -> Result<ReadColumn, DatasetError> {
        if positions.is_empty() {
            return Ok(ReadColumn::Blob(Vec::new()));
        }
        // After the anchor table: "digests" (text key, 8 bytes), the byte
        // string head, 32 bytes per blob; "offsets", its head, the offsets
        // (n + 1 u64 LE); then "payload", its head, the payload (the last
        // field of a blob segment; canonical key order, spec/0007 §5).
        let n = u64::from(run.count);
        let digests_len = 32 * n;
        let offsets_len = 8 * (n + 1);
        let digests_key_len = 8 + head_len(digests_len);
        let key_len = 8 + head_len(offsets_len);
        let start = run.table_end();
        let tables_len = digests_key_len + digests_len + key_len + offsets_len;
        let bytes = read_range(
            &self.snapshot,
            &self.counter,
            &run.segment,
            start,
            start + tables_len,
            None,
        )
        .await?;
        let mut cur = Cur {
            bytes: &bytes,
            at: 0,
        };
        cur.key("digests")?;
        match cur.head()? {
            (2, len) if len == digests_len => {}
            _ => return Err(integrity("blob segment: unexpected digest table")),
        }
        let digests_at = cur.at;
        cur.at += digests_len as usize;
        cur.key("offsets")?;
        match cur.head()? {
            (2, len) if len == offsets_len => {}
            _ => return Err(integrity("blob segment: unexpected offset table")),
        }
        let offsets = le_u64s(bytes.get(cur.at..).unwrap_or(&[]));
        let digest_of = |p: usize| -> Option<[u8; 32]> {
            let at = digests_at.checked_add(p.checked_mul(32)?)?;
            bytes.get(at..at.checked_add(32)?)?.try_into().ok()
        };
        let payload_len = offsets.last().copied().unwrap_or(0);
        let payload_offset = start + tables_len + 8 + head_len(payload_len);
        let mut wants = Vec::with_capacity(positions.len());
        for (idx, &p) in positions.iter().enumerate() {
            let (a, b) = match (offsets.get(p), offsets.get(p + 1)) {
                (Some(a), Some(b)) if a <= b && *b <= payload_len => (*a, *b),
                _ => return Err(integrity("blob segment: bad offsets")),
            };
            wants.push(Want {
                idx,
                start: payload_offset + a,
                end: payload_offset + b,
            });
        }
        let blobs = read_coalesced(&self.snapshot, &self.counter, &run.segment, wants).await?;
        // Each blob against its digest: a damaged range is an error naming
        // the segment, never a wrong blob.
        for (blob, &p) in blobs.iter().zip(positions) {
            let ok = digest_of(p).is_some_and(|d| ContentHash::of(blob).digest() == &d);
            if !ok {
                return Err(DatasetError::Integrity(format!(
                    "blob segment {}: blob {p} does not match its digest (damaged object)",
                    run.segment
                )));
            }
        }
        Ok(ReadColumn::Blob(blobs.into_iter().map(Some).collect()))
    }

    /// The bucket's payload position and record size (one small ranged
    /// read after the anchor table: "factors", its value, "payload" and
    /// the payload's head).
    async fn bucket_geom(&self, run: &RunRef) -> Result<BucketGeom, DatasetError> {
        if let Some(g) = self
            .geoms
            .lock()
            .ok()
            .and_then(|m| m.get(&run.segment).copied())
        {
            return Ok(g);
        }
        let start = run.table_end();
        // 8 + ≤5 + 8 + ≤9 bytes; what follows the payload (record size,
        // spatial index) is longer than the slack, so this stays inside.
        let bytes = read_range(
            &self.snapshot,
            &self.counter,
            &run.segment,
            start,
            start + 30,
            None,
        )
        .await?;
        let mut cur = Cur {
            bytes: &bytes,
            at: 0,
        };
        cur.key("factors")?;
        let factors = cur.uint()?;
        cur.key("payload")?;
        let (major, payload_len) = cur.head()?;
        let n = u64::from(run.count);
        if major != 2 || n == 0 || !payload_len.is_multiple_of(n) {
            return Err(integrity(format!(
                "spatial bucket {}: payload of {payload_len} bytes for {n} records",
                run.segment
            )));
        }
        let geom = BucketGeom {
            payload_offset: start + cur.at as u64,
            record_size: payload_len / n,
            factors,
        };
        if let Ok(mut m) = self.geoms.lock() {
            m.insert(run.segment, geom);
        }
        Ok(geom)
    }

    /// The bucket's cell runs `[cell, first, count]`, from its header (the
    /// bytes before the anchor table: `v`, `dim`, `kind`, `runs`).
    async fn bucket_runs(&self, run: &RunRef) -> Result<Vec<[u32; 3]>, DatasetError> {
        let bytes = read_range(
            &self.snapshot,
            &self.counter,
            &run.segment,
            0,
            run.table_offset,
            None,
        )
        .await?;
        let mut cur = Cur {
            bytes: &bytes,
            at: 0,
        };
        match cur.head()? {
            (5, _) => {}
            _ => return Err(integrity("spatial bucket: not a map")),
        }
        loop {
            let key = cur.text()?;
            match key {
                "v" | "dim" => {
                    cur.uint()?;
                }
                "kind" => {
                    cur.text()?;
                }
                "runs" => {
                    let (major, n) = cur.head()?;
                    if major != 4 {
                        return Err(integrity("spatial bucket: runs is not an array"));
                    }
                    let mut runs = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        if cur.head()? != (4, 3) {
                            return Err(integrity(
                                "spatial bucket: a run is not [cell, first, count]",
                            ));
                        }
                        let mut r = [0u32; 3];
                        for slot in &mut r {
                            *slot = u32::try_from(cur.uint()?)
                                .map_err(|_| integrity("spatial bucket: run value exceeds u32"))?;
                        }
                        runs.push(r);
                    }
                    return Ok(runs);
                }
                other => {
                    return Err(integrity(format!(
                        "spatial bucket: unexpected key {other:?} before the anchor table"
                    )))
                }
            }
        }
    }

    /// Where a compressed bucket's exact vectors are, if anywhere.
    async fn vector_source(&self, run: &RunRef, dim: u32) -> Result<VectorSource, DatasetError> {
        if let Some(s) = self
            .sources
            .lock()
            .ok()
            .and_then(|m| m.get(&run.segment).cloned())
        {
            return Ok(s);
        }
        let state = self.snapshot.manifest().tracks.get(&self.field);
        // Under a paged root the answer is a function of content hashes:
        // kept process-wide, so a second pass over a dataset does not scan
        // the cell entries again.
        let kept_key = state.and_then(|s| match s.root {
            TrackRoot::Paged { page, .. } => Some((page, run.segment, dim)),
            TrackRoot::Inline { .. } => None,
        });
        if let Some(s) = kept_key.and_then(|k| VECTOR_SOURCES.get(&k)) {
            return Ok((*s).clone());
        }
        let runs = self.bucket_runs(run).await?;
        let mut source = VectorSource::Approx(runs.clone());
        if let Some(state) = state {
            let track = Track::new(self.snapshot.store().clone());
            let row = 4 * u64::from(dim);
            let mut found = Vec::with_capacity(runs.len());
            let mut storage = None;
            let mut base = None;
            let cells: Vec<u32> = runs.iter().map(|r| r[0]).collect();
            let by_cell = scan_cells(&track, &state.root, &cells).await?;
            for [cell, first, count] in &runs {
                let raw = by_cell
                    .get(cell)
                    .and_then(|values| values.iter().find(|v| *v.segment() == run.segment))
                    .and_then(compat::raw_rows_of);
                let (first, count) = (u64::from(*first), u64::from(*count));
                let Some(raw) = raw else {
                    found.push((first, count, None));
                    continue;
                };
                let start = raw.offset.checked_sub(first * row);
                if *storage.get_or_insert(raw.storage) != raw.storage
                    || raw.len != count * row
                    || start.is_none()
                    || *base.get_or_insert(start) != start
                {
                    return Err(integrity(format!(
                        "spatial bucket {}: raw rows of cell {cell} disagree with the bucket",
                        run.segment
                    )));
                }
                found.push((first, count, Some(raw.hash)));
            }
            if let (Some(named), Some(found)) = (run.storage, storage) {
                if named != found {
                    return Err(integrity(format!(
                        "spatial bucket {}: its anchor run names vector storage {named}, its cell runs {found}",
                        run.segment
                    )));
                }
            }
            // Every cell run of the bucket may have moved (Ada-IVF): the
            // anchor run still names the storage; its rows are then read
            // whole and checked against the storage's own hash.
            let base = base.flatten().unwrap_or(0);
            if let Some(storage) = storage.or(run.storage) {
                let mut raw_runs: Vec<_> = found
                    .into_iter()
                    .map(|(first, count, hash)| {
                        (first, count, base + first * row, count * row, hash)
                    })
                    .collect();
                raw_runs.sort_unstable_by_key(|r| r.0);
                source = VectorSource::Raw(RawGeom {
                    storage,
                    runs: raw_runs,
                });
            }
        }
        if let Ok(mut m) = self.sources.lock() {
            m.insert(run.segment, source.clone());
        }
        if let Some(key) = kept_key {
            VECTOR_SOURCES.get_or_insert(key, || source.clone());
        }
        Ok(source)
    }

    /// Rows `positions` of `run`'s bucket read from its whole vector
    /// storage, verified by the storage's content hash: for runs whose
    /// cell-order entry moved to another bucket (no range hash recorded).
    async fn rows_of_whole_storage(
        &self,
        run: &RunRef,
        raw: &RawGeom,
        positions: &[usize],
        dim: u32,
        mut values: Vec<f32>,
    ) -> Result<ReadColumn, DatasetError> {
        let bytes = self.snapshot.store().get_bytes(&raw.storage).await?;
        self.counter.add(bytes.len());
        let storage = VectorStorage::decode(&raw.storage, &bytes)?;
        if storage.bucket != run.segment || storage.dim != dim {
            return Err(integrity(format!(
                "vector storage {} belongs to bucket {} (dim {}), not {} (dim {dim})",
                raw.storage, storage.bucket, storage.dim, run.segment
            )));
        }
        let row = 4 * dim as usize;
        for &p in positions {
            let bytes = p
                .checked_mul(row)
                .and_then(|at| storage.vectors.get(at..at + row))
                .ok_or_else(|| {
                    integrity(format!(
                        "vector storage {}: no row {p} ({} rows)",
                        raw.storage,
                        storage.count()
                    ))
                })?;
            le_f32s(bytes, &mut values);
        }
        Ok(ReadColumn::Embedding {
            dim,
            values: values.into(),
            valid: vec![true; positions.len()],
        })
    }

    async fn embedding_values(
        &self,
        run: &RunRef,
        table: &[u64],
        positions: &[usize],
        dim: u32,
        compressed: bool,
    ) -> Result<ReadColumn, DatasetError> {
        let d = dim as usize;
        let mut values = Vec::with_capacity(positions.len() * d);
        super::huge_pages::advise_huge_pages(&mut values);
        if positions.is_empty() {
            return Ok(ReadColumn::Embedding {
                dim,
                values: values.into(),
                valid: Vec::new(),
            });
        }
        let source = if compressed {
            Some(self.vector_source(run, dim).await?)
        } else {
            None
        };
        if let Some(VectorSource::Raw(raw)) = &source {
            // Whole cell runs of raw rows, each checked against its hash
            // (a ranged read of a damaged storage is an integrity error,
            // never a wrong vector), then the asked rows sliced out.
            let row = 4 * u64::from(dim);
            let run_of = |p: u64| {
                let i = raw.runs.partition_point(|r| r.0 <= p).checked_sub(1)?;
                let r = raw.runs.get(i)?;
                (p < r.0 + r.1).then_some(i)
            };
            let mut is_needed = vec![false; raw.runs.len()];
            for &p in positions {
                let i = run_of(p as u64)
                    .ok_or_else(|| integrity("vector storage: record outside every run"))?;
                if let Some(flag) = is_needed.get_mut(i) {
                    *flag = true;
                }
            }
            let needed: Vec<usize> = (0..raw.runs.len()).filter(|&i| is_needed[i]).collect();
            if needed.iter().any(|&i| raw.runs[i].4.is_none()) {
                return self
                    .rows_of_whole_storage(run, raw, positions, dim, values)
                    .await;
            }
            let store = self.snapshot.store();
            let range_of = |i: usize| {
                let (_, _, offset, len, _) = raw.runs[i];
                ByteRange::new(offset, offset + len)
            };
            // Runs this session already verified and kept (a small field
            // iterated again): no read and no hash.
            let mut fetched: Vec<(usize, Bytes)> = Vec::with_capacity(needed.len());
            let mut missing: Vec<usize> = Vec::with_capacity(needed.len());
            for &i in &needed {
                let kept = match (self.keep_reads, raw.runs[i].4) {
                    (true, Some(hash)) => store.cached_range(&raw.storage, range_of(i), hash),
                    _ => None,
                };
                match kept {
                    Some(bytes) => fetched.push((i, bytes)),
                    None => missing.push(i),
                }
            }
            // One append's runs lie side by side in its vector storage:
            // neighbours are read as one range (one request, not one per
            // cell), and each run is then checked against its own hash.
            let wants = missing
                .iter()
                .enumerate()
                .map(|(idx, &i)| {
                    let range = range_of(i);
                    Want {
                        idx,
                        start: range.start,
                        end: range.end,
                    }
                })
                .collect();
            let slices = read_coalesced(&self.snapshot, &self.counter, &raw.storage, wants).await?;
            for (&i, bytes) in missing.iter().zip(slices) {
                if let Some(expected) = raw.runs[i].4 {
                    store.check_range(
                        &raw.storage,
                        range_of(i),
                        expected,
                        &bytes,
                        self.keep_reads,
                    )?;
                }
                fetched.push((i, bytes));
            }
            // Run index → its bytes (a dense table: one lookup per row).
            let mut by_run: Vec<Option<Bytes>> = vec![None; raw.runs.len()];
            for (i, bytes) in fetched {
                if let Some(slot) = by_run.get_mut(i) {
                    *slot = Some(bytes);
                }
            }
            for &p in positions {
                let p = p as u64;
                let i = run_of(p)
                    .ok_or_else(|| integrity("vector storage: record outside every run"))?;
                let (first, ..) = raw.runs[i];
                let at = ((p - first) * row) as usize;
                let bytes = by_run
                    .get(i)
                    .and_then(Option::as_ref)
                    .and_then(|b| b.get(at..at + row as usize))
                    .ok_or_else(|| integrity("vector storage: short row"))?;
                le_f32s(bytes, &mut values);
            }
            return Ok(ReadColumn::Embedding {
                dim,
                values: values.into(),
                valid: vec![true; positions.len()],
            });
        }
        let geom = self.bucket_geom(run).await?;
        let expected_factors = if compressed { FACTORS as u64 } else { 0 };
        if geom.factors != expected_factors
            || (!compressed && geom.record_size != 8 + 4 * u64::from(dim))
        {
            return Err(integrity(format!(
                "spatial bucket {} does not have the layout of field {:?}",
                run.segment, self.field
            )));
        }
        let wants = positions
            .iter()
            .enumerate()
            .map(|(idx, &p)| Want {
                idx,
                start: geom.payload_offset + p as u64 * geom.record_size,
                end: geom.payload_offset + (p as u64 + 1) * geom.record_size,
            })
            .collect();
        let records = read_coalesced(&self.snapshot, &self.counter, &run.segment, wants).await?;
        let code_at = 8 + 4 * geom.factors as usize;
        let spatial = match &source {
            Some(VectorSource::Approx(_)) => self.spatial().await?,
            _ => None,
        };
        for (rec, &p) in records.iter().zip(positions) {
            let anchor = rec.get(..8).map(le_u64s).and_then(|v| v.first().copied());
            if anchor != table.get(p).copied() {
                return Err(integrity(format!(
                    "spatial bucket {}: record {p} disagrees with the anchor table",
                    run.segment
                )));
            }
            let code = rec.get(code_at..).unwrap_or(&[]);
            match (&source, &spatial) {
                (None, _) => le_f32s(code, &mut values),
                (Some(VectorSource::Approx(runs)), Some(sp)) => {
                    let cell = runs
                        .iter()
                        .find(|[_, first, count]| {
                            (*first as usize..(*first + *count) as usize).contains(&p)
                        })
                        .map(|r| r[0])
                        .ok_or_else(|| integrity("record outside every run of its bucket"))?;
                    let Some(rq) = &sp.compressor else {
                        return Err(integrity("compressed bucket without a compressor"));
                    };
                    let mut factors = Vec::with_capacity(FACTORS);
                    le_f32s(rec.get(8..code_at).unwrap_or(&[]), &mut factors);
                    let words = le_u64s(code);
                    let centroid = layout::residual_centroid(&sp.index, cell)?;
                    values.extend(rq.decode(&words, &factors, centroid)?);
                }
                _ => return Err(integrity("compressed field without a spatial index")),
            }
        }
        if values.len() != positions.len() * d {
            return Err(integrity(format!(
                "spatial bucket {}: decoded {} values for {} records of dim {d}",
                run.segment,
                values.len(),
                positions.len()
            )));
        }
        Ok(ReadColumn::Embedding {
            dim,
            values: values.into(),
            valid: vec![true; positions.len()],
        })
    }
}

/// The anchor-order runs of one field, for finding the runs that may hold
/// given anchors (runs may overlap when anchors were given by the user).
#[derive(Debug, Clone, Default)]
pub(crate) struct AnchorLocator {
    runs: Vec<RunRef>,
    /// `max_last[i]` = the largest `last` of `runs[..=i]`.
    max_last: Vec<u64>,
}

impl AnchorLocator {
    pub(crate) fn new(mut runs: Vec<RunRef>) -> AnchorLocator {
        runs.sort_by_key(|r| (r.first, r.segment));
        let mut max_last = Vec::with_capacity(runs.len());
        let mut m = 0u64;
        for r in &runs {
            m = m.max(r.last);
            max_last.push(m);
        }
        AnchorLocator { runs, max_last }
    }

    /// Indices of the runs whose interval contains `anchor`.
    pub(crate) fn covering(&self, anchor: u64) -> Vec<usize> {
        let mut out = Vec::new();
        let mut j = self.runs.partition_point(|r| r.first <= anchor);
        while j > 0 {
            j -= 1;
            if self.max_last.get(j).is_some_and(|m| *m < anchor) {
                break;
            }
            if self.runs.get(j).is_some_and(|r| r.last >= anchor) {
                out.push(j);
            }
        }
        out
    }
}

/// One run's part of [`fetch_by_anchors`]: run index, its values, and
/// (anchor index, row in the values) per anchor found in the run.
type RunValues = (usize, Option<ReadColumn>, Vec<(usize, usize)>);

/// The values of one field at `anchors` (any order): the column aligned to
/// `anchors` (when `with_values`) and, per anchor, whether the field has a
/// record there at all. Runs are read concurrently; per run one anchor
/// table read plus the value reads of [`FieldReader::values`].
pub(crate) async fn fetch_by_anchors(
    reader: &FieldReader,
    locator: &AnchorLocator,
    anchors: &[u64],
    with_values: bool,
) -> Result<(Option<ReadColumn>, Vec<bool>), DatasetError> {
    let mut per_run: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, a) in anchors.iter().enumerate() {
        for r in locator.covering(*a) {
            per_run.entry(r).or_default().push(i);
        }
    }
    let mut jobs: Vec<(usize, Vec<usize>)> = per_run.into_iter().collect();
    jobs.sort_by_key(|(r, _)| *r);
    let fetched: Vec<RunValues> = futures::stream::iter(jobs)
        .map(|(r, wanted)| async move {
            let run = locator
                .runs
                .get(r)
                .ok_or_else(|| integrity("run index out of range"))?;
            let table = reader.anchor_table(run).await?;
            let pos: HashMap<u64, usize> = table.iter().enumerate().map(|(p, a)| (*a, p)).collect();
            // (anchor index, row in the fetched column)
            let mut hits = Vec::new();
            let mut positions = Vec::new();
            for i in wanted {
                if let Some(p) = anchors.get(i).and_then(|a| pos.get(a)) {
                    hits.push((i, positions.len()));
                    positions.push(*p);
                }
            }
            let column = if with_values && !positions.is_empty() {
                Some(reader.values(run, &table, &positions).await?)
            } else {
                None
            };
            Ok::<_, DatasetError>((r, column, hits))
        })
        .buffer_unordered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
    let mut present = vec![false; anchors.len()];
    let mut picks: Vec<Option<(usize, usize)>> = vec![None; anchors.len()];
    let mut sources: Vec<&ReadColumn> = Vec::new();
    let mut ordered: Vec<&RunValues> = fetched.iter().collect();
    ordered.sort_by_key(|(r, _, _)| *r);
    for (_, column, hits) in ordered {
        let source = column.as_ref().map(|c| {
            sources.push(c);
            sources.len() - 1
        });
        for &(i, row) in hits {
            if let Some(slot) = present.get_mut(i) {
                if *slot {
                    continue;
                }
                *slot = true;
                if let (Some(s), Some(pick)) = (source, picks.get_mut(i)) {
                    *pick = Some((s, row));
                }
            }
        }
    }
    let column = if with_values {
        Some(ReadColumn::gather(reader.kind, &sources, &picks)?)
    } else {
        None
    };
    Ok((column, present))
}
