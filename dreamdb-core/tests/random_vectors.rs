//! Checks every vector of `dreamdb-conformance/vectors/random.json` against
//! `dreamdb_core::random`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use dreamdb_core::random::DeterministicStream;
use dreamdb_core::ContentHash;
use serde_json::Value;

fn hex_field<const N: usize>(v: &Value, field: &str) -> [u8; N] {
    hex::decode(v[field].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap_or_else(|_| panic!("{}: {field} must be {N} bytes", v["name"]))
}

fn u32_list(v: &Value, field: &str) -> Vec<u32> {
    v[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| u32::try_from(x.as_u64().unwrap()).unwrap())
        .collect()
}

#[test]
fn random_vectors_hold() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dreamdb-conformance/vectors/random.json"
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(json["kind"], "random");
    let vectors = json["vectors"].as_array().unwrap();
    let mut names = BTreeSet::new();
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        assert!(names.insert(name), "duplicate vector name {name}");
        if v.get("key").is_some() {
            let bytes_hex = v["bytes"].as_str().unwrap();
            assert_eq!(bytes_hex, bytes_hex.to_lowercase(), "{name}");
            let expected = hex::decode(bytes_hex).unwrap();
            assert_eq!(
                v["bytes_hash"],
                ContentHash::of(&expected).to_hex().as_str(),
                "{name}: bytes_hash"
            );
            let counter = u32::try_from(v["counter"].as_u64().unwrap()).unwrap();
            let mut stream =
                DeterministicStream::from_key(hex_field(v, "key"), hex_field(v, "nonce"), counter);
            let mut keystream = vec![0u8; expected.len()];
            stream.fill_bytes(&mut keystream);
            assert_eq!(keystream, expected, "{name}");
            if let (Some(p), Some(c)) = (v.get("plaintext"), v.get("ciphertext")) {
                let p = hex::decode(p.as_str().unwrap()).unwrap();
                let c = hex::decode(c.as_str().unwrap()).unwrap();
                let xored: Vec<u8> = p.iter().zip(&keystream).map(|(a, b)| a ^ b).collect();
                assert_eq!(xored, c, "{name}: plaintext XOR keystream");
            }
        } else {
            assert!(v.get("bytes").is_none(), "{name}");
            let seed = v["seed"].as_u64().unwrap();
            let mut s = DeterministicStream::from_seed(seed, v["domain"].as_str().unwrap());
            let u32s = u32_list(v, "u32");
            let units = u32_list(v, "f32_unit_bits");
            let normals = u32_list(v, "f32_normal_bits");
            let got: Vec<u32> = u32s.iter().map(|_| s.next_u32()).collect();
            assert_eq!(got, u32s, "{name}: u32");
            let got: Vec<u32> = units.iter().map(|_| s.next_f32_unit().to_bits()).collect();
            assert_eq!(got, units, "{name}: f32_unit_bits");
            let got: Vec<u32> = normals
                .iter()
                .map(|_| s.next_f32_normal().to_bits())
                .collect();
            assert_eq!(got, normals, "{name}: f32_normal_bits");
        }
    }
}
