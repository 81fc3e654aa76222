//! Shared pieces of the SDK reliability tests (`reliability_*.rs`):
//! a batch model whose every record says which writer and which batch
//! wrote it (an `i64` tag, a blob, an embedding of its own), the
//! exactly-once check (`check_batches`: every acknowledged batch present
//! once with the anchors it was given, found by `get`, `iter` and a query
//! of its own vector; no batch half-visible), `verify_clean`
//! (`dreamdb_protocol::maintenance::verify`), the child-process plumbing
//! (the test binary re-run as a writer, acknowledging appends in an
//! fsync'd file), a seeded PRNG and `rss_kib()`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::type_complexity
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dreamdb_connector::Connector;
use dreamdb_core::random::DeterministicStream;
use dreamdb_dataset::batch::{Batch, ScalarColumn};
use dreamdb_dataset::read::{IterOptions, QueryRequest, Value};
use dreamdb_dataset::schema::{EmbeddingField, Metric, ScalarType, SchemaBuilder};
use dreamdb_dataset::Dataset;
use dreamdb_protocol::maintenance::{verify, VerifyOptions, VerifyReport};
use dreamdb_protocol::objects::Schema;

/// Embedding dimension.
pub const DIM: usize = 16;
/// IVF cells.
pub const K: u32 = 8;
/// Dataset name used by every reliability test.
pub const DATASET: &str = "rel";

/// 16-d cosine IVF(8) with 1-bit RaBitQ codes and raw vectors (rerank),
/// a blob, and the `tag` scalar naming writer, batch and row.
pub fn schema() -> Schema {
    SchemaBuilder::new()
        .embedding(
            "embedding",
            EmbeddingField::new(DIM as u32)
                .metric(Metric::Cosine)
                .ivf(K)
                .rabitq(1)
                .rerank(true),
        )
        .blob("image", "image/x-test", 4096)
        .scalar("tag", ScalarType::I64)
        .build()
        .unwrap()
}

/// The tag of row `r` of batch `i` of writer `w`.
pub fn tag(w: u64, i: u64, r: u64) -> i64 {
    (w * 1_000_000 + i * 1_000 + r) as i64
}

/// `(w, i, r)` of a tag.
pub fn untag(t: i64) -> (u64, u64, u64) {
    let t = t as u64;
    (t / 1_000_000, (t / 1_000) % 1_000, t % 1_000)
}

/// The blob of row `r` of batch `(w, i)`: `blob_len` bytes, distinct per row.
pub fn blob(w: u64, i: u64, r: u64, blob_len: usize) -> Bytes {
    let head = format!("blob-{w}-{i}-{r}-");
    let mut b = head.into_bytes();
    let fill = (w * 31 + i * 7 + r) as u8;
    b.resize(blob_len.max(b.len()), fill);
    Bytes::from(b)
}

/// The vectors of batch `(w, i)`: 8 clusters shared by every batch, each
/// row its own point near one of them.
pub fn vectors(w: u64, i: u64, rows: usize) -> Vec<f32> {
    let mut centres = DeterministicStream::from_seed(7, "dreamdb.rel.centres");
    let centre: Vec<f32> = (0..K as usize * DIM)
        .map(|_| centres.next_f32_normal())
        .collect();
    let mut noise = DeterministicStream::from_seed(w * 100_003 + i, "dreamdb.rel.noise");
    let mut out = Vec::with_capacity(rows * DIM);
    for r in 0..rows {
        let c = (r + w as usize) % K as usize;
        for d in 0..DIM {
            out.push(centre[c * DIM + d] + 0.2 * noise.next_f32_normal());
        }
    }
    out
}

/// Batch `(w, i)` of `rows` records with blobs of `blob_len` bytes.
pub fn batch(w: u64, i: u64, rows: usize, blob_len: usize) -> Batch {
    Batch::new(rows)
        .embeddings("embedding", DIM as u32, vectors(w, i, rows))
        .blobs(
            "image",
            (0..rows as u64).map(|r| blob(w, i, r, blob_len)).collect(),
        )
        .scalars(
            "tag",
            ScalarColumn::I64((0..rows as u64).map(|r| Some(tag(w, i, r))).collect()),
        )
}

/// An acknowledged append: writer, batch, first anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ack {
    pub w: u64,
    pub i: u64,
    pub first: u64,
}

