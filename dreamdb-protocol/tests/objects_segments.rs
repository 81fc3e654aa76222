#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Segment kinds read by byte range: a run, a blob, a row range or a
//! fragment payload fetched by its absolute range from the encoded bytes
//! is exactly what the decoded object holds there; the fast writers equal
//! the generic canonical encoder; large objects survive corruption checks.

mod objects_samples;

use std::time::Instant;

use dreamdb_core::time::TimeAnchor;
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::*;
use objects_samples::*;

fn slice(bytes: &[u8], range: ByteRange) -> &[u8] {
    &bytes[range.as_usize_range().unwrap()]
}

#[test]
fn a_run_fetched_by_range_decodes_to_exactly_that_cells_records() {
    let bucket = spatial_bucket_sized(500, 37, 9);
    let (bytes, hash) = round_trip(&bucket);
    let decoded = SpatialBucket::decode(&hash, &bytes).unwrap();
    let ranges = decoded.run_ranges().unwrap();
    assert_eq!(ranges.len(), 37);
    let mut seen = 0;
    for (run, range) in ranges {
        assert_eq!(decoded.run_range(&run).unwrap(), range);
        let fetched = slice(&bytes, range);
        assert_eq!(ContentHash::of(fetched), decoded.run_hash(&run));
        // Decoded with the layout alone (no header), as a reader of a
        // track entry would.
        let records = bucket.layout().decode_run(fetched).unwrap();
        let expected: Vec<SpatialRecord> = (0..500u64)
            .filter(|i| (i * 7919) % 37 == u64::from(run.cell))
            .map(|i| SpatialRecord {
                anchor: TimeAnchor::new(1000 + 3 * i),
                factors: vec![i as f32 * 0.5, -1.25],
                code: (0..9).map(|b| (i as usize * 31 + b) as u8).collect(),
            })
            .collect();
        let got: Vec<SpatialRecord> = records.iter().map(|r| r.to_record()).collect();
        assert_eq!(got, expected, "cell {}", run.cell);
        seen += got.len();
    }
    assert_eq!(seen, 500);
    assert_eq!(bucket.count(), 500);
    assert_eq!(bucket.records().count(), 500);
    assert!(bucket.run_of(36).is_some());
    assert!(bucket.run_of(37).is_none());
}

#[test]
fn decode_run_refuses_partial_records_and_unsorted_anchors() {
    let bucket = spatial_bucket();
    let run = bucket.runs[0];
    let bytes = bucket.run_bytes(&run);
    let e = bucket.decode_run(&bytes[..bytes.len() - 1]).unwrap_err();
    assert_eq!(e.rule(), Some("run-length"));
    let size = bucket.record_size as usize;
    let mut swapped = bytes[size..2 * size].to_vec();
    swapped.extend_from_slice(&bytes[..size]);
    let e = bucket.decode_run(&swapped).unwrap_err();
    assert_eq!(e.rule(), Some("anchors-sorted"));
    let impossible = RecordLayout {
        factors: 4,
        record_size: 24,
    };
    assert_eq!(
        impossible.decode_run(&[0; 24]).unwrap_err().rule(),
        Some("record-size")
    );
}

#[test]
fn the_fast_writer_equals_the_generic_encoder_for_large_payloads() {
    // ~4 MiB of payload: 40,000 records of 8 + 8 + 96 bytes in 1,000 cells.
    let bucket = spatial_bucket_sized(40_000, 1_000, 96);
    assert!(bucket.payload.len() > 4_000_000);
    let started = Instant::now();
    let (fast, _) = bucket.encode().unwrap();
    let fast_time = started.elapsed();
    let generic = encode_generic(&bucket).unwrap();
    assert_eq!(fast, generic);
    // The payload is written once, at its absolute offset.
    let offset = bucket.payload_offset().unwrap() as usize;
    assert_eq!(
        &fast[offset..offset + bucket.payload.len()],
        &bucket.payload[..]
    );
    assert!(offset + bucket.payload.len() < fast.len());
    println!("fast encode of {} bytes: {fast_time:?}", fast.len());

    let storage = VectorStorage {
        bucket: ContentHash::of(&fast),
        dim: 768,
        vectors: common::f32s_to_le(&vec![0.25f32; 768 * 1000]),
    };
    assert_eq!(
        storage.encode().unwrap().0,
        encode_generic(&storage).unwrap()
    );
}

