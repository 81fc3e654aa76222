//! The DreamDB side of the benchmark suite (`src/bin/suite.rs`): each
//! measure of issue #10 as a function that returns JSON rows, run by
//! [`run`] over the sets of a [`Mode`] and written to one JSON file that
//! `python/report.py` merges with the peers' file.
//!
//! Threads: the process runs with one rayon pool and one tokio runtime of
//! `threads` workers (`--threads`), so a 1-thread run is 1 thread for
//! every CPU-bound step (index training, RaBitQ encoding, query scoring);
//! the local backend's file I/O runs on tokio's blocking pool, as it does
//! for any user. Measures are figures for the report, never assertions.

pub mod cold;
pub mod commit;
pub mod ingest;
pub mod iterate;
pub mod maintain;
pub mod query;

use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Value};

use crate::data::DataError;
use crate::sets::{bench_sets, Mode};

/// Why a measure failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SuiteError {
    /// Preparing data failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A dataset operation failed.
    #[error("dataset: {0}")]
    Dataset(#[from] dreamdb_dataset::DatasetError),
    /// A connector failed.
    #[error("connector: {0}")]
    Connector(#[from] dreamdb_connector::ConnectorError),
    /// The in-memory pipeline refused its input.
    #[error("spatial: {0}")]
    Spatial(#[from] dreamdb_protocol::spatial::SpatialError),
    /// A file or process failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A measure saw something it cannot report honestly.
    #[error("{0}")]
    Invalid(String),
}

impl SuiteError {
    /// An I/O error with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        SuiteError::Io {
            what: what.into(),
            source,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Suite size.
    pub mode: Mode,
    /// Worker threads (rayon and tokio).
    pub threads: usize,
    /// Where the sets' `.npy` files are cached.
    pub data_dir: PathBuf,
    /// Scratch directory for datasets written by the run.
    pub work_dir: PathBuf,
    /// The S3-compatible server's URL (`http://host:port/bucket`), if any.
    pub s3_url: Option<String>,
    /// Measures to run (`None`: all).
    pub only: Option<Vec<String>>,
}

impl Config {
    fn wants(&self, measure: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|m| m == measure))
    }
}

/// Peak resident set size of this process so far, MiB (Linux `VmHWM`).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// `p`-quantile of sorted values (nearest rank below).
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn say(msg: impl AsRef<str>) {
    eprintln!("suite: {}", msg.as_ref());
}

/// Deletes every object under `url` (a run's own prefix on the S3 server).
pub async fn remove_all(url: &str) -> Result<u64, SuiteError> {
    use dreamdb_connector::ConnectorExt as _;
    let connector = dreamdb_connector_http::connect(url).await?;
    Ok(connector
        .delete_prefix(&dreamdb_connector::KeyPrefix::all(), 16)
        .await?)
}

/// Deletes what interrupted runs left on the S3 server at `bucket_url`:
/// every object under a top-level `bench-*` prefix. Returns the count.
pub async fn clean_s3_runs(bucket_url: &str) -> Result<u64, SuiteError> {
    use futures::TryStreamExt as _;
    let connector = dreamdb_connector_http::connect(bucket_url).await?;
    let keys: Vec<dreamdb_connector::ObjectKey> = connector
        .list(&dreamdb_connector::KeyPrefix::all())
        .map_ok(|meta| meta.key)
        .try_filter(|key| std::future::ready(key.as_str().starts_with("bench-")))
        .try_collect()
        .await?;
    let count = keys.len() as u64;
    for key in keys {
        connector.delete(&key).await?;
    }
    Ok(count)
}

