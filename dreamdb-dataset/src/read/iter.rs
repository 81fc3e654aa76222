//! `iter_stream` / `iter`: every live record, in bounded memory.
//!
//! **Plan.** The anchor-order entries of each requested field are scanned
//! (index pages only; with a time range, only entries whose first anchor is
//! before the range's end) and grouped into *units*: maximal sets of runs,
//! across the requested fields, whose anchor intervals overlap. One append
//! normally gives one unit (one run per field, same anchors); runs whose
//! intervals overlap (user-given anchors, rewritten buckets) fall into one
//! unit, so a merge-join inside a unit sees every value of its anchors.
//!
//! **Window.** Units are loaded in order through a window of
//! `prefetch_runs` units: at most that many are being fetched or waiting
//! to be consumed at once, and a new one starts only when the consumer
//! pulls (backpressure). Loading a unit reads each run's anchor table and
//! the requested field's values of the anchors in range
//! (`fetch::FieldReader::values`); fields not requested are never read.
//! The unit's runs are merge-joined by anchor (a record missing in a field
//! gets no value there), tombstoned anchors are dropped, and rows are cut
//! into batches of `batch_size`. Memory is therefore bounded by
//! `prefetch_runs` units plus one batch; a unit is one append's segments in
//! the common case. A record that exists only in fields not requested is
//! not yielded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use dreamdb_core::random::DeterministicStream;
use dreamdb_core::time::TimeRange;
use futures::stream::{BoxStream, Stream};
use futures::{StreamExt, TryStreamExt};

use super::column::{ReadBatch, ReadColumn};
use super::fetch::{anchor_runs, FieldReader, ReadCounter, RunRef};
use super::{resolve_fields, FieldKind, Record, Tombstones};
use crate::{DatasetError, Snapshot};

/// The domain of the shuffle's random stream.
pub(crate) const SHUFFLE_DOMAIN: &str = "dreamdb.iter.shuffle";

/// Options of [`iter_stream`].
#[derive(Debug, Clone, PartialEq)]
pub struct IterOptions {
    /// Fields to read (`None`: every readable field; `Some(vec![])`:
    /// anchors only, read from every field's anchor tables).
    pub fields: Option<Vec<String>>,
    /// Only anchors in this half-open range.
    pub range: Option<TimeRange>,
    /// Records per batch (≥ 1; the last batch may be shorter).
    pub batch_size: usize,
    /// Units (anchor intervals: one run per field in the common case)
    /// fetched ahead of the consumer (≥ 1).
    pub prefetch_runs: usize,
}

impl Default for IterOptions {
    fn default() -> Self {
        IterOptions {
            fields: None,
            range: None,
            batch_size: 1024,
            prefetch_runs: 4,
        }
    }
}

impl IterOptions {
    /// Only these fields.
    pub fn fields(mut self, fields: &[&str]) -> Self {
        self.fields = Some(fields.iter().map(|f| (*f).to_owned()).collect());
        self
    }

    /// Only anchors in `range`.
    pub fn range(mut self, range: TimeRange) -> Self {
        self.range = Some(range);
        self
    }

    /// Records per batch.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Units fetched ahead.
    pub fn prefetch_runs(mut self, prefetch_runs: usize) -> Self {
        self.prefetch_runs = prefetch_runs;
        self
    }
}

#[derive(Debug, Default)]
struct MonitorInner {
    planned: AtomicUsize,
    started: AtomicUsize,
    consumed: AtomicUsize,
    held: AtomicUsize,
    max_held: AtomicUsize,
    runs_held: AtomicUsize,
    max_runs_held: AtomicUsize,
    bytes: Arc<ReadCounter>,
}

/// Live counters of one iteration (for tests and progress reporting).
#[derive(Debug, Clone, Default)]
pub struct IterMonitor(Arc<MonitorInner>);

impl IterMonitor {
    /// Units the plan holds (known once the first batch is pulled).
    pub fn units_planned(&self) -> usize {
        self.0.planned.load(Ordering::SeqCst)
    }

