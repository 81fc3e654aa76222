//! Ada-IVF on a skewed growth: an index trained on a spread-out set, then
//! most new points land in ~1 % of the space. Splitting hot cells and
//! merging cold ones must lower the imbalance, keep k ≤ 2·√N, mark only
//! the changed cells (every record of an unchanged cell keeps its cell
//! id), and not lose recall at an equal scan budget.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dreamdb_core::random::DeterministicStream;
use dreamdb_protocol::spatial::ada_ivf::{
    apply_changes, cells_to_rewrite, imbalance_score, merge_cell, overpopulated, split_cell,
    underpopulated, MergePlan, SplitPlan,
};
use dreamdb_protocol::spatial::search::SearchOptions;
use dreamdb_protocol::spatial::{sqrt_guidance, IvfIndex, IvfParams, IvfStore, Metric};

const DIM: usize = 32;

fn gaussian(n: usize, center: &[f32], spread: f32, s: &mut DeterministicStream) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        for c in center {
            out.push(c + spread * s.next_f32_normal());
        }
    }
    out
}

/// A mixture of 40 overlapping blobs.
fn base_set(n: usize, s: &mut DeterministicStream) -> Vec<f32> {
    let centers: Vec<Vec<f32>> = (0..40)
        .map(|_| (0..DIM).map(|_| 2.0 * s.next_f32_normal()).collect())
        .collect();
    let mut out = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        let c = &centers[s.below(40).unwrap() as usize];
        out.extend(gaussian(1, c, 1.0, s));
    }
    out
}

fn exact(data: &[f32], q: &[f32], k: usize) -> Vec<u64> {
    let mut all: Vec<(f32, u64)> = data
        .chunks_exact(DIM)
        .enumerate()
        .map(|(i, r)| (Metric::L2.distance(q, r), i as u64))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|x| x.1).collect()
}

/// (recall@10, mean vectors scanned) at `nprobe`.
fn measure(store: &IvfStore, queries: &[f32], truth: &[Vec<u64>], nprobe: usize) -> (f64, f64) {
    let mut hit = 0usize;
    let mut scanned = 0usize;
    for (q, t) in queries.chunks_exact(DIM).zip(truth) {
        let opts = SearchOptions {
            k: 10,
            nprobe,
            refine_factor: 0,
            epsilon0: 1.9,
        };
        let (hits, stats) = store.search_with(q, &opts).unwrap();
        scanned += stats.exact;
        hit += hits.iter().filter(|(id, _)| t.contains(id)).count();
    }
    let nq = truth.len() as f64;
    (hit as f64 / (nq * 10.0), scanned as f64 / nq)
}

/// Recall at the largest nprobe whose mean scan stays within `budget`.
fn recall_within(
    store: &IvfStore,
    queries: &[f32],
    truth: &[Vec<u64>],
    budget: f64,
) -> (usize, f64, f64) {
    let mut best = (0, 0.0, 0.0);
    for nprobe in 1..=store.index().cell_count() {
        let (r, s) = measure(store, queries, truth, nprobe);
        if s > budget {
            break;
        }
        best = (nprobe, r, s);
    }
    best
}

