//! History and ref verbs of the built binary against a local directory:
//! `log`, `inspect`, `refs`, `branch`, `snapshot`, `reset`, `merge`,
//! `merge-many`, `diff`, `sweep-init`, `sweep-summarize`, and the exit
//! statuses 0, 1, 2 and 3.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use dreamdb_protocol::track::{TrackKey, TrackValue};

fn dir_and_backend() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let backend = dir.path().join("store").to_str().unwrap().to_owned();
    (dir, backend)
}

#[tokio::test]
async fn log_shows_deltas_writer_and_depth() {
    let (_d, backend) = dir_and_backend();
    let repo = local_repo(std::path::Path::new(&backend)).await;
    let main = history(&repo).await;

    let log = json(&backend, &["log"], 0);
    let commits = log["commits"].as_array().unwrap();
    assert_eq!(commits.len(), 5);
    assert_eq!(commits[0]["hash"], main[4].to_hex());
    assert_eq!(commits[0]["records_delta"], -1);
    assert_eq!(commits[0]["tombstones"], 1);
    assert_eq!(commits[0]["tombstones_delta"], 1);
    assert_eq!(commits[1]["message"], "third batch");
    assert_eq!(commits[1]["records_delta"], 4);
    assert_eq!(commits[1]["tracks"]["label"]["runs_delta"], 4);
    assert_eq!(commits[1]["writer"], "writer-main");
    assert!(commits[1]["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(commits[4]["message"], "create");
    assert_eq!(commits[4]["records_delta"], 0);

    let short = json(&backend, &["log", "--max-depth", "2"], 0);
    assert_eq!(short["commits"].as_array().unwrap().len(), 2);
    let feature = json(&backend, &["log", "feature", "-n", "1"], 0);
    assert_eq!(feature["commits"][0]["message"], "feature batch");
    assert_eq!(feature["from"], "refs/feature");

    // Human output goes to stdout, one block per commit.
    let out = run(&backend, &["log"]);
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out).matches("commit ").count(), 5);
    assert!(stdout(&out).contains("third batch"));
}