    /// Units whose loading has started.
    pub fn units_started(&self) -> usize {
        self.0.started.load(Ordering::SeqCst)
    }

    /// Units handed to the consumer's batches.
    pub fn units_consumed(&self) -> usize {
        self.0.consumed.load(Ordering::SeqCst)
    }

    /// Most units held (loading or loaded, not yet consumed) at once.
    pub fn max_units_held(&self) -> usize {
        self.0.max_held.load(Ordering::SeqCst)
    }

    /// Most anchor runs (segments) held at once.
    pub fn max_runs_held(&self) -> usize {
        self.0.max_runs_held.load(Ordering::SeqCst)
    }

    /// Bytes of segment data requested so far.
    pub fn bytes_read(&self) -> u64 {
        self.0.bytes.bytes()
    }
}

/// Decrements the held counters when a loaded unit is consumed.
#[derive(Debug)]
struct HeldGuard {
    monitor: IterMonitor,
    runs: usize,
}

impl HeldGuard {
    fn new(monitor: &IterMonitor, runs: usize) -> HeldGuard {
        let m = &monitor.0;
        m.started.fetch_add(1, Ordering::SeqCst);
        let held = m.held.fetch_add(1, Ordering::SeqCst) + 1;
        m.max_held.fetch_max(held, Ordering::SeqCst);
        let r = m.runs_held.fetch_add(runs, Ordering::SeqCst) + runs;
        m.max_runs_held.fetch_max(r, Ordering::SeqCst);
        HeldGuard {
            monitor: monitor.clone(),
            runs,
        }
    }
}

impl Drop for HeldGuard {
    fn drop(&mut self) {
        let m = &self.monitor.0;
        m.held.fetch_sub(1, Ordering::SeqCst);
        m.runs_held.fetch_sub(self.runs, Ordering::SeqCst);
        m.consumed.fetch_add(1, Ordering::SeqCst);
    }
}

/// One unit: overlapping runs of the requested fields.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    /// (index into the probed fields, run).
    runs: Vec<(usize, RunRef)>,
}

/// How a stream orders and selects units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Order {
    /// Shuffle units, then rows within each unit, by this seed.
    pub(crate) shuffle_seed: Option<u64>,
    /// Keep units `i mod n` (after the shuffle).
    pub(crate) shard: Option<(usize, usize)>,
}

/// What one iteration reads.
#[derive(Debug)]
struct IterCtx {
    snapshot: Snapshot,
    /// The fields whose runs make the units (the requested ones, or every
    /// field when none is requested).
    probe: Vec<(String, FieldKind)>,
    /// Whether values are read (false: anchors only).
    with_values: bool,
    range: Option<TimeRange>,
    monitor: IterMonitor,
    /// Set by the plan: the raw rows to read fit the session cache with
    /// room to spare, so their verified runs are kept ([`keeps_reads`]).
    keep_reads: AtomicBool,
}

/// Whether an iteration over `raw_bytes` of raw rows keeps them in a
/// session cache of `capacity` bytes: when they take at most a quarter
/// of it, a second pass (the next epoch) reads none of them again and
/// hashes none of them again; a larger scan would only churn the cache
/// and evict what queries keep there.
pub(crate) fn keeps_reads(raw_bytes: u64, capacity: u64) -> bool {
    raw_bytes > 0 && raw_bytes.saturating_mul(4) <= capacity
}

/// Groups runs into units of overlapping anchor intervals.
fn make_units(mut runs: Vec<(usize, RunRef)>) -> Vec<Unit> {
    runs.sort_by_key(|(f, r)| (r.first, r.last, *f));
    let mut units: Vec<Unit> = Vec::new();
    let mut reach = 0u64;
    for (f, r) in runs {
        match units.last_mut() {
            Some(u) if r.first <= reach => {
                reach = reach.max(r.last);
                u.runs.push((f, r));
            }
            _ => {
                reach = r.last;
                units.push(Unit { runs: vec![(f, r)] });
            }
        }
    }
    units
}

