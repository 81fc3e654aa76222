//! The main-job demo: a 100,000-record dataset on a local directory, then
//! the verbs of an ML data workflow, with timings.
//!
//! ```text
//! cargo run --release -p dreamdb-dataset --example demo -- ./dreamdb-demo
//! ```
//!
//! The directory is wiped first only if it holds a previous demo (the
//! marker file `.dreamdb-demo` this program writes); a non-empty directory
//! without it is refused. Data are seeded and clustered, so results and
//! recall are reproducible.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dreamdb_core::random::DeterministicStream;
use dreamdb_dataset::batch::{Batch, ScalarColumn};
use dreamdb_dataset::dataset::{CreateOptions, MergeStrategy, Version};
use dreamdb_dataset::read::{QueryRequest, Value};
use dreamdb_dataset::schema::{EmbeddingField, Metric, ScalarType, SchemaBuilder};
use dreamdb_dataset::{Dataset, DatasetError};
use indicatif::{ProgressBar, ProgressStyle};

const MARKER: &str = ".dreamdb-demo";
const DIM: usize = 128;
const RECORDS: usize = 100_000;
const BATCH: usize = 5_000;
const CLUSTERS: usize = 1_000;
const K: u32 = 316; // ≈ √100,000
const BRANCH_RECORDS: usize = 5_000;
const QUERIES: usize = 50;
const NPROBE: usize = 16;
/// Rerank `k × REFINE` RaBitQ candidates exactly from raw rows.
const REFINE: usize = 10;

/// Seeded, clustered data: `CLUSTERS` random unit-ish centres, records
/// spread around them.
struct Data {
    centres: Vec<f32>,
}

impl Data {
    fn new() -> Self {
        let mut s = DeterministicStream::from_seed(42, "dreamdb.demo.centres");
        Data {
            centres: (0..CLUSTERS * DIM).map(|_| s.next_f32_normal()).collect(),
        }
    }

    /// Row `i`: cluster `i·7919 mod CLUSTERS` plus noise.
    fn cluster_of(i: usize) -> usize {
        (i.wrapping_mul(7919)) % CLUSTERS
    }

    fn rows(&self, first: usize, n: usize, seed: u64) -> Vec<f32> {
        let mut noise = DeterministicStream::from_seed(seed, "dreamdb.demo.noise");
        let mut out = Vec::with_capacity(n * DIM);
        for i in first..first + n {
            let c = Self::cluster_of(i);
            for d in 0..DIM {
                out.push(self.centres[c * DIM + d] + 0.35 * noise.next_f32_normal());
            }
        }
        out
    }

    fn batch(&self, first: usize, n: usize, seed: u64) -> (Batch, Vec<f32>) {
        let vectors = self.rows(first, n, seed);
        let mut bytes = DeterministicStream::from_seed(seed, "dreamdb.demo.images");
        let images: Vec<Bytes> = (0..n)
            .map(|i| {
                let len = 200 + (first + i) % 300;
                let mut b = vec![0u8; len];
                bytes.fill_bytes(&mut b);
                Bytes::from(b)
            })
            .collect();
        let labels = (first..first + n)
            .map(|i| Some(format!("cluster-{:04}", Self::cluster_of(i))))
            .collect();
        let batch = Batch::new(n)
            .embeddings("embedding", DIM as u32, vectors.clone())
            .blobs("image", images)
            .scalars("label", ScalarColumn::Categorical(labels));
        (batch, vectors)
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    1.0 - dot / (na.sqrt() * nb.sqrt())
}

/// Prepares the demo directory: wipes a previous demo, refuses anything
/// else that is not empty.
fn prepare(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .next()
            .is_none();
        if dir.join(MARKER).exists() {
            std::fs::remove_dir_all(dir).map_err(|e| format!("wiping {}: {e}", dir.display()))?;
        } else if !empty {
            return Err(format!(
                "{} is not empty and was not written by this demo (no {MARKER}); refusing to wipe it",
                dir.display()
            ));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        b"written by dreamdb-dataset/examples/demo.rs\n",
    )
    .map_err(|e| format!("{}: {e}", dir.display()))
}

struct Steps {
    rows: Vec<(String, String, Duration)>,
}

impl Steps {
    fn add(&mut self, step: &str, what: String, took: Duration) {
        println!("  ✓ {step}: {what} ({})", fmt(took));
        self.rows.push((step.to_owned(), what, took));
    }
}

fn fmt(d: Duration) -> String {
    if d.as_secs_f64() >= 1.0 {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "./dreamdb-demo".to_owned()),
    );
    match run(&dir).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let total = Instant::now();
    prepare(dir)?;
    let url = dir.to_str().ok_or("the path is not UTF-8")?.to_owned();
    println!("DreamDB demo in {url}\n");
    let data = Data::new();
    let mut steps = Steps { rows: Vec::new() };

