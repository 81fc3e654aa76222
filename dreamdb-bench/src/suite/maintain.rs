//! Maintenance: `ada-ivf-step` against `rebuild-ivf` after growth
//! concentrated in 1 % of the cells, and `gc` time against the number of
//! objects.
//!
//! Two identical local datasets are built: the synthetic base set (one
//! append), then growth of 10 % of its size in 5 appends, every new point
//! within a small radius of one of `cells / 100` seed rows, so it lands in
//! about 1 % of the cells. Recall@10 (nprobe ≈ 8 % of the original cells,
//! refine 10) is measured on the base queries plus 100 queries from the
//! growth region, before and after. One dataset gets one
//! `Dataset::ada_ivf_step` (split above density 3, merge below 0.2), the
//! other `Dataset::rebuild_ivf` (full retrain, same cell count): time and
//! the bytes / objects each step wrote (its `WriteCost`).
//!
//! `gc` ([`gc_row`]) keeps only the latest Manifest (grace 0), so every
//! superseded object is deleted: time, objects listed, objects deleted.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use dreamdb_connector::Connector;
use dreamdb_core::random::DeterministicStream;
use dreamdb_core::time::Ticks;
use dreamdb_dataset::batch::Batch;
use dreamdb_dataset::dataset::CreateOptions;
use dreamdb_dataset::maintain::AdaIvfStepOptions;
use dreamdb_dataset::read::QueryRequest;
use dreamdb_dataset::write::AppendOptions;
use dreamdb_dataset::Dataset;
use dreamdb_protocol::maintenance::{gc, GcOptions};
use serde_json::{json, Value};

use super::ingest::{schema_of, FIELD, NAME};
use super::query::nprobes;
use super::SuiteError;
use crate::data::{exact_knn, recall_at, Matrix};
use crate::sets::BenchSet;

/// Queries drawn from the growth region.
const HOT_QUERIES: usize = 100;

/// The growth: `(rows, queries)` near `cells / 100` seed rows of `base`.
fn skewed_growth(set: &BenchSet) -> (Matrix, Matrix) {
    let dim = set.base.dim;
    let hot = (set.cells as usize / 100).max(1);
    let seeds: Vec<usize> = (0..hot).map(|i| i * (set.base.rows / hot) + 17).collect();
    let make = |n: usize, domain: &str| {
        let mut s = DeterministicStream::from_seed(11, domain);
        let mut data = Vec::with_capacity(n * dim);
        for i in 0..n {
            let seed = set.base.row(seeds[i % hot]);
            for (j, x) in seed.iter().enumerate() {
                let sigma = 1.0 / (1.0 + j as f32 / 4.0);
                data.push(x + 0.15 * sigma * s.next_f32_normal());
            }
        }
        Matrix { rows: n, dim, data }
    };
    (
        make(set.base.rows / 10, "dreamdb.bench.growth"),
        make(HOT_QUERIES, "dreamdb.bench.growth.queries"),
    )
}

struct Built {
    ds: Dataset,
    rows: HashMap<u64, u64>,
}

async fn build(set: &BenchSet, growth: &Matrix, url: &str) -> Result<Built, SuiteError> {
    let dim = set.base.dim;
    let ds = Dataset::create(url, NAME, schema_of(set)?, CreateOptions::default()).await?;
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
    let batch = Batch::new(set.base.rows).embeddings(FIELD, dim as u32, set.base.data.clone());
    let mut anchors = ds.append_many_with(batch, options).await?.anchors;
    let chunk = growth.rows.div_ceil(5).max(1);
    for part in growth.data.chunks(chunk * dim) {
        let batch = Batch::new(part.len() / dim).embeddings(FIELD, dim as u32, part.to_vec());
        anchors.extend(ds.append_many(batch).await?.anchors);
    }
    let rows = anchors
        .into_iter()
        .enumerate()
        .map(|(i, a)| (a, i as u64))
        .collect();
    Ok(Built { ds, rows })
}

async fn recall(
    built: &Built,
    queries: &Matrix,
    truth: &[Vec<u64>],
    nprobe: usize,
) -> Result<f64, SuiteError> {
    let mut found = Vec::with_capacity(queries.rows);
    for qi in 0..queries.rows {
        let request = QueryRequest::new(FIELD, queries.row(qi).to_vec(), 10)
            .nprobe(nprobe)
            .refine_factor(10);
        let hits = built.ds.query(&request).await?.hits;
        found.push(
            hits.iter()
                .map(|h| built.rows.get(&h.anchor).copied().unwrap_or(u64::MAX))
                .collect(),
        );
    }
    Ok(recall_at(&found, truth, 10))
}