#[test]
fn a_large_bucket_rejects_corruption_anywhere_sampled() {
    let bucket = spatial_bucket_sized(4_000, 300, 32);
    let (bytes, _) = bucket.encode().unwrap();
    let header_end = bucket.payload_offset().unwrap() as usize;
    let step = (bytes.len() / 100).max(1);
    // Every byte of the map head and first keys, then a sample of the
    // header and of the payload, and the last byte.
    let positions: Vec<usize> = (0..64)
        .chain((64..header_end).step_by(37))
        .chain((header_end..bytes.len()).step_by(step))
        .chain([bytes.len() - 1])
        .collect();
    let flips = flips_are_caught(&bucket, positions);
    assert!(flips > 500, "{flips}");
}

#[test]
fn vector_storage_rows_follow_the_bucket_runs() {
    let bucket = spatial_bucket_sized(50, 5, 4);
    let (bucket_bytes, bucket_hash) = bucket.encode().unwrap();
    let dim = 3u32;
    let mut vectors = Vec::new();
    for (_, record) in bucket.records() {
        let a = record.anchor().as_nanos() as f32;
        vectors.extend_from_slice(&[a, a + 0.5, -a]);
    }
    let storage = VectorStorage {
        bucket: bucket_hash,
        dim,
        vectors: common::f32s_to_le(&vectors),
    };
    let (bytes, _) = round_trip(&storage);
    for run in &bucket.runs {
        let range = storage
            .rows_range(u64::from(run.first), u64::from(run.count))
            .unwrap();
        let rows = slice(&bytes, range);
        let records = bucket
            .decode_run(slice(&bucket_bytes, bucket.run_range(run).unwrap()))
            .unwrap();
        assert_eq!(rows.len(), records.len() * 12);
        for (row, record) in rows.chunks_exact(12).zip(&records) {
            let first = f32::from_le_bytes(row[..4].try_into().unwrap());
            assert_eq!(first, record.anchor().as_nanos() as f32);
        }
    }
}

#[test]
fn blob_ranges_point_at_each_blob() {
    let segment = blob_segment();
    let (bytes, _) = round_trip(&segment);
    let expected: [&[u8]; 3] = [b"abc", b"", b"hello"];
    for (i, blob) in expected.iter().enumerate() {
        let range = segment.blob_range(i).unwrap().unwrap();
        assert_eq!(slice(&bytes, range), *blob);
        assert_eq!(segment.blob(i).unwrap(), *blob);
    }
    assert_eq!(segment.anchor(2), Some(15));
    assert_eq!(segment.blob_range(3).unwrap(), None);
    assert_eq!(segment.count(), 3);
}

#[test]
fn fragment_payload_range() {
    let fragment = fragment();
    let (bytes, _) = round_trip(&fragment);
    let range = fragment.payload_range().unwrap();
    assert_eq!(slice(&bytes, range), &fragment.payload[..]);
}

#[test]
fn tombstone_union_is_a_commutative_set_union() {
    let a = tombstones();
    let mut b = TombstoneList {
        parents: vec![],
        entries: vec![
            Tombstone {
                anchor: TimeAnchor::new(5),
                reason: "dup".to_owned(),
                time_unix_nanos: 50,
            },
            Tombstone {
                anchor: TimeAnchor::new(7),
                reason: "bad row".to_owned(),
                time_unix_nanos: 60,
            },
        ],
    };
    let ab = TombstoneList::union(&a, &b).unwrap();
    let ba = TombstoneList::union(&b, &a).unwrap();
    assert_eq!(ab, ba);
    assert_eq!(ab.encode().unwrap(), ba.encode().unwrap());
    let anchors: Vec<u64> = ab.entries.iter().map(|t| t.anchor.as_nanos()).collect();
    assert_eq!(anchors, vec![5, 7, 9]);
    assert_eq!(ab.entries[0].reason, "dup", "the earlier deletion is kept");
    let mut parents = vec![a.encode().unwrap().1, b.encode().unwrap().1];
    parents.sort();
    assert_eq!(ab.parents, parents);
    round_trip(&ab);
    for anchor in [5, 7, 9] {
        assert!(ab.contains(TimeAnchor::new(anchor)));
    }
    assert!(!ab.contains(TimeAnchor::new(6)));
    assert_eq!(TombstoneList::union(&a, &a).unwrap(), a);
    b.entries.clear();
    assert_eq!(TombstoneList::union(&a, &b).unwrap().entries, a.entries);
}

