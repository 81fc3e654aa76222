//! Warm query sweeps: recall@10, QPS and latency percentiles across
//! nprobe × refine factor, one query per call.
//!
//! - **dataset-api**: `Dataset::query` on a handle following `main` of
//!   the dataset just ingested (the storage path: ref read, cached
//!   Manifest and index objects, the probed cells' runs and the candidate
//!   runs' raw rows, verified once and then served by the session cache,
//!   exact rerank). The handle's session cache is [`QUERY_CACHE_BYTES`]
//!   (the working set fits, as it does for the in-memory peers); it is
//!   warmed by one pass over the queries at the widest nprobe first. With `threads` > 1, that
//!   many tasks issue queries concurrently and QPS is their total.
//! - **in-memory**: the protocol's `IvfStore::search` on the same rows
//!   (no storage), 1 thread, refine 10: what the storage path costs on
//!   top of the kernel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dreamdb_dataset::dataset::OpenOptions;
use dreamdb_dataset::read::QueryRequest;
use dreamdb_dataset::Dataset;
use dreamdb_protocol::spatial::{IvfIndex, IvfParams, IvfStore, RaBitQ, VectorCompressor};
use serde_json::{json, Value};

use super::ingest::FIELD;
use super::{quantile, SuiteError};
use crate::data::recall_at;
use crate::sets::BenchSet;

/// The session cache of the warm-query handle (see [`sweep_dataset`]).
pub const QUERY_CACHE_BYTES: u64 = 1 << 30;

/// Refine factors swept (candidates reranked = 10 × factor).
pub const REFINES: [usize; 2] = [4, 10];

/// Percentages of the cells probed.
const PROBE_PCT: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 12.0, 18.0, 25.0, 35.0];

/// The nprobe values swept for `cells` cells (distinct, ≥ 1).
pub fn nprobes(cells: u32) -> Vec<usize> {
    let mut out: Vec<usize> = PROBE_PCT
        .iter()
        .map(|p| ((f64::from(cells) * p / 100.0).round() as usize).max(1))
        .collect();
    out.dedup();
    out
}

struct Point {
    found: Vec<Vec<u64>>,
    lat_ms: Vec<f64>,
    seconds: f64,
}

fn row(
    set: &BenchSet,
    path: &str,
    threads: usize,
    nprobe: usize,
    refine: usize,
    p: Point,
) -> Value {
    let recall = recall_at(&p.found, &set.truth, 10);
    let mut lat = p.lat_ms;
    lat.sort_by(f64::total_cmp);
    let qps = p.found.len() as f64 / p.seconds;
    eprintln!(
        "suite: {} {path} t{threads} nprobe {nprobe} refine {refine}: recall {recall:.3}, {qps:.0} QPS",
        set.name
    );
    json!({
        "set": set.name, "system": "dreamdb", "path": path, "threads": threads,
        "nprobe": nprobe, "refine": refine, "cells": set.cells,
        "recall": recall, "qps": qps,
        "p50_ms": quantile(&lat, 0.5), "p95_ms": quantile(&lat, 0.95),
        "queries": p.found.len(),
    })
}

/// One pass of every query through `ds`, `threads` at a time.
async fn pass(
    set: &BenchSet,
    ds: &Dataset,
    rows: &Arc<HashMap<u64, u64>>,
    threads: usize,
    nprobe: usize,
    refine: usize,
) -> Result<Point, SuiteError> {
    let n = set.queries.rows;
    let next = Arc::new(AtomicUsize::new(0));
    let queries: Arc<Vec<Vec<f32>>> =
        Arc::new((0..n).map(|i| set.queries.row(i).to_vec()).collect());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..threads.max(1) {
        let (ds, next, rows, queries) = (ds.clone(), next.clone(), rows.clone(), queries.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let qi = next.fetch_add(1, Ordering::SeqCst);
                let Some(q) = queries.get(qi) else { break };
                let request = QueryRequest::new(FIELD, q.clone(), 10)
                    .nprobe(nprobe)
                    .refine_factor(refine);
                let t = Instant::now();
                let result = ds.query(&request).await?;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                let ids: Vec<u64> = result
                    .hits
                    .iter()
                    .map(|h| rows.get(&h.anchor).copied().unwrap_or(u64::MAX))
                    .collect();
                out.push((qi, ms, ids));
            }
            Ok::<_, SuiteError>(out)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        let part = t
            .await
            .map_err(|e| SuiteError::Invalid(format!("query task: {e}")))??;
        all.extend(part);
    }
    let seconds = started.elapsed().as_secs_f64();
    all.sort_by_key(|(qi, _, _)| *qi);
    Ok(Point {
        lat_ms: all.iter().map(|(_, ms, _)| *ms).collect(),
        found: all.into_iter().map(|(_, _, ids)| ids).collect(),
        seconds,
    })
}

/// The Dataset-API sweep (see the module docs). `anchors[i]` is row `i`'s
/// anchor.
pub async fn sweep_dataset(
    set: &BenchSet,
    url: &str,
    anchors: &[u64],
    threads: usize,
) -> Result<Vec<Value>, SuiteError> {
    // A warm session holds its working set, as the in-memory peers do:
    // codes and raw rows of every cell (≈ 160 MB for debian-minilm).
    let options = OpenOptions {
        cache_bytes: Some(QUERY_CACHE_BYTES),
        ..OpenOptions::default()
    };
    let ds = &Dataset::open(url, super::ingest::NAME, options).await?;
    let rows: Arc<HashMap<u64, u64>> = Arc::new(
        anchors
            .iter()
            .enumerate()
            .map(|(i, &a)| (a, i as u64))
            .collect(),
    );
    let probes = nprobes(set.cells);
    let widest = probes.last().copied().unwrap_or(1);
    pass(set, ds, &rows, threads, widest, 10).await?;
    let mut out = Vec::new();
    for refine in REFINES {
        for &nprobe in &probes {
            let p = pass(set, ds, &rows, threads, nprobe, refine).await?;
            out.push(row(set, "dataset-api", threads, nprobe, refine, p));
        }
    }
    Ok(out)
}

/// The in-memory pipeline sweep, refine 10, on the calling thread.
pub fn sweep_in_memory(set: &BenchSet) -> Result<Vec<Value>, SuiteError> {
    let dim = set.base.dim;
    let params = IvfParams {
        metric: set.metric,
        k: set.cells,
        seed: 7,
        iterations: 10,
        sample: None,
    };
    let index = IvfIndex::train(params, dim, &set.base.data[..set.train_rows * dim])?;
    let rq = RaBitQ::new(VectorCompressor::rabitq(1, dim as u32, 11, set.metric))?;
    let ids: Vec<u64> = (0..set.base.rows as u64).collect();
    let store = IvfStore::build(index, Some(rq), &ids, &set.base.data, true)?;
    let mut out = Vec::new();
    for nprobe in nprobes(set.cells) {
        let mut found = Vec::with_capacity(set.queries.rows);
        let mut lat_ms = Vec::with_capacity(set.queries.rows);
        let started = Instant::now();
        for qi in 0..set.queries.rows {
            let t = Instant::now();
            let hits = store.search(set.queries.row(qi), 10, nprobe, 10)?;
            lat_ms.push(t.elapsed().as_secs_f64() * 1e3);
            found.push(hits.into_iter().map(|h| h.0).collect());
        }
        let seconds = started.elapsed().as_secs_f64();
        out.push(row(
            set,
            "in-memory",
            1,
            nprobe,
            10,
            Point {
                found,
                lat_ms,
                seconds,
            },
        ));
    }
    Ok(out)
}
