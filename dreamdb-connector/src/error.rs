//! The connector layer's error type.

use crate::{ByteRange, KeyError};

/// Why a storage operation failed. Losing a compare-and-swap is *not* an
/// error: see [`crate::PutOutcome`]. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// No object at the key.
    #[error("object not found: {key} (backend {backend})")]
    NotFound {
        /// Backend description.
        backend: String,
        /// The key asked for.
        key: String,
    },
    /// A key or prefix failed validation.
    #[error(transparent)]
    InvalidKey(#[from] KeyError),
    /// A byte range was empty or not wholly inside the object.
    #[error("byte range {range} is not inside {key} ({size} bytes)")]
    InvalidRange {
        /// The key read.
        key: String,
        /// The range asked for.
        range: ByteRange,
        /// The object's size, as far as the backend reported it.
        size: u64,
    },
    /// A backend URL could not be understood.
    #[error("invalid backend URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL (credentials removed).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend refused our credentials.
    #[error("authentication failed at {backend}: {message}")]
    Auth {
        /// Backend description.
        backend: String,
        /// The backend's reason (never the secret).
        message: String,
    },
    /// The backend lacks a capability DreamDB requires (conditional writes).
    #[error("backend {backend} is not supported: {reason}")]
    Unsupported {
        /// Backend description.
        backend: String,
        /// What it lacks.
        reason: String,
    },
    /// A local filesystem operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path or key involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A remote backend answered with an error, or could not be reached,
    /// after any retries allowed.
    #[error("backend {backend} failed on {operation} {key}: {message}")]
    Backend {
        /// Backend description.
        backend: String,
        /// The operation (GET, PUT, ...).
        operation: &'static str,
        /// The key, or the prefix for listings.
        key: String,
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// A local path under the backend's root is not safe to use: one of
    /// its components is a symbolic link (the local backend never follows
    /// links, so no key can reach outside the root), or the key names a
    /// directory of other keys.
    #[error("refusing {path}: {reason}")]
    UnsafePath {
        /// The filesystem path involved.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A fault injected by [`crate::wrappers::FaultInjector`].
    #[error("injected fault on call {call} ({operation} {key})")]
    Injected {
        /// The 1-based call number that failed.
        call: u64,
        /// The operation.
        operation: &'static str,
        /// The key.
        key: String,
    },
}

impl ConnectorError {
    /// Whether retrying the same request might succeed (used by higher
    /// layers' retry loops; never true for a 4xx other than 408/429).
    pub fn is_transient(&self) -> bool {
        match self {
            ConnectorError::Backend { status, .. } => match status {
                None => true,
                Some(code) => *code >= 500 || *code == 408 || *code == 429,
            },
            ConnectorError::Injected { .. } => true,
            _ => false,
        }
    }
}
