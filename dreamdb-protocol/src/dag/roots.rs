//! Conversion between the track root a Manifest stores and the one the
//! track module works on.
//!
//! `objects::Manifest` holds `objects::TrackRoot`, written before
//! `crate::track` existed; `crate::track::TrackRoot` is the real root.
//! The two agree on the inner shapes (`{entries}` or `{count, height,
//! page}`); the placeholder wraps them in an `inline` / `paged` variant
//! name. Converting through a CBOR value accepts either spelling, so this
//! code keeps working unchanged when `objects` re-exports the track type.

use ciborium::value::Value;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::DagError;
use crate::objects::TrackRoot as StoredRoot;
use crate::track::TrackRoot;

fn bad(what: &str, e: impl std::fmt::Display) -> DagError {
    DagError::InvalidArgument(format!("track root conversion ({what}): {e}"))
}

/// Unwraps `{"inline": {...}}` / `{"paged": {...}}` to the inner map.
fn unwrap_variant(value: Value) -> Value {
    if let Value::Map(fields) = &value {
        if let [(Value::Text(name), inner @ Value::Map(_))] = fields.as_slice() {
            if name == "inline" || name == "paged" {
                return inner.clone();
            }
        }
    }
    value
}

/// Wraps an inner root map in the variant name its keys imply.
fn wrap_variant(value: Value) -> Value {
    let inline = matches!(&value, Value::Map(f)
        if f.iter().any(|(k, _)| matches!(k, Value::Text(t) if t == "entries")));
    let name = if inline { "inline" } else { "paged" };
    Value::Map(vec![(Value::Text(name.to_owned()), value)])
}

fn via_value<A: Serialize, B: DeserializeOwned>(a: &A, wrap: bool) -> Result<B, DagError> {
    let value = Value::serialized(a).map_err(|e| bad("encode", e))?;
    let plain = unwrap_variant(value);
    match plain.deserialized::<B>() {
        Ok(b) => Ok(b),
        Err(first) if wrap => wrap_variant(plain)
            .deserialized::<B>()
            .map_err(|e| bad("decode", format!("{first}; {e}"))),
        Err(e) => Err(bad("decode", e)),
    }
}

/// The track root of a stored one.
pub(crate) fn to_track(root: &StoredRoot) -> Result<TrackRoot, DagError> {
    via_value(root, false)
}

/// The stored form of a track root.
pub(crate) fn to_stored(root: &TrackRoot) -> Result<StoredRoot, DagError> {
    via_value(root, true)
}
