//! Configuration of an [`HttpConnector`](crate::HttpConnector): where the
//! store is, who we are, and how patient to be.

use std::fmt;
use std::time::Duration;

use dreamdb_connector::{ConnectorError, KeyPrefix};
use url::Url;

/// The region signed for when `AWS_REGION` is not set.
pub const DEFAULT_REGION: &str = "us-east-1";

/// S3 access credentials. `Debug` shows the access key id only: the secret
/// and the session token are never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl Credentials {
    /// Credentials from an access key id, a secret and an optional session token.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token,
        }
    }

    /// Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and the optional
    /// `AWS_SESSION_TOKEN`; `None` unless both of the first two are set and
    /// non-empty.
    pub fn from_env() -> Option<Self> {
        let non_empty = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Some(Credentials::new(
            non_empty("AWS_ACCESS_KEY_ID")?,
            non_empty("AWS_SECRET_ACCESS_KEY")?,
            non_empty("AWS_SESSION_TOKEN"),
        ))
    }

    /// The access key id (not secret).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub(crate) fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    pub(crate) fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// How the request body is covered by the SigV4 signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadSigning {
    /// `x-amz-content-sha256` is the SHA-256 of the body, so the signature
    /// covers the bytes too (integrity even over plain HTTP). The default:
    /// hashing costs far less than the network transfer.
    #[default]
    Sha256,
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD`: only the request line and
    /// headers are signed. Accepted by AWS and radosgw; saves one hash pass.
    Unsigned,
}

/// How a server wants the ETag in an `If-Match` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IfMatchForm {
    /// `If-Match: "etag"`, as RFC 9110 writes it (AWS, MinIO, moto, s3s).
    Quoted,
    /// `If-Match: etag` (Ceph radosgw accepts only this form).
    Unquoted,
}

impl IfMatchForm {
    /// The header value for `etag` (given normalised, without quotes).
    pub fn header_value(self, etag: &str) -> String {
        match self {
            IfMatchForm::Quoted => format!("\"{etag}\""),
            IfMatchForm::Unquoted => etag.to_owned(),
        }
    }
}

impl fmt::Display for IfMatchForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IfMatchForm::Quoted => "quoted",
            IfMatchForm::Unquoted => "unquoted",
        })
    }
}

/// Retries of transient failures: exponential backoff with full jitter.
///
/// Retried: 5xx answers, 408, 429 (and 503 SlowDown), timeouts and
/// connection errors. Never retried: any other 4xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, including the first (1 = no retries).
    pub max_attempts: u32,
    /// No retry starts after this much time since the first attempt.
    pub max_elapsed: Duration,
    /// The backoff before retry `n` is uniform in `[0, min(max_delay, base_delay · 2ⁿ⁻¹)]`.
    pub base_delay: Duration,
    /// Upper bound of one backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(30),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// No retries: one attempt per request.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The backoff before retry number `retry` (1-based), with full jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::random::<u64>() % (nanos + 1))
    }
}

/// Everything an [`HttpConnector`](crate::HttpConnector) needs. Build one
/// with [`HttpConfig::from_url`] and adjust it with the `with_*` methods.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `scheme://host[:port]` of the S3 endpoint (path-style requests).
    pub endpoint: Url,
    /// The bucket.
    pub bucket: String,
    /// Key prefix inside the bucket: empty, or ending with `/`.
    pub prefix: KeyPrefix,
    /// Credentials; `None` sends unsigned (anonymous) requests.
    pub credentials: Option<Credentials>,
    /// Region in the SigV4 scope.
    pub region: String,
    /// Limit on one HTTP attempt, from connecting to the end of the body.
    pub request_timeout: Duration,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// `max-keys` of each ListObjectsV2 page (1..=1000).
    pub list_page_size: u32,
    /// How the body is signed.
    pub payload_signing: PayloadSigning,
    /// The `If-Match` form to use. `None` (the default) learns it with the
    /// capability probe at connect time; `Some` skips the probe (for tests
    /// and for servers known in advance).
    pub if_match_form: Option<IfMatchForm>,
}