#[test]
fn anchor_tables_are_addressable_by_range() {
    let bucket = spatial_bucket_sized(200, 11, 5);
    let (bytes, _) = round_trip(&bucket);
    assert_eq!(
        slice(&bytes, bucket.anchors_range().unwrap()),
        &bucket.anchors[..]
    );
    let index = bucket.record_index(TimeAnchor::new(1000 + 3 * 17)).unwrap();
    let record = slice(&bytes, bucket.record_range(index).unwrap().unwrap());
    let view = bucket.layout().decode_run(record).unwrap();
    assert_eq!(view[0].anchor(), TimeAnchor::new(1000 + 3 * 17));
    assert_eq!(bucket.record_index(TimeAnchor::new(1)), None);
    assert_eq!(bucket.record_range(200).unwrap(), None);

    let scalars = scalar_bucket();
    let (bytes, _) = round_trip(&scalars);
    assert_eq!(
        slice(&bytes, scalars.anchors_range().unwrap()),
        &scalars.anchors[..]
    );
    let texts = text_scalar_bucket();
    let (bytes, _) = round_trip(&texts);
    assert_eq!(
        slice(&bytes, texts.anchors_range().unwrap()),
        &texts.anchors[..]
    );

    let blobs = blob_segment();
    let (bytes, _) = round_trip(&blobs);
    assert_eq!(
        slice(&bytes, blobs.anchors_range().unwrap()),
        &blobs.anchors[..]
    );
    assert_eq!(
        slice(&bytes, blobs.offsets_range().unwrap()),
        &blobs.offsets[..]
    );
}

#[test]
fn vector_storage_encoded_from_rows_is_the_objects_encoding() {
    let dim = 5u32;
    let values: Vec<f32> = (0..7 * dim).map(|i| i as f32 * 0.75 - 3.0).collect();
    let order = [4usize, 0, 6, 2, 2, 5];
    let bucket = ContentHash::of(b"bucket");
    let encoded = VectorStorage::encode_rows(bucket, dim, &values, &order).unwrap();
    let mut vectors = Vec::new();
    for &i in &order {
        vectors.extend_from_slice(&values[i * dim as usize..(i + 1) * dim as usize]);
    }
    let storage = VectorStorage {
        bucket,
        dim,
        vectors: common::f32s_to_le(&vectors),
    };
    let (bytes, hash) = storage.encode().unwrap();
    assert_eq!(encoded.bytes, bytes);
    assert_eq!(encoded.hash, hash);
    assert_eq!(encoded.vectors_offset, storage.vectors_offset().unwrap());
    for (first, count) in [(0, 6), (1, 2), (5, 1)] {
        assert_eq!(
            encoded.rows_range(first, count),
            storage.rows_range(first, count).unwrap()
        );
        assert_eq!(
            encoded.rows_hash(first, count),
            storage.rows_hash(first, count)
        );
    }
    assert_eq!(encoded.rows_hash(5, 2), None);
    // A row outside `values`, or no rows, is refused.
    assert!(VectorStorage::encode_rows(bucket, dim, &values, &[7]).is_err());
    assert!(VectorStorage::encode_rows(bucket, dim, &values, &[]).is_err());
    assert!(VectorStorage::encode_rows(bucket, 0, &values, &[0]).is_err());
}
