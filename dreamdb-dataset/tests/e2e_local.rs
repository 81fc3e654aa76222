//! The P0 workflow on a local directory, then reopened from a NEW PROCESS
//! (this test binary re-run as a child) which must see the final state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "e2e_common.rs"]
mod e2e;

use std::process::Command;

use e2e::{check_reopened, workflow, Backend, Outcome};

const ROLE: &str = "DREAMDB_E2E_LOCAL_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p0_workflow_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("store");
    let url = url.to_str().unwrap().to_owned();
    let backend = Backend::Url(url.clone());
    let outcome = workflow(&backend, "e2e-local").await;
    // A new process opens the directory and checks the final state.
    let probe: Vec<String> = outcome
        .probe
        .iter()
        .map(|x| x.to_bits().to_string())
        .collect();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_reopens",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "1")
        .env("E2E_URL", &url)
        .env("E2E_DELETED", outcome.deleted.to_string())
        .env("E2E_PROBE", probe.join(","))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("child: reopened ok"), "{stdout}");
    // file:// reaches the same directory.
    let file_url = format!("file://{url}");
    check_reopened(&Backend::Url(file_url), &outcome).await;
}

/// The child: runs only when started by the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_reopens() {
    if std::env::var(ROLE).is_err() {
        return;
    }
    let url = std::env::var("E2E_URL").unwrap();
    let outcome = Outcome {
        name: "e2e-local".into(),
        deleted: std::env::var("E2E_DELETED").unwrap().parse().unwrap(),
        probe: std::env::var("E2E_PROBE")
            .unwrap()
            .split(',')
            .map(|b| f32::from_bits(b.parse().unwrap()))
            .collect(),
        records: 499,
        snapshot_records: 400,
    };
    check_reopened(&Backend::Url(url), &outcome).await;
    println!("child: reopened ok (pid {})", std::process::id());
}
