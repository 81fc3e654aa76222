//! History verbs: `log`, `inspect`, `diff`.

use std::collections::{BTreeMap, BTreeSet};

use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{track_root_of, Repo, TOMBSTONES_KEY};
use dreamdb_protocol::maintenance::tolerant_history;
use dreamdb_protocol::objects::{Manifest, TombstoneList};
use dreamdb_protocol::track::{TrackRoot, TrackValue};
use serde_json::{json, Map, Value};

use crate::cli::{DiffArgs, InspectArgs, LogArgs};
use crate::ctx::{resolve, Ctx};
use crate::exit::{CliError, OK};
use crate::out::{iso_time, table, text};

/// Track runs per field.
fn runs(manifest: &Manifest) -> Result<BTreeMap<String, u64>, CliError> {
    let mut out = BTreeMap::new();
    for (field, state) in &manifest.tracks {
        out.insert(field.clone(), track_root_of(&state.root)?.count());
    }
    Ok(out)
}

/// Number of tombstones of a version.
async fn tombstones(repo: &Repo, manifest: &Manifest) -> Result<u64, CliError> {
    Ok(match manifest.registry.get(TOMBSTONES_KEY) {
        Some(hash) => {
            let list: TombstoneList = repo.get_object(hash).await?;
            list.entries.len() as u64
        }
        None => 0,
    })
}

fn delta(now: u64, before: Option<u64>) -> Value {
    match before {
        Some(b) => json!(i128::from(now) - i128::from(b)),
        None => Value::Null,
    }
}

/// `dreamdb log`.
pub async fn log(ctx: &Ctx, args: LogArgs) -> Result<u8, CliError> {
    let repo = ctx.repo()?;
    let from = resolve(&repo, &args.version).await?;
    let mut walked = Vec::new();
    let notes = tolerant_history(repo.store(), from.manifest, args.max_depth, |w| {
        walked.push(w.clone());
        true
    })
    .await
    .map_err(|e| CliError::other(e.to_string()))?;
    let mut commits = Vec::new();
    for w in &walked {
        let m = &w.manifest;
        let parent = match m.parents.first() {
            // A parent removed by gc: no deltas for this commit.
            Some(p) => repo.manifest(p).await.ok(),
            None => None,
        };
        let runs_now = runs(m)?;
        let runs_before = match &parent {
            Some(p) => Some(runs(p)?),
            None => None,
        };
        let tomb_now = tombstones(&repo, m).await?;
        let tomb_before = match &parent {
            Some(p) => Some(tombstones(&repo, p).await?),
            None if m.parents.is_empty() => Some(0),
            None => None,
        };
        let mut tracks = Map::new();
        let fields: BTreeSet<&String> = runs_now
            .keys()
            .chain(runs_before.iter().flat_map(|r| r.keys()))
            .collect();
        for field in fields {
            let now = runs_now.get(field).copied().unwrap_or(0);
            let before = match &runs_before {
                Some(r) => Some(r.get(field).copied().unwrap_or(0)),
                None if m.parents.is_empty() => Some(0),
                None => None,
            };
            if before == Some(now) {
                continue;
            }
            tracks.insert(
                field.clone(),
                json!({"runs": now, "runs_delta": delta(now, before)}),
            );
        }
        let records_before = match &parent {
            Some(p) => Some(p.records),
            None if m.parents.is_empty() => Some(0),
            None => None,
        };
        commits.push(json!({
            "hash": w.hash.to_hex(),
            "height": m.height,
            "parents": m.parents.iter().map(|p| p.to_hex()).collect::<Vec<_>>(),
            "writer": m.writer,
            "time_unix_nanos": m.time_unix_nanos,
            "time": iso_time(m.time_unix_nanos),
            "message": m.message,
            "records": m.records,
            "records_delta": delta(m.records, records_before),
            "tombstones": tomb_now,
            "tombstones_delta": delta(tomb_now, tomb_before),
            "tracks": tracks,
        }));
    }
    let value = json!({
        "verb": "log",
        "dataset": ctx.dataset,
        "from": from.via,
        "commits": commits,
        "history_cut": notes.missing_parents.iter().map(|(p, c)| json!({
            "missing": p.to_hex(), "child": c.to_hex()
        })).collect::<Vec<_>>(),
    });
    ctx.out.emit(&value, |v| {
        let mut s = String::new();
        for c in v["commits"].as_array().into_iter().flatten() {
            let hash = text(&c["hash"]);
            let parents = c["parents"].as_array().map_or(0, Vec::len);
            s.push_str(&format!(
                "commit {}{}\n",
                hash,
                if parents > 1 {
                    format!(" (merge of {parents})")
                } else {
                    String::new()
                }
            ));
            s.push_str(&format!(
                "  {}  {}  height {}\n",
                text(&c["time"]),
                text(&c["writer"]),
                text(&c["height"])
            ));
            s.push_str(&format!(
                "  records {} ({:+})  tombstones {} ({:+})\n",
                text(&c["records"]),
                c["records_delta"].as_i64().unwrap_or(0),
                text(&c["tombstones"]),
                c["tombstones_delta"].as_i64().unwrap_or(0),
            ));
            if let Some(tracks) = c["tracks"].as_object() {
                for (field, t) in tracks {
                    s.push_str(&format!(
                        "  track {field}: {} runs ({:+})\n",
                        text(&t["runs"]),
                        t["runs_delta"].as_i64().unwrap_or(0)
                    ));
                }
            }
            s.push_str(&format!("\n    {}\n\n", text(&c["message"])));
        }
        for cut in v["history_cut"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "(history ends: parent {} of {} was removed by gc)\n",
                text(&cut["missing"]),
                text(&cut["child"])
            ));
        }
        s
    });
    Ok(OK)
}

