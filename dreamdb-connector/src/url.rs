//! Backend URLs: which store a user means, parsed once and strictly.
//!
//! | Written as | Means |
//! |---|---|
//! | `path/to/dir`, `/abs/dir`, `./dir`, `file:///abs/dir` | [`BackendUrl::Local`] |
//! | `memory://` | a fresh, private [`BackendUrl::Memory`] store |
//! | `memory://name` | the process-wide memory store `name` |
//! | `http://host[:port]/bucket[/prefix]`, `https://...` | [`BackendUrl::Http`] (S3-compatible) |
//!
//! Anything else (`s3://`, `ftp://`, `file://host/...`) is refused rather
//! than guessed at. Credentials never belong in a URL, where they leak into
//! shell history, logs and error messages: `https://user:secret@host/...` is
//! refused with a pointer to the `AWS_*` environment variables, and no error
//! message repeats the secret.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::local::LocalConnector;
use crate::memory::MemoryConnector;
use crate::{Connector, ConnectorError};

/// A parsed backend location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendUrl {
    /// An in-process store: private if `name` is `None`, else shared by
    /// every `memory://name` in the process.
    Memory {
        /// The registry name.
        name: Option<String>,
    },
    /// A local directory.
    Local {
        /// The root directory, as given (relative paths stay relative).
        root: PathBuf,
    },
    /// An S3-compatible store, opened by `dreamdb-connector-http`.
    Http {
        /// The endpoint, bucket and optional key prefix; never credentials.
        url: ::url::Url,
    },
}

fn invalid(raw: &str, reason: impl Into<String>) -> ConnectorError {
    ConnectorError::InvalidUrl {
        url: redact(raw),
        reason: reason.into(),
    }
}

/// `raw` with any `userinfo@` part of its authority replaced by `***@`, so
/// it can appear in messages.
fn redact(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &raw[authority_start..];
    // A secret may itself contain '/', '?' or '#' (AWS secrets often hold
    // '/'), so the userinfo ends at the LAST '@' anywhere: over-redacting a
    // path that holds '@' is the safe mistake.
    match rest.rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &raw[..authority_start],
            &raw[authority_start + at..]
        ),
        None => raw.to_owned(),
    }
}

/// The scheme of `raw` if it looks like `scheme:...` (two or more
/// characters, so Windows drive letters stay paths).
fn scheme_of(raw: &str) -> Option<&str> {
    let colon = raw.find(':')?;
    let scheme = &raw[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let well_formed = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (well_formed && scheme.len() >= 2).then_some(scheme)
}

impl BackendUrl {
    /// Parses a backend location (see the [module docs](self)).
    pub fn parse(raw: &str) -> Result<Self, ConnectorError> {
        if raw.trim().is_empty() {
            return Err(invalid(raw, "empty; give a directory path or a URL"));
        }
        let Some(scheme) = scheme_of(raw) else {
            return Ok(BackendUrl::Local {
                root: PathBuf::from(raw),
            });
        };
        let scheme = scheme.to_ascii_lowercase();
        let known = matches!(scheme.as_str(), "memory" | "file" | "http" | "https");
        if known && !raw[scheme.len() + 1..].starts_with("//") {
            return Err(invalid(
                raw,
                format!("write {scheme}://... (with two slashes after the colon)"),
            ));
        }
        match scheme.as_str() {
            "memory" => Self::parse_memory(raw),
            "file" => Self::parse_file(raw),
            "http" | "https" => Self::parse_http(raw),
            other => Err(invalid(
                raw,
                format!(
                    "unsupported scheme {other:?}; use a directory path, file:///abs/path, \
                     memory://[name] or http(s)://host/bucket (write a relative path \
                     containing ':' as ./path)"
                ),
            )),
        }
    }

    fn parse_memory(raw: &str) -> Result<Self, ConnectorError> {
        let rest = &raw["memory://".len()..];
        let name = rest.strip_suffix('/').unwrap_or(rest);
        if name.is_empty() {
            return Ok(BackendUrl::Memory { name: None });
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(invalid(
                raw,
                "a memory store name uses only letters, digits, '-', '_' and '.'",
            ));
        }
        Ok(BackendUrl::Memory {
            name: Some(name.to_owned()),
        })
    }

    fn parse_file(raw: &str) -> Result<Self, ConnectorError> {
        let url = ::url::Url::parse(raw).map_err(|err| invalid(raw, err.to_string()))?;
        if url
            .host_str()
            .is_some_and(|h| !h.is_empty() && h != "localhost")
        {
            return Err(invalid(
                raw,
                "file URLs name a local absolute path: file:///abs/path (three slashes)",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(raw, "file URLs take no query or fragment"));
        }
        let root = url
            .to_file_path()
            .map_err(|()| invalid(raw, "not a local absolute path"))?;
        Ok(BackendUrl::Local { root })
    }

    fn parse_http(raw: &str) -> Result<Self, ConnectorError> {
        let url = ::url::Url::parse(raw).map_err(|err| invalid(raw, err.to_string()))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                raw,
                "credentials in the URL are refused; set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if needed) in the environment",
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid(raw, "no host"));
        }
        let bucket = url
            .path_segments()
            .and_then(|mut segments| segments.next())
            .unwrap_or("");
        if bucket.is_empty() {
            return Err(invalid(
                raw,
                "no bucket: write http(s)://host[:port]/bucket[/prefix]",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(raw, "backend URLs take no query or fragment"));
        }
        Ok(BackendUrl::Http { url })
    }
}

impl FromStr for BackendUrl {
    type Err = ConnectorError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        BackendUrl::parse(raw)
    }
}

impl fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendUrl::Memory { name } => write!(f, "memory://{}", name.as_deref().unwrap_or("")),
            BackendUrl::Local { root } => write!(f, "{}", root.display()),
            BackendUrl::Http { url } => write!(f, "{url}"),
        }
    }
}

/// Opens the backends this crate implements: memory and local directories.
/// Returns `None` for [`BackendUrl::Http`], which `dreamdb-connector-http`
/// opens.
pub fn open_builtin(url: &BackendUrl) -> Result<Option<Arc<dyn Connector>>, ConnectorError> {
    Ok(match url {
        BackendUrl::Memory { name: None } => Some(Arc::new(MemoryConnector::new())),
        BackendUrl::Memory { name: Some(name) } => Some(Arc::new(MemoryConnector::named(name))),
        BackendUrl::Local { root } => Some(Arc::new(LocalConnector::open(root)?)),
        BackendUrl::Http { .. } => None,
    })
}
