//! `query`: top-k by vector through the storage path.
//!
//! The same computation as the in-memory pipeline
//! (`dreamdb_protocol::spatial::search`), fed from stored runs:
//!
//! 1. load the field's spatial index and compressor (cached objects; their
//!    decoded form and rotated centroids are shared across queries, keyed
//!    by content hash);
//! 2. probe the `nprobe` nearest cells — and twice as many, again and
//!    again, while the probed cells hold fewer than `k` records and the
//!    index has cells left (a sparse LSH table or small cells would
//!    otherwise return fewer than `k` hits from a dataset that has them);
//! 3. scan the track's cell-order entries of those cells (index pages;
//!    each paged root's decoded cell entries are kept across queries);
//! 4. fetch every run's byte range concurrently (at most
//!    [`FETCH_CONCURRENCY`] in flight), each verified by its run hash;
//! 5. compressed fields: estimate every record's distance from its RaBitQ
//!    code; keep the best `k × refine_factor` by estimate, sort them by
//!    lower bound, and rerank exactly from the raw rows (one ranged read per
//!    run holding one of them, of the run's whole raw rows so that the run
//!    hash verifies them; the session caches verified ranges), stopping
//!    at the first candidate whose lower bound exceeds the k-th exact
//!    distance. Estimates use the quantised query and popcounts
//!    (spec 0010 §5.1); without a filter only a bounded set of the best
//!    `k × refine_factor` is kept while scanning. With
//!    `refine_factor` 0, or without raw rows, estimates are returned.
//!    Uncompressed fields (IVF-flat, flat): exact distances from the run
//!    bytes, which are the vectors;
//! 6. tombstoned anchors are dropped before candidates are ranked, so the
//!    top k stays full while enough live records were probed;
//! 7. a [`Filter`] is applied to candidates in order of (estimated or
//!    exact) distance, in chunks, fetching the filtered fields' values for
//!    each chunk's anchors, until enough candidates pass (k, or
//!    `k × refine_factor` when reranking) or the probed cells run out;
//! 8. the requested fields of the final hits are fetched by anchor.
//!
//! Distances are the metric's "smaller is closer" values on prepared
//! vectors: `1 − cos` for cosine, squared L2, negated inner product.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::{Manifest, RecordLayout, ANCHOR_BYTES};
use dreamdb_protocol::spatial::metric::{
    prepare, prepare_into, prepared_distance_many, Metric as SpatialMetric, REF_LANES,
};
use dreamdb_protocol::spatial::rabitq::quantised::{QuantisedQuery, RecordCodes};
use dreamdb_protocol::spatial::rabitq::{Estimate, RaBitQ, DEFAULT_EPSILON0, FACTORS};
use dreamdb_protocol::spatial::topk::{BoundedTop, Ranked};
use dreamdb_protocol::spatial::SpatialIndex;
use dreamdb_protocol::track::{IndexPage, KeyRange, Track, TrackRoot, TrackValue, FANOUT};
use futures::{StreamExt, TryStreamExt};

use super::fetch::{
    anchor_runs, fetch_by_anchors, le_f32s, read_range_cached, AnchorLocator, FieldReader,
    ReadCounter, FETCH_CONCURRENCY,
};
use super::filter::Filter;
use super::kept::Kept;
use super::{field_kind, resolve_fields, FieldKind, Tombstones, Value, TOMBSTONES_KEY};
use crate::write::compat;
use crate::write::layout::{load_spatial, residual_centroid, spatial_metric, LoadedSpatial};
use crate::{DatasetError, Snapshot};

/// A top-k query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    /// The embedding field searched.
    pub field: String,
    /// The query vector (the field's dimension, finite).
    pub vector: Vec<f32>,
    /// Results wanted (≥ 1).
    pub k: usize,
    /// Cells probed (≥ 1).
    pub nprobe: usize,
    /// Rerank `k × refine_factor` candidates exactly (0: return RaBitQ
    /// estimates). Ignored for uncompressed fields, whose distances are
    /// always exact.
    pub refine_factor: usize,
    /// Only records whose scalar fields satisfy this.
    pub filter: Option<Filter>,
    /// Fields to return with each hit (empty: anchors and distances only).
    pub fields: Vec<String>,
    /// ε₀ of the RaBitQ error bound used to stop reranking early.
    pub epsilon0: f32,
}

impl QueryRequest {
    /// A query of `field` for the `k` nearest to `vector`, probing 8 cells
    /// and reranking `4 k` candidates, no filter, no fields.
    pub fn new(field: &str, vector: Vec<f32>, k: usize) -> Self {
        QueryRequest {
            field: field.to_owned(),
            vector,
            k,
            nprobe: 8,
            refine_factor: 4,
            filter: None,
            fields: Vec::new(),
            epsilon0: DEFAULT_EPSILON0,
        }
    }