/// The plan, its tombstones, and (when shuffling) the random stream after
/// the unit shuffle, which then shuffles rows: one seed fixes the order.
type Planned = (Vec<Unit>, Tombstones, Option<DeterministicStream>);

async fn plan(ctx: &IterCtx, order: Order) -> Result<Planned, DatasetError> {
    let tombstones = Tombstones::load(&ctx.snapshot).await?;
    let mut all = Vec::new();
    for (i, (name, _)) in ctx.probe.iter().enumerate() {
        let up_to = ctx.range.map(|r| r.end().as_nanos());
        for run in anchor_runs(&ctx.snapshot, name, up_to).await? {
            if ctx.range.is_none_or(|r| run.overlaps(&r)) {
                all.push((i, run));
            }
        }
    }
    let raw_bytes: u64 = all
        .iter()
        .map(|(i, run)| match ctx.probe.get(*i) {
            Some((
                _,
                FieldKind::Embedding {
                    dim, rerank: true, ..
                },
            )) => u64::from(run.count) * 4 * u64::from(*dim),
            _ => 0,
        })
        .sum();
    let capacity = ctx.snapshot.store().stats().cache.capacity_bytes;
    ctx.keep_reads
        .store(keeps_reads(raw_bytes, capacity), Ordering::SeqCst);
    let mut units = make_units(all);
    let mut random = order
        .shuffle_seed
        .map(|seed| DeterministicStream::from_seed(seed, SHUFFLE_DOMAIN));
    if let Some(s) = random.as_mut() {
        s.shuffle(&mut units);
    }
    if let Some((i, n)) = order.shard {
        units = units
            .into_iter()
            .enumerate()
            .filter(|(j, _)| j % n == i)
            .map(|(_, u)| u)
            .collect();
    }
    ctx.monitor.0.planned.store(units.len(), Ordering::SeqCst);
    Ok((units, tombstones, random))
}

