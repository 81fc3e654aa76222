//! `DatasetError` → Python exceptions.
//!
//! The exception classes live in `dreamdb_dataset._errors` (plain Python, so
//! they can also derive from the matching built-in: `NotFoundError` is a
//! `LookupError`, `InvalidInputError` a `ValueError`, `BackendError` an
//! `OSError`); every one carries `.kind`, the stable id of
//! [`DatasetError::kind`].

use dreamdb_dataset::DatasetError;
use pyo3::prelude::*;
use pyo3::types::PyAnyMethods;

/// Builds the Python exception for `kind` with `message` (falls back to
/// `RuntimeError` if the Python package cannot be imported).
pub(crate) fn error_of_kind(py: Python<'_>, kind: &str, message: &str) -> PyErr {
    let made = py
        .import("dreamdb_dataset._errors")
        .and_then(|m| m.getattr("_make"))
        .and_then(|make| make.call1((kind, message)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(_) => pyo3::exceptions::PyRuntimeError::new_err(format!("[{kind}] {message}")),
    }
}

/// The Python exception for a dataset error.
pub(crate) fn to_py(py: Python<'_>, e: &DatasetError) -> PyErr {
    error_of_kind(py, e.kind(), &e.to_string())
}

/// Extension: `result.py_err(py)?` maps a dataset error.
pub(crate) trait IntoPyResult<T> {
    /// Maps the error to its Python exception.
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, DatasetError> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, &e))
    }
}

/// An `invalid-input` error raised by the bindings themselves (a Python
/// value that does not fit the field), named like the Rust ones.
pub(crate) fn invalid(py: Python<'_>, field: &str, reason: impl std::fmt::Display) -> PyErr {
    to_py(py, &DatasetError::invalid(field, reason.to_string()))
}
