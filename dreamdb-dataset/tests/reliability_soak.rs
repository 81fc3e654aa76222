//! A bounded soak through the SDK on the S3-compatible server (issue 11,
//! item 6; `DREAMDB_TEST_S3_URL`, FAILS without it): 2 writer sessions
//! appending (IVF + RaBitQ embeddings, blobs, scalars), a reader session
//! querying its own vectors (top 10; an approximate miss, at most 1 % of
//! queries, must leave the record intact) and reading records back, and GC (tips only,
//! 1 h grace) on another connector, for `DREAMDB_SOAK_SECS` (default 10).
//! Afterwards: 0 errors, every acknowledged append present exactly once,
//! `verify` clean; throughput and RSS are printed, and RSS must stay flat:
//! the largest sample of the second half at most 64 MiB above the largest
//! of the first half. Sessions cache `DREAMDB_SOAK_CACHE_MIB` (default 16)
//! each; `DREAMDB_SOAK_RSS_TRACE=1` prints every RSS sample.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dreamdb_core::time::Ticks;
use dreamdb_dataset::dataset::{CreateOptions, OpenOptions};
use dreamdb_dataset::read::{QueryRequest, Value};
use dreamdb_dataset::Dataset;
use dreamdb_protocol::maintenance::{gc, now_unix_nanos, GcOptions};
use reliability_support::*;

const ROWS: usize = 16;
const BLOB: usize = 256;
const WRITERS: u64 = 2;

fn rows_of(_w: u64, _i: u64) -> usize {
    ROWS
}

fn blob_of(_w: u64, _i: u64) -> usize {
    BLOB
}

