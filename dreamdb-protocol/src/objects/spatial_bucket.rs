//! `spatial-bucket`: one append's records of one embedding field, grouped
//! by spatial cell.
//!
//! The header names the spatial index the records were placed under, the
//! compressor their codes come from, the dimension and the record layout,
//! and lists one **run** per cell: `[cell, first_record, count]`, sorted
//! by cell, contiguous. The payload is a byte string of fixed-size
//! records, run after run, so each cell's records are one contiguous byte
//! range of the encoded object: a query fetches a cell's run with one
//! ranged GET ([`SpatialBucket::run_range`]) and decodes it with
//! [`RecordLayout::decode_run`], without the rest of the object.
//!
//! Record layout (all little-endian):
//!
//! ```text
//! anchor   u64                      8 bytes
//! factors  f32 × factors            4 × factors bytes (correction factors)
//! code     record_size − 8 − 4 × factors bytes
//! ```
//!
//! Without a compressor the code is the raw vector (`f32 × dim`) and there
//! are no correction factors. Within a run, anchors are strictly
//! ascending; an anchor appears once in a bucket.
//!
//! `anchors` repeats every record's anchor (u64 LE) in payload order: the
//! bucket's anchor table, which the track's anchor-order entry points at
//! ([`SpatialBucket::anchors_range`]) so that `get` and `iter` find a
//! record's index — and from it its byte range — by reading 8 bytes per
//! record instead of the whole payload. It must equal the anchors inside
//! the records.

use dreamdb_core::time::TimeAnchor;
use dreamdb_core::ContentHash;
use serde::{Deserialize, Serialize};

use super::common::{check_dim, f32_at, u64_at, ByteRange};
use super::envelope::{encode_with_blobs, BlobLayout};
use super::error::{Invariant, ObjectError, Problem};
use super::ObjectKind;

/// The key of the payload field.
const PAYLOAD_KEY: &str = "payload";
/// The key of the anchor table.
const ANCHORS_KEY: &str = "anchors";

/// Bytes of a record's anchor.
pub const ANCHOR_BYTES: u32 = 8;

/// One cell's run of records: `[cell, first_record, count]` in CBOR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "[u32; 3]", into = "[u32; 3]")]
pub struct CellRun {
    /// The spatial cell.
    pub cell: u32,
    /// Index of the run's first record in the payload.
    pub first: u32,
    /// Number of records, ≥ 1.
    pub count: u32,
}

impl From<[u32; 3]> for CellRun {
    fn from([cell, first, count]: [u32; 3]) -> Self {
        CellRun { cell, first, count }
    }
}

impl From<CellRun> for [u32; 3] {
    fn from(run: CellRun) -> Self {
        [run.cell, run.first, run.count]
    }
}

/// One embedding record, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct SpatialRecord {
    /// The record's anchor.
    pub anchor: TimeAnchor,
    /// Correction factors of the quantiser (empty without compressor).
    pub factors: Vec<f32>,
    /// The code (or raw f32 vector bytes without compressor).
    pub code: Vec<u8>,
}

/// One record inside a run's bytes, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    bytes: &'a [u8],
    factors: usize,
}

impl<'a> RecordView<'a> {
    /// The anchor.
    pub fn anchor(&self) -> TimeAnchor {
        TimeAnchor::new(u64_at(self.bytes, 0))
    }

    /// Correction factor `i` (0 if out of range).
    pub fn factor(&self, i: usize) -> f32 {
        if i >= self.factors {
            return 0.0;
        }
        f32_at(self.bytes, 8 + 4 * i)
    }

    /// The code bytes.
    pub fn code(&self) -> &'a [u8] {
        self.bytes.get(8 + 4 * self.factors..).unwrap_or(&[])
    }

    /// An owned copy.
    pub fn to_record(&self) -> SpatialRecord {
        SpatialRecord {
            anchor: self.anchor(),
            factors: (0..self.factors).map(|i| self.factor(i)).collect(),
            code: self.code().to_vec(),
        }
    }
}

/// How the fixed-size records of a bucket are laid out: enough to decode a
/// run fetched by byte range without the bucket's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLayout {
    /// Correction factors per record.
    pub factors: u32,
    /// Bytes per record.
    pub record_size: u32,
}

impl RecordLayout {
    /// Bytes of a record's code.
    pub fn code_len(&self) -> Option<u32> {
        self.record_size
            .checked_sub(ANCHOR_BYTES)?
            .checked_sub(self.factors.checked_mul(4)?)
            .filter(|len| *len > 0)
    }

