//! Checks every vector of `dreamdb-conformance/vectors/time.json` against
//! `dreamdb_core::time`, so the vector file and the code cannot drift apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use dreamdb_core::time::{Genesis, Ticks, TimeAnchor};
use dreamdb_core::ContentHash;
use serde_json::Value;

fn load(file: &str, kind: &str) -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dreamdb-conformance/vectors/"
    );
    let text = std::fs::read_to_string(format!("{path}{file}")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["kind"], kind);
    assert!(json["spec"].as_str().unwrap().starts_with("spec/"));
    assert!(!json["description"].as_str().unwrap().is_empty());
    let vectors = json["vectors"].as_array().unwrap().clone();
    assert!(!vectors.is_empty());
    let mut names = BTreeSet::new();
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        assert!(
            names.insert(name.to_owned()),
            "duplicate vector name {name}"
        );
        match (v.get("bytes"), v.get("bytes_hash")) {
            (None, None) => {}
            (Some(bytes), Some(hash)) => {
                let bytes = bytes.as_str().unwrap();
                assert_eq!(
                    bytes,
                    bytes.to_lowercase(),
                    "{name}: bytes must be lowercase hex"
                );
                let actual = ContentHash::of(&hex::decode(bytes).unwrap()).to_hex();
                assert_eq!(hash.as_str().unwrap(), actual, "{name}: bytes_hash");
            }
            _ => panic!("{name}: bytes and bytes_hash must come together"),
        }
    }
    vectors
}

fn u64_field(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{}: {field} must be a u64 integer", v["name"]))
}

#[test]
fn time_vectors_hold() {
    let vectors = load("time.json", "time");
    let mut checked = 0;
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        let error = v.get("error").map(|e| e.as_str().unwrap());
        if let Some(hex_text) = v.get("hex") {
            // Anchor text and CBOR forms.
            let anchor = TimeAnchor::new(u64_field(v, "anchor"));
            let hex_text = hex_text.as_str().unwrap();
            assert_eq!(anchor.to_hex(), hex_text, "{name}");
            assert_eq!(TimeAnchor::from_hex(hex_text).unwrap(), anchor, "{name}");
            let bytes = hex::decode(v["bytes"].as_str().unwrap()).unwrap();
            let encoded = dreamdb_core::cbor::to_vec(&anchor).unwrap();
            assert_eq!(encoded, bytes, "{name}: canonical CBOR");
            let decoded: TimeAnchor = dreamdb_core::cbor::from_slice(&bytes).unwrap();
            assert_eq!(decoded, anchor, "{name}: strict CBOR decode");
        } else if let Some(duration) = v.get("duration") {
            let parsed = Ticks::parse(duration.as_str().unwrap());
            match error {
                None => {
                    let ticks = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert_eq!(ticks.as_nanos(), u64_field(v, "nanos"), "{name}");
                    assert_eq!(Ticks::parse(&ticks.to_string()).unwrap(), ticks, "{name}");
                }
                Some(class) => assert_eq!(parsed.unwrap_err().class(), class, "{name}"),
            }
        } else if v.get("genesis_unix_nanos").is_some() {
            let genesis = Genesis::new(u64_field(v, "genesis_unix_nanos"));
            let unix = u64_field(v, "unix_nanos");
            let result = genesis.anchor_from_unix_nanos(unix);
            match error {
                None => {
                    let anchor = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert_eq!(anchor.as_nanos(), u64_field(v, "anchor"), "{name}");
                    assert_eq!(genesis.unix_nanos_from_anchor(anchor).unwrap(), unix);
                }
                Some(class) => assert_eq!(result.unwrap_err().class(), class, "{name}"),
            }
        } else if v.get("add").is_some() {
            let anchor = TimeAnchor::new(u64_field(v, "anchor"));
            let result = anchor.checked_add(Ticks::from_nanos(u64_field(v, "add")));
            match error {
                None => assert_eq!(
                    result.unwrap_or_else(|e| panic!("{name}: {e}")).as_nanos(),
                    u64_field(v, "result"),
                    "{name}"
                ),
                Some(class) => assert_eq!(result.unwrap_err().class(), class, "{name}"),
            }
        } else {
            panic!("{name}: unknown vector shape");
        }
        checked += 1;
    }
    assert_eq!(checked, vectors.len());
}
