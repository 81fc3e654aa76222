//! # dreamdb-connector-http
//!
//! DreamDB's backend for S3-compatible object stores (AWS S3, Ceph radosgw,
//! MinIO, ...): [`HttpConnector`], and [`connect`], the one entry point
//! higher layers use to open *any* backend URL.
//!
//! ## URLs and credentials
//!
//! `http(s)://host[:port]/bucket[/prefix]`: requests are path-style
//! (`/bucket/key`); the prefix is a key prefix inside the bucket (a trailing
//! `/` is implied). Credentials come from `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY` and optional `AWS_SESSION_TOKEN`, the region from
//! `AWS_REGION` (default `us-east-1`); without credentials requests are sent
//! unsigned. Credentials in the URL are refused, and no error, log line or
//! `Debug` output contains the secret.
//!
//! Requests are signed with SigV4 (the `aws-sigv4` crate), header form. The
//! payload hash (`x-amz-content-sha256`) is, by default, the SHA-256 of the
//! body, so the signature also covers the bytes, which matters over plain
//! HTTP; [`PayloadSigning::Unsigned`] sends `UNSIGNED-PAYLOAD` instead (both
//! are accepted by radosgw and AWS).
//!
//! ## Conditional writes
//!
//! [`PutMode::Create`](dreamdb_connector::PutMode::Create) sends
//! `If-None-Match: *`, [`PutMode::Update`](dreamdb_connector::PutMode::Update)
//! sends `If-Match` with the ETag in the form the server accepts, learned by
//! the capability probe at connect time (see [`HttpConnector::if_match_form`];
//! radosgw accepts only the unquoted form). Answers:
//!
//! | answer | Create | Update |
//! |---|---|---|
//! | 200 | `Written(etag)` | `Written(etag)` |
//! | 412 | `AlreadyExists` | `PreconditionFailed` |
//! | 404 (no such key) | - | `PreconditionFailed` |
//! | 409 `ConditionalRequestConflict` | HEAD the key: `AlreadyExists` if present, else retry | `PreconditionFailed` |
//!
//! A 409 means a concurrent conditional write raced ours; it is never
//! reported as success.
//!
//! ## Reads, listings and deletes
//!
//! GET and HEAD map 404 to `NotFound` (a HEAD answer has no body, so a
//! missing *bucket* is also `NotFound` there; GET and DELETE tell it apart by
//! the `NoSuchBucket` code). A ranged GET sends `Range: bytes=a-(b-1)` and
//! checks the answer's `Content-Range` (servers clamp a range that reaches
//! past the end, so a clamped, short or 416 answer is `InvalidRange`); no
//! HEAD is spent on the happy path. DELETE of a missing key succeeds.
//! Listings are ListObjectsV2 (`list-type=2`), one page per poll of the
//! stream, `max-keys` = [`HttpConfig::list_page_size`]. Objects DreamDB
//! cannot name (keys that are not valid `ObjectKey`s, such as `dir/`
//! markers made by S3 consoles) and probe keys are skipped.
//!
//! ## Retries
//!
//! Every request is retried with exponential backoff and full jitter
//! ([`RetryPolicy`]: 5 attempts and 30 s by default) on 5xx answers, 408,
//! 429 / 503 SlowDown, timeouts and connection errors. A 4xx other than 408
//! and 429 is never retried: it is answered at once (403 → `Auth`, 404 →
//! `NotFound`, ...). When the budget is spent the last answer is reported
//! (`Backend { status: Some(503), .. }` for a server that keeps refusing).
//!
//! Retrying a *conditional* PUT is safe but can be ambiguous: if the first
//! attempt timed out or got a 5xx after the server had in fact stored the
//! bytes, the retry answers 412, and that 412 is reported as it is
//! (`AlreadyExists` / `PreconditionFailed`), never turned into a guessed
//! success. The protocol layer above resolves "the Ref already points at my
//! hash" by re-reading it, which is the only place that can tell.
//!
//! ## Capability probe
//!
//! See [`HttpConnector::connect_with`]: once per process per endpoint and
//! bucket, on a key under `<prefix>.dreamdb-probe/` (never listed), the
//! probe checks that create-if-absent and If-Match are enforced and learns
//! the If-Match form. A server that ignores the conditional headers (Garage,
//! for one) is refused with `ConnectorError::Unsupported`.

mod config;
mod connector;
mod probe;
mod time;
mod xml;

use std::sync::Arc;

use dreamdb_connector::url::{open_builtin, BackendUrl};
use dreamdb_connector::{Connector, ConnectorError};

pub use config::{
    Credentials, HttpConfig, IfMatchForm, PayloadSigning, RetryPolicy, DEFAULT_REGION,
};
pub use connector::HttpConnector;
#[doc(hidden)]
pub use probe::clear_probe_cache;

/// Opens any backend URL: a directory path or `file://` URL, `memory://`
/// (via [`dreamdb_connector::url::open_builtin`]), or
/// `http(s)://host[:port]/bucket[/prefix]` (an [`HttpConnector`], probed).
pub async fn connect(url: &str) -> Result<Arc<dyn Connector>, ConnectorError> {
    let parsed = BackendUrl::parse(url)?;
    if let Some(builtin) = open_builtin(&parsed)? {
        return Ok(builtin);
    }
    let connector = match parsed {
        BackendUrl::Http { url } => HttpConnector::connect(url.as_str()).await?,
        other => {
            return Err(ConnectorError::InvalidUrl {
                url: other.to_string(),
                reason: "no connector for this URL".into(),
            })
        }
    };
    Ok(Arc::new(connector))
}
