//! The scalar filter of `query` (spec/0011): a conjunction of predicates
//! on scalar fields — `field == value`, `field in [values]`, and numeric
//! ranges. There is no scalar index yet: a filter is evaluated by fetching
//! the filtered fields' values for the candidate anchors (see
//! `query` for when and what that costs).

use std::cmp::Ordering;
use std::ops::Bound;

use dreamdb_protocol::objects::ScalarDtype;

use super::{field_kind, FieldKind, Value};
use crate::{DatasetError, Snapshot};

/// One condition on one scalar field. A record without a value (null)
/// satisfies only `Eq(field, Value::Null)` / `In` lists containing
/// [`Value::Null`]; every range excludes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// `field == value`.
    Eq {
        /// The scalar field.
        field: String,
        /// The value (its type must fit the field's dtype).
        value: Value,
    },
    /// `field` is one of `values`.
    In {
        /// The scalar field.
        field: String,
        /// The accepted values.
        values: Vec<Value>,
    },
    /// `low ≤/< field ≤/< high` on a numeric field (i64, f64, timestamp);
    /// bounds are `I64` or `F64` values.
    Range {
        /// The numeric field.
        field: String,
        /// Lower bound.
        low: Bound<Value>,
        /// Upper bound.
        high: Bound<Value>,
    },
}

impl Predicate {
    /// The field tested.
    pub fn field(&self) -> &str {
        match self {
            Predicate::Eq { field, .. }
            | Predicate::In { field, .. }
            | Predicate::Range { field, .. } => field,
        }
    }

    /// Whether `value` (the record's value of the field) satisfies it.
    pub fn matches(&self, value: &Value) -> bool {
        match self {
            Predicate::Eq { value: want, .. } => values_equal(value, want),
            Predicate::In { values, .. } => values.iter().any(|w| values_equal(value, w)),
            Predicate::Range { low, high, .. } => {
                if matches!(value, Value::Null) {
                    return false;
                }
                let above = match low {
                    Bound::Unbounded => true,
                    Bound::Included(b) => {
                        matches!(compare(value, b), Some(Ordering::Greater | Ordering::Equal))
                    }
                    Bound::Excluded(b) => matches!(compare(value, b), Some(Ordering::Greater)),
                };
                let below = match high {
                    Bound::Unbounded => true,
                    Bound::Included(b) => {
                        matches!(compare(value, b), Some(Ordering::Less | Ordering::Equal))
                    }
                    Bound::Excluded(b) => matches!(compare(value, b), Some(Ordering::Less)),
                };
                above && below
            }
        }
    }
}

/// Numeric comparison: i64 against i64 exactly, anything else as f64.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::I64(x), Value::I64(y)) => Some(x.cmp(y)),
        (Value::I64(x), Value::F64(y)) => (*x as f64).partial_cmp(y),
        (Value::F64(x), Value::I64(y)) => x.partial_cmp(&(*y as f64)),
        (Value::F64(x), Value::F64(y)) => x.partial_cmp(y),
        _ => None,
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::I64(_) | Value::F64(_), Value::I64(_) | Value::F64(_)) => {
            compare(a, b) == Some(Ordering::Equal)
        }
        _ => a == b,
    }
}

/// A conjunction of [`Predicate`]s (all must hold). The empty filter
/// accepts everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// The predicates.
    pub predicates: Vec<Predicate>,
}

impl Filter {
    /// The empty filter.
    pub fn new() -> Self {
        Filter::default()
    }

    /// Adds `field == value`.
    pub fn eq(mut self, field: &str, value: impl Into<Value>) -> Self {
        self.predicates.push(Predicate::Eq {
            field: field.to_owned(),
            value: value.into(),
        });
        self
    }

    /// Adds `field in values`.
    pub fn is_in<V: Into<Value>>(
        mut self,
        field: &str,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        self.predicates.push(Predicate::In {
            field: field.to_owned(),
            values: values.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Adds a numeric range, e.g. `range("score", 0.5..=1.0)` or
    /// `range("year", 2020i64..)`.
    pub fn range<V: Into<Value> + Clone>(
        mut self,
        field: &str,
        range: impl std::ops::RangeBounds<V>,
    ) -> Self {
        let map = |b: Bound<&V>| match b {
            Bound::Included(v) => Bound::Included(v.clone().into()),
            Bound::Excluded(v) => Bound::Excluded(v.clone().into()),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.predicates.push(Predicate::Range {
            field: field.to_owned(),
            low: map(range.start_bound()),
            high: map(range.end_bound()),
        });
        self
    }

    /// Whether there is nothing to test.
    pub fn is_empty(&self) -> bool {
        self.predicates.is_empty()
    }

    /// The distinct fields tested, in first-use order.
    pub fn fields(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.predicates {
            if !out.iter().any(|f| f == p.field()) {
                out.push(p.field().to_owned());
            }
        }
        out
    }

    /// Checks every predicate against the schema: the field exists and is
    /// a scalar, values fit its dtype, ranges are on numeric fields with
    /// numeric, non-NaN bounds.
    pub fn validate(&self, snapshot: &Snapshot) -> Result<(), DatasetError> {
        for p in &self.predicates {
            let name = p.field();
            let FieldKind::Scalar { dtype, .. } = field_kind(snapshot, name)? else {
                return Err(DatasetError::invalid(
                    name,
                    "a filter tests scalar fields only",
                ));
            };
            let fits = |v: &Value| match (dtype, v) {
                (_, Value::Null) => true,
                (ScalarDtype::I64 | ScalarDtype::Timestamp, Value::I64(_)) => true,
                (ScalarDtype::I64 | ScalarDtype::Timestamp | ScalarDtype::F64, Value::F64(x)) => {
                    !x.is_nan()
                }
                (ScalarDtype::F64, Value::I64(_)) => true,
                (ScalarDtype::Bool, Value::Bool(_)) => true,
                (ScalarDtype::String | ScalarDtype::Categorical, Value::Str(_)) => true,
                _ => false,
            };
            let bad = |v: &Value| {
                DatasetError::invalid(
                    name,
                    format!("filter value {v:?} does not fit the field's dtype {dtype:?}"),
                )
            };
            match p {
                Predicate::Eq { value, .. } => {
                    if !fits(value) {
                        return Err(bad(value));
                    }
                }
                Predicate::In { values, .. } => {
                    if let Some(v) = values.iter().find(|v| !fits(v)) {
                        return Err(bad(v));
                    }
                }
                Predicate::Range { low, high, .. } => {
                    if !matches!(
                        dtype,
                        ScalarDtype::I64 | ScalarDtype::F64 | ScalarDtype::Timestamp
                    ) {
                        return Err(DatasetError::invalid(
                            name,
                            format!("a range needs a numeric field, not {dtype:?}"),
                        ));
                    }
                    for b in [low, high] {
                        if let Bound::Included(v) | Bound::Excluded(v) = b {
                            if !matches!(v, Value::I64(_) | Value::F64(_)) || !fits(v) {
                                return Err(bad(v));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
