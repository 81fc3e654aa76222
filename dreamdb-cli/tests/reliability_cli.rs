//! Reliability of the `dreamdb` binary on datasets written by the SDK
//! (issue 11, items 3–5):
//!
//! - credentials: no run against the S3-compatible server — right secret
//!   or wrong, plain or `--json`, succeeding or failing — prints the
//!   secret on stdout or stderr; a wrong secret is a clear auth error,
//!   exit 1 (needs `DREAMDB_TEST_S3_URL` and the `AWS_*` variables; FAILS
//!   without them);
//! - corruption: `verify` exits 4 and lists every damaged segment (spatial
//!   bucket, vector storage, blob and scalar segments);
//! - crashes: `gc` SIGKILLed at random points, `DREAMDB_CLI_GC_KILLS`
//!   times (default 8), and `compact`, `DREAMDB_CLI_COMPACT_KILLS` times
//!   (default 6), and `ada-ivf-step`, `DREAMDB_CLI_ADA_KILLS` times (default
//!   6); after each kill the data is whole and `verify` clean.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../dreamdb-dataset/tests/reliability_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{code, json, run, run_env, stderr, stdout, DATASET};
use dreamdb_dataset::dataset::{CreateOptions, OpenOptions};
use dreamdb_dataset::Dataset;
use support::{check_batches, schema, Ack, Rng};

const ROWS: usize = 24;
const BLOB: usize = 300;

fn rows_of(_w: u64, _i: u64) -> usize {
    ROWS
}

fn blob_of(_w: u64, _i: u64) -> usize {
    BLOB
}

/// Creates dataset `cli` at `url` with `n` appends; returns their acks.
async fn dataset(url: &str, n: u64) -> Vec<Ack> {
    let ds = Dataset::create(url, DATASET, schema(), CreateOptions::default())
        .await
        .unwrap();
    append(&ds, 0, n).await
}

async fn append(ds: &Dataset, from: u64, to: u64) -> Vec<Ack> {
    support::append_batches(ds, 1, (from, to), ROWS, BLOB).await
}

// ----- credentials -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_appear_in_cli_output() {
    let url = support::s3_url("cli-secrets");
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
        .expect("AWS_SECRET_ACCESS_KEY is not set: run `eval \"$(scripts/s3-server env)\"`");
    assert!(secret.len() >= 8, "a real secret");
    dataset(&url, 2).await;
    let wrong = format!("{}WRONG/+x", &secret[..secret.len() / 2]);
    let verbs: [&[&str]; 5] = [
        &["verify"],
        &["log"],
        &["refs"],
        &["gc", "--dry-run", "--keep-manifests", "1", "--grace", "1h"],
        &["inspect", "main"],
    ];
    let mut runs = 0;
    for verb in verbs {
        for as_json in [false, true] {
            let mut args: Vec<&str> = Vec::new();
            if as_json {
                args.push("--json");
            }
            args.extend_from_slice(verb);
            // Right secret: succeeds (or fails for its own reasons) and
            // never prints it.
            let ok = run(&url, &args);
            let wrong_run = run_env(&url, &args, &[("AWS_SECRET_ACCESS_KEY", wrong.as_str())]);
            runs += 2;
            for (label, out) in [("right", &ok), ("wrong", &wrong_run)] {
                let all = format!("{}{}", stdout(out), stderr(out));
                assert!(
                    !all.contains(&secret),
                    "{verb:?} ({label} secret, json={as_json}) printed the secret"
                );
                assert!(
                    !all.contains(&wrong),
                    "{verb:?} ({label} secret, json={as_json}) printed the wrong secret"
                );
                assert!(
                    !all.contains(&secret[..secret.len() / 2]),
                    "{verb:?} ({label}) printed part of the secret"
                );
            }
            if verb[0] != "inspect" {
                assert_eq!(code(&ok), 0, "{verb:?}: {}", stderr(&ok));
            }
            assert_eq!(
                code(&wrong_run),
                1,
                "{verb:?} with a wrong secret: {}{}",
                stdout(&wrong_run),
                stderr(&wrong_run)
            );
            let text = format!("{}{}", stdout(&wrong_run), stderr(&wrong_run)).to_lowercase();
            assert!(
                text.contains("auth")
                    || text.contains("signature")
                    || text.contains("credential")
                    || text.contains("403")
                    || text.contains("denied"),
                "{verb:?}: the wrong-secret error does not say what is wrong: {text}"
            );
            if as_json {
                let v: serde_json::Value = serde_json::from_slice(&wrong_run.stdout)
                    .unwrap_or_else(|e| panic!("{verb:?}: not JSON ({e}): {}", stdout(&wrong_run)));
                assert_eq!(v["exit"], 1, "{v}");
            }
        }
    }
    println!("credentials: {runs} CLI runs (right and wrong secret, plain and --json): no secret printed");
}

// ----- corruption -----

