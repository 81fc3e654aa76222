//! Bad input gives typed errors, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dreamdb_protocol::spatial::ada_ivf::{overpopulated, underpopulated};
use dreamdb_protocol::spatial::imi::{ImiIndex, ImiParams};
use dreamdb_protocol::spatial::lsh::{LshIndex, LshParams};
use dreamdb_protocol::spatial::{
    IvfIndex, IvfParams, IvfStore, Metric, RaBitQ, SpatialError, SpatialIndex, VectorCompressor,
};

fn params(k: u32) -> IvfParams {
    IvfParams {
        metric: Metric::L2,
        k,
        seed: 1,
        iterations: 2,
        sample: None,
    }
}

fn grid(n: usize, dim: usize) -> Vec<f32> {
    (0..n * dim)
        .map(|i| ((i * 7919) % 101) as f32 / 10.0)
        .collect()
}

#[test]
fn typed_errors() {
    let data = grid(50, 4);
    let idx = IvfIndex::train(params(5), 4, &data).unwrap();

    let e = idx.assign_one(&[1.0, 2.0, 3.0]).unwrap_err();
    assert_eq!(
        e,
        SpatialError::WrongDimension {
            expected: 4,
            actual: 3
        }
    );
    assert_eq!(e.class(), "wrong-dimension");

    let e = idx.assign_one(&[1.0, f32::NAN, 3.0, 4.0]).unwrap_err();
    assert_eq!(
        e,
        SpatialError::NonFinite {
            vector: 0,
            component: 1
        }
    );
    let e = idx
        .assign(&[0.0, 0.0, 0.0, 0.0, 1.0, 2.0, f32::INFINITY, 0.0])
        .unwrap_err();
    assert_eq!(
        e,
        SpatialError::NonFinite {
            vector: 1,
            component: 2
        }
    );

    let e = IvfIndex::train(params(51), 4, &data).unwrap_err();
    assert_eq!(e, SpatialError::KExceedsN { k: 51, n: 50 });
    let e = IvfIndex::train(params(0), 4, &data).unwrap_err();
    assert_eq!(e, SpatialError::Zero { name: "k" });
    let e = IvfIndex::train(params(2), 4, &[]).unwrap_err();
    assert_eq!(e, SpatialError::EmptyTrainingSet);
    let e = IvfIndex::train(params(2), 0, &data).unwrap_err();
    assert_eq!(e, SpatialError::InvalidDimension(0));
    let e = IvfIndex::train(params(2), 3, &data[..7]).unwrap_err();
    assert_eq!(e.class(), "wrong-dimension");

    let e = idx.probe(&data[..4], 0).unwrap_err();
    assert_eq!(e, SpatialError::Zero { name: "nprobe" });

    let cosine = IvfParams {
        metric: Metric::Cosine,
        ..params(2)
    };
    let mut zeros = data.clone();
    zeros[8..12].fill(0.0);
    let e = IvfIndex::train(cosine, 4, &zeros).unwrap_err();
    assert_eq!(e, SpatialError::ZeroVector { vector: 2 });

    for bits in [0u8, 9] {
        let e = RaBitQ::new(VectorCompressor::rabitq(bits, 4, 0, Metric::L2)).unwrap_err();
        assert_eq!(
            e,
            SpatialError::OutOfRange {
                name: "bits",
                value: u64::from(bits),
                min: 1,
                max: 8
            }
        );
    }
    let mut other = VectorCompressor::rabitq(1, 4, 0, Metric::L2);
    other.algorithm = "dreamdb.pq".to_owned();
    assert_eq!(RaBitQ::new(other).unwrap_err().class(), "unknown-algorithm");
    let rq = RaBitQ::new(VectorCompressor::rabitq(2, 4, 0, Metric::L2)).unwrap();
    assert_eq!(
        rq.encode(&[1.0; 5], None).unwrap_err().class(),
        "wrong-dimension"
    );
    assert_eq!(
        rq.estimate(
            &rq.prepare_query(&[1.0; 4], None).unwrap(),
            &[0],
            &[0.0; 3],
            1.9
        )
        .unwrap_err()
        .class(),
        "length-mismatch"
    );

    let ids: Vec<u64> = (0..50).collect();
    let store = IvfStore::build(idx.clone(), Some(rq), &ids, &data, true).unwrap();
    assert_eq!(
        store.search(&data[..4], 0, 1, 1).unwrap_err(),
        SpatialError::Zero { name: "k" }
    );
    assert_eq!(
        store.search(&data[..4], 1, 0, 1).unwrap_err(),
        SpatialError::Zero { name: "nprobe" }
    );
    assert_eq!(
        store.search(&data[..3], 1, 1, 1).unwrap_err().class(),
        "wrong-dimension"
    );
    assert_eq!(
        IvfStore::build(idx.clone(), None, &ids[..3], &data, true)
            .unwrap_err()
            .class(),
        "length-mismatch"
    );

    let e = LshIndex::new(
        4,
        LshParams {
            tables: 0,
            bits: 8,
            seed: 0,
        },
    )
    .unwrap_err();
    assert_eq!(e, SpatialError::Zero { name: "tables" });
    let e = LshIndex::new(
        4,
        LshParams {
            tables: 1,
            bits: 25,
            seed: 0,
        },
    )
    .unwrap_err();
    assert_eq!(e.class(), "out-of-range");
    let lsh = LshIndex::new(
        4,
        LshParams {
            tables: 1,
            bits: 8,
            seed: 0,
        },
    )
    .unwrap();
    assert_eq!(
        lsh.keys(&[0.0; 4]).unwrap_err(),
        SpatialError::ZeroVector { vector: 0 }
    );

    let imi = ImiParams {
        k1: 60,
        k2: 2,
        seed: 0,
        iterations: 1,
        sample: None,
    };
    assert_eq!(
        ImiIndex::train(imi, 4, &data).unwrap_err(),
        SpatialError::KExceedsN { k: 60, n: 50 }
    );

    assert_eq!(
        overpopulated(&[1, 2], f64::NAN).unwrap_err().class(),
        "invalid-threshold"
    );
    assert_eq!(
        underpopulated(&[1, 2], -1.0).unwrap_err().class(),
        "invalid-threshold"
    );

    // Corrupt stored descriptions are refused, not trusted.
    assert_eq!(
        SpatialIndex::from_cbor(&[0xff]).unwrap_err().class(),
        "cbor"
    );
    assert_eq!(
        SpatialIndex::from_cbor(&[0xa0]).unwrap_err().class(),
        "malformed"
    );
    let mut desc = idx.description().clone();
    desc.roots = 99;
    assert_eq!(
        IvfIndex::from_description(desc).unwrap_err().class(),
        "malformed"
    );
    let mut desc = idx.description().clone();
    desc.algorithm = "dreamdb.ivf-cosine".to_owned();
    assert_eq!(
        IvfIndex::from_description(desc).unwrap_err().class(),
        "unknown-algorithm"
    );
    let mut desc = idx.description().clone();
    desc.centroids.pop();
    assert_eq!(
        IvfIndex::from_description(desc).unwrap_err().class(),
        "wrong-dimension"
    );
}
