//! Building a [`Schema`]: a chainable, validated builder.
//!
//! ```
//! use dreamdb_dataset::schema::{EmbeddingField, Metric, ScalarType, SchemaBuilder};
//!
//! let schema = SchemaBuilder::new()
//!     .embedding(
//!         "embedding",
//!         EmbeddingField::new(384).metric(Metric::Cosine).ivf(64).rabitq(1).rerank(true),
//!     )
//!     .blob("image", "image/jpeg", 1 << 20)
//!     .scalar("label", ScalarType::Categorical)
//!     .scalar("score", ScalarType::F64.nullable())
//!     .build()
//!     .unwrap();
//! assert_eq!(schema.fields.len(), 4);
//! ```
//!
//! Every error names the field it concerns. The builder never picks index
//! parameters for the caller (design/0002: "the SDK never picks k"): an
//! embedding field without an index call is `flat` (one cell, exact scan).

use std::collections::BTreeMap;

use dreamdb_core::modality::ModalityTag;
pub use dreamdb_protocol::objects::Metric;
use dreamdb_protocol::objects::{
    Compression, FieldSpec, IndexSpec, ObjectKind, ScalarDtype, Schema, SchemaField,
};

use crate::DatasetError;

/// Largest `tables · 2^bits` an LSH index may address (its cells are u32).
const LSH_MAX_BITS: u32 = 24;

/// An embedding field's spec, built by chaining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingField {
    dim: u32,
    metric: Metric,
    index: IndexSpec,
    compression: Option<Compression>,
    rerank: bool,
    tag: Option<String>,
}

impl EmbeddingField {
    /// A `dim`-dimensional embedding: cosine, flat index, raw f32 codes, no
    /// rerank copy.
    pub fn new(dim: u32) -> Self {
        EmbeddingField {
            dim,
            metric: Metric::Cosine,
            index: IndexSpec::Flat,
            compression: None,
            rerank: false,
            tag: None,
        }
    }

    /// The distance.
    pub fn metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
    }

    /// An IVF index with `k` cells (trained on the first append).
    pub fn ivf(mut self, k: u32) -> Self {
        self.index = IndexSpec::Ivf { k };
        self
    }

    /// An LSH index: `tables` tables of `bits` hyperplanes (cosine only).
    pub fn lsh(mut self, tables: u32, bits: u32) -> Self {
        self.index = IndexSpec::Lsh { tables, bits };
        self
    }

    /// An inverted multi-index with `k1 × k2` cells (cosine only).
    pub fn imi(mut self, k1: u32, k2: u32) -> Self {
        self.index = IndexSpec::Imi { k1, k2 };
        self
    }

    /// No partitioning: one cell, exact scan.
    pub fn flat(mut self) -> Self {
        self.index = IndexSpec::Flat;
        self
    }

    /// RaBitQ codes with `bits` bits per dimension (1 ..= 8).
    pub fn rabitq(mut self, bits: u8) -> Self {
        self.compression = Some(Compression::Rabitq { bits });
        self
    }

    /// Whether raw f32 rows are kept (vector-storage objects) for exact
    /// reranking and exact rebuilds.
    pub fn rerank(mut self, rerank: bool) -> Self {
        self.rerank = rerank;
        self
    }

    /// A modality tag naming what the vectors are (`com.example.clip`).
    pub fn tag(mut self, tag: &str) -> Self {
        self.tag = Some(tag.to_owned());
        self
    }

    /// The dimension.
    pub fn dim(&self) -> u32 {
        self.dim
    }

    /// Checks the spec and returns the schema field (errors name `name`).
    pub fn to_field(&self, name: &str) -> Result<SchemaField, DatasetError> {
        let bad = |reason: String| DatasetError::InvalidSchema {
            reason: format!("field {name:?}: {reason}"),
        };
        if self.dim == 0 {
            return Err(bad("dim must be at least 1".to_owned()));
        }
        match self.index {
            IndexSpec::Ivf { k: 0 } => return Err(bad("ivf k must be at least 1".to_owned())),
            IndexSpec::Lsh { tables, bits } => {
                if tables == 0 {
                    return Err(bad("lsh tables must be at least 1".to_owned()));
                }
                if !(1..=LSH_MAX_BITS).contains(&bits) {
                    return Err(bad(format!(
                        "lsh bits must be in 1..={LSH_MAX_BITS}, got {bits}"
                    )));
                }
                if u64::from(tables) << bits > 1u64 << 32 {
                    return Err(bad(format!(
                        "lsh tables · 2^bits = {} exceeds 2^32 cells",
                        u64::from(tables) << bits
                    )));
                }
                if self.metric != Metric::Cosine {
                    return Err(bad("lsh supports the cosine metric only".to_owned()));
                }
            }
            IndexSpec::Imi { k1, k2 } => {
                if k1 == 0 || k2 == 0 {
                    return Err(bad("imi k1 and k2 must be at least 1".to_owned()));
                }
                if u64::from(k1) * u64::from(k2) > u64::from(u32::MAX) {
                    return Err(bad("imi k1 · k2 exceeds 2^32 cells".to_owned()));
                }
                if self.metric != Metric::Cosine {
                    return Err(bad("imi supports the cosine metric only".to_owned()));
                }
                if self.dim < 2 {
                    return Err(bad("imi needs dim of at least 2".to_owned()));
                }
            }
            IndexSpec::Ivf { .. } | IndexSpec::Flat => {}
        }
        if let Some(Compression::Rabitq { bits }) = self.compression {
            if !(1..=8).contains(&bits) {
                return Err(bad(format!("rabitq bits must be in 1..=8, got {bits}")));
            }
        }
        let spec = FieldSpec::Embedding {
            dim: self.dim,
            metric: self.metric,
            index: self.index,
            compression: self.compression,
            rerank: self.rerank,
        };
        spec.validate().map_err(|i| bad(i.detail))?;
        Ok(SchemaField {
            spec,
            tag: parse_tag(name, self.tag.as_deref())?,
        })
    }
}

