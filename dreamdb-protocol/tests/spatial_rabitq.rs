//! RaBitQ: the estimator is unbiased and its error bound holds; more bits
//! give better estimates; the rotation is orthogonal; decode approximates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dreamdb_core::random::DeterministicStream;
use dreamdb_protocol::spatial::rabitq::rotation::{padded_dim, Rotation};
use dreamdb_protocol::spatial::rabitq::DEFAULT_EPSILON0;
use dreamdb_protocol::spatial::{Metric, RaBitQ, VectorCompressor};

fn random(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut s = DeterministicStream::from_seed(seed, "test.rabitq");
    (0..n * dim).map(|_| s.next_f32_normal()).collect()
}

#[test]
fn rotation_is_orthogonal_and_invertible() {
    let r = Rotation::new(padded_dim(100), 3);
    assert_eq!(r.n(), 128);
    let x = random(1, 100, 1);
    let y = r.apply(&x);
    let nx: f32 = x.iter().map(|v| v * v).sum();
    let ny: f32 = y.iter().map(|v| v * v).sum();
    assert!((nx - ny).abs() / nx < 1e-5);
    let back = r.apply_inverse(&y);
    for (a, b) in x.iter().zip(&back) {
        assert!((a - b).abs() < 1e-5);
    }
    assert!(back[100..].iter().all(|v| v.abs() < 1e-5));
}

/// (mean signed error, mean |error|, fraction outside the bound) of the
/// estimated squared L2 distances.
fn error_stats(bits: u8, metric: Metric, epsilon0: f32) -> (f64, f64, f64) {
    let dim = 96;
    let data = random(400, dim, 10);
    let queries = random(20, dim, 11);
    let centroid: Vec<f32> = (0..dim)
        .map(|i| if i % 2 == 0 { 0.1 } else { -0.1 })
        .collect();
    let rq = RaBitQ::new(VectorCompressor::rabitq(bits, dim as u32, 7, metric)).unwrap();
    let (codes, factors) = rq.encode_batch(&data, Some(&centroid)).unwrap();
    let wpv = rq.words_per_vector();
    let (mut signed, mut abs, mut outside, mut count) = (0.0f64, 0.0f64, 0usize, 0usize);
    for q in queries.chunks_exact(dim) {
        let lut = rq.prepare_query(q, Some(&centroid)).unwrap();
        for (i, o) in data.chunks_exact(dim).enumerate() {
            let e = rq
                .estimate(
                    &lut,
                    &codes[i * wpv..(i + 1) * wpv],
                    &factors[i * 3..i * 3 + 3],
                    epsilon0,
                )
                .unwrap();
            let truth = metric.distance(q, o);
            let err = f64::from(e.distance - truth);
            signed += err;
            abs += err.abs();
            if err.abs() > f64::from(e.bound) * 1.0001 + 1e-4 {
                outside += 1;
            }
            count += 1;
        }
    }
    let c = count as f64;
    (signed / c, abs / c, outside as f64 / c)
}

#[test]
fn estimator_is_unbiased_bounded_and_improves_with_bits() {
    let mut last = f64::INFINITY;
    for bits in [1u8, 2, 4, 8] {
        let (bias, mae, outside) = error_stats(bits, Metric::L2, DEFAULT_EPSILON0);
        let (_, _, outside4) = error_stats(bits, Metric::L2, 4.0);
        println!(
            "L2 {bits}-bit: bias {bias:+.4}, mean |err| {mae:.4}, \
             outside bound: {outside:.4} (eps0 1.9), {outside4:.5} (eps0 4)"
        );
        // Squared distances here are ~2·96 ≈ 190: the bias is tiny.
        assert!(bias.abs() < 0.02 * 190.0 / (bits as f64), "bias {bias}");
        // The error is ~Gaussian with the bound's scale as σ·ε0, so ε0 =
        // 1.9 is a ~94 % interval and ε0 = 4 almost never fails.
        assert!(
            outside < 0.08,
            "{outside} of estimates outside the 1.9 bound"
        );
        assert!(
            outside4 < 0.002,
            "{outside4} of estimates outside the 4.0 bound"
        );
        assert!(mae < last, "more bits must estimate better");
        last = mae;
    }
    for metric in [Metric::Cosine, Metric::InnerProduct] {
        let (bias, mae, outside) = error_stats(4, metric, DEFAULT_EPSILON0);
        println!("{metric:?} 4-bit: bias {bias:+.5}, mean |err| {mae:.5}, outside {outside:.4}");
        assert!(outside < 0.08);
    }
}

#[test]
fn decode_approximates_and_multibit_contains_one_bit_code() {
    let dim = 64;
    let data = random(50, dim, 12);
    let one = RaBitQ::new(VectorCompressor::rabitq(1, dim as u32, 4, Metric::L2)).unwrap();
    let four = RaBitQ::new(VectorCompressor::rabitq(4, dim as u32, 4, Metric::L2)).unwrap();
    for v in data.chunks_exact(dim) {
        let a = one.encode(v, None).unwrap();
        let b = four.encode(v, None).unwrap();
        // Plane 0 of the multi-bit code is the 1-bit code (same rotation).
        assert_eq!(a.code[..], b.code[..1]);
        // ⟨ō, o⟩ grows with bits.
        assert!(b.factors[1] >= a.factors[1]);
        assert!(
            a.factors[1] > 0.7 && b.factors[1] > 0.97,
            "{:?} {:?}",
            a.factors,
            b.factors
        );
        let back = four.decode(&b.code, &b.factors, None).unwrap();
        let err: f32 = back.iter().zip(v).map(|(x, y)| (x - y) * (x - y)).sum();
        let norm: f32 = v.iter().map(|x| x * x).sum();
        assert!(err / norm < 0.03, "relative decode error {}", err / norm);
    }
    // A vector equal to the centroid has a zero residual.
    let e = one.encode(&data[..dim], Some(&data[..dim])).unwrap();
    assert_eq!(e.factors, [0.0, 1.0, 0.0]);
}
