//! `qloop` — a warm-query loop to profile the storage path under `perf`.
//!
//! ```text
//! cargo build --release -p dreamdb-bench --bin qloop
//! perf record -g target/release/qloop [--set NAME] [--nprobe N] [--refine R] [--secs S] [--iterate] [--standard] [--default-cache] [--no-queries]
//! ```
//!
//! Ingests one quick set (`debian-minilm-20k` by default) into a temporary
//! local directory, opens it with a session cache that holds it, warms the
//! cache with one pass over the queries, prints `READY` on stderr (attach a
//! profiler from there, or pass `--secs` and profile the whole run), then
//! queries one at a time for `--secs` seconds (default 10) and prints QPS
//! and where a query's time goes (ref read + Snapshot, query) — the
//! overhead of the storage path over the in-memory kernel. `--iterate`
//! drains Arrow batches over the whole set instead of querying (prints
//! MB/s and time per pass); `--no-queries` skips the warming queries (an
//! iteration then runs on a handle that never queried). `--standard` picks the set among the standard
//! sizes (`--set debian-minilm`).

// mimalloc, tuned at start (dreamdb_dataset::allocator says why).
dreamdb_dataset::install_allocator!();

use std::time::{Duration, Instant};

use dreamdb_bench::sets::{bench_sets, Mode};
use dreamdb_bench::suite::ingest::{ingest, FIELD, NAME};
use dreamdb_bench::suite::query::QUERY_CACHE_BYTES;
use dreamdb_dataset::dataset::OpenOptions;
use dreamdb_dataset::read::QueryRequest;
use dreamdb_dataset::Dataset;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn value_of(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() -> Result<(), BoxError> {
    dreamdb_dataset::allocator::tune();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let set_name = value_of(&args, "--set").unwrap_or_else(|| "debian-minilm-20k".to_owned());
    let nprobe: usize = value_of(&args, "--nprobe").map_or(Ok(11), |v| v.parse())?;
    let refine: usize = value_of(&args, "--refine").map_or(Ok(10), |v| v.parse())?;
    let secs: u64 = value_of(&args, "--secs").map_or(Ok(10), |v| v.parse())?;
    let cache = std::env::var_os("DREAMDB_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache/dreamdb"))
        })
        .ok_or("no DREAMDB_CACHE or HOME")?
        .join("bench/data");
    let mode = if args.iter().any(|a| a == "--standard") {
        Mode::Standard
    } else {
        Mode::Quick
    };
    let set = bench_sets(mode, &cache)?
        .into_iter()
        .find(|s| s.name == set_name)
        .ok_or_else(|| format!("no set named {set_name} at this size"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let url = dir.path().to_string_lossy().into_owned();
    rt.block_on(async {
        ingest(&set, &url, "local").await?;
        // `--default-cache`: the SDK's default session cache, as the
        // bench's iteration handle has (the working set is then read from
        // files, verified, on every pass).
        let options = if args.iter().any(|a| a == "--default-cache") {
            OpenOptions::default()
        } else {
            OpenOptions {
                cache_bytes: Some(QUERY_CACHE_BYTES),
                ..OpenOptions::default()
            }
        };
        let ds = Dataset::open(&url, NAME, options).await?;
        let request = |i: usize| {
            QueryRequest::new(FIELD, set.queries.row(i % set.queries.rows).to_vec(), 10)
                .nprobe(nprobe)
                .refine_factor(refine)
        };
        // `--no-queries`: iterate a handle that has not queried (the bench
        // queries first; design/0005 compares the two).
        if !args.iter().any(|a| a == "--no-queries") {
            for i in 0..set.queries.rows {
                ds.query(&request(i)).await?;
            }
        }
        if args.iter().any(|a| a == "--iterate") {
            eprintln!("READY");
            let start = Instant::now();
            let (mut passes, mut bytes) = (0u64, 0u64);
            while start.elapsed() < Duration::from_secs(secs) {
                let (_, _, b, seconds) = dreamdb_bench::suite::iterate::drain(&ds).await?;
                if passes < 3 {
                    eprintln!("pass {passes}: {:.2} ms", seconds * 1e3);
                }
                bytes += b;
                passes += 1;
            }
            let s = start.elapsed().as_secs_f64();
            eprintln!(
                "{}: {passes} Arrow passes, {:.0} MB/s, {:.2} ms per pass",
                set.name,
                bytes as f64 / 1e6 / s,
                s * 1e3 / passes as f64
            );
            return Ok(());
        }
        eprintln!("READY");
        let (mut n, mut pin, mut run, mut refr) =
            (0usize, Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let (mut candidates, mut reranked) = (0usize, 0usize);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(secs) {
            let t = Instant::now();
            ds.manifest_hash().await?;
            refr += t.elapsed();
            let t = Instant::now();
            let snapshot = ds.read_version().await?;
            let t1 = t.elapsed();
            let result = dreamdb_dataset::read::query(&snapshot, &request(n)).await?;
            candidates += result.stats.candidates;
            reranked += result.stats.reranked;
            pin += t1;
            run += t.elapsed() - t1;
            n += 1;
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
        eprintln!(
            "{}: nprobe {nprobe} refine {refine}: {n} queries, {:.0} QPS; per query: ref read alone {:.1} µs, ref + Snapshot {:.1} µs, query {:.1} µs",
            set.name,
            n as f64 / start.elapsed().as_secs_f64(),
            per(refr),
            per(pin),
            per(run)
        );
        eprintln!(
            "per query: {:.0} candidates estimated, {:.1} reranked",
            candidates as f64 / n as f64,
            reranked as f64 / n as f64
        );
        Ok::<_, BoxError>(())
    })
}
