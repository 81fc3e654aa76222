//! The bodies of the spatial-maintenance CLI tests, run against a local
//! directory (`cli_spatial.rs`) and the S3-compatible server
//! (`s3_spatial.rs`). Datasets are built with the SDK; every maintenance
//! step runs the built `dreamdb` binary.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use bytes::Bytes;
use dreamdb_connector::{Connector, KeyPrefix};
use dreamdb_core::random::DeterministicStream;
use dreamdb_dataset::batch::{Batch, ScalarColumn};
use dreamdb_dataset::dataset::{CreateOptions, MergeStrategy, OpenOptions, Version};
use dreamdb_dataset::read::{IterOptions, QueryRequest};
use dreamdb_dataset::schema::{EmbeddingField, Metric, ScalarType, SchemaBuilder};
use dreamdb_dataset::Dataset;
use futures::StreamExt;

use crate::common::{code, json, run, stderr, stdout, DATASET};

pub const DIM: usize = 16;

/// The value a deleted record's first coordinate carries (its raw row
/// bytes are searched for after gc).
pub const MARK: f32 = 31.415_926;

fn centres() -> Vec<f32> {
    let mut s = DeterministicStream::from_seed(7, "dreamdb.cli-test.centres");
    (0..8 * DIM).map(|_| s.next_f32_normal()).collect()
}

/// `rows` vectors around 8 centres (row i in cluster i % 8).
pub fn clustered(seed: u64, rows: usize) -> Vec<f32> {
    let c = centres();
    let mut s = DeterministicStream::from_seed(seed, "dreamdb.cli-test.noise");
    (0..rows * DIM)
        .map(|i| c[((i / DIM) % 8) * DIM + i % DIM] + 0.1 * s.next_f32_normal())
        .collect()
}

/// `rows` vectors in 6 tight sub-clusters around centre 0 (drift).
pub fn drifted(seed: u64, rows: usize) -> Vec<f32> {
    let c = centres();
    let mut s = DeterministicStream::from_seed(seed, "dreamdb.cli-test.drift");
    let subs: Vec<f32> = (0..6 * DIM)
        .map(|i| c[i % DIM] + 0.4 * s.next_f32_normal())
        .collect();
    (0..rows * DIM)
        .map(|i| subs[((i / DIM) % 6) * DIM + i % DIM] + 0.05 * s.next_f32_normal())
        .collect()
}

pub async fn create(url: &str) -> Dataset {
    let schema = SchemaBuilder::new()
        .embedding(
            "embedding",
            EmbeddingField::new(DIM as u32)
                .metric(Metric::L2)
                .ivf(8)
                .rabitq(1)
                .rerank(true),
        )
        .blob("image", "image/x-test", 256)
        .scalar("label", ScalarType::Categorical)
        .build()
        .unwrap();
    Dataset::create(url, DATASET, schema, CreateOptions::default())
        .await
        .unwrap()
}

/// The blob of a record: `secret` ones carry a distinctive pattern.
fn blob(tag: &str, i: usize, secret: bool) -> Bytes {
    Bytes::from(if secret {
        format!("TOP-SECRET-PAYLOAD-{tag}-{i:05}")
    } else {
        format!("plain-{tag}-{i}")
    })
}

pub fn batch(tag: &str, vectors: Vec<f32>, secret: &dyn Fn(usize) -> bool) -> Batch {
    let rows = vectors.len() / DIM;
    Batch::new(rows)
        .embeddings("embedding", DIM as u32, vectors)
        .blobs(
            "image",
            (0..rows).map(|i| blob(tag, i, secret(i))).collect(),
        )
        .scalars(
            "label",
            ScalarColumn::Categorical((0..rows).map(|i| Some(format!("c{}", i % 3))).collect()),
        )
}

