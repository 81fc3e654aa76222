//! [`Batch`]: columnar input of `append_many`, and its validation against
//! a schema before anything is written.
//!
//! ```
//! use bytes::Bytes;
//! use dreamdb_dataset::batch::{Batch, ScalarColumn};
//!
//! let batch = Batch::new(2)
//!     .embeddings("embedding", 3, vec![0.1, 0.2, 0.3, 0.3, 0.2, 0.1])
//!     .blobs("image", vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")])
//!     .scalars("label", ScalarColumn::Categorical(vec![Some("cat".into()), Some("dog".into())]));
//! assert_eq!(batch.rows(), 2);
//! ```
//!
//! A batch holds one column per field. Validation (`Batch::validate`)
//! refuses, naming the field and the row: an unknown field, a column of the
//! wrong kind or type, a ragged column, a wrong embedding dimension, NaN or
//! ±inf (and a zero vector under cosine), a missing required field, a blob
//! over the field's `max_bytes`, and duplicate anchors. Anchors that already
//! exist in the dataset are checked by the append itself (they need the
//! tip).

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use dreamdb_protocol::objects::{FieldSpec, Metric, ScalarDtype, Schema};

use crate::DatasetError;

/// One scalar column: one optional value per row (`None` = null).
#[derive(Debug, Clone, PartialEq)]
pub enum ScalarColumn {
    /// Signed integers.
    I64(Vec<Option<i64>>),
    /// Doubles (finite).
    F64(Vec<Option<f64>>),
    /// Booleans.
    Bool(Vec<Option<bool>>),
    /// Text.
    Str(Vec<Option<String>>),
    /// Labels out of a small set.
    Categorical(Vec<Option<String>>),
    /// Nanoseconds since the Unix epoch.
    Timestamp(Vec<Option<i64>>),
}

impl ScalarColumn {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            ScalarColumn::I64(v) | ScalarColumn::Timestamp(v) => v.len(),
            ScalarColumn::F64(v) => v.len(),
            ScalarColumn::Bool(v) => v.len(),
            ScalarColumn::Str(v) | ScalarColumn::Categorical(v) => v.len(),
        }
    }

    /// Whether the column has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored dtype this column fits.
    pub fn dtype(&self) -> ScalarDtype {
        match self {
            ScalarColumn::I64(_) => ScalarDtype::I64,
            ScalarColumn::F64(_) => ScalarDtype::F64,
            ScalarColumn::Bool(_) => ScalarDtype::Bool,
            ScalarColumn::Str(_) => ScalarDtype::String,
            ScalarColumn::Categorical(_) => ScalarDtype::Categorical,
            ScalarColumn::Timestamp(_) => ScalarDtype::Timestamp,
        }
    }

    /// Whether row `i` is null.
    pub fn is_null(&self, i: usize) -> bool {
        match self {
            ScalarColumn::I64(v) | ScalarColumn::Timestamp(v) => {
                v.get(i).is_none_or(Option::is_none)
            }
            ScalarColumn::F64(v) => v.get(i).is_none_or(Option::is_none),
            ScalarColumn::Bool(v) => v.get(i).is_none_or(Option::is_none),
            ScalarColumn::Str(v) | ScalarColumn::Categorical(v) => {
                v.get(i).is_none_or(Option::is_none)
            }
        }
    }

    /// The rows at `order` (a permutation or subset), in that order.
    pub(crate) fn take(&self, order: &[usize]) -> ScalarColumn {
        fn pick<T: Clone>(v: &[T], order: &[usize]) -> Vec<T> {
            order.iter().filter_map(|&i| v.get(i).cloned()).collect()
        }
        match self {
            ScalarColumn::I64(v) => ScalarColumn::I64(pick(v, order)),
            ScalarColumn::F64(v) => ScalarColumn::F64(pick(v, order)),
            ScalarColumn::Bool(v) => ScalarColumn::Bool(pick(v, order)),
            ScalarColumn::Str(v) => ScalarColumn::Str(pick(v, order)),
            ScalarColumn::Categorical(v) => ScalarColumn::Categorical(pick(v, order)),
            ScalarColumn::Timestamp(v) => ScalarColumn::Timestamp(pick(v, order)),
        }
    }
}

