//! Checks the modality-tag vectors of
//! `dreamdb-conformance/vectors/names.json` against
//! `dreamdb_core::modality`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dreamdb_core::modality::ModalityTag;
use serde_json::Value;

#[test]
fn modality_vectors_hold() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dreamdb-conformance/vectors/names.json"
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(json["kind"], "names");
    let mut checked = 0;
    for v in json["vectors"].as_array().unwrap() {
        let Some(text) = v.get("modality") else {
            continue;
        };
        let name = v["name"].as_str().unwrap();
        let text = text.as_str().unwrap();
        let parsed = ModalityTag::parse(text);
        if v["valid"].as_bool().unwrap() {
            let tag = parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(tag.as_str(), text, "{name}");
            assert_eq!(v["builtin"], tag.is_builtin(), "{name}");
        } else {
            let err = parsed.expect_err(name);
            assert_eq!(v["error"], err.class(), "{name}: {err}");
        }
        checked += 1;
    }
    assert!(checked > 0);
}
