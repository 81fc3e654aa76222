//! `suite` — the DreamDB side of the benchmark suite (issue #10; run by
//! `scripts/bench`, which adds the peers and writes the report).
//!
//! ```text
//! suite [--quick|--standard|--scale] [--threads N] [--only ingest,query,cold,iteration,commit]
//!       [--data DIR] [--work DIR] --out FILE.json
//! suite rss DIR          (internal: iterate the dataset in DIR, print peak RSS as JSON)
//! suite s3-clean         delete what interrupted runs left under `bench-*` on the
//!                        S3 server of DREAMDB_TEST_S3_URL (runs clean up after themselves)
//! ```
//!
//! `--data` caches the sets' `.npy` files (default
//! `${DREAMDB_CACHE:-~/.cache/dreamdb}/bench/data`); `--work` holds the
//! datasets written by the run (default a directory under the system's
//! temp dir), removed as each set finishes. The S3 measures run when
//! `DREAMDB_TEST_S3_URL` is set (`scripts/s3-server env`).
#![allow(clippy::print_stderr, clippy::print_stdout)]

// mimalloc, tuned at start (dreamdb_dataset::allocator says why).
dreamdb_dataset::install_allocator!();

use std::path::PathBuf;
use std::process::ExitCode;

use dreamdb_bench::sets::Mode;
use dreamdb_bench::suite::{self, Config};

fn value_of(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn cache_dir() -> PathBuf {
    std::env::var_os("DREAMDB_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/dreamdb")))
        .unwrap_or_else(|| std::env::temp_dir().join("dreamdb-cache"))
}

fn rss(dir: &str) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("suite rss: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(suite::iterate::rss_child(dir)) {
        Ok(row) => {
            println!("{row}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("suite rss: {e}");
            ExitCode::FAILURE
        }
    }
}

fn s3_clean() -> ExitCode {
    let Ok(url) = std::env::var("DREAMDB_TEST_S3_URL") else {
        eprintln!("suite s3-clean: DREAMDB_TEST_S3_URL is not set");
        return ExitCode::from(2);
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| suite::SuiteError::io("tokio runtime", e))
        .and_then(|rt| rt.block_on(suite::clean_s3_runs(&url)));
    match result {
        Ok(n) => {
            eprintln!("suite s3-clean: deleted {n} objects under bench-*");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("suite s3-clean: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    dreamdb_dataset::allocator::tune();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("s3-clean") {
        return s3_clean();
    }
    if args.first().map(String::as_str) == Some("rss") {
        return match args.get(1) {
            Some(dir) => rss(dir),
            None => {
                eprintln!("usage: suite rss DIR");
                ExitCode::from(2)
            }
        };
    }
    let mode = if args.iter().any(|a| a == "--scale") {
        Mode::Scale
    } else if args.iter().any(|a| a == "--quick") {
        Mode::Quick
    } else {
        Mode::Standard
    };
    let threads: usize = match value_of(&args, "--threads").map(|t| t.parse()) {
        None => 1,
        Some(Ok(t)) if t >= 1 => t,
        Some(_) => {
            eprintln!("suite: --threads takes a positive integer");
            return ExitCode::from(2);
        }
    };
    let Some(out) = value_of(&args, "--out").map(PathBuf::from) else {
        eprintln!("usage: suite [--quick|--standard|--scale] [--threads N] --out FILE.json");
        return ExitCode::from(2);
    };
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        eprintln!("suite: rayon pool: {e}");
        return ExitCode::FAILURE;
    }
    let config = Config {
        mode,
        threads,
        data_dir: value_of(&args, "--data")
            .map(PathBuf::from)
            .unwrap_or_else(|| cache_dir().join("bench").join("data")),
        work_dir: value_of(&args, "--work")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("dreamdb-bench-work")),
        s3_url: std::env::var("DREAMDB_TEST_S3_URL").ok(),
        only: value_of(&args, "--only").map(|o| o.split(',').map(str::to_owned).collect()),
    };
    match suite::run(&config) {
        Ok(doc) => {
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            if let Err(e) = std::fs::write(&out, text) {
                eprintln!("suite: write {}: {e}", out.display());
                return ExitCode::FAILURE;
            }
            eprintln!("suite: wrote {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("suite: {e}");
            ExitCode::FAILURE
        }
    }
}
