//! Tests of `dreamdb_core::address`: the `dreamdb://` grammar, exact
//! text round trips, typed refusals and serde encodings, with property
//! tests over all targets and mutations of valid addresses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dreamdb_core::address::{Address, AddressTarget, ByteSpan};
use dreamdb_core::ref_name::RefName;
use dreamdb_core::ContentHash;
use proptest::prelude::*;

fn hash() -> ContentHash {
    ContentHash::of(b"dreamdb")
}

#[test]
fn valid_addresses_round_trip() {
    let h = hash().to_hex();
    let cases = [
        format!("dreamdb://objects/{h}"),
        format!("dreamdb://objects/{h}#bytes:0-1"),
        format!("dreamdb://objects/{h}#bytes:100-200"),
        format!("dreamdb://objects/{h}#bytes:0-18446744073709551615"),
        "dreamdb://refs/main".to_owned(),
        "dreamdb://refs/sweep/run-001".to_owned(),
        "dreamdb://tags/v1.0".to_owned(),
        "dreamdb://tags/users/alice/exp_3".to_owned(),
    ];
    for text in cases {
        let address = Address::parse(&text).unwrap();
        assert_eq!(address.to_string(), text);
        assert_eq!(text.parse::<Address>().unwrap(), address);
    }
}

#[test]
fn parts_and_constructors() {
    let h = hash();
    let a = Address::parse(&format!("dreamdb://objects/{h}#bytes:10-25")).unwrap();
    assert_eq!(a.target(), &AddressTarget::Object(h));
    let span = a.bytes().unwrap();
    assert_eq!((span.start(), span.end(), span.len()), (10, 25, 15));
    assert_eq!(a, Address::object_bytes(h, ByteSpan::new(10, 25).unwrap()));
    assert_eq!(a.without_locator(), Address::object(h));
    assert!(a.target().is_immutable());
    assert_eq!(a.target().kind(), "object");

    let main = RefName::parse("main").unwrap();
    let r = Address::branch(main.clone());
    assert_eq!(r.to_string(), "dreamdb://refs/main");
    assert_eq!(r.target().kind(), "ref");
    assert!(!r.target().is_immutable());
    assert_eq!(
        Address::tag(main.clone()).to_string(),
        "dreamdb://tags/main"
    );

    let span = ByteSpan::new(0, 1).unwrap();
    assert_eq!(
        Address::new(AddressTarget::Object(h), Some(span)).unwrap(),
        Address::object_bytes(h, span)
    );
    let err = Address::new(AddressTarget::Ref(main.clone()), Some(span)).unwrap_err();
    assert_eq!(err.class(), "locator-on-mutable-target");
    let err = Address::new(AddressTarget::Tag(main), Some(span)).unwrap_err();
    assert_eq!(err.class(), "locator-on-mutable-target");

    assert_eq!(ByteSpan::new(5, 5).unwrap_err().class(), "bad-locator");
    assert_eq!(ByteSpan::new(6, 5).unwrap_err().class(), "bad-locator");
}

#[test]
fn invalid_addresses_with_classes() {
    let h = hash().to_hex();
    let upper = h.to_uppercase();
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "bad-scheme"),
        ("refs/main".into(), "bad-scheme"),
        ("DREAMDB://refs/main".into(), "bad-scheme"),
        ("dreamdb:/refs/main".into(), "bad-scheme"),
        ("http://refs/main".into(), "bad-scheme"),
        (" dreamdb://refs/main".into(), "bad-scheme"),
        ("dreamdb://".into(), "bad-target"),
        ("dreamdb://branches/main".into(), "bad-target"),
        ("dreamdb://refs".into(), "bad-target"),
        ("dreamdb://Refs/main".into(), "bad-target"),
        ("dreamdb:///refs/main".into(), "bad-target"),
        ("dreamdb://objects/".into(), "bad-hash"),
        (format!("dreamdb://objects/{upper}"), "bad-hash"),
        (format!("dreamdb://objects/{h}/"), "bad-hash"),
        (format!("dreamdb://objects/{h}?x=1"), "bad-hash"),
        (format!("dreamdb://objects/{}", &h[..64]), "bad-hash"),
        (format!("dreamdb://objects/12{}", &h[2..]), "bad-hash"),
        ("dreamdb://refs/".into(), "bad-ref-name"),
        ("dreamdb://refs/main/".into(), "bad-ref-name"),
        ("dreamdb://refs/a//b".into(), "bad-ref-name"),
        ("dreamdb://refs/ma%69n".into(), "bad-ref-name"),
        ("dreamdb://refs/main?x=1".into(), "bad-ref-name"),
        ("dreamdb://tags/..".into(), "bad-ref-name"),
        ("dreamdb://tags/a b".into(), "bad-ref-name"),
        (format!("dreamdb://objects/{h}#"), "bad-locator"),
        (format!("dreamdb://objects/{h}#bytes:"), "bad-locator"),
        (format!("dreamdb://objects/{h}#bytes:1"), "bad-locator"),
        (format!("dreamdb://objects/{h}#bytes:1-"), "bad-locator"),
        (format!("dreamdb://objects/{h}#bytes:-5"), "bad-locator"),
        (format!("dreamdb://objects/{h}#bytes:5-5"), "bad-locator"),
        (format!("dreamdb://objects/{h}#bytes:6-5"), "bad-locator"),
        (format!("dreamdb://objects/{h}#bytes:01-5"), "bad-locator"),
        (format!("dreamdb://objects/{h}#bytes:1-05"), "bad-locator"),
        (format!("dreamdb://objects/{h}#bytes:+1-5"), "bad-locator"),
        (format!("dreamdb://objects/{h}#bytes:1-2-3"), "bad-locator"),
        (format!("dreamdb://objects/{h}#bytes: 1-5"), "bad-locator"),
        (format!("dreamdb://objects/{h}#BYTES:1-5"), "bad-locator"),
        (format!("dreamdb://objects/{h}#lines:1-5"), "bad-locator"),
        (
            format!("dreamdb://objects/{h}#bytes:1-18446744073709551616"),
            "bad-locator",
        ),
        (
            format!("dreamdb://objects/{h}#bytes:1-5#bytes:1-5"),
            "bad-locator",
        ),
        (
            "dreamdb://refs/main#bytes:0-10".into(),
            "locator-on-mutable-target",
        ),
        (
            "dreamdb://tags/v1.0#bytes:0-10".into(),
            "locator-on-mutable-target",
        ),
        ("dreamdb://tags/v1.0#".into(), "locator-on-mutable-target"),
    ];
    for (text, class) in cases {
        let err = Address::parse(&text).unwrap_err();
        assert_eq!(err.class(), class, "{text:?}: {err}");
        assert_eq!(err.input, text);
    }
}

