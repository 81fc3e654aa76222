//! Commit cost as a dataset grows: bytes and objects written by a
//! 1-record and a 1,000-record append at 10K, 30K, 100K (quick stops
//! here), 300K and 1M records, with the time of each commit and the
//! embedding track's B-tree height and entry count.
//!
//! The dataset (one 128-d L2 embedding, IVF 316 cells, RaBitQ 1-bit, raw
//! rows) lives in a local directory behind a [`Probe`]. It grows the way
//! a stream of writers grows it, so its track has many entries: 1,000-row
//! appends up to 100K records, 10,000-row appends beyond (each append adds
//! one anchor-order entry and one cell-order entry per touched cell).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use dreamdb_connector::Connector;
use dreamdb_dataset::batch::Batch;
use dreamdb_dataset::dataset::CreateOptions;
use dreamdb_dataset::schema::{EmbeddingField, Metric, SchemaBuilder};
use dreamdb_dataset::write::AppendOptions;
use dreamdb_dataset::Dataset;
use serde_json::{json, Value};

use super::ingest::{FIELD, NAME};
use super::SuiteError;
use crate::data::{gaussian_with, GaussianSpec};
use crate::probe::Probe;
use crate::sets::Mode;

const DIM: usize = 128;
const CELLS: u32 = 316;
/// Segments a 1-field embedding append writes (spatial bucket + raw rows).
pub const SEGMENTS: u64 = 2;

fn rows(n: usize, seed: u64) -> Vec<f32> {
    gaussian_with(GaussianSpec::BENCH, n, DIM, seed).data
}

/// The commit-cost rows (see the module docs).
pub async fn commit_cost(mode: Mode, dir: &Path) -> Result<Vec<Value>, SuiteError> {
    let checkpoints: &[usize] = if mode == Mode::Quick {
        &[10_000, 30_000, 100_000]
    } else {
        &[10_000, 30_000, 100_000, 300_000, 1_000_000]
    };
    let url = dir.to_string_lossy().into_owned();
    std::fs::create_dir_all(dir).map_err(|e| SuiteError::io(format!("create {url}"), e))?;
    let probe = Arc::new(Probe::new(dreamdb_connector_http::connect(&url).await?));
    let connector: Arc<dyn Connector> = probe.clone();
    let schema = SchemaBuilder::new()
        .embedding(
            FIELD,
            EmbeddingField::new(DIM as u32)
                .metric(Metric::L2)
                .ivf(CELLS)
                .rabitq(1)
                .rerank(true),
        )
        .build()?;
    let ds = Dataset::create_on(connector, &url, NAME, schema, CreateOptions::default()).await?;
    let mut training = BTreeMap::new();
    training.insert(FIELD.to_owned(), rows(32_000, 1));
    let first = AppendOptions {
        training,
        seed: 7,
        ..AppendOptions::default()
    };
    let mut records = 0usize;
    let mut seed = 100u64;
    let mut options = Some(first);
    let mut out = Vec::new();
    let started = Instant::now();
    for &target in checkpoints {
        while records < target {
            let step = if records < 100_000 { 1_000 } else { 10_000 };
            let n = step.min(target - records);
            seed += 1;
            let batch = Batch::new(n).embeddings(FIELD, DIM as u32, rows(n, seed));
            ds.append_many_with(batch, options.take().unwrap_or_default())
                .await?;
            records += n;
        }
        eprintln!(
            "suite: commit cost: grew to {records} records ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
        for append in [1usize, 1_000] {
            let snapshot = ds.read_version().await?;
            let track =
                snapshot.manifest().tracks.get(FIELD).ok_or_else(|| {
                    SuiteError::Invalid(format!("the manifest has no track {FIELD}"))
                })?;
            let (height, entries) = (track.root.height(), track.root.count());
            seed += 1;
            let batch = Batch::new(append).embeddings(FIELD, DIM as u32, rows(append, seed));
            probe.reset();
            let t = Instant::now();
            ds.append_many(batch).await?;
            let seconds = t.elapsed().as_secs_f64();
            let c = probe.counts();
            records += append;
            let row = json!({
                "records": records - append, "append_rows": append,
                "bytes": c.bytes_written, "objects": c.puts,
                "segments": SEGMENTS, "metadata_objects": c.puts.saturating_sub(SEGMENTS),
                "segment_bytes": c.put_sizes.iter().take(SEGMENTS as usize).sum::<u64>(),
                "round_trips": c.round_trips, "seconds": seconds,
                "btree_height": height, "track_entries": entries,
            });
            eprintln!("suite: commit cost: {row}");
            out.push(row);
        }
    }
    Ok(out)
}
