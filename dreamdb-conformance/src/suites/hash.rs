//! `hash` vectors: BLAKE3 known answers and the hash text/compact forms
//! (spec/0002 §3).

use dreamdb_core::ContentHash;

use crate::{expect_eq, fields, Vector};

pub(crate) fn check(vector: &Vector) -> Result<(), String> {
    if vector.fields.contains_key("bytes") {
        // Known answer: the runner already checked bytes_hash == hash(bytes)
        // with the implementation; check the forms agree too.
        let bytes = fields::hex(vector, "bytes")?;
        let expected = fields::str(vector, "bytes_hash")?;
        let parsed = ContentHash::from_hex(expected).map_err(|e| e.to_string())?;
        expect_eq("hash", parsed, ContentHash::of(&bytes))?;
        return expect_eq(
            "compact form",
            hex::encode(parsed.to_compact()),
            expected.to_owned(),
        );
    }
    if let Some(text) = fields::opt_str(vector, "text")? {
        return super::expect_outcome(
            vector,
            ContentHash::from_hex(text),
            |e| e.class().to_owned(),
            |hash| expect_eq("text round trip", text.to_owned(), hash.to_hex()),
        );
    }
    if vector.fields.contains_key("multihash") {
        let multihash = fields::hex(vector, "multihash")?;
        return super::expect_outcome(
            vector,
            ContentHash::from_multihash(&multihash),
            |e| e.class().to_owned(),
            |hash| {
                expect_eq(
                    "multihash round trip",
                    multihash.clone(),
                    hash.to_multihash().to_vec(),
                )
            },
        );
    }
    let compact = fields::hex(vector, "compact")?;
    super::expect_outcome(
        vector,
        ContentHash::from_compact(&compact),
        |e| e.class().to_owned(),
        |hash| {
            expect_eq(
                "compact round trip",
                compact.clone(),
                hash.to_compact().to_vec(),
            )
        },
    )
}
