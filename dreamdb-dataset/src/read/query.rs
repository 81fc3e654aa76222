//! `query`: top-k by vector through the storage path.
//!
//! The same computation as the in-memory pipeline
//! (`dreamdb_protocol::spatial::search`), fed from stored runs:
//!
//! 1. load the field's spatial index and compressor (cached objects);
//! 2. probe the `nprobe` nearest cells;
//! 3. scan the track's cell-order entries of those cells (index pages);
//! 4. fetch every run's byte range concurrently (at most
//!    [`FETCH_CONCURRENCY`] in flight), each verified by its run hash;
//! 5. compressed fields: estimate every record's distance from its RaBitQ
//!    code; keep the best `k × refine_factor` by estimate, sort them by
//!    lower bound, and rerank exactly from the raw rows (one ranged read of
//!    the raw rows of each run holding one of them), stopping at the first
//!    candidate whose lower bound exceeds the k-th exact distance. With
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
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use dreamdb_protocol::objects::RecordLayout;
use dreamdb_protocol::spatial::metric::{prepare, Metric as SpatialMetric};
use dreamdb_protocol::spatial::rabitq::{Estimate, DEFAULT_EPSILON0, FACTORS};
use dreamdb_protocol::track::{KeyRange, Track, TrackValue};
use futures::{StreamExt, TryStreamExt};

use super::fetch::{
    anchor_runs, fetch_by_anchors, le_f32s, read_range, AnchorLocator, FieldReader, ReadCounter,
    FETCH_CONCURRENCY,
};
use super::filter::Filter;
use super::{field_kind, resolve_fields, FieldKind, Tombstones, Value};
use crate::write::compat;
use crate::write::layout::{residual_centroid, spatial_metric};
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
    /// Raw-row ranges fetched for reranking (one ranged GET each).
    pub raw_reads: usize,
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

/// Top-k by vector (see the module docs for the steps and their cost).
pub async fn query(
    snapshot: &Snapshot,
    request: &QueryRequest,
) -> Result<QueryResult, DatasetError> {
    let (dim, metric) = validate(snapshot, request)?;
    let kind = field_kind(snapshot, &request.field)?;
    let counter = Arc::new(ReadCounter::default());
    let reader = FieldReader::new(snapshot, &request.field, kind, counter.clone());
    let mut stats = QueryStats::default();
    let Some(spatial) = reader.spatial().await? else {
        return Ok(QueryResult {
            hits: Vec::new(),
            stats,
        });
    };
    let tombstones = Tombstones::load(snapshot).await?;
    let Some(state) = snapshot.manifest().tracks.get(&request.field) else {
        return Ok(QueryResult {
            hits: Vec::new(),
            stats,
        });
    };

    // 2–3. Probe and scan the probed cells' entries.
    let probed = spatial.index.probe(&request.vector, request.nprobe)?;
    stats.cells_probed = probed.len();
    let track = Track::new(snapshot.store().clone());
    let entries: Vec<Vec<(u32, TrackValue)>> = futures::stream::iter(probed.iter().copied())
        .map(|cell| {
            let track = &track;
            async move {
                let found = track.scan_all(&state.root, KeyRange::cell(cell)).await?;
                Ok::<_, DatasetError>(found.into_iter().map(|(_, v)| (cell, v)).collect())
            }
        })
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;

    // 4. Fetch every run, verified by its run hash.
    let runs: Vec<RunData> = futures::stream::iter(entries.into_iter().flatten())
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
                let bytes = read_range(
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
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
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
    let mut cands: Vec<Cand> = Vec::new();
    let mut words: Vec<u64> = Vec::new();
    let mut row_buf: Vec<f32> = Vec::with_capacity(dim);
    for (ri, run) in runs.iter().enumerate() {
        let records = layout.decode_run(&run.bytes)?;
        if records.len() != run.value.count() as usize {
            return Err(DatasetError::Integrity(format!(
                "cell run of {}: {} records, the track says {}",
                run.value.segment(),
                records.len(),
                run.value.count()
            )));
        }
        let lut = match &spatial.compressor {
            Some(rq) => Some(rq.prepare_query(
                &request.vector,
                residual_centroid(&spatial.index, run.cell)?,
            )?),
            None => None,
        };
        for (row, rec) in records.iter().enumerate() {
            let anchor = rec.anchor().as_nanos();
            if tombstones.contains(anchor) {
                stats.tombstoned += 1;
                continue;
            }
            let est = match (&spatial.compressor, &lut) {
                (Some(rq), Some(lut)) => {
                    words.clear();
                    words.extend(rec.code().chunks_exact(8).map(|c| {
                        let mut w = [0u8; 8];
                        w.copy_from_slice(c);
                        u64::from_le_bytes(w)
                    }));
                    let factors = [rec.factor(0), rec.factor(1), rec.factor(2)];
                    rq.estimate(lut, &words, &factors, request.epsilon0)?
                }
                _ => {
                    row_buf.clear();
                    le_f32s(rec.code(), &mut row_buf);
                    let v = prepare(metric, &row_buf, row)?;
                    Estimate {
                        distance: metric.prepared_distance(&q, &v),
                        bound: 0.0,
                    }
                }
            };
            cands.push(Cand {
                run: ri as u32,
                row: row as u32,
                anchor,
                est,
            });
        }
    }
    stats.candidates = cands.len();

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
        // One ranged read of the raw rows of each run holding a candidate.
        let mut needed: Vec<u32> = pool.iter().map(|c| c.run).collect();
        needed.sort_unstable();
        needed.dedup();
        stats.raw_reads = needed.len();
        let row_bytes = 4 * dim;
        let fetched: Vec<(u32, Bytes)> = futures::stream::iter(needed)
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
                    let bytes = read_range(
                        snapshot,
                        counter,
                        &raw.storage,
                        raw.offset,
                        raw.offset + raw.len,
                        None,
                    )
                    .await?;
                    Ok::<_, DatasetError>((ri, bytes))
                }
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        let raw_of: HashMap<u32, Bytes> = fetched.into_iter().collect();
        let mut best: Vec<(f32, u64)> = Vec::with_capacity(k + 1);
        for c in &pool {
            if best.len() == k && best.last().is_some_and(|w| c.est.lower() > w.0) {
                break;
            }
            let bytes = raw_of
                .get(&c.run)
                .and_then(|b| b.get(c.row as usize * row_bytes..(c.row as usize + 1) * row_bytes))
                .ok_or_else(|| DatasetError::Integrity("raw row out of range".into()))?;
            row_buf.clear();
            le_f32s(bytes, &mut row_buf);
            let v = prepare(metric, &row_buf, c.row as usize)?;
            let d = metric.prepared_distance(&q, &v);
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
