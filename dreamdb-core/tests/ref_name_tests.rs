//! Tests of `dreamdb_core::ref_name`: the ref/tag name grammar, glob
//! matching and serde, with property tests over generated names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dreamdb_core::ref_name::{RefName, RefNameRule};
use proptest::prelude::*;

#[test]
fn valid_names() {
    for name in [
        "main",
        "v1.0",
        "sweep/run-001",
        "users/alice/exp_3",
        "A-Z_0.9",
        "a",
        "release/2026.11",
        "x.lockfile",
        "lock",
        "-dash",
        "_under",
    ] {
        let parsed = RefName::parse(name).unwrap();
        assert_eq!(parsed.as_str(), name);
        assert_eq!(parsed.to_string(), name);
        assert_eq!(name.parse::<RefName>().unwrap(), parsed);
        assert_eq!(RefName::try_from(name.to_owned()).unwrap(), parsed);
        assert_eq!(AsRef::<str>::as_ref(&parsed), name);
    }
    let max = "a".repeat(255);
    assert!(RefName::parse(&max).is_ok());
}

#[test]
fn invalid_names_with_reasons() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("..", "leading-dot"),
        (".hidden", "leading-dot"),
        ("a/.b", "leading-dot"),
        ("a..b", "double-dot"),
        ("a.", "trailing-dot"),
        ("v1./x", "trailing-dot"),
        ("a.lock", "lock-suffix"),
        ("refs/x.lock/y", "lock-suffix"),
        ("a//b", "empty-segment"),
        ("/a", "empty-segment"),
        ("a/", "empty-segment"),
        ("/", "empty-segment"),
        ("a b", "bad-character"),
        ("a\tb", "bad-character"),
        ("a\nb", "bad-character"),
        ("a\u{0}b", "bad-character"),
        ("a\u{7f}", "bad-character"),
        ("é", "bad-character"),
        ("caf\u{e9}", "bad-character"),
        ("a*b", "bad-character"),
        ("a?b", "bad-character"),
        ("a~1", "bad-character"),
        ("a:b", "bad-character"),
        ("a\\b", "bad-character"),
        ("a#b", "bad-character"),
        ("a%20b", "bad-character"),
        ("a@{1}", "bad-character"),
    ];
    for &(name, class) in cases {
        let err = RefName::parse(name).unwrap_err();
        assert_eq!(err.class(), class, "{name:?}: {err}");
        assert_eq!(err.name, name);
    }
    let err = RefName::parse(&"a".repeat(256)).unwrap_err();
    assert_eq!(err.reason, RefNameRule::TooLong);
    assert_eq!(err.class(), "too-long");
}

#[test]
fn segments_split_on_slash() {
    let name = RefName::parse("users/alice/exp_3").unwrap();
    assert_eq!(
        name.segments().collect::<Vec<_>>(),
        ["users", "alice", "exp_3"]
    );
    assert_eq!(RefName::parse("main").unwrap().segments().count(), 1);
}

#[test]
fn glob_matching() {
    let name = |s: &str| RefName::parse(s).unwrap();
    assert!(name("sweep/run-001").matches_glob("sweep/*"));
    assert!(name("sweep/run-001").matches_glob("sweep/run-*"));
    assert!(name("sweep/run-001").matches_glob("sweep/run-00?"));
    assert!(name("sweep/run-001").matches_glob("*/*"));
    assert!(name("sweep/run-001").matches_glob("sweep/**"));
    assert!(!name("sweep/run-001").matches_glob("sweep"));
    assert!(!name("sweep/a/b").matches_glob("sweep/*"));
    assert!(name("sweep/a/b").matches_glob("sweep/*/*"));
    assert!(!name("sweep").matches_glob("sweep/*"));
    assert!(!name("sweeps/x").matches_glob("sweep/*"));
    assert!(name("main").matches_glob("*"));
    assert!(name("main").matches_glob("m*n"));
    assert!(name("main").matches_glob("main"));
    assert!(!name("main").matches_glob("mai"));
    assert!(!name("main").matches_glob("?"));
    assert!(!name("a/b").matches_glob("*"));
    assert!(!name("a/b").matches_glob("a?b"));
    assert!(name("aXbXc").matches_glob("a*b*c"));
    assert!(!name("main").matches_glob(""));
}

