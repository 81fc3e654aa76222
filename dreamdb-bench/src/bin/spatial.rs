//! `spatial` — recall@10 and single-thread query speed of the in-memory
//! spatial pipeline (IVF + RaBitQ + exact rerank), written to
//! `bench/report/spatial.{json,md}`.
//!
//! ```text
//! cargo run --release -p dreamdb-bench --bin spatial -- [--quick] [--out bench/report]
//!     [--only SUBSTRING] [--bits 1,4]
//! ```
//!
//! `--only` keeps the data sets whose name contains the substring and
//! `--bits` chooses the code widths, to iterate on one case quickly.
//! `--storage` also runs the same queries through the storage path: a
//! dataset on a local directory (one append, so IVF trains on every
//! vector), one warm-up pass to fill the session cache, then a timed warm
//! pass of `Dataset::query` (a current-thread runtime).
//! `--quick` runs bigann10k and a 20,000-point synthetic set (about a
//! minute); the full run adds the 100,000 × 128 synthetic set and
//! debian-minilm (100,000 × 384). Queries run one at a time on one thread
//! (a 1-thread rayon pool), so QPS is comparable with single-threaded
//! peers. Numbers are measurements for the report, never assertions.

// mimalloc, tuned at start (dreamdb_dataset::allocator says why).
dreamdb_dataset::install_allocator!();

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use dreamdb_bench::data::{
    bigann10k, clustered_gaussian, debian_minilm, exact_knn, recall_at, truth_ids, Dataset,
    IntMatrix, Matrix,
};
use dreamdb_protocol::spatial::rabitq::DEFAULT_EPSILON0;
use dreamdb_protocol::spatial::search::SearchScratch;
use dreamdb_protocol::spatial::{
    IvfIndex, IvfParams, IvfStore, Metric, RaBitQ, SearchOptions, VectorCompressor,
};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Warm storage-path figures for one nprobe: (nprobe, recall, QPS, p50 ms).
type StorageRow = (usize, f64, f64, f64);

