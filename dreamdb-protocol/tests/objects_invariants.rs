#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Every per-kind rule: breaking it is refused on encode, and bytes that
//! break it (written by the unchecked generic encoder) are refused on
//! decode with class `invariant` and the rule's id.

mod objects_samples;

use std::fmt::Debug;

use ciborium::value::Value;
use dreamdb_core::modality::ModalityTag;
use dreamdb_core::time::{TimeAnchor, TimeRange};
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::*;
use objects_samples::*;

/// `object` breaks `rule`: on encode, and on decode of its bytes.
fn breaks<T: ObjectKind + Debug>(object: T, rule: &str) {
    let e = object.encode().unwrap_err();
    assert_eq!(e.class(), "invariant", "{e}");
    assert_eq!(e.rule(), Some(rule), "{e}");
    assert_eq!(e.hash, None);
    let bytes = encode_generic(&object).unwrap();
    let hash = ContentHash::of(&bytes);
    let e = T::decode(&hash, &bytes).unwrap_err();
    assert_eq!(e.class(), "invariant", "{e}");
    assert_eq!(e.rule(), Some(rule), "{e}");
    assert_eq!(e.hash, Some(hash));
    assert!(e.to_string().contains(rule), "{e}");
}

#[test]
fn genesis_rules() {
    for bad in ["", "a/b", "..", "white space"] {
        breaks(
            Genesis {
                dataset: bad.to_owned(),
                ..genesis()
            },
            "dataset-name",
        );
    }
}

fn with_field(name: &str, spec: FieldSpec) -> Schema {
    let mut schema = schema();
    schema
        .fields
        .insert(name.to_owned(), SchemaField { spec, tag: None });
    schema
}

#[test]
fn schema_rules() {
    let scalar = FieldSpec::Scalar {
        dtype: ScalarDtype::Bool,
        nullable: true,
    };
    for bad in ["", "Upper", "9lives", "has-dash", &"x".repeat(65)] {
        breaks(with_field(bad, scalar.clone()), "field-name");
    }
    assert!(with_field(&"x".repeat(64), scalar.clone()).encode().is_ok());
    assert!(with_field("_private_2", scalar).encode().is_ok());
    let embedding = |dim, index, bits: Option<u8>| FieldSpec::Embedding {
        dim,
        metric: Metric::L2,
        index,
        compression: bits.map(|bits| Compression::Rabitq { bits }),
        rerank: false,
    };
    breaks(
        with_field("e", embedding(0, IndexSpec::Flat, None)),
        "dim-range",
    );
    breaks(
        with_field("e", embedding(65_537, IndexSpec::Flat, None)),
        "dim-range",
    );
    assert!(with_field("e", embedding(65_536, IndexSpec::Flat, None))
        .encode()
        .is_ok());
    breaks(
        with_field("e", embedding(8, IndexSpec::Flat, Some(0))),
        "bits-range",
    );
    breaks(
        with_field("e", embedding(8, IndexSpec::Flat, Some(9))),
        "bits-range",
    );
    breaks(
        with_field("e", embedding(8, IndexSpec::Ivf { k: 0 }, None)),
        "index-params",
    );
    breaks(
        with_field(
            "e",
            embedding(
                8,
                IndexSpec::Lsh {
                    tables: 4,
                    bits: 33,
                },
                None,
            ),
        ),
        "index-params",
    );
    breaks(
        with_field("e", embedding(8, IndexSpec::Imi { k1: 4, k2: 0 }, None)),
        "index-params",
    );
    for bad in ["image", "Image/JPEG", "image/jpeg; q=1", "/x", "a/"] {
        breaks(
            with_field(
                "b",
                FieldSpec::Blob {
                    mime: bad.to_owned(),
                    max_bytes: 1,
                },
            ),
            "mime",
        );
    }
    breaks(
        with_field(
            "b",
            FieldSpec::Blob {
                mime: "image/png".to_owned(),
                max_bytes: 0,
            },
        ),
        "max-bytes",
    );
    breaks(
        with_field(
            "f",
            FieldSpec::Fragment {
                mime: "video".to_owned(),
            },
        ),
        "mime",
    );
}

#[test]
fn schema_user_tags_are_modality_tags() {
    let (bytes, _) = schema().encode().unwrap();
    // A tag that breaks the modality grammar (two segments, not builtin) is
    // refused while reading the field.
    let mut fields = entries(&bytes);
    let (_, value) = fields
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some("fields"))
        .unwrap();
    let clip = value
        .as_map_mut()
        .unwrap()
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some("clip"))
        .unwrap();
    let tag = clip
        .1
        .as_map_mut()
        .unwrap()
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some("tag"))
        .unwrap();
    tag.1 = Value::Tag(65523, Box::new(Value::Text("example.clip".into())));
    assert_eq!(class_of::<Schema>(&encode_entries(fields)), "shape");
    assert!(ModalityTag::parse("example.clip").is_err());
}

