#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Generates `dreamdb-conformance/vectors/objects.json` from the objects
//! built here, and checks that the checked-in file is exactly what this
//! code generates (so the vectors never drift from the implementation).
//!
//! Regenerate with:
//! `DREAMDB_WRITE_VECTORS=1 cargo test -p dreamdb-protocol --test objects_vectors`

mod objects_samples;

use std::collections::BTreeMap;
use std::path::PathBuf;

use ciborium::value::Value;
use dreamdb_core::cbor;
use dreamdb_core::time::{TimeAnchor, TimeRange};
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::*;
use dreamdb_protocol::track::TrackRoot;
use objects_samples::*;

/// A summary value: text or unsigned integer.
enum S {
    T(String),
    N(u64),
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Vectors(Vec<String>);

impl Vectors {
    fn valid(&mut self, name: &str, kind: &str, bytes: &[u8], summary: &[(&str, S)]) {
        let summary: Vec<String> = summary
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    S::T(t) => json_string(t),
                    S::N(n) => n.to_string(),
                };
                format!("{}: {v}", json_string(k))
            })
            .collect();
        self.0.push(format!(
            "    {{\n      \"name\": {},\n      \"kind\": {},\n      \"bytes\": \"{}\",\n      \"bytes_hash\": \"{}\",\n      \"valid\": true,\n      \"summary\": {{ {} }}\n    }}",
            json_string(name),
            json_string(kind),
            to_hex(bytes),
            ContentHash::of(bytes).to_hex(),
            summary.join(", ")
        ));
    }

    fn invalid(
        &mut self,
        name: &str,
        kind: &str,
        bytes: &[u8],
        error: &str,
        claimed: Option<ContentHash>,
    ) {
        let claimed = claimed
            .map(|h| format!("      \"claimed_hash\": \"{}\",\n", h.to_hex()))
            .unwrap_or_default();
        self.0.push(format!(
            "    {{\n      \"name\": {},\n      \"kind\": {},\n      \"bytes\": \"{}\",\n      \"bytes_hash\": \"{}\",\n{claimed}      \"valid\": false,\n      \"error\": {}\n    }}",
            json_string(name),
            json_string(kind),
            to_hex(bytes),
            ContentHash::of(bytes).to_hex(),
            json_string(error)
        ));
    }
}

fn enc<T: ObjectKind>(object: &T) -> Vec<u8> {
    object.encode().unwrap().0
}

fn small_schema() -> Schema {
    let mut full = schema();
    full.fields
        .retain(|name, _| name == "clip" || name == "label");
    full
}

fn small_manifest() -> Manifest {
    let mut tracks = BTreeMap::new();
    tracks.insert(
        "clip".to_owned(),
        TrackState {
            root: TrackRoot::stored(h("page"), 1, 2),
            spatial_index: Some(h("si")),
            compressor: None,
            stats: None,
            last_anchor: None,
        },
    );
    Manifest {
        genesis: h("genesis"),
        parents: vec![h("p1")],
        height: 1,
        writer: "alice".to_owned(),
        time_unix_nanos: 1_779_083_475_000_000_000,
        message: "append".to_owned(),
        schema: h("schema"),
        tracks,
        registry: BTreeMap::new(),
        records: 2,
    }
}

fn small_index() -> SpatialIndexObject {
    SpatialIndexObject {
        algorithm: "dreamdb.ivf-cosine".to_owned(),
        metric: Metric::Cosine,
        dim: 2,
        cells: 2,
        params: Value::Map(vec![(
            Value::Text("centroids".into()),
            Value::Bytes(common::f32s_to_le(&[1.0, 0.0, 0.0, 1.0])),
        )]),
        parents: vec![h("si-parent")],
        changed_cells: vec![1],
    }
}

