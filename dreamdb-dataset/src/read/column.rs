//! Columnar read results: [`ReadBatch`] (anchors + one [`ReadColumn`] per
//! field) — the "record batch" of `iter_stream`, and the decoded values of
//! one segment inside the read path. Values stay in flat typed vectors (no
//! per-row boxing), so Arrow arrays are built from them by moving buffers.

use std::collections::BTreeMap;

use bytes::Bytes;
use dreamdb_protocol::objects::ScalarDtype;

use super::{FieldKind, Record, Value};
use crate::batch::ScalarColumn;
use crate::DatasetError;

/// One field's values for the rows of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadColumn {
    /// Row-major vectors, `dim` per row; a row whose `valid` is false has
    /// no value (its `dim` values are zeros).
    Embedding {
        /// Dimension.
        dim: u32,
        /// `rows × dim` values.
        values: Vec<f32>,
        /// Per row: whether it has a value.
        valid: Vec<bool>,
    },
    /// One blob per row (`None`: no value).
    Blob(Vec<Option<Bytes>>),
    /// One scalar per row (`None`: null or no value).
    Scalar(ScalarColumn),
}

fn scalar_empty(dtype: ScalarDtype) -> ScalarColumn {
    match dtype {
        ScalarDtype::I64 => ScalarColumn::I64(Vec::new()),
        ScalarDtype::Timestamp => ScalarColumn::Timestamp(Vec::new()),
        ScalarDtype::F64 => ScalarColumn::F64(Vec::new()),
        ScalarDtype::Bool => ScalarColumn::Bool(Vec::new()),
        ScalarDtype::String => ScalarColumn::Str(Vec::new()),
        ScalarDtype::Categorical => ScalarColumn::Categorical(Vec::new()),
    }
}

fn mismatch() -> DatasetError {
    DatasetError::Integrity("a segment's values do not have the field's type".to_owned())
}

/// Picks `picks` out of `sources` (`None` → a missing value).
fn gather_vec<T: Clone>(
    sources: &[&Vec<Option<T>>],
    picks: &[Option<(usize, usize)>],
) -> Vec<Option<T>> {
    picks
        .iter()
        .map(|p| p.and_then(|(s, r)| sources.get(s).and_then(|v| v.get(r).cloned().flatten())))
        .collect()
}

macro_rules! gather_scalar {
    ($variant:ident, $sources:expr, $picks:expr) => {{
        let mut typed = Vec::with_capacity($sources.len());
        for s in $sources {
            match s {
                ReadColumn::Scalar(ScalarColumn::$variant(v)) => typed.push(v),
                _ => return Err(mismatch()),
            }
        }
        ScalarColumn::$variant(gather_vec(&typed, $picks))
    }};
}