    /// Sets `nprobe`.
    pub fn nprobe(mut self, nprobe: usize) -> Self {
        self.nprobe = nprobe;
        self
    }

    /// Sets the refine factor.
    pub fn refine_factor(mut self, refine_factor: usize) -> Self {
        self.refine_factor = refine_factor;
        self
    }

    /// Sets the filter.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Sets the fields returned with each hit.
    pub fn fields(mut self, fields: &[&str]) -> Self {
        self.fields = fields.iter().map(|f| (*f).to_owned()).collect();
        self
    }
}

/// One result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The record's anchor.
    pub anchor: u64,
    /// Its distance (exact when reranked or uncompressed, else estimated).
    pub distance: f32,
    /// The requested fields.
    pub fields: BTreeMap<String, Value>,
}

/// What a query did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Cells probed.
    pub cells_probed: usize,
    /// Cell runs fetched (one ranged GET each).
    pub runs_read: usize,
    /// Runs whose raw rows the rerank read (a ranged GET each unless the
    /// session cache holds them).
    pub raw_reads: usize,
    /// Runs whose raw rows were read with their codes, in the same round
    /// trip, because the rerank pool (`k × refine_factor`) was at least the
    /// number of runs probed (the rerank then finds them cached).
    pub raw_prefetched: usize,
    /// Bytes of segment data requested by this query (runs, raw rows,
    /// filter values, hit fields; whole objects count even when the
    /// session cache served them).
    pub bytes_read: u64,
    /// Live records scored (estimated, or exactly for uncompressed fields).
    pub candidates: usize,
    /// Exact distances computed from raw rows in reranking.
    pub reranked: usize,
    /// Records of probed runs dropped as tombstoned.
    pub tombstoned: usize,
    /// Candidates tested by the filter.
    pub filter_tested: usize,
    /// Candidates the filter rejected.
    pub filter_rejected: usize,
}

/// The hits, nearest first (ties by anchor), and the counters.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// At most `k` hits.
    pub hits: Vec<Hit>,
    /// What it cost.
    pub stats: QueryStats,
}

fn bad(reason: impl Into<String>) -> DatasetError {
    DatasetError::invalid("_query", reason)
}

/// Checks the request; returns (dim, metric, compressed).
fn validate(snapshot: &Snapshot, r: &QueryRequest) -> Result<(usize, SpatialMetric), DatasetError> {
    let FieldKind::Embedding { dim, metric, .. } = field_kind(snapshot, &r.field)? else {
        return Err(DatasetError::invalid(
            &r.field,
            "queries search embedding fields only",
        ));
    };
    if r.vector.len() != dim as usize {
        return Err(DatasetError::invalid(
            &r.field,
            format!(
                "wrong dimension: the query has {} values, the field has dim {dim}",
                r.vector.len()
            ),
        ));
    }
    if let Some(c) = r.vector.iter().position(|x| !x.is_finite()) {
        return Err(DatasetError::invalid(
            &r.field,
            format!("query component {c} is {} (not finite)", r.vector[c]),
        ));
    }
    if r.k == 0 {
        return Err(bad("k must be at least 1"));
    }
    if r.nprobe == 0 {
        return Err(bad("nprobe must be at least 1"));
    }
    if !r.epsilon0.is_finite() || r.epsilon0 < 0.0 {
        return Err(bad("epsilon0 must be finite and non-negative"));
    }
    let metric = spatial_metric(metric);
    prepare(metric, &r.vector, 0)
        .map_err(|e| DatasetError::invalid(&r.field, format!("query vector: {e}")))?;
    if let Some(f) = &r.filter {
        f.validate(snapshot)?;
    }
    resolve_fields(snapshot, Some(&r.fields))?;
    Ok((dim as usize, metric))
}

/// One fetched cell run.
struct RunData {
    cell: u32,
    value: TrackValue,
    bytes: Bytes,
}

/// One scored record: run index, record index in the run, anchor, score.
#[derive(Debug, Clone, Copy)]
struct Cand {
    run: u32,
    row: u32,
    anchor: u64,
    est: Estimate,
}

fn by_dist(a: &Cand, b: &Cand) -> Ordering {
    a.est
        .distance
        .total_cmp(&b.est.distance)
        .then(a.anchor.cmp(&b.anchor))
}

/// Evaluates a filter on candidates lazily, fetching the tested fields'
/// values chunk by chunk.
struct FilterEval<'a> {
    filter: &'a Filter,
    fields: Vec<(FieldReader, AnchorLocator)>,
}

