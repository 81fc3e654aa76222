//! Record verbs: `get`, `query`, `delete`, `compare-refs`, and what every
//! data verb shares — opening SDK handles on the CLI's backend, version
//! selectors, values as JSON, and the `--filter` expression.
//!
//! Reads take `--ref VERSION` (a branch, tag or Manifest hash, resolved
//! like `log` and `inspect` do) and read that one version pinned; writes
//! take `--ref BRANCH` and move it by compare-and-swap through the SDK.
//!
//! **Filter expressions** (`query --filter`): predicates joined by `and`
//! (or `&&`), each `FIELD OP VALUE` with OP one of `==`, `=`, `<`, `<=`,
//! `>`, `>=`, or `FIELD in [V, ...]`. Values are JSON literals (`3`,
//! `0.5`, `true`, `null`, `"two words"`) or bare words (text); a value is
//! read as the field's type (`label == 7` on a text field is the text
//! `"7"`). The SDK checks the result against the schema.

use std::ops::Bound;
use std::path::PathBuf;

use clap::Args;
use dreamdb_dataset::dataset::{OpenOptions, Version};
use dreamdb_dataset::read::{compare_refs, Filter, Predicate, QueryRequest, Value as DValue};
use dreamdb_dataset::{Dataset, Snapshot};
use dreamdb_protocol::objects::{FieldSpec, ScalarDtype, Schema};
use serde_json::{json, Map, Value};

use crate::cmd_export::{write_table, TableFormat};
use crate::ctx::{resolve, Ctx, Resolved};
use crate::exit::{CliError, ERROR, OK};
use crate::import_read::read_vector_file;
use crate::out::{table, text};

/// The branch a write moves.
#[derive(Debug, Args)]
pub struct WriteTarget {
    /// The branch written to.
    #[arg(long = "ref", value_name = "BRANCH", default_value = "main")]
    pub reference: String,
    /// Writer identity recorded in the Manifest.
    #[arg(long, env = "DREAMDB_WRITER", default_value = "dreamdb-cli")]
    pub writer: String,
}

/// The version a read reads.
#[derive(Debug, Args)]
pub struct ReadTarget {
    /// The version read: branch, tag or Manifest hash.
    #[arg(
        long = "ref",
        visible_alias = "at",
        value_name = "VERSION",
        default_value = "main"
    )]
    pub reference: String,
}

/// `dreamdb get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The record's anchor.
    #[arg(long)]
    pub anchor: u64,
    /// Fields to return (comma-separated; default every readable field).
    #[arg(long, value_delimiter = ',')]
    pub fields: Option<Vec<String>>,
    #[command(flatten)]
    pub target: ReadTarget,
}

/// `dreamdb query`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("vector").required(true)))]
pub struct QueryArgs {
    /// The embedding field searched (default: the schema's only one).
    #[arg(long)]
    pub field: Option<String>,
    /// The query vector as a JSON array.
    #[arg(long, value_name = "JSON", group = "vector")]
    pub vector_json: Option<String>,
    /// The query vector: row --row of a 2-D float32 .npy file.
    #[arg(long, value_name = "FILE", group = "vector")]
    pub vector_npy: Option<PathBuf>,
    /// The query vector: row --row of an .fvecs file.
    #[arg(long, value_name = "FILE", group = "vector")]
    pub vector_fvecs: Option<PathBuf>,
    /// The row of --vector-npy / --vector-fvecs.
    #[arg(long, default_value_t = 0)]
    pub row: usize,
    /// Results wanted.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Cells probed.
    #[arg(long, default_value_t = 8)]
    pub nprobe: usize,
    /// Rerank k × R candidates exactly (0: RaBitQ estimates).
    #[arg(long, default_value_t = 4)]
    pub refine: usize,
    /// Only records satisfying this scalar filter, e.g. `score >= 0.5 and
    /// label in [cat, dog]`.
    ///
    /// Predicates joined by `and` (or `&&`): `FIELD == V` (or `=`),
    /// `FIELD < V`, `<=`, `>`, `>=`, `FIELD in [V, ...]`. Values are JSON
    /// literals (3, 0.5, true, null, "two words") or bare words, read as
    /// the field's type.
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Fields returned with each hit (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub fields: Vec<String>,
    #[command(flatten)]
    pub target: ReadTarget,
}

/// `dreamdb delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Anchors of the records to delete (repeatable or comma-separated).
    #[arg(long, required = true, num_args = 1.., value_delimiter = ',')]
    pub anchor: Vec<u64>,
    /// Why (recorded in every tombstone).
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub target: WriteTarget,
}

