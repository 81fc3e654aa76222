//! `dreamdb import`: records from a file, appended in batches.
//!
//! Formats (by extension, or `--format`):
//!
//! - `.npy`: a 2-D little-endian float32 array in C order, one vector per
//!   row (read with `npyz`);
//! - `.fvecs`: rows of `dim: i32 LE` then `dim` float32 LE values, every
//!   row the same `dim` (the TEXMEX/BIGANN format; small reader below —
//!   no maintained crate reads it);
//! - `.parquet` / `.pq` (the `parquet` crate) and Arrow IPC `.arrow` /
//!   `.ipc` / `.feather` (file or stream format, `arrow-ipc`): columns are
//!   mapped to schema fields by name. An embedding column is
//!   `FixedSizeList<Float32>` or `(Large)List<Float32>`; a blob column
//!   binary; scalar columns of the field's family (integers for `i64`,
//!   numbers for `f64`, text or dictionary text for `string` and
//!   `categorical`, timestamps or `Int64` nanoseconds for `timestamp`,
//!   booleans). `--embedding-column C` maps column C to the `--field`,
//!   `--anchor-column C` gives the records' anchors (unsigned, unique).
//!   Other columns starting with `_` (such as an export's `_anchor`) are
//!   skipped with a note; any other column naming no field is refused
//!   unless `--skip-unknown-columns`.
//!
//! **All or nothing for bad input.** Unless `--single-pass`, the file is
//! read twice: first every batch is converted and checked against the
//! branch's schema (dimension, NaN/inf, types, nulls, blob sizes, missing
//! required fields) without writing anything, then appended. A bad file
//! therefore leaves the branch as it was. Each batch is one append (one
//! Manifest, one compare-and-swap, rebased over concurrent writers); an
//! error during the second pass (a backend failure, a given anchor that
//! already exists) leaves the batches before it committed, and the
//! report says how many.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use dreamdb_dataset::batch::Batch;
use dreamdb_dataset::write::AppendOptions;
use dreamdb_protocol::objects::FieldSpec;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map};

use crate::cmd_data::{branch_name, embedding_field, open_branch, WriteTarget};
use crate::ctx::Ctx;
use crate::exit::{CliError, OK};
use crate::import_read::{chunks, InputFormat, Mapping, Rows};
use crate::out::{table, text, Out};

/// SDK batches of `--batch` rows, each with the file row it starts at.
type BatchIter = Box<dyn Iterator<Item = Result<(usize, Batch), CliError>>>;

/// `dreamdb import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The input file.
    pub file: PathBuf,
    /// The embedding field the vectors go to (default: the schema's only one).
    #[arg(long)]
    pub field: Option<String>,
    /// The file's column holding --field's vectors (default: the field's name).
    #[arg(long, value_name = "COLUMN")]
    pub embedding_column: Option<String>,
    /// A column of anchors to give the records (default: assigned).
    #[arg(long, value_name = "COLUMN")]
    pub anchor_column: Option<String>,
    /// Records per append (one commit each).
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    pub batch: usize,
    /// The input format (default: from the extension).
    #[arg(long, value_enum)]
    pub format: Option<InputFormat>,
    /// Ignore columns that name no schema field instead of refusing them.
    #[arg(long)]
    pub skip_unknown_columns: bool,
    /// Append while reading, without the checking pass (a bad row in batch
    /// N then leaves batches before N committed).
    #[arg(long)]
    pub single_pass: bool,
    #[command(flatten)]
    pub target: WriteTarget,
}

/// The file as SDK batches of `--batch` rows (the last may be shorter),
/// each with the file row it starts at.
fn batches(
    args: &ImportArgs,
    m: &Arc<Mapping>,
    format: InputFormat,
    out: Out,
) -> Result<(BatchIter, Option<u64>), CliError> {
    let (mut source, total) = chunks(&args.file, args.batch, m, format, out)?;
    let size = args.batch;
    let mut pending = Rows::default();
    let mut start = 0usize;
    let mut ended = false;
    let iter = std::iter::from_fn(move || loop {
        if pending.rows >= size || (ended && pending.rows > 0) {
            let at = start;
            return Some(pending.take(size).map(|b| {
                start += b.rows();
                (at, b)
            }));
        }
        if ended {
            return None;
        }
        match source.next() {
            Some(Ok(rows)) => {
                if let Err(e) = pending.append(rows) {
                    ended = true;
                    return Some(Err(e));
                }
            }
            Some(Err(e)) => {
                ended = true;
                pending = Rows::default();
                return Some(Err(e));
            }
            None => ended = true,
        }
    });
    Ok((Box::new(iter), total))
}

fn progress(out: &Out, total: Option<u64>, what: &str) -> Option<ProgressBar> {
    use std::io::IsTerminal;
    if out.quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if let Ok(style) =
        ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} rows [{elapsed}, {per_sec}]")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    Some(bar)
}

