//! Python bindings for DreamDB: the extension module
//! `dreamdb_dataset._native`, wrapped by the Python package
//! `dreamdb_dataset` (`python/dreamdb_dataset/`).
//!
//! - [`runtime`]: one tokio runtime per process, rebuilt after `fork`; every
//!   blocking call releases the GIL;
//! - [`schema`]: the chainable `Schema`;
//! - [`dataset`]: `Dataset` (create/open/open_at, append, query, get,
//!   iterate, versions, deletes) and its result types;
//! - [`arrow`]: record batches exported through the Arrow C Data Interface
//!   (PyCapsules), zero-copy into pyarrow;
//! - [`errors`]: `DatasetError` → the `DreamDBError` hierarchy by `kind`.
//!
//! The crate builds without the `extension-module` feature too (as an
//! rlib, for `cargo test` and clippy); maturin enables it for the wheel.

pub mod arrow;
pub mod dataset;
mod errors;
pub mod runtime;
pub mod schema;

// mimalloc, tuned at start (dreamdb_dataset::allocator says why).
dreamdb_dataset::install_allocator!();

use pyo3::prelude::*;

/// Whether this process is still using the runtime its parent built
/// (always `False`: the runtime is rebuilt after fork); for tests.
#[pyfunction]
fn _runtime_pid() -> Option<u32> {
    runtime::runtime_pid()
}

/// The crate version.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The native module.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    dreamdb_dataset::allocator::tune();
    m.add("__version__", VERSION)?;
    m.add_class::<schema::PySchema>()?;
    m.add_class::<dataset::PyDataset>()?;
    m.add_class::<dataset::PyAppendResult>()?;
    m.add_class::<dataset::PyVersion>()?;
    m.add_class::<dataset::PyHit>()?;
    m.add_class::<dataset::PyArrowBatchIter>()?;
    m.add_class::<arrow::ArrowBatch>()?;
    m.add_function(wrap_pyfunction!(dataset::_reopen, m)?)?;
    m.add_function(wrap_pyfunction!(_runtime_pid, m)?)?;
    Ok(())
}