impl<'a> FilterEval<'a> {
    async fn new(
        snapshot: &Snapshot,
        filter: &'a Filter,
        counter: &Arc<ReadCounter>,
    ) -> Result<FilterEval<'a>, DatasetError> {
        let mut fields = Vec::new();
        for name in filter.fields() {
            let kind = field_kind(snapshot, &name)?;
            let reader = FieldReader::new(snapshot, &name, kind, counter.clone());
            let locator = AnchorLocator::new(anchor_runs(snapshot, &name, None).await?);
            fields.push((reader, locator));
        }
        Ok(FilterEval { filter, fields })
    }

    /// Which of `anchors` pass.
    async fn test(&self, anchors: &[u64]) -> Result<Vec<bool>, DatasetError> {
        let mut values: HashMap<&str, Vec<Value>> = HashMap::new();
        for (reader, locator) in &self.fields {
            let (column, _) = fetch_by_anchors(reader, locator, anchors, true).await?;
            let column =
                column.ok_or_else(|| DatasetError::Integrity("no filter values".into()))?;
            values.insert(
                reader.field.as_str(),
                (0..anchors.len()).map(|i| column.value(i)).collect(),
            );
        }
        Ok((0..anchors.len())
            .map(|i| {
                self.filter.predicates.iter().all(|p| {
                    values
                        .get(p.field())
                        .and_then(|v| v.get(i))
                        .is_some_and(|v| p.matches(v))
                })
            })
            .collect())
    }
}

/// The first `want` candidates (in `by_dist` order) that pass the filter,
/// sorted by `by_dist`; without a filter simply the `want` best.
async fn best_passing(
    mut cands: Vec<Cand>,
    want: usize,
    filter: Option<&FilterEval<'_>>,
    stats: &mut QueryStats,
) -> Result<Vec<Cand>, DatasetError> {
    let Some(filter) = filter else {
        if want < cands.len() && want > 0 {
            cands.select_nth_unstable_by(want - 1, by_dist);
            cands.truncate(want);
        }
        cands.sort_by(by_dist);
        return Ok(cands);
    };
    cands.sort_by(by_dist);
    let mut out = Vec::with_capacity(want);
    let mut at = 0;
    let mut chunk = want.max(16) * 2;
    while out.len() < want && at < cands.len() {
        let end = (at + chunk).min(cands.len());
        let slice = &cands[at..end];
        let anchors: Vec<u64> = slice.iter().map(|c| c.anchor).collect();
        let pass = filter.test(&anchors).await?;
        stats.filter_tested += slice.len();
        for (c, ok) in slice.iter().zip(pass) {
            if !ok {
                stats.filter_rejected += 1;
            } else if out.len() < want {
                out.push(*c);
            }
        }
        at = end;
        chunk *= 2;
    }
    Ok(out)
}

/// A field's decoded spatial machinery with the rotated centroids the
/// fast estimator needs, shared by every query of the process.
struct Prepared {
    loaded: LoadedSpatial,
    /// `R(c)` per IVF slot, computed on first use.
    rotated: Vec<OnceLock<Vec<f32>>>,
}

/// Decoded index/compressor pairs kept across queries: decoding an index
/// (centroids from CBOR) and rebuilding a compressor's rotation (a ChaCha20
/// stream) cost more than a warm query's scan, and both are pure functions
/// of their content hashes.
const PREPARED_KEPT: usize = 8;

type PreparedKey = (ContentHash, Option<ContentHash>);

static PREPARED: Kept<PreparedKey, Prepared> = Kept::new(PREPARED_KEPT);

/// The field's spatial machinery. The objects are still read through the
/// store (a session-cache hit when warm, so call counts are unchanged);
/// only their decoding is shared.
async fn prepared_spatial(
    snapshot: &Snapshot,
    field: &str,
) -> Result<Option<Arc<Prepared>>, DatasetError> {
    let Some(state) = snapshot.manifest().tracks.get(field) else {
        return Ok(None);
    };
    let Some(index_hash) = state.spatial_index else {
        return Ok(None);
    };
    let key = (index_hash, state.compressor);
    let store = snapshot.store();
    if let Some(p) = PREPARED.get(&key) {
        futures::future::try_join(store.get_bytes(&index_hash), async {
            match &state.compressor {
                Some(h) => store.get_bytes(h).await.map(Some),
                None => Ok(None),
            }
        })
        .await?;
        return Ok(Some(p));
    }
    let loaded = load_spatial(store, index_hash, state.compressor).await?;
    let slots = match &loaded.index {
        SpatialIndex::Ivf(i) => i.slots(),
        _ => 0,
    };
    let prepared = PREPARED.get_or_insert(key, || Prepared {
        loaded,
        rotated: (0..slots).map(|_| OnceLock::new()).collect(),
    });
    Ok(Some(prepared))
}

