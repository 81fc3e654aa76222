//! Schema verbs: `create` and `schema-update`, and the schema file format
//! they read.
//!
//! **The schema file** is one JSON object `{"fields": {NAME: FIELD, ...}}`
//! where every FIELD has a `type` and the keys of that type (unknown keys
//! are refused, so a typo is never silently dropped):
//!
//! | `type` | keys (default) |
//! |---|---|
//! | `embedding` | `dim`; `metric` `cosine`\|`l2`\|`ip` (`cosine`); `algorithm` `flat`\|`ivf`\|`lsh`\|`imi` (`flat`); `cells` (ivf); `tables`, `bits` (lsh); `k1`, `k2` (imi); `compression_bits` 1..=8 (RaBitQ codes; absent = raw f32); `rerank` (`false`: keep raw rows for exact reranking) |
//! | `blob` | `mime`, `max_bytes` |
//! | `i64`, `f64`, `bool`, `string`, `categorical`, `timestamp` | `nullable` (`false`) |
//! | `fragment` | `mime` |
//!
//! Every field may carry a modality `tag`. For example
//! `{"fields": {"embedding": {"type": "embedding", "dim": 128, "metric":
//! "l2", "algorithm": "ivf", "cells": 64, "compression_bits": 1, "rerank":
//! true}, "label": {"type": "categorical", "nullable": true}}}`.
//! The file is turned into the SDK's `SchemaBuilder` calls, so every rule
//! (names, dimensions, index parameters) is the SDK's and every error
//! names the field. `create` and `schema-update` print the resulting
//! schema in the same format, so a report can be edited and fed back.
//!
//! For the common case `create` also takes flags: `--embedding
//! NAME:DIM[:METRIC]` (a flat index of raw vectors), `--scalar
//! NAME:TYPE[?]` (`?` = nullable) and `--blob NAME:MIME:MAX_BYTES`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use dreamdb_dataset::dataset::{CreateOptions, OpenOptions};
use dreamdb_dataset::schema::{EmbeddingField, Metric, ScalarType, SchemaBuilder};
use dreamdb_dataset::Dataset;
use dreamdb_protocol::objects::{Compression, FieldSpec, IndexSpec, ScalarDtype, Schema};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::cmd_data::{branch_name, WriteTarget};
use crate::ctx::Ctx;
use crate::exit::{CliError, OK};
use crate::out::{table, text};

/// Where a schema comes from.
#[derive(Debug, Args)]
pub struct SchemaSource {
    /// The schema as a JSON file.
    #[arg(long, value_name = "FILE", long_help = SCHEMA_HELP)]
    pub schema: Option<PathBuf>,
    /// The schema as a JSON string.
    #[arg(long, value_name = "JSON", conflicts_with = "schema")]
    pub schema_json: Option<String>,
}

/// `dreamdb create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub source: SchemaSource,
    /// An embedding field with a flat index of raw vectors, e.g.
    /// `embedding:768:cosine` (metric cosine|l2|ip, default cosine; repeatable).
    #[arg(long, value_name = "NAME:DIM[:METRIC]", conflicts_with_all = ["schema", "schema_json"])]
    pub embedding: Vec<String>,
    /// A scalar field, e.g. `label:categorical` or `score:f64?` (`?` =
    /// nullable; types i64|f64|bool|string|categorical|timestamp; repeatable).
    #[arg(long, value_name = "NAME:TYPE[?]", conflicts_with_all = ["schema", "schema_json"])]
    pub scalar: Vec<String>,
    /// A blob field, e.g. `image:image/jpeg:1048576` (repeatable).
    #[arg(long, value_name = "NAME:MIME:MAX_BYTES", conflicts_with_all = ["schema", "schema_json"])]
    pub blob: Vec<String>,
    /// Writer identity recorded in the Manifest.
    #[arg(long, env = "DREAMDB_WRITER", default_value = "dreamdb-cli")]
    pub writer: String,
}

/// `dreamdb schema-update`.
#[derive(Debug, Args)]
pub struct SchemaUpdateArgs {
    /// The complete new schema (every existing field unchanged, added
    /// fields nullable scalars or fragments).
    #[command(flatten)]
    pub source: SchemaSource,
    #[command(flatten)]
    pub target: WriteTarget,
}

