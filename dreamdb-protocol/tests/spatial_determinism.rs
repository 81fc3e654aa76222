//! Determinism: same input + seed ⇒ same index hash, codes and keys;
//! results independent of the rayon thread count; the fast argmin equal
//! to the scalar reference on random and adversarial near-tie inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dreamdb_core::random::DeterministicStream;
use dreamdb_protocol::spatial::lsh::{LshIndex, LshParams};
use dreamdb_protocol::spatial::metric::{dot_fast, l2sq_fast, norm_f64, prepare, CentroidSet};
use dreamdb_protocol::spatial::{IvfIndex, IvfParams, Metric, RaBitQ, VectorCompressor};

fn random(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut s = DeterministicStream::from_seed(seed, "test.determinism");
    (0..n * dim).map(|_| s.next_f32_normal()).collect()
}

fn params(metric: Metric) -> IvfParams {
    IvfParams {
        metric,
        k: 24,
        seed: 99,
        iterations: 6,
        sample: Some(1_500),
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

#[test]
fn same_input_and_seed_give_same_hash_codes_and_keys() {
    let data = random(2_000, 16, 1);
    for metric in [Metric::Cosine, Metric::L2, Metric::InnerProduct] {
        let a = IvfIndex::train(params(metric), 16, &data).unwrap();
        let b = IvfIndex::train(params(metric), 16, &data).unwrap();
        assert_eq!(a.hash().unwrap(), b.hash().unwrap());
        assert_eq!(a.assign(&data).unwrap(), b.assign(&data).unwrap());
        let mut other = params(metric);
        other.seed = 100;
        let c = IvfIndex::train(other, 16, &data).unwrap();
        assert_ne!(a.hash().unwrap(), c.hash().unwrap(), "the seed must matter");
        // Decoding the stored bytes gives the same index.
        let back = IvfIndex::from_cbor(&a.to_cbor().unwrap()).unwrap();
        assert_eq!(back.hash().unwrap(), a.hash().unwrap());
    }
    for bits in [1u8, 3, 4, 8] {
        let rq = RaBitQ::new(VectorCompressor::rabitq(bits, 16, 5, Metric::L2)).unwrap();
        let (c1, f1) = rq
            .encode_batch(&data[..16 * 200], Some(&data[16 * 500..16 * 501]))
            .unwrap();
        let (c2, f2) = rq
            .encode_batch(&data[..16 * 200], Some(&data[16 * 500..16 * 501]))
            .unwrap();
        assert_eq!(c1, c2);
        assert_eq!(
            f1.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            f2.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }
    let lsh = LshIndex::new(
        16,
        LshParams {
            tables: 3,
            bits: 10,
            seed: 4,
        },
    )
    .unwrap();
    let lsh2 = LshIndex::new(
        16,
        LshParams {
            tables: 3,
            bits: 10,
            seed: 4,
        },
    )
    .unwrap();
    for row in data.chunks_exact(16).take(100) {
        assert_eq!(lsh.keys(row).unwrap(), lsh2.keys(row).unwrap());
    }
    assert_eq!(lsh.hash().unwrap(), lsh2.hash().unwrap());
}

#[test]
fn thread_count_does_not_change_results() {
    let data = random(3_000, 24, 2);
    let rq = RaBitQ::new(VectorCompressor::rabitq(4, 24, 8, Metric::Cosine)).unwrap();
    let run = |threads: usize| {
        pool(threads).install(|| {
            let idx = IvfIndex::train(params(Metric::Cosine), 24, &data).unwrap();
            let cells = idx.assign(&data).unwrap();
            let codes = rq
                .encode_batch(&data, Some(idx.centroid(0).unwrap()))
                .unwrap();
            (
                idx.hash().unwrap(),
                idx.description().centroids.clone(),
                cells,
                codes.0,
            )
        })
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one.0, two.0, "index hash differs between 1 and 2 threads");
    assert_eq!(
        one.1.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        two.1.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(one.2, two.2);
    assert_eq!(one.3, two.3);
}

#[test]
fn fast_assignment_equals_reference_on_random_inputs() {
    let data = random(4_000, 40, 3);
    for metric in [Metric::Cosine, Metric::L2, Metric::InnerProduct] {
        let idx = IvfIndex::train(params(metric), 40, &data).unwrap();
        assert_eq!(
            idx.assign(&data).unwrap(),
            idx.assign_reference(&data).unwrap()
        );
    }
}

/// The next representable f32 above `x` (x finite).
fn ulp_up(x: f32) -> f32 {
    if x == 0.0 {
        return f32::from_bits(1);
    }
    if x > 0.0 {
        f32::from_bits(x.to_bits() + 1)
    } else {
        f32::from_bits(x.to_bits() - 1)
    }
}

#[test]
fn fast_argmin_equals_reference_on_near_ties() {
    let mut s = DeterministicStream::from_seed(7, "test.near-ties");
    let mut checked = 0usize;
    let mut multi = 0usize;
    let mut naive_differs = 0usize;
    for trial in 0..4_000usize {
        let dim = [3usize, 16, 33, 128][trial % 4];
        let metric = [Metric::L2, Metric::Cosine, Metric::InnerProduct][trial % 3];
        let q: Vec<f32> = (0..dim).map(|_| s.next_f32_normal()).collect();
        let base: Vec<f32> = (0..dim).map(|_| s.next_f32_normal()).collect();
        let mut cents = Vec::new();
        match trial % 5 {
            // Exact duplicates: ties must go to the lowest id.
            0 => {
                for _ in 0..4 {
                    cents.extend_from_slice(&base);
                }
            }
            // One-ulp perturbations of one centroid.
            1 => {
                for j in 0..6 {
                    let mut c = base.clone();
                    let i = s.below(dim as u64).unwrap() as usize;
                    if j > 0 {
                        c[i] = ulp_up(c[i]);
                    }
                    cents.extend(c);
                }
            }
            // Mirror images around the query: equal in exact arithmetic.
            2 => {
                for j in 0..4 {
                    let d: Vec<f32> = (0..dim).map(|_| 0.01 * s.next_f32_normal()).collect();
                    let sign = if j % 2 == 0 { 1.0 } else { -1.0 };
                    cents.extend(q.iter().zip(&d).map(|(a, b)| a + sign * b));
                }
            }
            // Permuted components (same norm, same multiset of products).
            3 => {
                cents.extend_from_slice(&base);
                let mut c = base.clone();
                c.reverse();
                cents.extend_from_slice(&c);
                let mut c = q.clone();
                s.shuffle(&mut c);
                cents.extend_from_slice(&c);
                cents.extend_from_slice(&q);
            }
            // Plain random.
            _ => {
                for _ in 0..8 {
                    cents.extend((0..dim).map(|_| s.next_f32_normal()));
                }
            }
        }
        let set = CentroidSet::new(metric, dim, cents);
        let qp = prepare(metric, &q, 0).unwrap();
        let fast = set.argmin_range(&qp, norm_f64(&qp), 0, set.len());
        let reference = set.argmin_range_ref(&qp, 0, set.len());
        assert_eq!(fast, reference, "trial {trial} ({metric:?}, dim {dim})");
        // The tiled block path (k-means, assignment) decides the same.
        let block = set.argmin_range_block([&qp[..]; 4], [norm_f64(&qp); 4], 0, set.len());
        assert_eq!(
            block, [reference; 4],
            "trial {trial} block ({metric:?}, dim {dim})"
        );
        checked += 1;
        // Would an unproved fast path (lane sums, plain argmin) disagree?
        let naive = (0..set.len())
            .map(|i| match metric {
                Metric::L2 => l2sq_fast(&qp, set.row(i)),
                _ => -dot_fast(&qp, set.row(i)),
            })
            .enumerate()
            .fold(None, |best: Option<(usize, f32)>, (i, x)| match best {
                Some((_, b)) if b <= x => best,
                _ => Some((i, x)),
            })
            .map(|(i, _)| i);
        if naive != reference {
            naive_differs += 1;
        }
        if set
            .rank_ref(&qp, 0..set.len())
            .windows(2)
            .any(|w| w[0].0 == w[1].0)
        {
            multi += 1;
        }
    }
    println!(
        "{checked} near-tie trials, {multi} with exact score ties, \
         {naive_differs} where an unproved lane-sum argmin would differ"
    );
    assert!(
        naive_differs > 0,
        "the cases must be adversarial for the fast path"
    );
    assert!(multi > 100, "the adversarial cases must produce real ties");
}