/// Appends batches `from..to` of writer `w` through `ds`, one commit
/// each (`rows` records, blobs of `blob_len` bytes); their acks.
pub async fn append_batches(
    ds: &Dataset,
    w: u64,
    (from, to): (u64, u64),
    rows: usize,
    blob_len: usize,
) -> Vec<Ack> {
    let mut acks = Vec::new();
    for i in from..to {
        let r = ds.append_many(batch(w, i, rows, blob_len)).await.unwrap();
        acks.push(Ack {
            w,
            i,
            first: r.anchors[0],
        });
    }
    acks
}

/// The line a writer writes (fsync'd) after `append_many` returned Ok.
pub fn ack_line(w: u64, i: u64, first: u64) -> String {
    format!("ACK {w} {i} {first}")
}

/// The line a writer writes after `append_many` returned an error.
pub fn fail_line(w: u64, i: u64, kind: &str) -> String {
    format!("FAIL {w} {i} {kind}")
}

/// Parses ACK lines (a torn last line is ignored).
pub fn parse_acks(text: &str) -> Vec<Ack> {
    text.lines()
        .filter_map(|l| {
            let mut p = l.trim().strip_prefix("ACK ")?.split_whitespace();
            Some(Ack {
                w: p.next()?.parse().ok()?,
                i: p.next()?.parse().ok()?,
                first: p.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Parses FAIL lines: `(w, i, kind)`.
pub fn parse_fails(text: &str) -> Vec<(u64, u64, String)> {
    text.lines()
        .filter_map(|l| {
            let mut p = l.trim().strip_prefix("FAIL ")?.split_whitespace();
            Some((
                p.next()?.parse().ok()?,
                p.next()?.parse().ok()?,
                p.next()?.to_owned(),
            ))
        })
        .collect()
}

/// Appends `line` to `path` and fsyncs it.
pub fn append_synced(path: &Path, line: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(format!("{line}\n").as_bytes()).unwrap();
    f.sync_all().unwrap();
}

/// What [`check_batches`] found.
#[derive(Debug, Default)]
pub struct Found {
    /// Records read by `iter`.
    pub records: u64,
    /// Batches fully present: `(w, i)` → first anchor.
    pub batches: BTreeMap<(u64, u64), u64>,
    /// Queries run (own vector found first every time).
    pub queries: u64,
}

/// The exactly-once check. `acks`: appends reported done (each must be
/// present exactly once, at the anchors it was given). `rows_of(w, i)`:
/// how many rows batch `(w, i)` had. Every record read must belong to a
/// batch that is wholly present (never half-visible), have the blob and
/// vector its tag says, and appear once. `queries_per_batch` rows of each
/// acknowledged batch are looked up by `get` and by a query of their own
/// vector (which must return that record first).
pub async fn check_batches(
    ds: &Dataset,
    acks: &[Ack],
    rows_of: &dyn Fn(u64, u64) -> usize,
    blob_len_of: &dyn Fn(u64, u64) -> usize,
    queries_per_batch: usize,
) -> Found {
    let records = ds.iter(IterOptions::default()).await.unwrap();
    let mut by_batch: BTreeMap<(u64, u64), Vec<(u64, u64)>> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for rec in &records {
        assert!(anchors.insert(rec.anchor), "anchor {} twice", rec.anchor);
        let Some(Value::I64(t)) = rec.fields.get("tag") else {
            panic!(
                "record {} has no tag: {:?}",
                rec.anchor,
                rec.fields.get("tag")
            );
        };
        let (w, i, r) = untag(*t);
        let Some(Value::Blob(b)) = rec.fields.get("image") else {
            panic!("record {} has no blob", rec.anchor);
        };
        assert_eq!(
            b,
            &blob(w, i, r, blob_len_of(w, i)),
            "record {} ({w},{i},{r}): wrong blob",
            rec.anchor
        );
        let Some(Value::Embedding(v)) = rec.fields.get("embedding") else {
            panic!("record {} has no embedding", rec.anchor);
        };
        let want = vectors(w, i, rows_of(w, i));
        assert_eq!(
            v.as_slice(),
            &want[r as usize * DIM..(r as usize + 1) * DIM],
            "record {} ({w},{i},{r}): wrong vector",
            rec.anchor
        );
        by_batch.entry((w, i)).or_default().push((r, rec.anchor));
    }
    let mut found = Found {
        records: records.len() as u64,
        ..Found::default()
    };
    for ((w, i), rows) in &mut by_batch {
        rows.sort_unstable();
        let n = rows_of(*w, *i);
        let want: Vec<u64> = (0..n as u64).collect();
        let got: Vec<u64> = rows.iter().map(|(r, _)| *r).collect();
        assert_eq!(got, want, "batch ({w},{i}) half-visible or duplicated");
        // One append: consecutive anchors in row order.
        let first = rows[0].1;
        for (k, (_, a)) in rows.iter().enumerate() {
            assert_eq!(
                *a,
                first + k as u64,
                "batch ({w},{i}) anchors not contiguous"
            );
        }
        found.batches.insert((*w, *i), first);
    }
    for ack in acks {
        let Some(first) = found.batches.get(&(ack.w, ack.i)) else {
            panic!("acknowledged batch ({},{}) is missing", ack.w, ack.i);
        };
        assert_eq!(
            *first, ack.first,
            "batch ({},{}) is not at the anchors its append returned",
            ack.w, ack.i
        );
        found.queries += probe(ds, ack, rows_of(ack.w, ack.i), queries_per_batch).await;
    }
    found
}

/// Looks `n` rows of an acknowledged batch up by `get` and by a query of
/// their own vector (which must return that record first); returns `n`.
pub async fn probe(ds: &Dataset, ack: &Ack, rows: usize, n: usize) -> u64 {
    let vs = vectors(ack.w, ack.i, rows);
    let n = n.min(rows);
    for q in 0..n {
        let r = (q * rows / n).min(rows - 1) as u64;
        let anchor = ack.first + r;
        let rec = ds.get(anchor, None).await.unwrap().unwrap_or_else(|| {
            panic!("get({anchor}) of batch ({},{}) found nothing", ack.w, ack.i)
        });
        assert_eq!(
            rec.fields.get("tag"),
            Some(&Value::I64(tag(ack.w, ack.i, r)))
        );
        let v = vs[r as usize * DIM..(r as usize + 1) * DIM].to_vec();
        let request = QueryRequest::new("embedding", v, 1)
            .nprobe(K as usize)
            .refine_factor(64);
        let hits = ds.query(&request).await.unwrap().hits;
        assert_eq!(
            hits.first().map(|h| h.anchor),
            Some(anchor),
            "query of ({},{},{r})'s own vector",
            ack.w,
            ack.i
        );
    }
    n as u64
}

/// Runs `verify` over the whole backend and asserts it is clean.
pub async fn verify_clean(connector: Arc<dyn Connector>) -> VerifyReport {
    let report = verify(connector, &VerifyOptions::default()).await.unwrap();
    assert!(report.is_clean(), "verify found damage: {report:#?}");
    report
}

// ----- child processes -----

/// Env var naming a child's role; the child test returns at once without it.
pub const ROLE: &str = "DREAMDB_REL_ROLE";
/// Env var: the backend URL a child works on.
pub const URL: &str = "DREAMDB_REL_URL";
/// Env var: the child's writer id.
pub const CHILD_ID: &str = "DREAMDB_REL_CHILD";
/// Env var: the file a child acknowledges appends in.
pub const ACKS: &str = "DREAMDB_REL_ACKS";
/// Env var: a file whose existence starts the children.
pub const GO: &str = "DREAMDB_REL_GO";
/// Env var: the branch a child writes to.
pub const BRANCH: &str = "DREAMDB_REL_BRANCH";

/// Re-runs this test binary as a child running test `test` only.
pub fn spawn_child(test: &str, envs: &[(&str, String)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits for a child and asserts it succeeded; returns its stdout.
pub fn wait_ok(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Waits until `path` exists.
pub fn wait_for_file(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The role of this process, if it is a child.
pub fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// An env var as a string (children only).
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

// ----- misc -----

/// A small seeded PRNG (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// `DREAMDB_SEED` or `default`, printed.
pub fn seed(default: u64) -> u64 {
    let s = std::env::var("DREAMDB_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    println!("seed {s} (DREAMDB_SEED)");
    s
}

/// An integer env var or `default`.
pub fn env_u64(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident set size of this process in KiB (Linux; 0 elsewhere).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The S3 test server's URL under a fresh prefix; FAILS without it.
pub fn s3_url(tag: &str) -> String {
    let Ok(url) = std::env::var("DREAMDB_TEST_S3_URL") else {
        panic!(
            "DREAMDB_TEST_S3_URL is not set: this test needs the S3-compatible test server. \
             Run it through ./scripts/test, or start it by hand: \
             `scripts/s3-server start && eval \"$(scripts/s3-server env)\"`"
        );
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}/rel-{tag}-{nanos}", url.trim_end_matches('/'))
}

/// A multi-thread runtime for a child's body.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
