//! One checker per vector kind. Each takes a vector and says whether this
//! implementation agrees with it.

use crate::Vector;

mod address;
mod cbor;
mod dag;
mod hash;
mod names;
mod objects;
mod random;
mod spatial;
mod time;
mod track;

/// Checks `vector` with the suite for `kind`.
pub(crate) fn check(kind: &str, vector: &Vector) -> Result<(), String> {
    match kind {
        "hash" => hash::check(vector),
        "cbor" => cbor::check(vector),
        "dag" => dag::check(vector),
        "time" => time::check(vector),
        "track" => track::check(vector),
        "address" => address::check(vector),
        "names" => names::check(vector),
        "objects" => objects::check(vector),
        "random" => random::check(vector),
        "spatial" => spatial::check(vector),
        other => Err(format!("unknown vector kind {other:?}")),
    }
}

/// Checks an outcome against a vector's `valid` / `error` fields: a valid
/// vector must parse (and `on_ok` must hold), an invalid one must fail with
/// the error class named.
pub(crate) fn expect_outcome<T, E>(
    vector: &Vector,
    outcome: Result<T, E>,
    class: impl Fn(&E) -> String,
    on_ok: impl FnOnce(T) -> Result<(), String>,
) -> Result<(), String>
where
    E: std::fmt::Display,
{
    let valid = crate::fields::bool(vector, "valid")?;
    match (valid, outcome) {
        (true, Ok(value)) => on_ok(value),
        (true, Err(e)) => Err(format!("expected success, got error: {e}")),
        (false, Ok(_)) => Err("expected an error, but input was accepted".to_owned()),
        (false, Err(e)) => {
            let expected = crate::fields::str(vector, "error")?;
            crate::expect_eq("error class", expected.to_owned(), class(&e))
        }
    }
}