#[test]
fn manifest_rules() {
    breaks(
        Manifest {
            parents: vec![h("p"), h("q"), h("p")],
            ..manifest()
        },
        "parents-unique",
    );
    breaks(
        Manifest {
            parents: vec![h("genesis")],
            ..manifest()
        },
        "parents-not-genesis",
    );
    breaks(
        Manifest {
            height: 0,
            ..manifest()
        },
        "height",
    );
    breaks(
        Manifest {
            height: 1,
            ..first_manifest()
        },
        "height",
    );
    breaks(
        Manifest {
            writer: String::new(),
            ..manifest()
        },
        "writer",
    );
    let mut bad_registry = manifest();
    bad_registry
        .registry
        .insert("tombstones".to_owned(), h("x"));
    breaks(bad_registry, "registry-key");
    let mut user_registry = manifest();
    user_registry
        .registry
        .insert("dreamdb.recommendations".to_owned(), h("r"));
    user_registry
        .registry
        .insert("com.example.notes".to_owned(), h("n"));
    round_trip(&user_registry);
    let mut bad_track = manifest();
    let state = bad_track.tracks["clip"].clone();
    bad_track.tracks.insert("Bad Name".to_owned(), state);
    breaks(bad_track, "field-name");
}

#[test]
fn manifest_parent_order_is_kept() {
    let a = manifest();
    let mut b = manifest();
    b.parents.reverse();
    let (bytes_a, hash_a) = round_trip(&a);
    let (bytes_b, hash_b) = round_trip(&b);
    assert_ne!(hash_a, hash_b, "the first parent is ours: order matters");
    assert_eq!(
        Manifest::decode(&hash_a, &bytes_a).unwrap().parents,
        a.parents
    );
    assert_eq!(
        Manifest::decode(&hash_b, &bytes_b).unwrap().parents,
        b.parents
    );
}

#[test]
fn ref_rules() {
    breaks(
        RefObject {
            manifest: h("g"),
            genesis: h("g"),
        },
        "ref-target",
    );
}

#[test]
fn spatial_index_rules() {
    breaks(
        SpatialIndexObject {
            algorithm: "ivf".to_owned(),
            ..spatial_index()
        },
        "algorithm",
    );
    breaks(
        SpatialIndexObject {
            dim: 0,
            ..spatial_index()
        },
        "dim-range",
    );
    breaks(
        SpatialIndexObject {
            cells: 0,
            ..spatial_index()
        },
        "cells-nonzero",
    );
    breaks(
        SpatialIndexObject {
            changed_cells: vec![3, 3],
            ..spatial_index()
        },
        "changed-cells-sorted",
    );
    breaks(
        SpatialIndexObject {
            changed_cells: vec![9, 3],
            ..spatial_index()
        },
        "changed-cells-sorted",
    );
    breaks(
        SpatialIndexObject {
            parents: vec![],
            ..spatial_index()
        },
        "changed-cells-without-parents",
    );
    breaks(
        SpatialIndexObject {
            parents: vec![h("a"), h("a")],
            ..spatial_index()
        },
        "parents-unique",
    );
    let index = spatial_index();
    assert!(index.keeps_cell(4));
    assert!(!index.keeps_cell(9));
}

#[test]
fn compressor_rules() {
    for bits in [0, 9] {
        breaks(
            VectorCompressorObject {
                bits,
                ..compressor()
            },
            "bits-range",
        );
    }
    breaks(
        VectorCompressorObject {
            dim: 65_537,
            ..compressor()
        },
        "dim-range",
    );
    breaks(
        VectorCompressorObject {
            algorithm: "RaBitQ".to_owned(),
            ..compressor()
        },
        "algorithm",
    );
}