fn invalid(url: &str, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

impl HttpConfig {
    /// Parses `http(s)://host[:port]/bucket[/prefix]` and takes credentials
    /// and region from the environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, optional `AWS_SESSION_TOKEN`, `AWS_REGION`,
    /// default `us-east-1`). Credentials inside the URL are refused.
    pub fn from_url(raw: &str) -> Result<Self, ConnectorError> {
        let url = Url::parse(raw).map_err(|err| invalid(&redact_userinfo(raw), err.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                &redact_userinfo(raw),
                "credentials in the URL are refused; set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if needed) in the environment",
            ));
        }
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(raw, "the scheme must be http or https"));
        }
        let host = url.host_str().unwrap_or("");
        if host.is_empty() {
            return Err(invalid(raw, "no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(raw, "backend URLs take no query or fragment"));
        }
        let mut segments = url
            .path_segments()
            .map(|s| {
                s.map(|seg| crate::xml::percent_decode(seg, false))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        while segments.last().is_some_and(String::is_empty) {
            segments.pop();
        }
        if segments.is_empty() || segments[0].is_empty() {
            return Err(invalid(
                raw,
                "no bucket: write http(s)://host[:port]/bucket[/prefix]",
            ));
        }
        let bucket = segments.remove(0);
        if !bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err(invalid(raw, format!("invalid bucket name {bucket:?}")));
        }
        let prefix = if segments.is_empty() {
            KeyPrefix::all()
        } else {
            KeyPrefix::new(format!("{}/", segments.join("/")))
                .map_err(|err| invalid(raw, format!("invalid key prefix: {}", err.reason)))?
        };
        let mut endpoint = url.clone();
        endpoint.set_path("");
        let region = std::env::var("AWS_REGION")
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        Ok(HttpConfig {
            endpoint,
            bucket,
            prefix,
            credentials: Credentials::from_env(),
            region,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            list_page_size: 1000,
            payload_signing: PayloadSigning::default(),
            if_match_form: None,
        })
    }

    /// Replaces the credentials (`None`: unsigned requests).
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Self {
        self.credentials = credentials;
        self
    }

    /// Replaces the region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Replaces the key prefix (`""` or ending with `/`; a missing trailing
    /// `/` is added).
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, ConnectorError> {
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_owned()
        } else {
            format!("{prefix}/")
        };
        self.prefix = KeyPrefix::new(prefix)?;
        Ok(self)
    }

    /// Replaces the per-attempt and connect timeouts.
    pub fn with_timeouts(mut self, request: Duration, connect: Duration) -> Self {
        self.request_timeout = request;
        self.connect_timeout = connect;
        self
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets `max-keys` for listings (clamped to 1..=1000).
    pub fn with_list_page_size(mut self, page_size: u32) -> Self {
        self.list_page_size = page_size.clamp(1, 1000);
        self
    }

    /// Chooses how bodies are signed.
    pub fn with_payload_signing(mut self, signing: PayloadSigning) -> Self {
        self.payload_signing = signing;
        self
    }

    /// Fixes the `If-Match` form and skips the capability probe.
    pub fn with_if_match_form(mut self, form: Option<IfMatchForm>) -> Self {
        self.if_match_form = form;
        self
    }

    /// `scheme://host[:port]`, without a trailing slash.
    pub fn endpoint_str(&self) -> String {
        self.endpoint.as_str().trim_end_matches('/').to_owned()
    }

    /// `http://host:port/bucket[/prefix]`: never credentials.
    pub fn describe(&self) -> String {
        let prefix = self.prefix.as_str().trim_end_matches('/');
        if prefix.is_empty() {
            format!("{}/{}", self.endpoint_str(), self.bucket)
        } else {
            format!("{}/{}/{}", self.endpoint_str(), self.bucket, prefix)
        }
    }
}

/// `raw` with a `user:pass@` authority part replaced by `***@`.
fn redact_userinfo(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_owned();
    };
    let start = scheme_end + 3;
    let rest = &raw[start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_len].rfind('@') {
        Some(at) => format!("{}***{}", &raw[..start], &raw[start + at..]),
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix() {
        let c = HttpConfig::from_url("http://127.0.0.1:9000/bkt").unwrap();
        assert_eq!(c.bucket, "bkt");
        assert_eq!(c.prefix.as_str(), "");
        assert_eq!(c.endpoint_str(), "http://127.0.0.1:9000");
        assert_eq!(c.describe(), "http://127.0.0.1:9000/bkt");

        let c = HttpConfig::from_url("https://s3.example.test/bkt/a/b/").unwrap();
        assert_eq!(c.prefix.as_str(), "a/b/");
        assert_eq!(c.endpoint_str(), "https://s3.example.test");
        assert_eq!(c.describe(), "https://s3.example.test/bkt/a/b");
    }

    #[test]
    fn refuses_bad_urls() {
        for bad in [
            "http://127.0.0.1:9000/",
            "http://127.0.0.1:9000",
            "ftp://h/b",
            "http://h/b?x=1",
            "http://h/b/a%2F%2Fc",
        ] {
            assert!(
                matches!(
                    HttpConfig::from_url(bad),
                    Err(ConnectorError::InvalidUrl { .. })
                ),
                "{bad}"
            );
        }
        let err = HttpConfig::from_url("http://me:topsecret@h/b").unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("topsecret"), "{text}");
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let c = Credentials::new("AKID", "s3cr3t-value", Some("tok3n".into()));
        let text = format!("{c:?}");
        assert!(text.contains("AKID"));
        assert!(
            !text.contains("s3cr3t-value") && !text.contains("tok3n"),
            "{text}"
        );
    }

    #[test]
    fn backoff_is_bounded() {
        let p = RetryPolicy::default();
        for retry in 1..40 {
            let d = p.backoff(retry);
            assert!(d <= p.max_delay);
            assert!(d <= p.base_delay.saturating_mul(1 << (retry - 1).min(20)));
        }
    }

    #[test]
    fn if_match_forms() {
        assert_eq!(IfMatchForm::Quoted.header_value("abc"), "\"abc\"");
        assert_eq!(IfMatchForm::Unquoted.header_value("abc"), "abc");
    }
}