impl ReadColumn {
    /// An empty column of a field's type.
    pub(crate) fn empty(kind: FieldKind) -> ReadColumn {
        match kind {
            FieldKind::Embedding { dim, .. } => ReadColumn::Embedding {
                dim,
                values: Vec::new(),
                valid: Vec::new(),
            },
            FieldKind::Blob => ReadColumn::Blob(Vec::new()),
            FieldKind::Scalar { dtype, .. } => ReadColumn::Scalar(scalar_empty(dtype)),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ReadColumn::Embedding { valid, .. } => valid.len(),
            ReadColumn::Blob(v) => v.len(),
            ReadColumn::Scalar(c) => c.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether row `i` has a value.
    pub fn is_valid(&self, i: usize) -> bool {
        match self {
            ReadColumn::Embedding { valid, .. } => valid.get(i).copied().unwrap_or(false),
            ReadColumn::Blob(v) => v.get(i).is_some_and(Option::is_some),
            ReadColumn::Scalar(c) => i < c.len() && !c.is_null(i),
        }
    }

    /// Row `i` as a [`Value`] ([`Value::Null`] when it has none).
    pub fn value(&self, i: usize) -> Value {
        if !self.is_valid(i) {
            return Value::Null;
        }
        match self {
            ReadColumn::Embedding { dim, values, .. } => {
                let d = *dim as usize;
                values
                    .get(i * d..(i + 1) * d)
                    .map_or(Value::Null, |row| Value::Embedding(row.to_vec()))
            }
            ReadColumn::Blob(v) => v.get(i).cloned().flatten().map_or(Value::Null, Value::Blob),
            ReadColumn::Scalar(c) => scalar_value(c, i),
        }
    }

    /// Gathers rows out of several columns of one field (`picks[j] =
    /// Some((source, row))`, `None` = no value), e.g. to merge-join the runs
    /// of one interval by anchor.
    pub(crate) fn gather(
        kind: FieldKind,
        sources: &[&ReadColumn],
        picks: &[Option<(usize, usize)>],
    ) -> Result<ReadColumn, DatasetError> {
        Ok(match kind {
            FieldKind::Embedding { dim, .. } => {
                let d = dim as usize;
                let mut values = Vec::with_capacity(picks.len() * d);
                let mut valid = Vec::with_capacity(picks.len());
                for pick in picks {
                    let row = pick.and_then(|(s, r)| match sources.get(s) {
                        Some(ReadColumn::Embedding {
                            values, valid, dim, ..
                        }) if *dim as usize == d && valid.get(r).copied().unwrap_or(false) => {
                            values.get(r * d..(r + 1) * d)
                        }
                        _ => None,
                    });
                    match row {
                        Some(row) => {
                            values.extend_from_slice(row);
                            valid.push(true);
                        }
                        None => {
                            values.resize(values.len() + d, 0.0);
                            valid.push(false);
                        }
                    }
                }
                ReadColumn::Embedding { dim, values, valid }
            }
            FieldKind::Blob => {
                let mut typed = Vec::with_capacity(sources.len());
                for s in sources {
                    match s {
                        ReadColumn::Blob(v) => typed.push(v),
                        _ => return Err(mismatch()),
                    }
                }
                ReadColumn::Blob(gather_vec(&typed, picks))
            }
            FieldKind::Scalar { dtype, .. } => ReadColumn::Scalar(match dtype {
                ScalarDtype::I64 => gather_scalar!(I64, sources, picks),
                ScalarDtype::Timestamp => gather_scalar!(Timestamp, sources, picks),
                ScalarDtype::F64 => gather_scalar!(F64, sources, picks),
                ScalarDtype::Bool => gather_scalar!(Bool, sources, picks),
                ScalarDtype::String => gather_scalar!(Str, sources, picks),
                ScalarDtype::Categorical => gather_scalar!(Categorical, sources, picks),
            }),
        })
    }

    /// The rows at `rows` (any order, repeats allowed), in that order.
    pub(crate) fn take(&self, rows: &[usize]) -> ReadColumn {
        match self {
            ReadColumn::Embedding { dim, values, valid } => {
                let d = *dim as usize;
                let mut out = Vec::with_capacity(rows.len() * d);
                let mut ok = Vec::with_capacity(rows.len());
                for &r in rows {
                    match values.get(r * d..(r + 1) * d) {
                        Some(row) => {
                            out.extend_from_slice(row);
                            ok.push(valid.get(r).copied().unwrap_or(false));
                        }
                        None => {
                            out.resize(out.len() + d, 0.0);
                            ok.push(false);
                        }
                    }
                }
                ReadColumn::Embedding {
                    dim: *dim,
                    values: out,
                    valid: ok,
                }
            }
            ReadColumn::Blob(v) => {
                ReadColumn::Blob(rows.iter().map(|&r| v.get(r).cloned().flatten()).collect())
            }
            ReadColumn::Scalar(c) => ReadColumn::Scalar(c.take(rows)),
        }
    }

    /// Appends `other`'s rows (same type).
    pub(crate) fn append(&mut self, other: ReadColumn) -> Result<(), DatasetError> {
        match (self, other) {
            (
                ReadColumn::Embedding { dim, values, valid },
                ReadColumn::Embedding {
                    dim: d2,
                    values: v2,
                    valid: ok2,
                },
            ) if *dim == d2 => {
                values.extend(v2);
                valid.extend(ok2);
            }
            (ReadColumn::Blob(a), ReadColumn::Blob(b)) => a.extend(b),
            (ReadColumn::Scalar(a), ReadColumn::Scalar(b)) => match (a, b) {
                (ScalarColumn::I64(a), ScalarColumn::I64(b))
                | (ScalarColumn::Timestamp(a), ScalarColumn::Timestamp(b)) => a.extend(b),
                (ScalarColumn::F64(a), ScalarColumn::F64(b)) => a.extend(b),
                (ScalarColumn::Bool(a), ScalarColumn::Bool(b)) => a.extend(b),
                (ScalarColumn::Str(a), ScalarColumn::Str(b))
                | (ScalarColumn::Categorical(a), ScalarColumn::Categorical(b)) => a.extend(b),
                _ => return Err(mismatch()),
            },
            _ => return Err(mismatch()),
        }
        Ok(())
    }
}

/// Row `i` of a scalar column as a value.
pub(crate) fn scalar_value(c: &ScalarColumn, i: usize) -> Value {
    let v = match c {
        ScalarColumn::I64(v) | ScalarColumn::Timestamp(v) => {
            v.get(i).copied().flatten().map(Value::I64)
        }
        ScalarColumn::F64(v) => v.get(i).copied().flatten().map(Value::F64),
        ScalarColumn::Bool(v) => v.get(i).copied().flatten().map(Value::Bool),
        ScalarColumn::Str(v) | ScalarColumn::Categorical(v) => {
            v.get(i).cloned().flatten().map(Value::Str)
        }
    };
    v.unwrap_or(Value::Null)
}

/// A batch of records, columnar: anchors ascending (within a batch of
/// `iter_stream`; shuffled batches are in shuffled order) and one column
/// per field asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadBatch {
    /// The records' anchors.
    pub anchors: Vec<u64>,
    /// Field → values, one per anchor.
    pub columns: BTreeMap<String, ReadColumn>,
}

impl ReadBatch {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// A field's column.
    pub fn column(&self, field: &str) -> Option<&ReadColumn> {
        self.columns.get(field)
    }