#[tokio::test]
async fn inspect_shows_one_version() {
    let (_d, backend) = dir_and_backend();
    let repo = local_repo(std::path::Path::new(&backend)).await;
    let main = history(&repo).await;
    let v = json(&backend, &["inspect", "v1"], 0);
    assert_eq!(v["manifest"], main[2].to_hex());
    assert_eq!(v["version"], "tags/v1");
    assert_eq!(v["records"], 5);
    assert_eq!(v["height"], 2);
    assert_eq!(v["parents"][0], main[1].to_hex());
    assert_eq!(v["tracks"]["label"]["runs"], 5);
    assert!(v["schema"]["fields"]["label"].is_object());
    let by_hash = json(&backend, &["inspect", &main[4].to_hex()], 0);
    assert_eq!(by_hash["tombstones"], 1);
    assert!(by_hash["registry"]["dreamdb.tombstones"].is_string());
    // Unknown version: exit 1.
    let out = run(&backend, &["inspect", "nope"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
}

#[tokio::test]
async fn branches_tags_reset() {
    let (_d, backend) = dir_and_backend();
    let repo = local_repo(std::path::Path::new(&backend)).await;
    let main = history(&repo).await;

    let b = json(&backend, &["branch", "exp/a", "--from", "v1"], 0);
    assert_eq!(b["manifest"], main[2].to_hex());
    // Same name, same target: success; other target: conflict (3).
    json(&backend, &["branch", "exp/a", "--from", "v1"], 0);
    let taken = json(&backend, &["branch", "exp/a", "--from", "main"], 3);
    assert_eq!(taken["exit"], 3);
    assert_eq!(taken["error"]["class"], "already-exists");

    let t = json(
        &backend,
        &["snapshot", "--ref", "main", "--label", "nightly"],
        0,
    );
    assert_eq!(t["manifest"], main[4].to_hex());
    json(
        &backend,
        &["snapshot", "--ref", "v1", "--label", "nightly"],
        3,
    );

    let refs = json(&backend, &["refs"], 0);
    let names: Vec<&str> = refs["branches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["exp/a", "feature", "main"]);
    assert_eq!(refs["tags"].as_array().unwrap().len(), 2);
    let listed = json(&backend, &["branch", "--list", "exp/*"], 0);
    assert_eq!(listed["branches"].as_array().unwrap().len(), 1);

    let r = json(&backend, &["reset", "main", &main[1].to_hex()], 0);
    assert_eq!(r["from"], main[4].to_hex());
    assert_eq!(r["to"], main[1].to_hex());
    let after = json(&backend, &["inspect", "main"], 0);
    assert_eq!(after["manifest"], main[1].to_hex());

    json(&backend, &["branch", "exp/a", "--delete"], 0);
    json(&backend, &["branch", "exp/a", "--delete"], 1);
}

#[tokio::test]
async fn diff_reports_records_on_each_side() {
    let (_d, backend) = dir_and_backend();
    let repo = local_repo(std::path::Path::new(&backend)).await;
    history(&repo).await;
    let d = json(&backend, &["diff", "main", "feature"], 0);
    // main has the third batch (4), feature has its own batch (2).
    assert_eq!(d["records_only_in_a"], 4);
    assert_eq!(d["records_only_in_b"], 2);
    assert_eq!(d["deleted_only_in_a"], serde_json::json!([11]));
    let runs_b = d["fields"]["label"]["only_in_b"]["runs"]
        .as_array()
        .unwrap();
    let firsts: Vec<u64> = runs_b
        .iter()
        .map(|r| r["first_anchor"].as_u64().unwrap())
        .collect();
    assert_eq!(firsts, [40, 41]);
    let same = json(&backend, &["diff", "v1", "v1"], 0);
    assert_eq!(same["identical"], true);
    assert_eq!(same["records_only_in_a"], 0);
}

#[tokio::test]
async fn merges_and_conflicts() {
    let (_d, backend) = dir_and_backend();
    let repo = local_repo(std::path::Path::new(&backend)).await;
    history(&repo).await;

    let m = json(&backend, &["merge", "feature", "--into", "main"], 0);
    assert_eq!(m["outcome"], "merged");
    let merged = json(&backend, &["inspect", "main"], 0);
    assert_eq!(merged["parents"].as_array().unwrap().len(), 2);
    assert_eq!(merged["records"], 10);
    // Again: already up to date.
    let again = json(&backend, &["merge", "feature"], 0);
    assert_eq!(again["outcome"], "already-up-to-date");

    // Fast-forward only: refused (3) when not possible, done when it is.
    json(&backend, &["branch", "behind", "--from", "v1"], 0);
    let ff = json(
        &backend,
        &[
            "merge",
            "main",
            "--into",
            "behind",
            "--strategy",
            "fast-forward",
        ],
        0,
    );
    assert_eq!(ff["outcome"], "fast-forward");
    let moved = append(&repo, "behind", &[90], "ahead").await;
    append(&repo, "main", &[91], "diverged").await;
    let refused = json(
        &backend,
        &[
            "merge",
            "behind",
            "--into",
            "main",
            "--strategy",
            "fast-forward",
        ],
        3,
    );
    assert_eq!(refused["error"]["class"], "not-ancestor");
    let _ = moved;

    // A real conflict: both sides change one track entry differently.
    json(&backend, &["branch", "left", "--from", "main"], 0);
    json(&backend, &["branch", "right", "--from", "main"], 0);
    let seg = segment(&repo, 500, "shared").await;
    for (branch, count) in [("left", 1u32), ("right", 2u32)] {
        let change = dreamdb_protocol::track::Change::Put(
            TrackKey::anchor_run(500, &seg),
            TrackValue::AnchorRun {
                segment: seg,
                last_anchor: 500 + u64::from(count) - 1,
                count,
                table_offset: 0,
                table_len: 8,
                storage: None,
            },
        );
        let mut fields = std::collections::BTreeMap::new();
        fields.insert(
            "label".to_owned(),
            dreamdb_protocol::dag::FieldChanges {
                changes: vec![change],
                ..Default::default()
            },
        );
        repo.apply_changes(
            &name(branch),
            &dreamdb_protocol::dag::ChangeSet {
                fields,
                records_delta: 1,
                writer: "t".to_owned(),
                message: "conflicting".to_owned(),
                ..Default::default()
            },
            &Default::default(),
        )
        .await
        .unwrap();
    }
    let conflict = json(&backend, &["merge", "right", "--into", "left"], 3);
    assert_eq!(conflict["error"]["class"], "merge-conflict");
    let out = run(&backend, &["merge", "right", "--into", "left"]);
    assert_eq!(code(&out), 3);
    assert!(stderr(&out).contains("conflict"), "{}", stderr(&out));
    // Taking one side resolves it.
    let ours = json(
        &backend,
        &["merge", "right", "--into", "left", "--strategy", "ours"],
        0,
    );
    assert_eq!(ours["outcome"], "merged");
}

#[tokio::test]
async fn merge_many_is_one_manifest() {
    let (_d, backend) = dir_and_backend();
    let repo = local_repo(std::path::Path::new(&backend)).await;
    create(&repo).await;
    for shard in 0..4u64 {
        let b = format!("ingest/shard-{shard}");
        json(&backend, &["branch", &b], 0);
        append(&repo, &b, &[1000 * shard + 1, 1000 * shard + 2], "shard").await;
    }
    let m = json(&backend, &["merge-many", "--pattern", "ingest/*"], 0);
    assert_eq!(m["outcome"], "merged");
    assert_eq!(m["branches"].as_array().unwrap().len(), 4);
    let tip = json(&backend, &["inspect"], 0);
    assert_eq!(tip["parents"].as_array().unwrap().len(), 5);
    assert_eq!(tip["records"], 8);
    let none = json(&backend, &["merge-many"], 2);
    assert_eq!(none["exit"], 2);
}

#[tokio::test]
async fn sweeps() {
    let (_d, backend) = dir_and_backend();
    let repo = local_repo(std::path::Path::new(&backend)).await;
    create(&repo).await;
    append(&repo, "main", &[1, 2], "base").await;
    let init = json(
        &backend,
        &["sweep-init", "--source", "main", "--runs", "3"],
        0,
    );
    assert_eq!(
        init["branches"],
        serde_json::json!(["sweep/run-001", "sweep/run-002", "sweep/run-003"])
    );
    append(&repo, "sweep/run-001", &[10], "train lr=0.1 recall=0.81").await;
    append(&repo, "sweep/run-002", &[20], "train lr=0.3 recall=0.93").await;
    append(&repo, "sweep/run-002", &[21, 22], "more data").await;
    let s = json(
        &backend,
        &[
            "sweep-summarize",
            "--pattern",
            "sweep/*",
            "--metric",
            "recall",
        ],
        0,
    );
    assert_eq!(s["best"], "sweep/run-002");
    let runs = s["runs"].as_array().unwrap();
    assert_eq!(runs[0]["metric"], 0.93);
    assert_eq!(runs[0]["commits"], 2);
    assert_eq!(runs[1]["metric"], 0.81);
    assert!(runs[2]["metric"].is_null());
    let by_records = json(
        &backend,
        &["sweep-summarize", "--metric", "records", "--ascending"],
        0,
    );
    assert_eq!(by_records["runs"][0]["branch"], "sweep/run-003");
    // Re-running init at the same source is fine; a moved run conflicts.
    json(&backend, &["sweep-init", "--runs", "3"], 3);
    json(&backend, &["sweep-init", "--runs", "0"], 2);
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let backend = dir.path().to_str().unwrap();
    for args in [
        vec!["no-such-verb"],
        vec!["gc"],
        vec!["gc", "--keep-since", "7 days"],
        vec!["gc", "--keep-manifests", "2", "--shard", "1"],
        vec!["log", "--max-depth", "-3"],
        vec!["merge"],
    ] {
        let out = run(backend, &args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
    }
    let help = run(backend, &["--help"]);
    assert_eq!(code(&help), 0);
    let text = stdout(&help);
    for line in [
        "0  done",
        "1  error",
        "2  usage",
        "3  conflict",
        "4  threshold",
    ] {
        assert!(text.contains(line), "--help lacks {line:?}");
    }
}