#[test]
fn spatial_bucket_rules() {
    let good = spatial_bucket();
    assert_eq!(good.runs.len(), 3);
    let mut unsorted = good.clone();
    unsorted.runs.swap(0, 1);
    breaks(unsorted, "runs-sorted");
    let mut duplicate_cell = good.clone();
    duplicate_cell.runs[1].cell = duplicate_cell.runs[0].cell;
    breaks(duplicate_cell, "runs-sorted");
    let mut gap = good.clone();
    gap.runs[1].first += 1;
    breaks(gap, "runs-contiguous");
    let mut empty_run = good.clone();
    empty_run.runs[2].count = 0;
    breaks(empty_run, "run-count");
    let mut no_runs = good.clone();
    no_runs.runs.clear();
    no_runs.payload.clear();
    breaks(no_runs, "runs-nonempty");
    let mut long = good.clone();
    long.payload.push(0);
    breaks(long, "payload-length");
    let mut huge_count = good.clone();
    huge_count.runs[2].count = u32::MAX;
    breaks(huge_count, "payload-length");
    let mut small_record = good.clone();
    small_record.record_size = 16;
    breaks(small_record, "record-size");
    let mut raw_mismatch = good.clone();
    raw_mismatch.compressor = None;
    breaks(raw_mismatch, "record-size");
    let mut zero_dim = good.clone();
    zero_dim.dim = 0;
    breaks(zero_dim, "dim-range");
    // Anchors: strictly ascending within a run, unique across runs, and
    // the same in the anchor table as in the records.
    let size = good.record_size as usize;
    let set_anchor = |bucket: &mut SpatialBucket, index: usize, anchor: u64| {
        bucket.payload[index * size..index * size + 8].copy_from_slice(&anchor.to_le_bytes());
        bucket.anchors[index * 8..index * 8 + 8].copy_from_slice(&anchor.to_le_bytes());
    };
    let anchor_of = |bucket: &SpatialBucket, index: usize| {
        u64::from_le_bytes(bucket.anchors[index * 8..index * 8 + 8].try_into().unwrap())
    };
    let run = good.runs[0];
    assert!(run.count >= 2);
    let first = run.first as usize;
    let mut descending = good.clone();
    let (a0, a1) = (anchor_of(&good, first), anchor_of(&good, first + 1));
    set_anchor(&mut descending, first, a1);
    set_anchor(&mut descending, first + 1, a0);
    breaks(descending, "anchors-sorted");
    let mut shared = good.clone();
    let other = good.runs[1].first as usize;
    assert_eq!(good.runs[1].count, 2);
    // Below the other run's second anchor, so only uniqueness breaks.
    assert!(a0 < anchor_of(&good, other + 1));
    set_anchor(&mut shared, other, a0);
    breaks(shared, "anchors-unique");
    let mut table = good.clone();
    table.anchors[0] ^= 1;
    breaks(table, "anchors-table");
    let mut short_table = good.clone();
    short_table.anchors.truncate(8);
    breaks(short_table, "anchors-table");
}

#[test]
fn spatial_bucket_build_refuses_mixed_layouts() {
    let params = BucketParams {
        spatial_index: h("si"),
        compressor: Some(h("vc")),
        dim: 4,
        factors: 1,
    };
    let record = |anchor, code_len| SpatialRecord {
        anchor: TimeAnchor::new(anchor),
        factors: vec![1.0],
        code: vec![0; code_len],
    };
    let e = SpatialBucket::build(params, [(0, record(1, 2)), (1, record(2, 3))]).unwrap_err();
    assert_eq!(e.rule(), Some("record-size"));
    let e = SpatialBucket::build(params, [(0, record(1, 2)), (1, record(1, 2))]).unwrap_err();
    assert_eq!(e.rule(), Some("anchors-unique"));
    let e = SpatialBucket::build(params, []).unwrap_err();
    assert_eq!(e.rule(), Some("runs-nonempty"));
}

#[test]
fn vector_storage_rules() {
    let mut odd = vector_storage();
    odd.vectors.pop();
    breaks(odd, "vectors-length");
    let mut empty = vector_storage();
    empty.vectors.clear();
    breaks(empty, "vectors-length");
    breaks(
        VectorStorage {
            dim: 0,
            ..vector_storage()
        },
        "dim-range",
    );
    let storage = vector_storage();
    assert_eq!(storage.count(), 3);
    assert_eq!(storage.vector(2), Some(vec![-0.5, 0.25]));
    assert_eq!(storage.vector(3), None);
}

#[test]
fn scalar_bucket_rules() {
    let mut unsorted = scalar_bucket();
    unsorted.anchors = common::u64s_to_le(&[10, 30, 20]);
    breaks(unsorted, "anchors-sorted");
    let mut ragged = scalar_bucket();
    ragged.anchors.pop();
    breaks(ragged, "anchors-length");
    let mut short = scalar_bucket();
    if let ScalarValues::Bytes(bytes) = &mut short.values {
        bytes.truncate(16);
    }
    breaks(short, "values-length");
    breaks(
        ScalarBucket {
            dtype: ScalarDtype::String,
            ..scalar_bucket()
        },
        "values-type",
    );
    breaks(
        ScalarBucket {
            dtype: ScalarDtype::F64,
            ..text_scalar_bucket()
        },
        "values-type",
    );
    let mut nonzero_null = scalar_bucket();
    nonzero_null.nulls = Some(vec![0b001]);
    breaks(nonzero_null, "null-value");
    let mut empty_bitmap = scalar_bucket();
    empty_bitmap.nulls = Some(vec![0]);
    breaks(empty_bitmap, "nulls");
    let mut padding = scalar_bucket();
    padding.nulls = Some(vec![0b1010]);
    breaks(padding, "nulls");
    let mut long_bitmap = scalar_bucket();
    long_bitmap.nulls = Some(vec![0b010, 0]);
    breaks(long_bitmap, "nulls");
    let bools = ScalarBucket {
        dtype: ScalarDtype::Bool,
        anchors: common::u64s_to_le(&[1, 2]),
        values: ScalarValues::Bytes(vec![1, 2]),
        nulls: None,
    };
    breaks(bools, "bool-value");
    let mut null_text = text_scalar_bucket();
    null_text.nulls = Some(vec![0b01]);
    breaks(null_text, "null-value");
    let bucket = scalar_bucket();
    assert!(bucket.is_null(1));
    assert!(!bucket.is_null(0));
}

