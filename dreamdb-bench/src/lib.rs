//! DreamDB benchmarks, measured side by side with peers in the same run.
//!
//! Not yet built: the Benchmarks issue fills this crate.

pub mod data;