/// One column of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Row-major f32 vectors, `dim` per row.
    Embedding {
        /// Dimension of each row.
        dim: u32,
        /// `rows × dim` values.
        values: Vec<f32>,
    },
    /// One blob per row.
    Blob(Vec<Bytes>),
    /// One scalar per row.
    Scalar(ScalarColumn),
}

impl Column {
    fn kind(&self) -> &'static str {
        match self {
            Column::Embedding { .. } => "embedding",
            Column::Blob(_) => "blob",
            Column::Scalar(_) => "scalar",
        }
    }
}

/// Columnar input of `append_many`: `rows` records, optional anchors, one
/// column per field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    rows: usize,
    anchors: Option<Vec<u64>>,
    columns: BTreeMap<String, Column>,
    duplicate_columns: Vec<String>,
}

impl Batch {
    /// A batch of `rows` records with no columns yet.
    pub fn new(rows: usize) -> Self {
        Batch {
            rows,
            ..Batch::default()
        }
    }

    /// Gives the records' anchors (else the append assigns them): one per
    /// row, unique.
    pub fn anchors(mut self, anchors: Vec<u64>) -> Result<Self, DatasetError> {
        if anchors.len() != self.rows {
            return Err(DatasetError::invalid(
                "_anchor",
                format!(
                    "{} anchors given for a batch of {} rows",
                    anchors.len(),
                    self.rows
                ),
            ));
        }
        let mut seen = HashSet::with_capacity(anchors.len());
        for (row, anchor) in anchors.iter().enumerate() {
            if !seen.insert(*anchor) {
                let first = anchors.iter().position(|a| a == anchor).unwrap_or(row);
                return Err(DatasetError::invalid(
                    "_anchor",
                    format!("anchor {anchor} appears twice in the batch (rows {first} and {row})"),
                ));
            }
        }
        self.anchors = Some(anchors);
        Ok(self)
    }

    fn put(mut self, field: &str, column: Column) -> Self {
        if self.columns.insert(field.to_owned(), column).is_some() {
            self.duplicate_columns.push(field.to_owned());
        }
        self
    }

    /// Adds an embedding column: `rows × dim` values, row-major.
    pub fn embeddings(self, field: &str, dim: u32, values: Vec<f32>) -> Self {
        self.put(field, Column::Embedding { dim, values })
    }

    /// Adds a blob column.
    pub fn blobs(self, field: &str, blobs: Vec<Bytes>) -> Self {
        self.put(field, Column::Blob(blobs))
    }

    /// Adds a scalar column.
    pub fn scalars(self, field: &str, column: ScalarColumn) -> Self {
        self.put(field, Column::Scalar(column))
    }

    /// Number of records.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The given anchors, if any.
    pub fn given_anchors(&self) -> Option<&[u64]> {
        self.anchors.as_deref()
    }

    /// The columns by field.
    pub fn columns(&self) -> &BTreeMap<String, Column> {
        &self.columns
    }

    /// Checks the batch against `schema` (everything that does not need the
    /// dataset's tip). The first problem found is returned, naming the
    /// field and, where it applies, the row.
    pub fn validate(&self, schema: &Schema) -> Result<(), DatasetError> {
        if self.rows == 0 {
            return Err(DatasetError::invalid(
                "_batch",
                "a batch holds at least one row",
            ));
        }
        if u32::try_from(self.rows).is_err() {
            return Err(DatasetError::invalid(
                "_batch",
                format!("{} rows exceed the 2^32 records of one segment", self.rows),
            ));
        }
        if let Some(field) = self.duplicate_columns.first() {
            return Err(DatasetError::invalid(
                field.as_str(),
                "the column is given twice",
            ));
        }
        if let Some(anchors) = &self.anchors {
            if anchors.len() != self.rows {
                return Err(DatasetError::invalid(
                    "_anchor",
                    format!("{} anchors for {} rows", anchors.len(), self.rows),
                ));
            }
        }
        for (name, column) in &self.columns {
            let Some(field) = schema.fields.get(name) else {
                let known: Vec<&str> = schema.fields.keys().map(String::as_str).collect();
                return Err(DatasetError::invalid(
                    name.as_str(),
                    format!("unknown field (the schema has {known:?})"),
                ));
            };
            validate_column(name, &field.spec, column, self.rows)?;
        }
        for (name, field) in &schema.fields {
            if self.columns.contains_key(name) {
                continue;
            }
            let required = match &field.spec {
                FieldSpec::Embedding { .. } | FieldSpec::Blob { .. } => true,
                FieldSpec::Scalar { nullable, .. } => !nullable,
                FieldSpec::Fragment { .. } => false,
            };
            if required {
                return Err(DatasetError::invalid(
                    name.as_str(),
                    "required field missing from the batch",
                ));
            }
        }
        Ok(())
    }
}

