//! Helpers shared by the track tests: entries, stores, configs.
#![allow(dead_code)]

use std::sync::Arc;

use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::wrappers::CountingConnector;
use dreamdb_core::ContentHash;
use dreamdb_protocol::store::ObjectStore;
use dreamdb_protocol::track::{TrackConfig, TrackKey, TrackValue};

/// A deterministic fake segment hash.
pub fn seg(i: u64) -> ContentHash {
    ContentHash::of(&i.to_le_bytes())
}

/// An anchor-run entry for segment `s` starting at `first`, with `salt`
/// varying the value.
pub fn anchor_entry(first: u64, s: u64, salt: u64) -> (TrackKey, TrackValue) {
    let segment = seg(s);
    (
        TrackKey::anchor_run(first, &segment),
        TrackValue::AnchorRun {
            segment,
            last_anchor: first + 1000 + salt,
            count: 1000 + (salt % 7) as u32,
            table_offset: 64 + salt,
            table_len: 8000,
            storage: None,
        },
    )
}

/// A cell-run entry of cell `cell` in segment `s`.
pub fn cell_entry(cell: u32, s: u64, salt: u64) -> (TrackKey, TrackValue) {
    let segment = seg(s);
    (
        TrackKey::cell_run(cell, &segment),
        TrackValue::CellRun {
            segment,
            offset: 4096 + salt * 100,
            len: 2000 + salt,
            count: 17,
            run_hash: ContentHash::of(&salt.to_be_bytes()),
            raw: None,
        },
    )
}

/// A store over a counting in-memory connector.
pub fn counting_store(cache_bytes: u64) -> (ObjectStore, Arc<CountingConnector<MemoryConnector>>) {
    let counting = Arc::new(CountingConnector::new(MemoryConnector::new()));
    let store = ObjectStore::new(counting.clone(), cache_bytes);
    (store, counting)
}

/// Tiny pages, so a few dozen entries make a deep tree.
pub fn tiny_config(fanout: usize) -> TrackConfig {
    TrackConfig {
        fanout,
        page_target_bytes: 700,
        inline_max_bytes: 600,
    }
}
