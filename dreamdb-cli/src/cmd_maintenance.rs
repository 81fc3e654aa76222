//! `gc` and `verify`: thin wrappers over `dreamdb_protocol::maintenance`.

use dreamdb_protocol::maintenance::{self, GcOptions, VerifyOptions};
use serde_json::{json, Value};

use crate::cli::{GcArgs, VerifyArgs};
use crate::ctx::Ctx;
use crate::exit::{CliError, OK, THRESHOLD};
use crate::out::{table, text};

/// `dreamdb gc`.
pub async fn gc(ctx: &Ctx, args: GcArgs) -> Result<u8, CliError> {
    let shard = match (args.shard, args.of) {
        (Some(i), Some(n)) => Some((i, n)),
        _ => None,
    };
    let (progress, bar) = ctx.out.progress();
    let mut options = GcOptions::new(args.grace, maintenance::now_unix_nanos());
    options.keep_manifests = args.keep_manifests;
    options.keep_since = args.keep_since;
    options.dry_run = args.dry_run;
    options.shard = shard;
    options.concurrency = args.concurrency.max(1);
    options.progress = progress;
    ctx.out.log(format!(
        "gc of {}: keep-manifests {}, keep-since {}, grace {}{}{}",
        ctx.connector.describe(),
        args.keep_manifests
            .map_or_else(|| "-".to_owned(), |n| n.to_string()),
        args.keep_since
            .map_or_else(|| "-".to_owned(), |t| t.to_string()),
        args.grace,
        shard.map_or_else(String::new, |(i, n)| format!(", shard {i} of {n}")),
        if args.dry_run { ", dry run" } else { "" },
    ));
    let result = maintenance::gc(ctx.connector.clone(), &options).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result?;
    let value = json!({
        "verb": "gc",
        "backend": ctx.connector.describe(),
        "dry_run": report.dry_run,
        "shard": report.shard.map(|(i, n)| json!({"index": i, "of": n})),
        "keep_manifests": args.keep_manifests,
        "keep_since_nanos": args.keep_since.map(|t| t.as_nanos()),
        "grace_nanos": args.grace.as_nanos(),
        "datasets": report.datasets,
        "refs": report.refs,
        "tags": report.tags,
        "retained_manifests": report.retained_manifests,
        "marked_objects": report.marked_objects,
        "listed_objects": report.listed_objects,
        "deleted_objects": report.deleted.len(),
        "bytes_deleted": report.bytes_deleted,
        "kept_young": report.kept_young,
        "kept_unknown_age": report.kept_unknown_age,
        "foreign_keys": report.foreign_keys,
        "vanished": report.vanished,
        "missing_parents": report.missing_parents.len(),
        "deleted": report.deleted.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
    });
    ctx.out.emit(&value, |v| {
        let verb = if report.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        let mut s = table(&[
            ("datasets", text(&v["datasets"])),
            ("refs", text(&v["refs"])),
            ("tags", text(&v["tags"])),
            ("retained manifests", text(&v["retained_manifests"])),
            ("marked objects", text(&v["marked_objects"])),
            ("listed objects", text(&v["listed_objects"])),
            (
                verb,
                format!(
                    "{} objects, {} bytes",
                    report.deleted.len(),
                    report.bytes_deleted
                ),
            ),
            ("kept (within grace)", text(&v["kept_young"])),
            ("kept (age unknown)", text(&v["kept_unknown_age"])),
            (
                "history cut at",
                format!("{} parents", report.missing_parents.len()),
            ),
        ]);
        if args.list || report.dry_run {
            for h in &report.deleted {
                s.push_str(&format!("{verb}: {h}\n"));
            }
        }
        s
    });
    Ok(OK)
}

/// `dreamdb verify`.
pub async fn verify(ctx: &Ctx, args: VerifyArgs) -> Result<u8, CliError> {
    let (progress, bar) = ctx.out.progress();
    let options = VerifyOptions {
        max_depth: args.max_depth,
        strict_history: args.strict_history,
        concurrency: args.concurrency.max(1),
        progress,
    };
    ctx.out
        .log(format!("verify of {}", ctx.connector.describe()));
    let result = maintenance::verify(ctx.connector.clone(), &options).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = result?;
    let bad: Vec<Value> = report
        .bad
        .iter()
        .map(|b| {
            json!({
                "hash": b.hash.to_hex(),
                "class": b.class,
                "problem": b.problem,
                "referenced_by": b.referenced_by.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let bad_refs: Vec<Value> = report
        .bad_refs
        .iter()
        .map(|b| json!({"root": b.root, "problem": b.problem}))
        .collect();
    let value = json!({
        "verb": "verify",
        "backend": ctx.connector.describe(),
        "clean": report.is_clean(),
        "datasets": report.datasets,
        "refs": report.refs,
        "tags": report.tags,
        "objects_checked": report.objects_checked,
        "manifests_checked": report.manifests_checked,
        "bytes_checked": report.bytes_checked,
        "unknown_kinds": report.unknown_kinds,
        "bad_objects": report.bad.len(),
        "bad": bad,
        "bad_refs": bad_refs,
        "truncated_history": report.truncated_history.iter().map(|t| json!({
            "missing": t.missing.to_hex(), "child": t.child.to_hex()
        })).collect::<Vec<_>>(),
    });
    ctx.out.emit(&value, |v| {
        let mut s = table(&[
            ("datasets", text(&v["datasets"])),
            ("refs / tags", format!("{} / {}", report.refs, report.tags)),
            ("objects checked", text(&v["objects_checked"])),
            ("manifests checked", text(&v["manifests_checked"])),
            ("bytes checked", text(&v["bytes_checked"])),
            (
                "history cut (gc)",
                report.truncated_history.len().to_string(),
            ),
            (
                "result",
                if report.is_clean() {
                    "clean".to_owned()
                } else {
                    format!(
                        "DAMAGED: {} objects, {} refs",
                        report.bad.len(),
                        report.bad_refs.len()
                    )
                },
            ),
        ]);
        for b in &report.bad {
            let by: Vec<String> = b.referenced_by.iter().map(|r| r.to_string()).collect();
            s.push_str(&format!(
                "bad {} [{}] {} (referenced by {})\n",
                b.hash,
                b.class,
                b.problem,
                by.join(", ")
            ));
        }
        for b in &report.bad_refs {
            s.push_str(&format!("bad ref {}: {}\n", b.root, b.problem));
        }
        s
    });
    Ok(if report.is_clean() { OK } else { THRESHOLD })
}