/// The quantised query of `cell` (`R(q) − R(c)` for IVF, `R(q)` else).
fn quantise_for_cell(
    prepared: &Prepared,
    rq: &RaBitQ,
    q: &[f32],
    rotated_query: &[f32],
    cell: u32,
    buf: &mut Vec<f32>,
    out: &mut QuantisedQuery,
) -> Result<(), DatasetError> {
    let centroid = residual_centroid(&prepared.loaded.index, cell)?;
    match centroid {
        Some(c) => {
            let slot = prepared
                .rotated
                .get(cell as usize)
                .ok_or_else(|| DatasetError::Integrity(format!("cell {cell} out of range")))?;
            let rc = slot.get_or_init(|| rq.rotation().apply(c));
            rq.quantise_query(q, rotated_query, Some((c, rc)), buf, out);
        }
        None => rq.quantise_query(q, rotated_query, None, buf, out),
    }
    Ok(())
}

/// The cell-run entries of the probed cells, in probe order then key
/// order.
///
/// Reading them means decoding index pages (CBOR), which costs more than
/// a warm query's scan. A paged track's pages are immutable and named by
/// hash, so each cell's entries are decoded once per root and kept in a
/// small process-wide cache ([`CELL_DIRS_KEPT`] roots); the root page is
/// still read through the store on every query (a session-cache hit when
/// warm). Cells not yet cached are scanned: in one scan over their key span
/// when the track is small next to the probe (at most `FANOUT / 2` entries
/// per such cell, about one leaf each), else one scan per cell.
async fn probed_entries(
    snapshot: &Snapshot,
    track: &Track,
    root: &TrackRoot,
    probed: &[u32],
) -> Result<Vec<(u32, TrackValue)>, DatasetError> {
    let dir = match root {
        TrackRoot::Paged { page, .. } => {
            if let Some(stored) = root.stored_page() {
                snapshot.store().get_bytes(&stored).await?;
            }
            Some(CELL_DIRS.get_or_insert(*page, CellDir::default))
        }
        TrackRoot::Inline { .. } => None,
    };
    let cached = |cell: u32| -> Option<Arc<Vec<TrackValue>>> {
        dir.as_ref().and_then(|d| lock(d).get(&cell).cloned())
    };
    let missing: Vec<u32> = probed
        .iter()
        .copied()
        .filter(|&c| cached(c).is_none())
        .collect();
    let mut scanned = scan_cells(track, root, &missing).await?;
    if let Some(d) = &dir {
        let mut d = lock(d);
        for (cell, values) in &scanned {
            d.insert(*cell, values.clone());
        }
    }
    let mut out = Vec::new();
    for &cell in probed {
        let values = match scanned.remove(&cell) {
            Some(v) => v,
            None => cached(cell).unwrap_or_default(),
        };
        out.extend(values.iter().map(|v| (cell, *v)));
    }
    Ok(out)
}

/// Scans the entries of `cells` (see [`probed_entries`]).
pub(crate) async fn scan_cells(
    track: &Track,
    root: &TrackRoot,
    cells: &[u32],
) -> Result<HashMap<u32, Arc<Vec<TrackValue>>>, DatasetError> {
    let mut by_cell: HashMap<u32, Vec<TrackValue>> =
        cells.iter().map(|&c| (c, Vec::new())).collect();
    let (Some(&lo), Some(&hi)) = (cells.iter().min(), cells.iter().max()) else {
        return Ok(HashMap::new());
    };
    if track.count(root) <= (cells.len() * FANOUT / 2) as u64 {
        for (key, value) in track.scan_all(root, KeyRange::cells(lo..=hi)).await? {
            if let Some(list) = key.cell().and_then(|c| by_cell.get_mut(&c)) {
                list.push(value);
            }
        }
    } else {
        let per_cell: Vec<(u32, Vec<TrackValue>)> = futures::stream::iter(cells.iter().copied())
            .map(|cell| async move {
                let found = track.scan_all(root, KeyRange::cell(cell)).await?;
                Ok::<_, DatasetError>((cell, found.into_iter().map(|(_, v)| v).collect()))
            })
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        by_cell.extend(per_cell);
    }
    Ok(by_cell.into_iter().map(|(c, v)| (c, Arc::new(v))).collect())
}

/// Decoded cell entries of one paged track root.
type CellDir = Mutex<HashMap<u32, Arc<Vec<TrackValue>>>>;

/// Ranged reads a query keeps in flight for its runs, and as many again
/// for their raw rows: 64, so the runs of a typical probe (tens of cells)
/// are read in one round trip rather than in waves. Object stores serve
/// many concurrent ranged reads at the cost of one; the bound only keeps
/// a very wide probe from opening hundreds of connections at once.
const QUERY_FETCH_CONCURRENCY: usize = 64;

/// Most leaves read with the spatial index before the probe (see
/// [`first_reads`]): 32 leaves of at most 16 KiB.
const PREFETCH_LEAVES: usize = 32;

/// Paged track roots whose decoded cell entries are kept.
const CELL_DIRS_KEPT: usize = 16;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

static CELL_DIRS: Kept<ContentHash, CellDir> = Kept::new(CELL_DIRS_KEPT);

