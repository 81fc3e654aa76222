//! `spatial` — recall@10 and single-thread query speed of the in-memory
//! spatial pipeline (IVF + RaBitQ + exact rerank), written to
//! `bench/report/spatial.{json,md}`.
//!
//! ```text
//! cargo run --release -p dreamdb-bench --bin spatial -- [--quick] [--out bench/report]
//! ```
//!
//! `--quick` runs bigann10k and a 20,000-point synthetic set (about a
//! minute); the full run adds the 100,000 × 128 synthetic set and
//! debian-minilm (100,000 × 384). Queries run one at a time on one thread
//! (a 1-thread rayon pool), so QPS is comparable with single-threaded
//! peers. Numbers are measurements for the report, never assertions.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use dreamdb_bench::data::{
    bigann10k, clustered_gaussian, debian_minilm, exact_knn, recall_at, truth_ids, Dataset,
    IntMatrix, Matrix,
};
use dreamdb_protocol::spatial::{IvfIndex, IvfParams, IvfStore, Metric, RaBitQ, VectorCompressor};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Case {
    name: String,
    data: Dataset,
    k: u32,
    train_sample: Option<u32>,
    queries: usize,
}

fn synthetic(n: usize, queries: usize) -> Result<Dataset, BoxError> {
    let dim = 128;
    let all = clustered_gaussian(n + queries, dim, 64, 1.0, 2026);
    let base = all.head(n);
    let q = Matrix {
        rows: queries,
        dim,
        data: all.data[n * dim..].to_vec(),
    };
    let truth = exact_knn(&base, &q, 10, Metric::L2)?;
    let groundtruth = IntMatrix {
        rows: queries,
        dim: 10,
        data: truth.iter().flatten().map(|&i| i as i32).collect(),
    };
    Ok(Dataset {
        base,
        queries: q,
        groundtruth,
        metric: Metric::L2,
    })
}

fn cases(quick: bool) -> Result<Vec<Case>, BoxError> {
    let mut out = vec![Case {
        name: "bigann10k (L2, 10k x 128)".into(),
        data: bigann10k()?,
        k: 100,
        train_sample: None,
        queries: 100,
    }];
    if quick {
        out.push(Case {
            name: "synthetic (L2, 20k x 128)".into(),
            data: synthetic(20_000, 200)?,
            k: 141,
            train_sample: None,
            queries: 200,
        });
    } else {
        out.push(Case {
            name: "synthetic (L2, 100k x 128)".into(),
            data: synthetic(100_000, 500)?,
            k: 316,
            train_sample: None,
            queries: 500,
        });
        out.push(Case {
            name: "debian-minilm (cosine, 100k x 384)".into(),
            data: debian_minilm()?,
            k: 316,
            train_sample: Some(25_000),
            queries: 1_000,
        });
    }
    Ok(out)
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out_dir = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("bench/report"));
    std::fs::create_dir_all(&out_dir)?;
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;

    let mut results = Vec::new();
    let mut md = String::from(
        "# Spatial pipeline: recall@10 and single-thread QPS\n\n\
         In-memory IVF + RaBitQ + exact rerank (refine 10), one query at a time on one thread.\n\n\
         | data | codes | nprobe | % cells | recall@10 | QPS | p50 ms | p95 ms |\n|---|---|---|---|---|---|---|---|\n",
    );
    for case in cases(quick)? {
        let ds = &case.data;
        let nq = case.queries.min(ds.queries.rows);
        let truth: Vec<Vec<u64>> = truth_ids(&ds.groundtruth).into_iter().take(nq).collect();
        let t = Instant::now();
        let params = IvfParams {
            metric: ds.metric,
            k: case.k,
            seed: 7,
            iterations: 10,
            sample: case.train_sample,
        };
        let index = IvfIndex::train(params, ds.base.dim, &ds.base.data)?;
        let train_s = t.elapsed().as_secs_f64();
        let ids: Vec<u64> = (0..ds.base.rows as u64).collect();
        for bits in [1u8, 4] {
            let t = Instant::now();
            let rq = RaBitQ::new(VectorCompressor::rabitq(
                bits,
                ds.base.dim as u32,
                11,
                ds.metric,
            ))?;
            let store = IvfStore::build(index.clone(), Some(rq), &ids, &ds.base.data, true)?;
            let build_s = t.elapsed().as_secs_f64();
            let cells = store.index().cell_count();
            for pct in [2.0f64, 5.0, 10.0, 16.0, 25.0] {
                let nprobe = ((cells as f64 * pct / 100.0).round() as usize).max(1);
                let mut found = Vec::with_capacity(nq);
                let mut lat = Vec::with_capacity(nq);
                let run = Instant::now();
                one_thread.install(|| -> Result<(), BoxError> {
                    for qi in 0..nq {
                        let t = Instant::now();
                        let hits = store.search(ds.queries.row(qi), 10, nprobe, 10)?;
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        found.push(hits.into_iter().map(|h| h.0).collect::<Vec<u64>>());
                    }
                    Ok(())
                })?;
                let qps = nq as f64 / run.elapsed().as_secs_f64();
                lat.sort_by(f64::total_cmp);
                let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
                let recall = recall_at(&found, &truth, 10);
                writeln!(
                    md,
                    "| {} | {bits}-bit | {nprobe} | {:.1} | {recall:.4} | {qps:.0} | {:.3} | {:.3} |",
                    case.name,
                    100.0 * nprobe as f64 / cells as f64,
                    p(0.5),
                    p(0.95)
                )?;
                results.push(json!({
                    "data": case.name, "bits": bits, "cells": cells, "nprobe": nprobe,
                    "recall_at_10": recall, "qps_1_thread": qps,
                    "p50_ms": p(0.5), "p95_ms": p(0.95),
                    "train_s": train_s, "build_s": build_s, "queries": nq,
                }));
                eprintln!(
                    "{} {bits}-bit nprobe {nprobe}: recall {recall:.4}, {qps:.0} QPS",
                    case.name
                );
            }
        }
    }
    md.push_str("\nPeers (Faiss, LanceDB) are measured by the benchmark suite of issue #10; this report covers the spatial pipeline alone.\n");
    std::fs::write(out_dir.join("spatial.md"), md)?;
    std::fs::write(
        out_dir.join("spatial.json"),
        serde_json::to_string_pretty(&json!({ "quick": quick, "results": results }))?,
    )?;
    eprintln!("wrote {}", out_dir.join("spatial.md").display());
    Ok(())
}
