//! Writes `dreamdb-conformance/vectors/spatial.json` (run with
//! `cargo test -p dreamdb-protocol --test spatial_vectors -- --ignored`)
//! and, in the normal run, checks that the committed file is exactly what
//! this implementation produces today.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write;
use std::path::PathBuf;

use dreamdb_core::random::DeterministicStream;
use dreamdb_core::ContentHash;
use dreamdb_protocol::spatial::bytes::{f32_to_bytes, u64_le};
use dreamdb_protocol::spatial::lsh::{LshIndex, LshParams};
use dreamdb_protocol::spatial::metric::{prepare, score_ref};
use dreamdb_protocol::spatial::rabitq::quantised::QuantisedQuery;
use dreamdb_protocol::spatial::rabitq::DEFAULT_EPSILON0;
use dreamdb_protocol::spatial::{IvfIndex, IvfParams, Metric, RaBitQ, VectorCompressor};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn normals(n: usize, seed: u64) -> Vec<f32> {
    let mut s = DeterministicStream::from_seed(seed, "dreamdb.conformance.spatial");
    (0..n).map(|_| s.next_f32_normal()).collect()
}

fn list(values: impl IntoIterator<Item = u64>) -> String {
    let items: Vec<String> = values.into_iter().map(|v| v.to_string()).collect();
    format!("[{}]", items.join(", "))
}

struct Out(Vec<String>);

impl Out {
    fn push(&mut self, name: &str, fields: &[(&str, String)]) {
        let mut s = format!("    {{\n      \"name\": \"{name}\"");
        for (k, v) in fields {
            let _ = write!(s, ",\n      \"{k}\": {v}");
        }
        s.push_str("\n    }");
        self.0.push(s);
    }
}

fn q(s: &str) -> String {
    format!("\"{s}\"")
}