/// Fails unless the track's record count matches the run's.
fn check_run_count(run: &RunData, records: usize) -> Result<(), DatasetError> {
    if records != run.value.count() as usize {
        return Err(DatasetError::Integrity(format!(
            "cell run of {}: {records} records, the track says {}",
            run.value.segment(),
            run.value.count()
        )));
    }
    Ok(())
}

/// The anchor of record `i` of a run (0 past the end; callers stay in
/// range).
fn record_anchor(bytes: &[u8], record_size: usize, i: usize) -> u64 {
    bytes
        .get(i * record_size..i * record_size + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// A run of compressed records, checked as [`RecordLayout::decode_run`]
/// checks it (whole records, a code in each, anchors strictly ascending)
/// but read in place.
fn strided_run<'a>(
    layout: &RecordLayout,
    bytes: &'a [u8],
) -> Result<RecordCodes<'a>, DatasetError> {
    let size = layout.record_size as usize;
    let fail = |why: String| DatasetError::Integrity(format!("cell run: {why}"));
    if layout.code_len().is_none() {
        return Err(fail(format!("record size {size} leaves no code bytes")));
    }
    if !bytes.len().is_multiple_of(size) {
        return Err(fail(format!(
            "{} bytes is not a whole number of {size}-byte records",
            bytes.len()
        )));
    }
    let anchors = bytes.chunks_exact(size).map(|r| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&r[..8]);
        u64::from_le_bytes(a)
    });
    let mut last: Option<u64> = None;
    for (i, a) in anchors.enumerate() {
        if last.is_some_and(|l| l >= a) {
            return Err(fail(format!(
                "record {i} does not have a larger anchor than record {}",
                i - 1
            )));
        }
        last = Some(a);
    }
    Ok(RecordCodes {
        bytes,
        record_size: size,
        factors_at: ANCHOR_BYTES as usize,
        code_at: ANCHOR_BYTES as usize + 4 * layout.factors as usize,
    })
}

/// The widest probe a query widens to when its cells hold fewer than `k`
/// records (far more cells than any index here has).
const MAX_WIDENED_NPROBE: usize = 1 << 20;

/// Drops the process-wide caches of decoded query state (prepared spatial
/// indexes, decoded cell entries). Nothing needs this for correctness —
/// the entries are keyed by content hash and never stale — but a
/// measurement of *cold* queries must start without them.
pub fn clear_decoded_caches() {
    PREPARED.clear();
    CELL_DIRS.clear();
    super::fetch::clear_vector_sources();
}

/// The objects a query of `field` reads first, all named by the Manifest:
/// the spatial index, the compressor, the track's root page and the
/// tombstone list (what [`Dataset::query`](crate::Dataset::query) reads
/// beside the Schema, in one round trip).
pub(crate) fn first_reads(manifest: &Manifest, field: &str) -> Vec<ContentHash> {
    let mut out = Vec::new();
    if let Some(state) = manifest.tracks.get(field) {
        out.extend(state.spatial_index);
        out.extend(state.compressor);
        out.extend(state.root.stored_page());
        // A root page the Manifest holds names the second level: when
        // those are the leaves and few, read them all now, beside the
        // spatial index, rather than after it (one round trip less when
        // cold, a few pages more; design 0006).
        if let Some(IndexPage::Internal { level: 1, children }) = state.root.top().map(|t| &**t) {
            if children.len() <= PREFETCH_LEAVES {
                out.extend(children.iter().map(|c| c.page));
            }
        }
    }
    out.extend(manifest.registry.get(TOMBSTONES_KEY).copied());
    out
}

