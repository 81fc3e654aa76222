//! Checks every vector of `dreamdb-conformance/vectors/cbor.json` against
//! this crate, so the published vectors and the code cannot drift apart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use dreamdb_core::cbor::{
    check_canonical, decode_value, decode_value_lenient, diagnostic, encode_value, CanonicalRule,
};
use dreamdb_core::ContentHash;
use serde_json::Value as Json;

fn load() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dreamdb-conformance/vectors/cbor.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn conformance_vectors() {
    let file = load();
    assert_eq!(file["kind"], "cbor");
    assert!(file["spec"]
        .as_str()
        .unwrap()
        .starts_with("spec/0002-content-addressing.md §"));
    assert!(file["description"].is_string());
    let vectors = file["vectors"].as_array().unwrap();
    let mut names = HashSet::new();
    let mut classes = HashSet::new();
    let mut appendix_a = 0;
    for vector in vectors {
        let name = vector["name"].as_str().unwrap();
        assert!(names.insert(name), "duplicate name {name}");
        if name.starts_with("rfc8949-a-") {
            appendix_a += 1;
        }
        let bytes = hex::decode(vector["bytes"].as_str().unwrap()).unwrap();
        assert_eq!(
            ContentHash::of(&bytes).to_hex(),
            vector["bytes_hash"].as_str().unwrap(),
            "{name}: bytes_hash"
        );
        if vector["valid"].as_bool().unwrap() {
            let value = decode_value(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            check_canonical(&bytes).unwrap();
            assert_eq!(encode_value(&value).unwrap(), bytes, "{name}");
            assert_eq!(
                diagnostic(&value),
                vector["diagnostic"].as_str().unwrap(),
                "{name}"
            );
            let lenient = decode_value_lenient(&bytes).unwrap();
            assert_eq!(encode_value(&lenient).unwrap(), bytes, "{name}");
            assert!(vector.get("error").is_none(), "{name}");
        } else {
            let err = decode_value(&bytes).unwrap_err();
            let class = vector["error"].as_str().unwrap();
            classes.insert(class.to_owned());
            assert_eq!(err.class(), class, "{name}: {err}");
            assert_eq!(
                err.offset(),
                Some(vector["offset"].as_u64().unwrap() as usize),
                "{name}: {err}"
            );
            assert_eq!(check_canonical(&bytes), Err(err), "{name}");
            match (&vector["lenient_diagnostic"], decode_value_lenient(&bytes)) {
                (Json::String(expected), Ok(value)) => {
                    assert_eq!(&diagnostic(&value), expected, "{name}")
                }
                (Json::Null, Err(_)) => {}
                (expected, got) => panic!("{name}: lenient {got:?}, expected {expected}"),
            }
            assert!(vector.get("diagnostic").is_none(), "{name}");
        }
    }
    assert_eq!(appendix_a, 81, "every RFC 8949 Appendix A example");
    for rule in CanonicalRule::ALL {
        let class = format!("non-canonical:{}", rule.id());
        assert!(classes.contains(&class), "no vector for {class}");
    }
    for class in ["malformed", "truncated", "trailing-bytes", "too-deep"] {
        assert!(classes.contains(class), "no vector for {class}");
    }
}

#[test]
fn vectors_file_is_two_space_json() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dreamdb-conformance/vectors/cbor.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.starts_with("{\n  \"kind\": \"cbor\","));
    assert!(text.ends_with("}\n"));
}
