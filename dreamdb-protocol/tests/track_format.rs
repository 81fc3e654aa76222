//! Byte formats of the track index: keys, values, pages and roots encode
//! canonically, decode strictly, and their sizes are what the splitter
//! assumes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod track_support;

use ciborium::value::Value;
use dreamdb_core::cbor;
use dreamdb_core::ContentHash;
use dreamdb_protocol::store::links;
use dreamdb_protocol::track::{
    inline_len, ChildRef, IndexPage, PageProblem, TrackKey, TrackRoot, TrackValue,
};
use track_support::{anchor_entry, cell_entry, seg};

fn sample_leaf() -> IndexPage {
    let mut entries = vec![
        anchor_entry(0, 1, 0),
        anchor_entry(5000, 2, 3),
        anchor_entry(u64::MAX - 2000, 3, 1),
        cell_entry(0, 1, 0),
        cell_entry(7, 2, 300),
        cell_entry(u32::MAX, 3, 70000),
    ];
    entries.sort_by_key(|e| e.0);
    IndexPage::Leaf { entries }
}

fn sample_internal() -> IndexPage {
    IndexPage::Internal {
        level: 1,
        children: vec![
            ChildRef {
                first_key: anchor_entry(0, 1, 0).0,
                page: ContentHash::of(b"left"),
                count: 3,
            },
            ChildRef {
                first_key: cell_entry(7, 2, 0).0,
                page: ContentHash::of(b"right"),
                count: 70_000,
            },
        ],
    }
}

#[test]
fn direct_page_encoding_is_the_canonical_encoding() {
    for page in [sample_leaf(), sample_internal()] {
        let direct = page.encode();
        let generic = cbor::encode_value(&page.to_value()).unwrap();
        assert_eq!(direct, generic);
        cbor::check_canonical(&direct).unwrap();
        assert_eq!(IndexPage::decode(&direct).unwrap(), page);
    }
}

#[test]
fn encoded_sizes_match() {
    let IndexPage::Leaf { entries } = sample_leaf() else {
        unreachable!()
    };
    let inline = TrackRoot::Inline {
        entries: entries.clone(),
    };
    let Value::Map(fields) = inline.to_value() else {
        unreachable!()
    };
    let list = cbor::encode_value(&fields[0].1).unwrap();
    assert_eq!(list.len(), inline_len(&entries));
    // The smallest entry the splitter assumes (97 bytes) is a real lower
    // bound: an anchor run with every integer small.
    let s = seg(9);
    let tiny = vec![(
        TrackKey::anchor_run(0, &s),
        TrackValue::AnchorRun {
            segment: s,
            last_anchor: 0,
            count: 0,
            table_offset: 0,
            table_len: 0,
            storage: None,
        },
    )];
    assert_eq!(inline_len(&tiny), 1 + 97);
}

#[test]
fn values_and_roots_round_trip_through_serde() {
    for (_, v) in [anchor_entry(3, 4, 5), cell_entry(3, 4, 5)] {
        let bytes = cbor::to_vec(&v).unwrap();
        assert_eq!(bytes, cbor::encode_value(&v.to_value()).unwrap());
        assert_eq!(cbor::from_slice::<TrackValue>(&bytes).unwrap(), v);
        // The segment (and run hash) are links.
        assert!(links(&cbor::decode_value(&bytes).unwrap()).contains(v.segment()));
    }
    let IndexPage::Leaf { entries } = sample_leaf() else {
        unreachable!()
    };
    for root in [
        TrackRoot::empty(),
        TrackRoot::Inline { entries },
        TrackRoot::stored(ContentHash::of(b"root"), 3, 1_000_000),
    ] {
        let bytes = cbor::to_vec(&root).unwrap();
        assert_eq!(cbor::from_slice::<TrackRoot>(&bytes).unwrap(), root);
    }
    let bad = TrackRoot::stored(ContentHash::of(b"root"), 17, 1);
    let bytes = cbor::to_vec(&bad).unwrap();
    assert!(cbor::from_slice::<TrackRoot>(&bytes).is_err());
}

#[test]
fn links_of_a_page_are_its_children_or_segments() {
    let page = sample_internal();
    let value = cbor::decode_value(&page.encode()).unwrap();
    assert_eq!(
        links(&value),
        vec![ContentHash::of(b"left"), ContentHash::of(b"right")]
    );
    let leaf = cbor::decode_value(&sample_leaf().encode()).unwrap();
    let found = links(&leaf);
    for s in [seg(1), seg(2), seg(3)] {
        assert!(found.contains(&s));
    }
}

fn problem_of(value: Value) -> PageProblem {
    let bytes = cbor::encode_value(&value).unwrap();
    IndexPage::decode(&bytes).unwrap_err()
}

fn with_field(page: &IndexPage, name: &str, new: Value) -> Value {
    let Value::Map(mut fields) = page.to_value() else {
        unreachable!()
    };
    for (k, v) in &mut fields {
        if *k == Value::Text(name.into()) {
            *v = new.clone();
        }
    }
    Value::Map(fields)
}

