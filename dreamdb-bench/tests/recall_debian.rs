//! Recall on debian-minilm (real sentence embeddings, 100,000 × 384,
//! cosine): IVF with k ≈ √N = 316 cells trained on a 25,000-row sample,
//! RaBitQ 1-bit and 4-bit, rerank 10·k, against the shipped exact ground
//! truth. The first 200 of the 1,000 queries are used to keep the runtime
//! modest. Acceptance: recall@10 ≥ 0.95 at some nprobe ≤ 25 % of cells.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use dreamdb_bench::data::{debian_minilm, recall_at, run_queries, truth_ids, Dataset};
use dreamdb_protocol::spatial::{IvfIndex, IvfParams, IvfStore, Metric, RaBitQ, VectorCompressor};

const K: u32 = 316;
const QUERIES: usize = 200;
const NPROBES: [usize; 7] = [2, 5, 10, 20, 40, 60, 79];

fn sweep(label: &str, store: &IvfStore, ds: &Dataset, truth: &[Vec<u64>], refine: usize) -> f64 {
    let cells = store.index().cell_count();
    let queries = ds.queries.head(QUERIES);
    let mut best = 0.0f64;
    println!("{label}: nprobe  %cells  recall@10");
    for nprobe in NPROBES {
        let t = Instant::now();
        let found = run_queries(store, &queries, 10, nprobe, refine).unwrap();
        let r = recall_at(&found, truth, 10);
        println!(
            "{label}: {nprobe:>6}  {:>5.1}%  {r:.4}  ({:?})",
            100.0 * nprobe as f64 / cells as f64,
            t.elapsed()
        );
        if nprobe * 4 <= cells {
            best = best.max(r);
        }
    }
    best
}

#[test]
fn debian_minilm_ivf_rabitq_recall() {
    let start = Instant::now();
    let ds = debian_minilm().unwrap();
    assert_eq!((ds.base.rows, ds.base.dim), (100_000, 384));
    let truth: Vec<Vec<u64>> = truth_ids(&ds.groundtruth)
        .into_iter()
        .take(QUERIES)
        .collect();
    println!("loaded in {:?}", start.elapsed());
    let params = IvfParams {
        metric: Metric::Cosine,
        k: K,
        seed: 5,
        iterations: 8,
        sample: Some(25_000),
    };
    let index = IvfIndex::train(params, 384, &ds.base.data).unwrap();
    println!("trained in {:?}", start.elapsed());
    let ids: Vec<u64> = (0..ds.base.rows as u64).collect();
    for bits in [1u8, 4] {
        let rq = RaBitQ::new(VectorCompressor::rabitq(bits, 384, 9, Metric::Cosine)).unwrap();
        let store = IvfStore::build(index.clone(), Some(rq), &ids, &ds.base.data, true).unwrap();
        println!("built {bits}-bit store in {:?}", start.elapsed());
        let best = sweep(
            &format!("debian {bits}-bit rerank10"),
            &store,
            &ds,
            &truth,
            10,
        );
        assert!(best >= 0.95, "{bits}-bit best recall {best}");
        if bits == 1 {
            let r = sweep("debian 1-bit no-rerank", &store, &ds, &truth, 0);
            assert!(r > 0.3, "1-bit without rerank: {r}");
        }
    }
    println!("debian total {:?}", start.elapsed());
}
