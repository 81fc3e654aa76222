//! Ref verbs: `refs`, `branch`, `snapshot`, `reset`, `merge`,
//! `merge-many`.

use dreamdb_connector::{ConnectorExt, KeyPrefix};
use dreamdb_core::ref_name::RefName;
use dreamdb_protocol::dag::{MergeOptions, MergeOutcome, Repo, Side, Strategy};
use serde_json::{json, Value};

use crate::cli::{
    BranchArgs, MergeArgs, MergeManyArgs, RefsArgs, ResetArgs, SnapshotArgs, StrategyArg,
};
use crate::ctx::{ref_name, resolve, Ctx};
use crate::exit::{CliError, OK};
use crate::out::{table, text};

/// Every name under `datasets/<d>/<dir>/` (LIST; tools only), sorted.
pub async fn list_names(
    ctx: &Ctx,
    dir: &str,
    pattern: Option<&str>,
) -> Result<Vec<RefName>, CliError> {
    let prefix_text = format!("datasets/{}/{dir}/", ctx.dataset);
    let prefix = KeyPrefix::new(prefix_text.clone())
        .map_err(|e| CliError::usage(format!("--dataset {:?}: {e}", ctx.dataset)))?;
    let listed = ctx.connector.list_all(&prefix).await?;
    let mut names: Vec<RefName> = listed
        .iter()
        .filter_map(|m| m.key.as_str().strip_prefix(prefix_text.as_str()))
        .filter_map(|n| RefName::parse(n).ok())
        .filter(|n| pattern.is_none_or(|p| n.matches_glob(p)))
        .collect();
    names.sort();
    Ok(names)
}

/// `dreamdb refs`.
pub async fn refs(ctx: &Ctx, args: RefsArgs) -> Result<u8, CliError> {
    let repo = ctx.repo()?;
    let mut branches = Vec::new();
    for name in list_names(ctx, "refs", args.pattern.as_deref()).await? {
        if let Some(state) = repo.read_ref(&name).await? {
            branches.push(json!({"name": name.as_str(), "manifest": state.manifest.to_hex()}));
        }
    }
    let mut tags = Vec::new();
    for name in list_names(ctx, "tags", args.pattern.as_deref()).await? {
        if let Some(state) = repo.read_tag(&name).await? {
            tags.push(json!({"name": name.as_str(), "manifest": state.manifest.to_hex()}));
        }
    }
    let value = json!({"verb": "refs", "dataset": ctx.dataset, "branches": branches, "tags": tags});
    ctx.out.emit(&value, |v| {
        let mut s = String::new();
        for b in v["branches"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "branch {:<30} {}\n",
                text(&b["name"]),
                text(&b["manifest"])
            ));
        }
        for t in v["tags"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "tag    {:<30} {}\n",
                text(&t["name"]),
                text(&t["manifest"])
            ));
        }
        s
    });
    Ok(OK)
}

/// `dreamdb branch`.
pub async fn branch(ctx: &Ctx, args: BranchArgs) -> Result<u8, CliError> {
    if args.list {
        return refs(
            ctx,
            RefsArgs {
                pattern: args.name.clone(),
            },
        )
        .await;
    }
    let repo = ctx.repo()?;
    let Some(name) = args.name else {
        return Err(CliError::usage("branch: give a NAME (or --list)"));
    };
    let name = ref_name(&name)?;
    if args.delete {
        let state = repo.require_ref(&name).await?;
        repo.delete_branch(&name).await?;
        let value =
            json!({"verb": "branch", "deleted": name.as_str(), "was": state.manifest.to_hex()});
        ctx.out.emit(&value, |_| {
            format!("deleted branch {name} (was {})", state.manifest)
        });
        return Ok(OK);
    }
    let from = resolve(&repo, &args.from).await?;
    let state = repo.branch(&name, from.manifest).await?;
    let value = json!({
        "verb": "branch", "created": name.as_str(), "from": from.via,
        "manifest": state.manifest.to_hex(),
    });
    ctx.out.emit(&value, |_| {
        format!("branch {name} at {} ({})", state.manifest, from.via)
    });
    Ok(OK)
}

/// `dreamdb snapshot --ref R --label L`.
pub async fn snapshot(ctx: &Ctx, args: SnapshotArgs) -> Result<u8, CliError> {
    let repo = ctx.repo()?;
    let at = resolve(&repo, &args.reference).await?;
    let label = ref_name(&args.label)?;
    let state = repo.tag(&label, at.manifest).await?;
    let value = json!({
        "verb": "snapshot", "tag": label.as_str(), "from": at.via,
        "manifest": state.manifest.to_hex(),
    });
    ctx.out.emit(&value, |_| {
        format!("tag {label} at {} ({})", state.manifest, at.via)
    });
    Ok(OK)
}

/// `dreamdb reset BRANCH TO`.
pub async fn reset(ctx: &Ctx, args: ResetArgs) -> Result<u8, CliError> {
    let repo = ctx.repo()?;
    let name = ref_name(&args.branch)?;
    let before = repo.require_ref(&name).await?;
    let to = resolve(&repo, &args.to).await?;
    let state = repo.reset(&name, to.manifest).await?;
    let value = json!({
        "verb": "reset", "branch": name.as_str(),
        "from": before.manifest.to_hex(), "to": state.manifest.to_hex(),
    });
    ctx.out.emit(&value, |_| {
        format!("{name}: {} -> {}", before.manifest, state.manifest)
    });
    Ok(OK)
}

