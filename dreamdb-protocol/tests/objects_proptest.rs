#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Property tests: random Manifests, Schemas, TombstoneLists and
//! SpatialBuckets encode to bytes that decode to the same value, equal the
//! generic encoder's output, and (for buckets) serve every run by range.

mod objects_samples;

use dreamdb_core::modality::ModalityTag;
use dreamdb_core::time::TimeAnchor;
use dreamdb_core::ContentHash;
use dreamdb_protocol::objects::*;
use dreamdb_protocol::track::TrackRoot;
use objects_samples::round_trip;
use proptest::collection::{btree_map, btree_set};
use proptest::prelude::*;

fn hash() -> impl Strategy<Value = ContentHash> {
    any::<[u8; 32]>().prop_map(ContentHash::from_digest)
}

fn field_name() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,20}"
}

fn metric() -> impl Strategy<Value = Metric> {
    prop_oneof![
        Just(Metric::Cosine),
        Just(Metric::L2),
        Just(Metric::InnerProduct)
    ]
}

fn field_spec() -> impl Strategy<Value = FieldSpec> {
    let index = prop_oneof![
        (1u32..100_000).prop_map(|k| IndexSpec::Ivf { k }),
        (1u32..64, 1u32..=32).prop_map(|(tables, bits)| IndexSpec::Lsh { tables, bits }),
        (1u32..1000, 1u32..1000).prop_map(|(k1, k2)| IndexSpec::Imi { k1, k2 }),
        Just(IndexSpec::Flat),
    ];
    let dtype = prop_oneof![
        Just(ScalarDtype::Categorical),
        Just(ScalarDtype::I64),
        Just(ScalarDtype::F64),
        Just(ScalarDtype::Bool),
        Just(ScalarDtype::String),
        Just(ScalarDtype::Timestamp),
    ];
    let mime = "(image|video|audio|application)/[a-z0-9][a-z0-9.+-]{0,20}";
    prop_oneof![
        (
            1u32..=65_536,
            metric(),
            index,
            proptest::option::of(1u8..=8),
            any::<bool>()
        )
            .prop_map(|(dim, metric, index, bits, rerank)| FieldSpec::Embedding {
                dim,
                metric,
                index,
                compression: bits.map(|bits| Compression::Rabitq { bits }),
                rerank,
            }),
        (mime, 1u64..).prop_map(|(mime, max_bytes)| FieldSpec::Blob { mime, max_bytes }),
        (dtype, any::<bool>()).prop_map(|(dtype, nullable)| FieldSpec::Scalar { dtype, nullable }),
        mime.prop_map(|mime| FieldSpec::Fragment { mime }),
    ]
}

fn schema() -> impl Strategy<Value = Schema> {
    let tag = proptest::option::of("com\\.[a-z]{1,8}\\.[a-z][a-z0-9-]{0,10}");
    btree_map(field_name(), (field_spec(), tag), 0..8).prop_map(|fields| Schema {
        fields: fields
            .into_iter()
            .map(|(name, (spec, tag))| {
                let tag = tag.map(|t| ModalityTag::parse(&t).unwrap());
                (name, SchemaField { spec, tag })
            })
            .collect(),
    })
}

fn track_state() -> impl Strategy<Value = TrackState> {
    (
        hash(),
        1u8..=8,
        1u64..,
        proptest::option::of(hash()),
        proptest::option::of(hash()),
    )
        .prop_map(
            |(page, height, count, spatial_index, compressor)| TrackState {
                root: TrackRoot::Paged {
                    page,
                    height,
                    count,
                    top: None,
                },
                spatial_index,
                compressor,
                stats: None,
                last_anchor: None,
            },
        )
}

fn manifest() -> impl Strategy<Value = Manifest> {
    (
        hash(),
        btree_set(hash(), 0..4).prop_shuffle_vec(),
        1u64..1_000_000,
        "[a-z@.]{1,20}",
        any::<u64>(),
        ".{0,40}",
        hash(),
        btree_map(field_name(), track_state(), 0..5),
        btree_map("dreamdb\\.[a-z][a-z-]{0,12}", hash(), 0..3),
        any::<u64>(),
    )
        .prop_map(
            |(
                genesis,
                parents,
                height,
                writer,
                time,
                message,
                schema,
                tracks,
                registry,
                records,
            )| {
                let height = if parents.is_empty() { 0 } else { height };
                Manifest {
                    genesis,
                    parents,
                    height,
                    writer,
                    time_unix_nanos: time,
                    message,
                    schema,
                    tracks,
                    registry,
                    records,
                }
            },
        )
}

