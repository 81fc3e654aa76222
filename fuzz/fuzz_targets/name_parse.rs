//! Ref/tag names, dataset names and modality tags: never panic; a valid
//! name round-trips, and the storage keys built from valid names are valid
//! keys that stay under `datasets/<dataset>/refs|tags/` (no `..`, no
//! absolute path: a name cannot escape the backend root).
#![no_main]

use dreamdb_connector::ObjectKey;
use dreamdb_core::modality::ModalityTag;
use dreamdb_core::ref_name::RefName;
use dreamdb_protocol::objects::{ref_key, tag_key, DatasetName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tag) = ModalityTag::parse(text) {
        assert_eq!(tag.as_str(), text);
        assert_eq!(tag.to_string(), text);
    }
    let name = RefName::parse(text);
    if let Ok(name) = &name {
        assert_eq!(name.as_str(), text);
        assert!(name
            .segments()
            .all(|s| s != ".." && s != "." && !s.is_empty()));
        let _ = name.matches_glob("*");
    }
    let dataset = DatasetName::parse(text);
    if let Ok(d) = &dataset {
        assert!(!d.as_str().contains('/'));
    }
    // Split the input in two to pair a dataset with a ref name.
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let (left, right) = text.split_at(mid);
    let pair = (
        DatasetName::parse(left).or_else(|_| dataset.clone()),
        RefName::parse(right).or_else(|_| name.clone()),
    );
    if let (Ok(d), Ok(n)) = pair {
        for (key, dir) in [(ref_key(&d, &n), "refs"), (tag_key(&d, &n), "tags")] {
            let prefix = format!("datasets/{d}/{dir}/");
            assert!(key.as_str().starts_with(&prefix), "{key} escapes {prefix}");
            assert!(key.as_str().split('/').all(|s| s != ".." && s != "."));
            assert!(ObjectKey::new(key.as_str()).is_ok());
        }
    }
});