fn bytes_fields(bytes: &[u8]) -> [(&'static str, String); 2] {
    [
        ("bytes", q(&hex(bytes))),
        ("bytes_hash", q(&ContentHash::of(bytes).to_hex())),
    ]
}

fn next_up(x: f32) -> f32 {
    if x >= 0.0 {
        f32::from_bits(x.to_bits() + 1)
    } else {
        f32::from_bits(x.to_bits() - 1)
    }
}

fn generate() -> String {
    let mut out = Out(Vec::new());

    // LSH keys and probes.
    for (dim, tables, bits, seed) in [(8usize, 2u32, 6u32, 1u64), (24, 3, 16, 2026)] {
        let lsh = LshIndex::new(dim, LshParams { tables, bits, seed }).unwrap();
        let inputs = normals(5 * dim, seed ^ 0x15);
        let mut keys = Vec::new();
        for v in inputs.chunks_exact(dim) {
            keys.extend(lsh.keys(v).unwrap().into_iter().map(u64::from));
        }
        let probe = lsh.probe(&inputs[..dim], 8).unwrap();
        let mut f: Vec<(&str, String)> = bytes_fields(&lsh.to_cbor().unwrap()).into();
        f.extend([
            ("type", q("lsh")),
            ("inputs", q(&hex(&f32_to_bytes(&inputs)))),
            ("keys", list(keys)),
            ("nprobe", "8".to_owned()),
            ("probe", list(probe.into_iter().map(u64::from))),
        ]);
        out.push(&format!("lsh-d{dim}-t{tables}-b{bits}"), &f);
    }

    // IVF assignment with exact and one-ulp ties.
    let c = [
        1.0f32,
        0.0,
        0.0,
        0.0, //
        0.0,
        1.0,
        0.0,
        0.0, //
        0.0,
        next_up(1.0),
        0.0,
        0.0, //
        0.5,
        0.5,
        0.5,
        0.5,
    ];
    let queries = [
        0.5f32, 0.5, 0.0, 0.0, // exact tie of cells 0 and 1: lowest id
        0.25, 0.75, 0.0, 0.0, // cells 1 and 2 one ulp apart
        0.0, 1.0, 0.0, 0.0, // on cell 1
        3.0, 3.0, 3.0, 3.0, // far along the diagonal
    ];
    let ivf = IvfIndex::from_centroids(Metric::L2, 4, c.to_vec()).unwrap();
    let cells: Vec<u64> = ivf
        .assign(&queries)
        .unwrap()
        .into_iter()
        .map(u64::from)
        .collect();
    let probes: Vec<u64> = queries
        .chunks_exact(4)
        .flat_map(|qv| ivf.probe(qv, 3).unwrap())
        .map(u64::from)
        .collect();
    let mut f: Vec<(&str, String)> = bytes_fields(&ivf.to_cbor().unwrap()).into();
    f.extend([
        ("type", q("ivf-assign")),
        ("queries", q(&hex(&f32_to_bytes(&queries)))),
        ("cells", list(cells)),
        ("nprobe", "3".to_owned()),
        ("probes", list(probes)),
    ]);
    out.push("ivf-l2-ties", &f);

    // Near ties found by search: random centroids one ulp apart in one
    // component, for every metric.
    for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
        let dim = 16;
        let mut s = DeterministicStream::from_seed(77, "dreamdb.conformance.ties");
        let base: Vec<f32> = (0..dim).map(|_| s.next_f32_normal()).collect();
        let mut cents = Vec::new();
        for j in 0..6 {
            let mut row = base.clone();
            if j > 0 {
                let i = s.below(dim as u64).unwrap() as usize;
                row[i] = next_up(row[i]);
            }
            cents.extend(row);
        }
        let mut qs = Vec::new();
        let mut ties = 0;
        while qs.len() < 8 * dim {
            let qv: Vec<f32> = (0..dim).map(|_| s.next_f32_normal()).collect();
            let p = prepare(metric, &qv, 0).unwrap();
            let scores: Vec<f32> = cents
                .chunks_exact(dim)
                .map(|r| score_ref(metric, &p, r))
                .collect();
            let mut sorted = scores.clone();
            sorted.sort_by(f32::total_cmp);
            if sorted[0] == sorted[1] || next_up(sorted[0]) == sorted[1] {
                ties += 1;
            }
            qs.extend(qv);
        }
        assert!(ties > 0, "the near-tie vector must contain ties");
        let ivf = IvfIndex::from_centroids(metric, dim, cents).unwrap();
        let cells: Vec<u64> = ivf
            .assign(&qs)
            .unwrap()
            .into_iter()
            .map(u64::from)
            .collect();
        assert_eq!(ivf.assign_reference(&qs).unwrap(), ivf.assign(&qs).unwrap());
        let mut f: Vec<(&str, String)> = bytes_fields(&ivf.to_cbor().unwrap()).into();
        f.extend([
            ("type", q("ivf-assign")),
            ("queries", q(&hex(&f32_to_bytes(&qs)))),
            ("cells", list(cells)),
        ]);
        out.push(&format!("ivf-{}-ulp-ties", metric.name()), &f);
    }

    // RaBitQ codes and factors.
    for (bits, metric) in [
        (1u8, Metric::L2),
        (4, Metric::L2),
        (4, Metric::Cosine),
        (2, Metric::InnerProduct),
    ] {
        let dim = 20u32;
        let rq = RaBitQ::new(VectorCompressor::rabitq(bits, dim, 42, metric)).unwrap();
        let inputs = normals(4 * dim as usize, 9);
        let centroid = prepare(metric, &normals(dim as usize, 10), 0).unwrap();
        let (codes, factors) = rq.encode_batch(&inputs, Some(&centroid)).unwrap();
        let mut f: Vec<(&str, String)> = bytes_fields(&u64_le::to_bytes(&codes)).into();
        f.extend([
            ("type", q("rabitq")),
            ("compressor", q(&hex(&rq.description().to_cbor().unwrap()))),
            ("centroid", q(&hex(&f32_to_bytes(&centroid)))),
            ("inputs", q(&hex(&f32_to_bytes(&inputs)))),
            ("factors", q(&hex(&f32_to_bytes(&factors)))),
        ]);
        out.push(&format!("rabitq-{bits}bit-{}", metric.name()), &f);
    }

    // The quantised query of the fast estimator (spec 0010 §5.1): levels,
    // scale, and each input's estimated distance and bound.
    for (bits, metric) in [(1u8, Metric::L2), (4, Metric::Cosine)] {
        let dim = 20u32;
        let rq = RaBitQ::new(VectorCompressor::rabitq(bits, dim, 42, metric)).unwrap();
        let inputs = normals(4 * dim as usize, 9);
        let centroid = prepare(metric, &normals(dim as usize, 10), 0).unwrap();
        let query = normals(dim as usize, 12);
        let (codes, factors) = rq.encode_batch(&inputs, Some(&centroid)).unwrap();
        let p = prepare(metric, &query, 0).unwrap();
        let mut rotated = Vec::new();
        rq.rotate_into(&p, &mut rotated);
        let rc = rq.rotation().apply(&centroid);
        let mut qq = QuantisedQuery::new();
        rq.quantise_query(
            &p,
            &rotated,
            Some((&centroid, &rc)),
            &mut Vec::new(),
            &mut qq,
        );
        let (lo, delta) = qq.scale();
        let mut distances = Vec::new();
        let mut bounds = Vec::new();
        let wpv = rq.words_per_vector();
        for (code, f) in codes.chunks_exact(wpv).zip(factors.chunks_exact(3)) {
            let e = rq.fast_estimate(&qq, code, f, DEFAULT_EPSILON0);
            distances.push(e.distance);
            bounds.push(e.bound);
        }
        let mut f: Vec<(&str, String)> = bytes_fields(&qq.levels()).into();
        f.extend([
            ("type", q("rabitq-query")),
            ("compressor", q(&hex(&rq.description().to_cbor().unwrap()))),
            ("centroid", q(&hex(&f32_to_bytes(&centroid)))),
            ("inputs", q(&hex(&f32_to_bytes(&inputs)))),
            ("query", q(&hex(&f32_to_bytes(&query)))),
            ("scale", q(&hex(&f32_to_bytes(&[lo, delta])))),
            ("distances", q(&hex(&f32_to_bytes(&distances)))),
            ("bounds", q(&hex(&f32_to_bytes(&bounds)))),
        ]);
        out.push(&format!("rabitq-query-{bits}bit-{}", metric.name()), &f);
    }

    // A trained SpatialIndex: same input + seed ⇒ these bytes and hash.
    let train = normals(64 * 4, 11);
    let params = IvfParams {
        metric: Metric::Cosine,
        k: 4,
        seed: 7,
        iterations: 3,
        sample: Some(48),
    };
    let ivf = IvfIndex::train(params, 4, &train).unwrap();
    let mut f: Vec<(&str, String)> = bytes_fields(&ivf.to_cbor().unwrap()).into();
    f.extend([
        ("type", q("ivf-train")),
        ("dim", "4".to_owned()),
        ("training", q(&hex(&f32_to_bytes(&train)))),
        ("metric", q("cosine")),
        ("k", "4".to_owned()),
        ("seed", "7".to_owned()),
        ("iterations", "3".to_owned()),
        ("sample", "48".to_owned()),
    ]);
    out.push("ivf-cosine-trained", &f);

    format!(
        "{{\n  \"kind\": \"spatial\",\n  \"spec\": \"spec/0004-spatial-indexing.md, spec/0010-vector-compression.md\",\n  \
         \"description\": \"Spatial keys and codes by the scalar reference path. f32 arrays are little-endian hex, row-major. \
lsh: bytes = LshDescription CBOR; keys = every table's cell id (t*2^bits + key) per input row; probe = the first nprobe multi-probe cells of input 0. \
ivf-assign: bytes = IvfDescription CBOR (centroids inside); cells = the cell of each query (ties to the lowest id, including one-ulp near ties); probes = nprobe nearest cells per query, concatenated. \
rabitq: compressor = VectorCompressor CBOR; bytes = the codes of each input encoded against centroid (LE u64 bit planes, MSB plane first); factors = [r, rho, s] per input. \
rabitq-query: the fast estimator of spec 0010 section 5.1 for the prepared query against centroid: bytes = the 4-bit quantised query levels (one byte per padded coordinate); scale = [lo, delta]; distances and bounds = each input's estimate (epsilon0 = 1.9). \
ivf-train: bytes = the IvfDescription produced by training on `training` with the given parameters: same input + seed, same bytes and hash.\",\n  \
         \"vectors\": [\n{}\n  ]\n}}\n",
        out.0.join(",\n")
    )
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dreamdb-conformance/vectors/spatial.json")
}

#[test]
#[ignore = "writes the conformance file"]
fn regenerate_spatial_vectors() {
    std::fs::write(path(), generate()).unwrap();
}

#[test]
fn committed_spatial_vectors_are_current() {
    let committed = std::fs::read_to_string(path()).unwrap();
    assert!(
        committed == generate(),
        "spatial.json differs: rerun with --ignored"
    );
}