#[test]
fn serde_encodings() {
    let a = Address::parse("dreamdb://refs/main").unwrap();
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        r#""dreamdb://refs/main""#
    );
    assert_eq!(
        serde_json::from_str::<Address>(r#""dreamdb://refs/main""#).unwrap(),
        a
    );
    assert!(serde_json::from_str::<Address>(r#""dreamdb://refs/main/""#).is_err());
    let mut bytes = Vec::new();
    ciborium::into_writer(&a, &mut bytes).unwrap();
    // Tag 65522 (d9 fff2), then a 19-byte text string (73).
    assert_eq!(
        hex::encode(&bytes),
        format!("d9fff273{}", hex::encode("dreamdb://refs/main"))
    );
    assert_eq!(ciborium::from_reader::<Address, _>(&bytes[..]).unwrap(), a);
    assert!(ciborium::from_reader::<Address, _>(&bytes[3..]).is_err());
}

fn ref_name() -> impl Strategy<Value = RefName> {
    let segment = "[A-Za-z0-9_-]([A-Za-z0-9_-]|\\.[A-Za-z0-9_-]){0,6}";
    prop::collection::vec(segment, 1..4)
        .prop_filter_map("valid ref name", |s| RefName::parse(&s.join("/")).ok())
}

fn address() -> impl Strategy<Value = Address> {
    let object = (
        any::<[u8; 32]>(),
        proptest::option::of((any::<u64>(), any::<u64>())),
    )
        .prop_filter_map("non-empty span", |(digest, span)| {
            let hash = ContentHash::from_digest(digest);
            match span {
                None => Some(Address::object(hash)),
                Some((a, b)) => ByteSpan::new(a.min(b), a.max(b))
                    .ok()
                    .map(|s| Address::object_bytes(hash, s)),
            }
        });
    prop_oneof![
        object,
        ref_name().prop_map(Address::branch),
        ref_name().prop_map(Address::tag),
    ]
}

proptest! {
    #[test]
    fn addresses_round_trip(address in address()) {
        let text = address.to_string();
        prop_assert_eq!(Address::parse(&text).unwrap(), address.clone());
        let json = serde_json::to_string(&address).unwrap();
        prop_assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), address.clone());
        let mut bytes = Vec::new();
        ciborium::into_writer(&address, &mut bytes).unwrap();
        prop_assert_eq!(ciborium::from_reader::<Address, _>(&bytes[..]).unwrap(), address.clone());
        let canonical = dreamdb_core::cbor::to_vec(&address).unwrap();
        prop_assert_eq!(&canonical, &bytes);
        prop_assert_eq!(dreamdb_core::cbor::from_slice::<Address>(&canonical).unwrap(), address);
    }

    #[test]
    fn mutations_never_panic_and_reparse_exactly(
        address in address(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..4),
    ) {
        let mut chars: Vec<char> = address.to_string().chars().collect();
        for (index, op, c) in edits {
            match op {
                0 if !chars.is_empty() => { let i = index.index(chars.len()); chars.remove(i); }
                1 => { let i = index.index(chars.len() + 1); chars.insert(i, c); }
                _ if !chars.is_empty() => { let i = index.index(chars.len()); chars[i] = c; }
                _ => {}
            }
        }
        let text: String = chars.into_iter().collect();
        match Address::parse(&text) {
            // Whatever parses has exactly this one spelling.
            Ok(parsed) => prop_assert_eq!(parsed.to_string(), text),
            Err(err) => prop_assert!(!err.class().is_empty()),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(dreamdb://)?(objects/|refs/|tags/)?\\PC{0,80}") {
        if let Ok(parsed) = Address::parse(&text) {
            prop_assert_eq!(parsed.to_string(), text);
        }
    }
}
