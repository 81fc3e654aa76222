//! Spatial maintenance verbs over the dataset SDK
//! (`dreamdb_dataset::maintain`, design/0003): `compact`, `rebuild-ivf`,
//! `publish-rabitq`, `ada-ivf-status` and `ada-ivf-step` (also sharded:
//! `--shard i --of n --job-id J` workers, then `--orchestrate`).
//!
//! Every verb works on one branch (`--ref`, default `main`) of
//! `--dataset`, prints a JSON report with `--json` and a table otherwise,
//! and publishes at most one Manifest with one compare-and-swap.

use clap::Args;
use dreamdb_dataset::dataset::OpenOptions;
use dreamdb_dataset::maintain::{AdaIvfStepOptions, AdaIvfStepReport, CellSize, WriteCost};
use dreamdb_dataset::Dataset;
use dreamdb_protocol::objects::FieldSpec;
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::exit::{CliError, OK, THRESHOLD};
use crate::out::{table, text};

/// Options of every spatial verb: the branch, the field, the writer.
#[derive(Debug, Args)]
pub struct Target {
    /// The branch to maintain.
    #[arg(long = "ref", default_value = "main")]
    pub reference: String,
    /// The embedding field (default: the schema's only embedding field).
    #[arg(long)]
    pub field: Option<String>,
    /// Writer identity recorded in the Manifest.
    #[arg(long, env = "DREAMDB_WRITER", default_value = "dreamdb-cli")]
    pub writer: String,
}

/// `dreamdb compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The branch to compact.
    #[arg(long = "ref", default_value = "main")]
    pub reference: String,
    /// Only this field (default: every field — embedding cells, and blob
    /// and scalar segments holding deleted records).
    #[arg(long)]
    pub field: Option<String>,
    /// Writer identity recorded in the Manifest.
    #[arg(long, env = "DREAMDB_WRITER", default_value = "dreamdb-cli")]
    pub writer: String,
}

