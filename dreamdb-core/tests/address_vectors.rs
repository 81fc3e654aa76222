//! Checks every vector of `dreamdb-conformance/vectors/address.json`
//! against `dreamdb_core::address`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use dreamdb_core::address::{Address, AddressTarget};
use serde_json::Value;

#[test]
fn address_vectors_hold() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dreamdb-conformance/vectors/address.json"
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(json["kind"], "address");
    let vectors = json["vectors"].as_array().unwrap();
    assert!(!vectors.is_empty());
    let mut names = BTreeSet::new();
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        assert!(names.insert(name), "duplicate vector name {name}");
        assert!(
            v.get("bytes").is_none(),
            "{name}: address vectors carry no bytes"
        );
        let text = v["text"].as_str().unwrap();
        let parsed = Address::parse(text);
        if v["valid"].as_bool().unwrap() {
            let address = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(address.to_string(), text, "{name}: round trip");
            let (kind, value) = match address.target() {
                AddressTarget::Object(h) => ("object", h.to_hex()),
                AddressTarget::Ref(r) => ("ref", r.to_string()),
                AddressTarget::Tag(r) => ("tag", r.to_string()),
            };
            assert_eq!(v["target"], kind, "{name}");
            assert_eq!(v["value"], value.as_str(), "{name}");
            let span = address.bytes().map(|s| (s.start(), s.end()));
            let expected = match (v.get("bytes_start"), v.get("bytes_end")) {
                (None, None) => None,
                (Some(s), Some(e)) => Some((s.as_u64().unwrap(), e.as_u64().unwrap())),
                _ => panic!("{name}: bytes_start and bytes_end come together"),
            };
            assert_eq!(span, expected, "{name}");
        } else {
            let err = parsed.expect_err(name);
            assert_eq!(v["error"], err.class(), "{name}: {err}");
        }
    }
}