/// `dreamdb compare-refs`.
#[derive(Debug, Args)]
pub struct CompareRefsArgs {
    /// The field compared.
    #[arg(long)]
    pub field: String,
    /// The versions (branch, tag or hash); the first is the baseline.
    #[arg(required = true, num_args = 1..)]
    pub refs: Vec<String>,
    /// Write the wide table (`_anchor`, `FIELD@REF`...) to this file.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The table's format (default from the extension: .csv → csv, else arrow).
    #[arg(long, value_enum)]
    pub format: Option<TableFormat>,
}

/// `refs/<b>` or `<b>` → `<b>`.
pub fn branch_name(spec: &str) -> String {
    spec.strip_prefix("refs/").unwrap_or(spec).to_owned()
}

/// A handle following `branch` (writes move it).
pub async fn open_branch(ctx: &Ctx, target: &WriteTarget) -> Result<Dataset, CliError> {
    Ok(Dataset::open_on(
        ctx.connector.clone(),
        &ctx.backend,
        &ctx.dataset,
        OpenOptions {
            ref_name: Some(branch_name(&target.reference)),
            cache_bytes: None,
            writer: Some(target.writer.clone()),
        },
    )
    .await?)
}

/// The version `spec` names, pinned, and how it was named.
pub async fn open_version(ctx: &Ctx, spec: &str) -> Result<(Resolved, Snapshot), CliError> {
    let repo = ctx.repo()?;
    let at = resolve(&repo, spec).await?;
    let ds = Dataset::open_at_on(
        ctx.connector.clone(),
        &ctx.backend,
        &ctx.dataset,
        Version::Manifest(at.manifest),
        OpenOptions::default(),
    )
    .await?;
    let snapshot = ds.read_version().await?;
    Ok((at, snapshot))
}

/// A value as JSON: embeddings as arrays, blobs summarized as size and
/// MIME type.
pub fn value_json(schema: &Schema, field: &str, value: &DValue) -> Value {
    match value {
        DValue::Embedding(v) => json!(v),
        DValue::Blob(b) => {
            let mime = match schema.fields.get(field).map(|f| &f.spec) {
                Some(FieldSpec::Blob { mime, .. }) => mime.as_str(),
                _ => "application/octet-stream",
            };
            json!({"bytes": b.len(), "mime": mime})
        }
        DValue::I64(x) => json!(x),
        DValue::F64(x) => json!(x),
        DValue::Bool(x) => json!(x),
        DValue::Str(s) => json!(s),
        DValue::Null => Value::Null,
    }
}

fn fields_json<'a>(
    schema: &Schema,
    fields: impl IntoIterator<Item = (&'a String, &'a DValue)>,
) -> Map<String, Value> {
    fields
        .into_iter()
        .map(|(k, v)| (k.clone(), value_json(schema, k, v)))
        .collect()
}

/// A value for people: long vectors shortened.
fn human_value(v: &Value) -> String {
    match v {
        Value::Array(items) if items.len() > 6 => {
            let head: Vec<String> = items.iter().take(4).map(|x| x.to_string()).collect();
            format!("[{}, … ({} values)]", head.join(", "), items.len())
        }
        Value::Object(o) if o.contains_key("bytes") => {
            format!("<{} bytes {}>", text(&o["bytes"]), text(&o["mime"]))
        }
        other => text(other),
    }
}

/// The embedding field to use: the given one, or the schema's only one.
pub fn embedding_field(schema: &Schema, given: Option<&str>) -> Result<String, CliError> {
    if let Some(f) = given {
        return Ok(f.to_owned());
    }
    let embeddings: Vec<&String> = schema
        .fields
        .iter()
        .filter(|(_, f)| matches!(f.spec, FieldSpec::Embedding { .. }))
        .map(|(n, _)| n)
        .collect();
    match embeddings.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(CliError::other("the schema has no embedding field")),
        many => Err(CliError::usage(format!(
            "the schema has several embedding fields ({many:?}): pass --field"
        ))),
    }
}