    // 1. create
    let t = Instant::now();
    let schema = SchemaBuilder::new()
        .embedding(
            "embedding",
            EmbeddingField::new(DIM as u32)
                .metric(Metric::Cosine)
                .ivf(K)
                .rabitq(1)
                .rerank(true),
        )
        .blob("image", "image/x-demo", 4096)
        .scalar("label", ScalarType::Categorical)
        .build()?;
    let ds = Dataset::create(&url, "demo", schema, CreateOptions::default()).await?;
    steps.add(
        "create",
        format!(
            "dataset `demo`: {DIM}-d cosine IVF(k={K}) + RaBitQ 1-bit + rerank, image blob, label"
        ),
        t.elapsed(),
    );

    // 2. append 100,000 records in batches of 5,000
    let t = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        let bar = ProgressBar::new(RECORDS as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "  appending [{bar:40}] {pos}/{len} records ({per_sec}, eta {eta})",
            )?
            .progress_chars("=> "),
        );
        Some(bar)
    } else {
        None
    };
    let mut vectors: Vec<f32> = Vec::with_capacity(RECORDS * DIM);
    let mut anchors: Vec<u64> = Vec::with_capacity(RECORDS);
    let mut last_signals = None;
    let mut rebases = 0;
    for b in 0..RECORDS / BATCH {
        let (batch, v) = data.batch(b * BATCH, BATCH, b as u64 + 1);
        let r = ds.append_many(batch).await?;
        vectors.extend_from_slice(&v);
        anchors.extend_from_slice(&r.anchors);
        rebases += r.attempts - 1;
        last_signals = r.signals.fields.get("embedding").cloned();
        match &bar {
            Some(bar) => bar.inc(BATCH as u64),
            None => eprintln!(
                "  appended {:>6}/{RECORDS} records ({:.1} s)",
                (b + 1) * BATCH,
                t.elapsed().as_secs_f64()
            ),
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let took = t.elapsed();
    steps.add(
        "append",
        format!(
            "{RECORDS} records in {} batches of {BATCH}: {:.0} records/s, {rebases} rebases",
            RECORDS / BATCH,
            RECORDS as f64 / took.as_secs_f64()
        ),
        took,
    );
    if let Some(s) = &last_signals {
        println!(
            "    signals: k = {}, N = {}, √N = {:.0}, 2·√N = {}, imbalance (CV) = {:.3}, \
             records/cell min/median/max = {}/{:.0}/{}, empty cells = {}, runs per cell = {:.1}",
            s.k,
            s.n,
            s.sqrt_n,
            s.k_max,
            s.imbalance,
            s.density.min,
            s.density.median,
            s.density.max,
            s.density.empty_cells,
            s.fragmentation
        );
    }

    // 3. query: top-5 of a fresh point near a cluster
    let queries = data.rows(RECORDS * 10, QUERIES, 9_999);
    let q0 = queries[..DIM].to_vec();
    let t = Instant::now();
    let request = QueryRequest::new("embedding", q0.clone(), 5)
        .nprobe(NPROBE)
        .refine_factor(REFINE)
        .fields(&["label"]);
    let result = ds.query(&request).await?;
    let took = t.elapsed();
    println!(
        "    top-5 for a query near cluster-{:04}:",
        Data::cluster_of(RECORDS * 10)
    );
    for (i, hit) in result.hits.iter().enumerate() {
        let label = match hit.fields.get("label") {
            Some(Value::Str(s)) => s.clone(),
            _ => "?".to_owned(),
        };
        println!(
            "      {}. anchor {:>16}  distance {:.4}  {label}",
            i + 1,
            hit.anchor,
            hit.distance
        );
    }
    steps.add(
        "query",
        format!(
            "top-5, nprobe {NPROBE}, refine {REFINE}: {} runs read, {} candidates, {} reranked",
            result.stats.runs_read, result.stats.candidates, result.stats.reranked
        ),
        took,
    );

    // 4. recall@10 against brute force
    let t = Instant::now();
    let mut hits = 0usize;
    let mut query_time = Duration::ZERO;
    for q in queries.chunks_exact(DIM) {
        let tq = Instant::now();
        let request = QueryRequest::new("embedding", q.to_vec(), 10)
            .nprobe(NPROBE)
            .refine_factor(REFINE);
        let r = ds.query(&request).await?;
        query_time += tq.elapsed();
        let mut exact: Vec<(f32, u64)> = vectors
            .chunks_exact(DIM)
            .zip(&anchors)
            .map(|(v, a)| (cosine(q, v), *a))
            .collect();
        exact.select_nth_unstable_by(9, |a, b| a.0.total_cmp(&b.0));
        let truth: Vec<u64> = exact[..10].iter().map(|(_, a)| *a).collect();
        hits += r.hits.iter().filter(|h| truth.contains(&h.anchor)).count();
    }
    let recall = hits as f64 / (10 * QUERIES) as f64;
    steps.add(
        "recall",
        format!(
            "recall@10 = {recall:.3} over {QUERIES} queries vs brute force, nprobe {NPROBE} (mean query {})",
            fmt(query_time / QUERIES as u32)
        ),
        t.elapsed(),
    );

    // 5. snapshot
    let t = Instant::now();
    let v1 = ds.snapshot("v1").await?;
    steps.add(
        "snapshot",
        format!("tag v1 → manifest {}", v1.manifest.short()),
        t.elapsed(),
    );

    // 6. branch + append on the branch
    let t = Instant::now();
    let exp = ds.branch("experiment").await?;
    let (batch, _) = data.batch(RECORDS, BRANCH_RECORDS, 777);
    let r = exp.append_many(batch).await?;
    steps.add(
        "branch",
        format!(
            "branch `experiment` + {BRANCH_RECORDS} records on it ({} there, {} on main)",
            exp.records().await?,
            ds.records().await?
        ),
        t.elapsed(),
    );
    let _ = r;

    // 7. merge
    let t = Instant::now();
    let merged = ds.merge("experiment", MergeStrategy::Union).await?;
    steps.add(
        "merge",
        format!(
            "`experiment` into main: {:?} → {} records",
            merged.kind,
            ds.records().await?
        ),
        t.elapsed(),
    );

    // 8. delete the best hit of the first query; the query no longer returns it
    let t = Instant::now();
    let victim = result
        .hits
        .first()
        .map(|h| h.anchor)
        .ok_or_else(|| DatasetError::invalid("_demo", "the query found nothing"))?;
    ds.delete(&[victim], "demo: right to be forgotten").await?;
    let again = ds
        .query(
            &QueryRequest::new("embedding", q0.clone(), 5)
                .nprobe(NPROBE)
                .refine_factor(REFINE),
        )
        .await?;
    let gone = again.hits.iter().all(|h| h.anchor != victim);
    steps.add(
        "delete",
        format!(
            "anchor {victim}: {} (new top-1 {}), {} records",
            if gone {
                "no longer returned by the query"
            } else {
                "STILL RETURNED"
            },
            again.hits.first().map_or(0, |h| h.anchor),
            ds.records().await?
        ),
        t.elapsed(),
    );
    if !gone {
        return Err("the deleted record is still returned".into());
    }

    // 9. time travel
    let t = Instant::now();
    let old = Dataset::open_at(&url, "demo", Version::Tag("v1".into())).await?;
    let old_top = old
        .query(
            &QueryRequest::new("embedding", q0, 1)
                .nprobe(NPROBE)
                .refine_factor(REFINE),
        )
        .await?;
    steps.add(
        "time travel",
        format!(
            "open_at(v1): {} records; its top-1 is still {} ({})",
            old.records().await?,
            old_top.hits.first().map_or(0, |h| h.anchor),
            if old_top.hits.first().map(|h| h.anchor) == Some(victim) {
                "the deleted record"
            } else {
                "another record"
            }
        ),
        t.elapsed(),
    );

    // 10. history
    let t = Instant::now();
    let history = ds.history(100).await?;
    steps.add(
        "history",
        format!(
            "{} versions on main; newest: {:?}",
            history.len(),
            history
                .first()
                .map(|h| h.message.clone())
                .unwrap_or_default()
        ),
        t.elapsed(),
    );

    println!("\n{:<12} {:>10}  what", "step", "time");
    println!("{:-<12} {:->10}  {:-<60}", "", "", "");
    for (step, what, took) in &steps.rows {
        println!("{step:<12} {:>10}  {what}", fmt(*took));
    }
    println!("{:<12} {:>10}", "total", fmt(total.elapsed()));
    let stats = ds.store_stats();
    println!(
        "\nsession I/O: {} PUTs ({:.1} MiB), {} GETs, {} ranged GETs, cache hits {}",
        stats.puts,
        stats.bytes_written as f64 / (1 << 20) as f64,
        stats.gets,
        stats.range_gets,
        stats.cache.hits
    );
    Ok(())
}
