//! Iteration: Arrow batches over a whole dataset (batches/s, rows/s and
//! payload MB/s, payload = anchors + f32 vectors), and the peak RSS of a
//! fresh process that does only that — measured in a child process
//! (`suite rss DIR`) because this process holds the sets in memory.
//! [`rss_1m`] does the same on 1,000,000 × 128 rows written as a pipeline
//! writes them (10 appends of 100,000), the memory target's case.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use dreamdb_dataset::dataset::OpenOptions;
use dreamdb_dataset::read::ArrowOptions;
use dreamdb_dataset::Dataset;
use futures::StreamExt;
use serde_json::{json, Value};

use super::ingest::NAME;
use super::{peak_rss_mib, SuiteError};
use crate::sets::BenchSet;

/// Rows per Arrow batch (the SDK's default).
pub const BATCH: usize = 1024;

/// Least time spent in timed passes (the peer driver uses the same).
const TIMED_SECONDS: f64 = 1.0;

/// Iterates every record of `ds` as Arrow batches: (batches, rows,
/// payload bytes, seconds).
pub async fn drain(ds: &Dataset) -> Result<(u64, u64, u64, f64), SuiteError> {
    let t = Instant::now();
    let mut stream = ds
        .iter_arrow_batches(ArrowOptions {
            batch_size: BATCH,
            ..ArrowOptions::default()
        })
        .await?;
    let (mut batches, mut rows, mut bytes) = (0u64, 0u64, 0u64);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        batches += 1;
        rows += batch.num_rows() as u64;
        bytes += batch
            .columns()
            .iter()
            .map(|c| {
                c.to_data()
                    .buffers()
                    .iter()
                    .map(|b| b.len() as u64)
                    .sum::<u64>()
            })
            .sum::<u64>();
        bytes += batch
            .columns()
            .iter()
            .flat_map(|c| c.to_data().child_data().to_vec())
            .map(|d| d.buffers().iter().map(|b| b.len() as u64).sum::<u64>())
            .sum::<u64>();
    }
    Ok((batches, rows, bytes, t.elapsed().as_secs_f64()))
}

/// The in-process Arrow iteration row of `set`.
pub async fn arrow(set: &BenchSet, ds: &Dataset) -> Result<Value, SuiteError> {
    // Once to warm the page cache (LanceDB is measured warm too), then
    // timed passes until TIMED_SECONDS have gone by (a small set's single
    // pass takes milliseconds: one pass alone is mostly noise).
    drain(ds).await?;
    let (mut batches, mut rows, mut bytes, mut seconds) = (0u64, 0u64, 0u64, 0f64);
    let mut passes = 0u64;
    while passes == 0 || seconds < TIMED_SECONDS {
        let (b, r, n, s) = drain(ds).await?;
        if r != set.base.rows as u64 {
            return Err(SuiteError::Invalid(format!(
                "{}: iterated {r} rows of {}",
                set.name, set.base.rows
            )));
        }
        (batches, rows, bytes, seconds) = (batches + b, rows + r, bytes + n, seconds + s);
        passes += 1;
    }
    if rows != passes * set.base.rows as u64 {
        return Err(SuiteError::Invalid(format!(
            "{}: iterated {rows} rows of {}",
            set.name, set.base.rows
        )));
    }
    eprintln!(
        "suite: {} arrow: {:.0} MB/s, {:.0} batches/s",
        set.name,
        bytes as f64 / 1e6 / seconds,
        batches as f64 / seconds
    );
    Ok(json!({
        "set": set.name, "kind": "arrow", "rows": rows, "batches": batches, "batch_size": BATCH,
        "passes": passes,
        "seconds": seconds, "rows_per_s": rows as f64 / seconds,
        "batches_per_s": batches as f64 / seconds, "mb_per_s": bytes as f64 / 1e6 / seconds,
        "payload_bytes": bytes,
    }))
}

