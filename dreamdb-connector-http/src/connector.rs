//! [`HttpConnector`]: the [`Connector`] for S3-compatible stores.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use dreamdb_connector::{
    ByteRange, Connector, ConnectorError, GetResult, KeyPrefix, ListStream, ObjectKey, ObjectMeta,
    PutMode, PutOutcome, Version,
};
use futures::{StreamExt, TryStreamExt};
use reqwest::header::HeaderMap;
use reqwest::Method;

use crate::config::{HttpConfig, IfMatchForm, PayloadSigning};
use crate::{probe, time, xml};

/// Keys under `<prefix>.dreamdb-probe/` are the capability probe's; they are
/// never listed.
pub(crate) const PROBE_DIR: &str = ".dreamdb-probe/";

/// The S3-compatible backend: path-style requests to
/// `endpoint/bucket/prefix+key`, SigV4-signed, with retries (see the
/// [crate docs](crate) for the retry and conditional-write rules).
pub struct HttpConnector {
    client: reqwest::Client,
    config: HttpConfig,
    describe: String,
    host: String,
    if_match: IfMatchForm,
    requests: AtomicU64,
}

impl fmt::Debug for HttpConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `config` holds credentials, whose Debug is redacted anyway; be
        // explicit about what is shown.
        f.debug_struct("HttpConnector")
            .field("backend", &self.describe)
            .field("region", &self.config.region)
            .field(
                "access_key_id",
                &self.config.credentials.as_ref().map(|c| c.access_key_id()),
            )
            .field("if_match_form", &self.if_match)
            .field("retry", &self.config.retry)
            .field("list_page_size", &self.config.list_page_size)
            .finish_non_exhaustive()
    }
}

/// One HTTP request, before signing.
pub(crate) struct Request<'a> {
    /// Operation name for errors.
    pub(crate) op: &'static str,
    /// Key (relative to the connector) or listing prefix, for errors.
    pub(crate) subject: &'a str,
    pub(crate) method: Method,
    /// Full object key inside the bucket; `None` for bucket-level requests.
    pub(crate) object: Option<&'a str>,
    /// Query parameters (unencoded).
    pub(crate) query: Vec<(&'static str, String)>,
    /// Extra headers (lowercase names).
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Bytes,
}