#[test]
fn skewed_growth_split_and_merge() {
    let mut s = DeterministicStream::from_seed(42, "test.ada-ivf");
    let initial = base_set(6_000, &mut s);
    let params = IvfParams {
        metric: Metric::L2,
        k: 77, // ≈ √6000
        seed: 3,
        iterations: 10,
        sample: None,
    };
    let index = IvfIndex::train(params, DIM, &initial).unwrap();

    // Growth: 14,000 new points, 90 % of them in a tight blob around one
    // existing point (~1 % of the space), the rest like the base.
    let hot: Vec<f32> = initial[..DIM].to_vec();
    let mut data = initial.clone();
    for _ in 0..14_000 {
        if s.below(10).unwrap() < 9 {
            data.extend(gaussian(1, &hot, 0.35, &mut s));
        } else {
            data.extend(base_set(1, &mut s));
        }
    }
    let n = data.len() / DIM;
    let ids: Vec<u64> = (0..n as u64).collect();
    let before = IvfStore::build(index.clone(), None, &ids, &data, true).unwrap();
    let leaves = index.cells();
    let sizes: Vec<usize> = leaves
        .iter()
        .map(|&c| before.cell(c).unwrap().ids.len())
        .collect();
    let imbalance_before = imbalance_score(&sizes);

    // Policy (the test's, not the library's): split cells above 3× the
    // mean size into ⌈size / mean⌉ parts; merge cells below 0.2× the mean;
    // then merge the smallest remaining cells until k ≤ 2·√N.
    let k_max = sqrt_guidance(n as u64).k_max as usize;
    let mean = n as f64 / leaves.len() as f64;
    let hot_cells: Vec<u32> = overpopulated(&sizes, 3.0)
        .unwrap()
        .iter()
        .map(|&i| leaves[i])
        .collect();
    let mut splits: Vec<SplitPlan> = Vec::new();
    let mut k_after = leaves.len();
    for &c in &hot_cells {
        let raw = before.cell(c).unwrap().raw.clone().unwrap();
        let size = raw.len() / DIM;
        let parts = ((size as f64 / mean).ceil() as u32).clamp(2, 64);
        splits.push(split_cell(&index, c, &raw, parts, 9, 8).unwrap());
        k_after += parts as usize - 1;
    }
    let mut cold: Vec<(usize, u32)> = underpopulated(&sizes, 0.2)
        .unwrap()
        .iter()
        .map(|&i| (sizes[i], leaves[i]))
        .collect();
    let mut order: Vec<(usize, u32)> = leaves.iter().zip(&sizes).map(|(&c, &sz)| (sz, c)).collect();
    order.sort();
    for &(sz, c) in &order {
        if k_after - cold.len() <= k_max {
            break;
        }
        if !hot_cells.contains(&c) && !cold.iter().any(|x| x.1 == c) {
            cold.push((sz, c));
        }
    }
    cold.sort();
    let cold_ids: Vec<u32> = cold.iter().map(|x| x.1).collect();
    let mut exclude = cold_ids.clone();
    exclude.extend(&hot_cells);
    let merges: Vec<MergePlan> = cold_ids
        .iter()
        .map(|&c| merge_cell(&index, c, &exclude).unwrap())
        .collect();
    let child = apply_changes(&index, &splits, &merges).unwrap();

    // Lineage and the change map.
    let desc = child.description();
    assert_eq!(desc.parents, vec![index.hash().unwrap()]);
    assert_eq!(desc.changes.replaced, hot_cells);
    let mut sorted_cold = cold_ids.clone();
    sorted_cold.sort_unstable();
    assert_eq!(desc.changes.removed, sorted_cold);
    let rewrite = cells_to_rewrite(&index, &child).unwrap();
    let mut expected: Vec<u32> = hot_cells.iter().chain(&cold_ids).copied().collect();
    expected.sort_unstable();
    assert_eq!(rewrite, expected);
    assert!(
        child.cell_count() <= k_max,
        "k = {} > {k_max}",
        child.cell_count()
    );

    // Only changed cells move: every record outside them keeps its cell.
    let old_cells = index.assign(&data).unwrap();
    let new_cells = child.assign(&data).unwrap();
    let merged_into = |c: u32| merges.iter().find(|m| m.cell == c).map(|m| m.into);
    for (o, nw) in old_cells.iter().zip(&new_cells) {
        if rewrite.contains(o) {
            if let Some(t) = merged_into(*o) {
                assert_eq!(*nw, t, "a merged cell's records go to its target only");
            } else {
                assert!(desc.changes.added.contains(nw));
            }
        } else {
            assert_eq!(o, nw, "a record of unchanged cell {o} moved");
        }
    }

    let after = IvfStore::build(child.clone(), None, &ids, &data, true).unwrap();
    let live = child.cells();
    let sizes_after: Vec<usize> = live
        .iter()
        .map(|&c| after.cell(c).unwrap().ids.len())
        .collect();
    let imbalance_after = imbalance_score(&sizes_after);
    println!(
        "N = {n}: k {} -> {} (cap {k_max}), imbalance {imbalance_before:.3} -> {imbalance_after:.3}, \
         {} split, {} merged",
        leaves.len(),
        live.len(),
        hot_cells.len(),
        cold_ids.len()
    );
    assert!(imbalance_after < imbalance_before / 2.0);

    // Recall at an equal scan budget (what rebalancing buys): queries like
    // the data, 90 % hot.
    let mut queries = Vec::new();
    for _ in 0..150 {
        if s.below(10).unwrap() < 9 {
            queries.extend(gaussian(1, &hot, 0.35, &mut s));
        } else {
            queries.extend(base_set(1, &mut s));
        }
    }
    let truth: Vec<Vec<u64>> = queries
        .chunks_exact(DIM)
        .map(|q| exact(&data, q, 10))
        .collect();
    for nprobe in [1usize, 2, 4] {
        let (r_b, s_b) = measure(&before, &queries, &truth, nprobe);
        let (np_a, r_a, s_a) = recall_within(&after, &queries, &truth, s_b);
        println!(
            "before: nprobe {nprobe} recall {r_b:.4} (scans {s_b:.0}); \
             after within that budget: nprobe {np_a} recall {r_a:.4} (scans {s_a:.0}); \
             after at nprobe {nprobe}: recall {:.4}",
            measure(&after, &queries, &truth, nprobe).0
        );
        // Tolerance: 0.005 (under one neighbour in 150 queries × 10).
        assert!(
            r_a + 0.005 >= r_b,
            "recall fell from {r_b} to {r_a} at scan budget {s_b}"
        );
    }
}