/// Child side of the RSS measure: opens the dataset at `url`, iterates it
/// once and returns the row (peak RSS of the whole process).
pub async fn rss_child(url: &str) -> Result<Value, SuiteError> {
    let before = peak_rss_mib();
    let ds = Dataset::open(url, NAME, OpenOptions::default()).await?;
    let (batches, rows, bytes, seconds) = drain(&ds).await?;
    let cache = ds.store_stats().cache;
    Ok(json!({
        "kind": "rss", "rows": rows, "batches": batches, "seconds": seconds,
        "cache_peak_bytes": cache.peak_bytes, "cache_capacity_bytes": cache.capacity_bytes,
        "mb_per_s": bytes as f64 / 1e6 / seconds,
        "rss_before_mib": before, "peak_rss_mib": peak_rss_mib(),
        "cache_bytes_bound": dreamdb_dataset::dataset::DEFAULT_CACHE_BYTES,
    }))
}

/// Runs `suite rss DIR` (this executable) and returns its row.
pub fn rss_subprocess(dir: &Path, set: &str, rows: usize) -> Result<Value, SuiteError> {
    // /proc/self/exe still runs this binary when a rebuild has replaced
    // the file on disk (current_exe would then name a deleted path).
    let proc_exe = Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe().map_err(|e| SuiteError::io("current_exe", e))?
    };
    let out = Command::new(exe)
        .arg("rss")
        .arg(dir)
        .output()
        .map_err(|e| SuiteError::io("suite rss", e))?;
    if !out.status.success() {
        return Err(SuiteError::Invalid(format!(
            "suite rss failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let mut row: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| SuiteError::Invalid(format!("suite rss printed no JSON: {e}")))?;
    row["set"] = json!(set);
    if row["rows"] != json!(rows) {
        return Err(SuiteError::Invalid(format!(
            "suite rss iterated {} rows of {rows}",
            row["rows"]
        )));
    }
    eprintln!(
        "suite: {set} iteration peak RSS {} MiB",
        row["peak_rss_mib"]
    );
    Ok(row)
}

/// Builds a 1,000,000 × 128 dataset in `dir` from 10 appends of 100,000
/// synthetic rows (IVF 1,000 cells, RaBitQ 1-bit, raw rows) and measures
/// the peak RSS of a child process iterating it.
pub async fn rss_1m(dir: &Path) -> Result<Value, SuiteError> {
    use dreamdb_dataset::batch::Batch;
    use dreamdb_dataset::dataset::CreateOptions;
    use dreamdb_dataset::schema::{EmbeddingField, Metric, SchemaBuilder};
    use dreamdb_dataset::write::AppendOptions;

    use crate::data::{gaussian_with, GaussianSpec};

    const CHUNK: usize = 100_000;
    const DIM: usize = 128;
    let url = dir.to_string_lossy().into_owned();
    let schema = SchemaBuilder::new()
        .embedding(
            super::ingest::FIELD,
            EmbeddingField::new(DIM as u32)
                .metric(Metric::L2)
                .ivf(1000)
                .rabitq(1)
                .rerank(true),
        )
        .build()?;
    let t = Instant::now();
    let ds = Dataset::create(&url, NAME, schema, CreateOptions::default()).await?;
    for i in 0..10u64 {
        let rows = gaussian_with(GaussianSpec::BENCH, CHUNK, DIM, 5000 + i).data;
        let options = AppendOptions {
            seed: 7,
            ..AppendOptions::default()
        };
        let batch = Batch::new(CHUNK).embeddings(super::ingest::FIELD, DIM as u32, rows);
        ds.append_many_with(batch, options).await?;
    }
    let ingest_s = t.elapsed().as_secs_f64();
    drop(ds);
    let mut row = rss_subprocess(dir, "synthetic-1m (10 appends)", 10 * CHUNK)?;
    row["ingest_s"] = json!(ingest_s);
    Ok(row)
}