    /// Splits a run's bytes into records. Fails if the length is not a
    /// whole number of records or the layout is impossible; anchors must be
    /// strictly ascending, as in every run.
    pub fn decode_run<'a>(&self, bytes: &'a [u8]) -> Result<Vec<RecordView<'a>>, ObjectError> {
        let fail = |rule: &'static str, detail: String| {
            ObjectError::new(
                SpatialBucket::KIND,
                None,
                Problem::Invariant(Invariant::new(rule, detail)),
            )
        };
        if self.code_len().is_none() {
            return Err(fail(
                "record-size",
                format!("record size {} leaves no code bytes", self.record_size),
            ));
        }
        let size = self.record_size as usize;
        if !bytes.len().is_multiple_of(size) {
            return Err(fail(
                "run-length",
                format!(
                    "{} bytes is not a whole number of {size}-byte records",
                    bytes.len()
                ),
            ));
        }
        let records: Vec<RecordView<'a>> = bytes
            .chunks_exact(size)
            .map(|chunk| RecordView {
                bytes: chunk,
                factors: self.factors as usize,
            })
            .collect();
        if let Some(i) = records
            .windows(2)
            .position(|pair| pair[0].anchor() >= pair[1].anchor())
        {
            return Err(fail(
                "anchors-sorted",
                format!(
                    "record {} does not have a larger anchor than record {i}",
                    i + 1
                ),
            ));
        }
        Ok(records)
    }
}

/// What a bucket is placed under; the input of [`SpatialBucket::build`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketParams {
    /// The spatial index the records were placed under.
    pub spatial_index: ContentHash,
    /// The compressor of the codes (absent: raw f32 vectors).
    pub compressor: Option<ContentHash>,
    /// Vector dimension.
    pub dim: u32,
    /// Correction factors per record.
    pub factors: u32,
}

/// One append's embedding records, grouped by cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpatialBucket {
    /// The spatial index the records were placed under.
    pub spatial_index: ContentHash,
    /// The compressor of the codes (absent: raw f32 vectors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressor: Option<ContentHash>,
    /// Vector dimension.
    pub dim: u32,
    /// Correction factors (f32) per record.
    pub factors: u32,
    /// Bytes per record.
    pub record_size: u32,
    /// One run per cell, sorted by cell, contiguous in the payload.
    pub runs: Vec<CellRun>,
    /// Every record's anchor, u64 LE, in payload order.
    #[serde(with = "serde_bytes")]
    pub anchors: Vec<u8>,
    /// The records.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// The header fields, borrowed, in the same shape as [`SpatialBucket`]
/// minus the payload (for the fast writer).
#[derive(Serialize)]
struct Header<'a> {
    spatial_index: &'a ContentHash,
    #[serde(skip_serializing_if = "Option::is_none")]
    compressor: &'a Option<ContentHash>,
    dim: u32,
    factors: u32,
    record_size: u32,
    runs: &'a [CellRun],
}

