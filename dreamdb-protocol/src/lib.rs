//! DreamDB protocol layer: object kinds and their canonical CBOR shapes, the
//! paged track index, the Manifest DAG, refs and merges, and the spatial
//! indexing and compression algorithms.
//!
//! Not yet built: the Protocol and Spatial issues fill this crate. It talks
//! to storage only through `dreamdb_connector::Connector`.

pub mod dag;
pub mod maintenance;
pub mod objects;
pub mod spatial;

pub mod store;
pub mod track;
