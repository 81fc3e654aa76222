//! Python bindings for DreamDB (`import dreamdb_dataset`).
//!
//! Not yet built: the Python issue turns this crate into a PyO3 extension
//! module built with maturin.
