//! Duration text (`1h30m`, `250ms`, ...): never panics; what it accepts
//! prints as text that parses back to the same number of ticks; anchors'
//! hex form round-trips.
#![no_main]

use dreamdb_core::time::{Ticks, TimeAnchor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ticks) = Ticks::parse(text) {
        let printed = ticks.to_string();
        assert_eq!(
            Ticks::parse(&printed).ok(),
            Some(ticks),
            "{text:?} printed as {printed:?}"
        );
    }
    if let Ok(anchor) = TimeAnchor::from_hex(text) {
        assert_eq!(TimeAnchor::from_hex(&anchor.to_hex()).ok(), Some(anchor));
    }
});