/// [`first_reads`] of every field with a spatial index (what opening a
/// version prefetches, see `Dataset::warm`).
pub(crate) fn every_first_read(manifest: &Manifest) -> Vec<ContentHash> {
    let mut out: Vec<ContentHash> = manifest
        .tracks
        .iter()
        .filter(|(_, state)| state.spatial_index.is_some())
        .flat_map(|(field, _)| first_reads(manifest, field))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Top-k by vector (see the module docs for the steps and their cost).
pub async fn query(
    snapshot: &Snapshot,
    request: &QueryRequest,
) -> Result<QueryResult, DatasetError> {
    let (dim, metric) = validate(snapshot, request)?;
    let counter = Arc::new(ReadCounter::default());
    let mut stats = QueryStats::default();
    // The spatial machinery, the tombstones and the track's root page are
    // all named by the Manifest: read them concurrently (one round trip).
    let root_page = snapshot
        .manifest()
        .tracks
        .get(&request.field)
        .and_then(|s| s.root.stored_page());
    let (prepared, tombstones, _) = futures::future::try_join3(
        prepared_spatial(snapshot, &request.field),
        Tombstones::load(snapshot),
        async {
            match root_page {
                Some(page) => snapshot.store().get_bytes(&page).await.map(Some),
                None => Ok(None),
            }
            .map_err(DatasetError::from)
        },
    )
    .await?;
    let Some(prepared) = prepared else {
        return Ok(QueryResult {
            hits: Vec::new(),
            stats,
        });
    };
    let spatial = &prepared.loaded;
    let Some(state) = snapshot.manifest().tracks.get(&request.field) else {
        return Ok(QueryResult {
            hits: Vec::new(),
            stats,
        });
    };

    // 2–3. Probe and scan the probed cells' entries, widening the probe
    // while the cells hold fewer than k records.
    let track = Track::new(snapshot.store().clone());
    let mut nprobe = request.nprobe;
    let (probed, entries) = loop {
        let probed = spatial.index.probe(&request.vector, nprobe)?;
        let entries = probed_entries(snapshot, &track, &state.root, &probed).await?;
        let held: u64 = entries.iter().map(|(_, v)| u64::from(v.count())).sum();
        let exhausted = probed.len() < nprobe || nprobe >= MAX_WIDENED_NPROBE;
        if held >= request.k as u64 || exhausted {
            break (probed, entries);
        }
        nprobe = nprobe.saturating_mul(2).min(MAX_WIDENED_NPROBE);
    };
    stats.cells_probed = probed.len();

    // 4. Fetch every run, verified by its run hash. When the rerank pool
    // is at least as large as the number of runs, nearly every run will
    // hold a candidate: its raw rows are read in the same round trip
    // (into the session cache, verified), not after the estimates.
    let pool = request.k.saturating_mul(request.refine_factor);
    let speculate = spatial.compressor.is_some()
        && request.refine_factor > 0
        && entries.len() <= pool
        && entries
            .iter()
            .all(|(_, v)| compat::raw_rows_of(v).is_some());
    let raw_prefetch: Vec<compat::RawRows> = if speculate {
        stats.raw_prefetched = entries.len();
        entries
            .iter()
            .filter_map(|(_, v)| compat::raw_rows_of(v))
            .collect()
    } else {
        Vec::new()
    };
    let prefetch_raw = futures::stream::iter(raw_prefetch)
        .map(|raw| async move {
            if let Some(end) = raw.offset.checked_add(raw.len) {
                // Errors surface when the rerank reads the rows itself.
                let _ignored = snapshot
                    .store()
                    .get_range(
                        &raw.storage,
                        dreamdb_connector::ByteRange::new(raw.offset, end),
                        Some(raw.hash),
                    )
                    .await;
            }
        })
        .buffer_unordered(QUERY_FETCH_CONCURRENCY)
        .collect::<Vec<()>>();
    let fetch_runs = futures::stream::iter(entries)
        .map(|(cell, value)| {
            let counter = &counter;
            async move {
                let TrackValue::CellRun {
                    segment,
                    offset,
                    len,
                    run_hash,
                    ..
                } = value
                else {
                    return Err(DatasetError::Integrity(format!(
                        "cell {cell} of field {:?}: an anchor run under a cell key",
                        request.field
                    )));
                };
                let bytes = read_range_cached(
                    snapshot,
                    counter,
                    &segment,
                    offset,
                    offset + len,
                    Some(run_hash),
                )
                .await?;
                Ok(RunData { cell, value, bytes })
            }
        })
        .buffered(QUERY_FETCH_CONCURRENCY)
        .try_collect::<Vec<RunData>>();
    let (runs, _) = futures::future::join(fetch_runs, prefetch_raw).await;
    let runs = runs?;
    stats.runs_read = runs.len();

    // 5. Score.
    let q = prepare(metric, &request.vector, 0)?;
    let layout = match &spatial.compressor {
        Some(rq) => RecordLayout {
            factors: FACTORS as u32,
            record_size: (8 + 4 * FACTORS + 8 * rq.words_per_vector()) as u32,
        },
        None => RecordLayout {
            factors: 0,
            record_size: (8 + 4 * dim) as u32,
        },
    };
    let filtered = request.filter.as_ref().is_some_and(|f| !f.is_empty());
    let keep = if spatial.compressor.is_some() && request.refine_factor > 0 {
        request.k.saturating_mul(request.refine_factor)
    } else {
        request.k
    };
    // Without a filter only the best `keep` can matter: a bounded set.
    // With one, every candidate is kept for the filter to walk in order.
    let mut top: BoundedTop<(u32, u32, f32)> = BoundedTop::new(keep);
    let mut cands: Vec<Cand> = Vec::new();
    let mut candidates = 0usize;
    let mut row_buf: Vec<f32> = Vec::with_capacity(dim);
    let mut rotated_query: Vec<f32> = Vec::new();
    let mut residual: Vec<f32> = Vec::new();
    let mut quantised = QuantisedQuery::new();
    let mut quantised_cell: Option<u32> = None;
    if let Some(rq) = &spatial.compressor {
        rq.rotate_into(&q, &mut rotated_query);
    }
    let no_tombstones = tombstones.is_empty();
    let mut scratch: Vec<u64> = Vec::new();
    let mut distances: Vec<f32> = Vec::new();
    for (ri, run) in runs.iter().enumerate() {
        let Some(rq) = &spatial.compressor else {
            let records = layout.decode_run(&run.bytes)?;
            check_run_count(run, records.len())?;
            for (row, rec) in records.iter().enumerate() {
                let anchor = rec.anchor().as_nanos();
                if tombstones.contains(anchor) {
                    stats.tombstoned += 1;
                    continue;
                }
                row_buf.clear();
                le_f32s(rec.code(), &mut row_buf);
                let v = prepare(metric, &row_buf, row)?;
                let distance = metric.prepared_distance(&q, &v);
                candidates += 1;
                if filtered {
                    cands.push(Cand {
                        run: ri as u32,
                        row: row as u32,
                        anchor,
                        est: Estimate {
                            distance,
                            bound: 0.0,
                        },
                    });
                } else if top.admits(distance) {
                    top.push(distance, anchor, (ri as u32, row as u32, 0.0));
                }
            }
            continue;
        };
        // The codes are estimated in place in the run's bytes (verified by
        // the run hash): no per-query decoding or copying of the run.
        let records = strided_run(&layout, &run.bytes)?;
        check_run_count(run, records.len())?;
        if quantised_cell != Some(run.cell) {
            quantise_for_cell(
                &prepared,
                rq,
                &q,
                &rotated_query,
                run.cell,
                &mut residual,
                &mut quantised,
            )?;
            quantised_cell = Some(run.cell);
        }
        let quantised = &quantised;
        let anchor_of = |i: usize| record_anchor(&run.bytes, layout.record_size as usize, i);
        let dead = if no_tombstones {
            0
        } else {
            (0..records.len())
                .filter(|&i| tombstones.contains(anchor_of(i)))
                .count()
        };
        stats.tombstoned += dead;
        candidates += records.len() - dead;
        let live = |anchor: u64| no_tombstones || !tombstones.contains(anchor);
        rq.fast_distances_records(quantised, records, &mut scratch, &mut distances);
        for (i, &distance) in distances.iter().enumerate() {
            if !filtered && !top.admits(distance) {
                continue;
            }
            let anchor = anchor_of(i);
            if !live(anchor) {
                continue;
            }
            let bound = rq.fast_bound(quantised, &records.factors(i), request.epsilon0);
            if filtered {
                cands.push(Cand {
                    run: ri as u32,
                    row: i as u32,
                    anchor,
                    est: Estimate { distance, bound },
                });
            } else {
                top.push(distance, anchor, (ri as u32, i as u32, bound));
            }
        }
    }
    if !filtered {
        let mut kept: Vec<Ranked<(u32, u32, f32)>> = Vec::with_capacity(top.len());
        top.drain_sorted(&mut kept);
        cands.extend(kept.iter().map(|r| Cand {
            run: r.payload.0,
            row: r.payload.1,
            anchor: r.id,
            est: Estimate {
                distance: r.distance,
                bound: r.payload.2,
            },
        }));
    }
    stats.candidates = candidates;

    let filter_eval = match &request.filter {
        Some(f) if !f.is_empty() => Some(FilterEval::new(snapshot, f, &counter).await?),
        _ => None,
    };
    let k = request.k;
    let raws: Vec<Option<compat::RawRows>> =
        runs.iter().map(|r| compat::raw_rows_of(&r.value)).collect();
    let rerank = spatial.compressor.is_some()
        && request.refine_factor > 0
        && !runs.is_empty()
        && raws.iter().all(Option::is_some);

    let top: Vec<(f32, u64)> = if !rerank {
        best_passing(cands, k, filter_eval.as_ref(), &mut stats)
            .await?
            .into_iter()
            .map(|c| (c.est.distance, c.anchor))
            .collect()
    } else {
        let r = k.saturating_mul(request.refine_factor);
        let mut pool = best_passing(cands, r, filter_eval.as_ref(), &mut stats).await?;
        pool.sort_by(|a, b| {
            a.est
                .lower()
                .total_cmp(&b.est.lower())
                .then(a.anchor.cmp(&b.anchor))
        });
        // One ranged read per run holding a candidate: the run's whole raw
        // rows, verified against the run hash its track entry records (a
        // span of them could not be checked) and cached by the session, so
        // a warm query reranks from memory.
        let held: BTreeSet<u32> = pool.iter().map(|c| c.run).collect();
        stats.raw_reads = held.len();
        let row_bytes = 4 * dim;
        let fetched: Vec<(u32, (u32, Bytes))> = futures::stream::iter(held)
            .map(|ri| {
                let counter = &counter;
                let raw = raws.get(ri as usize).copied().flatten();
                let count = runs.get(ri as usize).map_or(0, |r| r.value.count());
                async move {
                    let raw =
                        raw.ok_or_else(|| DatasetError::Integrity("raw rows vanished".into()))?;
                    if raw.len != u64::from(count) * row_bytes as u64 {
                        return Err(DatasetError::Integrity(format!(
                            "raw rows of {}: {} bytes for {count} rows of dim {dim}",
                            raw.storage, raw.len
                        )));
                    }
                    let end = raw.offset.checked_add(raw.len).ok_or_else(|| {
                        DatasetError::Integrity(format!(
                            "raw rows of {}: offset {} + length {} overflows",
                            raw.storage, raw.offset, raw.len
                        ))
                    })?;
                    let bytes = read_range_cached(
                        snapshot,
                        counter,
                        &raw.storage,
                        raw.offset,
                        end,
                        Some(raw.hash),
                    )
                    .await?;
                    Ok::<_, DatasetError>((ri, (0, bytes)))
                }
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        let raw_of: HashMap<u32, (u32, Bytes)> = fetched.into_iter().collect();
        let mut best: Vec<(f32, u64)> = Vec::with_capacity(k + 1);
        let row_of = |c: &Cand| -> Result<&[u8], DatasetError> {
            raw_of
                .get(&c.run)
                .and_then(|(first, b)| {
                    let at = c.row.checked_sub(*first)? as usize;
                    b.get(at * row_bytes..(at + 1) * row_bytes)
                })
                .ok_or_else(|| DatasetError::Integrity("raw row out of range".into()))
        };
        // Exact distances REF_LANES candidates at a time (the reference
        // folds interleaved, bit for bit); rows past the stop go unused.
        let mut block = [0.0f32; REF_LANES];
        let mut block_ok = false;
        // One buffer per lane, reused for every block (no allocation per
        // candidate).
        let mut prepared_rows: Vec<Vec<f32>> =
            (0..REF_LANES).map(|_| Vec::with_capacity(dim)).collect();
        for (at, c) in pool.iter().enumerate() {
            if best.len() == k && best.last().is_some_and(|w| c.est.lower() > w.0) {
                break;
            }
            if at % REF_LANES == 0 {
                // Lanes holding the current block's rows.
                let mut ready = 0usize;
                block_ok = true;
                for j in 0..REF_LANES {
                    let Some(other) = pool.get(at + j) else { break };
                    let Some(slot) = prepared_rows.get_mut(j) else {
                        break;
                    };
                    let prepared = row_of(other).and_then(|bytes| {
                        row_buf.clear();
                        le_f32s(bytes, &mut row_buf);
                        Ok(prepare_into(metric, &row_buf, other.row as usize, slot)?)
                    });
                    match prepared {
                        Ok(()) => ready += 1,
                        Err(_) => {
                            // Reported when (if) that candidate is used.
                            block_ok = false;
                            break;
                        }
                    }
                }
                if block_ok {
                    let last = ready.saturating_sub(1);
                    let rows = std::array::from_fn(|j| {
                        prepared_rows
                            .get(if j < ready { j } else { last })
                            .map_or(&[][..], |v| v.as_slice())
                    });
                    block = prepared_distance_many(metric, &q, rows);
                }
            }
            let d = if block_ok {
                block[at % REF_LANES]
            } else {
                let bytes = row_of(c)?;
                row_buf.clear();
                le_f32s(bytes, &mut row_buf);
                let v = prepare(metric, &row_buf, c.row as usize)?;
                metric.prepared_distance(&q, &v)
            };
            stats.reranked += 1;
            let item = (d, c.anchor);
            let pos = best.partition_point(|x| {
                x.0.total_cmp(&item.0).then(x.1.cmp(&item.1)) == Ordering::Less
            });
            if pos < k {
                best.insert(pos, item);
                best.truncate(k);
            }
        }
        best
    };

    // 8. The hits' fields.
    let anchors: Vec<u64> = top.iter().map(|(_, a)| *a).collect();
    let mut columns = Vec::new();
    for (name, kind) in resolve_fields(snapshot, Some(&request.fields))? {
        if anchors.is_empty() {
            break;
        }
        let reader = FieldReader::new(snapshot, &name, kind, counter.clone());
        let locator = AnchorLocator::new(anchor_runs(snapshot, &name, None).await?);
        let (column, _) = fetch_by_anchors(&reader, &locator, &anchors, true).await?;
        if let Some(c) = column {
            columns.push((name, c));
        }
    }
    let hits = top
        .iter()
        .enumerate()
        .map(|(i, (distance, anchor))| Hit {
            anchor: *anchor,
            distance: *distance,
            fields: columns
                .iter()
                .map(|(n, c)| (n.clone(), c.value(i)))
                .collect(),
        })
        .collect();
    stats.bytes_read = counter.bytes();
    Ok(QueryResult { hits, stats })
}
