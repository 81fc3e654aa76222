//! Corruption of real segments through the SDK (issue 11, item 4): every
//! spatial bucket (RaBitQ codes), vector storage, blob and scalar segment
//! of a local dataset gets 5 damages on disk (a byte flipped at 25 %, 50 %,
//! 75 % and at the end, truncation to half). A cold session's `get`,
//! `query` (own vector, every cell probed, reranked: the same hits at the
//! same distances as before the damage) and `iter` must each
//! either return exactly the stored data or a typed `integrity` error
//! naming the damaged object — never a panic, never wrong data — and at
//! least one of them must notice. The CLI side (`verify` exits 4 listing
//! every bad object) is in dreamdb-cli/tests/reliability_cli.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod reliability_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dreamdb_dataset::dataset::{CreateOptions, OpenOptions};
use dreamdb_dataset::read::{IterOptions, QueryRequest, Record, Value};
use dreamdb_dataset::{Dataset, DatasetError};
use reliability_support::*;

const ROWS: usize = 40;
const BLOB: usize = 500;
const BATCHES: u64 = 3;
const KINDS: [&str; 4] = [
    "spatial-bucket",
    "vector-storage",
    "blob-segment",
    "scalar-bucket",
];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every stored object file with its `kind`.
fn objects(root: &Path) -> Vec<(PathBuf, String)> {
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
            out.push((path, kind));
        }
    }
    out.sort();
    out
}

/// One way of damaging an object's bytes.
type Damage = Box<dyn Fn(&mut Vec<u8>)>;

/// Whether the record is exactly what its tag says was written.
fn true_record(rec: &Record) -> bool {
    let Some(Value::I64(t)) = rec.fields.get("tag") else {
        return false;
    };
    let (w, i, r) = untag(*t);
    if w != 1 || i >= BATCHES || r >= ROWS as u64 {
        return false;
    }
    let vs = vectors(w, i, ROWS);
    rec.fields.get("image") == Some(&Value::Blob(blob(w, i, r, BLOB)))
        && rec.fields.get("embedding")
            == Some(&Value::Embedding(
                vs[r as usize * DIM..(r as usize + 1) * DIM].to_vec(),
            ))
}

/// How one read of damaged data ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ending {
    /// A typed integrity error naming the object.
    Typed,
    /// The true data.
    True,
    /// Data that is not what was written, without an error.
    Wrong,
}

/// Judges one read: a panic fails the test at once, an error must be
/// `integrity` naming `hash`; Ok is judged by `is_true`.
fn judge<T>(
    result: Result<Result<T, DatasetError>, tokio::task::JoinError>,
    hash: &str,
    what: &str,
    is_true: impl FnOnce(T) -> bool,
) -> Ending {
    match result {
        Err(e) => panic!("{what}: PANIC: {e}"),
        Ok(Ok(value)) => {
            if is_true(value) {
                Ending::True
            } else {
                Ending::Wrong
            }
        }
        Ok(Err(e)) => {
            let text = e.to_string();
            assert_eq!(
                e.kind(),
                "integrity",
                "{what}: not an integrity error: {text}"
            );
            assert!(
                text.contains(hash) || text.contains(&hash[..16]),
                "{what}: the error does not name object {hash}: {text}"
            );
            Ending::Typed
        }
    }
}