/// Runs the configured measures on a `threads`-worker runtime and returns
/// the JSON document (see `python/report.py` for its use).
pub fn run(config: &Config) -> Result<Value, SuiteError> {
    let started = Instant::now();
    let rt = if config.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| SuiteError::io("tokio runtime", e))?;
    say(format!("preparing the {} sets", config.mode.name()));
    let sets = bench_sets(config.mode, &config.data_dir)?;
    std::fs::create_dir_all(&config.work_dir)
        .map_err(|e| SuiteError::io(format!("create {}", config.work_dir.display()), e))?;
    let run_id = format!(
        "bench-{}-{}",
        std::process::id(),
        crate::suite::ingest::unix_secs()
    );
    let mut doc = json!({
        "system": "dreamdb",
        "version": env!("CARGO_PKG_VERSION"),
        "mode": config.mode.name(),
        "threads": config.threads,
        "sets": sets.iter().map(|s| s.describe()).collect::<Vec<_>>(),
        "ingest": [], "query": [], "cold": [], "commit": [], "iteration": [], "maintenance": [],
        "s3": config.s3_url.is_some(),
    });
    let mut push = |key: &str, rows: Vec<Value>| {
        if let Some(a) = doc[key].as_array_mut() {
            a.extend(rows);
        }
    };
    for set in &sets {
        if !(config.wants("ingest")
            || config.wants("query")
            || config.wants("iteration")
            || config.wants("cold"))
        {
            break;
        }
        let local = config.work_dir.join(format!("{run_id}-{}", set.name));
        say(format!("{}: ingest to a local directory", set.name));
        let (ds, anchors, row) =
            rt.block_on(ingest::ingest(set, &local.to_string_lossy(), "local"))?;
        push("ingest", vec![row]);
        if let Some(s3) = &config.s3_url {
            if config.wants("ingest") || config.wants("cold") {
                say(format!("{}: ingest to the S3-compatible server", set.name));
                let url = format!("{s3}/{run_id}/{}", set.name);
                let (_, _, row) = rt.block_on(ingest::ingest(set, &url, "s3"))?;
                push("ingest", vec![row]);
                if config.wants("cold") {
                    say(format!("{}: cold queries from S3", set.name));
                    push("cold", rt.block_on(cold::cold_queries(set, &url))?);
                }
                // The shared test server keeps objects in memory: free them.
                rt.block_on(remove_all(&url))?;
            }
        }
        if config.wants("query") {
            say(format!("{}: warm query sweep (Dataset API)", set.name));
            push(
                "query",
                rt.block_on(query::sweep_dataset(
                    set,
                    &local.to_string_lossy(),
                    &anchors,
                    config.threads,
                ))?,
            );
            if config.threads == 1 {
                say(format!("{}: in-memory pipeline sweep", set.name));
                push("query", query::sweep_in_memory(set)?);
            }
        }
        if config.wants("iteration") && config.threads == 1 {
            say(format!("{}: Arrow iteration", set.name));
            push("iteration", vec![rt.block_on(iterate::arrow(set, &ds))?]);
            push(
                "iteration",
                vec![iterate::rss_subprocess(&local, &set.name, set.base.rows)?],
            );
        }
        drop(ds);
        std::fs::remove_dir_all(&local).ok();
    }
    if config.wants("iteration") && config.threads == 1 && config.mode != Mode::Quick {
        let dir = config.work_dir.join(format!("{run_id}-rss1m"));
        say("peak RSS iterating 1,000,000 x 128 (10 appends)");
        push("iteration", vec![rt.block_on(iterate::rss_1m(&dir))?]);
        std::fs::remove_dir_all(&dir).ok();
    }
    if config.wants("commit") && config.threads == 1 {
        let dir = config.work_dir.join(format!("{run_id}-commit"));
        say("commit cost as the dataset grows");
        push(
            "commit",
            rt.block_on(commit::commit_cost(config.mode, &dir))?,
        );
        if config.wants("maintenance") {
            let connector = rt.block_on(dreamdb_connector_http::connect(&dir.to_string_lossy()))?;
            push(
                "maintenance",
                vec![rt.block_on(maintain::gc_row(connector, "commit-cost dataset"))?],
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }
    if config.wants("maintenance") && config.threads == 1 {
        if let Some(set) = sets.iter().find(|s| s.name.starts_with("synthetic")) {
            let dir = config.work_dir.join(format!("{run_id}-maintain"));
            say(format!("{}: maintenance after skewed growth", set.name));
            push(
                "maintenance",
                rt.block_on(maintain::maintenance(set, &dir))?,
            );
            std::fs::remove_dir_all(&dir).ok();
        }
    }
    doc["seconds"] = json!(started.elapsed().as_secs_f64());
    doc["peak_rss_mib"] = json!(peak_rss_mib());
    Ok(doc)
}
