//! # dreamdb-dataset
//!
//! The SDK users program against: a [`Dataset`] on any backend URL (a plain
//! path is a local directory, the default), with the verbs of an ML data
//! workflow — create, append, get, query, iterate (also as Arrow batches),
//! snapshot, branch, merge, delete, time travel — each costing what
//! design/0002 promises: appends O(batch) plus O(log n) index pages, warm
//! queries one ref read plus the probed cells' byte ranges, iteration in
//! bounded memory fetching only the fields asked for, and no LIST on any
//! of these paths. The SDK never schedules maintenance; it returns signals.

#[cfg(feature = "mimalloc")]
pub mod allocator;
pub mod batch;
pub mod dataset;
mod error;
pub mod maintain;
pub mod read;
pub mod schema;
pub mod snapshot;
pub mod write;

pub use dataset::Dataset;
pub use error::DatasetError;
pub use snapshot::Snapshot;