fn options(strategy: StrategyArg, writer: &str, message: &str, no_ff: bool) -> MergeOptions {
    let mut o = MergeOptions::union(writer, message);
    o.allow_fast_forward = !no_ff;
    o.strategy = match strategy {
        StrategyArg::Union | StrategyArg::FastForward => Strategy::Union,
        StrategyArg::Ours => Strategy::Ours,
        StrategyArg::Theirs => Strategy::Theirs,
    };
    o
}

fn outcome_json(outcome: &MergeOutcome) -> Value {
    match outcome {
        MergeOutcome::AlreadyUpToDate { at } => {
            json!({"outcome": "already-up-to-date", "manifest": at.to_hex()})
        }
        MergeOutcome::FastForward { to } => {
            json!({"outcome": "fast-forward", "manifest": to.to_hex()})
        }
        MergeOutcome::Merged { manifest, attempts } => {
            json!({"outcome": "merged", "manifest": manifest.to_hex(), "attempts": attempts})
        }
    }
}

async fn fast_forward_only(
    ctx: &Ctx,
    repo: &Repo,
    into: &RefName,
    theirs: &str,
) -> Result<u8, CliError> {
    let to = resolve(repo, theirs).await?;
    let before = repo.require_ref(into).await?;
    let outcome = if repo.is_ancestor(to.manifest, before.manifest).await? {
        MergeOutcome::AlreadyUpToDate {
            at: before.manifest,
        }
    } else {
        let state = repo.fast_forward(into, to.manifest).await?;
        MergeOutcome::FastForward { to: state.manifest }
    };
    let mut value = outcome_json(&outcome);
    value["verb"] = json!("merge");
    value["into"] = json!(into.as_str());
    ctx.out.emit(&value, |v| {
        format!("{into}: {} {}", text(&v["outcome"]), text(&v["manifest"]))
    });
    Ok(OK)
}

/// `dreamdb merge THEIRS --into OURS`.
pub async fn merge(ctx: &Ctx, args: MergeArgs) -> Result<u8, CliError> {
    let repo = ctx.repo()?;
    let into = ref_name(&args.into)?;
    if matches!(args.strategy, StrategyArg::FastForward) {
        return fast_forward_only(ctx, &repo, &into, &args.theirs).await;
    }
    let theirs = resolve(&repo, &args.theirs).await?;
    let message = args
        .message
        .clone()
        .unwrap_or_else(|| format!("merge {} into {}", theirs.via, into));
    let mut o = options(args.strategy, &args.writer, &message, args.no_ff);
    for spec in &args.fields {
        let Some((field, side)) = spec.split_once('=') else {
            return Err(CliError::usage(format!(
                "--field {spec:?}: write FIELD=ours or FIELD=theirs"
            )));
        };
        let side = match side {
            "ours" => Side::Ours,
            "theirs" => Side::Theirs,
            other => {
                return Err(CliError::usage(format!(
                    "--field {field}={other}: the side is ours or theirs"
                )))
            }
        };
        o.fields.insert(field.to_owned(), side);
    }
    let outcome = repo.merge(&into, theirs.manifest, &o).await?;
    let mut value = outcome_json(&outcome);
    value["verb"] = json!("merge");
    value["into"] = json!(into.as_str());
    value["theirs"] = json!(theirs.via);
    ctx.out.emit(&value, |v| {
        table(&[
            ("into", into.to_string()),
            ("theirs", theirs.via.clone()),
            ("outcome", text(&v["outcome"])),
            ("manifest", text(&v["manifest"])),
        ])
    });
    Ok(OK)
}

/// `dreamdb merge-many`.
pub async fn merge_many(ctx: &Ctx, args: MergeManyArgs) -> Result<u8, CliError> {
    let repo = ctx.repo()?;
    let into = ref_name(&args.into)?;
    let mut specs: Vec<String> = args.branches.clone();
    if let Some(pattern) = &args.pattern {
        for name in list_names(ctx, "refs", Some(pattern)).await? {
            if name != into && !specs.contains(&name.to_string()) {
                specs.push(name.to_string());
            }
        }
    }
    if specs.is_empty() {
        return Err(CliError::usage(
            "merge-many: name branches or give --pattern",
        ));
    }
    if matches!(args.strategy, StrategyArg::FastForward) {
        return Err(CliError::usage(
            "merge-many: --strategy fast-forward is for merge",
        ));
    }
    let mut hashes = Vec::new();
    let mut vias = Vec::new();
    for spec in &specs {
        let r = resolve(&repo, spec).await?;
        hashes.push(r.manifest);
        vias.push(r.via);
    }
    let message = args
        .message
        .clone()
        .unwrap_or_else(|| format!("merge {} branches into {into}", specs.len()));
    let o = options(args.strategy, &args.writer, &message, false);
    let outcome = repo.merge_many(&into, &hashes, &o).await?;
    let mut value = outcome_json(&outcome);
    value["verb"] = json!("merge-many");
    value["into"] = json!(into.as_str());
    value["branches"] = json!(vias);
    ctx.out.emit(&value, |v| {
        table(&[
            ("into", into.to_string()),
            ("branches", vias.join(" ")),
            ("outcome", text(&v["outcome"])),
            ("manifest", text(&v["manifest"])),
        ])
    });
    Ok(OK)
}
