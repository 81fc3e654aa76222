//! The track B-tree page decoder: never panics; a page it accepts encodes
//! back to exactly the input, and its value-tree form decodes the same.
#![no_main]

use dreamdb_protocol::track::IndexPage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(page) = IndexPage::decode(data) {
        assert_eq!(page.encode().as_slice(), data, "index page round trip");
        assert_eq!(
            IndexPage::from_value(&page.to_value()).ok(),
            Some(page.clone())
        );
        assert!(!page.is_empty());
        let _ = page.count();
        let _ = page.first_key();
    }
});