/// Sessions with a bounded cache (`DREAMDB_SOAK_CACHE_MIB`, default 16)
/// so that flat RSS is a meaningful bound.
fn options() -> OpenOptions {
    OpenOptions {
        cache_bytes: Some(env_u64("DREAMDB_SOAK_CACHE_MIB", 16) << 20),
        ..OpenOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_appends_queries_and_gc_on_s3() {
    let secs = env_u64("DREAMDB_SOAK_SECS", 10);
    let pause = Duration::from_millis(env_u64("DREAMDB_SOAK_PAUSE_MS", 50));
    let url = s3_url("soak");
    let ds = Dataset::create(&url, DATASET, schema(), CreateOptions::default())
        .await
        .unwrap();
    let seed = ds.append_many(batch(99, 0, ROWS, BLOB)).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let acks = Arc::new(Mutex::new(vec![Ack {
        w: 99,
        i: 0,
        first: seed.anchors[0],
    }]));
    let queries = Arc::new(AtomicU64::new(0));
    let misses = Arc::new(AtomicU64::new(0));
    let gcs = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (url, stop, errors, acks) = (url.clone(), stop.clone(), errors.clone(), acks.clone());
        tasks.push(tokio::spawn(async move {
            let ds = Dataset::open(&url, DATASET, options()).await.unwrap();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) && i < 1000 {
                match ds.append_many(batch(w, i, ROWS, BLOB)).await {
                    Ok(r) => acks.lock().unwrap().push(Ack {
                        w,
                        i,
                        first: r.anchors[0],
                    }),
                    Err(e) => errors
                        .lock()
                        .unwrap()
                        .push(format!("append ({w},{i}): {e}")),
                }
                i += 1;
                tokio::time::sleep(pause).await;
            }
        }));
    }
    {
        let (url, stop, errors, acks, queries, misses) = (
            url.clone(),
            stop.clone(),
            errors.clone(),
            acks.clone(),
            queries.clone(),
            misses.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let ds = Dataset::open(&url, DATASET, options()).await.unwrap();
            let mut rng = Rng::new(7);
            while !stop.load(Ordering::SeqCst) {
                let a = {
                    let acks = acks.lock().unwrap();
                    acks[rng.range(0, acks.len() as u64) as usize]
                };
                let r = rng.range(0, ROWS as u64) as usize;
                let v = vectors(a.w, a.i, ROWS)[r * DIM..(r + 1) * DIM].to_vec();
                let request = QueryRequest::new("embedding", v.clone(), 10)
                    .nprobe(K as usize)
                    .refine_factor(64);
                let own = a.first + r as u64;
                match ds.query(&request).await {
                    Ok(res) if res.hits.iter().any(|h| h.anchor == own) => {}
                    Ok(res) => {
                        // RaBitQ at 1 bit is approximate: the own record can
                        // miss the estimated candidates. A miss counts as an
                        // error only if the record is not intact.
                        match ds.get(own, None).await {
                            Ok(Some(rec))
                                if rec.fields.get("embedding") == Some(&Value::Embedding(v)) =>
                            {
                                misses.fetch_add(1, Ordering::Relaxed);
                            }
                            other => errors.lock().unwrap().push(format!(
                                "query of ({},{},{r}) missed it ({:?}) and get gave {other:?}",
                                a.w,
                                a.i,
                                res.hits.first().map(|h| h.anchor)
                            )),
                        }
                    }
                    Err(e) => errors.lock().unwrap().push(format!("query: {e}")),
                }
                queries.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    {
        let (url, stop, errors, gcs) = (url.clone(), stop.clone(), errors.clone(), gcs.clone());
        tasks.push(tokio::spawn(async move {
            let connector = dreamdb_connector_http::connect(&url).await.unwrap();
            while !stop.load(Ordering::SeqCst) {
                let mut options = GcOptions::new(Ticks::from_secs(3600).unwrap(), now_unix_nanos());
                options.keep_manifests = Some(1);
                if let Err(e) = gc(connector.clone(), &options).await {
                    errors.lock().unwrap().push(format!("gc: {e}"));
                }
                gcs.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }
    // RSS samples, with the commit count at each.
    let start = Instant::now();
    let mut samples: Vec<(f64, u64, usize)> = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let commits = acks.lock().unwrap().len();
        samples.push((start.elapsed().as_secs_f64(), rss_kib(), commits));
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let errors = errors.lock().unwrap().clone();
    let acks = acks.lock().unwrap().clone();
    let cold = Dataset::open(&url, DATASET, OpenOptions::default())
        .await
        .unwrap();
    let found = check_batches(&cold, &acks, &rows_of, &blob_of, 0).await;
    assert_eq!(found.batches.len(), acks.len(), "only acknowledged batches");
    let connector = dreamdb_connector_http::connect(&url).await.unwrap();
    verify_clean(connector).await;

    let half = samples.len() / 2;
    let max_of = |s: &[(f64, u64, usize)]| s.iter().map(|x| x.1).max().unwrap_or(0);
    let (first, second) = (max_of(&samples[..half]), max_of(&samples[half..]));
    let (c0, r0) = (samples[half].2, samples[half].1);
    let (c1, r1) = (samples[samples.len() - 1].2, samples[samples.len() - 1].1);
    let per_commit = if c1 > c0 {
        (r1 as f64 - r0 as f64) / (c1 - c0) as f64
    } else {
        0.0
    };
    println!(
        "soak {elapsed:.1} s: {} appends ({:.1}/s, {} records), {} queries ({:.1}/s, {} approximate misses of the own record, record intact), {} GC runs, {} errors; RSS max first half {} MiB, second half {} MiB, second-half growth {per_commit:.1} KiB/commit",
        acks.len() - 1,
        (acks.len() - 1) as f64 / elapsed,
        found.records,
        queries.load(Ordering::Relaxed),
        queries.load(Ordering::Relaxed) as f64 / elapsed,
        misses.load(Ordering::Relaxed),
        gcs.load(Ordering::Relaxed),
        errors.len(),
        first / 1024,
        second / 1024
    );
    if std::env::var("DREAMDB_SOAK_RSS_TRACE").is_ok() {
        for (t, rss, commits) in &samples {
            println!("rss {t:.1} s {rss} KiB {commits} commits");
        }
    }
    assert!(errors.is_empty(), "{} errors: {errors:#?}", errors.len());
    let (q, m) = (
        queries.load(Ordering::Relaxed),
        misses.load(Ordering::Relaxed),
    );
    assert!(
        m * 100 <= q.max(1),
        "{m} of {q} top-10 queries (nprobe all, refine 64) missed their own record"
    );
    assert!(
        second <= first + 64 * 1024,
        "RSS grew from {first} KiB (first half) to {second} KiB (second half)"
    );
}