#[test]
fn blob_segment_rules() {
    let mut bad_offsets = blob_segment();
    bad_offsets.offsets[8] = 9; // 9 > offset[2] = 3: not monotonic
    breaks(bad_offsets, "offsets");
    let mut first_not_zero = blob_segment();
    first_not_zero.offsets[0] = 1;
    breaks(first_not_zero, "offsets");
    let mut past_end = blob_segment();
    past_end.payload.pop();
    breaks(past_end, "offsets");
    let mut missing = blob_segment();
    missing.offsets.truncate(24);
    breaks(missing, "offsets");
    let mut unsorted = blob_segment();
    unsorted.anchors = common::u64s_to_le(&[10, 10, 15]);
    breaks(unsorted, "anchors-sorted");
    breaks(
        BlobSegment {
            mime: "nope".to_owned(),
            ..blob_segment()
        },
        "mime",
    );
    breaks(BlobSegment::build("image/png", []), "anchors-length");
    let mut short_digests = blob_segment();
    short_digests.digests.truncate(64);
    breaks(short_digests, "digests");
    let mut wrong_digest = blob_segment();
    wrong_digest.digests[40] ^= 1;
    breaks(wrong_digest, "digests");
    let mut wrong_blob = blob_segment();
    wrong_blob.payload[0] ^= 1;
    breaks(wrong_blob, "digests");
}

#[test]
fn fragment_rules() {
    breaks(
        Fragment {
            range: TimeRange::new(TimeAnchor::new(5), TimeAnchor::new(5)).unwrap(),
            ..fragment()
        },
        "range-nonempty",
    );
    breaks(
        Fragment {
            payload: vec![],
            ..fragment()
        },
        "payload-nonempty",
    );
    breaks(
        Fragment {
            mime: String::new(),
            ..fragment()
        },
        "mime",
    );
    // An inverted range cannot even be read.
    let (bytes, _) = fragment().encode().unwrap();
    let inverted = with_entry(
        &bytes,
        "range",
        Value::Tag(
            65525,
            Box::new(Value::Array(vec![
                Value::Integer(9.into()),
                Value::Integer(3.into()),
            ])),
        ),
    );
    assert_eq!(class_of::<Fragment>(&inverted), "shape");
}

#[test]
fn item_manifest_rules() {
    breaks(
        ItemManifest {
            total: 11,
            ..item_manifest()
        },
        "sizes-total",
    );
    let mut zero = item_manifest();
    zero.sizes = common::u64s_to_le(&[4, 0, 6]);
    breaks(zero, "sizes-total");
    let mut overflow = item_manifest();
    overflow.sizes = common::u64s_to_le(&[u64::MAX, 4, 2]);
    breaks(overflow, "sizes-total");
    let mut count = item_manifest();
    count.sizes = common::u64s_to_le(&[4, 6]);
    breaks(count, "sizes-length");
    breaks(
        ItemManifest {
            chunks: vec![],
            sizes: vec![],
            total: 0,
        },
        "chunks-nonempty",
    );
    let item = item_manifest();
    let hits: Vec<u64> = item.chunks_for(3, 9).iter().map(|(_, at)| *at).collect();
    assert_eq!(hits, vec![0, 4, 8]);
    assert_eq!(item.chunks_for(4, 8).len(), 1);
}

#[test]
fn tombstone_rules() {
    let mut unsorted = tombstones();
    unsorted.entries.reverse();
    breaks(unsorted, "entries-sorted");
    let mut duplicate = tombstones();
    duplicate.entries[1].anchor = duplicate.entries[0].anchor;
    breaks(duplicate, "entries-sorted");
    let mut parents = tombstones();
    parents.parents = vec![h("b"), h("a")];
    parents.parents.sort();
    parents.parents.reverse();
    breaks(parents, "parents-sorted");
    let mut repeated = tombstones();
    repeated.parents = vec![h("a"), h("a")];
    breaks(repeated, "parents-unique");
}