impl SpatialBucket {
    /// Groups `records` (cell, record) into a bucket: runs sorted by cell,
    /// records within a run sorted by anchor.
    pub fn build(
        params: BucketParams,
        records: impl IntoIterator<Item = (u32, SpatialRecord)>,
    ) -> Result<SpatialBucket, ObjectError> {
        let fail = |rule: &'static str, detail: String| {
            ObjectError::new(
                Self::KIND,
                None,
                Problem::Invariant(Invariant::new(rule, detail)),
            )
        };
        let mut records: Vec<(u32, SpatialRecord)> = records.into_iter().collect();
        if records.is_empty() {
            return Err(fail(
                "runs-nonempty",
                "a bucket holds at least one run".to_owned(),
            ));
        }
        records.sort_by_key(|(cell, record)| (*cell, record.anchor));
        let code_len = records.first().map_or(0, |(_, r)| r.code.len());
        let record_size = 8 + 4 * u64::from(params.factors) + code_len as u64;
        let record_size = u32::try_from(record_size).map_err(|_| {
            fail(
                "record-size",
                format!("record size {record_size} exceeds u32"),
            )
        })?;
        let mut payload = Vec::with_capacity(records.len() * record_size as usize);
        let mut anchors = Vec::with_capacity(records.len() * 8);
        let mut runs: Vec<CellRun> = Vec::new();
        for (index, (cell, record)) in records.iter().enumerate() {
            if record.code.len() != code_len || record.factors.len() != params.factors as usize {
                return Err(fail(
                    "record-size",
                    format!("record {index} does not have the layout of the first record"),
                ));
            }
            let index = u32::try_from(index)
                .map_err(|_| fail("run-count", "more than 2^32 records".to_owned()))?;
            match runs.last_mut() {
                Some(run) if run.cell == *cell => run.count += 1,
                _ => runs.push(CellRun {
                    cell: *cell,
                    first: index,
                    count: 1,
                }),
            }
            payload.extend_from_slice(&record.anchor.as_nanos().to_le_bytes());
            anchors.extend_from_slice(&record.anchor.as_nanos().to_le_bytes());
            for factor in &record.factors {
                payload.extend_from_slice(&factor.to_le_bytes());
            }
            payload.extend_from_slice(&record.code);
        }
        let bucket = SpatialBucket {
            spatial_index: params.spatial_index,
            compressor: params.compressor,
            dim: params.dim,
            factors: params.factors,
            record_size,
            runs,
            anchors,
            payload,
        };
        bucket
            .validate()
            .map_err(|i| ObjectError::new(Self::KIND, None, Problem::Invariant(i)))?;
        Ok(bucket)
    }

    /// The record layout, for decoding runs.
    pub fn layout(&self) -> RecordLayout {
        RecordLayout {
            factors: self.factors,
            record_size: self.record_size,
        }
    }

    /// Number of records.
    pub fn count(&self) -> u64 {
        self.runs.iter().map(|r| u64::from(r.count)).sum()
    }

    /// The run of `cell`, if the bucket has records in it.
    pub fn run_of(&self, cell: u32) -> Option<CellRun> {
        self.runs
            .binary_search_by_key(&cell, |r| r.cell)
            .ok()
            .and_then(|i| self.runs.get(i).copied())
    }

    fn header(&self) -> Header<'_> {
        Header {
            spatial_index: &self.spatial_index,
            compressor: &self.compressor,
            dim: self.dim,
            factors: self.factors,
            record_size: self.record_size,
            runs: &self.runs,
        }
    }

    fn blob_layout(&self) -> Result<BlobLayout, ObjectError> {
        BlobLayout::new::<Self, _>(
            &self.header(),
            &[
                (ANCHORS_KEY, self.anchors.len()),
                (PAYLOAD_KEY, self.payload.len()),
            ],
        )
    }

    /// Absolute offset of the payload's first byte in the encoded object.
    pub fn payload_offset(&self) -> Result<u64, ObjectError> {
        Ok(self.blob_layout()?.blob_offset(1))
    }

    /// Absolute byte range of the anchor table in the encoded object.
    pub fn anchors_range(&self) -> Result<ByteRange, ObjectError> {
        Ok(ByteRange {
            offset: self.blob_layout()?.blob_offset(0),
            len: self.anchors.len() as u64,
        })
    }

    /// Index (in payload order) of the record with `anchor`, found in the
    /// anchor table.
    pub fn record_index(&self, anchor: TimeAnchor) -> Option<u64> {
        self.anchors
            .chunks_exact(8)
            .position(|chunk| u64_at(chunk, 0) == anchor.as_nanos())
            .map(|i| i as u64)
    }

    /// Absolute byte range of record `index` (in payload order).
    pub fn record_range(&self, index: u64) -> Result<Option<ByteRange>, ObjectError> {
        if index >= self.count() {
            return Ok(None);
        }
        let size = u64::from(self.record_size);
        Ok(Some(ByteRange {
            offset: self.payload_offset()? + index * size,
            len: size,
        }))
    }

    /// The run's records' range inside the payload (relative).
    fn run_span(&self, run: &CellRun) -> (u64, u64) {
        let size = u64::from(self.record_size);
        (u64::from(run.first) * size, u64::from(run.count) * size)
    }

    /// The absolute byte range of `run` in the encoded object: one ranged
    /// GET of it returns exactly the run's records.
    pub fn run_range(&self, run: &CellRun) -> Result<ByteRange, ObjectError> {
        let (start, len) = self.run_span(run);
        Ok(ByteRange {
            offset: self.payload_offset()? + start,
            len,
        })
    }

    /// The absolute byte ranges of every run, in run order (the header is
    /// laid out once).
    pub fn run_ranges(&self) -> Result<Vec<(CellRun, ByteRange)>, ObjectError> {
        let base = self.payload_offset()?;
        Ok(self
            .runs
            .iter()
            .map(|run| {
                let (start, len) = self.run_span(run);
                (
                    *run,
                    ByteRange {
                        offset: base + start,
                        len,
                    },
                )
            })
            .collect())
    }

    /// The bytes of `run` inside the payload (empty if out of range).
    pub fn run_bytes(&self, run: &CellRun) -> &[u8] {
        let (start, len) = self.run_span(run);
        usize::try_from(start)
            .ok()
            .zip(usize::try_from(start + len).ok())
            .and_then(|(a, b)| self.payload.get(a..b))
            .unwrap_or(&[])
    }

    /// The BLAKE3 hash of `run`'s bytes, which the track's cell-order entry
    /// records so that a ranged read can be verified on its own.
    pub fn run_hash(&self, run: &CellRun) -> ContentHash {
        ContentHash::of(self.run_bytes(run))
    }

    /// Decodes a run's bytes (fetched by [`SpatialBucket::run_range`]).
    pub fn decode_run<'a>(&self, bytes: &'a [u8]) -> Result<Vec<RecordView<'a>>, ObjectError> {
        self.layout().decode_run(bytes)
    }

    /// Every record, cell by cell.
    pub fn records(&self) -> impl Iterator<Item = (u32, RecordView<'_>)> + '_ {
        let factors = self.factors as usize;
        self.runs.iter().flat_map(move |run| {
            self.run_bytes(run)
                .chunks_exact(self.record_size.max(1) as usize)
                .map(move |bytes| (run.cell, RecordView { bytes, factors }))
        })
    }
}