fn validate_column(
    name: &str,
    spec: &FieldSpec,
    column: &Column,
    rows: usize,
) -> Result<(), DatasetError> {
    let bad = |reason: String| Err(DatasetError::invalid(name, reason));
    match (spec, column) {
        (
            FieldSpec::Embedding {
                dim: want, metric, ..
            },
            Column::Embedding { dim, values },
        ) => {
            if dim != want {
                return bad(format!(
                    "wrong dimension: the field has dim {want}, the column {dim}"
                ));
            }
            let dim = *dim as usize;
            if values.len() != rows * dim {
                return bad(format!(
                    "ragged column: {} values, expected {rows} rows × {dim}",
                    values.len()
                ));
            }
            for (row, v) in values.chunks_exact(dim).enumerate() {
                if let Some(c) = v.iter().position(|x| !x.is_finite()) {
                    return bad(format!(
                        "row {row}, component {c}: {} is not a finite number",
                        v[c]
                    ));
                }
                if *metric == Metric::Cosine && v.iter().all(|x| *x == 0.0) {
                    return bad(format!("row {row}: a zero vector has no cosine direction"));
                }
            }
            Ok(())
        }
        (FieldSpec::Blob { max_bytes, .. }, Column::Blob(blobs)) => {
            if blobs.len() != rows {
                return bad(format!(
                    "ragged column: {} blobs for {rows} rows",
                    blobs.len()
                ));
            }
            if let Some((row, b)) = blobs
                .iter()
                .enumerate()
                .find(|(_, b)| b.len() as u64 > *max_bytes)
            {
                return bad(format!(
                    "row {row}: blob of {} bytes exceeds the field's max_bytes {max_bytes}",
                    b.len()
                ));
            }
            Ok(())
        }
        (FieldSpec::Scalar { dtype, nullable }, Column::Scalar(values)) => {
            if values.dtype() != *dtype {
                return bad(format!(
                    "a {:?} column for a {dtype:?} field",
                    values.dtype()
                ));
            }
            if values.len() != rows {
                return bad(format!(
                    "ragged column: {} values for {rows} rows",
                    values.len()
                ));
            }
            if !nullable {
                if let Some(row) = (0..rows).find(|&i| values.is_null(i)) {
                    return bad(format!("row {row}: null in a field that is not nullable"));
                }
            }
            if let ScalarColumn::F64(v) = values {
                if let Some(row) = v.iter().position(|x| x.is_some_and(|x| !x.is_finite())) {
                    return bad(format!("row {row}: the value is not a finite number"));
                }
            }
            Ok(())
        }
        (FieldSpec::Fragment { .. }, _) => {
            bad("fragment fields are written by the streaming verbs, not append_many".to_owned())
        }
        (spec, column) => bad(format!(
            "a {} column for a field of kind {}",
            column.kind(),
            spec_kind(spec)
        )),
    }
}

/// The kind of a field spec, as text.
pub(crate) fn spec_kind(spec: &FieldSpec) -> &'static str {
    match spec {
        FieldSpec::Embedding { .. } => "embedding",
        FieldSpec::Blob { .. } => "blob",
        FieldSpec::Scalar { .. } => "scalar",
        FieldSpec::Fragment { .. } => "fragment",
    }
}
