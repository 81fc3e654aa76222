//! Sharded Ada-IVF steps: workers `ada_ivf_step_shard(J, i, n)` and one
//! `ada_ivf_orchestrate(J, n)` (design/0003 § Sharded mode).
//!
//! Keys, under the dataset's prefix (written through the connector, never
//! listed):
//!
//! - `datasets/<name>/jobs/<J>/base`: the job's base, created once by the
//!   first worker (`PutMode::Create`; the others read it), so every worker
//!   plans on the same Manifest even when the branch moves meanwhile;
//! - `datasets/<name>/jobs/<J>/shard-<i>`: worker i's result.
//!
//! Both are deterministic CBOR maps ([`dreamdb_core::cbor`]); hashes and
//! track keys are lowercase hex text. `base`: `{v, job, field, base,
//! split, merge, seed, max_parts}`. `shard-<i>`: `{v, job, field, base,
//! index, shard, of, cells, removed, added, plus_counts, plus_runs,
//! runs_read, records, buckets, from_codes}` where `removed` and `added`
//! are track entries `{k, s, n, x, h?, r?}`: key, segment, count, three
//! integers (anchor run: last anchor, table offset, table length; cell
//! run: offset, length, 0), the run hash and raw rows `[storage, offset,
//! len]` of cell runs. Workers write their buckets (content-addressed
//! objects) before their result; the orchestrator checks that every
//! result names the same job, field, base, index and shard count, merges
//! them and publishes one Manifest with one compare-and-swap (rebased like
//! the unsharded step; `conflict` when the tip moved incompatibly).

use bytes::Bytes;
use dreamdb_connector::{ObjectKey, PutMode, PutOutcome};
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::ObjectKind;
use dreamdb_protocol::objects::SpatialIndexObject;
use dreamdb_protocol::track::{Change, TrackKey, TrackValue};
use serde::{Deserialize, Serialize};

use super::ada::{check_options, step_message, AdaIvfStepOptions, AdaIvfStepReport, ShardWork};
use super::runs::Entry;
use super::WriteCost;
use crate::dataset::Dataset;
use crate::write::compat;
use crate::write::layout::{index_of_object, LoadedSpatial};
use crate::write::stats::StatsData;
use crate::DatasetError;

/// Version of the job objects' format.
pub const JOB_FORMAT_VERSION: u32 = 1;