/// Object files under `root/objects` of the given kinds.
fn objects_of_kinds(root: &Path, kinds: &[&str]) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    for fan in std::fs::read_dir(root.join("objects")).unwrap() {
        for obj in std::fs::read_dir(fan.unwrap().path()).unwrap() {
            let path = obj.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let kind = dreamdb_core::cbor::decode_value(&bytes)
                .ok()
                .and_then(|v| {
                    v.as_map()?.iter().find_map(|(k, v)| {
                        (k.as_text() == Some("kind")).then(|| v.as_text().map(str::to_owned))?
                    })
                })
                .unwrap_or_default();
            if kinds.contains(&kind.as_str()) {
                out.push((path, kind));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_exits_4_listing_every_damaged_segment() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_owned();
    dataset(&url, 2).await;
    let clean = json(&url, &["verify"], 0);
    assert_eq!(clean["clean"], true);
    let kinds = [
        "spatial-bucket",
        "vector-storage",
        "blob-segment",
        "scalar-bucket",
    ];
    let mut damaged = Vec::new();
    for kind in kinds {
        // One object of each kind: flip a byte in its middle.
        let (path, _) = objects_of_kinds(dir.path(), &[kind])
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {kind}"));
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x10;
        std::fs::write(&path, bytes).unwrap();
        damaged.push(path.file_name().unwrap().to_str().unwrap().to_owned());
    }
    let report = json(&url, &["verify"], 4);
    assert_eq!(report["clean"], false);
    let bad: Vec<String> = report["bad"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["hash"].as_str().unwrap().to_owned())
        .collect();
    for hash in &damaged {
        assert!(bad.contains(hash), "verify does not list {hash}: {bad:?}");
    }
    let plain = run(&url, &["verify"]);
    assert_eq!(code(&plain), 4, "{}", stderr(&plain));
    let text = format!("{}{}", stdout(&plain), stderr(&plain));
    for hash in &damaged {
        assert!(
            text.contains(hash.as_str()),
            "plain verify does not name {hash}"
        );
    }
    println!(
        "verify: {} damaged segments, exit 4, all listed",
        damaged.len()
    );
}

// ----- crashes -----

/// Runs `dreamdb --backend url --dataset DATASET args…`, SIGKILLs it after
/// `after_ms` and waits for it; whether it was still running at the kill.
fn run_and_kill(url: &str, args: &[&str], after_ms: u64) -> bool {
    run_and_kill_after(url, args, Duration::from_millis(after_ms))
}

/// [`run_and_kill`] with the delay as a `Duration`.
fn run_and_kill_after(url: &str, args: &[&str], after: Duration) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dreamdb"))
        .env_remove("DREAMDB_BACKEND")
        .env_remove("DREAMDB_DATASET")
        .args(["--backend", url, "--dataset", DATASET])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    running
}

/// Opens the dataset cold after a kill and checks every acknowledged
/// append is whole.
async fn whole_after_kill(url: &str, acks: &[Ack], k: u64) -> Dataset {
    let cold = Dataset::open(url, DATASET, OpenOptions::default())
        .await
        .unwrap_or_else(|e| panic!("kill {k}: does not open: {e}"));
    check_batches(&cold, acks, &rows_of, &blob_of, 1).await;
    cold
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_cli_gc() {
    let kills = support::env_u64("DREAMDB_CLI_GC_KILLS", 8);
    let mut rng = Rng::new(support::seed(0x00c1_196c));
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_owned();
    let mut acks = dataset(&url, 4).await;
    let ds = Dataset::open(&url, DATASET, OpenOptions::default())
        .await
        .unwrap();
    let mut dirty = 0;
    for k in 0..kills {
        // New garbage each round: older versions, for a tips-only GC.
        let next = acks.len() as u64;
        acks.extend(append(&ds, next, next + 2).await);
        run_and_kill(
            &url,
            &["gc", "--keep-manifests", "1", "--grace", "0s"],
            rng.range(2, 60),
        );
        // The data is whole right after the kill.
        let cold = whole_after_kill(&url, &acks, k).await;
        let after_kill = run(&url, &["--json", "verify"]);
        if code(&after_kill) != 0 {
            // An interrupted sweep used to leave history dirty until the
            // next gc (fixed: cut points go first, spec/0006 §4).
            assert_eq!(code(&after_kill), 4, "{}", stderr(&after_kill));
            dirty += 1;
        }
        assert_eq!(dirty, 0, "kill {k}: verify unclean after an interrupted gc");
        // A completed GC leaves everything clean.
        json(&url, &["gc", "--keep-manifests", "1", "--grace", "0s"], 0);
        let clean = json(&url, &["verify"], 0);
        assert_eq!(clean["clean"], true, "kill {k}");
        check_batches(&cold, &acks, &rows_of, &blob_of, 1).await;
    }
    println!(
        "CLI gc: {kills} SIGKILLs survived, {} appends whole; {dirty} interrupted states verify-unclean until the next gc",
        acks.len()
    );
}

/// `compact` SIGKILLed at random points, `DREAMDB_CLI_COMPACT_KILLS` times
/// (default 6), on a dataset fragmented by many small appends: right
/// after each kill the dataset opens, every acknowledged append is whole
/// and `verify` is clean (an interrupted compact only leaves unreferenced
/// objects); a completed compact then leaves it clean too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_cli_compact() {
    let kills = support::env_u64("DREAMDB_CLI_COMPACT_KILLS", 6);
    let mut rng = Rng::new(support::seed(0x00c0_3ac7));
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_owned();
    let mut acks = dataset(&url, 6).await;
    let ds = Dataset::open(&url, DATASET, OpenOptions::default())
        .await
        .unwrap();
    for k in 0..kills {
        // New fragmentation each round: more runs per cell.
        let next = acks.len() as u64;
        acks.extend(append(&ds, next, next + 3).await);
        run_and_kill(&url, &["compact"], rng.range(2, 80));
        whole_after_kill(&url, &acks, k).await;
        let after_kill = json(&url, &["verify"], 0);
        assert_eq!(after_kill["clean"], true, "kill {k}");
        json(&url, &["compact"], 0);
        assert_eq!(json(&url, &["verify"], 0)["clean"], true, "kill {k}");
        let done = Dataset::open(&url, DATASET, OpenOptions::default())
            .await
            .unwrap();
        check_batches(&done, &acks, &rows_of, &blob_of, 1).await;
    }
    println!(
        "CLI compact: {kills} SIGKILLs survived, {} appends whole",
        acks.len()
    );
}

/// `ada-ivf-step` SIGKILLed at random points, `DREAMDB_CLI_ADA_KILLS`
/// times (default 6), on a dataset that grows between rounds: right after
/// each kill the dataset opens, every acknowledged append is whole (by
/// anchor, and found by a query of its own vector) and `verify` is clean
/// (an interrupted step only leaves unreferenced objects); a completed
/// step then leaves it clean too, and over the rounds the completed steps
/// do change cells.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_cli_ada_ivf_step() {
    let kills = support::env_u64("DREAMDB_CLI_ADA_KILLS", 6);
    let mut rng = Rng::new(support::seed(0x00ad_a1f5));
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_owned();
    let mut acks = dataset(&url, 6).await;
    let ds = Dataset::open(&url, DATASET, OpenOptions::default())
        .await
        .unwrap();
    // The test batches fill the cells evenly (density 1.0 each): a split
    // threshold under 1 makes every step split, up to k = 2·√N.
    let step = [
        "ada-ivf-step",
        "--split-threshold",
        "0.9",
        "--merge-threshold",
        "0.2",
    ];
    let mut changed_total = 0u64;
    let mut landed = 0;
    // A step on this small dataset takes milliseconds, so fixed delays
    // mostly struck after it had ended: after the first round, each kill
    // falls at a random 5–95 % of the last completed step's duration.
    let mut last: Option<Duration> = None;
    // A first complete step, so later steps move records that earlier
    // steps already moved (buckets that lose their last cell runs).
    json(&url, &step, 0);
    for k in 0..kills {
        let next = acks.len() as u64;
        acks.extend(append(&ds, next, next + 3).await);
        let at = match last {
            Some(d) => d.mul_f64(rng.range(5, 95) as f64 / 100.0),
            None => Duration::from_millis(rng.range(2, 80)),
        };
        if run_and_kill_after(&url, &step, at) {
            landed += 1;
        }
        whole_after_kill(&url, &acks, k).await;
        let after_kill = json(&url, &["verify"], 0);
        assert_eq!(after_kill["clean"], true, "kill {k}");
        let started = Instant::now();
        let report = json(&url, &step, 0);
        last = Some(started.elapsed());
        changed_total += report["cells_rewritten"].as_u64().unwrap_or_else(|| {
            panic!("kill {k}: no cells_rewritten in the step's report: {report}")
        });
        assert_eq!(json(&url, &["verify"], 0)["clean"], true, "kill {k}");
        let done = Dataset::open(&url, DATASET, OpenOptions::default())
            .await
            .unwrap();
        check_batches(&done, &acks, &rows_of, &blob_of, 1).await;
        // Every batch's first record is found by its own vector under the
        // new cells.
        for a in &acks {
            let v = support::vectors(a.w, a.i, ROWS)[..support::DIM].to_vec();
            let request = dreamdb_dataset::read::QueryRequest::new("embedding", v, 1)
                .nprobe(64)
                .refine_factor(16);
            let hits = done.query(&request).await.unwrap().hits;
            assert_eq!(hits.first().map(|h| h.anchor), Some(a.first), "kill {k}");
        }
    }
    assert!(changed_total > 0, "no completed step changed a cell");
    assert!(landed > 0, "every step finished before its kill");
    println!(
        "CLI ada-ivf-step: {kills} SIGKILLs ({landed} while the process ran) survived, {} appends whole, {changed_total} cells changed by the completed steps",
        acks.len()
    );
}
