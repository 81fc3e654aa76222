//! Tests of `dreamdb_core::modality`: the modality tag grammar, the
//! built-in namespace and serde encodings, with property tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dreamdb_core::modality::{ModalityRule, ModalityTag};
use proptest::prelude::*;

#[test]
fn builtin_and_user_tags() {
    for tag in [
        "dreamdb.embedding",
        "dreamdb.ivf-cosine",
        "dreamdb.lsh-cosine",
        "dreamdb.rabitq",
        "dreamdb.tombstones",
        "dreamdb.recommendations",
        "dreamdb.future_thing",
    ] {
        let t = ModalityTag::parse(tag).unwrap();
        assert!(t.is_builtin(), "{tag}");
        assert_eq!(t.to_string(), tag);
    }
    for tag in ["com.example.lidar", "org.acme.audio.v2", "io.x9.a_b-c"] {
        let t = ModalityTag::parse(tag).unwrap();
        assert!(!t.is_builtin(), "{tag}");
        assert_eq!(tag.parse::<ModalityTag>().unwrap(), t);
    }
    assert_eq!(
        ModalityTag::EMBEDDING,
        ModalityTag::parse("dreamdb.embedding").unwrap()
    );
    assert_eq!(
        ModalityTag::parse("org.acme.audio.v2")
            .unwrap()
            .segments()
            .collect::<Vec<_>>(),
        ["org", "acme", "audio", "v2"]
    );
}

#[test]
fn invalid_tags_with_reasons() {
    let long_segment = format!("com.example.{}", "a".repeat(64));
    let ok_segment = format!("com.example.{}", "a".repeat(63));
    assert!(ModalityTag::parse(&ok_segment).is_ok());
    let too_long = format!("com.{}", ["abcdefg"; 32].join("."));
    assert!(too_long.len() > 255);
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        ("embedding".into(), "too-few-segments"),
        ("dreamdb".into(), "too-few-segments"),
        ("com.example".into(), "not-reverse-dns"),
        ("Dreamdb.embedding".into(), "bad-character"),
        ("com.Example.lidar".into(), "bad-character"),
        ("com.example..lidar".into(), "empty-segment"),
        (".com.example.lidar".into(), "empty-segment"),
        ("com.example.lidar.".into(), "empty-segment"),
        ("com.example.9lidar".into(), "bad-segment-start"),
        ("com.example._lidar".into(), "bad-segment-start"),
        ("com.example.-lidar".into(), "bad-segment-start"),
        ("com.example.li dar".into(), "bad-character"),
        ("com/example/lidar".into(), "bad-character"),
        ("com.exämple.lidar".into(), "bad-character"),
        (long_segment, "segment-too-long"),
        (too_long, "too-long"),
    ];
    for (tag, class) in cases {
        let err = ModalityTag::parse(&tag).unwrap_err();
        assert_eq!(err.class(), class, "{tag:?}: {err}");
        assert_eq!(err.tag, tag);
    }
    assert_eq!(
        ModalityTag::parse("a").unwrap_err().reason,
        ModalityRule::TooFewSegments
    );
}

#[test]
fn serde_encodings() {
    let tag = ModalityTag::parse("com.example.lidar").unwrap();
    assert_eq!(
        serde_json::to_string(&tag).unwrap(),
        r#""com.example.lidar""#
    );
    assert_eq!(
        serde_json::from_str::<ModalityTag>(r#""com.example.lidar""#).unwrap(),
        tag
    );
    assert!(serde_json::from_str::<ModalityTag>(r#""com.example""#).is_err());

    let mut bytes = Vec::new();
    ciborium::into_writer(&ModalityTag::RABITQ, &mut bytes).unwrap();
    // Tag 65523 (d9 fff3), text of 14 bytes (6e), "dreamdb.rabitq".
    assert_eq!(
        hex::encode(&bytes),
        format!("d9fff36e{}", hex::encode("dreamdb.rabitq"))
    );
    assert_eq!(
        ciborium::from_reader::<ModalityTag, _>(&bytes[..]).unwrap(),
        ModalityTag::RABITQ
    );
    // Untagged text is refused in CBOR.
    assert!(ciborium::from_reader::<ModalityTag, _>(&bytes[3..]).is_err());
}

fn segment() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,12}"
}

proptest! {
    #[test]
    fn user_tags_round_trip(segments in prop::collection::vec(segment(), 3..7)) {
        let text = segments.join(".");
        let tag = ModalityTag::parse(&text).unwrap();
        prop_assert_eq!(tag.is_builtin(), segments[0] == "dreamdb");
        prop_assert_eq!(tag.to_string(), text.clone());
        let json = serde_json::to_string(&tag).unwrap();
        prop_assert_eq!(serde_json::from_str::<ModalityTag>(&json).unwrap(), tag.clone());
        let mut bytes = Vec::new();
        ciborium::into_writer(&tag, &mut bytes).unwrap();
        prop_assert_eq!(ciborium::from_reader::<ModalityTag, _>(&bytes[..]).unwrap(), tag.clone());
        let canonical = dreamdb_core::cbor::to_vec(&tag).unwrap();
        prop_assert_eq!(&canonical, &bytes);
        prop_assert_eq!(dreamdb_core::cbor::from_slice::<ModalityTag>(&canonical).unwrap(), tag);
    }

    #[test]
    fn builtin_tags_round_trip(rest in prop::collection::vec(segment(), 1..4)) {
        let text = format!("dreamdb.{}", rest.join("."));
        let tag = ModalityTag::parse(&text).unwrap();
        prop_assert!(tag.is_builtin());
        prop_assert_eq!(tag.as_str(), text.as_str());
    }

    #[test]
    fn two_segment_user_tags_are_refused(a in segment(), b in segment()) {
        prop_assume!(a != "dreamdb");
        let err = ModalityTag::parse(&format!("{a}.{b}")).unwrap_err();
        prop_assert_eq!(err.class(), "not-reverse-dns");
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
        if let Ok(tag) = ModalityTag::parse(&text) {
            prop_assert_eq!(tag.as_str(), text.as_str());
        }
    }
}