/// `dreamdb get`.
pub async fn get(ctx: &Ctx, args: GetArgs) -> Result<u8, CliError> {
    let (at, snapshot) = open_version(ctx, &args.target.reference).await?;
    let fields: Option<Vec<&str>> = args
        .fields
        .as_ref()
        .map(|f| f.iter().map(String::as_str).collect());
    let record = dreamdb_dataset::read::get(&snapshot, args.anchor, fields.as_deref()).await?;
    let Some(record) = record else {
        return Err(CliError {
            code: ERROR,
            class: "not-found".to_owned(),
            message: format!(
                "no live record at anchor {} in {} ({})",
                args.anchor,
                at.via,
                at.manifest.short()
            ),
        });
    };
    let value = json!({
        "verb": "get",
        "dataset": ctx.dataset,
        "version": at.via,
        "manifest": at.manifest.to_hex(),
        "anchor": record.anchor,
        "fields": fields_json(snapshot.schema(), &record.fields),
    });
    ctx.out.emit(&value, |v| {
        let mut rows = vec![
            ("version".to_owned(), text(&v["version"])),
            ("anchor".to_owned(), text(&v["anchor"])),
        ];
        for (k, x) in v["fields"].as_object().into_iter().flatten() {
            rows.push((k.clone(), human_value(x)));
        }
        let rows: Vec<(&str, String)> = rows.iter().map(|(k, x)| (k.as_str(), x.clone())).collect();
        table(&rows)
    });
    Ok(OK)
}

/// Reads the query vector from whichever option was given.
fn query_vector(args: &QueryArgs) -> Result<Vec<f32>, CliError> {
    if let Some(text) = &args.vector_json {
        let values: Vec<f64> = serde_json::from_str(text).map_err(|e| {
            CliError::usage(format!("--vector-json: not a JSON array of numbers: {e}"))
        })?;
        return Ok(values.into_iter().map(|x| x as f32).collect());
    }
    let path = args
        .vector_npy
        .as_ref()
        .or(args.vector_fvecs.as_ref())
        .ok_or_else(|| CliError::usage("give --vector-json, --vector-npy or --vector-fvecs"))?;
    let (dim, values) = read_vector_file(path)?;
    let rows = values.len() / dim.max(1);
    if args.row >= rows {
        return Err(CliError::other(format!(
            "--row {}: {} has {rows} rows",
            args.row,
            path.display()
        )));
    }
    Ok(values[args.row * dim..(args.row + 1) * dim].to_vec())
}

/// `dreamdb query`.
pub async fn query(ctx: &Ctx, args: QueryArgs) -> Result<u8, CliError> {
    let (at, snapshot) = open_version(ctx, &args.target.reference).await?;
    let field = embedding_field(snapshot.schema(), args.field.as_deref())?;
    let vector = query_vector(&args)?;
    let mut request = QueryRequest::new(&field, vector, args.k)
        .nprobe(args.nprobe)
        .refine_factor(args.refine);
    if let Some(expr) = &args.filter {
        request = request.filter(parse_filter(expr, snapshot.schema())?);
    }
    request.fields = args.fields.clone();
    let result = dreamdb_dataset::read::query(&snapshot, &request).await?;
    let hits: Vec<Value> = result
        .hits
        .iter()
        .map(|h| {
            json!({
                "anchor": h.anchor,
                "distance": h.distance,
                "fields": fields_json(snapshot.schema(), &h.fields),
            })
        })
        .collect();
    let s = result.stats;
    let value = json!({
        "verb": "query",
        "dataset": ctx.dataset,
        "version": at.via,
        "manifest": at.manifest.to_hex(),
        "field": field,
        "k": args.k,
        "nprobe": args.nprobe,
        "refine": args.refine,
        "hits": hits,
        "stats": {
            "cells_probed": s.cells_probed,
            "runs_read": s.runs_read,
            "raw_reads": s.raw_reads,
            "raw_prefetched": s.raw_prefetched,
            "bytes_read": s.bytes_read,
            "candidates": s.candidates,
            "reranked": s.reranked,
            "tombstoned": s.tombstoned,
            "filter_tested": s.filter_tested,
            "filter_rejected": s.filter_rejected,
        },
    });
    ctx.out.emit(&value, |v| {
        let mut s = String::new();
        for (rank, h) in v["hits"].as_array().into_iter().flatten().enumerate() {
            s.push_str(&format!(
                "{:>3}  anchor {:<20} distance {}",
                rank + 1,
                text(&h["anchor"]),
                text(&h["distance"])
            ));
            for (k, x) in h["fields"].as_object().into_iter().flatten() {
                s.push_str(&format!("  {k}={}", human_value(x)));
            }
            s.push('\n');
        }
        if s.is_empty() {
            s.push_str("no hits\n");
        }
        s
    });
    Ok(OK)
}