/// A complete HTTP answer.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// Attempts it took (1 = no retry).
    pub(crate) attempts: u32,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The S3 error code and message of the body, if it is an error document.
    fn s3_error(&self) -> (Option<String>, Option<String>) {
        xml::parse_error(&String::from_utf8_lossy(&self.body))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/`
/// when `keep_slash`), as SigV4's canonical form requires.
pub(crate) fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn is_retryable_status(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

/// A transport failure's message with its causes (reqwest's own Display is
/// terse: "error sending request").
fn transport_message(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "transport error".to_owned()
    };
    let mut source: Option<&dyn std::error::Error> = Some(err);
    let mut last = String::new();
    while let Some(e) = source {
        let msg = e.to_string();
        if msg != last && !msg.starts_with("error sending request for url") {
            text.push_str(": ");
            text.push_str(&msg);
        }
        last = msg;
        source = e.source();
    }
    text
}

impl HttpConnector {
    /// Opens `http(s)://host[:port]/bucket[/prefix]` with credentials from
    /// the environment (see [`HttpConfig::from_url`]) and runs the
    /// capability probe (once per process per endpoint and bucket).
    pub async fn connect(url: &str) -> Result<Self, ConnectorError> {
        Self::connect_with(HttpConfig::from_url(url)?).await
    }

    /// Opens a store from a full configuration. Runs the capability probe
    /// unless `config.if_match_form` is set or a probe of the same endpoint
    /// and bucket already succeeded in this process.
    pub async fn connect_with(config: HttpConfig) -> Result<Self, ConnectorError> {
        let mut connector = Self::new_unprobed(config)?;
        if let Some(form) = connector.config.if_match_form {
            connector.if_match = form;
        } else {
            connector.if_match = probe::probe_cached(&connector).await?;
        }
        Ok(connector)
    }

    /// Builds the connector without probing; `if_match` is provisional.
    pub(crate) fn new_unprobed(config: HttpConfig) -> Result<Self, ConnectorError> {
        let describe = config.describe();
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("dreamdb/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ConnectorError::Backend {
                backend: describe.clone(),
                operation: "CONNECT",
                key: String::new(),
                status: None,
                message: format!("could not build the HTTP client: {err}"),
            })?;
        let host = match (config.endpoint.host_str(), config.endpoint.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => {
                return Err(ConnectorError::InvalidUrl {
                    url: describe,
                    reason: "no host".into(),
                })
            }
        };
        Ok(HttpConnector {
            client,
            if_match: config.if_match_form.unwrap_or(IfMatchForm::Quoted),
            config,
            describe,
            host,
            requests: AtomicU64::new(0),
        })
    }

    /// The `If-Match` form this connector uses (learned by the probe:
    /// [`IfMatchForm::Unquoted`] on radosgw).
    pub fn if_match_form(&self) -> IfMatchForm {
        self.if_match
    }

    /// HTTP requests sent so far, counting every attempt of every retry.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The configuration this connector was opened with.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The full key inside the bucket.
    fn object_key(&self, key: &ObjectKey) -> String {
        format!("{}{}", self.config.prefix.as_str(), key.as_str())
    }

    fn url_for(&self, req: &Request<'_>) -> String {
        let mut url = format!(
            "{}/{}",
            self.config.endpoint_str(),
            uri_encode(&self.config.bucket, false)
        );
        if let Some(object) = req.object {
            url.push('/');
            url.push_str(&uri_encode(object, true));
        }
        if !req.query.is_empty() {
            let mut query: Vec<_> = req
                .query
                .iter()
                .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
                .collect();
            query.sort();
            url.push('?');
            let parts: Vec<String> = query.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
            url.push_str(&parts.join("&"));
        }
        url
    }

    /// SigV4 headers for a request (empty without credentials).
    fn sign_headers(
        &self,
        method: &str,
        url: &str,
        headers: &[(&'static str, String)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, String> {
        let Some(creds) = &self.config.credentials else {
            return Ok(Vec::new());
        };
        let identity = aws_credential_types::Credentials::new(
            creds.access_key_id(),
            creds.secret_access_key(),
            creds.session_token().map(str::to_owned),
            None,
            "dreamdb",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.config.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|err| format!("signing parameters: {err}"))?
            .into();
        let signable_body = match self.config.payload_signing {
            PayloadSigning::Sha256 => SignableBody::Bytes(body),
            PayloadSigning::Unsigned => SignableBody::UnsignedPayload,
        };
        let mut to_sign: Vec<(&str, &str)> = vec![("host", self.host.as_str())];
        to_sign.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
        let signable = SignableRequest::new(method, url, to_sign.into_iter(), signable_body)
            .map_err(|err| format!("signing: {err}"))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|err| format!("signing: {err}"))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    /// One attempt: sign, send, read the whole body.
    async fn attempt(&self, req: &Request<'_>, url: &str) -> Result<Response, AttemptError> {
        let signed = self
            .sign_headers(req.method.as_str(), url, &req.headers, &req.body)
            .map_err(AttemptError::Fatal)?;
        let mut builder = self.client.request(req.method.clone(), url);
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        for (name, value) in signed {
            builder = builder.header(name, value);
        }
        if req.method == Method::PUT || !req.body.is_empty() {
            // hyper omits `Content-Length: 0` for an empty body, and S3
            // servers answer a PUT without it with 411.
            builder = builder
                .header(reqwest::header::CONTENT_LENGTH, req.body.len())
                .body(req.body.clone());
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = builder.send().await.map_err(|err| {
            if err.is_builder() {
                AttemptError::Fatal(transport_message(&err))
            } else {
                AttemptError::Transient(transport_message(&err))
            }
        })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|err| AttemptError::Transient(transport_message(&err)))?;
        Ok(Response {
            status,
            headers,
            body,
            attempts: 0,
        })
    }

    /// Sends `req` with retries of transient failures (see [`crate`] docs).
    /// Returns the final answer, which may still be a retryable status once
    /// the budget is spent; transport failures become `Backend` errors.
    pub(crate) async fn send(&self, req: &Request<'_>) -> Result<Response, ConnectorError> {
        let url = self.url_for(req);
        let policy = self.config.retry;
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome = self.attempt(req, &url).await;
            let last_error = match outcome {
                Ok(mut response) => {
                    response.attempts = attempt;
                    if !is_retryable_status(response.status) {
                        return Ok(response);
                    }
                    RetryState::Status(response)
                }
                Err(AttemptError::Fatal(message)) => {
                    return Err(self.backend_error(req, None, message))
                }
                Err(AttemptError::Transient(message)) => RetryState::Transport(message),
            };
            let delay = policy.backoff(attempt);
            let out_of_budget = attempt >= policy.max_attempts.max(1)
                || started.elapsed() + delay > policy.max_elapsed;
            if out_of_budget {
                return match last_error {
                    RetryState::Status(response) => Ok(response),
                    RetryState::Transport(message) => Err(self.backend_error(
                        req,
                        None,
                        format!(
                            "{message} (after {attempt} attempt{} in {:.1?})",
                            if attempt == 1 { "" } else { "s" },
                            started.elapsed()
                        ),
                    )),
                };
            }
            tokio::time::sleep(delay).await;
        }
    }

    fn backend_error(
        &self,
        req: &Request<'_>,
        status: Option<u16>,
        message: String,
    ) -> ConnectorError {
        ConnectorError::Backend {
            backend: self.describe.clone(),
            operation: req.op,
            key: req.subject.to_owned(),
            status,
            message,
        }
    }

    /// The error for an answer the operation does not expect.
    pub(crate) fn status_error(&self, req: &Request<'_>, response: &Response) -> ConnectorError {
        let status = response.status;
        let (code, message) = response.s3_error();
        let reason = reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let mut text = format!("HTTP {status} {reason}");
        if let Some(code) = &code {
            text.push_str(&format!(", {code}"));
        }
        if let Some(message) = &message {
            text.push_str(&format!(": {message}"));
        }
        if code.is_none() && req.method == Method::HEAD {
            text.push_str(" (HEAD answers carry no error code)");
        }
        const AUTH_CODES: [&str; 7] = [
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
            "AccessDenied",
            "AuthorizationHeaderMalformed",
            "InvalidToken",
            "ExpiredToken",
            "RequestTimeTooSkewed",
        ];
        let is_auth = status == 401
            || status == 403
            || code.as_deref().is_some_and(|c| AUTH_CODES.contains(&c));
        if is_auth {
            let who = match &self.config.credentials {
                Some(c) => format!("access key {}", c.access_key_id()),
                None => "unsigned request (no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)".into(),
            };
            return ConnectorError::Auth {
                backend: self.describe.clone(),
                message: format!("{text} on {} {} ({who})", req.op, req.subject),
            };
        }
        if response.attempts > 1 {
            text.push_str(&format!(" (after {} attempts)", response.attempts));
        }
        self.backend_error(req, Some(status), text)
    }

    fn not_found(&self, key: &ObjectKey) -> ConnectorError {
        ConnectorError::NotFound {
            backend: self.describe.clone(),
            key: key.to_string(),
        }
    }

    fn meta_from_headers(
        &self,
        key: &ObjectKey,
        req: &Request<'_>,
        response: &Response,
        size: u64,
    ) -> Result<ObjectMeta, ConnectorError> {
        let etag = response.header("etag").ok_or_else(|| {
            self.backend_error(req, Some(response.status), "the answer has no ETag".into())
        })?;
        Ok(ObjectMeta {
            key: key.clone(),
            size,
            version: Version::new(etag),
            last_modified: response
                .header("last-modified")
                .and_then(time::parse_http_date),
        })
    }

    fn object_request<'a>(
        op: &'static str,
        method: Method,
        subject: &'a str,
        object: &'a str,
    ) -> Request<'a> {
        Request {
            op,
            subject,
            method,
            object: Some(object),
            query: Vec::new(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// One conditional or unconditional PUT of a full key, without the
    /// probe's caching. Used by [`Connector::put`] and by the probe.
    pub(crate) async fn put_full(
        &self,
        subject: &str,
        object: &str,
        bytes: Bytes,
        mode: &PutMode,
        if_match: IfMatchForm,
    ) -> Result<PutOutcome, ConnectorError> {
        let mut req = Self::object_request("PUT", Method::PUT, subject, object);
        req.body = bytes;
        match mode {
            PutMode::Overwrite => {}
            PutMode::Create => req.headers.push(("if-none-match", "*".to_owned())),
            PutMode::Update(version) => req
                .headers
                .push(("if-match", if_match.header_value(version.as_str()))),
        }
        let policy = self.config.retry;
        let mut conflicts: u32 = 0;
        loop {
            let response = self.send(&req).await?;
            match (response.status, mode) {
                (200 | 201 | 204, _) => {
                    let etag = response.header("etag").ok_or_else(|| {
                        self.backend_error(
                            &req,
                            Some(response.status),
                            "the PUT answer has no ETag".into(),
                        )
                    })?;
                    return Ok(PutOutcome::Written(Version::new(etag)));
                }
                (412, PutMode::Create) => return Ok(PutOutcome::AlreadyExists),
                (412, PutMode::Update(_)) => return Ok(PutOutcome::PreconditionFailed),
                (404, PutMode::Update(_))
                    if response.s3_error().0.as_deref() != Some("NoSuchBucket") =>
                {
                    return Ok(PutOutcome::PreconditionFailed)
                }
                // A concurrent conditional write raced ours. Never report
                // success: the caller re-reads after PreconditionFailed.
                (409, PutMode::Update(_)) => return Ok(PutOutcome::PreconditionFailed),
                (409, PutMode::Create | PutMode::Overwrite) => {
                    conflicts += 1;
                    if matches!(mode, PutMode::Create) {
                        let head = Self::object_request("HEAD", Method::HEAD, subject, object);
                        let found = self.send(&head).await?;
                        match found.status {
                            200 => return Ok(PutOutcome::AlreadyExists),
                            404 => {}
                            _ => return Err(self.status_error(&head, &found)),
                        }
                    }
                    if conflicts >= policy.max_attempts.max(1) {
                        return Err(self.status_error(&req, &response));
                    }
                    tokio::time::sleep(policy.backoff(conflicts)).await;
                }
                _ => return Err(self.status_error(&req, &response)),
            }
        }
    }

    /// Deletes a full key (used by the probe too).
    pub(crate) async fn delete_full(
        &self,
        subject: &str,
        object: &str,
    ) -> Result<(), ConnectorError> {
        let req = Self::object_request("DELETE", Method::DELETE, subject, object);
        let response = self.send(&req).await?;
        match response.status {
            200 | 202 | 204 => Ok(()),
            404 if response.s3_error().0.as_deref() != Some("NoSuchBucket") => Ok(()),
            _ => Err(self.status_error(&req, &response)),
        }
    }

    /// Fetches one listing page of the full prefix `full`.
    async fn list_page(
        &self,
        subject: &str,
        full: &str,
        token: Option<&str>,
    ) -> Result<xml::ListPage, ConnectorError> {
        let mut query = vec![
            ("list-type", "2".to_owned()),
            ("max-keys", self.config.list_page_size.to_string()),
            ("prefix", full.to_owned()),
        ];
        if let Some(token) = token {
            query.push(("continuation-token", token.to_owned()));
        }
        let req = Request {
            op: "LIST",
            subject,
            method: Method::GET,
            object: None,
            query,
            headers: Vec::new(),
            body: Bytes::new(),
        };
        let response = self.send(&req).await?;
        if response.status != 200 {
            return Err(self.status_error(&req, &response));
        }
        xml::parse_list(&String::from_utf8_lossy(&response.body))
            .map_err(|reason| self.backend_error(&req, Some(200), reason))
    }

    /// The metadata of a listed object, or `None` for objects DreamDB cannot
    /// name and never writes: probe keys, and foreign keys that are not valid
    /// [`ObjectKey`]s (such as the `dir/` markers some S3 consoles create).
    fn listed_meta(&self, object: xml::ListedObject) -> Option<ObjectMeta> {
        let relative = object.key.strip_prefix(self.config.prefix.as_str())?;
        if relative.starts_with(PROBE_DIR) {
            return None;
        }
        let key = ObjectKey::new(relative).ok()?;
        Some(ObjectMeta {
            key,
            size: object.size,
            version: Version::new(&object.etag),
            last_modified: object
                .last_modified
                .as_deref()
                .and_then(time::parse_rfc3339),
        })
    }
}

enum AttemptError {
    /// Retrying cannot help (the request could not be built or signed).
    Fatal(String),
    /// Timeouts, connection failures, broken bodies.
    Transient(String),
}

enum RetryState {
    Status(Response),
    Transport(String),
}

#[async_trait]
impl Connector for HttpConnector {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn get(&self, key: &ObjectKey) -> Result<GetResult, ConnectorError> {
        let object = self.object_key(key);
        let req = Self::object_request("GET", Method::GET, key.as_str(), &object);
        let response = self.send(&req).await?;
        match response.status {
            200 => {
                let size = response.body.len() as u64;
                let meta = self.meta_from_headers(key, &req, &response, size)?;
                Ok(GetResult {
                    bytes: response.body,
                    meta,
                })
            }
            404 if response.s3_error().0.as_deref() != Some("NoSuchBucket") => {
                Err(self.not_found(key))
            }
            _ => Err(self.status_error(&req, &response)),
        }
    }

    async fn get_range(&self, key: &ObjectKey, range: ByteRange) -> Result<Bytes, ConnectorError> {
        let invalid = |size: u64| ConnectorError::InvalidRange {
            key: key.to_string(),
            range,
            size,
        };
        if range.is_empty() {
            // Error path only: learn the size for the message (and NotFound).
            let meta = self.head(key).await?;
            return Err(invalid(meta.size));
        }
        let object = self.object_key(key);
        let mut req = Self::object_request("GET", Method::GET, key.as_str(), &object);
        req.headers
            .push(("range", format!("bytes={}-{}", range.start, range.end - 1)));
        let response = self.send(&req).await?;
        // `Content-Range: bytes first-last/total` (or `bytes */total` on 416).
        let content_range = response.header("content-range").and_then(|v| {
            let v = v.trim().strip_prefix("bytes")?.trim();
            let (span, total) = v.split_once('/')?;
            let total = total.trim().parse::<u64>().ok();
            let span = span.trim().split_once('-').and_then(|(a, b)| {
                Some((a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?))
            });
            Some((span, total))
        });
        match response.status {
            206 => {
                let Some((Some((first, last)), total)) = content_range else {
                    return Err(self.backend_error(
                        &req,
                        Some(206),
                        "a 206 answer without a usable Content-Range".into(),
                    ));
                };
                let size = total.unwrap_or(last + 1);
                // Servers clamp a range that reaches past the end: refuse it.
                if first != range.start || last + 1 != range.end || !range.fits(size) {
                    return Err(invalid(size));
                }
                if response.body.len() as u64 != range.len() {
                    return Err(self.backend_error(
                        &req,
                        Some(206),
                        format!(
                            "asked for {} bytes, got {} (truncated answer)",
                            range.len(),
                            response.body.len()
                        ),
                    ));
                }
                Ok(response.body)
            }
            // The server ignored the Range header and sent the whole object.
            200 => {
                let size = response.body.len() as u64;
                if !range.fits(size) {
                    return Err(invalid(size));
                }
                Ok(response
                    .body
                    .slice(range.start as usize..range.end as usize))
            }
            416 => {
                let size = match content_range.and_then(|(_, total)| total) {
                    Some(total) => total,
                    None => self.head(key).await?.size,
                };
                Err(invalid(size))
            }
            404 if response.s3_error().0.as_deref() != Some("NoSuchBucket") => {
                Err(self.not_found(key))
            }
            _ => Err(self.status_error(&req, &response)),
        }
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ConnectorError> {
        let object = self.object_key(key);
        let req = Self::object_request("HEAD", Method::HEAD, key.as_str(), &object);
        let response = self.send(&req).await?;
        match response.status {
            200 => {
                let size = response
                    .header("content-length")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| {
                        self.backend_error(
                            &req,
                            Some(200),
                            "HEAD answer without Content-Length".into(),
                        )
                    })?;
                self.meta_from_headers(key, &req, &response, size)
            }
            404 => Err(self.not_found(key)),
            _ => Err(self.status_error(&req, &response)),
        }
    }

    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, ConnectorError> {
        let object = self.object_key(key);
        self.put_full(key.as_str(), &object, bytes, &mode, self.if_match)
            .await
    }

    fn list<'a>(&'a self, prefix: &'a KeyPrefix) -> ListStream<'a> {
        let full = prefix.under(&self.config.prefix);
        let pages = futures::stream::try_unfold(
            Some(None::<String>),
            move |state: Option<Option<String>>| {
                let full = full.clone();
                async move {
                    let Some(token) = state else {
                        return Ok(None);
                    };
                    let page = self
                        .list_page(prefix.as_str(), full.as_str(), token.as_deref())
                        .await?;
                    let next = if page.is_truncated {
                        match &page.next_token {
                            Some(next) if Some(next) != token.as_ref() => Some(Some(next.clone())),
                            _ => {
                                return Err(ConnectorError::Backend {
                                    backend: self.describe.clone(),
                                    operation: "LIST",
                                    key: prefix.to_string(),
                                    status: Some(200),
                                    message: "a truncated listing without a new \
                                              NextContinuationToken"
                                        .into(),
                                })
                            }
                        }
                    } else {
                        None
                    };
                    Ok(Some((page.objects, next)))
                }
            },
        );
        pages
            .map_ok(move |objects| {
                let metas: Vec<Result<ObjectMeta, ConnectorError>> = objects
                    .into_iter()
                    .filter_map(|object| self.listed_meta(object).map(Ok))
                    .collect();
                futures::stream::iter(metas)
            })
            .try_flatten()
            .boxed()
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), ConnectorError> {
        let object = self.object_key(key);
        self.delete_full(key.as_str(), &object).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding() {
        assert_eq!(uri_encode("a/b c+d~é", true), "a/b%20c%2Bd~%C3%A9");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }

    #[test]
    fn retryable_statuses() {
        for s in [500, 502, 503, 504, 408, 429] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [200, 400, 403, 404, 409, 412, 416] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }
}
