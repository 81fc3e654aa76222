//! `dag` vectors: lowest common ancestors, ancestry and merge outcomes of
//! small Manifest DAGs (spec/0008 §1, §4–5).
//!
//! Each vector's manifests are built for real in an in-memory repository
//! (labels become content hashes), then `lca`, `is_ancestor` and `merge`
//! run through `dreamdb_protocol::dag` and are compared by label.

use std::collections::BTreeMap;

use dreamdb_core::ref_name::RefName;
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{
    run_blocking, stored_root_of, track_root_of, CreateDataset, DagError, MergeOptions,
    MergeOutcome, Repo,
};
use dreamdb_protocol::objects::{
    DatasetName, Genesis, Manifest, Metric, Schema, SpatialIndexObject, TrackState,
};
use dreamdb_protocol::track::{KeyRange, TrackKey, TrackValue};

use crate::{expect_eq, fields, Vector};

type Json = serde_json::Value;

fn arr<'a>(v: &'a Json, what: &str) -> Result<&'a Vec<Json>, String> {
    v.as_array()
        .ok_or_else(|| format!("{what} must be an array"))
}

fn text<'a>(v: &'a Json, key: &str) -> Result<&'a str, String> {
    v.get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| format!("missing string {key:?}"))
}

fn labels(v: &Json, key: &str) -> Result<Vec<String>, String> {
    arr(v.get(key).ok_or_else(|| format!("missing {key:?}"))?, key)?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{key:?} must hold labels"))
        })
        .collect()
}

/// An entry label (`a:<anchor>:<segment>` or `c:<cell>:<segment>`) and
/// count as a track entry.
fn entry(label: &str, count: &Json) -> Result<(TrackKey, TrackValue), String> {
    let count = count
        .as_u64()
        .and_then(|c| u32::try_from(c).ok())
        .ok_or_else(|| format!("entry {label:?}: count must be a u32"))?;
    let mut parts = label.splitn(3, ':');
    let (Some(kind), Some(n), Some(seg)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("bad entry label {label:?}"));
    };
    let n: u64 = n.parse().map_err(|_| format!("bad number in {label:?}"))?;
    let segment = ContentHash::of(seg.as_bytes());
    match kind {
        "a" => Ok((
            TrackKey::anchor_run(n, &segment),
            TrackValue::AnchorRun {
                segment,
                last_anchor: n,
                count,
                table_offset: 0,
                table_len: 8,
                storage: None,
            },
        )),
        "c" => {
            let cell = u32::try_from(n).map_err(|_| format!("cell too large in {label:?}"))?;
            Ok((
                TrackKey::cell_run(cell, &segment),
                TrackValue::CellRun {
                    segment,
                    offset: 0,
                    len: 8,
                    count,
                    run_hash: ContentHash::of(label.as_bytes()),
                    raw: None,
                },
            ))
        }
        _ => Err(format!("bad entry kind in {label:?}")),
    }
}

/// Entries as (key bytes, value), in key order.
type Entries = Vec<(Vec<u8>, TrackValue)>;

fn entries_of(map: &Json) -> Result<Vec<(TrackKey, TrackValue)>, String> {
    map.as_object()
        .ok_or_else(|| "entries must be an object".to_owned())?
        .iter()
        .map(|(label, count)| entry(label, count))
        .collect()
}

fn outcome_class(outcome: &Result<MergeOutcome, DagError>) -> String {
    match outcome {
        Ok(MergeOutcome::AlreadyUpToDate { .. }) => "up-to-date".to_owned(),
        Ok(MergeOutcome::FastForward { .. }) => "fast-forward".to_owned(),
        Ok(MergeOutcome::Merged { .. }) => "merge".to_owned(),
        Err(DagError::MergeConflict { .. }) => "conflict".to_owned(),
        Err(DagError::SpatialIndexIncompatible { .. }) => "refused-spatial-index".to_owned(),
        Err(DagError::CrissCross { .. }) => "criss-cross".to_owned(),
        Err(e) => format!("error {}: {e}", e.class()),
    }
}

