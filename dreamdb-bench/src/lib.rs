//! DreamDB benchmarks, measured side by side with peers in the same run.
//!
//! - [`data`]: loaders for the shared sets, the seeded synthetic
//!   generator, exact ground truth, `.npy` I/O;
//! - [`sets`]: the sets of each suite size, cached as `.npy` for the peers;
//! - [`probe`]: a connector wrapper counting calls, bytes and sequential
//!   round trips;
//! - [`suite`]: the DreamDB measures of `scripts/bench` (ingest, query,
//!   cold query, commit cost, iteration), driven by `src/bin/suite.rs`.
//!   The peers (Faiss, LanceDB) are driven by `python/peers.py`, and
//!   `python/report.py` merges both into `bench/report/`.

pub mod data;
pub mod probe;
pub mod sets;
pub mod suite;
