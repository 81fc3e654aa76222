//! The in-suite byte fuzzer (always run, short) and regression inputs of the
//! cargo-fuzz targets in `fuzz/` (run them with `scripts/fuzz-smoke`).
//!
//! Every conformance vector's `bytes`, mutated (bit flips, truncations,
//! insertions, splices of two vectors) and as is, goes through the strict
//! CBOR decoder and every object decoder: no panic, and whatever is
//! accepted has one spelling (re-encodes to the input). Cases:
//! `DREAMDB_FUZZ_CASES` (default 20000).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use dreamdb_core::cbor;
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::{
    BlobSegment, CellStats, Fragment, Genesis, ItemManifest, Manifest, ObjectKind, RefObject,
    ScalarBucket, Schema, SpatialBucket, SpatialIndexObject, TombstoneList, VectorCompressorObject,
    VectorStorage,
};
use dreamdb_protocol::track::IndexPage;
use reliability_support::Rng;

/// Every `"bytes": "<hex>"` of the conformance vectors.
fn seeds() -> Vec<Vec<u8>> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dreamdb-conformance/vectors");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for part in text.split("\"bytes\": \"").skip(1) {
            let hex = &part[..part.find('"').unwrap()];
            if let Ok(bytes) = hex::decode(hex) {
                out.push(bytes);
            }
        }
    }
    assert!(out.len() > 200, "few seeds: {}", out.len());
    out
}

mod hex {
    pub fn decode(text: &str) -> Result<Vec<u8>, ()> {
        if !text.len().is_multiple_of(2) {
            return Err(());
        }
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| ()))
            .collect()
    }
}

fn check_kind<K: ObjectKind>(hash: &ContentHash, data: &[u8]) -> bool {
    match K::decode(hash, data) {
        Ok(object) => {
            let (bytes, again) = object.encode().unwrap_or_else(|e| {
                panic!(
                    "{} decoded but does not encode: {e} ({})",
                    K::KIND,
                    hex_of(data)
                )
            });
            assert_eq!(bytes, data, "{} round trip of {}", K::KIND, hex_of(data));
            assert_eq!(&again, hash);
            true
        }
        Err(_) => false,
    }
}

fn hex_of(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// One input through every decoder; returns how many accepted it.
fn check(data: &[u8]) -> usize {
    let mut accepted = 0;
    if let Ok(value) = cbor::decode_value(data) {
        accepted += 1;
        assert_eq!(
            cbor::encode_value(&value).unwrap(),
            data,
            "canonical round trip of {}",
            hex_of(data)
        );
    }
    let _ = cbor::decode_value_lenient(data);
    let hash = ContentHash::of(data);
    accepted += usize::from(check_kind::<Genesis>(&hash, data));
    accepted += usize::from(check_kind::<Schema>(&hash, data));
    accepted += usize::from(check_kind::<Manifest>(&hash, data));
    accepted += usize::from(check_kind::<SpatialIndexObject>(&hash, data));
    accepted += usize::from(check_kind::<VectorCompressorObject>(&hash, data));
    accepted += usize::from(check_kind::<SpatialBucket>(&hash, data));
    accepted += usize::from(check_kind::<VectorStorage>(&hash, data));
    accepted += usize::from(check_kind::<ScalarBucket>(&hash, data));
    accepted += usize::from(check_kind::<BlobSegment>(&hash, data));
    accepted += usize::from(check_kind::<Fragment>(&hash, data));
    accepted += usize::from(check_kind::<ItemManifest>(&hash, data));
    accepted += usize::from(check_kind::<TombstoneList>(&hash, data));
    accepted += usize::from(check_kind::<CellStats>(&hash, data));
    accepted += usize::from(check_kind::<RefObject>(&hash, data));
    if let Ok(page) = IndexPage::decode(data) {
        accepted += 1;
        assert_eq!(
            page.encode(),
            data,
            "index page round trip of {}",
            hex_of(data)
        );
    }
    accepted
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.range(0, seeds.len() as u64) as usize].clone();
    for _ in 0..rng.range(1, 4) {
        match rng.range(0, 5) {
            0 if !data.is_empty() => {
                let at = rng.range(0, data.len() as u64) as usize;
                data[at] ^= 1 << rng.range(0, 8);
            }
            1 if !data.is_empty() => {
                let at = rng.range(0, data.len() as u64) as usize;
                data.truncate(at);
            }
            2 => {
                let at = rng.range(0, data.len() as u64 + 1) as usize;
                data.insert(at, rng.next_u64() as u8);
            }
            3 if !data.is_empty() => {
                // A CBOR head byte with a huge argument.
                let at = rng.range(0, data.len() as u64) as usize;
                data[at] = [0x1b, 0x5b, 0x7b, 0x9b, 0xbb, 0xdb][rng.range(0, 6) as usize];
            }
            _ => {
                let other = &seeds[rng.range(0, seeds.len() as u64) as usize];
                let cut = rng.range(0, data.len() as u64 + 1) as usize;
                let from = rng.range(0, other.len() as u64 + 1) as usize;
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
        }
    }
    data
}

#[test]
fn mutated_conformance_vectors_never_panic_and_round_trip() {
    let cases: u64 = std::env::var("DREAMDB_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let seed = reliability_support::seed(0xF022);
    let seeds = seeds();
    let mut rng = Rng::new(seed);
    let mut accepted = 0;
    for seed_bytes in &seeds {
        accepted += check(seed_bytes);
    }
    for _ in 0..cases {
        accepted += check(&mutate(&mut rng, &seeds));
    }
    println!(
        "seed {seed}: {} vectors + {cases} mutants through 16 decoders, {accepted} acceptances \
         (all round-tripped)",
        seeds.len()
    );
}

/// Inputs the cargo-fuzz targets stopped on (harness findings, kept so the
/// properties stay checked in the normal suite).
#[test]
fn fuzz_regressions() {
    // cbor_decode: the canonical NaN decodes, round-trips, and is the only
    // NaN accepted (NaN != NaN, so compare encodings).
    let nan = [0xf9, 0x7e, 0x00];
    let v = cbor::decode_value(&nan).unwrap();
    assert_eq!(cbor::encode_value(&v).unwrap(), nan);
    for other in [
        &[0xf9, 0x7e, 0x01][..],
        &[0xfa, 0x7f, 0xc0, 0x00, 0x00][..],
        &[0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0][..],
    ] {
        assert!(cbor::decode_value(other).is_err(), "{}", hex_of(other));
    }
    // name_parse: multi-byte text split off a char boundary (harness bug);
    // the parsers refuse such names whole.
    assert!(dreamdb_core::ref_name::RefName::parse("aé/b").is_err());
    // Declared lengths far beyond the input allocate nothing.
    for huge in [
        &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
        &[0x9b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00][..],
        &[0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
    ] {
        assert!(cbor::decode_value(huge).is_err());
        assert_eq!(check(huge), 0);
    }
}
