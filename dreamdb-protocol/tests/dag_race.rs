//! Writers racing on one ref: every commit ends up in history (losers
//! rebase), nothing is lost — two tasks on the memory backend, and two OS
//! processes on the local backend (the test binary re-runs itself as the
//! children, as `dreamdb-connector/tests/local_processes.rs` does).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dag_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dag_support::*;
use dreamdb_connector::local::LocalConnector;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::wrappers::{FaultInjector, FaultPlan};
use dreamdb_connector::Connector;
use dreamdb_core::ContentHash;

const COMMITS: usize = 20;
const ROLE: &str = "DREAMDB_DAG_TEST_ROLE";
const ROOT: &str = "DREAMDB_DAG_TEST_ROOT";
const GO: &str = "DREAMDB_DAG_TEST_GO";
const CHILD_ID: &str = "DREAMDB_DAG_TEST_CHILD_ID";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tasks_race_on_memory() {
    // A little latency widens the race windows.
    let inner = MemoryConnector::new();
    let connector: Arc<dyn Connector> = Arc::new(FaultInjector::new(
        inner,
        FaultPlan::none().with_latency(Duration::from_micros(200)),
    ));
    let repo = repo(connector);
    create(&repo).await;
    let tasks: Vec<_> = (0..2)
        .map(|w| {
            let repo = repo.clone();
            tokio::spawn(async move { race_writer(&repo, w, COMMITS).await })
        })
        .collect();
    let mut published = Vec::new();
    let mut attempts = 0;
    for t in tasks {
        let (p, a) = t.await.unwrap();
        published.extend(p);
        attempts += a;
    }
    println!(
        "2 tasks x {COMMITS} commits: {attempts} attempts ({} lost races)",
        attempts as usize - 2 * COMMITS
    );
    check_race(&repo, &published, 2, COMMITS).await;
}

fn child_env() -> Option<(PathBuf, usize)> {
    if std::env::var(ROLE).ok()? != "dag-race" {
        return None;
    }
    let root = PathBuf::from(std::env::var(ROOT).unwrap());
    let go = PathBuf::from(std::env::var(GO).unwrap());
    let id = std::env::var(CHILD_ID).unwrap().parse().unwrap();
    std::fs::write(go.with_file_name(format!("ready-{id}")), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !go.exists() {
        assert!(Instant::now() < deadline, "no go signal");
        std::thread::sleep(Duration::from_micros(50));
    }
    Some((root, id))
}

#[test]
fn child_dag_writer() {
    let Some((root, id)) = child_env() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let repo = repo(Arc::new(LocalConnector::open(root).unwrap()));
        let (published, attempts) = race_writer(&repo, id, COMMITS).await;
        for p in published {
            println!("\nPUBLISHED {}", p.to_hex());
        }
        println!("\nATTEMPTS {attempts}");
    });
}

fn run_children(root: &Path, n: usize) -> Vec<String> {
    let go = root.with_file_name("go");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..n)
        .map(|id| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "child_dag_writer",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ROLE, "dag-race")
                .env(ROOT, root)
                .env(GO, &go)
                .env(CHILD_ID, id.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (0..n).any(|id| !go.with_file_name(format!("ready-{id}")).exists()) {
        assert!(Instant::now() < deadline, "children did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::write(&go, b"go").unwrap();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "child failed: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains("1 passed"), "{stdout}");
            stdout
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_race_on_local() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let repo = repo(Arc::new(LocalConnector::open(&root).unwrap()));
    create(&repo).await;
    let outputs = tokio::task::spawn_blocking({
        let root = root.clone();
        move || run_children(&root, 2)
    })
    .await
    .unwrap();
    let mut published = Vec::new();
    let mut attempts = 0u64;
    for out in &outputs {
        for line in out.lines() {
            if let Some(hex) = line.strip_prefix("PUBLISHED ") {
                published.push(ContentHash::from_hex(hex.trim()).unwrap());
            }
            if let Some(n) = line.strip_prefix("ATTEMPTS ") {
                attempts += n.trim().parse::<u64>().unwrap();
            }
        }
    }
    assert_eq!(published.len(), 2 * COMMITS);
    println!(
        "2 processes x {COMMITS} commits: {attempts} attempts ({} lost races)",
        attempts - 2 * COMMITS as u64
    );
    // A fresh repo (no session cache) reads everything back from disk.
    let fresh = dag_support::repo(Arc::new(LocalConnector::open(&root).unwrap()));
    check_race(&fresh, &published, 2, COMMITS).await;
}