#[test]
fn serde_is_a_validated_string() {
    let name = RefName::parse("sweep/run-001").unwrap();
    assert_eq!(serde_json::to_string(&name).unwrap(), r#""sweep/run-001""#);
    assert_eq!(
        serde_json::from_str::<RefName>(r#""sweep/run-001""#).unwrap(),
        name
    );
    assert!(serde_json::from_str::<RefName>(r#""a//b""#).is_err());
    let mut bytes = Vec::new();
    ciborium::into_writer(&name, &mut bytes).unwrap();
    assert_eq!(bytes[0], 0x60 + 13); // a plain 13-byte text string
    assert_eq!(
        ciborium::from_reader::<RefName, _>(&bytes[..]).unwrap(),
        name
    );
}

fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-][A-Za-z0-9._-]{0,10}[A-Za-z0-9_-]|[A-Za-z0-9_-]"
        .prop_filter("no '..' and no '.lock' suffix", |s| {
            !s.contains("..") && !s.ends_with(".lock")
        })
}

fn valid_name() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 1..6).prop_map(|segments| segments.join("/"))
}

/// Simple reference matcher: tries every split point for `*`.
fn reference_glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len())
            .take_while(|&i| i == 0 || text[i - 1] != b'/')
            .any(|i| reference_glob(rest, &text[i..])),
        Some((&p, rest)) => match text.split_first() {
            Some((&t, text_rest)) if t != b'/' && p == b'?' => reference_glob(rest, text_rest),
            Some((&t, text_rest)) if p == t => reference_glob(rest, text_rest),
            _ => false,
        },
    }
}

proptest! {
    #[test]
    fn generated_names_round_trip(name in valid_name()) {
        let parsed = RefName::parse(&name).unwrap();
        prop_assert_eq!(parsed.to_string(), name.clone());
        let json = serde_json::to_string(&parsed).unwrap();
        prop_assert_eq!(serde_json::from_str::<RefName>(&json).unwrap(), parsed.clone());
        prop_assert_eq!(parsed.segments().collect::<Vec<_>>().join("/"), name);
    }

    #[test]
    fn injected_bad_characters_are_refused(
        name in valid_name(),
        position in any::<prop::sample::Index>(),
        bad in prop::sample::select(vec![' ', '\t', '\n', '\0', '~', '^', ':', '?', '*', '[', '\\', '#', '%', '@', '{', 'é', '\u{7f}', '\u{202e}']),
    ) {
        let mut chars: Vec<char> = name.chars().collect();
        let at = position.index(chars.len() + 1);
        chars.insert(at, bad);
        let mutated: String = chars.into_iter().collect();
        let err = RefName::parse(&mutated).unwrap_err();
        prop_assert_eq!(err.class(), "bad-character");
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
        if let Ok(name) = RefName::parse(&text) {
            prop_assert_eq!(name.as_str(), text.as_str());
            prop_assert!(name.matches_glob(&text));
        }
    }

    #[test]
    fn glob_agrees_with_reference(name in valid_name(), pattern in "[ab/*?]{0,8}") {
        let _ = &name;
        for candidate in [name.as_str(), "a/b", "ab/ba", "aa", "b/a/b"] {
            let n = RefName::parse(candidate).unwrap();
            prop_assert_eq!(
                n.matches_glob(&pattern),
                reference_glob(pattern.as_bytes(), candidate.as_bytes()),
                "name {:?} pattern {:?}", candidate, pattern
            );
        }
    }
}
