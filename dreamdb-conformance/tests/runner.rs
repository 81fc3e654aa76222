#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Runs every vector file against this repository's implementation, and
//! shows that the runner notices when any single byte of a vector changes.

use dreamdb_conformance::{load_dir, run_file, vectors_dir, Vector, VectorFile};
use serde_json::Value;

const EXPECTED_KINDS: [&str; 10] = [
    "address", "cbor", "dag", "hash", "names", "objects", "random", "spatial", "time", "track",
];

#[test]
fn every_vector_file_passes() {
    let files = load_dir(&vectors_dir()).expect("vector files load");
    let mut kinds: Vec<&str> = files.iter().map(|(_, f)| f.kind.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, EXPECTED_KINDS, "one file per kind of this version");
    let mut total = 0;
    for (path, file) in &files {
        let report = run_file(file);
        assert!(
            report.failures.is_empty(),
            "{}: {} failures:\n{}",
            path.display(),
            report.failures.len(),
            report
                .failures
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        total += report.checked;
    }
    println!(
        "conformance: {total} vectors in {} files passed",
        files.len()
    );
    assert!(total > 100, "suspiciously few vectors: {total}");
}

/// Flips each hex digit of every `bytes` field in turn (to another hex
/// digit, so the file stays well-formed) and checks the runner fails.
#[test]
fn altering_any_vector_byte_fails_the_run() {
    let files = load_dir(&vectors_dir()).expect("vector files load");
    let mut mutations = 0usize;
    for (_, file) in &files {
        for (index, vector) in file.vectors.iter().enumerate() {
            let Some(Value::String(bytes)) = vector.fields.get("bytes") else {
                continue;
            };
            for position in 0..bytes.len() {
                let mutated = mutate_hex_digit(bytes, position);
                let file = with_field(file, index, "bytes", Value::String(mutated));
                let report = run_file(&file);
                assert!(
                    !report.failures.is_empty(),
                    "[{}] {}: altering hex digit {position} went unnoticed",
                    file.kind,
                    vector.name
                );
                mutations += 1;
            }
        }
    }
    println!("conformance: {mutations} single-digit mutations all detected");
    assert!(mutations > 1000);
}

/// Changing an expected answer (not the bytes) is noticed too: the
/// semantic checks are real, not just the bytes_hash check.
#[test]
fn altering_an_expected_answer_fails_the_run() {
    let files = load_dir(&vectors_dir()).expect("vector files load");
    let mut checked = 0;
    for (_, file) in &files {
        for (index, vector) in file.vectors.iter().enumerate() {
            for field in [
                "diagnostic",
                "error",
                "hex",
                "anchor",
                "nanos",
                "value",
                "u32",
            ] {
                let Some(original) = vector.fields.get(field) else {
                    continue;
                };
                let altered = alter(original);
                let file = with_field(file, index, field, altered);
                assert!(
                    !run_file(&file).failures.is_empty(),
                    "[{}] {}: altering field {field} went unnoticed",
                    file.kind,
                    vector.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} expected answers altered");
}

#[test]
fn a_corrupted_bytes_hash_is_reported_as_such() {
    let files = load_dir(&vectors_dir()).expect("vector files load");
    let (_, file) = files
        .iter()
        .find(|(_, f)| f.kind == "cbor")
        .expect("cbor vectors");
    let index = file
        .vectors
        .iter()
        .position(|v| v.fields.contains_key("bytes"))
        .expect("a vector with bytes");
    let mutated = mutate_hex_digit(
        file.vectors[index].fields["bytes"].as_str().expect("hex"),
        0,
    );
    let report = run_file(&with_field(file, index, "bytes", Value::String(mutated)));
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    assert!(report.failures[0].message.contains("vector altered"));
}

fn mutate_hex_digit(hex: &str, position: usize) -> String {
    let mut chars: Vec<char> = hex.chars().collect();
    chars[position] = if chars[position] == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}

/// A file holding only vector `index` of `file`, with `field` replaced.
/// (Vectors are checked independently, so the others need not be re-run.)
fn with_field(file: &VectorFile, index: usize, field: &str, value: Value) -> VectorFile {
    let mut vector: Vector = file.vectors[index].clone();
    vector.fields.insert(field.to_owned(), value);
    VectorFile {
        kind: file.kind.clone(),
        spec: file.spec.clone(),
        description: file.description.clone(),
        vectors: vec![vector],
    }
}

fn alter(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(format!("{s}x")),
        Value::Number(n) => Value::from(u64::from(n.as_u64() == Some(0))),
        Value::Array(items) if !items.is_empty() => {
            let mut items = items.clone();
            items[0] = alter(&items[0]);
            Value::Array(items)
        }
        Value::Bool(b) => Value::Bool(!b),
        _ => Value::String("altered".to_owned()),
    }
}