impl ObjectKind for SpatialBucket {
    const KIND: &'static str = "spatial-bucket";

    fn validate(&self) -> Result<(), Invariant> {
        check_dim(self.dim)?;
        let layout = self.layout();
        if layout.code_len().is_none() {
            return Err(Invariant::new(
                "record-size",
                format!(
                    "record size {} leaves no code bytes after the anchor and {} factors",
                    self.record_size, self.factors
                ),
            ));
        }
        if self.compressor.is_none()
            && (self.factors != 0 || u64::from(self.record_size) != 8 + 4 * u64::from(self.dim))
        {
            return Err(Invariant::new(
                "record-size",
                "without a compressor a record is an anchor and the raw f32 vector (no factors)",
            ));
        }
        if self.runs.is_empty() {
            return Err(Invariant::new(
                "runs-nonempty",
                "a bucket holds at least one run",
            ));
        }
        if let Some(i) = self
            .runs
            .windows(2)
            .position(|pair| pair[0].cell >= pair[1].cell)
        {
            return Err(Invariant::new(
                "runs-sorted",
                format!(
                    "run {} (cell {}) is not after the previous cell",
                    i + 1,
                    self.runs[i + 1].cell
                ),
            ));
        }
        let mut next_first = 0u64;
        for (i, run) in self.runs.iter().enumerate() {
            if run.count == 0 {
                return Err(Invariant::new("run-count", format!("run {i} is empty")));
            }
            if u64::from(run.first) != next_first {
                return Err(Invariant::new(
                    "runs-contiguous",
                    format!(
                        "run {i} starts at record {}, expected {next_first}",
                        run.first
                    ),
                ));
            }
            next_first += u64::from(run.count);
        }
        let expected = next_first * u64::from(self.record_size);
        if self.payload.len() as u64 != expected {
            return Err(Invariant::new(
                "payload-length",
                format!(
                    "payload is {} bytes; {next_first} records of {} bytes need {expected}",
                    self.payload.len(),
                    self.record_size
                ),
            ));
        }
        if self.anchors.len() as u64 != 8 * next_first {
            return Err(Invariant::new(
                "anchors-table",
                format!(
                    "the anchor table has {} bytes; {next_first} records need {}",
                    self.anchors.len(),
                    8 * next_first
                ),
            ));
        }
        let mut anchors = Vec::with_capacity(next_first as usize);
        let mut table = self.anchors.chunks_exact(8);
        for run in &self.runs {
            let mut previous: Option<TimeAnchor> = None;
            for record in self.run_bytes(run).chunks_exact(self.record_size as usize) {
                let anchor = TimeAnchor::new(u64_at(record, 0));
                if table.next().map(|entry| u64_at(entry, 0)) != Some(anchor.as_nanos()) {
                    return Err(Invariant::new(
                        "anchors-table",
                        format!(
                            "record {} has anchor {anchor}, the table disagrees",
                            anchors.len()
                        ),
                    ));
                }
                if previous.is_some_and(|p| p >= anchor) {
                    return Err(Invariant::new(
                        "anchors-sorted",
                        format!("anchors of cell {} are not strictly ascending", run.cell),
                    ));
                }
                previous = Some(anchor);
                anchors.push(anchor);
            }
        }
        anchors.sort_unstable();
        if let Some(pair) = anchors.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(Invariant::new(
                "anchors-unique",
                format!("anchor {} appears in two cells", pair[0]),
            ));
        }
        Ok(())
    }

    fn canonical_bytes(&self) -> Result<Vec<u8>, ObjectError> {
        encode_with_blobs::<Self, _>(
            &self.header(),
            &[(ANCHORS_KEY, &self.anchors), (PAYLOAD_KEY, &self.payload)],
        )
    }
}