/// The schema format, for `--help`.
pub const SCHEMA_HELP: &str = "\
The schema as a JSON file: {\"fields\": {NAME: FIELD, ...}}, FIELD one of
  {\"type\": \"embedding\", \"dim\": D, \"metric\": \"cosine|l2|ip\",
   \"algorithm\": \"flat|ivf|lsh|imi\", \"cells\": K (ivf), \"tables\": T, \"bits\": B (lsh),
   \"k1\": K1, \"k2\": K2 (imi), \"compression_bits\": 1..8 (RaBitQ), \"rerank\": true|false}
  {\"type\": \"blob\", \"mime\": \"image/jpeg\", \"max_bytes\": N}
  {\"type\": \"i64|f64|bool|string|categorical|timestamp\", \"nullable\": true|false}
  {\"type\": \"fragment\", \"mime\": \"video/mp4\"}
Any field may add \"tag\": \"com.example.model\". Unknown keys are refused.";

/// One field of the schema file.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum FieldDef {
    Embedding {
        dim: u32,
        #[serde(default)]
        metric: Option<String>,
        #[serde(default)]
        algorithm: Option<String>,
        #[serde(default)]
        cells: Option<u32>,
        #[serde(default)]
        tables: Option<u32>,
        #[serde(default)]
        bits: Option<u32>,
        #[serde(default)]
        k1: Option<u32>,
        #[serde(default)]
        k2: Option<u32>,
        #[serde(default)]
        compression_bits: Option<u8>,
        #[serde(default)]
        rerank: bool,
        #[serde(default)]
        tag: Option<String>,
    },
    Blob {
        mime: String,
        max_bytes: u64,
        #[serde(default)]
        tag: Option<String>,
    },
    Fragment {
        mime: String,
        #[serde(default)]
        tag: Option<String>,
    },
    I64(ScalarDef),
    F64(ScalarDef),
    Bool(ScalarDef),
    String(ScalarDef),
    Categorical(ScalarDef),
    Timestamp(ScalarDef),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScalarDef {
    #[serde(default)]
    nullable: bool,
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaDef {
    fields: BTreeMap<String, Value>,
}

fn schema_error(reason: impl Into<String>) -> CliError {
    CliError {
        code: crate::exit::ERROR,
        class: "invalid-schema".to_owned(),
        message: format!("invalid schema: {}", reason.into()),
    }
}

fn parse_metric(field: &str, text: &str) -> Result<Metric, CliError> {
    match text {
        "cosine" => Ok(Metric::Cosine),
        "l2" => Ok(Metric::L2),
        "ip" => Ok(Metric::InnerProduct),
        other => Err(schema_error(format!(
            "field {field:?}: metric {other:?} is not cosine, l2 or ip"
        ))),
    }
}

fn need(field: &str, key: &str, algorithm: &str, v: Option<u32>) -> Result<u32, CliError> {
    v.ok_or_else(|| {
        schema_error(format!(
            "field {field:?}: algorithm {algorithm} needs {key:?}"
        ))
    })
}

/// Adds one field of the file to the builder (errors name the field).
fn add_field(b: SchemaBuilder, name: &str, def: FieldDef) -> Result<SchemaBuilder, CliError> {
    let scalar = |b: SchemaBuilder, t: ScalarType, d: ScalarDef| {
        let field = if d.nullable { t.nullable() } else { t.into() };
        let b = b.scalar(name, field);
        match d.tag {
            Some(tag) => b.tag(name, &tag),
            None => b,
        }
    };
    Ok(match def {
        FieldDef::Embedding {
            dim,
            metric,
            algorithm,
            cells,
            tables,
            bits,
            k1,
            k2,
            compression_bits,
            rerank,
            tag,
        } => {
            let mut e = EmbeddingField::new(dim).rerank(rerank);
            if let Some(m) = metric {
                e = e.metric(parse_metric(name, &m)?);
            }
            let algorithm = algorithm.unwrap_or_else(|| "flat".to_owned());
            let stray = |key: &str, v: Option<u32>| match v {
                Some(_) => Err(schema_error(format!(
                    "field {name:?}: {key:?} does not apply to algorithm {algorithm}"
                ))),
                None => Ok(()),
            };
            e = match algorithm.as_str() {
                "flat" => {
                    for (k, v) in [("cells", cells), ("tables", tables), ("bits", bits)] {
                        stray(k, v)?;
                    }
                    for (k, v) in [("k1", k1), ("k2", k2)] {
                        stray(k, v)?;
                    }
                    e.flat()
                }
                "ivf" => {
                    for (k, v) in [("tables", tables), ("bits", bits), ("k1", k1), ("k2", k2)] {
                        stray(k, v)?;
                    }
                    e.ivf(need(name, "cells", "ivf", cells)?)
                }
                "lsh" => {
                    for (k, v) in [("cells", cells), ("k1", k1), ("k2", k2)] {
                        stray(k, v)?;
                    }
                    e.lsh(
                        need(name, "tables", "lsh", tables)?,
                        need(name, "bits", "lsh", bits)?,
                    )
                }
                "imi" => {
                    for (k, v) in [("cells", cells), ("tables", tables), ("bits", bits)] {
                        stray(k, v)?;
                    }
                    e.imi(need(name, "k1", "imi", k1)?, need(name, "k2", "imi", k2)?)
                }
                other => {
                    return Err(schema_error(format!(
                        "field {name:?}: algorithm {other:?} is not flat, ivf, lsh or imi"
                    )))
                }
            };
            if let Some(bits) = compression_bits {
                e = e.rabitq(bits);
            }
            if let Some(tag) = tag {
                e = e.tag(&tag);
            }
            b.embedding(name, e)
        }
        FieldDef::Blob {
            mime,
            max_bytes,
            tag,
        } => {
            let b = b.blob(name, &mime, max_bytes);
            match tag {
                Some(tag) => b.tag(name, &tag),
                None => b,
            }
        }
        FieldDef::Fragment { mime, tag } => {
            let b = b.fragment(name, &mime);
            match tag {
                Some(tag) => b.tag(name, &tag),
                None => b,
            }
        }
        FieldDef::I64(d) => scalar(b, ScalarType::I64, d),
        FieldDef::F64(d) => scalar(b, ScalarType::F64, d),
        FieldDef::Bool(d) => scalar(b, ScalarType::Bool, d),
        FieldDef::String(d) => scalar(b, ScalarType::String, d),
        FieldDef::Categorical(d) => scalar(b, ScalarType::Categorical, d),
        FieldDef::Timestamp(d) => scalar(b, ScalarType::Timestamp, d),
    })
}

/// Parses a schema document (see the module docs) and validates it with
/// the SDK.
pub fn parse_schema(text: &str) -> Result<Schema, CliError> {
    let def: SchemaDef = serde_json::from_str(text)
        .map_err(|e| schema_error(format!("not a schema document: {e}")))?;
    let mut b = SchemaBuilder::new();
    for (name, value) in def.fields {
        let field: FieldDef = serde_json::from_value(value)
            .map_err(|e| schema_error(format!("field {name:?}: {e}")))?;
        b = add_field(b, &name, field)?;
    }
    Ok(b.build()?)
}

/// The schema in the file format (the inverse of [`parse_schema`]).
pub fn describe_schema(schema: &Schema) -> Value {
    let mut fields = Map::new();
    for (name, f) in &schema.fields {
        let mut v = match &f.spec {
            FieldSpec::Embedding {
                dim,
                metric,
                index,
                compression,
                rerank,
            } => {
                let mut v =
                    json!({"type": "embedding", "dim": dim, "metric": metric, "rerank": rerank});
                match index {
                    IndexSpec::Flat => v["algorithm"] = json!("flat"),
                    IndexSpec::Ivf { k } => {
                        v["algorithm"] = json!("ivf");
                        v["cells"] = json!(k);
                    }
                    IndexSpec::Lsh { tables, bits } => {
                        v["algorithm"] = json!("lsh");
                        v["tables"] = json!(tables);
                        v["bits"] = json!(bits);
                    }
                    IndexSpec::Imi { k1, k2 } => {
                        v["algorithm"] = json!("imi");
                        v["k1"] = json!(k1);
                        v["k2"] = json!(k2);
                    }
                }
                if let Some(Compression::Rabitq { bits }) = compression {
                    v["compression_bits"] = json!(bits);
                }
                v
            }
            FieldSpec::Blob { mime, max_bytes } => {
                json!({"type": "blob", "mime": mime, "max_bytes": max_bytes})
            }
            FieldSpec::Fragment { mime } => json!({"type": "fragment", "mime": mime}),
            FieldSpec::Scalar { dtype, nullable } => {
                json!({"type": dtype_name(*dtype), "nullable": nullable})
            }
        };
        if let Some(tag) = &f.tag {
            v["tag"] = json!(tag.as_str());
        }
        fields.insert(name.clone(), v);
    }
    json!({ "fields": fields })
}

/// The schema-file name of a scalar dtype.
pub fn dtype_name(dtype: ScalarDtype) -> &'static str {
    match dtype {
        ScalarDtype::Categorical => "categorical",
        ScalarDtype::I64 => "i64",
        ScalarDtype::F64 => "f64",
        ScalarDtype::Bool => "bool",
        ScalarDtype::String => "string",
        ScalarDtype::Timestamp => "timestamp",
    }
}

/// Reads `--schema FILE` / `--schema-json STR`.
fn read_source(source: &SchemaSource) -> Result<Option<Schema>, CliError> {
    if let Some(path) = &source.schema {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::other(format!("cannot read {}: {e}", path.display())))?;
        return parse_schema(&text).map(Some);
    }
    source.schema_json.as_deref().map(parse_schema).transpose()
}

/// The schema from `create`'s flags.
fn schema_from_flags(args: &CreateArgs) -> Result<Schema, CliError> {
    let mut b = SchemaBuilder::new();
    for spec in &args.embedding {
        let parts: Vec<&str> = spec.split(':').collect();
        let (name, dim, metric) = match parts.as_slice() {
            [name, dim] => (*name, *dim, None),
            [name, dim, metric] => (*name, *dim, Some(*metric)),
            _ => {
                return Err(CliError::usage(format!(
                    "--embedding {spec:?}: expected NAME:DIM[:METRIC]"
                )))
            }
        };
        let dim: u32 = dim.parse().map_err(|_| {
            CliError::usage(format!("--embedding {spec:?}: {dim:?} is not a dimension"))
        })?;
        let mut e = EmbeddingField::new(dim);
        if let Some(m) = metric {
            e = e.metric(parse_metric(name, m)?);
        }
        b = b.embedding(name, e);
    }
    for spec in &args.scalar {
        let Some((name, ty)) = spec.split_once(':') else {
            return Err(CliError::usage(format!(
                "--scalar {spec:?}: expected NAME:TYPE[?]"
            )));
        };
        let (ty, nullable) = match ty.strip_suffix('?') {
            Some(t) => (t, true),
            None => (ty, false),
        };
        let doc = json!({"type": ty, "nullable": nullable});
        let def: FieldDef = serde_json::from_value(doc)
            .map_err(|e| CliError::usage(format!("--scalar {spec:?}: {e}")))?;
        if matches!(
            def,
            FieldDef::Embedding { .. } | FieldDef::Blob { .. } | FieldDef::Fragment { .. }
        ) {
            return Err(CliError::usage(format!(
                "--scalar {spec:?}: {ty} is not a scalar type"
            )));
        }
        b = add_field(b, name, def)?;
    }
    for spec in &args.blob {
        let mut parts = spec.splitn(3, ':');
        let (Some(name), Some(mime), Some(max)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(CliError::usage(format!(
                "--blob {spec:?}: expected NAME:MIME:MAX_BYTES"
            )));
        };
        let max: u64 = max.parse().map_err(|_| {
            CliError::usage(format!("--blob {spec:?}: {max:?} is not a byte count"))
        })?;
        b = b.blob(name, mime, max);
    }
    Ok(b.build()?)
}

fn schema_report(v: &Value) -> String {
    let mut s = String::new();
    for (name, f) in v["schema"]["fields"].as_object().into_iter().flatten() {
        s.push_str(&format!("  field {name}: {f}\n"));
    }
    s
}

/// `dreamdb create`.
pub async fn create(ctx: &Ctx, args: CreateArgs) -> Result<u8, CliError> {
    let schema = match read_source(&args.source)? {
        Some(s) => s,
        None if args.embedding.is_empty() && args.scalar.is_empty() && args.blob.is_empty() => {
            return Err(CliError::usage(
                "create needs --schema FILE, --schema-json JSON or field flags (--embedding, --scalar, --blob)",
            ))
        }
        None => schema_from_flags(&args)?,
    };
    let ds = Dataset::create_on(
        ctx.connector.clone(),
        &ctx.backend,
        &ctx.dataset,
        schema.clone(),
        CreateOptions {
            writer: Some(args.writer),
            cache_bytes: None,
        },
    )
    .await?;
    let manifest = ds.manifest_hash().await?;
    let value = json!({
        "verb": "create",
        "dataset": ctx.dataset,
        "ref": "main",
        "manifest": manifest.to_hex(),
        "schema": describe_schema(&schema),
    });
    ctx.out.emit(&value, |v| {
        let mut s = table(&[
            ("dataset", text(&v["dataset"])),
            ("ref", text(&v["ref"])),
            ("manifest", text(&v["manifest"])),
        ]);
        s.push_str(&schema_report(v));
        s
    });
    Ok(OK)
}

/// `dreamdb schema-update`.
pub async fn schema_update(ctx: &Ctx, args: SchemaUpdateArgs) -> Result<u8, CliError> {
    let Some(schema) = read_source(&args.source)? else {
        return Err(CliError::usage(
            "schema-update needs --schema FILE or --schema-json JSON",
        ));
    };
    let branch = branch_name(&args.target.reference);
    let ds = Dataset::open_on(
        ctx.connector.clone(),
        &ctx.backend,
        &ctx.dataset,
        OpenOptions {
            ref_name: Some(branch.clone()),
            cache_bytes: None,
            writer: Some(args.target.writer.clone()),
        },
    )
    .await?;
    let before = ds.manifest_hash().await?;
    let old = ds.schema().await?;
    let added: Vec<&String> = schema
        .fields
        .keys()
        .filter(|k| !old.fields.contains_key(*k))
        .collect();
    let manifest = ds.update_schema(schema.clone()).await?;
    let value = json!({
        "verb": "schema-update",
        "dataset": ctx.dataset,
        "ref": branch,
        "previous": before.to_hex(),
        "manifest": manifest.to_hex(),
        "added": added,
        "schema": describe_schema(&schema),
    });
    ctx.out.emit(&value, |v| {
        let mut s = table(&[
            ("ref", text(&v["ref"])),
            ("manifest", text(&v["manifest"])),
            ("added", v["added"].to_string()),
        ]);
        s.push_str(&schema_report(v));
        s
    });
    Ok(OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_round_trips() {
        let text = r#"{"fields": {
            "embedding": {"type": "embedding", "dim": 8, "metric": "l2", "algorithm": "ivf",
                          "cells": 4, "compression_bits": 1, "rerank": true},
            "image": {"type": "blob", "mime": "image/png", "max_bytes": 1000},
            "label": {"type": "categorical", "nullable": true}
        }}"#;
        let schema = parse_schema(text).unwrap();
        let again = parse_schema(&describe_schema(&schema).to_string()).unwrap();
        assert_eq!(schema, again);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_schema(r#"{"fields": {"v": {"type": "embedding", "dim": 8, "dims": 3}}}"#)
            .unwrap_err();
        assert!(
            e.message.contains("\"v\"") && e.message.contains("dims"),
            "{}",
            e.message
        );
        let e = parse_schema(
            r#"{"fields": {"v": {"type": "embedding", "dim": 8, "algorithm": "ivf"}}}"#,
        )
        .unwrap_err();
        assert!(
            e.message.contains("\"v\"") && e.message.contains("cells"),
            "{}",
            e.message
        );
        let e = parse_schema(r#"{"fields": {"v": {"type": "embedding", "dim": 0}}}"#).unwrap_err();
        assert!(e.message.contains("\"v\""), "{}", e.message);
        let e = parse_schema(r#"{"fields": {"s": {"type": "float"}}}"#).unwrap_err();
        assert!(e.message.contains("\"s\""), "{}", e.message);
    }
}
