//! Hyper-parameter sweeps as branches: `sweep-init`, `sweep-summarize`.

use std::collections::HashSet;

use dreamdb_protocol::dag::TOMBSTONES_KEY;
use dreamdb_protocol::maintenance::tolerant_history;
use dreamdb_protocol::objects::TombstoneList;
use serde_json::{json, Value};

use crate::cli::{SweepInitArgs, SweepSummarizeArgs};
use crate::cmd_refs::list_names;
use crate::ctx::{ref_name, resolve, Ctx};
use crate::exit::{CliError, OK};
use crate::out::text;

/// `dreamdb sweep-init --source R --runs N`.
pub async fn init(ctx: &Ctx, args: SweepInitArgs) -> Result<u8, CliError> {
    if args.runs == 0 || args.runs > 999 {
        return Err(CliError::usage("--runs must be 1..=999"));
    }
    let repo = ctx.repo()?;
    let source = resolve(&repo, &args.source).await?;
    let mut created = Vec::new();
    for i in 1..=args.runs {
        let name = ref_name(&format!("{}/run-{i:03}", args.prefix))?;
        repo.branch(&name, source.manifest).await?;
        created.push(name.to_string());
    }
    let value = json!({
        "verb": "sweep-init", "source": source.via,
        "manifest": source.manifest.to_hex(), "branches": created,
    });
    ctx.out.emit(&value, |_| {
        format!(
            "{} branches at {} ({}): {} .. {}",
            created.len(),
            source.manifest,
            source.via,
            created.first().map(String::as_str).unwrap_or(""),
            created.last().map(String::as_str).unwrap_or("")
        )
    });
    Ok(OK)
}

/// `NAME=<number>` in `message`, if present.
fn metric_in(message: &str, name: &str) -> Option<f64> {
    message
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter_map(|word| word.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse::<f64>().ok())
}

/// `dreamdb sweep-summarize --pattern P --metric M`.
pub async fn summarize(ctx: &Ctx, args: SweepSummarizeArgs) -> Result<u8, CliError> {
    let repo = ctx.repo()?;
    let source = resolve(&repo, &args.source).await?;
    let mut base: HashSet<_> = HashSet::new();
    tolerant_history(repo.store(), source.manifest, None, |w| {
        base.insert(w.hash);
        true
    })
    .await
    .map_err(|e| CliError::other(e.to_string()))?;
    let mut runs = Vec::new();
    for name in list_names(ctx, "refs", Some(&args.pattern)).await? {
        let Some(state) = repo.read_ref(&name).await? else {
            continue;
        };
        let tip = repo.manifest(&state.manifest).await?;
        let mut ahead = Vec::new();
        tolerant_history(repo.store(), state.manifest, None, |w| {
            if !base.contains(&w.hash) {
                ahead.push(w.manifest.message.clone());
            }
            true
        })
        .await
        .map_err(|e| CliError::other(e.to_string()))?;
        let metric: Option<f64> = match args.metric.as_str() {
            "records" => Some(tip.records as f64),
            "commits" => Some(ahead.len() as f64),
            "height" => Some(tip.height as f64),
            "tombstones" => Some(match tip.registry.get(TOMBSTONES_KEY) {
                Some(h) => {
                    let list: TombstoneList = repo.get_object(h).await?;
                    list.entries.len() as f64
                }
                None => 0.0,
            }),
            other => ahead.iter().find_map(|m| metric_in(m, other)),
        };
        runs.push(json!({
            "branch": name.as_str(),
            "manifest": state.manifest.to_hex(),
            "commits": ahead.len(),
            "records": tip.records,
            "metric": metric,
        }));
    }
    let key = |v: &Value| v["metric"].as_f64();
    runs.sort_by(|a, b| match (key(a), key(b)) {
        (Some(x), Some(y)) => {
            let order = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
            if args.ascending {
                order
            } else {
                order.reverse()
            }
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let best = runs
        .first()
        .filter(|r| !r["metric"].is_null())
        .map(|r| r["branch"].clone());
    let value = json!({
        "verb": "sweep-summarize", "pattern": args.pattern, "metric": args.metric,
        "order": if args.ascending { "ascending" } else { "descending" },
        "source": source.via, "best": best, "runs": runs,
    });
    ctx.out.emit(&value, |v| {
        let mut s = format!(
            "{:<28} {:>10} {:>8} {:>10}\n",
            "branch", args.metric, "commits", "records"
        );
        for r in v["runs"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "{:<28} {:>10} {:>8} {:>10}\n",
                text(&r["branch"]),
                text(&r["metric"]),
                text(&r["commits"]),
                text(&r["records"])
            ));
        }
        s.push_str(&format!("best: {}\n", text(&v["best"])));
        s
    });
    Ok(OK)
}

#[cfg(test)]
mod tests {
    use super::metric_in;

    #[test]
    fn metrics_in_messages() {
        assert_eq!(metric_in("eval recall@10=0.93 loss=0.1", "loss"), Some(0.1));
        assert_eq!(
            metric_in("eval recall@10=0.93,loss=2", "recall@10"),
            Some(0.93)
        );
        assert_eq!(metric_in("loss=abc", "loss"), None);
        assert_eq!(metric_in("no metrics", "loss"), None);
    }
}