/// `dreamdb delete`.
pub async fn delete(ctx: &Ctx, args: DeleteArgs) -> Result<u8, CliError> {
    let ds = open_branch(ctx, &args.target).await?;
    let before = ds.records().await?;
    let deleted = ds.delete(&args.anchor, &args.reason).await?;
    let manifest = ds.manifest_hash().await?;
    let value = json!({
        "verb": "delete",
        "dataset": ctx.dataset,
        "ref": branch_name(&args.target.reference),
        "requested": args.anchor.len(),
        "deleted": deleted,
        "already_deleted": (args.anchor.len() as u64).saturating_sub(deleted),
        "records_before": before,
        "records": ds.records().await?,
        "manifest": manifest.to_hex(),
    });
    ctx.out.emit(&value, |v| {
        table(&[
            ("ref", text(&v["ref"])),
            ("deleted", text(&v["deleted"])),
            ("already deleted", text(&v["already_deleted"])),
            ("records", text(&v["records"])),
            ("manifest", text(&v["manifest"])),
        ])
    });
    Ok(OK)
}

/// `dreamdb compare-refs`.
pub async fn compare(ctx: &Ctx, args: CompareRefsArgs) -> Result<u8, CliError> {
    let mut snapshots = Vec::with_capacity(args.refs.len());
    let mut versions = Vec::with_capacity(args.refs.len());
    for spec in &args.refs {
        let (at, snapshot) = open_version(ctx, spec).await?;
        versions.push(json!({"name": spec, "version": at.via, "manifest": at.manifest.to_hex()}));
        snapshots.push((spec.as_str(), snapshot));
    }
    let comparison = compare_refs(&snapshots, &args.field).await?;
    let summaries: Vec<Value> = comparison
        .summaries
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "values": s.values,
                "paired": s.paired,
                "mean": s.mean,
                "mean_diff_vs_first": s.mean_diff_vs_first,
                "mean_cosine_vs_first": s.mean_cosine_vs_first,
                "changed_vs_first": s.changed_vs_first,
            })
        })
        .collect();
    let mut written = Value::Null;
    if let Some(path) = &args.out {
        let format = args.format.unwrap_or_else(|| TableFormat::of_path(path));
        write_table(path, format, &comparison.table)?;
        written = json!({"path": path.display().to_string(), "format": format.name(), "rows": comparison.table.num_rows()});
    }
    let value = json!({
        "verb": "compare-refs",
        "dataset": ctx.dataset,
        "field": args.field,
        "versions": versions,
        "anchors": comparison.table.num_rows(),
        "summaries": summaries,
        "out": written,
    });
    ctx.out.emit(&value, |v| {
        let mut s = format!("{} anchors in the union\n", text(&v["anchors"]));
        s.push_str(&format!(
            "{:<30} {:>10} {:>10} {:>14} {:>14} {:>14} {:>10}\n",
            "version", "values", "paired", "mean", "mean Δ", "mean cos", "changed"
        ));
        for x in v["summaries"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "{:<30} {:>10} {:>10} {:>14} {:>14} {:>14} {:>10}\n",
                text(&x["name"]),
                text(&x["values"]),
                text(&x["paired"]),
                text(&x["mean"]),
                text(&x["mean_diff_vs_first"]),
                text(&x["mean_cosine_vs_first"]),
                text(&x["changed_vs_first"]),
            ));
        }
        if !v["out"].is_null() {
            s.push_str(&format!("table written to {}\n", text(&v["out"]["path"])));
        }
        s
    });
    Ok(OK)
}

// ----- filter expressions -----

fn filter_error(expr: &str, reason: impl std::fmt::Display) -> CliError {
    CliError::usage(format!("--filter {expr:?}: {reason}"))
}

/// One literal, read as `dtype`.
fn literal(expr: &str, raw: &str, dtype: ScalarDtype) -> Result<DValue, CliError> {
    let raw = raw.trim();
    let json: Value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    Ok(match (&json, dtype) {
        (Value::Null, _) => DValue::Null,
        (_, ScalarDtype::String | ScalarDtype::Categorical) => match json {
            Value::String(s) => DValue::Str(s),
            _ => DValue::Str(raw.to_owned()),
        },
        (Value::Bool(b), _) => DValue::Bool(*b),
        (Value::Number(n), _) => match n.as_i64() {
            Some(i) => DValue::I64(i),
            None => DValue::F64(n.as_f64().unwrap_or(f64::NAN)),
        },
        _ => {
            return Err(filter_error(
                expr,
                format!("{raw} is not a value of a {dtype:?} field"),
            ))
        }
    })
}