fn root_json(root: &TrackRoot) -> Value {
    match root {
        TrackRoot::Inline { entries } => json!({"form": "inline", "runs": entries.len()}),
        TrackRoot::Paged {
            page,
            height,
            count,
            top,
        } => json!({
            "form": if top.is_some() { "paged, root page in the Manifest" } else { "paged" },
            "runs": count, "height": height, "page": page.to_hex()
        }),
    }
}

/// `dreamdb inspect`.
pub async fn inspect(ctx: &Ctx, args: InspectArgs) -> Result<u8, CliError> {
    let repo = ctx.repo()?;
    let at = resolve(&repo, &args.version).await?;
    let m = repo.manifest(&at.manifest).await?;
    let schema = repo.schema(&m.schema).await?;
    let mut tracks = Map::new();
    for (field, state) in &m.tracks {
        let mut t = root_json(&track_root_of(&state.root)?);
        t["spatial_index"] = json!(state.spatial_index.map(|h| h.to_hex()));
        t["compressor"] = json!(state.compressor.map(|h| h.to_hex()));
        tracks.insert(field.clone(), t);
    }
    let fields: Map<String, Value> = schema
        .fields
        .iter()
        .map(|(name, f)| {
            let spec = serde_json::to_value(f).unwrap_or_else(|_| Value::String(format!("{f:?}")));
            (name.clone(), spec)
        })
        .collect();
    let value = json!({
        "verb": "inspect",
        "dataset": ctx.dataset,
        "version": at.via,
        "manifest": at.manifest.to_hex(),
        "genesis": m.genesis.to_hex(),
        "height": m.height,
        "parents": m.parents.iter().map(|p| p.to_hex()).collect::<Vec<_>>(),
        "writer": m.writer,
        "time_unix_nanos": m.time_unix_nanos,
        "time": iso_time(m.time_unix_nanos),
        "message": m.message,
        "records": m.records,
        "tombstones": tombstones(&repo, &m).await?,
        "schema": {"hash": m.schema.to_hex(), "fields": fields},
        "tracks": tracks,
        "registry": m.registry.iter().map(|(k, h)| (k.clone(), json!(h.to_hex()))).collect::<Map<_, _>>(),
    });
    ctx.out.emit(&value, |v| {
        let mut s = table(&[
            ("version", text(&v["version"])),
            ("manifest", text(&v["manifest"])),
            ("height", text(&v["height"])),
            (
                "parents",
                v["parents"]
                    .as_array()
                    .map(|p| p.iter().map(text).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default(),
            ),
            ("writer", text(&v["writer"])),
            ("time", text(&v["time"])),
            ("message", text(&v["message"])),
            ("records", text(&v["records"])),
            ("tombstones", text(&v["tombstones"])),
            ("schema", text(&v["schema"]["hash"])),
        ]);
        for (name, spec) in v["schema"]["fields"].as_object().into_iter().flatten() {
            s.push_str(&format!("  field {name}: {spec}\n"));
        }
        for (name, t) in v["tracks"].as_object().into_iter().flatten() {
            s.push_str(&format!(
                "  track {name}: {} runs ({})\n",
                text(&t["runs"]),
                text(&t["form"])
            ));
        }
        for (key, h) in v["registry"].as_object().into_iter().flatten() {
            s.push_str(&format!("  registry {key}: {}\n", text(h)));
        }
        s
    });
    Ok(OK)
}

#[derive(Default)]
struct Side {
    anchor_runs: u64,
    records: u64,
    cell_runs: u64,
    listed: Vec<Value>,
}

impl Side {
    fn add(&mut self, value: &TrackValue, first_anchor: Option<u64>, limit: usize) {
        match value {
            TrackValue::AnchorRun {
                segment,
                last_anchor,
                count,
                ..
            } => {
                self.anchor_runs += 1;
                self.records += u64::from(*count);
                if self.listed.len() < limit {
                    self.listed.push(json!({
                        "first_anchor": first_anchor,
                        "last_anchor": last_anchor,
                        "records": count,
                        "segment": segment.to_hex(),
                    }));
                }
            }
            TrackValue::CellRun { .. } => self.cell_runs += 1,
        }
    }

    fn json(&self) -> Value {
        json!({
            "records": self.records,
            "anchor_runs": self.anchor_runs,
            "cell_runs": self.cell_runs,
            "runs": self.listed,
        })
    }
}

async fn tombstone_anchors(repo: &Repo, m: &Manifest) -> Result<BTreeSet<u64>, CliError> {
    Ok(match m.registry.get(TOMBSTONES_KEY) {
        Some(hash) => {
            let list: TombstoneList = repo.get_object(hash).await?;
            list.entries.iter().map(|t| t.anchor.as_nanos()).collect()
        }
        None => BTreeSet::new(),
    })
}

/// `dreamdb diff A B`.
pub async fn diff(ctx: &Ctx, args: DiffArgs) -> Result<u8, CliError> {
    let repo = ctx.repo()?;
    let a = resolve(&repo, &args.a).await?;
    let b = resolve(&repo, &args.b).await?;
    let ma = repo.manifest(&a.manifest).await?;
    let mb = repo.manifest(&b.manifest).await?;
    let fields: BTreeSet<&String> = ma.tracks.keys().chain(mb.tracks.keys()).collect();
    let mut out = Map::new();
    let (mut total_a, mut total_b) = (0u64, 0u64);
    for field in fields {
        if args.field.as_ref().is_some_and(|f| f != field) {
            continue;
        }
        let root = |m: &Manifest| -> Result<TrackRoot, CliError> {
            match m.tracks.get(field) {
                Some(state) => Ok(track_root_of(&state.root)?),
                None => Ok(TrackRoot::empty()),
            }
        };
        let (entries, _) = repo
            .tracks()
            .diff(&root(&ma)?, &root(&mb)?)
            .await
            .map_err(|e| CliError::other(e.to_string()))?;
        let (mut only_a, mut only_b) = (Side::default(), Side::default());
        let mut changed = 0u64;
        for e in &entries {
            let first = e.key.first_anchor();
            match (&e.left, &e.right) {
                (Some(l), None) => only_a.add(l, first, args.limit),
                (None, Some(r)) => only_b.add(r, first, args.limit),
                (Some(_), Some(_)) => changed += 1,
                (None, None) => {}
            }
        }
        total_a += only_a.records;
        total_b += only_b.records;
        out.insert(
            field.clone(),
            json!({"only_in_a": only_a.json(), "only_in_b": only_b.json(), "changed_runs": changed}),
        );
    }
    let ta = tombstone_anchors(&repo, &ma).await?;
    let tb = tombstone_anchors(&repo, &mb).await?;
    let deleted_only_a: Vec<u64> = ta.difference(&tb).copied().collect();
    let deleted_only_b: Vec<u64> = tb.difference(&ta).copied().collect();
    let value = json!({
        "verb": "diff",
        "dataset": ctx.dataset,
        "a": {"version": a.via, "manifest": a.manifest.to_hex(), "records": ma.records},
        "b": {"version": b.via, "manifest": b.manifest.to_hex(), "records": mb.records},
        "identical": a.manifest == b.manifest,
        "records_only_in_a": total_a,
        "records_only_in_b": total_b,
        "fields": out,
        "deleted_only_in_a": deleted_only_a,
        "deleted_only_in_b": deleted_only_b,
    });
    ctx.out.emit(&value, |v| {
        let mut s = table(&[
            (
                "a",
                format!("{} {}", text(&v["a"]["version"]), short(&a.manifest)),
            ),
            (
                "b",
                format!("{} {}", text(&v["b"]["version"]), short(&b.manifest)),
            ),
            ("records only in a", text(&v["records_only_in_a"])),
            ("records only in b", text(&v["records_only_in_b"])),
            (
                "deleted only in a / b",
                format!("{} / {}", deleted_only_a.len(), deleted_only_b.len()),
            ),
        ]);
        for (field, f) in v["fields"].as_object().into_iter().flatten() {
            s.push_str(&format!(
                "  {field}: -{} records ({} runs) +{} records ({} runs), {} changed\n",
                text(&f["only_in_a"]["records"]),
                text(&f["only_in_a"]["anchor_runs"]),
                text(&f["only_in_b"]["records"]),
                text(&f["only_in_b"]["anchor_runs"]),
                text(&f["changed_runs"]),
            ));
        }
        s
    });
    Ok(OK)
}

fn short(hash: &ContentHash) -> String {
    hash.short()
}