/// Turns a set into a vector in a random order (parent order is
/// meaningful and must survive).
trait ShuffleVec {
    fn prop_shuffle_vec(self) -> BoxedStrategy<Vec<ContentHash>>;
}

impl<S: Strategy<Value = std::collections::BTreeSet<ContentHash>> + 'static> ShuffleVec for S {
    fn prop_shuffle_vec(self) -> BoxedStrategy<Vec<ContentHash>> {
        self.prop_map(|set| set.into_iter().collect::<Vec<_>>())
            .prop_shuffle()
            .boxed()
    }
}

fn tombstones() -> impl Strategy<Value = TombstoneList> {
    (
        btree_set(hash(), 0..3),
        btree_map(any::<u64>(), (".{0,12}", any::<u64>()), 0..40),
    )
        .prop_map(|(parents, entries)| TombstoneList {
            parents: parents.into_iter().collect(),
            entries: entries
                .into_iter()
                .map(|(anchor, (reason, time))| Tombstone {
                    anchor: TimeAnchor::new(anchor),
                    reason,
                    time_unix_nanos: time,
                })
                .collect(),
        })
}

fn bucket() -> impl Strategy<Value = SpatialBucket> {
    (
        hash(),
        proptest::option::of(hash()),
        1u32..=64,
        0u32..4,
        1usize..40,
        btree_map(any::<u64>(), any::<u32>(), 1..300),
        any::<u8>(),
    )
        .prop_map(|(si, compressor, dim, factors, code_len, anchors, cells)| {
            let cells = u32::from(cells) + 1;
            let (factors, code_len) = match compressor {
                Some(_) => (factors, code_len),
                None => (0, 4 * dim as usize),
            };
            let records = anchors.into_iter().map(|(anchor, seed)| {
                (
                    seed % cells,
                    SpatialRecord {
                        anchor: TimeAnchor::new(anchor),
                        factors: (0..factors).map(|f| (seed ^ f) as f32).collect(),
                        code: (0..code_len).map(|b| (seed as usize + b) as u8).collect(),
                    },
                )
            });
            SpatialBucket::build(
                BucketParams {
                    spatial_index: si,
                    compressor,
                    dim,
                    factors,
                },
                records,
            )
            .unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn manifests_round_trip(manifest in manifest()) {
        round_trip(&manifest);
    }

    #[test]
    fn schemas_round_trip(schema in schema()) {
        round_trip(&schema);
    }

    #[test]
    fn tombstone_lists_round_trip_and_union_commutes(a in tombstones(), b in tombstones()) {
        round_trip(&a);
        let ab = TombstoneList::union(&a, &b).unwrap();
        let ba = TombstoneList::union(&b, &a).unwrap();
        prop_assert_eq!(&ab, &ba);
        round_trip(&ab);
        for t in a.entries.iter().chain(&b.entries) {
            prop_assert!(ab.contains(t.anchor));
        }
        prop_assert!(ab.entries.len() <= a.entries.len() + b.entries.len());
    }

    #[test]
    fn buckets_round_trip_and_serve_runs_by_range(bucket in bucket()) {
        let (bytes, hash) = round_trip(&bucket);
        let decoded = SpatialBucket::decode(&hash, &bytes).unwrap();
        let mut total = 0usize;
        for (run, range) in decoded.run_ranges().unwrap() {
            let fetched = &bytes[range.as_usize_range().unwrap()];
            let records = decoded.layout().decode_run(fetched).unwrap();
            prop_assert_eq!(records.len(), run.count as usize);
            for record in &records {
                let index = decoded.record_index(record.anchor()).unwrap();
                prop_assert!(index >= u64::from(run.first));
                prop_assert!(index < u64::from(run.first) + u64::from(run.count));
            }
            total += records.len();
        }
        prop_assert_eq!(total as u64, bucket.count());
    }
}
