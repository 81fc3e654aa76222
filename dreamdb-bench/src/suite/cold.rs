//! Cold queries from the S3-compatible server: a fresh handle (empty
//! session cache) opens the dataset and runs one query, through a
//! [`Probe`] that counts sequential round trips, calls and bytes.
//!
//! Two ways in: **by ref** (`Dataset::open`, which reads `main`; the query
//! reads it again to pin its version) and **by a pinned Manifest hash**
//! (`Dataset::open_at` with `Version::Manifest`: no ref read). The
//! connector is built once per set (its one-time capability probe of the
//! server is not part of a query); every measured query gets a new handle.

use std::sync::Arc;
use std::time::Instant;

use dreamdb_connector::Connector;
use dreamdb_dataset::dataset::{OpenOptions, Version};
use dreamdb_dataset::read::QueryRequest;
use dreamdb_dataset::Dataset;
use serde_json::{json, Value};

use super::ingest::{FIELD, NAME};
use super::query::nprobes;
use super::SuiteError;
use crate::probe::{Probe, ProbeCounts};
use crate::sets::BenchSet;

/// Fresh handles measured per way in.
const TRIALS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    super::quantile(&v, 0.5)
}

/// Cold-query rows for `set` stored at `url` (see the module docs).
pub async fn cold_queries(set: &BenchSet, url: &str) -> Result<Vec<Value>, SuiteError> {
    let inner: Arc<dyn Connector> = dreamdb_connector_http::connect(url).await?;
    let probe = Arc::new(Probe::new(inner));
    let connector: Arc<dyn Connector> = probe.clone();
    let manifest = Dataset::open_on(connector.clone(), url, NAME, OpenOptions::default())
        .await?
        .manifest_hash()
        .await?;
    // About 8 % of the cells, refine 10: a high-recall setting.
    let nprobe = nprobes(set.cells).get(3).copied().unwrap_or(1);
    let mut out = Vec::new();
    for by in ["ref", "manifest"] {
        let mut trials: Vec<(ProbeCounts, ProbeCounts, f64)> = Vec::new();
        for i in 0..TRIALS {
            // Cold means cold: no decoded state left by an earlier trial.
            dreamdb_dataset::read::clear_decoded_caches();
            probe.reset();
            let t = Instant::now();
            let ds = if by == "ref" {
                Dataset::open_on(connector.clone(), url, NAME, OpenOptions::default()).await?
            } else {
                Dataset::open_at_on(
                    connector.clone(),
                    url,
                    NAME,
                    Version::Manifest(manifest),
                    OpenOptions::default(),
                )
                .await?
            };
            let open = probe.counts();
            probe.reset();
            let q = set.queries.row(i % set.queries.rows).to_vec();
            let request = QueryRequest::new(FIELD, q, 10)
                .nprobe(nprobe)
                .refine_factor(10);
            ds.query(&request).await?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            trials.push((open, probe.counts(), ms));
        }
        let med = |f: &dyn Fn(&(ProbeCounts, ProbeCounts, f64)) -> f64| {
            median(trials.iter().map(f).collect())
        };
        let row = json!({
            "set": set.name, "by": by, "nprobe": nprobe, "refine": 10, "trials": TRIALS,
            "open_round_trips": med(&|t| t.0.round_trips as f64),
            "query_round_trips": med(&|t| t.1.round_trips as f64),
            "round_trips": med(&|t| (t.0.round_trips + t.1.round_trips) as f64),
            "calls": med(&|t| (t.0.calls + t.1.calls) as f64),
            "bytes_read": med(&|t| (t.0.bytes_read + t.1.bytes_read) as f64),
            "ms": med(&|t| t.2),
        });
        eprintln!("suite: {} cold by {by}: {row}", set.name);
        out.push(row);
    }
    Ok(out)
}