/// Parses a filter expression against `schema` (see the module docs).
pub fn parse_filter(expr: &str, schema: &Schema) -> Result<Filter, CliError> {
    let mut filter = Filter::new();
    let normalized = expr.replace("&&", " and ");
    for part in normalized.split(" and ") {
        let part = part.trim();
        if part.is_empty() {
            return Err(filter_error(expr, "an empty predicate"));
        }
        let dtype_of = |field: &str| -> Result<ScalarDtype, CliError> {
            match schema.fields.get(field).map(|f| &f.spec) {
                Some(FieldSpec::Scalar { dtype, .. }) => Ok(*dtype),
                Some(_) => Err(filter_error(
                    expr,
                    format!("{field:?} is not a scalar field"),
                )),
                None => Err(filter_error(
                    expr,
                    format!(
                        "unknown field {field:?} (the schema has {:?})",
                        schema.fields.keys().collect::<Vec<_>>()
                    ),
                )),
            }
        };
        if let Some((field, list)) = part.split_once(" in ") {
            let field = field.trim();
            let dtype = dtype_of(field)?;
            let list = list.trim();
            let inner = list
                .strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .ok_or_else(|| filter_error(expr, format!("{list} is not a [list]")))?;
            let values = inner
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| literal(expr, s, dtype))
                .collect::<Result<Vec<_>, _>>()?;
            filter.predicates.push(Predicate::In {
                field: field.to_owned(),
                values,
            });
            continue;
        }
        let ops = ["<=", ">=", "==", "<", ">", "="];
        let Some((at, op)) = ops
            .iter()
            .filter_map(|op| part.find(op).map(|i| (i, *op)))
            .min_by_key(|(i, op)| (*i, std::cmp::Reverse(op.len())))
        else {
            return Err(filter_error(
                expr,
                format!("{part:?} has no operator (==, <, <=, >, >=, in)"),
            ));
        };
        let field = part[..at].trim();
        let value = literal(expr, &part[at + op.len()..], dtype_of(field)?)?;
        let field = field.to_owned();
        filter.predicates.push(match op {
            "==" | "=" => Predicate::Eq { field, value },
            "<" => Predicate::Range {
                field,
                low: Bound::Unbounded,
                high: Bound::Excluded(value),
            },
            "<=" => Predicate::Range {
                field,
                low: Bound::Unbounded,
                high: Bound::Included(value),
            },
            ">" => Predicate::Range {
                field,
                low: Bound::Excluded(value),
                high: Bound::Unbounded,
            },
            _ => Predicate::Range {
                field,
                low: Bound::Included(value),
                high: Bound::Unbounded,
            },
        });
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dreamdb_dataset::schema::{EmbeddingField, ScalarType, SchemaBuilder};

    fn schema() -> Schema {
        SchemaBuilder::new()
            .embedding("v", EmbeddingField::new(2))
            .scalar("label", ScalarType::Categorical)
            .scalar("score", ScalarType::F64.nullable())
            .scalar("n", ScalarType::I64)
            .build()
            .unwrap()
    }

    #[test]
    fn filters_parse_by_field_type() {
        let f = parse_filter("label == 7 and score >= 0.5 && n in [1, 2]", &schema()).unwrap();
        assert_eq!(
            f.predicates,
            vec![
                Predicate::Eq {
                    field: "label".into(),
                    value: DValue::Str("7".into())
                },
                Predicate::Range {
                    field: "score".into(),
                    low: Bound::Included(DValue::F64(0.5)),
                    high: Bound::Unbounded
                },
                Predicate::In {
                    field: "n".into(),
                    values: vec![DValue::I64(1), DValue::I64(2)]
                },
            ]
        );
        let f = parse_filter("label = \"a b\" and n < 3", &schema()).unwrap();
        assert_eq!(f.predicates.len(), 2);
    }

    #[test]
    fn bad_filters_name_the_problem() {
        let e = parse_filter("nope == 1", &schema()).unwrap_err();
        assert!(e.message.contains("\"nope\""), "{}", e.message);
        let e = parse_filter("v == 1", &schema()).unwrap_err();
        assert!(e.message.contains("not a scalar"), "{}", e.message);
        let e = parse_filter("n ~ 1", &schema()).unwrap_err();
        assert!(e.message.contains("no operator"), "{}", e.message);
    }
}
