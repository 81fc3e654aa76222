//! `compare_refs`: one field across several versions, as a wide table.
//!
//! The table has `_anchor` (the union of the versions' live anchors,
//! ascending) and one column `field@name` per version, null where that
//! version has no live record (or no value) at the anchor. Each version's
//! field is read with `iter_stream` (only that field), so the cost is one
//! pass over the field in every version; the result holds the whole
//! field of every version in memory (this is a report, not a stream).
//!
//! Summary per version (against the first one, over the anchors where both
//! have a value — "paired"):
//!
//! - numeric scalars (i64, f64, timestamp; bool as 0/1): the mean, and the
//!   mean of the paired differences `value − first`;
//! - embeddings: the mean cosine similarity to the first version's vector;
//! - every kind: how many paired values differ from the first version's.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema as ArrowSchema};
use futures::TryStreamExt;

use super::arrow::{arrow_field, column_array, ANCHOR_COLUMN};
use super::column::{ReadBatch, ReadColumn};
use super::iter::{iter_stream, IterOptions};
use super::{field_kind, FieldKind, Value};
use crate::{DatasetError, Snapshot};

/// Summary statistics of one version's values of the compared field.
#[derive(Debug, Clone, PartialEq)]
pub struct RefSummary {
    /// The version's name as given.
    pub name: String,
    /// Anchors with a value in this version.
    pub values: usize,
    /// Anchors with a value in both this version and the first.
    pub paired: usize,
    /// Mean of the values (numeric scalars only).
    pub mean: Option<f64>,
    /// Mean of `value − first's value` over paired anchors (numeric
    /// scalars; `None` for the first version).
    pub mean_diff_vs_first: Option<f64>,
    /// Mean cosine similarity to the first version's vector over paired
    /// anchors (embeddings; `None` for the first version).
    pub mean_cosine_vs_first: Option<f64>,
    /// Paired anchors whose value differs from the first version's.
    pub changed_vs_first: usize,
}

/// The wide table and the summaries, in the order the versions were given.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// `_anchor`, then `field@name` per version.
    pub table: RecordBatch,
    /// One summary per version.
    pub summaries: Vec<RefSummary>,
}

fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::I64(x) => Some(*x as f64),
        Value::F64(x) => Some(*x),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn cosine(a: &[f32], b: &[f32]) -> Option<f64> {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    (na > 0.0 && nb > 0.0).then(|| dot / (na * nb))
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for v in values {
        sum += v;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

/// Compares `field` across `snapshots` (`(name, snapshot)`, names unique;
/// the first is the baseline of the summaries).
pub async fn compare_refs(
    snapshots: &[(&str, Snapshot)],
    field: &str,
) -> Result<Comparison, DatasetError> {
    if snapshots.is_empty() {
        return Err(DatasetError::invalid("_compare", "no version to compare"));
    }
    let mut names = BTreeSet::new();
    for (name, _) in snapshots {
        if !names.insert(*name) {
            return Err(DatasetError::invalid(
                "_compare",
                format!("version name {name:?} given twice"),
            ));
        }
    }
    // The field's kind: from the versions that have it; all must agree.
    let mut kind: Option<FieldKind> = None;
    for (name, s) in snapshots {
        if !s.schema().fields.contains_key(field) {
            continue;
        }
        let k = field_kind(s, field)?;
        match kind {
            None => kind = Some(k),
            Some(prev) if prev != k => {
                return Err(DatasetError::invalid(
                    field,
                    format!("version {name:?} stores the field differently ({k:?} vs {prev:?})"),
                ))
            }
            Some(_) => {}
        }
    }
    let Some(kind) = kind else {
        return Err(DatasetError::invalid(
            field,
            "no compared version has this field",
        ));
    };
    // Each version's anchors and values.
    let mut per_ref: Vec<ReadBatch> = Vec::with_capacity(snapshots.len());
    for (_, s) in snapshots {
        let mut all = ReadBatch::default();
        if s.schema().fields.contains_key(field) {
            let stream = iter_stream(
                s,
                IterOptions::default().fields(&[field]).batch_size(65_536),
            )?;
            let batches: Vec<ReadBatch> = stream.try_collect().await?;
            for b in batches {
                all.append(b)?;
            }
        }
        if all.columns.is_empty() {
            all.columns
                .insert(field.to_owned(), ReadColumn::empty(kind));
        }
        per_ref.push(all);
    }
    let union: Vec<u64> = per_ref
        .iter()
        .flat_map(|b| b.anchors.iter().copied())
        .collect::<BTreeSet<u64>>()
        .into_iter()
        .collect();
    // Align every version to the union.
    let mut aligned: Vec<ReadColumn> = Vec::with_capacity(per_ref.len());
    for b in &per_ref {
        let source = b
            .columns
            .get(field)
            .ok_or_else(|| DatasetError::Integrity("compare: missing column".into()))?;
        let picks: Vec<Option<(usize, usize)>> = union
            .iter()
            .map(|a| b.anchors.binary_search(a).ok().map(|row| (0, row)))
            .collect();
        aligned.push(ReadColumn::gather(kind, &[source], &picks)?);
    }
    // Summaries.
    let first = aligned.first();
    let mut summaries = Vec::with_capacity(aligned.len());
    for (i, ((name, _), column)) in snapshots.iter().zip(&aligned).enumerate() {
        let values: Vec<Value> = (0..union.len()).map(|r| column.value(r)).collect();
        let base: Vec<Value> = match first {
            Some(f) if i > 0 => (0..union.len()).map(|r| f.value(r)).collect(),
            _ => values.clone(),
        };
        let pairs: Vec<(&Value, &Value)> = values
            .iter()
            .zip(&base)
            .filter(|(v, b)| !matches!(v, Value::Null) && !matches!(b, Value::Null))
            .collect();
        let is_numeric = matches!(
            kind,
            FieldKind::Scalar {
                dtype: dreamdb_protocol::objects::ScalarDtype::I64
                    | dreamdb_protocol::objects::ScalarDtype::F64
                    | dreamdb_protocol::objects::ScalarDtype::Bool
                    | dreamdb_protocol::objects::ScalarDtype::Timestamp,
                ..
            }
        );
        let is_embedding = matches!(kind, FieldKind::Embedding { .. });
        summaries.push(RefSummary {
            name: (*name).to_owned(),
            values: values.iter().filter(|v| !matches!(v, Value::Null)).count(),
            paired: pairs.len(),
            mean: if is_numeric {
                mean(values.iter().filter_map(numeric))
            } else {
                None
            },
            mean_diff_vs_first: if is_numeric && i > 0 {
                mean(
                    pairs
                        .iter()
                        .filter_map(|(v, b)| Some(numeric(v)? - numeric(b)?)),
                )
            } else {
                None
            },
            mean_cosine_vs_first: if is_embedding && i > 0 {
                mean(pairs.iter().filter_map(|(v, b)| match (v, b) {
                    (Value::Embedding(x), Value::Embedding(y)) => {
                        cosine(x.as_slice(), y.as_slice())
                    }
                    _ => None,
                }))
            } else {
                None
            },
            changed_vs_first: pairs.iter().filter(|(v, b)| v != b).count(),
        });
    }
    // The wide table.
    let mut fields = vec![Field::new(ANCHOR_COLUMN, DataType::UInt64, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from(union))];
    for ((name, _), column) in snapshots.iter().zip(aligned) {
        let f = arrow_field(&format!("{field}@{name}"), kind).with_nullable(true);
        arrays.push(column_array(&f, column)?);
        fields.push(f);
    }
    let table = RecordBatch::try_new(Arc::new(ArrowSchema::new(fields)), arrays)
        .map_err(|e| DatasetError::Protocol(format!("arrow: {e}")))?;
    Ok(Comparison { table, summaries })
}