/// Loads one unit: its runs' anchor tables and values, merge-joined.
async fn load_unit(
    ctx: Arc<IterCtx>,
    tombstones: Tombstones,
    unit: Unit,
) -> Result<(ReadBatch, HeldGuard), DatasetError> {
    let guard = HeldGuard::new(&ctx.monitor, unit.runs.len());
    let counter = ctx.monitor.0.bytes.clone();
    let mut parts: Vec<(usize, Vec<u64>, Option<ReadColumn>)> = futures::stream::iter(unit.runs)
        .map(|(f, run)| {
            let ctx = &ctx;
            let counter = counter.clone();
            let tombstones = &tombstones;
            async move {
                let reader = ctx.probe.get(f).map(|(name, kind)| {
                    FieldReader::new(&ctx.snapshot, name, *kind, counter)
                        .keeping_reads(ctx.keep_reads.load(Ordering::SeqCst))
                });
                let table = match &reader {
                    Some(r) => r.anchor_table(&run).await?,
                    None => {
                        return Err(DatasetError::Integrity(
                            "unit names an unknown field".into(),
                        ))
                    }
                };
                let mut positions = Vec::with_capacity(table.len());
                let mut anchors = Vec::with_capacity(table.len());
                for (p, a) in table.iter().enumerate() {
                    let in_range = ctx
                        .range
                        .is_none_or(|r| r.contains(dreamdb_core::time::TimeAnchor::new(*a)));
                    if in_range && !tombstones.contains(*a) {
                        positions.push(p);
                        anchors.push(*a);
                    }
                }
                // A spatial bucket keeps its records by cell: read them in
                // anchor order instead, so a unit of one run is already
                // its batch (no anchor → row merge, no second copy).
                if !anchors.is_sorted() {
                    let mut pairs: Vec<(u64, usize)> = anchors
                        .iter()
                        .copied()
                        .zip(positions.iter().copied())
                        .collect();
                    pairs.sort_unstable();
                    (anchors, positions) = pairs.into_iter().unzip();
                }
                let column = match &reader {
                    Some(r) if ctx.with_values => Some(r.values(&run, &table, &positions).await?),
                    _ => None,
                };
                Ok::<_, DatasetError>((f, anchors, column))
            }
        })
        .buffered(4)
        .try_collect()
        .await?;
    let mut anchors: Vec<u64> = parts
        .iter()
        .flat_map(|(_, a, _)| a.iter().copied())
        .collect();
    anchors.sort_unstable();
    anchors.dedup();
    let mut batch = ReadBatch {
        anchors,
        columns: Default::default(),
    };
    if ctx.with_values {
        // Anchor → row, built only if some field needs a merge-join.
        let mut index: Option<HashMap<u64, usize>> = None;
        for (f, (name, kind)) in ctx.probe.iter().enumerate() {
            // The common case: one run of this field holding exactly the
            // unit's anchors, in order. Its column is the field's column.
            let mut of_field = parts.iter_mut().filter(|p| p.0 == f);
            if let (Some(only), None) = (of_field.next(), of_field.next()) {
                if only.1 == batch.anchors {
                    if let Some(column) = only.2.take() {
                        batch.columns.insert(name.clone(), column);
                        continue;
                    }
                }
            }
            let index = index.get_or_insert_with(|| {
                batch
                    .anchors
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (*a, i))
                    .collect()
            });
            let mut sources: Vec<&ReadColumn> = Vec::new();
            let mut picks: Vec<Option<(usize, usize)>> = vec![None; batch.anchors.len()];
            for (pf, part_anchors, column) in &parts {
                let (true, Some(column)) = (*pf == f, column) else {
                    continue;
                };
                sources.push(column);
                let s = sources.len() - 1;
                for (row, a) in part_anchors.iter().enumerate() {
                    if let Some(slot) = index.get(a).and_then(|i| picks.get_mut(*i)) {
                        if slot.is_none() {
                            *slot = Some((s, row));
                        }
                    }
                }
            }
            batch
                .columns
                .insert(name.clone(), ReadColumn::gather(*kind, &sources, &picks)?);
        }
    }
    Ok((batch, guard))
}

type UnitStream = BoxStream<'static, Result<(ReadBatch, HeldGuard), DatasetError>>;

struct State {
    ctx: Arc<IterCtx>,
    order: Order,
    prefetch: usize,
    batch_size: usize,
    units: Option<UnitStream>,
    /// Fewer than `batch_size` records waiting for the next unit.
    pending: ReadBatch,
    /// Full batches cut from a loaded unit in one pass (cutting them one
    /// at a time from the front re-copied the rest each time: quadratic
    /// in the unit's size).
    ready: std::collections::VecDeque<ReadBatch>,
    shuffle: Option<DeterministicStream>,
    finished: bool,
}

impl State {
    /// Adds a loaded unit: tops up `pending` to a full batch, cuts the rest
    /// into full batches (each row copied once) and keeps the remainder.
    fn cut(&mut self, batch: ReadBatch) -> Result<(), DatasetError> {
        let size = self.batch_size;
        let need = size.saturating_sub(self.pending.len());
        let total = batch.len();
        if total < need {
            return self.pending.append(batch);
        }
        let rows = |a: usize, b: usize| (a..b).collect::<Vec<usize>>();
        let mut head = std::mem::take(&mut self.pending);
        head.append(batch.take(&rows(0, need)))?;
        self.ready.push_back(head);
        let mut start = need;
        while start + size <= total {
            self.ready.push_back(batch.take(&rows(start, start + size)));
            start += size;
        }
        if start < total {
            self.pending = batch.take(&rows(start, total));
        }
        Ok(())
    }