/// The type of a scalar field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScalarType {
    /// A label out of a small set (text).
    Categorical,
    /// Signed 64-bit integer.
    I64,
    /// IEEE 754 double.
    F64,
    /// Boolean.
    Bool,
    /// UTF-8 text.
    String,
    /// Nanoseconds since the Unix epoch (signed).
    Timestamp,
}

impl ScalarType {
    /// This type, nullable (records may lack a value).
    pub fn nullable(self) -> ScalarField {
        ScalarField {
            dtype: self,
            nullable: true,
        }
    }

    /// The stored dtype.
    pub fn dtype(self) -> ScalarDtype {
        match self {
            ScalarType::Categorical => ScalarDtype::Categorical,
            ScalarType::I64 => ScalarDtype::I64,
            ScalarType::F64 => ScalarDtype::F64,
            ScalarType::Bool => ScalarDtype::Bool,
            ScalarType::String => ScalarDtype::String,
            ScalarType::Timestamp => ScalarDtype::Timestamp,
        }
    }

    /// The type of a stored dtype.
    pub fn of_dtype(dtype: ScalarDtype) -> Self {
        match dtype {
            ScalarDtype::Categorical => ScalarType::Categorical,
            ScalarDtype::I64 => ScalarType::I64,
            ScalarDtype::F64 => ScalarType::F64,
            ScalarDtype::Bool => ScalarType::Bool,
            ScalarDtype::String => ScalarType::String,
            ScalarDtype::Timestamp => ScalarType::Timestamp,
        }
    }
}

/// A scalar field's type and nullability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScalarField {
    /// Value type.
    pub dtype: ScalarType,
    /// Whether records may lack a value.
    pub nullable: bool,
}

impl From<ScalarType> for ScalarField {
    fn from(dtype: ScalarType) -> Self {
        ScalarField {
            dtype,
            nullable: false,
        }
    }
}

impl ScalarField {
    /// The schema field.
    pub fn to_field(self) -> SchemaField {
        SchemaField {
            spec: FieldSpec::Scalar {
                dtype: self.dtype.dtype(),
                nullable: self.nullable,
            },
            tag: None,
        }
    }
}

fn parse_tag(field: &str, tag: Option<&str>) -> Result<Option<ModalityTag>, DatasetError> {
    tag.map(|t| {
        ModalityTag::parse(t).map_err(|e| DatasetError::InvalidSchema {
            reason: format!("field {field:?}: modality tag {t:?}: {e}"),
        })
    })
    .transpose()
}

/// Chainable schema builder; errors are kept and the first one is returned
/// by [`SchemaBuilder::build`].
#[derive(Debug, Default)]
pub struct SchemaBuilder {
    fields: BTreeMap<String, SchemaField>,
    error: Option<DatasetError>,
}

impl SchemaBuilder {
    /// An empty schema.
    pub fn new() -> Self {
        SchemaBuilder::default()
    }

    /// Starts from an existing schema (to add fields for `update_schema`).
    pub fn from_schema(schema: &Schema) -> Self {
        SchemaBuilder {
            fields: schema.fields.clone(),
            error: None,
        }
    }

    fn add(mut self, name: &str, field: Result<SchemaField, DatasetError>) -> Self {
        if self.error.is_some() {
            return self;
        }
        if let Err(reason) = check_name(name) {
            self.error = Some(DatasetError::InvalidSchema {
                reason: format!("field {name:?}: {reason}"),
            });
            return self;
        }
        if self.fields.contains_key(name) {
            self.error = Some(DatasetError::InvalidSchema {
                reason: format!("field {name:?} is defined twice"),
            });
            return self;
        }
        match field {
            Ok(field) => {
                self.fields.insert(name.to_owned(), field);
            }
            Err(e) => self.error = Some(e),
        }
        self
    }

    /// Adds an embedding field.
    pub fn embedding(self, name: &str, field: EmbeddingField) -> Self {
        let built = field.to_field(name);
        self.add(name, built)
    }

