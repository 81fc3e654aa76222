//! `schema`: the fields of a dataset and how each is stored and indexed.
//!
//! A field is one modality: an embedding (with its dimension, metric,
//! spatial index family, optional compression and whether raw vectors are
//! kept for re-ranking), a blob, a scalar or a time-ranged media fragment.
//! Each field may carry a user modality tag (spec/0002 §6) naming what the
//! data is (`com.example.clip-vit-b32`).
//!
//! Enums are encoded externally tagged: a unit variant is its name as text
//! (`"flat"`), a variant with fields is a one-entry map (`{"ivf": {"k":
//! 256}}`). This keeps every value inside a field spec a plain CBOR item
//! (no buffering), so tags such as the modality tag survive decoding.

use std::collections::BTreeMap;

use dreamdb_core::modality::ModalityTag;
use serde::{Deserialize, Serialize};

use super::common::{check_dim, check_field_name, check_mime, Metric};
use super::error::Invariant;
use super::ObjectKind;

/// The spatial index family of an embedding field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum IndexSpec {
    /// Inverted file with `k` cells.
    Ivf {
        /// Number of cells, ≥ 1.
        k: u32,
    },
    /// Locality-sensitive hashing: `tables` tables of `bits` hyperplanes.
    Lsh {
        /// Number of tables, ≥ 1.
        tables: u32,
        /// Hyperplanes per table, 1 ..= 32.
        bits: u32,
    },
    /// Inverted multi-index with `k1 × k2` cells.
    Imi {
        /// Cells of the first half-space, ≥ 1.
        k1: u32,
        /// Cells of the second half-space, ≥ 1.
        k2: u32,
    },
    /// No partitioning: one cell, exhaustive search.
    Flat,
}

/// How an embedding field's vectors are compressed in its spatial buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Compression {
    /// RaBitQ with `bits` bits per dimension (1 ..= 8).
    Rabitq {
        /// Bits per dimension.
        bits: u8,
    },
}

/// The scalar type of a scalar field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScalarDtype {
    /// A value out of a small set of labels (text).
    Categorical,
    /// Signed 64-bit integer.
    I64,
    /// IEEE 754 double.
    F64,
    /// Boolean.
    Bool,
    /// UTF-8 text.
    String,
    /// Instant: signed 64-bit nanoseconds since the Unix epoch.
    Timestamp,
}

/// How one field is stored and indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum FieldSpec {
    /// Dense vectors, partitioned into cells by a spatial index.
    Embedding {
        /// Dimension, 1 ..= 65,536.
        dim: u32,
        /// Distance.
        metric: Metric,
        /// Spatial index family.
        index: IndexSpec,
        /// Compression of the stored codes; absent = raw f32.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        compression: Option<Compression>,
        /// Whether raw f32 vectors are kept (vector-storage objects) for
        /// re-ranking and exact rebuilds.
        rerank: bool,
    },
    /// Opaque byte blobs of one MIME type.
    Blob {
        /// MIME type.
        mime: String,
        /// Largest blob accepted, in bytes (≥ 1).
        max_bytes: u64,
    },
    /// One scalar value per record.
    Scalar {
        /// Value type.
        dtype: ScalarDtype,
        /// Whether a record may lack a value.
        nullable: bool,
    },
    /// Time-ranged media segments (CMAF fragments and the like).
    Fragment {
        /// MIME type.
        mime: String,
    },
}

/// One field of a schema: its spec and an optional user modality tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaField {
    /// How the field is stored.
    pub spec: FieldSpec,
    /// What the data is, as a modality tag (absent when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<ModalityTag>,
}

/// The fields of a dataset, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Field name → field. Names are `[a-z_][a-z0-9_]*`, 1 to 64 bytes.
    pub fields: BTreeMap<String, SchemaField>,
}

fn positive(value: u64, rule: &'static str, what: &str) -> Result<(), Invariant> {
    if value == 0 {
        return Err(Invariant::new(rule, format!("{what} must be at least 1")));
    }
    Ok(())
}

impl FieldSpec {
    /// Checks the spec's own rules.
    pub fn validate(&self) -> Result<(), Invariant> {
        match self {
            FieldSpec::Embedding {
                dim,
                index,
                compression,
                ..
            } => {
                check_dim(*dim)?;
                match *index {
                    IndexSpec::Ivf { k } => positive(k.into(), "index-params", "ivf k")?,
                    IndexSpec::Lsh { tables, bits } => {
                        positive(tables.into(), "index-params", "lsh tables")?;
                        if !(1..=32).contains(&bits) {
                            return Err(Invariant::new(
                                "index-params",
                                format!("lsh bits must be in 1..=32, got {bits}"),
                            ));
                        }
                    }
                    IndexSpec::Imi { k1, k2 } => {
                        positive(k1.into(), "index-params", "imi k1")?;
                        positive(k2.into(), "index-params", "imi k2")?;
                    }
                    IndexSpec::Flat => {}
                }
                match compression {
                    Some(Compression::Rabitq { bits }) if !(1..=8).contains(bits) => {
                        Err(Invariant::new(
                            "bits-range",
                            format!("rabitq bits must be in 1..=8, got {bits}"),
                        ))
                    }
                    _ => Ok(()),
                }
            }
            FieldSpec::Blob { mime, max_bytes } => {
                check_mime(mime)?;
                positive(*max_bytes, "max-bytes", "max_bytes")
            }
            FieldSpec::Scalar { .. } => Ok(()),
            FieldSpec::Fragment { mime } => check_mime(mime),
        }
    }
}

impl ObjectKind for Schema {
    const KIND: &'static str = "schema";

    fn validate(&self) -> Result<(), Invariant> {
        for (name, field) in &self.fields {
            check_field_name(name)?;
            field.spec.validate().map_err(|i| Invariant {
                rule: i.rule,
                detail: format!("field {name:?}: {}", i.detail),
            })?;
        }
        Ok(())
    }
}
