//! Storage keys of objects, refs and tags (design 0001 § Storage layout).
//!
//! ```text
//! objects/<2 hex of the digest>/<66-hex content hash>   immutable, shared by all datasets
//! datasets/<dataset>/refs/<ref-name>                    Ref objects, moved by CAS
//! datasets/<dataset>/tags/<tag-name>                    Ref objects, create-once
//! ```
//!
//! Nothing else is ever in a key: not kind, modality, time or cell.

use dreamdb_connector::ObjectKey;
use dreamdb_core::ref_name::RefName;
use dreamdb_core::ContentHash;

use super::common::DatasetName;

/// Builds a key from parts that are valid by construction (a hash's hex
/// form, a [`DatasetName`], a [`RefName`]); those grammars are subsets of
/// the connector's key grammar and together stay far below its length
/// limit, so this cannot fail.
#[expect(
    clippy::expect_used,
    reason = "parts are validated types whose grammars are subsets of the key grammar"
)]
fn key(text: String) -> ObjectKey {
    ObjectKey::new(text).expect("validated parts always form a valid key")
}

/// The key of the immutable object named `hash`:
/// `objects/<first two hex digits of the digest>/<66-character hex>`.
pub fn object_key(hash: &ContentHash) -> ObjectKey {
    let hex = hash.to_hex();
    // The fan-out directory uses the digest's first byte (hex digits 2..4),
    // not the constant multihash code `1e`.
    let fan_out = hex.get(2..4).unwrap_or("00").to_owned();
    key(format!("objects/{fan_out}/{hex}"))
}

/// The key of branch `name` of `dataset`: `datasets/<dataset>/refs/<name>`.
pub fn ref_key(dataset: &DatasetName, name: &RefName) -> ObjectKey {
    key(format!("datasets/{dataset}/refs/{name}"))
}

/// The key of tag `name` of `dataset`: `datasets/<dataset>/tags/<name>`.
pub fn tag_key(dataset: &DatasetName, name: &RefName) -> ObjectKey {
    key(format!("datasets/{dataset}/tags/{name}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_object_key_matches_spec_example() {
        assert_eq!(
            object_key(&ContentHash::EMPTY).as_str(),
            "objects/af/1eaf1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }

    #[test]
    fn ref_and_tag_keys() {
        let dataset = DatasetName::parse("imagenet-1k").unwrap();
        let name = RefName::parse("sweep/run-001").unwrap();
        assert_eq!(
            ref_key(&dataset, &name).as_str(),
            "datasets/imagenet-1k/refs/sweep/run-001"
        );
        assert_eq!(
            tag_key(&dataset, &name).as_str(),
            "datasets/imagenet-1k/tags/sweep/run-001"
        );
    }

    #[test]
    fn dataset_names_are_single_safe_segments() {
        for bad in ["", "a/b", "..", ".a", "a.", "a b", "x.lock", "é"] {
            assert!(DatasetName::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "imagenet-1k", "v1.0", "A_b"] {
            assert!(DatasetName::parse(good).is_ok(), "{good:?} refused");
        }
    }
}
