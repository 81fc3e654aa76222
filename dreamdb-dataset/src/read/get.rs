//! `get`: one record by anchor.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use super::fetch::{anchor_runs, fetch_by_anchors, AnchorLocator, FieldReader, ReadCounter};
use super::{resolve_fields, FieldKind, Record, Tombstones, Value};
use crate::{DatasetError, Snapshot};

/// The record at `anchor` with the values of `fields` (`None` = every
/// readable field; `Some(&[])` = only whether the record exists), or
/// `None` when no field has a record there or it is deleted (tombstoned).
/// A record that exists but has none of the asked fields (a layer not
/// written for it, a nullable field absent) is returned with those fields
/// `Null`: existence is then checked on the other fields.
///
/// Cost per field: a scan of the track's anchor-order entries whose first
/// anchor is ≤ `anchor` (index pages, cached; runs may overlap when anchors
/// were given, so the scan cannot stop at the first match — a per-track
/// "widest run" bound would let it, see spec/0011 §4), one ranged read of
/// the covering run's anchor table, and the record's bytes (ranged for
/// blobs and embeddings, the cached segment for scalars).
pub async fn get(
    snapshot: &Snapshot,
    anchor: u64,
    fields: Option<&[&str]>,
) -> Result<Option<Record>, DatasetError> {
    let owned: Option<Vec<String>> = fields.map(|f| f.iter().map(|s| (*s).to_owned()).collect());
    let wanted = resolve_fields(snapshot, owned.as_deref())?;
    let tombstones = Tombstones::load(snapshot).await?;
    if tombstones.contains(anchor) {
        return Ok(None);
    }
    // With no field asked for, existence is checked on every field.
    let (probe, with_values) = if wanted.is_empty() {
        (resolve_fields(snapshot, None)?, false)
    } else {
        (wanted, true)
    };
    let asked: Vec<String> = probe.iter().map(|(name, _)| name.clone()).collect();
    let results = probe_fields(snapshot, anchor, probe, with_values).await?;
    if !results.iter().any(|(_, _, present)| *present) {
        if !with_values {
            return Ok(None);
        }
        let others: Vec<_> = resolve_fields(snapshot, None)?
            .into_iter()
            .filter(|(name, _)| !asked.contains(name))
            .collect();
        let exists = probe_fields(snapshot, anchor, others, false)
            .await?
            .iter()
            .any(|(_, _, present)| *present);
        if !exists {
            return Ok(None);
        }
    }
    let fields: BTreeMap<String, Value> = if with_values {
        results.into_iter().map(|(n, v, _)| (n, v)).collect()
    } else {
        BTreeMap::new()
    };
    Ok(Some(Record { anchor, fields }))
}

/// Each field's value at `anchor` (when `with_values`) and whether it has
/// a record there.
async fn probe_fields(
    snapshot: &Snapshot,
    anchor: u64,
    fields: Vec<(String, FieldKind)>,
    with_values: bool,
) -> Result<Vec<(String, Value, bool)>, DatasetError> {
    let counter = Arc::new(ReadCounter::default());
    futures::stream::iter(fields)
        .map(|(name, kind)| {
            let counter = counter.clone();
            async move {
                let reader = FieldReader::new(snapshot, &name, kind, counter);
                let runs = anchor_runs(snapshot, &name, anchor.checked_add(1)).await?;
                let locator = AnchorLocator::new(runs);
                let (column, present) =
                    fetch_by_anchors(&reader, &locator, &[anchor], with_values).await?;
                let value = column.map_or(Value::Null, |c| c.value(0));
                Ok::<_, DatasetError>((name, value, present.first().copied().unwrap_or(false)))
            }
        })
        .buffered(4)
        .try_collect()
        .await
}