fn small_bucket() -> SpatialBucket {
    let record = |anchor, code: u8| SpatialRecord {
        anchor: TimeAnchor::new(anchor),
        factors: vec![0.5],
        code: vec![code],
    };
    SpatialBucket::build(
        BucketParams {
            spatial_index: h("si"),
            compressor: Some(h("vc")),
            dim: 2,
            factors: 1,
        },
        [
            (1, record(7, 0xaa)),
            (0, record(3, 0x0f)),
            (1, record(5, 0x55)),
        ],
    )
    .unwrap()
}

fn small_storage() -> VectorStorage {
    VectorStorage {
        bucket: h("bucket"),
        dim: 2,
        vectors: common::f32s_to_le(&[1.0, 0.0, 0.0, 1.0]),
    }
}

fn generate() -> String {
    let mut v = Vectors(Vec::new());

    // Valid: one (or two) per kind, with a few decoded fields.
    let g = genesis();
    v.valid(
        "genesis",
        "genesis",
        &enc(&g),
        &[
            ("dataset", S::T(g.dataset.clone())),
            ("created_unix_nanos", S::N(g.created_unix_nanos)),
        ],
    );
    let schema = small_schema();
    v.valid(
        "schema",
        "schema",
        &enc(&schema),
        &[("fields", S::T("clip,label".to_owned()))],
    );
    let m = small_manifest();
    v.valid(
        "manifest",
        "manifest",
        &enc(&m),
        &[
            ("height", S::N(1)),
            ("parents", S::N(1)),
            ("records", S::N(2)),
            ("tracks", S::T("clip".to_owned())),
            ("writer", S::T("alice".to_owned())),
        ],
    );
    let mut with_meta = small_manifest();
    if let Some(track) = with_meta.tracks.get_mut("clip") {
        track.stats = Some(TrackStats::Stored(h("cell-stats")));
        track.last_anchor = Some(1_000_000_001);
    }
    v.valid(
        "manifest-track-stats-and-last-anchor",
        "manifest",
        &enc(&with_meta),
        &[
            ("height", S::N(1)),
            ("records", S::N(2)),
            ("tracks", S::T("clip".to_owned())),
        ],
    );
    // The root page and the cell stats held in the Manifest (design 0006).
    let mut held = small_manifest();
    if let Some(track) = held.tracks.get_mut("clip") {
        track.root = held_root();
        track.stats = Some(TrackStats::Held(CellStats::from_parts(
            &[3, 0, 297],
            &[1, 0, 2],
        )));
        track.last_anchor = Some(1_000_000_001);
    }
    v.valid(
        "manifest-held-root-and-stats",
        "manifest",
        &enc(&held),
        &[
            ("height", S::N(1)),
            ("records", S::N(2)),
            ("tracks", S::T("clip".to_owned())),
        ],
    );
    let first = Manifest {
        parents: vec![],
        height: 0,
        tracks: BTreeMap::new(),
        records: 0,
        ..small_manifest()
    };
    v.valid(
        "manifest-first-commit",
        "manifest",
        &enc(&first),
        &[
            ("height", S::N(0)),
            ("parents", S::N(0)),
            ("tracks", S::T(String::new())),
        ],
    );
    let r = ref_object();
    v.valid(
        "ref",
        "ref",
        &enc(&r),
        &[("manifest", S::T(r.manifest.to_hex()))],
    );
    let si = small_index();
    v.valid(
        "spatial-index",
        "spatial-index",
        &enc(&si),
        &[
            ("algorithm", S::T(si.algorithm.clone())),
            ("cells", S::N(2)),
            ("dim", S::N(2)),
            ("changed_cells", S::N(1)),
        ],
    );
    let vc = compressor();
    v.valid(
        "vector-compressor",
        "vector-compressor",
        &enc(&vc),
        &[
            ("algorithm", S::T(vc.algorithm.clone())),
            ("bits", S::N(1)),
            ("dim", S::N(4)),
            ("seed", S::N(42)),
        ],
    );
    let b = small_bucket();
    v.valid(
        "spatial-bucket",
        "spatial-bucket",
        &enc(&b),
        &[
            ("count", S::N(3)),
            ("runs", S::N(2)),
            ("record_size", S::N(13)),
            ("payload_offset", S::N(b.payload_offset().unwrap())),
            ("anchors_offset", S::N(b.anchors_range().unwrap().offset)),
        ],
    );
    let vs = small_storage();
    v.valid(
        "vector-storage",
        "vector-storage",
        &enc(&vs),
        &[
            ("count", S::N(2)),
            ("dim", S::N(2)),
            ("vectors_offset", S::N(vs.vectors_offset().unwrap())),
        ],
    );
    let sb = scalar_bucket();
    v.valid(
        "scalar-bucket-i64-with-null",
        "scalar-bucket",
        &enc(&sb),
        &[
            ("count", S::N(3)),
            ("dtype", S::T("i64".to_owned())),
            ("nulls", S::N(1)),
        ],
    );
    let tb = text_scalar_bucket();
    v.valid(
        "scalar-bucket-categorical",
        "scalar-bucket",
        &enc(&tb),
        &[
            ("count", S::N(2)),
            ("dtype", S::T("categorical".to_owned())),
            ("nulls", S::N(0)),
        ],
    );
    let bs = blob_segment();
    v.valid(
        "blob-segment",
        "blob-segment",
        &enc(&bs),
        &[
            ("count", S::N(3)),
            ("payload_offset", S::N(bs.payload_offset().unwrap())),
        ],
    );
    let f = fragment();
    v.valid(
        "fragment",
        "fragment",
        &enc(&f),
        &[
            ("start", S::N(0)),
            ("end", S::N(2_000_000_000)),
            ("mime", S::T("video/mp4".to_owned())),
            ("payload_offset", S::N(f.payload_range().unwrap().offset)),
        ],
    );
    let im = item_manifest();
    v.valid(
        "item-manifest",
        "item-manifest",
        &enc(&im),
        &[("chunks", S::N(3)), ("total", S::N(10))],
    );
    let t = tombstones();
    v.valid(
        "tombstones",
        "tombstones",
        &enc(&t),
        &[("entries", S::N(2)), ("parents", S::N(1))],
    );

    // Invalid.
    let rb = enc(&r);
    v.invalid(
        "ref-hash-mismatch",
        "ref",
        &rb,
        "hash-mismatch",
        Some(h("something else")),
    );
    let gb = enc(&g);
    v.invalid(
        "genesis-read-as-manifest",
        "manifest",
        &gb,
        "wrong-kind",
        None,
    );
    let mut long_v = rb[..3].to_vec();
    long_v.extend_from_slice(&[0x18, 0x01]);
    long_v.extend_from_slice(&rb[4..]);
    assert_eq!(&rb[1..4], &[0x61, 0x76, 0x01]);
    v.invalid(
        "ref-v-in-long-head",
        "ref",
        &long_v,
        "non-canonical:shortest-head",
        None,
    );
    let mut reordered = vec![gb[0]];
    for (key, value) in entries(&gb).into_iter().rev() {
        reordered.extend(cbor::encode_value(&key).unwrap());
        reordered.extend(cbor::encode_value(&value).unwrap());
    }
    v.invalid(
        "genesis-keys-reordered",
        "genesis",
        &reordered,
        "non-canonical:map-key-order",
        None,
    );
    // Held stats must obey the cell-stats rules (here: 3 runs for 1 record).
    let mut bad_stats = held.clone();
    if let Some(track) = bad_stats.tracks.get_mut("clip") {
        track.stats = Some(TrackStats::Held(CellStats::from_parts(
            &[1, 0, 297],
            &[3, 0, 2],
        )));
    }
    v.invalid(
        "manifest-held-stats-runs-range",
        "manifest",
        &enc(&bad_stats),
        "shape",
        None,
    );
    let null_compressor = with_entry(&enc(&small_manifest()), "tracks", {
        let mut tracks = entries(&enc(&small_manifest()))
            .into_iter()
            .find(|(k, _)| k.as_text() == Some("tracks"))
            .unwrap()
            .1;
        let clip = &mut tracks.as_map_mut().unwrap()[0].1;
        clip.as_map_mut()
            .unwrap()
            .push((Value::Text("compressor".into()), Value::Null));
        tracks
    });
    v.invalid(
        "manifest-null-instead-of-absent",
        "manifest",
        &null_compressor,
        "non-canonical:object-form",
        None,
    );
    v.invalid(
        "ref-version-2",
        "ref",
        &with_entry(&rb, "v", Value::Integer(2.into())),
        "unknown-version",
        None,
    );
    v.invalid(
        "ref-unknown-field",
        "ref",
        &with_entry(&rb, "branch", Value::Text("main".into())),
        "shape",
        None,
    );
    v.invalid(
        "ref-truncated",
        "ref",
        &rb[..rb.len() - 1],
        "truncated",
        None,
    );
    let mut unsorted = small_bucket();
    unsorted.runs.swap(0, 1);
    v.invalid(
        "spatial-bucket-runs-unsorted",
        "spatial-bucket",
        &encode_generic(&unsorted).unwrap(),
        "invariant",
        None,
    );
    let bad_height = Manifest {
        height: 0,
        ..small_manifest()
    };
    v.invalid(
        "manifest-height-without-parents",
        "manifest",
        &encode_generic(&bad_height).unwrap(),
        "invariant",
        None,
    );
    let mut dup = tombstones();
    dup.entries[1].anchor = dup.entries[0].anchor;
    v.invalid(
        "tombstones-duplicate-anchor",
        "tombstones",
        &encode_generic(&dup).unwrap(),
        "invariant",
        None,
    );
    let mut offsets = blob_segment();
    offsets.payload.pop();
    v.invalid(
        "blob-segment-offsets-past-payload",
        "blob-segment",
        &encode_generic(&offsets).unwrap(),
        "invariant",
        None,
    );
    let empty_range = Fragment {
        range: TimeRange::new(TimeAnchor::new(5), TimeAnchor::new(5)).unwrap(),
        ..fragment()
    };
    v.invalid(
        "fragment-empty-range",
        "fragment",
        &encode_generic(&empty_range).unwrap(),
        "invariant",
        None,
    );

    format!(
        "{{\n  \"kind\": \"objects\",\n  \"spec\": \"spec/0001-data-model.md §5, spec/0007 (segments), spec/0020 §3\",\n  \"description\": \"Object kinds: each valid vector decodes (read by hash) to an object whose summary fields match; each invalid one is refused with the error class given. Read `bytes` as `kind` expecting the name `claimed_hash` if present, else `bytes_hash`.\",\n  \"vectors\": [\n{}\n  ]\n}}\n",
        v.0.join(",\n")
    )
}

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dreamdb-conformance/vectors/objects.json")
}

/// A held root page: two children (300 entries), as in the `internal-page`
/// track vector's shape.
fn held_root() -> TrackRoot {
    use dreamdb_protocol::track::{ChildRef, IndexPage, TrackKey};
    let segment = h("segment");
    TrackRoot::embedded(IndexPage::Internal {
        level: 1,
        children: vec![
            ChildRef {
                first_key: TrackKey::anchor_run(1_000, &segment),
                page: h("leaf-a"),
                count: 4,
            },
            ChildRef {
                first_key: TrackKey::cell_run(10, &segment),
                page: h("leaf-b"),
                count: 296,
            },
        ],
    })
    .unwrap()
}

#[test]
fn checked_in_vectors_match_this_implementation() {
    let generated = generate();
    if std::env::var_os("DREAMDB_WRITE_VECTORS").is_some() {
        std::fs::write(vectors_path(), &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(vectors_path()).expect("objects.json exists");
    assert!(
        on_disk == generated,
        "objects.json differs from what this code generates; regenerate with DREAMDB_WRITE_VECTORS=1"
    );
}
