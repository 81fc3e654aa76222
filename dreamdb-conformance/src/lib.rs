//! # dreamdb-conformance
//!
//! Test vectors for every byte format DreamDB defines, as JSON files with
//! hex bytes (`vectors/*.json`), and a runner that checks this repository's
//! implementation against them. Another implementation uses the same files:
//! see this crate's README for the file format.
//!
//! Every vector that carries bytes has a `bytes` field (lowercase hex) and a
//! `bytes_hash` field: the DreamDB content hash (BLAKE3 multihash, text
//! form) of those bytes. The runner checks the hash before anything else, so
//! no byte of a vector file can be altered without the run failing, even in
//! a vector whose expected outcome is "rejected".

use std::fmt;
use std::path::{Path, PathBuf};

use dreamdb_core::ContentHash;
use serde::Deserialize;
use serde_json::{Map, Value};

mod suites;

/// One vector file: a kind, the spec section it tests, and its vectors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorFile {
    /// Which suite checks this file (`hash`, `cbor`, `time`, ...).
    pub kind: String,
    /// The spec section the vectors pin.
    pub spec: String,
    /// What the file covers.
    pub description: String,
    /// The vectors.
    pub vectors: Vec<Vector>,
}

/// One test vector: a name and kind-specific fields.
#[derive(Debug, Clone, Deserialize)]
pub struct Vector {
    /// Unique within its file.
    pub name: String,
    /// Every other field.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// One vector that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The file's kind.
    pub kind: String,
    /// The vector's name.
    pub vector: String,
    /// What was expected and what was seen.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.kind, self.vector, self.message)
    }
}

/// The outcome of checking one or more vector files.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Vectors checked.
    pub checked: usize,
    /// Vectors that failed.
    pub failures: Vec<Failure>,
}

impl Report {
    /// Whether every vector held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.checked > 0
    }

    fn absorb(&mut self, other: Report) {
        self.checked += other.checked;
        self.failures.extend(other.failures);
    }
}

/// Why vector files could not be loaded at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not a valid vector file.
    #[error("{path} is not a vector file: {source}")]
    Json {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// The directory holding this crate's vector files.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// Parses a vector file from JSON text.
pub fn parse_file(json: &str) -> Result<VectorFile, serde_json::Error> {
    serde_json::from_str(json)
}

/// Loads every `*.json` file in `dir`, sorted by name.
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, VectorFile)>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LoadError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|source| LoadError::Io {
                path: path.clone(),
                source,
            })?;
            let file = parse_file(&text).map_err(|source| LoadError::Json {
                path: path.clone(),
                source,
            })?;
            Ok((path, file))
        })
        .collect()
}

/// Checks every vector of one file.
pub fn run_file(file: &VectorFile) -> Report {
    let mut report = Report::default();
    let mut seen = std::collections::BTreeSet::new();
    for vector in &file.vectors {
        report.checked += 1;
        let outcome = if !seen.insert(vector.name.as_str()) {
            Err("duplicate vector name in file".to_owned())
        } else {
            check_bytes_hash(vector).and_then(|()| suites::check(&file.kind, vector))
        };
        if let Err(message) = outcome {
            report.failures.push(Failure {
                kind: file.kind.clone(),
                vector: vector.name.clone(),
                message,
            });
        }
    }
    if file.vectors.is_empty() {
        report.failures.push(Failure {
            kind: file.kind.clone(),
            vector: "(file)".to_owned(),
            message: "file holds no vectors".to_owned(),
        });
    }
    report
}

/// Checks every vector file in `dir`.
pub fn run_dir(dir: &Path) -> Result<Report, LoadError> {
    let mut report = Report::default();
    for (_, file) in load_dir(dir)? {
        report.absorb(run_file(&file));
    }
    Ok(report)
}

/// The vector's `bytes` must hash to its `bytes_hash`.
fn check_bytes_hash(vector: &Vector) -> Result<(), String> {
    match (vector.fields.get("bytes"), vector.fields.get("bytes_hash")) {
        (None, None) => Ok(()),
        (Some(_), None) => Err("vector has bytes but no bytes_hash".to_owned()),
        (None, Some(_)) => Err("vector has bytes_hash but no bytes".to_owned()),
        (Some(_), Some(_)) => {
            let bytes = fields::hex(vector, "bytes")?;
            let expected = fields::str(vector, "bytes_hash")?;
            let actual = ContentHash::of(&bytes).to_hex();
            if actual == expected {
                Ok(())
            } else {
                Err(format!(
                    "bytes hash to {actual}, vector says {expected} (vector altered?)"
                ))
            }
        }
    }
}

/// Typed access to a vector's fields, with messages naming the field.
pub mod fields {
    use super::Vector;
    use serde_json::Value;

    /// The field, or an error naming it.
    pub fn get<'a>(vector: &'a Vector, name: &str) -> Result<&'a Value, String> {
        vector
            .fields
            .get(name)
            .ok_or_else(|| format!("missing field {name:?}"))
    }

    /// A string field.
    pub fn str<'a>(vector: &'a Vector, name: &str) -> Result<&'a str, String> {
        get(vector, name)?
            .as_str()
            .ok_or_else(|| format!("field {name:?} must be a string"))
    }

    /// An optional string field (absent or null → None).
    pub fn opt_str<'a>(vector: &'a Vector, name: &str) -> Result<Option<&'a str>, String> {
        match vector.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("field {name:?} must be a string or null")),
        }
    }

    /// A hex field decoded to bytes (lowercase only).
    pub fn hex(vector: &Vector, name: &str) -> Result<Vec<u8>, String> {
        let text = str(vector, name)?;
        if text.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("field {name:?} must be lowercase hex"));
        }
        hex::decode(text).map_err(|e| format!("field {name:?} is not hex: {e}"))
    }

    /// An unsigned integer field.
    pub fn u64(vector: &Vector, name: &str) -> Result<u64, String> {
        get(vector, name)?
            .as_u64()
            .ok_or_else(|| format!("field {name:?} must be an unsigned integer"))
    }

    /// An optional unsigned integer field.
    pub fn opt_u64(vector: &Vector, name: &str) -> Result<Option<u64>, String> {
        match vector.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("field {name:?} must be an unsigned integer")),
        }
    }

    /// A boolean field.
    pub fn bool(vector: &Vector, name: &str) -> Result<bool, String> {
        get(vector, name)?
            .as_bool()
            .ok_or_else(|| format!("field {name:?} must be a boolean"))
    }

    /// An array of unsigned integers.
    pub fn u64_array(vector: &Vector, name: &str) -> Result<Vec<u64>, String> {
        get(vector, name)?
            .as_array()
            .ok_or_else(|| format!("field {name:?} must be an array"))?
            .iter()
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| format!("field {name:?} must hold unsigned integers"))
            })
            .collect()
    }
}

/// Compares an expected and an actual value, naming what differs.
pub(crate) fn expect_eq<T: PartialEq + fmt::Debug>(
    what: &str,
    expected: T,
    actual: T,
) -> Result<(), String> {
    if expected == actual {
        Ok(())
    } else {
        Err(format!("{what}: expected {expected:?}, got {actual:?}"))
    }
}