/// GC of every dataset under `connector`, keeping only the latest
/// Manifest: one row (with `error` when GC refuses to sweep).
pub async fn gc_row(connector: Arc<dyn Connector>, label: &str) -> Result<Value, SuiteError> {
    let now = super::ingest::unix_secs().saturating_mul(1_000_000_000);
    let mut options = GcOptions::new(Ticks::ZERO, now);
    options.keep_manifests = Some(1);
    let t = Instant::now();
    // A refused GC is a finding to report, not a harness failure.
    let report = match gc(connector, &options).await {
        Ok(report) => report,
        Err(e) => {
            let row = json!({"kind": "gc", "dataset": label, "error": e.to_string(),
                             "seconds": t.elapsed().as_secs_f64()});
            eprintln!("suite: gc {label}: {row}");
            return Ok(row);
        }
    };
    let row = json!({
        "kind": "gc", "dataset": label, "seconds": t.elapsed().as_secs_f64(),
        "listed_objects": report.listed_objects, "marked_objects": report.marked_objects,
        "deleted_objects": report.deleted.len(), "bytes_deleted": report.bytes_deleted,
    });
    eprintln!("suite: gc {label}: {row}");
    Ok(row)
}

/// The maintenance rows for `set` (see the module docs), in `dir`.
pub async fn maintenance(set: &BenchSet, dir: &Path) -> Result<Vec<Value>, SuiteError> {
    let (growth, hot_queries) = skewed_growth(set);
    let all = Matrix {
        rows: set.base.rows + growth.rows,
        dim: set.base.dim,
        data: [set.base.data.as_slice(), growth.data.as_slice()].concat(),
    };
    let queries = Matrix {
        rows: set.queries.rows + hot_queries.rows,
        dim: set.base.dim,
        data: [set.queries.data.as_slice(), hot_queries.data.as_slice()].concat(),
    };
    let truth = exact_knn(&all, &queries, 10, set.metric)?;
    let nprobe = nprobes(set.cells).get(3).copied().unwrap_or(1);
    let mut out = Vec::new();
    for step in ["ada-ivf-step", "rebuild-ivf"] {
        let path = dir.join(step);
        let url = path.to_string_lossy().into_owned();
        eprintln!("suite: {}: maintenance {step}: building", set.name);
        let built = build(set, &growth, &url).await?;
        let before = recall(&built, &queries, &truth, nprobe).await?;
        let status = built.ds.ada_ivf_status(FIELD, Some(3.0), Some(0.2)).await?;
        let t = Instant::now();
        let (cost, detail) = if step == "ada-ivf-step" {
            let mut options = AdaIvfStepOptions::new(3.0, 0.2);
            options.seed = 7;
            let r = built.ds.ada_ivf_step(FIELD, options).await?;
            (
                r.cost,
                json!({"k_before": r.k_before, "k_after": r.k_after, "splits": r.splits.len(),
                       "merges": r.merges.len(), "cells_rewritten": r.cells_rewritten,
                       "records_rewritten": r.records_rewritten,
                       "imbalance_before": r.imbalance_before, "imbalance_after": r.imbalance_after}),
            )
        } else {
            let r = built.ds.rebuild_ivf(FIELD, None, 7).await?;
            (
                r.cost,
                json!({"k_after": r.k, "records_rewritten": r.records}),
            )
        };
        let seconds = t.elapsed().as_secs_f64();
        let after = recall(&built, &queries, &truth, nprobe).await?;
        let row = json!({
            "kind": "step", "set": set.name, "step": step, "seconds": seconds,
            "bytes_written": cost.bytes_written, "objects_written": cost.objects_written,
            "recall_before": before, "recall_after": after, "nprobe": nprobe,
            "growth_rows": growth.rows, "hot_cells": (set.cells as usize / 100).max(1),
            "cells": set.cells, "overpopulated_before": status.overpopulated.len(),
            "detail": detail,
        });
        eprintln!("suite: maintenance {row}");
        out.push(row);
        drop(built);
        let connector = dreamdb_connector_http::connect(&url).await?;
        out.push(gc_row(connector, &format!("{} after {step}", set.name)).await?);
    }
    Ok(out)
}
