//! Known-answer tests for content hashes, and the `hash` conformance
//! vectors.
//!
//! The expected digests are the official BLAKE3 test vectors
//! (BLAKE3-team/BLAKE3, `test_vectors/test_vectors.json`): for each input
//! length, the input is the bytes `i % 251` for `i` in `0..len`, and the
//! expected hash is the first 32 bytes of the `hash` field. They are copied
//! here, not computed, so a broken hash (or a wrong dependency) fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use dreamdb_core::hash::{ContentHash, HashError};
use serde_json::Value as Json;

/// (input length, first 64 hex characters of the official `hash` output).
const OFFICIAL: &[(usize, &str)] = &[
    (
        0,
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
    ),
    (
        1,
        "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213",
    ),
    (
        2,
        "7b7015bb92cf0b318037702a6cdd81dee41224f734684c2c122cd6359cb1ee63",
    ),
    (
        3,
        "e1be4d7a8ab5560aa4199eea339849ba8e293d55ca0a81006726d184519e647f",
    ),
    (
        4,
        "f30f5ab28fe047904037f77b6da4fea1e27241c5d132638d8bedce9d40494f32",
    ),
    (
        5,
        "b40b44dfd97e7a84a996a91af8b85188c66c126940ba7aad2e7ae6b385402aa2",
    ),
    (
        6,
        "06c4e8ffb6872fad96f9aaca5eee1553eb62aed0ad7198cef42e87f6a616c844",
    ),
    (
        7,
        "3f8770f387faad08faa9d8414e9f449ac68e6ff0417f673f602a646a891419fe",
    ),
    (
        8,
        "2351207d04fc16ade43ccab08600939c7c1fa70a5c0aaca76063d04c3228eaeb",
    ),
    (
        63,
        "e9bc37a594daad83be9470df7f7b3798297c3d834ce80ba85d6e207627b7db7b",
    ),
    (
        64,
        "4eed7141ea4a5cd4b788606bd23f46e212af9cacebacdc7d1f4c6dc7f2511b98",
    ),
    (
        65,
        "de1e5fa0be70df6d2be8fffd0e99ceaa8eb6e8c93a63f2d8d1c30ecb6b263dee",
    ),
    (
        127,
        "d81293fda863f008c09e92fc382a81f5a0b4a1251cba1634016a0f86a6bd640d",
    ),
    (
        128,
        "f17e570564b26578c33bb7f44643f539624b05df1a76c81f30acd548c44b45ef",
    ),
    (
        129,
        "683aaae9f3c5ba37eaaf072aed0f9e30bac0865137bae68b1fde4ca2aebdcb12",
    ),
    (
        1023,
        "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11",
    ),
    (
        1024,
        "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7",
    ),
    (
        1025,
        "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444",
    ),
    (
        2048,
        "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a",
    ),
    (
        2049,
        "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030",
    ),
    (
        3072,
        "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2",
    ),
    (
        3073,
        "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3",
    ),
    (
        4096,
        "015094013f57a5277b59d8475c0501042c0b642e531b0a1c8f58d2163229e969",
    ),
    (
        4097,
        "9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995",
    ),
    (
        5120,
        "9cadc15fed8b5d854562b26a9536d9707cadeda9b143978f319ab34230535833",
    ),
    (
        5121,
        "628bd2cb2004694adaab7bbd778a25df25c47b9d4155a55f8fbd79f2fe154cff",
    ),
    (
        6144,
        "3e2e5b74e048f3add6d21faab3f83aa44d3b2278afb83b80b3c35164ebeca205",
    ),
    (
        6145,
        "f1323a8631446cc50536a9f705ee5cb619424d46887f3c376c695b70e0f0507f",
    ),
    (
        7168,
        "61da957ec2499a95d6b8023e2b0e604ec7f6b50e80a9678b89d2628e99ada77a",
    ),
    (
        7169,
        "a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817",
    ),
    (
        8192,
        "aae792484c8efe4f19e2ca7d371d8c467ffb10748d8a5a1ae579948f718a2a63",
    ),
    (
        8193,
        "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b",
    ),
    (
        16384,
        "f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4",
    ),
    (
        31744,
        "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47",
    ),
    (
        102400,
        "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085",
    ),
];

/// The official test input: `len` bytes `0, 1, ..., 250, 0, 1, ...`.
fn input(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn official(len: usize) -> &'static str {
    OFFICIAL.iter().find(|(l, _)| *l == len).unwrap().1
}

#[test]
fn official_blake3_vectors() {
    assert_eq!(OFFICIAL.len(), 35);
    for &(len, expected) in OFFICIAL {
        let hash = ContentHash::of(&input(len));
        assert_eq!(hex::encode(hash.digest()), expected, "length {len}");
        assert_eq!(hash.to_hex(), format!("1e{expected}"), "length {len}");
        assert_eq!(
            hex::encode(hash.to_multihash()),
            format!("1e20{expected}"),
            "length {len}"
        );
    }
}