/// `dreamdb import`.
pub async fn import(ctx: &Ctx, args: ImportArgs) -> Result<u8, CliError> {
    if args.batch == 0 {
        return Err(CliError::usage("--batch must be at least 1"));
    }
    let format = match args.format {
        Some(f) => f,
        None => InputFormat::of_path(&args.file)?,
    };
    if !args.file.is_file() {
        return Err(CliError {
            code: crate::exit::ERROR,
            class: "not-found".to_owned(),
            message: format!("{}: no such file", args.file.display()),
        });
    }
    let ds = open_branch(ctx, &args.target).await?;
    let schema = ds.schema().await?;
    let field = embedding_field(&schema, args.field.as_deref())?;
    match schema.fields.get(&field).map(|f| &f.spec) {
        Some(FieldSpec::Embedding { .. }) => {}
        Some(_) => {
            return Err(CliError::other(format!(
                "field {field:?} is not an embedding field"
            )))
        }
        None => {
            return Err(CliError {
                code: crate::exit::ERROR,
                class: "invalid-input".to_owned(),
                message: format!(
                    "unknown field {field:?} (the schema has {:?})",
                    schema.fields.keys().collect::<Vec<_>>()
                ),
            })
        }
    }
    let mapping = Arc::new(Mapping {
        path: args.file.clone(),
        schema: schema.clone(),
        embedding_column: args
            .embedding_column
            .clone()
            .unwrap_or_else(|| field.clone()),
        field: field.clone(),
        anchor_column: args.anchor_column.clone(),
        skip_unknown: args.skip_unknown_columns,
        noted: std::sync::atomic::AtomicBool::new(false),
    });
    let started = Instant::now();
    let locate = |at: usize, rows: usize, e: CliError| CliError {
        message: format!(
            "{}: rows {at}..{}: {}",
            args.file.display(),
            at + rows,
            e.message
        ),
        ..e
    };
    // Pass 1: check everything, write nothing.
    if !args.single_pass {
        let (iter, total) = batches(&args, &mapping, format, ctx.out)?;
        let bar = progress(&ctx.out, total, "checking");
        // Given anchors: unique across the whole file, not only per batch.
        let mut seen: HashMap<u64, usize> = HashMap::new();
        for item in iter {
            let (at, batch) = item?;
            batch
                .validate(&schema)
                .map_err(|e| locate(at, batch.rows(), e.into()))?;
            for (i, a) in batch.given_anchors().unwrap_or_default().iter().enumerate() {
                if let Some(earlier) = seen.insert(*a, at + i) {
                    return Err(CliError {
                        code: crate::exit::ERROR,
                        class: "invalid-input".to_owned(),
                        message: format!(
                            "{}: anchor {a} is given twice (rows {earlier} and {})",
                            args.file.display(),
                            at + i
                        ),
                    });
                }
            }
            if let Some(b) = &bar {
                b.inc(batch.rows() as u64);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    }
    // Pass 2: append.
    let (iter, total) = batches(&args, &mapping, format, ctx.out)?;
    let bar = progress(&ctx.out, total, "importing");
    let (mut records, mut count, mut attempts) = (0u64, 0u64, 0u64);
    let (mut first, mut last): (Option<u64>, Option<u64>) = (None, None);
    let mut manifest = None;
    let mut signals = Map::new();
    let file_name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for item in iter {
        let committed = |e: CliError| {
            if count > 0 {
                CliError {
                    message: format!(
                        "{} (the {count} batches before it, {records} records, are committed)",
                        e.message
                    ),
                    ..e
                }
            } else {
                e
            }
        };
        let (at, batch) = item.map_err(committed)?;
        let rows = batch.rows();
        let options = AppendOptions {
            message: Some(format!("import {file_name} rows {at}..{}", at + rows)),
            ..AppendOptions::default()
        };
        let result = ds
            .append_many_with(batch, options)
            .await
            .map_err(|e| committed(locate(at, rows, e.into())))?;
        records += rows as u64;
        count += 1;
        attempts += u64::from(result.attempts);
        for a in &result.anchors {
            first = Some(first.map_or(*a, |f| f.min(*a)));
            last = Some(last.map_or(*a, |l| l.max(*a)));
        }
        manifest = Some(result.manifest);
        for (name, s) in &result.signals.fields {
            signals.insert(
                name.clone(),
                json!({
                    "imbalance": s.imbalance,
                    "k": s.k,
                    "n": s.n,
                    "sqrt_n": s.sqrt_n,
                    "k_max": s.k_max,
                    "fragmentation": s.fragmentation,
                    "runs": s.runs,
                    "density": {"min": s.density.min, "median": s.density.median, "max": s.density.max,
                                "non_empty_cells": s.density.non_empty_cells, "empty_cells": s.density.empty_cells},
                }),
            );
        }
        if let Some(b) = &bar {
            b.inc(rows as u64);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    let value = json!({
        "verb": "import",
        "dataset": ctx.dataset,
        "ref": branch_name(&args.target.reference),
        "file": args.file.display().to_string(),
        "format": format!("{format:?}").to_lowercase(),
        "field": field,
        "records": records,
        "batches": count,
        "attempts": attempts,
        "anchors": {"first": first, "last": last},
        "manifest": manifest.map(|m| m.to_hex()),
        "seconds": seconds,
        "records_per_second": if seconds > 0.0 { records as f64 / seconds } else { 0.0 },
        "signals": signals,
    });
    ctx.out.emit(&value, |v| {
        let mut s = table(&[
            ("ref", text(&v["ref"])),
            ("file", text(&v["file"])),
            ("records", text(&v["records"])),
            ("batches", text(&v["batches"])),
            (
                "anchors",
                format!(
                    "{} .. {}",
                    text(&v["anchors"]["first"]),
                    text(&v["anchors"]["last"])
                ),
            ),
            (
                "seconds",
                format!("{:.2}", v["seconds"].as_f64().unwrap_or(0.0)),
            ),
            ("manifest", text(&v["manifest"])),
        ]);
        for (name, sig) in v["signals"].as_object().into_iter().flatten() {
            s.push_str(&format!(
                "  signals {name}: k {} n {} imbalance {:.3} fragmentation {:.2}\n",
                text(&sig["k"]),
                text(&sig["n"]),
                sig["imbalance"].as_f64().unwrap_or(0.0),
                sig["fragmentation"].as_f64().unwrap_or(0.0),
            ));
        }
        s
    });
    Ok(OK)
}
