//! Columnar read results: [`ReadBatch`] (anchors + one [`ReadColumn`] per
//! field) — the "record batch" of `iter_stream`, and the decoded values of
//! one segment inside the read path. Values stay in flat typed vectors (no
//! per-row boxing), so Arrow arrays are built from them by moving buffers.
//! Embedding values are an Arrow [`ScalarBuffer`]: cutting a loaded unit
//! into batches of consecutive rows slices it without copying, and the
//! Arrow array of a batch shares the slice.

use std::collections::BTreeMap;

use arrow_buffer::ScalarBuffer;
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
        /// `rows × dim` values (shared, immutable; slices are free).
        values: ScalarBuffer<f32>,
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

/// `rows` as a range when they are consecutive, ascending and all below
/// `len`.
fn consecutive(rows: &[usize], len: usize) -> Option<std::ops::Range<usize>> {
    let first = *rows.first()?;
    let end = first.checked_add(rows.len())?;
    (end <= len && rows.iter().enumerate().all(|(j, &r)| r == first + j)).then_some(first..end)
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
                values: ScalarBuffer::from(Vec::new()),
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
                super::huge_pages::advise_huge_pages(&mut values);
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
                ReadColumn::Embedding {
                    dim,
                    values: values.into(),
                    valid,
                }
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
                if let Some(range) = consecutive(rows, valid.len().min(values.len() / d.max(1))) {
                    // Consecutive rows (cutting a unit into batches): a
                    // slice of the same buffer, no copy.
                    return ReadColumn::Embedding {
                        dim: *dim,
                        values: values.slice(range.start * d, range.len() * d),
                        valid: valid[range].to_vec(),
                    };
                }
                let mut out = Vec::with_capacity(rows.len() * d);
                super::huge_pages::advise_huge_pages(&mut out);
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
                    values: out.into(),
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
                if valid.is_empty() {
                    *values = v2;
                } else {
                    let mut joined = Vec::with_capacity(values.len() + v2.len());
                    joined.extend_from_slice(values);
                    joined.extend_from_slice(&v2);
                    *values = joined.into();
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn column(rows: usize) -> ReadColumn {
        ReadColumn::Embedding {
            dim: 2,
            values: (0..2 * rows).map(|v| v as f32).collect::<Vec<f32>>().into(),
            valid: (0..rows).map(|r| r != 3).collect(),
        }
    }

    fn parts(c: &ReadColumn) -> (&ScalarBuffer<f32>, &[bool]) {
        match c {
            ReadColumn::Embedding { values, valid, .. } => (values, valid),
            _ => panic!("not an embedding column"),
        }
    }

    #[test]
    fn consecutive_rows_are_a_slice_of_the_same_buffer() {
        let whole = column(6);
        let cut = whole.take(&[2, 3, 4]);
        let (values, valid) = parts(&cut);
        assert_eq!(&values[..], &[4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!(valid, &[true, false, true]);
        // Shares memory with the unit's buffer: no copy.
        assert_eq!(values.as_ptr(), parts(&whole).0[4..].as_ptr());
    }

    #[test]
    fn other_row_sets_are_gathered_and_out_of_range_rows_have_no_value() {
        let whole = column(6);
        for rows in [&[4usize, 2][..], &[0, 2], &[5, 6]] {
            let cut = whole.take(rows);
            let (values, valid) = parts(&cut);
            let expect: Vec<f32> = rows
                .iter()
                .flat_map(|&r| {
                    if r < 6 {
                        vec![2.0 * r as f32, 2.0 * r as f32 + 1.0]
                    } else {
                        vec![0.0, 0.0]
                    }
                })
                .collect();
            assert_eq!(&values[..], &expect[..]);
            assert_eq!(valid.len(), rows.len());
            assert_eq!(valid.last(), Some(&(rows[rows.len() - 1] < 6)));
        }
    }

    #[test]
    fn append_joins_rows_in_order() {
        let mut head = column(6).take(&[4, 5]);
        head.append(column(6).take(&[0, 1, 2, 3])).unwrap();
        let (values, valid) = parts(&head);
        assert_eq!(
            &values[..],
            &[8.0, 9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
        );
        assert_eq!(valid, &[true, true, true, true, true, false]);
        let mut empty = ReadColumn::empty(FieldKind::Embedding {
            dim: 2,
            metric: crate::schema::Metric::L2,
            compressed: false,
            rerank: false,
        });
        empty.append(column(2)).unwrap();
        assert_eq!(parts(&empty).0.len(), 4);
    }
}