fn hash_of(ids: &BTreeMap<String, ContentHash>, label: &str) -> Result<ContentHash, String> {
    ids.get(label)
        .copied()
        .ok_or_else(|| format!("unknown label {label:?}"))
}

fn label_of(ids: &BTreeMap<String, ContentHash>, hash: &ContentHash) -> String {
    ids.iter()
        .find(|(_, h)| *h == hash)
        .map_or_else(|| hash.short(), |(l, _)| l.clone())
}

async fn build(vector: &Vector, repo: &Repo) -> Result<BTreeMap<String, ContentHash>, String> {
    let err = |e: DagError| e.to_string();
    let (genesis, _) = repo
        .create_dataset(CreateDataset {
            genesis: Genesis {
                dataset: repo.dataset().as_str().to_owned(),
                created_unix_nanos: 0,
                nonce: [0; 16],
            },
            schema: Schema {
                fields: BTreeMap::new(),
            },
            writer: "conformance".to_owned(),
            message: "create".to_owned(),
            tracks: BTreeMap::new(),
            time_unix_nanos: Some(0),
        })
        .await
        .map_err(err)?;
    let schema = repo
        .manifest(
            &repo
                .read_ref(&RefName::parse("main").map_err(|e| e.to_string())?)
                .await
                .map_err(err)?
                .ok_or("no main")?
                .manifest,
        )
        .await
        .map_err(err)?
        .schema;
    let mut sis = BTreeMap::new();
    if let Some(list) = vector.fields.get("spatial_indexes") {
        for si in arr(list, "spatial_indexes")? {
            let parents = labels(si, "parents")?
                .iter()
                .map(|p| hash_of(&sis, p))
                .collect::<Result<Vec<_>, _>>()?;
            let changed_cells = si
                .get("changed_cells")
                .and_then(Json::as_array)
                .ok_or("changed_cells must be an array")?
                .iter()
                .map(|c| {
                    c.as_u64()
                        .and_then(|c| u32::try_from(c).ok())
                        .ok_or("bad cell")
                })
                .collect::<Result<Vec<u32>, _>>()?;
            let id = text(si, "id")?;
            let object = SpatialIndexObject {
                algorithm: "dreamdb.ivf".to_owned(),
                metric: Metric::L2,
                dim: 4,
                cells: 8,
                // The algorithm's opaque parameters: here just the label.
                params: serde_json::from_value(Json::String(id.to_owned()))
                    .map_err(|e| e.to_string())?,
                parents,
                changed_cells,
            };
            sis.insert(id.to_owned(), repo.put_object(&object).await.map_err(err)?);
        }
    }
    let mut ids = BTreeMap::new();
    let mut heights = BTreeMap::new();
    for (time, m) in arr(fields::get(vector, "manifests")?, "manifests")?
        .iter()
        .enumerate()
    {
        let id = text(m, "id")?;
        let parents = labels(m, "parents")?
            .iter()
            .map(|p| hash_of(&ids, p))
            .collect::<Result<Vec<_>, _>>()?;
        let height = parents
            .iter()
            .map(|p| heights.get(p).copied().unwrap_or(0) + 1)
            .max()
            .unwrap_or(0);
        let mut tracks = BTreeMap::new();
        if let Some(t) = m.get("tracks").and_then(Json::as_object) {
            for (field, map) in t {
                let (root, _) = repo
                    .tracks()
                    .build(entries_of(map)?)
                    .await
                    .map_err(|e| e.to_string())?;
                let si = match m
                    .get("si")
                    .and_then(|s| s.get(field))
                    .and_then(Json::as_str)
                {
                    Some(label) => Some(hash_of(&sis, label)?),
                    None => None,
                };
                tracks.insert(
                    field.clone(),
                    TrackState {
                        root: stored_root_of(&root).map_err(err)?,
                        spatial_index: si,
                        compressor: None,
                        stats: None,
                        last_anchor: None,
                    },
                );
            }
        }
        let manifest = Manifest {
            genesis,
            parents,
            height,
            writer: "conformance".to_owned(),
            time_unix_nanos: time as u64 + 1,
            message: id.to_owned(),
            schema,
            tracks,
            registry: BTreeMap::new(),
            records: 0,
        };
        let hash = repo.put_object(&manifest).await.map_err(err)?;
        heights.insert(hash, height);
        ids.insert(id.to_owned(), hash);
    }
    Ok(ids)
}