/// Every stored object's bytes (one LIST, then GETs).
pub async fn all_bytes(url: &str) -> Vec<(String, Bytes)> {
    let connector = dreamdb_connector_http::connect(url).await.unwrap();
    let prefix = KeyPrefix::all();
    let keys: Vec<String> = connector
        .list(&prefix)
        .map(|m| m.unwrap().key.as_str().to_owned())
        .collect()
        .await;
    let mut out = Vec::new();
    for k in keys {
        let key = dreamdb_connector::ObjectKey::new(k.clone()).unwrap();
        if let Ok(r) = connector.get(&key).await {
            out.push((k, r.bytes));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// gc safety and compaction: branches, tags, merges, deletes, compaction,
/// then gc removes only unreachable objects and the deleted records'
/// bytes are gone.
pub async fn gc_after_compaction(url: &str) {
    let main = create(url).await;
    main.append_many(batch("a", clustered(1, 240), &|_| false))
        .await
        .unwrap();
    main.snapshot("v1").await.unwrap();
    let feature = main.branch("feature").await.unwrap();
    feature
        .append_many(batch("f", clustered(2, 120), &|_| false))
        .await
        .unwrap();
    // A batch whose every 4th record is secret (marked vector, marked blob).
    let mut v = clustered(3, 200);
    for i in (0..200).step_by(4) {
        v[i * DIM] = MARK;
    }
    let d = main
        .append_many(batch("d", v.clone(), &|i| i % 4 == 0))
        .await
        .unwrap();
    let deleted: Vec<u64> = d.anchors.iter().step_by(4).copied().collect();
    main.delete(&deleted, "gdpr").await.unwrap();
    main.merge("feature", MergeStrategy::Union).await.unwrap();
    let live = main.records().await.unwrap();
    assert_eq!(live, 240 + 120 + 200 - 50);

    let compacted = json(url, &["compact"], 0);
    assert_eq!(compacted["changed"], true, "{compacted}");
    assert_eq!(compacted["fields"]["embedding"]["records_dropped"], 50);
    assert_eq!(compacted["fields"]["image"]["records_dropped"], 50);
    assert_eq!(compacted["fields"]["label"]["records_dropped"], 50);
    // Again: nothing to do.
    assert_eq!(json(url, &["compact"], 0)["changed"], false);
    let status = json(url, &["ada-ivf-status"], 0);
    assert_eq!(status["fragmentation"], 1.0, "{status}");

    let secret_vector: Vec<u8> = [MARK, v[1]].iter().flat_map(|x| x.to_le_bytes()).collect();
    let holders = |all: &[(String, Bytes)]| -> usize {
        all.iter()
            .filter(|(_, b)| contains(b, b"TOP-SECRET-PAYLOAD") || contains(b, &secret_vector))
            .count()
    };
    let before = all_bytes(url).await;
    assert!(
        holders(&before) > 0,
        "the secret bytes are stored before gc"
    );

    // Dry run: lists, deletes nothing.
    let dry = json(
        url,
        &["gc", "--keep-manifests", "1", "--grace", "0s", "--dry-run"],
        0,
    );
    assert!(dry["deleted_objects"].as_u64().unwrap() > 0, "{dry}");
    assert_eq!(
        dry["deleted"].as_array().unwrap().len() as u64,
        dry["deleted_objects"].as_u64().unwrap()
    );
    assert_eq!(all_bytes(url).await.len(), before.len());

    let gc = json(url, &["gc", "--keep-manifests", "1", "--grace", "0s"], 0);
    assert_eq!(gc["deleted_objects"], dry["deleted_objects"], "{gc}");
    let after = all_bytes(url).await;
    assert_eq!(
        holders(&after),
        0,
        "a stored object still holds a deleted record"
    );
    assert_eq!(json(url, &["verify"], 0)["bad_objects"], 0);

    // Every ref and tag still opens and reads.
    let main = Dataset::open(url, DATASET, OpenOptions::default())
        .await
        .unwrap();
    assert_eq!(
        main.iter(IterOptions::default()).await.unwrap().len() as u64,
        live
    );
    let feature = Dataset::open_at(url, DATASET, Version::Ref("feature".into()))
        .await
        .unwrap();
    assert_eq!(
        feature.iter(IterOptions::default()).await.unwrap().len(),
        360
    );
    let v1 = Dataset::open_at(url, DATASET, Version::Tag("v1".into()))
        .await
        .unwrap();
    assert_eq!(v1.iter(IterOptions::default()).await.unwrap().len(), 240);
    // Queries never return a deleted record.
    let gone: BTreeSet<u64> = deleted.iter().copied().collect();
    for i in (0..200).step_by(4) {
        let hits = main
            .query(
                &QueryRequest::new("embedding", v[i * DIM..(i + 1) * DIM].to_vec(), 10).nprobe(8),
            )
            .await
            .unwrap()
            .hits;
        assert!(hits.iter().all(|h| !gone.contains(&h.anchor)));
    }
}

/// Ada-IVF via the CLI on skewed data, sharded and not, and bad input.
pub async fn ada_ivf(url: &str) {
    let ds = create(url).await;
    ds.append_many(batch("a", clustered(1, 800), &|_| false))
        .await
        .unwrap();
    ds.append_many(batch("b", drifted(2, 1200), &|_| false))
        .await
        .unwrap();
    ds.branch("sharded").await.unwrap();
    let tip = ds.manifest_hash().await.unwrap();

    // Bad input: usage (2) or invalid input (1); the ref never moves.
    for (args, want) in [
        (
            vec![
                "ada-ivf-step",
                "--split-threshold",
                "0",
                "--merge-threshold",
                "0.3",
            ],
            2,
        ),
        (
            vec![
                "ada-ivf-step",
                "--split-threshold",
                "NaN",
                "--merge-threshold",
                "0.3",
            ],
            2,
        ),
        (
            vec![
                "ada-ivf-step",
                "--split-threshold",
                "1.5",
                "--merge-threshold",
                "-1",
            ],
            2,
        ),
        (vec!["ada-ivf-step", "--merge-threshold", "0.3"], 2),
        (
            vec![
                "ada-ivf-step",
                "--field",
                "label",
                "--split-threshold",
                "1.5",
                "--merge-threshold",
                "0.3",
            ],
            1,
        ),
        (
            vec![
                "ada-ivf-step",
                "--field",
                "nope",
                "--split-threshold",
                "1.5",
                "--merge-threshold",
                "0.3",
            ],
            1,
        ),
        (
            vec![
                "ada-ivf-step",
                "--split-threshold",
                "0.3",
                "--merge-threshold",
                "1.5",
            ],
            1,
        ),
        (vec!["ada-ivf-status", "--field", "image"], 1),
        (vec!["publish-rabitq", "--bits", "9"], 2),
        (vec!["publish-rabitq", "--bits", "1"], 1),
        (vec!["rebuild-ivf", "--cells", "0"], 1),
        (vec!["compact", "--field", "nope"], 1),
        (
            vec![
                "ada-ivf-step",
                "--split-threshold",
                "1.5",
                "--merge-threshold",
                "0.3",
                "--shard",
                "2",
                "--of",
                "2",
                "--job-id",
                "j",
            ],
            1,
        ),
        (
            vec![
                "ada-ivf-step",
                "--split-threshold",
                "1.5",
                "--merge-threshold",
                "0.3",
                "--shard",
                "0",
                "--of",
                "2",
                "--job-id",
                "../j",
            ],
            1,
        ),
        (
            vec![
                "ada-ivf-step",
                "--orchestrate",
                "--of",
                "2",
                "--job-id",
                "never-ran",
            ],
            1,
        ),
    ] {
        let out = run(url, &args);
        assert_eq!(
            code(&out),
            want,
            "{args:?}: {} {}",
            stdout(&out),
            stderr(&out)
        );
    }
    assert_eq!(ds.manifest_hash().await.unwrap(), tip);

    // Status: imbalanced, exit 4 above the threshold.
    let status = json(
        url,
        &[
            "ada-ivf-status",
            "--split-threshold",
            "1.5",
            "--merge-threshold",
            "0.3",
            "--fail-above",
            "0.5",
        ],
        4,
    );
    assert_eq!(status["threshold_crossed"], true);
    assert_eq!(status["n"], 2000);
    assert!(!status["overpopulated"].as_array().unwrap().is_empty());
    let before = status["imbalance"].as_f64().unwrap();

    let step = json(
        url,
        &[
            "ada-ivf-step",
            "--split-threshold",
            "1.5",
            "--merge-threshold",
            "0.3",
        ],
        0,
    );
    let after = step["imbalance_after"].as_f64().unwrap();
    assert!(after < before, "{step}");
    assert!(step["k_after"].as_u64().unwrap() <= step["k_max"].as_u64().unwrap());
    let changed =
        step["splits"].as_array().unwrap().len() + step["merges"].as_array().unwrap().len();
    assert!(changed > 0);
    assert_eq!(step["cells_rewritten"].as_u64().unwrap(), changed as u64);
    assert!(step["cells_untouched"].as_u64().unwrap() > 0);
    let status = json(
        url,
        &[
            "ada-ivf-status",
            "--fail-above",
            &format!("{}", after + 0.01),
        ],
        0,
    );
    assert!((status["imbalance"].as_f64().unwrap() - after).abs() < 1e-9);
    assert_eq!(status["spatial_index"], step["spatial_index"]);

    // The same step in two shards on the branch: the same index.
    for shard in ["0", "1"] {
        let r = json(
            url,
            &[
                "ada-ivf-step",
                "--ref",
                "sharded",
                "--split-threshold",
                "1.5",
                "--merge-threshold",
                "0.3",
                "--shard",
                shard,
                "--of",
                "2",
                "--job-id",
                "job-7",
            ],
            0,
        );
        assert_eq!(r["mode"], "shard");
        assert_eq!(r["manifest"], serde_json::Value::Null);
    }
    let done = json(
        url,
        &[
            "ada-ivf-step",
            "--ref",
            "sharded",
            "--orchestrate",
            "--of",
            "2",
            "--job-id",
            "job-7",
        ],
        0,
    );
    assert_eq!(done["spatial_index"], step["spatial_index"], "{done}");
    assert_eq!(done["records_rewritten"], step["records_rewritten"]);
    // The job's keys are not refs: gc and verify leave them alone, and the
    // shards' buckets are reachable from the orchestrated Manifest.
    json(url, &["gc", "--keep-manifests", "1", "--grace", "0s"], 0);
    assert_eq!(json(url, &["verify"], 0)["bad_objects"], 0);
    let sharded = Dataset::open_at(url, DATASET, Version::Ref("sharded".into()))
        .await
        .unwrap();
    assert_eq!(
        sharded.iter(IterOptions::default()).await.unwrap().len(),
        2000
    );

    // Full retrain and a change of compression.
    let rebuilt = json(url, &["rebuild-ivf", "--cells", "12", "--seed", "3"], 0);
    assert_eq!(rebuilt["k"], 12);
    assert_eq!(rebuilt["records"], 2000);
    let q = json(url, &["publish-rabitq", "--bits", "2"], 0);
    assert_eq!(q["bits_before"], 1);
    assert_eq!(q["bits"], 2);
    let human = run(url, &["ada-ivf-status", "--split-threshold", "2", "--list"]);
    assert_eq!(code(&human), 0);
    assert!(stdout(&human).contains("imbalance"), "{}", stdout(&human));
    let ds = Dataset::open(url, DATASET, OpenOptions::default())
        .await
        .unwrap();
    assert_eq!(
        ds.iter(IterOptions::default().fields(&["label"]))
            .await
            .unwrap()
            .len(),
        2000
    );
}
