//! # dreamdb-connector
//!
//! The storage contract of DreamDB. A [`Connector`] knows keys and bytes,
//! never object kinds. Everything DreamDB stores is immutable and
//! content-addressed except Refs, which move only by compare-and-swap; this
//! crate is where that promise is kept:
//!
//! - [`PutMode`] makes the write condition explicit (overwrite,
//!   create-if-absent, replace-if-version-matches), and losing a CAS is a
//!   [`PutOutcome`] value, not an error.
//! - [`ObjectKey`] validates keys, so no key can name a file outside a
//!   backend's root.
//! - Backends: [`memory::MemoryConnector`] (`memory://`, for tests) and
//!   [`local::LocalConnector`] (a plain path or `file://`, the embedded
//!   default, with atomic publish and CAS across processes). The
//!   S3-compatible backend lives in `dreamdb-connector-http`.
//! - [`conformance`]: one suite every backend runs.
//! - [`wrappers`]: fault injection (for reliability tests) and call counting
//!   (for benchmarks and cost assertions).
//!
//! ## Optimistic concurrency
//!
//! ```
//! use bytes::Bytes;
//! use dreamdb_connector::{Connector, ObjectKey, PutMode, PutOutcome};
//! use dreamdb_connector::memory::MemoryConnector;
//!
//! # async fn demo() -> Result<(), dreamdb_connector::ConnectorError> {
//! let store = MemoryConnector::new();
//! let key = ObjectKey::new("refs/main")?;
//! store.put(&key, Bytes::from_static(b"0"), PutMode::Create).await?;
//! loop {
//!     let current = store.get(&key).await?;
//!     let next: u64 = std::str::from_utf8(&current.bytes).unwrap_or("0").parse().unwrap_or(0) + 1;
//!     let mode = PutMode::Update(current.meta.version.clone());
//!     match store.put(&key, Bytes::from(next.to_string()), mode).await? {
//!         PutOutcome::Written(_) => break,
//!         PutOutcome::PreconditionFailed | PutOutcome::AlreadyExists => continue, // lost the race: re-read
//!     }
//! }
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
//! ```

pub mod conformance;
mod error;
mod key;
pub mod local;
pub mod memory;
mod types;
pub mod url;
pub mod wrappers;

pub use crate::url::{open_builtin, BackendUrl};
pub use error::ConnectorError;
pub use key::{KeyError, KeyPrefix, ObjectKey};
pub use types::{
    ByteRange, Connector, ConnectorExt, GetResult, ListStream, ObjectMeta, PutMode, PutOutcome,
    Version,
};
