//! Checks the ref-name vectors of `dreamdb-conformance/vectors/names.json`
//! against `dreamdb_core::ref_name` (the modality vectors of the same file
//! are checked in `modality_vectors.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use dreamdb_core::ref_name::RefName;
use serde_json::Value;

#[test]
fn names_file_is_well_formed_and_ref_vectors_hold() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dreamdb-conformance/vectors/names.json"
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(json["kind"], "names");
    let vectors = json["vectors"].as_array().unwrap();
    let mut names = BTreeSet::new();
    let mut refs = 0;
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        assert!(names.insert(name), "duplicate vector name {name}");
        assert!(
            v.get("bytes").is_none(),
            "{name}: name vectors carry no bytes"
        );
        assert!(
            v.get("ref_name").is_some() != v.get("modality").is_some(),
            "{name}: exactly one of ref_name / modality"
        );
        let Some(text) = v.get("ref_name") else {
            continue;
        };
        refs += 1;
        let text = text.as_str().unwrap();
        let parsed = RefName::parse(text);
        if v["valid"].as_bool().unwrap() {
            assert_eq!(
                parsed.unwrap_or_else(|e| panic!("{name}: {e}")).as_str(),
                text
            );
        } else {
            let err = parsed.expect_err(name);
            assert_eq!(v["error"], err.class(), "{name}: {err}");
        }
    }
    assert!(refs > 0);
}
