//! Shared helpers of the CLI tests: run the built `dreamdb` binary, and
//! build a dataset history with the protocol crate (the CLI's data verbs
//! are not needed for that).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use dreamdb_connector::Connector;
use dreamdb_core::ref_name::RefName;
use dreamdb_core::time::{TimeAnchor, TimeRange};
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{
    ChangeSet, CommitLoopOptions, CreateDataset, FieldChanges, Repo, RepoConfig,
};
use dreamdb_protocol::objects::{
    DatasetName, FieldSpec, Fragment, Genesis, ScalarDtype, Schema, SchemaField, Tombstone,
};
use dreamdb_protocol::store::ObjectStore;
use dreamdb_protocol::track::{Change, TrackConfig, TrackKey, TrackValue};

pub const DATASET: &str = "cli";

/// Runs `dreamdb --backend <backend> --dataset cli <args>` with a clean
/// environment (no DREAMDB_* leaking in).
pub fn run(backend: &str, args: &[&str]) -> Output {
    run_env(backend, args, &[])
}

pub fn run_env(backend: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dreamdb"));
    cmd.env_remove("DREAMDB_BACKEND")
        .env_remove("DREAMDB_DATASET")
        .env_remove("DREAMDB_WRITER")
        .arg("--backend")
        .arg(backend)
        .arg("--dataset")
        .arg(DATASET)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs with `--json`, expects exit `expected`, parses stdout.
pub fn json(backend: &str, args: &[&str], expected: i32) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run(backend, &all);
    assert_eq!(
        code(&out),
        expected,
        "dreamdb {args:?}: stdout {} stderr {}",
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout of {args:?} is not JSON ({e}): {}", stdout(&out)))
}

pub fn name(s: &str) -> RefName {
    RefName::parse(s).unwrap()
}

pub fn repo_on(connector: Arc<dyn Connector>) -> Repo {
    Repo::with_config(
        ObjectStore::new(connector, 1 << 20),
        DatasetName::parse(DATASET).unwrap(),
        RepoConfig {
            track: TrackConfig {
                fanout: 4,
                page_target_bytes: 512,
                inline_max_bytes: 400,
            },
            ..RepoConfig::default()
        },
    )
    .unwrap()
}

pub async fn local_repo(dir: &Path) -> Repo {
    let connector = dreamdb_connector_http::connect(dir.to_str().unwrap())
        .await
        .unwrap();
    repo_on(connector)
}

pub async fn create(repo: &Repo) -> ContentHash {
    let mut fields = BTreeMap::new();
    fields.insert(
        "label".to_owned(),
        SchemaField {
            spec: FieldSpec::Scalar {
                dtype: ScalarDtype::I64,
                nullable: false,
            },
            tag: None,
        },
    );
    repo.create_dataset(CreateDataset {
        genesis: Genesis {
            dataset: DATASET.to_owned(),
            created_unix_nanos: 1,
            nonce: [9; 16],
        },
        schema: Schema { fields },
        writer: "cli-test".to_owned(),
        message: "create".to_owned(),
        tracks: BTreeMap::new(),
        time_unix_nanos: None,
    })
    .await
    .unwrap()
    .1
}

/// A real segment object for anchor `anchor`.
pub async fn segment(repo: &Repo, anchor: u64, salt: &str) -> ContentHash {
    repo.put_object(&Fragment {
        range: TimeRange::new(TimeAnchor::new(anchor), TimeAnchor::new(anchor + 1)).unwrap(),
        mime: "audio/ogg".to_owned(),
        payload: format!("{salt} {anchor}").into_bytes(),
    })
    .await
    .unwrap()
}

/// Appends one record per anchor (`count` per run) to `branch`.
pub async fn append(repo: &Repo, branch: &str, anchors: &[u64], message: &str) -> ContentHash {
    append_counted(repo, branch, anchors, 1, message).await
}

pub async fn append_counted(
    repo: &Repo,
    branch: &str,
    anchors: &[u64],
    count: u32,
    message: &str,
) -> ContentHash {
    let mut changes = Vec::new();
    for &anchor in anchors {
        let seg = segment(repo, anchor, "x").await;
        changes.push(Change::Put(
            TrackKey::anchor_run(anchor, &seg),
            TrackValue::AnchorRun {
                segment: seg,
                last_anchor: anchor + u64::from(count) - 1,
                count,
                table_offset: 0,
                table_len: 8 * u64::from(count),
                storage: None,
            },
        ));
    }
    let mut fields = BTreeMap::new();
    fields.insert(
        "label".to_owned(),
        FieldChanges {
            changes,
            ..FieldChanges::default()
        },
    );
    repo.apply_changes(
        &name(branch),
        &ChangeSet {
            fields,
            records_delta: (anchors.len() as i64) * i64::from(count),
            writer: format!("writer-{branch}"),
            message: message.to_owned(),
            ..ChangeSet::default()
        },
        &CommitLoopOptions::default(),
    )
    .await
    .unwrap()
    .manifest
}

pub async fn delete(repo: &Repo, branch: &str, anchor: u64) -> ContentHash {
    repo.apply_changes(
        &name(branch),
        &ChangeSet {
            tombstones: vec![Tombstone {
                anchor: TimeAnchor::new(anchor),
                reason: "test".to_owned(),
                time_unix_nanos: 1,
            }],
            records_delta: -1,
            writer: "cli-test".to_owned(),
            message: format!("delete {anchor}"),
            ..ChangeSet::default()
        },
        &CommitLoopOptions::default(),
    )
    .await
    .unwrap()
    .manifest
}

/// A small history on `main`: create, 3 appends (3, 2, 4 records), a
/// delete, a branch `feature` off the second append with 2 records, and
/// a tag `v1` at the second append. Returns main's Manifests oldest first.
pub async fn history(repo: &Repo) -> Vec<ContentHash> {
    let m0 = create(repo).await;
    let m1 = append(repo, "main", &[10, 11, 12], "first batch").await;
    let m2 = append(repo, "main", &[20, 21], "second batch").await;
    repo.branch(&name("feature"), m2).await.unwrap();
    repo.tag(&name("v1"), m2).await.unwrap();
    let m3 = append(repo, "main", &[30, 31, 32, 33], "third batch").await;
    let m4 = delete(repo, "main", 11).await;
    append(repo, "feature", &[40, 41], "feature batch").await;
    vec![m0, m1, m2, m3, m4]
}
