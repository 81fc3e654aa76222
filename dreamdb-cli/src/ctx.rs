//! The backend, the dataset's repo, and resolving version names.

use std::sync::Arc;
use std::time::Duration;

use dreamdb_connector::Connector;
use dreamdb_core::ref_name::RefName;
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{Repo, RepoConfig, RetryPolicy, SleepFn};
use dreamdb_protocol::objects::DatasetName;
use dreamdb_protocol::store::{ObjectStore, DEFAULT_CACHE_BYTES};

use crate::exit::CliError;
use crate::out::Out;

/// What every verb gets.
pub struct Ctx {
    pub connector: Arc<dyn Connector>,
    /// The backend URL as given (for SDK handles opened on `connector`).
    pub backend: String,
    pub dataset: String,
    pub out: Out,
}

/// A resolved version.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The Manifest.
    pub manifest: ContentHash,
    /// How it was named: `refs/<n>`, `tags/<n>` or the hash.
    pub via: String,
}

impl Ctx {
    /// Opens the backend (any URL `dreamdb-connector-http` knows).
    pub async fn open(backend: &str, dataset: &str, out: Out) -> Result<Ctx, CliError> {
        let connector = dreamdb_connector_http::connect(backend).await?;
        Ok(Ctx {
            connector,
            backend: backend.to_owned(),
            dataset: dataset.to_owned(),
            out,
        })
    }

    /// The repo of `--dataset`.
    pub fn repo(&self) -> Result<Repo, CliError> {
        let dataset = DatasetName::parse(&self.dataset)
            .map_err(|e| CliError::usage(format!("--dataset {:?}: {e}", self.dataset)))?;
        let sleep: SleepFn = Arc::new(|d: Duration| Box::pin(tokio::time::sleep(d)));
        let config = RepoConfig {
            retry: RetryPolicy::default().with_sleep(sleep),
            ..RepoConfig::default()
        };
        Ok(Repo::with_config(
            ObjectStore::new(self.connector.clone(), DEFAULT_CACHE_BYTES),
            dataset,
            config,
        )?)
    }
}

/// Parses a ref or tag name.
pub fn ref_name(name: &str) -> Result<RefName, CliError> {
    RefName::parse(name).map_err(|e| CliError::usage(format!("{name:?} is not a valid name: {e}")))
}

/// Resolves `spec`: `refs/<n>` or `tags/<n>` explicitly, else a branch,
/// then a tag, then a Manifest hash (66 hex digits).
pub async fn resolve(repo: &Repo, spec: &str) -> Result<Resolved, CliError> {
    let not_found = || CliError {
        code: crate::exit::ERROR,
        class: "ref-not-found".to_owned(),
        message: format!(
            "{spec:?} is not a branch, a tag or a Manifest hash of dataset {}",
            repo.dataset()
        ),
    };
    if let Some(name) = spec.strip_prefix("refs/") {
        let state = repo
            .read_ref(&ref_name(name)?)
            .await?
            .ok_or_else(not_found)?;
        return Ok(Resolved {
            manifest: state.manifest,
            via: spec.to_owned(),
        });
    }
    if let Some(name) = spec.strip_prefix("tags/") {
        let state = repo
            .read_tag(&ref_name(name)?)
            .await?
            .ok_or_else(not_found)?;
        return Ok(Resolved {
            manifest: state.manifest,
            via: spec.to_owned(),
        });
    }
    if let Ok(name) = RefName::parse(spec) {
        if let Some(state) = repo.read_ref(&name).await? {
            return Ok(Resolved {
                manifest: state.manifest,
                via: format!("refs/{spec}"),
            });
        }
        if let Some(state) = repo.read_tag(&name).await? {
            return Ok(Resolved {
                manifest: state.manifest,
                via: format!("tags/{spec}"),
            });
        }
    }
    if let Ok(hash) = ContentHash::from_hex(spec) {
        // Must be a readable Manifest.
        repo.manifest(&hash).await?;
        return Ok(Resolved {
            manifest: hash,
            via: hash.to_hex(),
        });
    }
    Err(not_found())
}