/// `dreamdb rebuild-ivf`.
#[derive(Debug, Args)]
pub struct RebuildIvfArgs {
    #[command(flatten)]
    pub target: Target,
    /// Cells of the new index (default: the schema's k).
    #[arg(long, value_name = "K")]
    pub cells: Option<u32>,
    /// Seed of the training.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `dreamdb publish-rabitq`.
#[derive(Debug, Args)]
pub struct PublishRabitqArgs {
    #[command(flatten)]
    pub target: Target,
    /// Bits per dimension, 1..=8.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub bits: u8,
}

/// `dreamdb ada-ivf-status`.
#[derive(Debug, Args)]
pub struct AdaIvfStatusArgs {
    #[command(flatten)]
    pub target: Target,
    /// List cells whose density (size / mean size) exceeds X.
    #[arg(long, value_name = "X", value_parser = positive)]
    pub split_threshold: Option<f64>,
    /// List cells whose density is below Y.
    #[arg(long, value_name = "Y", value_parser = positive)]
    pub merge_threshold: Option<f64>,
    /// Exit 4 when the imbalance (coefficient of variation) exceeds X.
    #[arg(long, value_name = "X", value_parser = positive)]
    pub fail_above: Option<f64>,
    /// List every over- or under-populated cell in the human report.
    #[arg(long)]
    pub list: bool,
}

/// `dreamdb ada-ivf-step`.
#[derive(Debug, Args)]
pub struct AdaIvfStepArgs {
    #[command(flatten)]
    pub target: Target,
    /// Split cells whose density (size / mean size) exceeds X (alias
    /// --split-above).
    #[arg(long, alias = "split-above", value_name = "X", value_parser = positive, required_unless_present = "orchestrate")]
    pub split_threshold: Option<f64>,
    /// Merge cells whose density is below Y (alias --merge-below).
    #[arg(long, alias = "merge-below", value_name = "Y", value_parser = positive, required_unless_present = "orchestrate")]
    pub merge_threshold: Option<f64>,
    /// Seed of the local k-means.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Most parts one split makes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=64))]
    pub max_parts: u32,
    /// Sharded worker: handle the changed cells c with c mod N = I.
    #[arg(long, value_name = "I", requires_all = ["of", "job_id"], conflicts_with = "orchestrate")]
    pub shard: Option<u32>,
    /// Number of shards (with --shard or --orchestrate).
    #[arg(long, value_name = "N")]
    pub of: Option<u32>,
    /// The sharded job's id (same for every worker and the orchestrator).
    #[arg(long, value_name = "J")]
    pub job_id: Option<String>,
    /// Finish a sharded job: merge the shards' results and publish.
    #[arg(long, requires_all = ["of", "job_id"])]
    pub orchestrate: bool,
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        Ok(x) => Err(format!("must be a finite number > 0, got {x}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The dataset handle on branch `reference`.
async fn open_ref(ctx: &Ctx, reference: &str, writer: &str) -> Result<Dataset, CliError> {
    Ok(Dataset::open_on(
        ctx.connector.clone(),
        &ctx.backend,
        &ctx.dataset,
        OpenOptions {
            ref_name: Some(reference.to_owned()),
            writer: Some(writer.to_owned()),
            ..OpenOptions::default()
        },
    )
    .await?)
}

/// The dataset handle on `--ref` and the field to work on.
async fn open(ctx: &Ctx, target: &Target) -> Result<(Dataset, String), CliError> {
    let ds = open_ref(ctx, &target.reference, &target.writer).await?;
    let field =
        match &target.field {
            Some(f) => f.clone(),
            None => {
                let schema = ds.schema().await?;
                let embeddings: Vec<&String> = schema
                    .fields
                    .iter()
                    .filter(|(_, f)| matches!(f.spec, FieldSpec::Embedding { .. }))
                    .map(|(n, _)| n)
                    .collect();
                match embeddings.as_slice() {
                    [one] => (*one).clone(),
                    [] => return Err(CliError::usage("the dataset has no embedding field")),
                    many => {
                        return Err(CliError::usage(format!(
                        "the dataset has several embedding fields ({}): choose one with --field",
                        many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    )))
                    }
                }
            }
        };
    Ok((ds, field))
}

fn cost(c: &WriteCost) -> Value {
    json!({"bytes_written": c.bytes_written, "objects_written": c.objects_written})
}

fn cells(list: &[CellSize]) -> Value {
    Value::Array(
        list.iter()
            .map(|c| json!({"cell": c.cell, "records": c.records, "density": c.density}))
            .collect(),
    )
}

fn hex(h: Option<dreamdb_core::ContentHash>) -> Value {
    h.map_or(Value::Null, |h| Value::String(h.to_hex()))
}

/// `dreamdb compact`.
pub async fn compact(ctx: &Ctx, args: CompactArgs) -> Result<u8, CliError> {
    let ds = open_ref(ctx, &args.reference, &args.writer).await?;
    let only = args.field.as_deref();
    ctx.out.log(format!(
        "compact {} on {}",
        only.unwrap_or("every field"),
        args.reference
    ));
    let r = ds.compact(only).await?;
    let fields: serde_json::Map<String, Value> = r
        .fields
        .iter()
        .map(|(f, c)| {
            (
                f.clone(),
                json!({
                    "cells_rewritten": c.cells_rewritten,
                    "runs_read": c.runs_read,
                    "records_dropped": c.records_dropped,
                    "segments_replaced": c.segments_replaced,
                    "whole_field": c.whole_field,
                }),
            )
        })
        .collect();
    let value = json!({
        "verb": "compact",
        "ref": args.reference,
        "manifest": hex(r.manifest),
        "changed": r.manifest.is_some(),
        "cells_rewritten": r.cells_rewritten,
        "records_dropped": r.records_dropped,
        "fields": fields,
        "cost": cost(&r.cost),
    });
    ctx.out.emit(&value, |v| {
        if r.manifest.is_none() {
            return "nothing to compact".to_owned();
        }
        let mut s = table(&[
            ("manifest", text(&v["manifest"])),
            ("cells rewritten", text(&v["cells_rewritten"])),
            ("records dropped", text(&v["records_dropped"])),
            ("bytes written", text(&v["cost"]["bytes_written"])),
            ("objects written", text(&v["cost"]["objects_written"])),
        ]);
        for (f, c) in &r.fields {
            s.push_str(&format!(
                "  {f}: {} cells, {} runs read, {} dropped, {} segments replaced{}\n",
                c.cells_rewritten,
                c.runs_read,
                c.records_dropped,
                c.segments_replaced,
                if c.whole_field { " (whole field)" } else { "" }
            ));
        }
        s
    });
    Ok(OK)
}

/// `dreamdb rebuild-ivf`.
pub async fn rebuild_ivf(ctx: &Ctx, args: RebuildIvfArgs) -> Result<u8, CliError> {
    let (ds, field) = open(ctx, &args.target).await?;
    ctx.out
        .log(format!("rebuild-ivf {field} on {}", args.target.reference));
    let r = ds.rebuild_ivf(&field, args.cells, args.seed).await?;
    let value = json!({
        "verb": "rebuild-ivf",
        "ref": args.target.reference,
        "field": field,
        "manifest": r.manifest.to_hex(),
        "spatial_index": r.spatial_index.to_hex(),
        "k": r.k,
        "records": r.records,
        "records_dropped": r.records_dropped,
        "from_codes": r.from_codes,
        "cost": cost(&r.cost),
    });
    if r.from_codes {
        ctx.out
            .log("no raw rows kept: trained on vectors decoded from codes (expect recall drift)");
    }
    ctx.out.emit(&value, |v| {
        table(&[
            ("manifest", text(&v["manifest"])),
            ("spatial index", text(&v["spatial_index"])),
            ("k", text(&v["k"])),
            ("records", text(&v["records"])),
            ("records dropped", text(&v["records_dropped"])),
            ("from codes", text(&v["from_codes"])),
            ("bytes written", text(&v["cost"]["bytes_written"])),
        ])
    });
    Ok(OK)
}

/// `dreamdb publish-rabitq`.
pub async fn publish_rabitq(ctx: &Ctx, args: PublishRabitqArgs) -> Result<u8, CliError> {
    let (ds, field) = open(ctx, &args.target).await?;
    let r = ds.publish_rabitq(&field, args.bits).await?;
    let value = json!({
        "verb": "publish-rabitq",
        "ref": args.target.reference,
        "field": field,
        "manifest": r.manifest.to_hex(),
        "compressor": r.compressor.to_hex(),
        "bits_before": r.bits_before,
        "bits": r.bits,
        "records": r.records,
        "cost": cost(&r.cost),
    });
    ctx.out.emit(&value, |v| {
        table(&[
            ("manifest", text(&v["manifest"])),
            ("compressor", text(&v["compressor"])),
            (
                "bits",
                format!("{} -> {}", text(&v["bits_before"]), text(&v["bits"])),
            ),
            ("records", text(&v["records"])),
            ("bytes written", text(&v["cost"]["bytes_written"])),
        ])
    });
    Ok(OK)
}

/// `dreamdb ada-ivf-status`.
pub async fn ada_ivf_status(ctx: &Ctx, args: AdaIvfStatusArgs) -> Result<u8, CliError> {
    let (ds, field) = open(ctx, &args.target).await?;
    let s = ds
        .ada_ivf_status(&field, args.split_threshold, args.merge_threshold)
        .await?;
    let crossed = args.fail_above.is_some_and(|x| s.imbalance > x);
    let value = json!({
        "verb": "ada-ivf-status",
        "ref": args.target.reference,
        "field": field,
        "manifest": s.manifest.to_hex(),
        "spatial_index": s.spatial_index.to_hex(),
        "imbalance": s.imbalance,
        "k": s.k,
        "n": s.n,
        "sqrt_n": s.sqrt_n,
        "two_sqrt_n": 2.0 * s.sqrt_n,
        "k_max": s.k_max,
        "density": {
            "min": s.density.min, "median": s.density.median, "max": s.density.max,
            "non_empty_cells": s.density.non_empty_cells, "empty_cells": s.density.empty_cells,
        },
        "fragmentation": s.fragmentation,
        "runs": s.runs,
        "split_threshold": args.split_threshold,
        "merge_threshold": args.merge_threshold,
        "overpopulated": cells(&s.overpopulated),
        "underpopulated": cells(&s.underpopulated),
        "gc_candidates": {"tombstoned_records": s.tombstones},
        "stats": hex(s.stats),
        "fail_above": args.fail_above,
        "threshold_crossed": crossed,
    });
    ctx.out.emit(&value, |v| {
        let mut s2 = table(&[
            ("field", text(&v["field"])),
            ("imbalance (CV)", format!("{:.4}", s.imbalance)),
            ("k", text(&v["k"])),
            ("N", text(&v["n"])),
            (
                "√N / 2√N",
                format!("{:.1} / {:.1}", s.sqrt_n, 2.0 * s.sqrt_n),
            ),
            (
                "records per cell",
                format!(
                    "min {} median {} max {} ({} empty cells)",
                    s.density.min, s.density.median, s.density.max, s.density.empty_cells
                ),
            ),
            (
                "fragmentation",
                format!("{:.2} runs per cell", s.fragmentation),
            ),
            ("overpopulated", s.overpopulated.len().to_string()),
            ("underpopulated", s.underpopulated.len().to_string()),
            ("tombstoned records", s.tombstones.to_string()),
        ]);
        if args.list {
            for c in s.overpopulated.iter().chain(&s.underpopulated) {
                s2.push_str(&format!(
                    "  cell {:>6}  {:>8} records  density {:.2}\n",
                    c.cell, c.records, c.density
                ));
            }
        }
        if crossed {
            s2.push_str("threshold crossed: imbalance above --fail-above\n");
        }
        s2
    });
    Ok(if crossed { THRESHOLD } else { OK })
}

fn step_value(r: &AdaIvfStepReport) -> Value {
    json!({
        "manifest": hex(r.manifest),
        "changed": r.spatial_index.is_some(),
        "base": r.base.to_hex(),
        "parent_index": r.parent_index.to_hex(),
        "spatial_index": hex(r.spatial_index),
        "splits": r.splits.iter().map(|(c, p)| json!({"cell": c, "parts": p})).collect::<Vec<_>>(),
        "merges": r.merges.iter().map(|(c, i)| json!({"cell": c, "into": i})).collect::<Vec<_>>(),
        "k_before": r.k_before,
        "k_after": r.k_after,
        "k_max": r.k_max,
        "imbalance_before": r.imbalance_before,
        "imbalance_after": r.imbalance_after,
        "cells_rewritten": r.cells_rewritten,
        "cells_untouched": r.cells_untouched,
        "runs_read": r.runs_read,
        "records_rewritten": r.records_rewritten,
        "buckets_written": r.buckets_written,
        "from_codes": r.from_codes,
        "cost": cost(&r.cost),
    })
}

fn step_table(v: &Value) -> String {
    table(&[
        ("manifest", text(&v["manifest"])),
        ("spatial index", text(&v["spatial_index"])),
        (
            "splits / merges",
            format!(
                "{} / {}",
                v["splits"].as_array().map_or(0, Vec::len),
                v["merges"].as_array().map_or(0, Vec::len)
            ),
        ),
        (
            "k",
            format!(
                "{} -> {} (cap {})",
                text(&v["k_before"]),
                text(&v["k_after"]),
                text(&v["k_max"])
            ),
        ),
        (
            "imbalance",
            format!(
                "{} -> {}",
                text(&v["imbalance_before"]),
                text(&v["imbalance_after"])
            ),
        ),
        (
            "cells rewritten",
            format!(
                "{} ({} untouched)",
                text(&v["cells_rewritten"]),
                text(&v["cells_untouched"])
            ),
        ),
        ("records rewritten", text(&v["records_rewritten"])),
        ("bytes written", text(&v["cost"]["bytes_written"])),
    ])
}

/// `dreamdb ada-ivf-step`.
pub async fn ada_ivf_step(ctx: &Ctx, args: AdaIvfStepArgs) -> Result<u8, CliError> {
    let (ds, field) = open(ctx, &args.target).await?;
    if args.orchestrate {
        let (Some(job), Some(of)) = (&args.job_id, args.of) else {
            return Err(CliError::usage("--orchestrate needs --job-id and --of"));
        };
        let r = ds.ada_ivf_orchestrate(job, of).await?;
        let mut value = step_value(&r);
        value["verb"] = json!("ada-ivf-step");
        value["mode"] = json!("orchestrate");
        value["job_id"] = json!(job);
        value["of"] = json!(of);
        ctx.out.emit(&value, step_table);
        return Ok(OK);
    }
    let (Some(split), Some(merge)) = (args.split_threshold, args.merge_threshold) else {
        return Err(CliError::usage(
            "--split-threshold and --merge-threshold are required",
        ));
    };
    let options = AdaIvfStepOptions {
        split_threshold: split,
        merge_threshold: merge,
        seed: args.seed,
        max_parts: args.max_parts,
    };
    if let Some(shard) = args.shard {
        let (Some(job), Some(of)) = (&args.job_id, args.of) else {
            return Err(CliError::usage("--shard needs --of and --job-id"));
        };
        let r = ds
            .ada_ivf_step_shard(job, shard, of, &field, options)
            .await?;
        let mut value = step_value(&r.step);
        value["verb"] = json!("ada-ivf-step");
        value["mode"] = json!("shard");
        value["job_id"] = json!(job);
        value["shard"] = json!(shard);
        value["of"] = json!(of);
        value["result_key"] = json!(r.result_key);
        ctx.out.emit(&value, |v| {
            format!(
                "shard {shard} of {of} of job {job}: {} records re-dispatched, result at {}",
                text(&v["records_rewritten"]),
                r.result_key
            )
        });
        return Ok(OK);
    }
    if args.of.is_some() || args.job_id.is_some() {
        return Err(CliError::usage(
            "--of and --job-id go with --shard or --orchestrate",
        ));
    }
    let r = ds.ada_ivf_step(&field, options).await?;
    if r.from_codes {
        ctx.out
            .log("no raw rows kept: split on vectors decoded from codes (expect drift)");
    }
    let mut value = step_value(&r);
    value["verb"] = json!("ada-ivf-step");
    value["mode"] = json!("single");
    value["field"] = json!(field);
    ctx.out.emit(&value, |v| {
        if r.spatial_index.is_none() {
            "no cell crossed a threshold: nothing changed".to_owned()
        } else {
            step_table(v)
        }
    });
    Ok(OK)
}
