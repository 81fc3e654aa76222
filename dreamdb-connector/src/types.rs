//! The [`Connector`] trait and the values that cross it.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::{ConnectorError, KeyPrefix, ObjectKey};

/// An opaque object version as the backend reports it (an ETag for
/// S3-compatible stores, normalised: no quotes, no `W/` prefix).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// Wraps a backend's version string, stripping a weak prefix and quotes.
    pub fn new(raw: impl AsRef<str>) -> Self {
        let raw = raw.as_ref().trim();
        let raw = raw.strip_prefix("W/").unwrap_or(raw);
        let raw = raw.strip_prefix('"').unwrap_or(raw);
        let raw = raw.strip_suffix('"').unwrap_or(raw);
        Version(raw.to_owned())
    }

    /// The normalised version text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.0)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The condition a [`Connector::put`] is made under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Write unconditionally. Safe for content-addressed objects, whose
    /// bytes are fixed by their key.
    Overwrite,
    /// Write only if no object exists at the key (`If-None-Match: *`).
    Create,
    /// Replace only if the current version is this one (`If-Match`).
    Update(Version),
}

/// What a [`Connector::put`] did. Losing a compare-and-swap is a value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum PutOutcome {
    /// The bytes were written; this is the new version.
    Written(Version),
    /// [`PutMode::Create`] found an object already at the key.
    AlreadyExists,
    /// [`PutMode::Update`] found a different version (or no object).
    PreconditionFailed,
}

impl PutOutcome {
    /// The new version if the write happened.
    pub fn written(&self) -> Option<&Version> {
        match self {
            PutOutcome::Written(v) => Some(v),
            _ => None,
        }
    }
}

/// What a backend knows about one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's key (relative to the connector's root and prefix).
    pub key: ObjectKey,
    /// Size in bytes.
    pub size: u64,
    /// The object's current version.
    pub version: Version,
    /// When the object was last written, if the backend reports it.
    pub last_modified: Option<SystemTime>,
}

/// An object's bytes with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetResult {
    /// The whole object.
    pub bytes: Bytes,
    /// Its metadata, including the version to pass to [`PutMode::Update`].
    pub meta: ObjectMeta,
}

/// A half-open byte range `[start, end)` inside one object. Connectors
/// refuse a range that is empty or not wholly inside the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// First byte, inclusive.
    pub start: u64,
    /// Last byte, exclusive.
    pub end: u64,
}

impl ByteRange {
    /// A range `[start, end)`.
    pub const fn new(start: u64, end: u64) -> Self {
        ByteRange { start, end }
    }

    /// Number of bytes in the range (0 if it is inverted).
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no byte.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the range is non-empty and lies inside an object of `size`.
    pub const fn fits(&self, size: u64) -> bool {
        self.start < self.end && self.end <= size
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// A stream of listed objects, produced page by page.
pub type ListStream<'a> = BoxStream<'a, Result<ObjectMeta, ConnectorError>>;

/// The minimal storage contract. Implementations must make [`PutMode::Create`]
/// and [`PutMode::Update`] atomic with respect to every other writer of the
/// same backend, including other processes.
#[async_trait]
pub trait Connector: Send + Sync + fmt::Debug + 'static {
    /// A description of the backend for messages: its URL with any
    /// credentials removed.
    fn describe(&self) -> String;

    /// Reads a whole object.
    async fn get(&self, key: &ObjectKey) -> Result<GetResult, ConnectorError>;

    /// Reads `range` of an object. A range that is empty or reaches past the
    /// end is [`ConnectorError::InvalidRange`].
    async fn get_range(&self, key: &ObjectKey, range: ByteRange) -> Result<Bytes, ConnectorError>;

    /// Reads an object's metadata.
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ConnectorError>;

    /// Writes an object under `mode`.
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, ConnectorError>;

    /// Lists every object whose key starts with `prefix`, in key order,
    /// fetching pages lazily.
    fn list<'a>(&'a self, prefix: &'a KeyPrefix) -> ListStream<'a>;

    /// Deletes an object. Deleting a missing object succeeds.
    async fn delete(&self, key: &ObjectKey) -> Result<(), ConnectorError>;
}

/// Helpers built on the required [`Connector`] surface.
#[async_trait]
pub trait ConnectorExt: Connector {
    /// Reads a whole object, or `None` if it does not exist.
    async fn get_opt(&self, key: &ObjectKey) -> Result<Option<GetResult>, ConnectorError> {
        match self.get(key).await {
            Ok(found) => Ok(Some(found)),
            Err(ConnectorError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Reads metadata, or `None` if the object does not exist.
    async fn head_opt(&self, key: &ObjectKey) -> Result<Option<ObjectMeta>, ConnectorError> {
        match self.head(key).await {
            Ok(found) => Ok(Some(found)),
            Err(ConnectorError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Whether an object exists at `key`.
    async fn exists(&self, key: &ObjectKey) -> Result<bool, ConnectorError> {
        Ok(self.head_opt(key).await?.is_some())
    }

    /// Collects a whole listing.
    async fn list_all(&self, prefix: &KeyPrefix) -> Result<Vec<ObjectMeta>, ConnectorError> {
        self.list(prefix).try_collect().await
    }

    /// Deletes every object under `prefix`, `concurrency` at a time; returns
    /// how many were deleted.
    async fn delete_prefix(
        &self,
        prefix: &KeyPrefix,
        concurrency: usize,
    ) -> Result<u64, ConnectorError> {
        let keys: Vec<ObjectKey> = self
            .list(prefix)
            .map_ok(|meta| meta.key)
            .try_collect()
            .await?;
        let count = keys.len() as u64;
        futures::stream::iter(keys)
            .map(|key| async move { self.delete(&key).await })
            .buffer_unordered(concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(count)
    }
}

impl<T: Connector + ?Sized> ConnectorExt for T {}

#[async_trait]
impl<T: Connector + ?Sized> Connector for Arc<T> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    async fn get(&self, key: &ObjectKey) -> Result<GetResult, ConnectorError> {
        (**self).get(key).await
    }
    async fn get_range(&self, key: &ObjectKey, range: ByteRange) -> Result<Bytes, ConnectorError> {
        (**self).get_range(key, range).await
    }
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ConnectorError> {
        (**self).head(key).await
    }
    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, ConnectorError> {
        (**self).put(key, bytes, mode).await
    }
    fn list<'a>(&'a self, prefix: &'a KeyPrefix) -> ListStream<'a> {
        (**self).list(prefix)
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), ConnectorError> {
        (**self).delete(key).await
    }
}