async fn damage_every_segment() -> Vec<String> {
    let template = tempfile::tempdir().unwrap();
    let url = template.path().to_str().unwrap().to_owned();
    let ds = Dataset::create(&url, DATASET, schema(), CreateOptions::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for i in 0..BATCHES {
        let r = ds.append_many(batch(1, i, ROWS, BLOB)).await.unwrap();
        acks.push(Ack {
            w: 1,
            i,
            first: r.anchors[0],
        });
    }
    // The undamaged answers: a damaged read must give exactly these (every
    // reranked distance included) or a typed error.
    let request_of = |a: &Ack| {
        let v = vectors(a.w, a.i, ROWS)[..DIM].to_vec();
        // Every record is a hit, so every reranked distance is compared.
        QueryRequest::new("embedding", v, ROWS * BATCHES as usize)
            .nprobe(K as usize)
            .refine_factor(4)
            // No vector field asked for: the rerank's own raw-row reads are
            // all that can notice a damaged vector storage.
            .fields(&["tag"])
    };
    let mut pristine = Vec::new();
    for a in &acks {
        let hits = ds.query(&request_of(a)).await.unwrap().hits;
        pristine.push(
            hits.iter()
                .map(|h| (h.anchor, h.distance.to_bits(), h.fields.clone()))
                .collect::<Vec<_>>(),
        );
    }
    let targets: Vec<(PathBuf, String)> = objects(template.path())
        .into_iter()
        .filter(|(_, k)| KINDS.contains(&k.as_str()))
        .collect();
    for kind in KINDS {
        assert!(
            targets.iter().any(|(_, k)| k == kind),
            "no {kind} object found: {targets:?}"
        );
    }
    let (mut inputs, mut unnoticed) = (0, 0);
    // (op, kind) -> endings
    let mut table: BTreeMap<(&str, String), BTreeMap<Ending, u32>> = BTreeMap::new();
    let mut wrong: Vec<String> = Vec::new();
    for (path, kind) in &targets {
        let rel = path.strip_prefix(template.path()).unwrap().to_owned();
        let hash = path.file_name().unwrap().to_str().unwrap().to_owned();
        let len = std::fs::metadata(path).unwrap().len() as usize;
        let damages: Vec<(String, Damage)> = vec![
            ("flip 25%".into(), Box::new(move |b| b[len / 4] ^= 0x20)),
            ("flip 50%".into(), Box::new(move |b| b[len / 2] ^= 0x01)),
            ("flip 75%".into(), Box::new(move |b| b[3 * len / 4] ^= 0x80)),
            ("flip last".into(), Box::new(move |b| b[len - 1] ^= 0x04)),
            ("truncate".into(), Box::new(move |b| b.truncate(len / 2))),
        ];
        for (name, damage) in &damages {
            inputs += 1;
            let what = format!("{kind} {} {name}", &hash[..12]);
            let dir = tempfile::tempdir().unwrap();
            copy_dir(template.path(), dir.path());
            let target = dir.path().join(&rel);
            let mut bytes = std::fs::read(&target).unwrap();
            damage(&mut bytes);
            std::fs::write(&target, bytes).unwrap();
            let url = dir.path().to_str().unwrap().to_owned();
            let mut endings: Vec<(&str, Ending)> = Vec::new();
            // get, cold, of a few records of every batch.
            for a in &acks {
                for r in [0, ROWS as u64 / 2, ROWS as u64 - 1] {
                    let cold = Dataset::open(&url, DATASET, OpenOptions::default())
                        .await
                        .unwrap();
                    let anchor = a.first + r;
                    let got = tokio::spawn(async move { cold.get(anchor, None).await }).await;
                    let e = judge(got, &hash, &format!("{what}: get"), |rec| {
                        rec.is_some_and(|rec| rec.anchor == anchor && true_record(&rec))
                    });
                    endings.push(("get", e));
                }
            }
            // query of an own vector, cold.
            for (a, expected) in acks.iter().zip(&pristine) {
                let cold = Dataset::open(&url, DATASET, OpenOptions::default())
                    .await
                    .unwrap();
                let want = a.first;
                let request = request_of(a);
                let got = tokio::spawn(async move { cold.query(&request).await }).await;
                let e = judge(got, &hash, &format!("{what}: query"), |res| {
                    res.hits.first().map(|h| h.anchor) == Some(want)
                        && res
                            .hits
                            .iter()
                            .map(|h| (h.anchor, h.distance.to_bits(), h.fields.clone()))
                            .eq(expected.iter().cloned())
                });
                endings.push(("query", e));
            }
            // iter, cold.
            let cold = Dataset::open(&url, DATASET, OpenOptions::default())
                .await
                .unwrap();
            let got = tokio::spawn(async move { cold.iter(IterOptions::default()).await }).await;
            let e = judge(got, &hash, &format!("{what}: iter"), |recs| {
                recs.len() == ROWS * BATCHES as usize && recs.iter().all(true_record)
            });
            endings.push(("iter", e));
            if endings.iter().all(|(_, e)| *e == Ending::True) {
                unnoticed += 1;
            }
            for (op, e) in endings {
                *table
                    .entry((op, kind.clone()))
                    .or_default()
                    .entry(e)
                    .or_default() += 1;
                if e == Ending::Wrong {
                    wrong.push(format!("{what}: {op}"));
                }
            }
        }
    }
    println!(
        "{} segment objects x 5 damages = {inputs} corrupt inputs ({unnoticed} harmless: every read true)",
        targets.len()
    );
    for ((op, kind), endings) in &table {
        println!("  {op:5} {kind:15} {endings:?}");
    }
    wrong.sort();
    wrong.dedup();
    println!("silently wrong: {}", wrong.len());
    for w in &wrong {
        println!("  {w}");
    }
    wrong
}

/// No read panics; every error is a typed integrity error naming the
/// object. (Wrong data without an error is the bug below.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_segments_give_typed_errors_naming_the_object() {
    damage_every_segment().await;
}

/// No read of a damaged segment returns data that is not what was
/// written: blobs are checked against their per-blob digests, raw rows
/// against their run's hash in the track (was a bug: ranged reads of both
/// were unchecked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_segments_never_give_wrong_data() {
    let wrong = damage_every_segment().await;
    assert!(wrong.is_empty(), "silently wrong reads: {wrong:#?}");
}
