//! `time` vectors: anchors, durations, Genesis conversion and checked
//! arithmetic (spec/0003).

use dreamdb_core::cbor;
use dreamdb_core::time::{Genesis, Ticks, TimeAnchor};

use crate::{expect_eq, fields, Vector};

pub(crate) fn check(vector: &Vector) -> Result<(), String> {
    let has = |field: &str| vector.fields.contains_key(field);
    if has("duration") {
        let text = fields::str(vector, "duration")?;
        return expect_result(vector, Ticks::parse(text).map(|t| t.as_nanos()), "nanos");
    }
    if has("genesis_unix_nanos") {
        let genesis = Genesis::new(fields::u64(vector, "genesis_unix_nanos")?);
        let unix = fields::u64(vector, "unix_nanos")?;
        let anchor = genesis.anchor_from_unix_nanos(unix);
        if let Ok(anchor) = anchor {
            expect_eq(
                "back to unix nanos",
                Ok(unix),
                genesis
                    .unix_nanos_from_anchor(anchor)
                    .map_err(|e| e.class()),
            )?;
        }
        return expect_result(vector, anchor.map(|a| a.as_nanos()), "anchor");
    }
    if has("add") {
        let anchor = TimeAnchor::new(fields::u64(vector, "anchor")?);
        let add = Ticks::from_nanos(fields::u64(vector, "add")?);
        return expect_result(
            vector,
            anchor.checked_add(add).map(|a| a.as_nanos()),
            "result",
        );
    }
    let anchor = TimeAnchor::new(fields::u64(vector, "anchor")?);
    let hex = fields::str(vector, "hex")?;
    expect_eq("text form", hex.to_owned(), anchor.to_hex())?;
    expect_eq(
        "parse text form",
        Ok(anchor),
        TimeAnchor::from_hex(hex).map_err(|e| e.class()),
    )?;
    let bytes = fields::hex(vector, "bytes")?;
    expect_eq(
        "canonical CBOR",
        hex::encode(&bytes),
        hex::encode(cbor::to_vec(&anchor).map_err(|e| e.to_string())?),
    )?;
    let decoded: TimeAnchor = cbor::from_slice(&bytes).map_err(|e| e.to_string())?;
    expect_eq("decoded anchor", anchor, decoded)
}

/// A vector either names the expected value in `field` or an `error` class.
fn expect_result(
    vector: &Vector,
    outcome: Result<u64, dreamdb_core::time::TimeError>,
    field: &str,
) -> Result<(), String> {
    match (fields::opt_str(vector, "error")?, outcome) {
        (None, Ok(value)) => expect_eq(field, fields::u64(vector, field)?, value),
        (None, Err(e)) => Err(format!("expected {field}, got error {e}")),
        (Some(class), Ok(value)) => Err(format!("expected error {class}, got {value}")),
        (Some(class), Err(e)) => expect_eq("error class", class, e.class()),
    }
}