#[test]
fn strict_decoding_names_the_problem() {
    let leaf = sample_leaf();
    let IndexPage::Leaf { entries } = &leaf else {
        unreachable!()
    };
    // Unsorted keys.
    let mut swapped = entries.clone();
    swapped.swap(0, 1);
    let p = problem_of(IndexPage::Leaf { entries: swapped }.to_value());
    assert_eq!(p, PageProblem::UnsortedKeys { index: 1 });
    // Duplicate keys.
    let mut dup = entries.clone();
    dup[1] = dup[0];
    assert_eq!(
        problem_of(IndexPage::Leaf { entries: dup }.to_value()).class(),
        "unsorted-keys"
    );
    // Level beyond the limit.
    let deep = IndexPage::Internal {
        level: 1,
        children: vec![],
    };
    let p = problem_of(with_field(&deep, "level", Value::Integer(16.into())));
    assert_eq!(p.class(), "too-deep");
    // Empty page.
    assert_eq!(
        problem_of(IndexPage::Leaf { entries: vec![] }.to_value()),
        PageProblem::Empty
    );
    // Wrong kind, wrong version.
    assert_eq!(
        problem_of(with_field(&leaf, "kind", Value::Text("manifest".into()))).class(),
        "shape"
    );
    assert_eq!(
        problem_of(with_field(&leaf, "v", Value::Integer(2.into()))),
        PageProblem::UnsupportedVersion(2)
    );
    // A leaf-level page with children.
    let p = problem_of(with_field(
        &sample_internal(),
        "level",
        Value::Integer(0.into()),
    ));
    assert_eq!(p.class(), "shape");
    // A value whose segment is not the key's.
    let (k, _) = anchor_entry(1, 1, 0);
    let (_, v) = anchor_entry(1, 2, 0);
    let p = problem_of(
        IndexPage::Leaf {
            entries: vec![(k, v)],
        }
        .to_value(),
    );
    assert_eq!(p.class(), "invalid-item");
    // A child with count 0.
    let IndexPage::Internal { children, .. } = sample_internal() else {
        unreachable!()
    };
    let mut zero = children.clone();
    zero[0].count = 0;
    let p = problem_of(
        IndexPage::Internal {
            level: 1,
            children: zero,
        }
        .to_value(),
    );
    assert_eq!(p.class(), "invalid-item");
    // Non-canonical bytes: the same page with its map keys out of order.
    let Value::Map(mut fields) = leaf.to_value() else {
        unreachable!()
    };
    fields.reverse();
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(&Value::Map(fields), &mut bytes).unwrap();
    assert_eq!(
        IndexPage::decode(&bytes).unwrap_err().class(),
        "cbor:non-canonical:map-key-order"
    );
}

#[test]
fn roots_nest_inside_other_objects() {
    // The Manifest holds roots as struct fields; the strict decoder must
    // accept them there too and re-encode them identically.
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Holder {
        name: String,
        root: TrackRoot,
        value: TrackValue,
    }
    let IndexPage::Leaf { entries } = sample_leaf() else {
        unreachable!()
    };
    for root in [
        TrackRoot::Inline {
            entries: entries.clone(),
        },
        TrackRoot::stored(ContentHash::of(b"p"), 2, 9),
    ] {
        let holder = Holder {
            name: "embedding".into(),
            root,
            value: entries[0].1,
        };
        let bytes = cbor::to_vec(&holder).unwrap();
        assert_eq!(cbor::from_slice::<Holder>(&bytes).unwrap(), holder);
    }
}

/// A leaf holding a cell run with raw rows (`r`: storage, range and rows
/// hash); prints the vector fields with `--nocapture` (the committed
/// `leaf-page-raw-rows` vector in dreamdb-conformance/vectors/track.json
/// is these bytes).
#[test]
fn leaf_with_raw_rows_round_trips() {
    let segment = seg(9);
    let value = TrackValue::CellRun {
        segment,
        offset: 100,
        len: 48,
        count: 3,
        run_hash: ContentHash::of(b"run"),
        raw: None,
    }
    .with_raw_rows(dreamdb_protocol::track::RawRows {
        storage: ContentHash::of(b"storage"),
        offset: 40,
        len: 1536,
        hash: ContentHash::of(b"rows"),
    });
    let page = IndexPage::Leaf {
        entries: vec![(TrackKey::cell_run(4, &segment), value)],
    };
    let bytes = page.encode();
    let decoded = IndexPage::decode(&bytes).unwrap();
    assert_eq!(decoded, page);
    let found = links(&cbor::decode_value(&bytes).unwrap());
    assert_eq!(found, vec![ContentHash::of(b"storage"), segment]);
    println!(
        "bytes={} hash={} key={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        ContentHash::of(&bytes).to_hex(),
        TrackKey::cell_run(4, &segment)
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
}

/// A leaf holding an anchor run that names its bucket's vector storage
/// (`r`, a tagged hash); prints the vector fields with `--nocapture` (the
/// committed `leaf-page-anchor-storage` vector in
/// dreamdb-conformance/vectors/track.json is these bytes).
#[test]
fn leaf_with_anchor_storage_round_trips() {
    let segment = seg(9);
    let storage = ContentHash::of(b"storage");
    let value = TrackValue::AnchorRun {
        segment,
        last_anchor: 1_700,
        count: 3,
        table_offset: 100,
        table_len: 24,
        storage: Some(storage),
    };
    let page = IndexPage::Leaf {
        entries: vec![(TrackKey::anchor_run(1_000, &segment), value)],
    };
    let bytes = page.encode();
    let decoded = IndexPage::decode(&bytes).unwrap();
    assert_eq!(decoded, page);
    let found = links(&cbor::decode_value(&bytes).unwrap());
    assert_eq!(found, vec![storage, segment]);
    println!(
        "bytes={} hash={} key={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        ContentHash::of(&bytes).to_hex(),
        TrackKey::anchor_run(1_000, &segment)
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
}
