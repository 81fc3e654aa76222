//! IVF-flat equals exact search restricted to the probed cells; probing,
//! LSH multi-probe, IMI, flat and the SpatialIndex encoding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use dreamdb_core::random::DeterministicStream;
use dreamdb_protocol::spatial::flat::FlatIndex;
use dreamdb_protocol::spatial::imi::{ImiIndex, ImiParams};
use dreamdb_protocol::spatial::lsh::{LshIndex, LshParams};
use dreamdb_protocol::spatial::{
    sqrt_guidance, IvfIndex, IvfParams, IvfStore, Metric, SpatialIndex,
};

fn random(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut s = DeterministicStream::from_seed(seed, "test.indexes");
    (0..n * dim).map(|_| s.next_f32_normal()).collect()
}

#[test]
fn ivf_flat_equals_exact_search_in_probed_cells() {
    let dim = 24;
    let data = random(5_000, dim, 1);
    let queries = random(40, dim, 2);
    for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
        let params = IvfParams {
            metric,
            k: 50,
            seed: 1,
            iterations: 5,
            sample: None,
        };
        let index = IvfIndex::train(params, dim, &data).unwrap();
        let ids: Vec<u64> = (0..5_000u64).map(|i| i * 3 + 1).collect();
        let cells = index.assign(&data).unwrap();
        let store = IvfStore::build(index.clone(), None, &ids, &data, false).unwrap();
        for q in queries.chunks_exact(dim) {
            for nprobe in [1, 3, 10] {
                let probed: HashSet<u32> = index.probe(q, nprobe).unwrap().into_iter().collect();
                assert_eq!(probed.len(), nprobe);
                let mut exact: Vec<(f32, u64)> = data
                    .chunks_exact(dim)
                    .enumerate()
                    .filter(|(i, _)| probed.contains(&cells[*i]))
                    .map(|(i, r)| (metric.distance(q, r), ids[i]))
                    .collect();
                exact.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let want: Vec<u64> = exact.iter().take(10).map(|x| x.1).collect();
                let got: Vec<u64> = store
                    .search(q, 10, nprobe, 0)
                    .unwrap()
                    .iter()
                    .map(|x| x.0)
                    .collect();
                assert_eq!(got, want, "{metric:?} nprobe {nprobe}");
            }
        }
    }
}

#[test]
fn probe_is_nearest_first_and_covers_assignment() {
    let dim = 8;
    let data = random(2_000, dim, 3);
    let index = IvfIndex::train(
        IvfParams {
            metric: Metric::L2,
            k: 30,
            seed: 2,
            iterations: 4,
            sample: Some(1_000),
        },
        dim,
        &data,
    )
    .unwrap();
    for v in data.chunks_exact(dim).take(200) {
        let cell = index.assign_one(v).unwrap();
        assert_eq!(index.probe(v, 1).unwrap(), vec![cell]);
        let all = index.probe(v, 1_000).unwrap();
        assert_eq!(all.len(), 30);
    }
    let g = sqrt_guidance(10_000);
    assert_eq!((g.sqrt_n, g.k_max), (100.0, 200));
}

#[test]
fn lsh_keys_and_multiprobe() {
    let dim = 32;
    let lsh = LshIndex::new(
        dim,
        LshParams {
            tables: 2,
            bits: 12,
            seed: 9,
        },
    )
    .unwrap();
    let data = random(300, dim, 4);
    let mut hits = 0;
    for v in data.chunks_exact(dim) {
        let keys = lsh.keys(v).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys[0] < 1 << 12 && keys[1] >> 12 == 1);
        // Scaling does not change a cosine key.
        let scaled: Vec<f32> = v.iter().map(|x| x * 4.0).collect();
        assert_eq!(lsh.keys(&scaled).unwrap(), keys);
        let probes = lsh.probe(v, 40).unwrap();
        assert_eq!(&probes[..2], &keys[..]);
        assert_eq!(probes.iter().collect::<HashSet<_>>().len(), 40);
        // A slightly perturbed vector is found within the probe sequence.
        let near: Vec<f32> = v
            .iter()
            .enumerate()
            .map(|(i, x)| x + 0.05 * ((i % 3) as f32 - 1.0))
            .collect();
        let nk = lsh.keys(&near).unwrap();
        if probes.contains(&nk[0]) || probes.contains(&nk[1]) {
            hits += 1;
        }
    }
    assert!(hits > 280, "multi-probe found {hits}/300 neighbours");
    let back = SpatialIndex::from_cbor(&lsh.to_cbor().unwrap()).unwrap();
    assert_eq!(back.hash().unwrap(), lsh.hash().unwrap());
    assert_eq!(
        back.assign_one(&data[..dim]).unwrap(),
        lsh.assign_one(&data[..dim]).unwrap()
    );
}

#[test]
fn imi_cells_and_multisequence_probe() {
    let dim = 16;
    let data = random(3_000, dim, 5);
    let imi = ImiIndex::train(
        ImiParams {
            k1: 8,
            k2: 6,
            seed: 1,
            iterations: 5,
            sample: None,
        },
        dim,
        &data,
    )
    .unwrap();
    assert_eq!(imi.cell_count(), 48);
    let mut used = HashSet::new();
    for v in data.chunks_exact(dim).take(500) {
        let c = imi.assign_one(v).unwrap();
        assert!(c < 48);
        used.insert(c);
        let probes = imi.probe(v, 10).unwrap();
        assert_eq!(probes[0], c, "the own cell is probed first");
        assert_eq!(probes.iter().collect::<HashSet<_>>().len(), 10);
        assert_eq!(imi.probe(v, 100).unwrap().len(), 48);
    }
    assert!(used.len() > 30);
    let back = SpatialIndex::from_cbor(&imi.to_cbor().unwrap()).unwrap();
    assert_eq!(back.algorithm(), "dreamdb.imi-cosine");
    assert_eq!(back.hash().unwrap(), imi.hash().unwrap());
}

#[test]
fn flat_and_spatial_index_roundtrip() {
    let flat = FlatIndex::new(5, Metric::L2).unwrap();
    assert_eq!(flat.assign_one(&[1.0; 5]).unwrap(), 0);
    assert_eq!(flat.probe(&[1.0; 5], 9).unwrap(), vec![0]);
    let back = SpatialIndex::from_cbor(&flat.to_cbor().unwrap()).unwrap();
    assert_eq!(back.algorithm(), "dreamdb.flat");
    let data = random(500, 6, 6);
    let ivf = IvfIndex::train(
        IvfParams {
            metric: Metric::InnerProduct,
            k: 7,
            seed: 3,
            iterations: 3,
            sample: None,
        },
        6,
        &data,
    )
    .unwrap();
    let si = SpatialIndex::from_cbor(&ivf.to_cbor().unwrap()).unwrap();
    assert_eq!(si.algorithm(), "dreamdb.ivf-ip");
    assert_eq!(si.hash().unwrap(), ivf.hash().unwrap());
    for v in data.chunks_exact(6).take(50) {
        assert_eq!(si.assign_one(v).unwrap(), ivf.assign_one(v).unwrap());
        assert_eq!(si.probe(v, 3).unwrap(), ivf.probe(v, 3).unwrap());
    }
}
