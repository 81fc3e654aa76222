//! Deterministic k-means: k-means++ seeding from a ChaCha20 stream, then a
//! fixed number of Lloyd iterations.
//!
//! The result depends only on the input rows, `k`, the seed, the iteration
//! count and the metric, never on the number of threads: every parallel
//! step is a pure function per point (assignment) or per cluster (the sum
//! of its members, folded in f64 in ascending point order), and every
//! sequential step (seeding, re-seeding empty clusters) runs in index
//! order. Assignments use the proved fast argmin, so they equal the
//! reference path of [`super::metric`]. The steps are spelled out in spec
//! 0004 §5.2.

use dreamdb_core::random::DeterministicStream;
use rayon::prelude::*;

use super::lanes::QUERY_BLOCK;
use super::metric::{norm_f64, score_fast_bounded_rows, score_ref, CentroidSet, Metric};
use super::SpatialError;

/// The stream domain of k-means++ seeding.
pub const DOMAIN_KMEANS_PP: &str = "dreamdb.ivf.kmeans++";
/// Rows per parallel task of k-means++ seeding: enough that one pass of
/// the new centre over them amortises the call.
const SEED_CHUNK: usize = 256;

/// The stream domain of the training sample.
pub const DOMAIN_SAMPLE: &str = "dreamdb.ivf.sample";

/// The metric Lloyd iterations use for `metric`: spherical k-means for
/// cosine, Euclidean k-means for L2 and inner product.
pub fn training_metric(metric: Metric) -> Metric {
    match metric {
        Metric::Cosine => Metric::Cosine,
        Metric::L2 | Metric::InnerProduct => Metric::L2,
    }
}

/// Seeding distance: L2 → squared L2, cosine → `max(0, 1 − dot)`.
fn seed_distance(metric: Metric, score: f32) -> f64 {
    match metric {
        Metric::Cosine => f64::from(1.0f32 + score).max(0.0),
        Metric::L2 | Metric::InnerProduct => f64::from(score),
    }
}

/// Draws `s` of `n` indices (partial Fisher–Yates with `below`), returned
/// ascending. All `n` when `s >= n`.
pub fn sample_indices(n: usize, s: usize, seed: u64, domain: &str) -> Vec<usize> {
    if s >= n {
        return (0..n).collect();
    }
    let mut idx: Vec<usize> = (0..n).collect();
    let mut stream = DeterministicStream::from_seed(seed, domain);
    for i in 0..s {
        let span = (n - i) as u64;
        let j = i + stream.below(span).unwrap_or(0) as usize;
        idx.swap(i, j);
    }
    let mut out = idx[..s].to_vec();
    out.sort_unstable();
    out
}

/// Trains `k` centroids on `rows` (row-major, already prepared for the
/// metric: unit-normalised for cosine). `metric` is the training metric
/// (see [`training_metric`]).
pub fn train(
    rows: &[f32],
    dim: usize,
    k: usize,
    seed: u64,
    iterations: u32,
    metric: Metric,
    domain: &str,
) -> Result<Vec<f32>, SpatialError> {
    let n = rows.len() / dim.max(1);
    if n == 0 {
        return Err(SpatialError::EmptyTrainingSet);
    }
    if k == 0 {
        return Err(SpatialError::Zero { name: "k" });
    }
    if k > n {
        return Err(SpatialError::KExceedsN { k, n });
    }
    let row = |i: usize| &rows[i * dim..(i + 1) * dim];
    let norms: Vec<f64> = (0..n).into_par_iter().map(|i| norm_f64(row(i))).collect();
    let mut centroids = seed_plus_plus(rows, dim, k, seed, metric, domain, &norms);
    for _ in 0..iterations {
        centroids = lloyd_step(rows, dim, k, metric, centroids, &norms);
    }
    Ok(centroids)
}

/// k-means++ seeding: first centre `below(n)`; each next centre drawn
/// with probability proportional to the seeding distance to the nearest
/// chosen centre (cumulative f64 sums in index order, `r = u53 · total`,
/// first index whose running sum exceeds `r`); uniform when all are 0.
fn seed_plus_plus(
    rows: &[f32],
    dim: usize,
    k: usize,
    seed: u64,
    metric: Metric,
    domain: &str,
    norms: &[f64],
) -> Vec<f32> {
    let n = norms.len();
    let row = |i: usize| &rows[i * dim..(i + 1) * dim];
    let mut stream = DeterministicStream::from_seed(seed, domain);
    let mut centroids = Vec::with_capacity(k * dim);
    let first = stream.below(n as u64).unwrap_or(0) as usize;
    centroids.extend_from_slice(row(first));
    let mut dist = vec![f64::INFINITY; n];
    let mut last = first;
    for _ in 1..k {
        let c = row(last).to_vec();
        let c_norm = norms[last];
        dist.par_chunks_mut(SEED_CHUNK)
            .enumerate()
            .for_each(|(chunk, ds)| {
                let first = chunk * SEED_CHUNK;
                let last = first + ds.len();
                let mut scored = Vec::with_capacity(ds.len());
                score_fast_bounded_rows(
                    metric,
                    &c,
                    c_norm,
                    &rows[first * dim..last * dim],
                    &norms[first..last],
                    &mut scored,
                );
                for ((i, d), (fast, err)) in (first..last).zip(ds.iter_mut()).zip(scored) {
                    // Skip the reference only when it cannot lower the
                    // distance (the margin covers the bound and the f32
                    // rounding of `1 + s`).
                    let margin = err * 1.01 + 2.0 * f64::from(f32::EPSILON);
                    if seed_distance(metric, fast) - margin > *d {
                        continue;
                    }
                    let exact = seed_distance(metric, score_ref(metric, row(i), &c));
                    if exact < *d {
                        *d = exact;
                    }
                }
            });
        let total: f64 = dist.iter().sum();
        let pick = if total > 0.0 && total.is_finite() {
            let r = (stream.next_u64() >> 11) as f64 * f64::powi(2.0, -53) * total;
            let mut acc = 0.0f64;
            let mut pick = n - 1;
            for (i, d) in dist.iter().enumerate() {
                acc += d;
                if acc > r {
                    pick = i;
                    break;
                }
            }
            pick
        } else {
            stream.below(n as u64).unwrap_or(0) as usize
        };
        centroids.extend_from_slice(row(pick));
        last = pick;
    }
    centroids
}

