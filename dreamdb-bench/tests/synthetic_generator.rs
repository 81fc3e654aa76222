//! The benchmark suite's synthetic set ([`GaussianSpec::BENCH`]) must
//! measure something: IVF-flat recall@10 has to rise across the nprobe
//! range instead of saturating after a few cells (the old 64-cluster set
//! reached 1.0 at nprobe 8 of 316). Checked on 20,000 × 128 with 141
//! cells, IVF-flat (exact distances, so only the partition matters).
//! Also: the `.npy` writer round-trips through the reader.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dreamdb_bench::data::{
    exact_knn, gaussian_with, read_npy_f32, read_npy_i32, recall_at, run_queries, write_npy_f32,
    write_npy_i32, GaussianSpec, IntMatrix, Matrix,
};
use dreamdb_protocol::spatial::{IvfIndex, IvfParams, IvfStore, Metric};

const N: usize = 20_000;
const QUERIES: usize = 200;
const DIM: usize = 128;
const CELLS: u32 = 141;

#[test]
fn bench_set_recall_rises_across_nprobe() {
    let all = gaussian_with(GaussianSpec::BENCH, N + QUERIES, DIM, 2026);
    let base = all.head(N);
    let queries = Matrix {
        rows: QUERIES,
        dim: DIM,
        data: all.data[N * DIM..].to_vec(),
    };
    let truth = exact_knn(&base, &queries, 10, Metric::L2).unwrap();
    let params = IvfParams {
        metric: Metric::L2,
        k: CELLS,
        seed: 7,
        iterations: 10,
        sample: None,
    };
    let index = IvfIndex::train(params, DIM, &base.data).unwrap();
    let ids: Vec<u64> = (0..N as u64).collect();
    let flat = IvfStore::build(index, None, &ids, &base.data, true).unwrap();
    let curve: Vec<(usize, f64)> = [1usize, 3, 6, 11, 25, 50]
        .iter()
        .map(|&nprobe| {
            let found = run_queries(&flat, &queries, 10, nprobe, 0).unwrap();
            (nprobe, recall_at(&found, &truth, 10))
        })
        .collect();
    println!("IVF-flat recall@10 by nprobe: {curve:?}");
    for pair in curve.windows(2) {
        assert!(
            pair[1].1 > pair[0].1,
            "recall must rise with nprobe: {curve:?}"
        );
    }
    assert!(curve[0].1 < 0.6, "nprobe 1 already finds {curve:?}");
    assert!(curve[2].1 < 0.95, "saturated by nprobe 6: {curve:?}");
    assert!(curve[5].1 >= 0.95, "never reaches 0.95: {curve:?}");
}

#[test]
fn npy_writer_round_trips() {
    let dir = std::env::temp_dir().join(format!("dreamdb-bench-npy-{}", std::process::id()));
    let m = Matrix {
        rows: 3,
        dim: 5,
        data: (0..15).map(|i| i as f32 * 0.5 - 2.0).collect(),
    };
    let g = IntMatrix {
        rows: 3,
        dim: 2,
        data: vec![0, -1, 7, 8, i32::MAX, 3],
    };
    write_npy_f32(&dir.join("m.npy"), &m).unwrap();
    write_npy_i32(&dir.join("g.npy"), &g).unwrap();
    assert_eq!(read_npy_f32(&dir.join("m.npy")).unwrap(), m);
    assert_eq!(read_npy_i32(&dir.join("g.npy")).unwrap(), g);
    std::fs::remove_dir_all(&dir).unwrap();
}