async fn entries_in(repo: &Repo, manifest: &ContentHash, field: &str) -> Result<Entries, String> {
    let m = repo.manifest(manifest).await.map_err(|e| e.to_string())?;
    let Some(state) = m.tracks.get(field) else {
        return Ok(Entries::new());
    };
    let root = track_root_of(&state.root).map_err(|e| e.to_string())?;
    Ok(repo
        .tracks()
        .scan_all(&root, KeyRange::all())
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v))
        .collect())
}

async fn check_async(vector: &Vector) -> Result<(), String> {
    let dataset = DatasetName::parse("conformance").map_err(|e| e.to_string())?;
    let repo = Repo::in_memory(dataset);
    let ids = build(vector, &repo).await?;
    let err = |e: DagError| e.to_string();
    for case in arr(fields::get(vector, "lca")?, "lca")? {
        let (a, b) = (text(case, "a")?, text(case, "b")?);
        let got = repo
            .lca(hash_of(&ids, a)?, hash_of(&ids, b)?)
            .await
            .map_err(err)?;
        let mut got: Vec<String> = got.iter().map(|h| label_of(&ids, h)).collect();
        got.sort();
        let mut expected = labels(case, "expected")?;
        expected.sort();
        expect_eq(&format!("lca({a}, {b})"), expected, got)?;
    }
    for case in arr(fields::get(vector, "is_ancestor")?, "is_ancestor")? {
        let (a, b) = (text(case, "a")?, text(case, "b")?);
        let expected = case
            .get("expected")
            .and_then(Json::as_bool)
            .ok_or("expected must be a boolean")?;
        let got = repo
            .is_ancestor(hash_of(&ids, a)?, hash_of(&ids, b)?)
            .await
            .map_err(err)?;
        expect_eq(&format!("is_ancestor({a}, {b})"), expected, got)?;
    }
    for (i, case) in arr(fields::get(vector, "merge")?, "merge")?
        .iter()
        .enumerate()
    {
        let (ours, theirs) = (text(case, "ours")?, text(case, "theirs")?);
        let branch = RefName::parse(&format!("merge-{i}")).map_err(|e| e.to_string())?;
        repo.branch(&branch, hash_of(&ids, ours)?)
            .await
            .map_err(err)?;
        let outcome = repo
            .merge(
                &branch,
                hash_of(&ids, theirs)?,
                &MergeOptions::union("conformance", "merge"),
            )
            .await;
        let what = format!("merge {theirs} into {ours}");
        expect_eq(
            &what,
            text(case, "expected")?.to_owned(),
            outcome_class(&outcome),
        )?;
        if let (Ok(MergeOutcome::Merged { manifest, .. }), Some(result)) =
            (&outcome, case.get("result").and_then(Json::as_object))
        {
            let m = repo.manifest(manifest).await.map_err(err)?;
            expect_eq(
                &format!("{what}: parents"),
                vec![hash_of(&ids, ours)?, hash_of(&ids, theirs)?],
                m.parents,
            )?;
            for (field, map) in result {
                let mut expected: Entries = entries_of(map)?
                    .into_iter()
                    .map(|(k, v)| (k.as_bytes().to_vec(), v))
                    .collect();
                expected.sort_by(|a, b| a.0.cmp(&b.0));
                let got = entries_in(&repo, manifest, field).await?;
                expect_eq(&format!("{what}: entries of {field}"), expected, got)?;
            }
        }
    }
    Ok(())
}

pub(crate) fn check(vector: &Vector) -> Result<(), String> {
    run_blocking(check_async(vector))
}
