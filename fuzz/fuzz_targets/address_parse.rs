//! `dreamdb://` addresses: never panic; a valid text re-renders byte for
//! byte and parses to the same address.
#![no_main]

use dreamdb_core::address::Address;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(address) = Address::parse(text) {
        let rendered = address.to_string();
        assert_eq!(rendered, text, "address round trip");
        assert_eq!(Address::parse(&rendered).ok(), Some(address.clone()));
        let _ = address.without_locator();
    }
});
