//! Reliability on the S3-compatible server at `DREAMDB_TEST_S3_URL`
//! (credentials from `AWS_*`; `scripts/test` starts Ceph radosgw on
//! 127.0.0.1 and exports them). Without the variable every test here FAILS
//! with a message saying so.
//!
//! - concurrent writers: 4 tasks, each with its own connector and session,
//!   commit 10 batches each to one ref; then 4 writers on 4 branches and
//!   one `merge_many`;
//! - credentials: a wrong secret is an authentication error that shows no
//!   secret (Display and Debug), and nothing a working session prints
//!   (connector, repo, errors) shows the real one;
//! - a bounded soak: sustained commits, reads and concurrent merges for
//!   `DREAMDB_SOAK_SECS` (default 10) seconds, reporting throughput, errors
//!   (must be 0) and RSS at start and end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use dreamdb_connector::Connector;
use dreamdb_connector_http::{Credentials, HttpConfig, HttpConnector};
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{MergeOptions, MergeOutcome, Repo};
use dreamdb_protocol::track::KeyRange;
use reliability_support::*;

const URL_VAR: &str = "DREAMDB_TEST_S3_URL";

fn url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{URL_VAR} is not set: reliability_s3 needs an S3-compatible endpoint \
             (run scripts/test, or `scripts/s3-server start` and eval \"$(scripts/s3-server env)\")"
        )
    })
}

async fn s3() -> Arc<dyn Connector> {
    dreamdb_connector_http::connect(&url())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}: {e}"))
}

/// A dataset name no earlier run used.
fn fresh_dataset(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("rel-{tag}-{nanos}")
}

const WRITERS: u64 = 4;
const BATCHES: u64 = 10;

/// Writer `w` commits `BATCHES` batches to `branch` in its own session;
/// returns (acknowledged, failed).
async fn writer(dataset: String, branch: String, w: u64) -> (Vec<Acked>, Vec<(u64, u64)>, u64) {
    let repo = repo_named(s3().await, &dataset);
    let mut acked = Vec::new();
    let mut failed = Vec::new();
    let mut attempts = 0;
    for i in 0..BATCHES {
        match commit_batch(&repo, &branch, w, i).await {
            Ok(done) => {
                attempts += u64::from(done.attempts);
                acked.push((w, i, Some(done.manifest)));
            }
            Err(e) => {
                println!("w{w} i{i} failed: {e}");
                failed.push((w, i));
            }
        }
    }
    (acked, failed, attempts)
}