/// Builds a dataset of `ds` on a temporary local directory and times warm
/// `Dataset::query` calls at each nprobe.
fn storage_path(
    ds: &Dataset,
    k: u32,
    bits: u8,
    nprobes: &[usize],
    truth: &[Vec<u64>],
) -> Result<Vec<StorageRow>, BoxError> {
    use dreamdb_dataset::batch::Batch;
    use dreamdb_dataset::dataset::CreateOptions;
    use dreamdb_dataset::read::QueryRequest;
    use dreamdb_dataset::schema::{EmbeddingField, Metric as FieldMetric, SchemaBuilder};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = std::env::temp_dir().join(format!("dreamdb-bench-storage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let url = dir.to_str().ok_or("temp dir is not UTF-8")?.to_owned();
    let metric = match ds.metric {
        Metric::Cosine => FieldMetric::Cosine,
        Metric::L2 => FieldMetric::L2,
        Metric::InnerProduct => FieldMetric::InnerProduct,
    };
    let dim = ds.base.dim;
    let out = rt.block_on(async {
        let schema = SchemaBuilder::new()
            .embedding(
                "v",
                EmbeddingField::new(dim as u32)
                    .metric(metric)
                    .ivf(k)
                    .rabitq(bits)
                    .rerank(true),
            )
            .build()?;
        let dataset =
            dreamdb_dataset::Dataset::create(&url, "bench", schema, CreateOptions::default())
                .await?;
        let r = dataset
            .append_many(Batch::new(ds.base.rows).embeddings("v", dim as u32, ds.base.data.clone()))
            .await?;
        // Anchor of each base row, to map hits back to row numbers.
        let row_of: std::collections::HashMap<u64, u64> = r
            .anchors
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, i as u64))
            .collect();
        let mut rows = Vec::new();
        for &nprobe in nprobes {
            let request = |qi: usize| {
                QueryRequest::new("v", ds.queries.row(qi).to_vec(), 10)
                    .nprobe(nprobe)
                    .refine_factor(10)
            };
            for qi in 0..truth.len() {
                dataset.query(&request(qi)).await?;
            }
            let mut found = Vec::with_capacity(truth.len());
            let mut lat = Vec::with_capacity(truth.len());
            let run = Instant::now();
            for qi in 0..truth.len() {
                let t = Instant::now();
                let res = dataset.query(&request(qi)).await?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                found.push(
                    res.hits
                        .iter()
                        .filter_map(|h| row_of.get(&h.anchor).copied())
                        .collect::<Vec<u64>>(),
                );
            }
            let qps = truth.len() as f64 / run.elapsed().as_secs_f64();
            lat.sort_by(f64::total_cmp);
            rows.push((
                nprobe,
                recall_at(&found, truth, 10),
                qps,
                lat[lat.len() / 2],
            ));
        }
        Ok::<_, BoxError>(rows)
    });
    let _ = std::fs::remove_dir_all(&dir);
    out
}

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
    dreamdb_dataset::allocator::tune();
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out_dir = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("bench/report"));
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let only = value_of("--only");
    let storage = args.iter().any(|a| a == "--storage");
    let mut storage_md = String::new();
    let bit_widths: Vec<u8> = match value_of("--bits") {
        Some(list) => list.split(',').map(str::parse).collect::<Result<_, _>>()?,
        None => vec![1, 4],
    };
    std::fs::create_dir_all(&out_dir)?;
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;

    let mut results = Vec::new();
    let mut md = String::from(
        "# Spatial pipeline: recall@10 and single-thread QPS\n\n\
         In-memory IVF + RaBitQ + exact rerank (refine 10), one query at a time on one thread.\n\n\
         | data | codes | nprobe | % cells | recall@10 | QPS | p50 ms | p95 ms |\n|---|---|---|---|---|---|---|---|\n",
    );
    for case in cases(quick)? {
        if only
            .as_ref()
            .is_some_and(|o| !case.name.contains(o.as_str()))
        {
            continue;
        }
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
        for &bits in &bit_widths {
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
                let opts = SearchOptions {
                    k: 10,
                    nprobe,
                    refine_factor: 10,
                    epsilon0: DEFAULT_EPSILON0,
                };
                let mut scratch = SearchScratch::new();
                one_thread.install(|| -> Result<(), BoxError> {
                    for qi in 0..nq {
                        let t = Instant::now();
                        let (hits, _) =
                            store.search_with_scratch(ds.queries.row(qi), &opts, &mut scratch)?;
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
            if storage {
                let nprobes: Vec<usize> = [2.0f64, 5.0, 10.0, 16.0, 25.0]
                    .iter()
                    .map(|pct| ((cells as f64 * pct / 100.0).round() as usize).max(1))
                    .collect();
                for (nprobe, recall, qps, p50) in storage_path(ds, case.k, bits, &nprobes, &truth)?
                {
                    writeln!(
                        storage_md,
                        "| {} | {bits}-bit | {nprobe} | {recall:.4} | {qps:.0} | {p50:.3} |",
                        case.name
                    )?;
                    results.push(json!({
                        "data": case.name, "bits": bits, "nprobe": nprobe, "path": "storage-warm",
                        "recall_at_10": recall, "qps_1_thread": qps, "p50_ms": p50, "queries": nq,
                    }));
                    eprintln!(
                        "{} {bits}-bit storage nprobe {nprobe}: recall {recall:.4}, {qps:.0} QPS",
                        case.name
                    );
                }
            }
        }
    }
    if !storage_md.is_empty() {
        md.push_str(
            "\n## Storage path, warm\n\n\
             `Dataset::query` on a local-directory dataset (one append; IVF trained on every vector, \
             so cells differ from the in-memory rows), session cache warm, one thread, refine 10.\n\n\
             | data | codes | nprobe | recall@10 | QPS | p50 ms |\n|---|---|---|---|---|---|\n",
        );
        md.push_str(&storage_md);
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
