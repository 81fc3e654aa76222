//! Spatial indexing and vector compression: the pure, deterministic
//! mechanisms behind "retrieval is probabilistic localization, not
//! scanning" (spec 0004, 0010).
//!
//! A spatial index maps a vector to a cell id; a query probes a few cells.
//! Every mechanism here is a pure function of its inputs and a seed: all
//! randomness comes from `dreamdb_core::random` ChaCha20 streams with one
//! domain per use, the arithmetic that decides a cell follows the scalar
//! reference path of [`metric`], and parallel work (rayon) is reduced in a
//! fixed order, so the same inputs give the same keys, codes and content
//! hashes on every machine and thread count.
//!
//! - [`metric`]: metrics, validation, reference and proved fast kernels.
//! - [`ivf`]: trained IVF (`dreamdb.ivf-{cosine,l2,ip}`), with the routing
//!   tree Ada-IVF grows; [`kmeans`] trains it.
//! - [`lsh`]: `dreamdb.lsh-cosine`, seeded hyperplanes, multi-probe.
//! - [`imi`]: `dreamdb.imi-cosine`, two half-space codebooks.
//! - [`flat`]: one cell.
//! - [`index`]: [`SpatialIndex`], the stored description of any of them.
//! - [`rabitq`]: `dreamdb.rabitq` 1-bit and extended codes.
//! - [`search`]: probe → estimate → rerank over in-memory cells.
//! - [`topk`]: the bounded best-candidates set search keeps.
//! - [`ada_ivf`]: imbalance signals, local split and merge, lineage.

pub mod ada_ivf;
pub mod bytes;
mod error;
pub mod flat;
pub mod imi;
pub mod index;
pub mod ivf;
pub mod kmeans;
pub mod lanes;
pub mod lsh;
pub mod metric;
pub mod rabitq;
pub mod search;
pub mod topk;

pub use error::SpatialError;
pub use index::SpatialIndex;
pub use ivf::{sqrt_guidance, IvfIndex, IvfParams, KGuidance};
pub use metric::{Metric, MAX_DIM};
pub use rabitq::{RaBitQ, VectorCompressor};
pub use search::{CellData, IvfStore, SearchOptions};