/// What a shard worker did.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardReport {
    /// The job.
    pub job: String,
    /// This worker.
    pub shard: u32,
    /// Of how many.
    pub of: u32,
    /// The key its result was written to.
    pub result_key: String,
    /// The worker's part of the step (no Manifest).
    pub step: AdaIvfStepReport,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobBase {
    v: u32,
    job: String,
    field: String,
    base: String,
    split: f64,
    merge: f64,
    seed: u64,
    max_parts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEntry {
    k: String,
    s: String,
    n: u32,
    x: [u64; 3],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    h: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<(String, u64, u64, String)>,
    /// An anchor run's vector storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardResult {
    v: u32,
    job: String,
    field: String,
    base: String,
    index: String,
    shard: u32,
    of: u32,
    cells: Vec<u32>,
    removed: Vec<WireEntry>,
    added: Vec<WireEntry>,
    plus_counts: Vec<u32>,
    plus_runs: Vec<u32>,
    runs_read: u64,
    records: u64,
    buckets: u64,
    from_codes: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn bad_job(reason: impl Into<String>) -> DatasetError {
    DatasetError::Integrity(format!("job object: {}", reason.into()))
}

fn hash_of(text: &str) -> Result<ContentHash, DatasetError> {
    ContentHash::from_hex(text).map_err(|e| bad_job(format!("hash {text:?}: {e}")))
}

fn wire(entry: &Entry) -> WireEntry {
    let (key, value) = entry;
    match *value {
        TrackValue::AnchorRun {
            segment,
            last_anchor,
            count,
            table_offset,
            table_len,
            storage,
        } => WireEntry {
            k: hex(key.as_bytes()),
            s: segment.to_hex(),
            n: count,
            x: [last_anchor, table_offset, table_len],
            h: None,
            r: None,
            v: storage.map(|s| s.to_hex()),
        },
        TrackValue::CellRun {
            segment,
            offset,
            len,
            count,
            run_hash,
            ..
        } => WireEntry {
            k: hex(key.as_bytes()),
            s: segment.to_hex(),
            n: count,
            x: [offset, len, 0],
            h: Some(run_hash.to_hex()),
            r: compat::raw_rows_of(value)
                .map(|r| (r.storage.to_hex(), r.offset, r.len, r.hash.to_hex())),
            v: None,
        },
    }
}

fn unwire(w: &WireEntry) -> Result<Entry, DatasetError> {
    let key = TrackKey::from_bytes(&unhex(&w.k).ok_or_else(|| bad_job("key is not hex"))?)
        .map_err(|e| bad_job(format!("key: {e}")))?;
    let segment = hash_of(&w.s)?;
    let value = if key.is_anchor_run() {
        TrackValue::AnchorRun {
            segment,
            last_anchor: w.x[0],
            count: w.n,
            table_offset: w.x[1],
            table_len: w.x[2],
            storage: w.v.as_deref().map(hash_of).transpose()?,
        }
    } else {
        let run_hash = hash_of(
            w.h.as_deref()
                .ok_or_else(|| bad_job("cell run without hash"))?,
        )?;
        let raw = match &w.r {
            Some((s, o, l, h)) => Some(compat::RawRows {
                storage: hash_of(s)?,
                offset: *o,
                len: *l,
                hash: hash_of(h)?,
            }),
            None => None,
        };
        compat::cell_run(segment, w.x[0], w.x[1], w.n, run_hash, raw)
    };
    Ok((key, value))
}

fn check_job_id(job: &str) -> Result<(), DatasetError> {
    let ok = !job.is_empty()
        && job.len() <= 64
        && job
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !job.starts_with('.');
    if !ok {
        return Err(DatasetError::invalid(
            "_job",
            format!(
                "job id {job:?} must be 1-64 characters of [A-Za-z0-9._-], not starting with '.'"
            ),
        ));
    }
    Ok(())
}

fn check_shard(shard: u32, of: u32) -> Result<(), DatasetError> {
    if of == 0 || of > 4096 || shard >= of {
        return Err(DatasetError::invalid(
            "_shard",
            format!("shard {shard} of {of}: need 0 <= shard < of <= 4096"),
        ));
    }
    Ok(())
}

impl Dataset {
    fn job_key(&self, job: &str, leaf: &str) -> Result<ObjectKey, DatasetError> {
        ObjectKey::new(format!("datasets/{}/jobs/{job}/{leaf}", self.name()))
            .map_err(|e| DatasetError::invalid("_job", format!("job key: {e}")))
    }

    async fn read_job_object(&self, key: &ObjectKey) -> Result<Option<Bytes>, DatasetError> {
        match self.store().connector().get(key).await {
            Ok(r) => Ok(Some(r.bytes)),
            Err(dreamdb_connector::ConnectorError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Worker `shard` of `of` of Ada-IVF job `job` on `field`: plans the
    /// step on the job's base (fixed by the first worker), re-dispatches
    /// the changed cells `c` with `c mod of == shard`, writes their
    /// buckets and its result object. Publishes nothing.
    pub async fn ada_ivf_step_shard(
        &self,
        job: &str,
        shard: u32,
        of: u32,
        field: &str,
        options: AdaIvfStepOptions,
    ) -> Result<ShardReport, DatasetError> {
        check_job_id(job)?;
        check_shard(shard, of)?;
        check_options(field, &options)?;
        let tip = self.step_base().await?;
        self.embedding_field(&tip, field).await?;
        let before = self.store_stats();
        // The job's base: created once.
        let base_key = self.job_key(job, "base")?;
        let mine = JobBase {
            v: JOB_FORMAT_VERSION,
            job: job.to_owned(),
            field: field.to_owned(),
            base: tip.hash.to_hex(),
            split: options.split_threshold,
            merge: options.merge_threshold,
            seed: options.seed,
            max_parts: options.max_parts,
        };
        let bytes = dreamdb_core::cbor::to_vec(&mine).map_err(|e| bad_job(e.to_string()))?;
        let job_base = match self
            .store()
            .connector()
            .put(&base_key, Bytes::from(bytes), PutMode::Create)
            .await?
        {
            PutOutcome::Written(_) => mine,
            _ => {
                let bytes = self
                    .read_job_object(&base_key)
                    .await?
                    .ok_or_else(|| bad_job("the job's base vanished"))?;
                let theirs: JobBase =
                    dreamdb_core::cbor::from_slice(&bytes).map_err(|e| bad_job(e.to_string()))?;
                let same = JobBase {
                    base: theirs.base.clone(),
                    ..mine
                };
                if theirs != same {
                    return Err(DatasetError::invalid(
                        "_job",
                        format!(
                            "job {job:?} was started with other parameters (field {:?}, split {}, merge {}, seed {}, max parts {})",
                            theirs.field, theirs.split, theirs.merge, theirs.seed, theirs.max_parts
                        ),
                    ));
                }
                theirs
            }
        };
        let base_hash = hash_of(&job_base.base)?;
        let manifest = self
            .repo()
            .manifest(&base_hash)
            .await
            .map_err(DatasetError::from_dag)?;
        let base = self.step_base_at(base_hash, manifest).await?;
        let ctx = self.embedding_field(&base, field).await?;
        let (work, step, index) = match self.ada_plan(&base, &ctx, &options).await? {
            Some(plan) => {
                let work = self.ada_shard_work(&ctx, &plan, shard, of).await?;
                let step = super::ada::step_report(&base, &ctx, &plan, &work)?;
                (work, step, plan.spatial.index_hash.to_hex())
            }
            None => (
                ShardWork::default(),
                self.no_step_report(&base, &ctx).await?,
                String::new(),
            ),
        };
        let result = ShardResult {
            v: JOB_FORMAT_VERSION,
            job: job.to_owned(),
            field: field.to_owned(),
            base: job_base.base.clone(),
            index,
            shard,
            of,
            cells: work.cells.clone(),
            removed: work.removed.iter().map(wire).collect(),
            added: work
                .added
                .iter()
                .filter_map(|c| match c {
                    Change::Put(k, v) => Some(wire(&(*k, *v))),
                    Change::Delete(_) => None,
                })
                .collect(),
            plus_counts: work.plus.counts.clone(),
            plus_runs: work.plus.runs.clone(),
            runs_read: work.runs_read,
            records: work.records,
            buckets: work.buckets,
            from_codes: work.from_codes,
        };
        let key = self.job_key(job, &format!("shard-{shard}"))?;
        let bytes = dreamdb_core::cbor::to_vec(&result).map_err(|e| bad_job(e.to_string()))?;
        let _written = self
            .store()
            .connector()
            .put(&key, Bytes::from(bytes), PutMode::Overwrite)
            .await?;
        let mut step = step;
        step.cost = WriteCost::since(&before, &self.store_stats());
        Ok(ShardReport {
            job: job.to_owned(),
            shard,
            of,
            result_key: key.as_str().to_owned(),
            step,
        })
    }

    /// Finishes Ada-IVF job `job` of `of` shards: reads every shard's
    /// result, checks they agree, and publishes the step (one Manifest,
    /// one CAS). `manifest: None` when the plan was empty.
    pub async fn ada_ivf_orchestrate(
        &self,
        job: &str,
        of: u32,
    ) -> Result<AdaIvfStepReport, DatasetError> {
        check_job_id(job)?;
        check_shard(0, of)?;
        self.writable_ref()?;
        let before = self.store_stats();
        let mut results = Vec::with_capacity(of as usize);
        for i in 0..of {
            let key = self.job_key(job, &format!("shard-{i}"))?;
            let bytes =
                self.read_job_object(&key)
                    .await?
                    .ok_or_else(|| DatasetError::NotFound {
                        what: format!("result of shard {i} of job {job:?} ({})", key.as_str()),
                    })?;
            let r: ShardResult =
                dreamdb_core::cbor::from_slice(&bytes).map_err(|e| bad_job(e.to_string()))?;
            results.push(r);
        }
        let first = results
            .first()
            .cloned()
            .ok_or_else(|| DatasetError::invalid("_shard", "no shards"))?;
        for r in &results {
            if r.v != JOB_FORMAT_VERSION
                || r.job != first.job
                || r.field != first.field
                || r.base != first.base
                || r.index != first.index
                || r.of != of
            {
                return Err(DatasetError::Conflict {
                    reason: format!(
                        "shard results of job {job:?} disagree (shard {} has base {}, index {}, of {}; shard 0 has base {}, index {}, of {})",
                        r.shard, r.base, r.index, r.of, first.base, first.index, first.of
                    ),
                });
            }
        }
        let field = first.field.clone();
        let base_hash = hash_of(&first.base)?;
        let manifest = self
            .repo()
            .manifest(&base_hash)
            .await
            .map_err(DatasetError::from_dag)?;
        let base = self.step_base_at(base_hash, manifest).await?;
        let ctx = self.embedding_field(&base, &field).await?;
        if first.index.is_empty() {
            return self.no_step_report(&base, &ctx).await;
        }
        let index_hash = hash_of(&first.index)?;
        let bytes = self.store().get_bytes(&index_hash).await?;
        let index = index_of_object(&SpatialIndexObject::decode(&index_hash, &bytes)?)?;
        let spatial = LoadedSpatial {
            index,
            index_hash,
            compressor: ctx.spatial.compressor.clone(),
            compressor_hash: ctx.spatial.compressor_hash,
        };
        let mut work = ShardWork::default();
        for r in &results {
            for w in &r.removed {
                let e = unwire(w)?;
                if !work.removed.contains(&e) {
                    work.removed.push(e);
                }
            }
            for w in &r.added {
                let (k, v) = unwire(w)?;
                work.added.push(Change::Put(k, v));
            }
            work.plus = work.plus.plus(&StatsData {
                counts: r.plus_counts.clone(),
                runs: r.plus_runs.clone(),
            });
            work.cells.extend(&r.cells);
            work.runs_read += r.runs_read;
            work.records += r.records;
            work.buckets += r.buckets;
            work.from_codes |= r.from_codes;
        }
        work.cells.sort_unstable();
        let options = self.job_options(job).await?;
        let plan = self
            .ada_plan(&base, &ctx, &options)
            .await?
            .ok_or_else(|| bad_job("the shards found a step, the plan is empty"))?;
        if plan.spatial.index_hash != index_hash {
            return Err(DatasetError::Conflict {
                reason: format!(
                    "job {job:?}: the shards' index {index_hash} is not the plan's {}",
                    plan.spatial.index_hash
                ),
            });
        }
        let manifest = self
            .ada_publish(&base, &ctx, &spatial, &work, step_message(&field, &plan))
            .await?;
        let mut report = super::ada::step_report(&base, &ctx, &plan, &work)?;
        report.manifest = Some(manifest);
        report.cost = WriteCost::since(&before, &self.store_stats());
        Ok(report)
    }

    async fn job_options(&self, job: &str) -> Result<AdaIvfStepOptions, DatasetError> {
        let key = self.job_key(job, "base")?;
        let bytes = self
            .read_job_object(&key)
            .await?
            .ok_or_else(|| DatasetError::NotFound {
                what: format!("base of job {job:?}"),
            })?;
        let b: JobBase =
            dreamdb_core::cbor::from_slice(&bytes).map_err(|e| bad_job(e.to_string()))?;
        Ok(AdaIvfStepOptions {
            split_threshold: b.split,
            merge_threshold: b.merge,
            seed: b.seed,
            max_parts: b.max_parts,
        })
    }
}