    async fn next(mut self) -> Result<Option<(ReadBatch, State)>, DatasetError> {
        loop {
            if let Some(batch) = self.ready.pop_front() {
                return Ok(Some((batch, self)));
            }
            if self.finished {
                if self.pending.is_empty() {
                    return Ok(None);
                }
                let batch = std::mem::take(&mut self.pending);
                return Ok(Some((batch, self)));
            }
            if self.units.is_none() {
                let (units, tombstones, random) = plan(&self.ctx, self.order).await?;
                self.shuffle = random;
                let ctx = self.ctx.clone();
                self.units = Some(
                    futures::stream::iter(units)
                        .map(move |u| load_unit(ctx.clone(), tombstones.clone(), u))
                        .buffered(self.prefetch)
                        .boxed(),
                );
            }
            let next = match self.units.as_mut() {
                Some(units) => units.try_next().await?,
                None => None,
            };
            match next {
                Some((mut batch, guard)) => {
                    if let Some(s) = self.shuffle.as_mut() {
                        let mut rows: Vec<usize> = (0..batch.len()).collect();
                        s.shuffle(&mut rows);
                        batch = batch.take(&rows);
                    }
                    if !batch.is_empty() {
                        self.cut(batch)?;
                    }
                    drop(guard);
                }
                None => self.finished = true,
            }
        }
    }
}

/// The batches of `options` in `order`, with a monitor.
pub(crate) fn batches(
    snapshot: &Snapshot,
    options: &IterOptions,
    order: Order,
) -> Result<
    (
        BoxStream<'static, Result<ReadBatch, DatasetError>>,
        IterMonitor,
    ),
    DatasetError,
> {
    if options.batch_size == 0 {
        return Err(DatasetError::invalid(
            "_iter",
            "batch_size must be at least 1",
        ));
    }
    if options.prefetch_runs == 0 {
        return Err(DatasetError::invalid(
            "_iter",
            "prefetch_runs must be at least 1",
        ));
    }
    if let Some((i, n)) = order.shard {
        if n == 0 || i >= n {
            return Err(DatasetError::invalid(
                "_iter",
                format!("shard {i} of {n}: need n ≥ 1 and i < n"),
            ));
        }
    }
    let requested = resolve_fields(snapshot, options.fields.as_deref())?;
    let with_values = !requested.is_empty();
    let probe = if with_values {
        requested
    } else {
        resolve_fields(snapshot, None)?
    };
    let monitor = IterMonitor::default();
    let ctx = Arc::new(IterCtx {
        snapshot: snapshot.clone(),
        probe,
        with_values,
        range: options.range,
        monitor: monitor.clone(),
        keep_reads: AtomicBool::new(false),
    });
    let state = State {
        ctx,
        order,
        prefetch: options.prefetch_runs,
        batch_size: options.batch_size,
        units: None,
        pending: ReadBatch::default(),
        ready: std::collections::VecDeque::new(),
        shuffle: None,
        finished: false,
    };
    let stream = futures::stream::try_unfold(state, State::next).boxed();
    Ok((stream, monitor))
}

/// Every live record of the snapshot (in `options.range`), as batches of
/// the requested fields, in anchor order, in bounded memory (see the
/// module docs). Errors in the options (unknown field, zero sizes) are
/// returned at once; read errors end the stream.
pub fn iter_stream(
    snapshot: &Snapshot,
    options: IterOptions,
) -> Result<
    impl Stream<Item = Result<ReadBatch, DatasetError>> + Send + Unpin + 'static,
    DatasetError,
> {
    Ok(batches(snapshot, &options, Order::default())?.0)
}

/// [`iter_stream`] with its live counters.
pub fn iter_stream_monitored(
    snapshot: &Snapshot,
    options: IterOptions,
) -> Result<
    (
        BoxStream<'static, Result<ReadBatch, DatasetError>>,
        IterMonitor,
    ),
    DatasetError,
> {
    batches(snapshot, &options, Order::default())
}

/// Every live record, collected (for small data).
pub async fn iter(snapshot: &Snapshot, options: IterOptions) -> Result<Vec<Record>, DatasetError> {
    let stream = iter_stream(snapshot, options)?;
    let batches: Vec<ReadBatch> = stream.try_collect().await?;
    Ok(batches.iter().flat_map(ReadBatch::records).collect())
}