async fn run_writers(
    dataset: &str,
    branch: impl Fn(u64) -> String,
) -> (Vec<Acked>, Vec<(u64, u64)>, u64) {
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(dataset.to_owned(), branch(w), w)))
        .collect();
    let mut acked = Vec::new();
    let mut failed = Vec::new();
    let mut attempts = 0;
    for t in tasks {
        let (a, f, n) = t.await.unwrap();
        acked.extend(a);
        failed.extend(f);
        attempts += n;
    }
    (acked, failed, attempts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_four_writers_commit_to_one_ref() {
    let dataset = fresh_dataset("writers");
    create(&repo_named(s3().await, &dataset)).await;
    let started = Instant::now();
    let (acked, failed, attempts) = run_writers(&dataset, |_| "main".to_owned()).await;
    println!(
        "S3: {WRITERS} writers x {BATCHES} batches on one ref: {} acknowledged, {} failed, \
         {attempts} attempts, {:.1} s",
        acked.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(acked.len(), (WRITERS * BATCHES) as usize, "{failed:?}");
    let fresh = repo_named(s3().await, &dataset);
    let tip = tip(&fresh, "main").await;
    check_batches(&fresh, tip, &acked, &failed, 1).await;
    verify_reachable(&fresh, tip).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_writers_on_branches_then_one_merge_many() {
    let dataset = fresh_dataset("branches");
    let setup = repo_named(s3().await, &dataset);
    let m0 = create(&setup).await;
    for w in 0..WRITERS {
        setup
            .branch(&name(&format!("shard/{w}")), m0)
            .await
            .unwrap();
    }
    let (acked, failed, _) = run_writers(&dataset, |w| format!("shard/{w}")).await;
    assert_eq!(acked.len(), (WRITERS * BATCHES) as usize, "{failed:?}");
    let fresh = repo_named(s3().await, &dataset);
    let mut tips = Vec::new();
    for w in 0..WRITERS {
        tips.push(tip(&fresh, &format!("shard/{w}")).await);
    }
    let outcome = fresh
        .merge_many(
            &name("main"),
            &tips,
            &MergeOptions::union("merger", "merge"),
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, MergeOutcome::Merged { .. }),
        "{outcome:?}"
    );
    let check = repo_named(s3().await, &dataset);
    let tip = tip(&check, "main").await;
    check_batches(&check, tip, &acked, &failed, 2).await;
    verify_reachable(&check, tip).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_credentials_never_appear_in_errors_or_debug() {
    let url = url();
    let real = Credentials::from_env().expect("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap();
    let wrong = "WrongSecretKey/0123456789abcdefghijklmnopqrstuv";
    // A wrong secret: the probe at connect time is refused.
    let config = HttpConfig::from_url(&url)
        .unwrap()
        .with_credentials(Some(Credentials::new(real.access_key_id(), wrong, None)));
    let shown_config = format!("{config:?}");
    assert!(!shown_config.contains(wrong) && !shown_config.contains(&secret));
    // The capability probe runs once per process and endpoint, so when an
    // earlier test in this binary already probed the server, `connect`
    // sends nothing; the first request then meets the wrong secret.
    let err = match HttpConnector::connect_with(config).await {
        Err(e) => e,
        Ok(connector) => {
            let key = dreamdb_connector::ObjectKey::new("reliability/any-key").unwrap();
            match dreamdb_connector::Connector::get(&connector, &key).await {
                Ok(_) => panic!("a wrong secret was accepted"),
                Err(e) => e,
            }
        }
    };
    let shown = format!("{err} | {err:?}");
    println!("wrong secret: {err}");
    assert!(!shown.contains(wrong), "the wrong secret is shown: {shown}");
    assert!(
        !shown.contains(&secret),
        "the real secret is shown: {shown}"
    );
    assert!(
        matches!(err, dreamdb_connector::ConnectorError::Auth { .. })
            || shown.contains("403")
            || shown.to_lowercase().contains("signature"),
        "expected an authentication error, got {shown}"
    );
    // A working session: nothing it prints holds the secret.
    let connector = s3().await;
    let repo = repo_named(connector.clone(), &fresh_dataset("creds"));
    let missing = repo
        .store()
        .get_bytes(&ContentHash::of(b"never written"))
        .await
        .unwrap_err();
    let no_ref = repo.require_ref(&name("nope")).await.unwrap_err();
    for shown in [
        format!("{connector:?}"),
        connector.describe(),
        format!("{repo:?}"),
        format!("{missing} {missing:?}"),
        format!("{no_ref} {no_ref:?}"),
    ] {
        assert!(!shown.contains(&secret), "secret shown in: {shown}");
    }
}

/// Pause of each soak writer between commits, in ms
/// (`DREAMDB_SOAK_PAUSE_MS`, default 100). At 20 the merger starves: it
/// loses its compare-and-swap 64 times in a row (see docs/reliability.md).
fn pause_ms() -> u64 {
    std::env::var("DREAMDB_SOAK_PAUSE_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

/// Counters of the soak.
#[derive(Default)]
struct Soak {
    commits: AtomicU64,
    reads: AtomicU64,
    merges: AtomicU64,
    merge_commits: AtomicU64,
    merge_attempts: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
}

fn soak_error(soak: &Soak, what: &str, e: impl std::fmt::Display) {
    soak.errors.fetch_add(1, Ordering::SeqCst);
    println!("soak error in {what}: {e}");
}

async fn soak_reader(repo: Repo, soak: Arc<Soak>) {
    while !soak.stop.load(Ordering::SeqCst) {
        let result = async {
            let state = repo
                .require_ref(&name("main"))
                .await
                .map_err(|e| e.to_string())?;
            let m = repo
                .manifest(&state.manifest)
                .await
                .map_err(|e| e.to_string())?;
            let mut entries = 0usize;
            for state in m.tracks.values() {
                let root =
                    dreamdb_protocol::dag::track_root_of(&state.root).map_err(|e| e.to_string())?;
                let found = repo
                    .tracks()
                    .scan_all(&root, KeyRange::all())
                    .await
                    .map_err(|e| e.to_string())?;
                if let Some((_, v)) = found.last() {
                    repo.store()
                        .get_bytes(v.segment())
                        .await
                        .map_err(|e| e.to_string())?;
                }
                entries += found.len();
            }
            if entries as u64 != m.records * FIELDS.len() as u64 {
                return Err(format!(
                    "tip {} holds {entries} entries for {} records",
                    state.manifest, m.records
                ));
            }
            Ok::<_, String>(())
        }
        .await;
        match result {
            Ok(()) => {
                soak.reads.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => soak_error(&soak, "read", e),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_soak_commits_reads_and_merges() {
    let secs = env_secs("DREAMDB_SOAK_SECS", 10);
    let dataset = fresh_dataset("soak");
    let setup = repo_named(s3().await, &dataset);
    let m0 = create(&setup).await;
    setup.branch(&name("side"), m0).await.unwrap();
    let soak = Arc::new(Soak::default());
    let acked = Arc::new(Mutex::new(Vec::new()));
    let rss_start = rss_kib();
    let started = Instant::now();
    let mut tasks = Vec::new();
    let pause = pause_ms();
    // Two writers on main, one on side.
    for (w, branch) in [(0u64, "main"), (1, "main"), (2, "side")] {
        let repo = repo_named(s3().await, &dataset);
        let soak = soak.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !soak.stop.load(Ordering::SeqCst) {
                match commit_batch(&repo, branch, w, i).await {
                    Ok(done) => {
                        soak.commits.fetch_add(1, Ordering::SeqCst);
                        acked.lock().unwrap().push((w, i, Some(done.manifest)));
                    }
                    Err(e) => soak_error(&soak, "commit", e),
                }
                i += 1;
                // Sustained but not saturating: a merge needs a window to
                // win its compare-and-swap (see docs/reliability.md).
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
        }));
    }
    tasks.push(tokio::spawn(soak_reader(
        repo_named(s3().await, &dataset),
        soak.clone(),
    )));
    // The merger: side into main, about once a second.
    let merger = repo_named(s3().await, &dataset);
    let merge_once = |merger: Repo, soak: Arc<Soak>| async move {
        let side = match merger.require_ref(&name("side")).await {
            Ok(s) => s.manifest,
            Err(e) => return soak_error(&soak, "merge", e),
        };
        match merger
            .merge(
                &name("main"),
                side,
                &MergeOptions {
                    max_attempts: Some(64),
                    ..MergeOptions::union("merger", "merge side")
                },
            )
            .await
        {
            Ok(outcome) => {
                soak.merges.fetch_add(1, Ordering::SeqCst);
                if let MergeOutcome::Merged { attempts, .. } = outcome {
                    soak.merge_commits.fetch_add(1, Ordering::SeqCst);
                    soak.merge_attempts
                        .fetch_add(u64::from(attempts), Ordering::SeqCst);
                }
            }
            Err(e) => soak_error(&soak, "merge", e),
        }
    };
    while started.elapsed() < secs {
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        merge_once(merger.clone(), soak.clone()).await;
    }
    soak.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    // A last merge brings every side commit into main.
    merge_once(merger.clone(), soak.clone()).await;
    let elapsed = started.elapsed().as_secs_f64();
    let rss_end = rss_kib();
    let commits = soak.commits.load(Ordering::SeqCst);
    let reads = soak.reads.load(Ordering::SeqCst);
    let errors = soak.errors.load(Ordering::SeqCst);
    println!(
        "S3 soak {elapsed:.1} s: {commits} commits ({:.1}/s), {reads} full tip reads ({:.1}/s), \
         {} merges ({} merge commits, {} attempts), {errors} errors, \
         RSS {rss_start} KiB -> {rss_end} KiB",
        commits as f64 / elapsed,
        reads as f64 / elapsed,
        soak.merges.load(Ordering::SeqCst),
        soak.merge_commits.load(Ordering::SeqCst),
        soak.merge_attempts.load(Ordering::SeqCst),
    );
    assert_eq!(errors, 0, "the soak saw errors");
    assert!(commits > 0 && reads > 0);
    let acked = acked.lock().unwrap().clone();
    let check = repo_named(s3().await, &dataset);
    let tip = tip(&check, "main").await;
    let extra = 1 + soak.merge_commits.load(Ordering::SeqCst) as usize;
    check_batches(&check, tip, &acked, &[], extra).await;
    assert!(
        rss_end.saturating_sub(rss_start) < 256 * 1024,
        "RSS grew from {rss_start} KiB to {rss_end} KiB"
    );
}