/// Assigns every row to its nearest centroid (proved fast path), with the
/// reference score of that assignment.
pub fn assign_rows(rows: &[f32], dim: usize, set: &CentroidSet, norms: &[f64]) -> Vec<(u32, f32)> {
    let row = |i: usize| &rows[i * dim..(i + 1) * dim];
    nearest_all(norms.len(), set, |i| (row(i), norms[i]))
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c as u32, set.score_ref(row(i), c)))
        .collect()
}

/// The nearest centroid of each of `n` rows (`row(i)` gives a prepared
/// row and its norm): the rows go through
/// [`CentroidSet::argmin_range_block`] in blocks, in parallel; the result
/// does not depend on the blocking or the threads.
pub fn nearest_all<'a>(
    n: usize,
    set: &CentroidSet,
    row: impl Fn(usize) -> (&'a [f32], f64) + Sync,
) -> Vec<usize> {
    let blocks = n / QUERY_BLOCK;
    let mut out: Vec<usize> = (0..blocks)
        .into_par_iter()
        .flat_map_iter(|b| {
            let picked: [(&[f32], f64); QUERY_BLOCK] =
                std::array::from_fn(|i| row(b * QUERY_BLOCK + i));
            let found = set.argmin_range_block(
                picked.map(|(r, _)| r),
                picked.map(|(_, n)| n),
                0,
                set.len(),
            );
            found.map(|c| c.unwrap_or(0))
        })
        .collect();
    out.extend((blocks * QUERY_BLOCK..n).map(|i| {
        let (r, norm) = row(i);
        set.argmin_range(r, norm, 0, set.len()).unwrap_or(0)
    }));
    out
}

/// One Lloyd step: assign, then each centroid becomes the f64 mean of its
/// members (folded in ascending point order), normalised for cosine, and
/// rounded to f32. Empty clusters, in ascending id, take the not yet taken
/// point with the largest assigned score (lowest index on ties).
fn lloyd_step(
    rows: &[f32],
    dim: usize,
    k: usize,
    metric: Metric,
    centroids: Vec<f32>,
    norms: &[f64],
) -> Vec<f32> {
    let set = CentroidSet::new(metric, dim, centroids);
    let assigned = assign_rows(rows, dim, &set, norms);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &(c, _)) in assigned.iter().enumerate() {
        members[c as usize].push(i);
    }
    let mut next: Vec<Vec<f32>> = members
        .par_iter()
        .enumerate()
        .map(|(c, m)| {
            if m.is_empty() {
                return set.row(c).to_vec();
            }
            mean_of(rows, dim, m, metric)
        })
        .collect();
    let empty: Vec<usize> = (0..k).filter(|&c| members[c].is_empty()).collect();
    if !empty.is_empty() {
        let mut order: Vec<usize> = (0..assigned.len()).collect();
        order.sort_by(|&a, &b| {
            let (sa, sb) = (assigned[a].1, assigned[b].1);
            sb.total_cmp(&sa).then(a.cmp(&b))
        });
        for (c, &p) in empty.iter().zip(order.iter()) {
            next[*c] = rows[p * dim..(p + 1) * dim].to_vec();
        }
    }
    next.concat()
}

/// The f64 mean of the listed rows (ascending order), normalised for
/// cosine, rounded to f32.
pub fn mean_of(rows: &[f32], dim: usize, members: &[usize], metric: Metric) -> Vec<f32> {
    let mut sum = vec![0.0f64; dim];
    for &i in members {
        for (s, &x) in sum.iter_mut().zip(&rows[i * dim..(i + 1) * dim]) {
            *s += f64::from(x);
        }
    }
    let count = members.len().max(1) as f64;
    for s in sum.iter_mut() {
        *s /= count;
    }
    if metric == Metric::Cosine {
        let norm = sum.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 0.0 {
            for s in sum.iter_mut() {
                *s /= norm;
            }
        }
    }
    sum.into_iter().map(|x| x as f32).collect()
}
