//! The local backend's compare-and-swap across OS processes.
//!
//! The parent tests re-run this test binary as child processes (filtered to
//! one `child_*` test, with environment variables carrying the store root
//! and a role marker); the child tests return at once when the marker is
//! absent, so in a normal run they pass trivially. Each child reports ready
//! and waits for a "go" file, so they really race.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dreamdb_connector::conformance::increment_counter;
use dreamdb_connector::local::LocalConnector;
use dreamdb_connector::{Connector, ObjectKey, PutMode, PutOutcome};

const ROLE: &str = "DREAMDB_CONNECTOR_TEST_ROLE";
const ROOT: &str = "DREAMDB_CONNECTOR_TEST_ROOT";
const GO: &str = "DREAMDB_CONNECTOR_TEST_GO";
const CHILD_ID: &str = "DREAMDB_CONNECTOR_TEST_CHILD_ID";

const CHILDREN: usize = 4;
const INCREMENTS: usize = 25;
const CREATE_KEYS: usize = 20;

/// The role this process was started with, if it is a child of `role`.
fn child_env(role: &str) -> Option<(PathBuf, usize)> {
    if std::env::var(ROLE).ok()? != role {
        return None;
    }
    let root = PathBuf::from(std::env::var(ROOT).unwrap());
    let go = PathBuf::from(std::env::var(GO).unwrap());
    let id = std::env::var(CHILD_ID).unwrap().parse().unwrap();
    // Tell the parent this child is ready, then wait for everyone.
    std::fs::write(go.with_file_name(format!("ready-{id}")), b"").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !go.exists() {
        assert!(Instant::now() < deadline, "no go signal");
        std::thread::sleep(Duration::from_micros(50));
    }
    Some((root, id))
}

/// Runs `CHILDREN` copies of test `name` with `role`, starts them together
/// and returns their stdout.
fn run_children(name: &str, role: &str, root: &Path) -> Vec<String> {
    let go = root.with_file_name("go");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..CHILDREN)
        .map(|id| {
            Command::new(&exe)
                .args(["--exact", name, "--nocapture", "--test-threads=1"])
                .env(ROLE, role)
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
    while (0..CHILDREN).any(|id| !go.with_file_name(format!("ready-{id}")).exists()) {
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
            // The child must really have run its test, not skipped it.
            assert!(stdout.contains("1 passed"), "{stdout}");
            stdout
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn child_counter() {
    let Some((root, id)) = child_env("counter") else {
        return;
    };
    runtime().block_on(async {
        let store = LocalConnector::open(root).unwrap();
        let key = ObjectKey::new("counters/shared").unwrap();
        let attempts = increment_counter(&store, &key, INCREMENTS).await.unwrap();
        // Own line: the harness prints "test child_counter ... " first.
        println!("\nCHILD {id} ATTEMPTS {attempts}");
    });
}

#[test]
fn four_processes_increment_one_counter_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    LocalConnector::open(&root).unwrap();
    let started = Instant::now();
    let outputs = run_children("child_counter", "counter", &root);
    let elapsed = started.elapsed();
    let attempts: u64 = outputs
        .iter()
        .map(|out| {
            let line = out.lines().find(|l| l.starts_with("CHILD ")).unwrap();
            line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    let value = runtime().block_on(async {
        let store = LocalConnector::open(&root).unwrap();
        let key = ObjectKey::new("counters/shared").unwrap();
        store.get(&key).await.unwrap().bytes
    });
    println!(
        "{CHILDREN} processes x {INCREMENTS} increments in {elapsed:?}, \
         {attempts} attempts ({} lost races)",
        attempts - (CHILDREN * INCREMENTS) as u64
    );
    assert_eq!(value, (CHILDREN * INCREMENTS).to_string());
}

#[test]
fn child_create() {
    let Some((root, id)) = child_env("create") else {
        return;
    };
    runtime().block_on(async {
        let store = LocalConnector::open(root).unwrap();
        for i in 0..CREATE_KEYS {
            let key = ObjectKey::new(format!("race/{i}")).unwrap();
            let bytes = Bytes::from(format!("child {id}"));
            match store.put(&key, bytes, PutMode::Create).await.unwrap() {
                PutOutcome::Written(_) => println!("\nWON {i}"),
                PutOutcome::AlreadyExists => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    });
}

#[test]
fn four_processes_race_create_one_winner_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    LocalConnector::open(&root).unwrap();
    let started = Instant::now();
    let outputs = run_children("child_create", "create", &root);
    let elapsed = started.elapsed();
    let mut winners = vec![Vec::new(); CREATE_KEYS];
    for (child, out) in outputs.iter().enumerate() {
        for line in out.lines().filter_map(|l| l.strip_prefix("WON ")) {
            winners[line.parse::<usize>().unwrap()].push(child);
        }
    }
    println!("{CHILDREN} processes x {CREATE_KEYS} creates in {elapsed:?}: winners {winners:?}");
    runtime().block_on(async {
        let store = LocalConnector::open(&root).unwrap();
        for (i, won) in winners.iter().enumerate() {
            assert_eq!(won.len(), 1, "key {i}: winners {won:?}");
            let key = ObjectKey::new(format!("race/{i}")).unwrap();
            let stored = store.get(&key).await.unwrap().bytes;
            assert_eq!(stored, format!("child {}", won[0]), "key {i}");
        }
    });
}