    /// Adds a blob field of one MIME type whose blobs are at most
    /// `max_bytes` long.
    pub fn blob(self, name: &str, mime: &str, max_bytes: u64) -> Self {
        let spec = FieldSpec::Blob {
            mime: mime.to_owned(),
            max_bytes,
        };
        let built = spec
            .validate()
            .map(|()| SchemaField { spec, tag: None })
            .map_err(|i| DatasetError::InvalidSchema {
                reason: format!("field {name:?}: {}", i.detail),
            });
        self.add(name, built)
    }

    /// Adds a scalar field: `ScalarType::I64` (required) or
    /// `ScalarType::I64.nullable()`.
    pub fn scalar(self, name: &str, field: impl Into<ScalarField>) -> Self {
        let built = Ok(field.into().to_field());
        self.add(name, built)
    }

    /// Adds a field of time-ranged media fragments (written by the
    /// streaming verbs, not by `append_many`).
    pub fn fragment(self, name: &str, mime: &str) -> Self {
        let spec = FieldSpec::Fragment {
            mime: mime.to_owned(),
        };
        let built = spec
            .validate()
            .map(|()| SchemaField { spec, tag: None })
            .map_err(|i| DatasetError::InvalidSchema {
                reason: format!("field {name:?}: {}", i.detail),
            });
        self.add(name, built)
    }

    /// Sets the modality tag of an already added field.
    pub fn tag(mut self, name: &str, tag: &str) -> Self {
        if self.error.is_some() {
            return self;
        }
        match (parse_tag(name, Some(tag)), self.fields.get_mut(name)) {
            (Ok(parsed), Some(field)) => field.tag = parsed,
            (Err(e), _) => self.error = Some(e),
            (Ok(_), None) => {
                self.error = Some(DatasetError::InvalidSchema {
                    reason: format!("field {name:?} is not defined, so it cannot be tagged"),
                })
            }
        }
        self
    }

    /// The schema, or the first error met.
    pub fn build(self) -> Result<Schema, DatasetError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.fields.is_empty() {
            return Err(DatasetError::InvalidSchema {
                reason: "a schema needs at least one field".to_owned(),
            });
        }
        let schema = Schema {
            fields: self.fields,
        };
        schema
            .validate()
            .map_err(|i| DatasetError::InvalidSchema { reason: i.detail })?;
        Ok(schema)
    }
}

/// Field names: `[a-z_][a-z0-9_]*`, 1 to 64 bytes, not starting with `_`
/// followed by nothing else (`_` alone is reserved).
fn check_name(name: &str) -> Result<(), String> {
    let mut bytes = name.bytes();
    match bytes.next() {
        None => return Err("a field name must not be empty".to_owned()),
        Some(b) if b.is_ascii_lowercase() || b == b'_' => {}
        Some(_) => return Err("a field name must start with a-z or _".to_owned()),
    }
    if !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err("a field name may hold only a-z, 0-9 and _".to_owned());
    }
    if name.len() > 64 {
        return Err("a field name is at most 64 bytes".to_owned());
    }
    if name.starts_with('_') {
        return Err("names starting with _ are reserved (_anchor, _batch)".to_owned());
    }
    Ok(())
}

/// Whether `new` is a forward-compatible evolution of `old`
/// (spec/0017): every field of `old` is in `new` with the same spec, and
/// every added field can be absent from existing records (a nullable
/// scalar or a fragment field). Returns the added fields, or the reason.
pub fn check_evolution(old: &Schema, new: &Schema) -> Result<Vec<String>, DatasetError> {
    let refuse = |reason: String| DatasetError::InvalidSchema { reason };
    for (name, field) in &old.fields {
        match new.fields.get(name) {
            None => {
                return Err(refuse(format!(
                    "field {name:?} would be removed; removing a field is not a forward-compatible change"
                )))
            }
            Some(f) if f.spec != field.spec => {
                return Err(refuse(format!(
                    "field {name:?} would change from {:?} to {:?}; existing fields keep their storage",
                    field.spec, f.spec
                )))
            }
            Some(_) => {}
        }
    }
    let mut added = Vec::new();
    for (name, field) in &new.fields {
        if old.fields.contains_key(name) {
            continue;
        }
        match &field.spec {
            FieldSpec::Scalar { nullable: true, .. } | FieldSpec::Fragment { .. } => {}
            FieldSpec::Scalar { .. } => {
                return Err(refuse(format!(
                    "new field {name:?} is a required scalar; existing records have no value: make it nullable, or use add_scalar_layer"
                )))
            }
            FieldSpec::Embedding { .. } => {
                return Err(refuse(format!(
                    "new field {name:?} is an embedding; existing records have none: use add_embedding_layer"
                )))
            }
            FieldSpec::Blob { .. } => {
                return Err(refuse(format!(
                    "new field {name:?} is a required blob field; existing records have none"
                )))
            }
        }
        added.push(name.clone());
    }
    new.validate().map_err(|i| refuse(i.detail))?;
    Ok(added)
}
