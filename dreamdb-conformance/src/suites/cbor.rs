//! `cbor` vectors: deterministic encoding and strict decoding (spec/0002 §4).

use dreamdb_core::cbor;

use crate::{expect_eq, fields, Vector};

pub(crate) fn check(vector: &Vector) -> Result<(), String> {
    let bytes = fields::hex(vector, "bytes")?;
    if fields::bool(vector, "valid")? {
        let value = cbor::decode_value(&bytes)
            .map_err(|e| format!("expected canonical CBOR, got error: {e}"))?;
        expect_eq(
            "diagnostic",
            fields::str(vector, "diagnostic")?.to_owned(),
            cbor::diagnostic(&value),
        )?;
        let again = cbor::encode_value(&value).map_err(|e| e.to_string())?;
        return expect_eq("re-encoding", hex::encode(&bytes), hex::encode(again));
    }
    let err = match cbor::decode_value(&bytes) {
        Ok(value) => {
            return Err(format!(
                "expected rejection, decoded {}",
                cbor::diagnostic(&value)
            ))
        }
        Err(e) => e,
    };
    expect_eq(
        "error class",
        fields::str(vector, "error")?.to_owned(),
        err.class(),
    )?;
    if let Some(offset) = fields::opt_u64(vector, "offset")? {
        expect_eq("error offset", Some(offset), error_offset(&err))?;
    }
    let lenient = cbor::decode_value_lenient(&bytes)
        .ok()
        .map(|v| cbor::diagnostic(&v));
    expect_eq(
        "lenient diagnostic",
        fields::opt_str(vector, "lenient_diagnostic")?.map(str::to_owned),
        lenient,
    )
}

fn error_offset(err: &cbor::CborError) -> Option<u64> {
    match err {
        cbor::CborError::NonCanonical { offset, .. }
        | cbor::CborError::Malformed { offset, .. }
        | cbor::CborError::Truncated { offset, .. }
        | cbor::CborError::TrailingBytes { offset, .. }
        | cbor::CborError::TooDeep { offset, .. } => Some(*offset as u64),
        _ => None,
    }
}