    /// Record `i`, row-wise.
    pub fn record(&self, i: usize) -> Option<Record> {
        let anchor = *self.anchors.get(i)?;
        Some(Record {
            anchor,
            fields: self
                .columns
                .iter()
                .map(|(name, c)| (name.clone(), c.value(i)))
                .collect(),
        })
    }

    /// Every record, row-wise (for small data).
    pub fn records(&self) -> Vec<Record> {
        (0..self.len()).filter_map(|i| self.record(i)).collect()
    }

    /// The rows at `rows`, in that order.
    pub(crate) fn take(&self, rows: &[usize]) -> ReadBatch {
        ReadBatch {
            anchors: rows
                .iter()
                .filter_map(|&r| self.anchors.get(r).copied())
                .collect(),
            columns: self
                .columns
                .iter()
                .map(|(n, c)| (n.clone(), c.take(rows)))
                .collect(),
        }
    }

    /// Appends `other` (same fields).
    pub(crate) fn append(&mut self, other: ReadBatch) -> Result<(), DatasetError> {
        if self.columns.is_empty() && self.anchors.is_empty() {
            *self = other;
            return Ok(());
        }
        self.anchors.extend(other.anchors);
        for (name, column) in other.columns {
            match self.columns.get_mut(&name) {
                Some(mine) => mine.append(column)?,
                None => return Err(mismatch()),
            }
        }
        Ok(())
    }
}
