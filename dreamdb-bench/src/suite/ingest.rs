//! Indexed ingest: create a dataset and append every row in one
//! `append_many` (IVF training on a prefix sample, cell assignment, RaBitQ
//! 1-bit codes, raw rows for rerank, persist, commit), timed end to end —
//! the same work LanceDB does in `create_table` + `create_index`.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use dreamdb_dataset::batch::Batch;
use dreamdb_dataset::dataset::CreateOptions;
use dreamdb_dataset::schema::{EmbeddingField, SchemaBuilder};
use dreamdb_dataset::write::layout::stored_metric;
use dreamdb_dataset::write::AppendOptions;
use dreamdb_dataset::Dataset;
use serde_json::{json, Value};

use super::SuiteError;
use crate::sets::BenchSet;

/// The embedding field's name in every bench dataset.
pub const FIELD: &str = "emb";

/// The dataset name in every bench backend.
pub const NAME: &str = "bench";

/// Seconds since the Unix epoch (run ids).
pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The bench schema of `set`: IVF with the set's cells, RaBitQ 1-bit,
/// raw rows kept for exact rerank.
pub fn schema_of(
    set: &BenchSet,
) -> Result<dreamdb_protocol::objects::Schema, dreamdb_dataset::DatasetError> {
    SchemaBuilder::new()
        .embedding(
            FIELD,
            EmbeddingField::new(set.base.dim as u32)
                .metric(stored_metric(set.metric))
                .ivf(set.cells)
                .rabitq(1)
                .rerank(true),
        )
        .build()
}

/// Creates dataset [`NAME`] at `url` and appends every row of `set`;
/// returns the handle, the anchors in row order and the JSON row.
pub async fn ingest(
    set: &BenchSet,
    url: &str,
    target: &str,
) -> Result<(Dataset, Vec<u64>, Value), SuiteError> {
    let dim = set.base.dim;
    let batch = Batch::new(set.base.rows).embeddings(FIELD, dim as u32, set.base.data.clone());
    let mut training = BTreeMap::new();
    training.insert(
        FIELD.to_owned(),
        set.base.data[..set.train_rows * dim].to_vec(),
    );
    let options = AppendOptions {
        training,
        seed: 7,
        ..AppendOptions::default()
    };
    settle_disk();
    let t = Instant::now();
    let ds = Dataset::create(url, NAME, schema_of(set)?, CreateOptions::default()).await?;
    let appended = ds.append_many_with(batch, options).await?;
    let seconds = t.elapsed().as_secs_f64();
    let bytes = if target == "local" {
        dir_bytes(std::path::Path::new(url))
    } else {
        0
    };
    let row = json!({
        "set": set.name, "target": target, "rows": set.base.rows,
        "seconds": seconds, "rows_per_s": set.base.rows as f64 / seconds,
        "train_rows": set.train_rows, "cells": set.cells, "stored_bytes": bytes,
        "what": "create + one append_many: IVF train + assign + RaBitQ 1-bit + raw rows + commit",
    });
    eprintln!(
        "suite: {} ingest {target}: {:.0} rows/s ({seconds:.2} s)",
        set.name,
        set.base.rows as f64 / seconds
    );
    Ok((ds, appended.anchors, row))
}

/// Writes back every dirty page before a timed ingest (the peer driver
/// does the same with `os.sync()`): an ingest `fsync`s what it writes,
/// and on ext4 that can wait for whatever earlier stages left dirty, so
/// without this the figure depended on what ran before it.
pub fn settle_disk() {
    // `sync` is in every base system; if it is missing the timing is only
    // noisier, so its failure is not an error.
    let _ = std::process::Command::new("sync").status();
}

/// Bytes of the files under `dir` (0 when unreadable).
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}