#[test]
fn empty_constant_is_the_official_empty_hash() {
    assert_eq!(hex::encode(ContentHash::EMPTY.digest()), official(0));
    assert_eq!(ContentHash::EMPTY, ContentHash::of(&[]));
}

#[test]
fn text_form_round_trips() {
    for &(len, expected) in OFFICIAL {
        let text = format!("1e{expected}");
        let hash: ContentHash = text.parse().unwrap();
        assert_eq!(hash, ContentHash::of(&input(len)));
        assert_eq!(hash.to_string(), text);
        assert_eq!(
            ContentHash::from_compact(&hex::decode(&text).unwrap()),
            Ok(hash)
        );
    }
}

#[test]
fn cbor_form_is_tagged_compact_bytes() {
    let bytes = dreamdb_core::cbor::to_vec(&ContentHash::EMPTY).unwrap();
    assert_eq!(hex::encode(&bytes), format!("d9fff158211e{}", official(0)));
    let back: ContentHash = dreamdb_core::cbor::from_slice(&bytes).unwrap();
    assert_eq!(back, ContentHash::EMPTY);
    // JSON uses the text form.
    assert_eq!(
        serde_json::to_string(&ContentHash::EMPTY).unwrap(),
        format!("\"1e{}\"", official(0))
    );
}

fn field<'a>(vector: &'a Json, key: &str) -> Option<&'a str> {
    vector.get(key).map(|v| v.as_str().unwrap())
}

/// Checks a parse result against a vector's `valid` / `error` fields.
fn check_parse(name: &str, vector: &Json, result: Result<ContentHash, HashError>) {
    let valid = vector["valid"].as_bool().unwrap();
    match result {
        Ok(hash) => {
            assert!(valid, "{name}: parsed as {hash}");
            assert!(vector.get("error").is_none(), "{name}");
        }
        Err(err) => {
            assert!(!valid, "{name}: {err}");
            assert_eq!(field(vector, "error"), Some(err.class()), "{name}: {err}");
        }
    }
}

#[test]
fn conformance_vectors() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dreamdb-conformance/vectors/hash.json"
    );
    let file: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(file["kind"], "hash");
    assert!(file["spec"]
        .as_str()
        .unwrap()
        .starts_with("spec/0002-content-addressing.md §"));
    assert!(file["description"].is_string());
    let vectors = file["vectors"].as_array().unwrap();
    let mut names = HashSet::new();
    let mut official_seen = 0;
    let mut classes = HashSet::new();
    for vector in vectors {
        let name = field(vector, "name").unwrap();
        assert!(names.insert(name), "duplicate name {name}");
        if let Some(error) = field(vector, "error") {
            classes.insert(error);
        }
        if let Some(bytes) = field(vector, "bytes") {
            let bytes = hex::decode(bytes).unwrap();
            let bytes_hash = field(vector, "bytes_hash").unwrap();
            assert_eq!(ContentHash::of(&bytes).to_hex(), bytes_hash, "{name}");
            // Official vectors: the input and the answer are the official ones.
            let len: usize = name
                .strip_prefix("blake3-official-len-")
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(bytes, input(len), "{name}");
            assert_eq!(bytes_hash, format!("1e{}", official(len)), "{name}");
            official_seen += 1;
        } else if let Some(text) = field(vector, "text") {
            let result = ContentHash::from_hex(text);
            if let Ok(hash) = &result {
                assert_eq!(hash.to_hex(), text, "{name}");
            }
            check_parse(name, vector, result);
        } else if let Some(compact) = field(vector, "compact") {
            let result = ContentHash::from_compact(&hex::decode(compact).unwrap());
            if let Ok(hash) = &result {
                assert_eq!(hex::encode(hash.to_compact()), compact, "{name}");
            }
            check_parse(name, vector, result);
        } else if let Some(multihash) = field(vector, "multihash") {
            let result = ContentHash::from_multihash(&hex::decode(multihash).unwrap());
            if let Ok(hash) = &result {
                assert_eq!(hex::encode(hash.to_multihash()), multihash, "{name}");
            }
            check_parse(name, vector, result);
        } else {
            panic!("{name}: no bytes, text, compact or multihash");
        }
    }
    // Every official length up to 3073 is present.
    let expected = OFFICIAL.iter().filter(|(len, _)| *len <= 3073).count();
    assert_eq!(official_seen, expected);
    // Every error class is exercised.
    for class in [
        "wrong-length",
        "unsupported-code",
        "wrong-digest-length",
        "bad-hex-character",
    ] {
        assert!(classes.contains(class), "no vector for {class}");
    }
}
