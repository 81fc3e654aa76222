//! Property tests: the proved fast argmin always equals the scalar
//! reference; stored descriptions round-trip through canonical CBOR.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dreamdb_protocol::spatial::metric::{norm_f64, prepare, CentroidSet};
use dreamdb_protocol::spatial::{IvfIndex, Metric, RaBitQ, VectorCompressor};
use proptest::prelude::*;

fn metric() -> impl Strategy<Value = Metric> {
    prop_oneof![
        Just(Metric::L2),
        Just(Metric::Cosine),
        Just(Metric::InnerProduct)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fast_argmin_is_reference(
        metric in metric(),
        dim in 1usize..40,
        k in 1usize..12,
        seed in prop::collection::vec(-4.0f32..4.0, 40 * 13),
        dup in 0usize..12,
    ) {
        let q: Vec<f32> = seed[..dim].to_vec();
        prop_assume!(q.iter().any(|x| *x != 0.0));
        let mut cents: Vec<f32> = seed[dim..dim + k * dim].to_vec();
        // Duplicate a centroid to force exact ties.
        if dup < k && k > 1 {
            let row = cents[dup * dim..(dup + 1) * dim].to_vec();
            cents[(k - 1) * dim..].copy_from_slice(&row);
        }
        let set = CentroidSet::new(metric, dim, cents);
        let qp = prepare(metric, &q, 0).unwrap();
        let reference = set.argmin_range_ref(&qp, 0, k);
        prop_assert_eq!(set.argmin_range(&qp, norm_f64(&qp), 0, k), reference);
        // The block path, with the query beside three others.
        let others: Vec<Vec<f32>> = (1..4)
            .map(|j| prepare(metric, &seed[j..j + dim], j).unwrap_or_else(|_| qp.clone()))
            .collect();
        let qs = [&qp[..], &others[0][..], &others[1][..], &others[2][..]];
        let block = set.argmin_range_block(qs, qs.map(norm_f64), 0, k);
        for (q, found) in qs.iter().zip(block) {
            prop_assert_eq!(found, set.argmin_range_ref(q, 0, k));
        }
    }

    #[test]
    fn ivf_description_roundtrips(
        metric in metric(),
        dim in 1usize..8,
        k in 1usize..6,
        values in prop::collection::vec(-10.0f32..10.0, 48),
    ) {
        let idx = IvfIndex::from_centroids(metric, dim, values[..k * dim].to_vec()).unwrap();
        let bytes = idx.to_cbor().unwrap();
        let back = IvfIndex::from_cbor(&bytes).unwrap();
        prop_assert_eq!(back.to_cbor().unwrap(), bytes);
    }

    #[test]
    fn rabitq_codes_have_the_declared_size(bits in 1u8..=8, dim in 1u32..200, seed: u64) {
        let rq = RaBitQ::new(VectorCompressor::rabitq(bits, dim, seed, Metric::L2)).unwrap();
        let v: Vec<f32> = (0..dim).map(|i| (i as f32).sin()).collect();
        let e = rq.encode(&v, None).unwrap();
        prop_assert_eq!(e.code.len(), rq.words_per_vector());
        prop_assert!(e.factors.iter().all(|f| f.is_finite()));
        let back = RaBitQ::from_cbor(&rq.description().to_cbor().unwrap()).unwrap();
        prop_assert_eq!(back.encode(&v, None).unwrap(), e);
    }
}
