//! The capability probe: does this server make conditional writes atomic,
//! and which `If-Match` form does it accept?
//!
//! Run once per process per endpoint and bucket (cached in a process-wide
//! map; concurrent `connect`s to the same store wait for one probe), inside
//! `connect`, never on the hot path. On a fresh key
//! `<prefix>.dreamdb-probe/<random>` it checks:
//!
//! 1. `Create` writes; a second `Create` answers `AlreadyExists`;
//! 2. `Update` with the version just returned, in the quoted form
//!    (`If-Match: "etag"`) and in the unquoted form (`If-Match: etag`),
//!    each with new bytes: at least one must write. The quoted form is
//!    preferred when both work; radosgw accepts only the unquoted one;
//! 3. `Update` with a stale version (in the chosen form) must fail;
//!
//! then deletes the probe key. A server that ignores the conditional headers,
//! or accepts neither `If-Match` form, is refused with
//! [`ConnectorError::Unsupported`]. Probe keys are never listed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use dreamdb_connector::{Connector, ConnectorError, PutMode, PutOutcome, Version};
use tokio::sync::OnceCell;

use crate::config::IfMatchForm;
use crate::connector::{HttpConnector, PROBE_DIR};

type Cache = Mutex<HashMap<String, Arc<OnceCell<IfMatchForm>>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The learned form for `connector`'s endpoint and bucket, probing once.
/// Failed probes are not cached.
pub(crate) async fn probe_cached(connector: &HttpConnector) -> Result<IfMatchForm, ConnectorError> {
    let config = connector.config();
    let cache_key = format!("{}/{}", config.endpoint_str(), config.bucket);
    let cell = {
        let mut map = cache()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(map.entry(cache_key).or_default())
    };
    cell.get_or_try_init(|| probe(connector)).await.copied()
}

/// Runs the probe (uncached) and returns the `If-Match` form to use.
pub(crate) async fn probe(connector: &HttpConnector) -> Result<IfMatchForm, ConnectorError> {
    let config = connector.config();
    let object = format!(
        "{}{PROBE_DIR}{:016x}",
        config.prefix.as_str(),
        rand::random::<u64>()
    );
    let outcome = run(connector, &object).await;
    // Best effort: the probe key is invisible to listings anyway.
    let cleanup = connector.delete_full("probe", &object).await;
    let form = outcome?;
    cleanup?;
    Ok(form)
}

fn unsupported(connector: &HttpConnector, reason: String) -> ConnectorError {
    ConnectorError::Unsupported {
        backend: connector.describe(),
        reason,
    }
}

async fn run(connector: &HttpConnector, object: &str) -> Result<IfMatchForm, ConnectorError> {
    let put = |bytes: &'static [u8], mode: PutMode, form: IfMatchForm| async move {
        connector
            .put_full("probe", object, Bytes::from_static(bytes), &mode, form)
            .await
    };
    let any = IfMatchForm::Quoted;

    let v1 = match put(b"dreamdb probe 1", PutMode::Create, any).await? {
        PutOutcome::Written(v) => v,
        other => {
            return Err(unsupported(
                connector,
                format!("create-if-absent (If-None-Match: *) of a fresh key answered {other:?}"),
            ))
        }
    };
    match put(b"dreamdb probe 2", PutMode::Create, any).await? {
        PutOutcome::AlreadyExists => {}
        other => {
            return Err(unsupported(
                connector,
                format!(
                    "create-if-absent (If-None-Match: *) of an existing key answered {other:?} \
                     instead of 412: the server ignores the header. Conditional writes are \
                     required; Garage, for example, ignores If-None-Match"
                ),
            ))
        }
    }

    let mut current: Version = v1.clone();
    let mut accepted = Vec::new();
    for (form, bytes) in [
        (IfMatchForm::Quoted, b"dreamdb probe 3" as &'static [u8]),
        (IfMatchForm::Unquoted, b"dreamdb probe 4"),
    ] {
        if let PutOutcome::Written(v) = put(bytes, PutMode::Update(current.clone()), form).await? {
            accepted.push(form);
            current = v;
        }
    }
    let Some(&form) = accepted.first() else {
        return Err(unsupported(
            connector,
            format!(
                "If-Match with the current ETag was refused in both the quoted and the \
                 unquoted form (ETag {v1}); compare-and-swap updates are required"
            ),
        ));
    };
    if current == v1 {
        return Err(unsupported(
            connector,
            "an If-Match update wrote new bytes but the ETag did not change".into(),
        ));
    }
    match put(b"dreamdb probe 5", PutMode::Update(v1.clone()), form).await? {
        PutOutcome::PreconditionFailed => Ok(form),
        other => Err(unsupported(
            connector,
            format!(
                "If-Match with a stale ETag answered {other:?} instead of 412: the server \
                 ignores If-Match. Conditional writes are required"
            ),
        )),
    }
}

/// Forgets every cached probe result (tests).
#[doc(hidden)]
pub fn clear_probe_cache() {
    cache()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clear();
}
