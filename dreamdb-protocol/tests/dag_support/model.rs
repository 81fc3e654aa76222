//! The in-memory model of the DAG and the op runner of the model-based
//! property test (shared by `dag_model.rs` and `dag_s3.rs`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use dreamdb_connector::Connector;
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{
    DagError, MergeOptions, MergeOutcome, Repo, Strategy as MergeStrategy,
};
use dreamdb_protocol::track::TrackValue;
use proptest::prelude::*;

use super::*;

/// One op, with indexes resolved against the current state.
#[derive(Debug, Clone)]
pub enum Op {
    Append {
        r: usize,
        f: usize,
        n: usize,
    },
    Delete {
        r: usize,
        f: usize,
        pick: usize,
    },
    Branch {
        r: usize,
        name: usize,
    },
    Tag {
        r: usize,
        name: usize,
    },
    Reset {
        r: usize,
        to: usize,
    },
    Merge {
        o: usize,
        t: usize,
        strategy: u8,
        ff: bool,
    },
    MergeMany {
        o: usize,
        ts: Vec<usize>,
    },
    FastForward {
        r: usize,
        to: usize,
    },
}

pub fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    prop_oneof![
        4 => (0..8usize, 0..4usize, 1..4usize).prop_map(|(r, f, n)| Op::Append { r, f, n }),
        2 => (0..8usize, 0..4usize, 0..64usize).prop_map(|(r, f, pick)| Op::Delete { r, f, pick }),
        2 => (0..8usize, 0..BRANCHES.len()).prop_map(|(r, name)| Op::Branch { r, name }),
        1 => (0..8usize, 0..TAGS.len()).prop_map(|(r, name)| Op::Tag { r, name }),
        1 => (0..8usize, 0..64usize).prop_map(|(r, to)| Op::Reset { r, to }),
        3 => (0..8usize, 0..8usize, 0..3u8, any::<bool>())
            .prop_map(|(o, t, strategy, ff)| Op::Merge { o, t, strategy, ff }),
        1 => (0..8usize, proptest::collection::vec(0..8usize, 2..4))
            .prop_map(|(o, ts)| Op::MergeMany { o, ts }),
        1 => (0..8usize, 0..8usize).prop_map(|(r, to)| Op::FastForward { r, to }),
    ]
}

pub fn ops(max: usize) -> impl proptest::strategy::Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..max)
}

const BRANCHES: [&str; 4] = ["main", "dev", "feature/a", "feature/b"];
const TAGS: [&str; 2] = ["v1", "v2"];

type State = BTreeMap<String, BTreeMap<Vec<u8>, TrackValue>>;

#[derive(Default)]
struct Model {
    refs: BTreeMap<String, ContentHash>,
    tags: BTreeMap<String, ContentHash>,
    states: HashMap<ContentHash, State>,
    ancestors: HashMap<ContentHash, BTreeSet<ContentHash>>,
    known: Vec<ContentHash>,
    counter: u64,
}

impl Model {
    fn add(&mut self, hash: ContentHash, state: State, parents: &[ContentHash]) {
        let mut anc = BTreeSet::from([hash]);
        for p in parents {
            anc.extend(self.ancestors[p].iter().copied());
        }
        self.ancestors.insert(hash, anc);
        self.states.insert(hash, state);
        if !self.known.contains(&hash) {
            self.known.push(hash);
        }
    }

    fn ref_at(&self, i: usize) -> (String, ContentHash) {
        let (n, h) = self.refs.iter().nth(i % self.refs.len()).unwrap();
        (n.clone(), *h)
    }

    fn is_anc(&self, a: ContentHash, b: ContentHash) -> bool {
        self.ancestors[&b].contains(&a)
    }

    fn lca(&self, a: ContentHash, b: ContentHash) -> Vec<ContentHash> {
        let common: BTreeSet<_> = self.ancestors[&a]
            .intersection(&self.ancestors[&b])
            .copied()
            .collect();
        common
            .iter()
            .copied()
            .filter(|c| {
                !common
                    .iter()
                    .any(|d| d != c && self.ancestors[d].contains(c))
            })
            .collect()
    }
}

/// Entry-level 3-way union (keys are unique; values never change here).
fn union3(b: &State, o: &State, t: &State) -> State {
    let mut out = State::new();
    let fields: BTreeSet<&String> = b.keys().chain(o.keys()).chain(t.keys()).collect();
    let empty = BTreeMap::new();
    for f in fields {
        let (bf, of, tf) = (
            b.get(f).unwrap_or(&empty),
            o.get(f).unwrap_or(&empty),
            t.get(f).unwrap_or(&empty),
        );
        let keys: BTreeSet<&Vec<u8>> = bf.keys().chain(of.keys()).chain(tf.keys()).collect();
        let mut m = BTreeMap::new();
        for k in keys {
            let (bv, ov, tv) = (bf.get(k), of.get(k), tf.get(k));
            let v = if ov == tv || tv == bv { ov } else { tv };
            if let Some(v) = v {
                m.insert(k.clone(), *v);
            }
        }
        if !m.is_empty() {
            out.insert(f.clone(), m);
        }
    }
    out
}

/// The model's expectation of a merge of `ts` into `o`.
enum Expect {
    UpToDate,
    FastForward(ContentHash),
    Merged(State, Vec<ContentHash>),
    CrissCross,
}

fn expect_merge(
    model: &Model,
    o: ContentHash,
    ts: &[ContentHash],
    strategy: MergeStrategy,
    ff: bool,
) -> Expect {
    let mut pending = Vec::new();
    for t in ts {
        if !pending.contains(t) && !model.is_anc(*t, o) {
            pending.push(*t);
        }
    }
    match pending.as_slice() {
        [] => return Expect::UpToDate,
        [only] if ff && model.is_anc(o, *only) => return Expect::FastForward(*only),
        _ => {}
    }
    let mut acc = model.states[&o].clone();
    for t in &pending {
        let bases = model.lca(o, *t);
        if bases.len() != 1 {
            return Expect::CrissCross;
        }
        let ts = &model.states[t];
        acc = match strategy {
            MergeStrategy::Union => union3(&model.states[&bases[0]], &acc, ts),
            MergeStrategy::Ours => acc,
            MergeStrategy::Theirs => ts.clone(),
        };
    }
    let mut parents = vec![o];
    parents.extend(pending);
    Expect::Merged(acc, parents)
}

const FIELD_NAMES: [&str; 4] = ["emb", "label", "img", "clip"];

/// Runs `ops` on a fresh dataset in `connector`, checking the repo against
/// the model after each.
pub async fn run_model(connector: Arc<dyn Connector>, ops: &[Op]) {
    let repo = repo(connector);
    run_model_on(&repo, ops).await;
}

pub async fn run_model_on(repo: &Repo, ops: &[Op]) {
    let m0 = create(repo).await;
    let mut model = Model::default();
    model.add(m0, State::new(), &[]);
    model.refs.insert("main".to_owned(), m0);
    for (step, op) in ops.iter().enumerate() {
        apply(repo, &mut model, op).await;
        check(repo, &model, step, op).await;
    }
}

async fn apply(repo: &Repo, model: &mut Model, op: &Op) {
    match op {
        Op::Append { r, f, n } => {
            let (rname, old) = model.ref_at(*r);
            let field = FIELD_NAMES[*f];
            model.counter += 1;
            let c = model.counter;
            let seg = segment(repo, &format!("op-{c}")).await;
            let entries: Vec<_> = (0..*n as u64)
                .map(|i| {
                    if field == "emb" {
                        cell_entry((c as u32 + i as u32) % 8, seg, 1)
                    } else {
                        anchor_entry(c * 100 + i, seg, 1)
                    }
                })
                .collect();
            let new = append(repo, &rname, field, entries.clone(), None)
                .await
                .unwrap();
            let mut state = model.states[&old].clone();
            let fm = state.entry(field.to_owned()).or_default();
            for (k, v) in entries {
                fm.insert(k.as_bytes().to_vec(), v);
            }
            model.add(new, state, &[old]);
            model.refs.insert(rname, new);
        }
        Op::Delete { r, f, pick } => {
            let (rname, old) = model.ref_at(*r);
            let field = FIELD_NAMES[*f];
            let mut state = model.states[&old].clone();
            let Some(fm) = state.get_mut(field) else {
                return;
            };
            let key = fm.keys().nth(pick % fm.len()).cloned().unwrap();
            fm.remove(&key);
            if fm.is_empty() {
                state.remove(field);
            }
            let tk = dreamdb_protocol::track::TrackKey::from_bytes(&key).unwrap();
            let new = delete(repo, &rname, field, vec![tk]).await;
            model.add(new, state, &[old]);
            model.refs.insert(rname, new);
        }
        Op::Branch { r, name: n } => {
            let (_, at) = model.ref_at(*r);
            let bname = BRANCHES[*n];
            let result = repo.branch(&name(bname), at).await;
            match model.refs.get(bname) {
                Some(existing) if *existing != at => {
                    assert!(
                        matches!(result, Err(DagError::AlreadyExists { .. })),
                        "{result:?}"
                    )
                }
                _ => {
                    result.unwrap();
                    model.refs.insert(bname.to_owned(), at);
                }
            }
        }
        Op::Tag { r, name: n } => {
            let (_, at) = model.ref_at(*r);
            let tname = TAGS[*n];
            let result = repo.tag(&name(tname), at).await;
            match model.tags.get(tname) {
                Some(existing) if *existing != at => {
                    assert!(
                        matches!(result, Err(DagError::AlreadyExists { .. })),
                        "{result:?}"
                    )
                }
                _ => {
                    result.unwrap();
                    model.tags.insert(tname.to_owned(), at);
                }
            }
        }
        Op::Reset { r, to } => {
            let (rname, _) = model.ref_at(*r);
            let target = model.known[to % model.known.len()];
            repo.reset(&name(&rname), target).await.unwrap();
            model.refs.insert(rname, target);
        }
        Op::FastForward { r, to } => {
            let (rname, cur) = model.ref_at(*r);
            let (_, target) = model.ref_at(*to);
            let result = repo.fast_forward(&name(&rname), target).await;
            if model.is_anc(cur, target) {
                result.unwrap();
                model.refs.insert(rname, target);
            } else {
                assert!(
                    matches!(result, Err(DagError::NotAncestor { .. })),
                    "{result:?}"
                );
            }
        }
        Op::Merge { o, t, strategy, ff } => {
            let (oname, _) = model.ref_at(*o);
            let (_, th) = model.ref_at(*t);
            let strategy = [
                MergeStrategy::Union,
                MergeStrategy::Ours,
                MergeStrategy::Theirs,
            ][*strategy as usize];
            merge_op(repo, model, &oname, &[th], strategy, *ff).await;
        }
        Op::MergeMany { o, ts } => {
            let (oname, _) = model.ref_at(*o);
            let theirs: Vec<ContentHash> = ts.iter().map(|t| model.ref_at(*t).1).collect();
            merge_op(repo, model, &oname, &theirs, MergeStrategy::Union, true).await;
        }
    }
}

async fn merge_op(
    repo: &Repo,
    model: &mut Model,
    oname: &str,
    theirs: &[ContentHash],
    strategy: MergeStrategy,
    ff: bool,
) {
    let oh = model.refs[oname];
    let mut options = MergeOptions::union("model", "merge").with_strategy(strategy);
    options.allow_fast_forward = ff;
    let result = repo.merge_many(&name(oname), theirs, &options).await;
    match expect_merge(model, oh, theirs, strategy, ff) {
        Expect::UpToDate => {
            assert_eq!(result.unwrap(), MergeOutcome::AlreadyUpToDate { at: oh })
        }
        Expect::FastForward(to) => {
            assert_eq!(result.unwrap(), MergeOutcome::FastForward { to });
            model.refs.insert(oname.to_owned(), to);
        }
        Expect::CrissCross => {
            assert!(
                matches!(result, Err(DagError::CrissCross { .. })),
                "{result:?}"
            )
        }
        Expect::Merged(state, parents) => {
            let MergeOutcome::Merged { manifest, .. } = result.unwrap() else {
                panic!("expected a merge");
            };
            let m = repo.manifest(&manifest).await.unwrap();
            assert_eq!(m.parents, parents);
            model.add(manifest, state, &parents);
            model.refs.insert(oname.to_owned(), manifest);
        }
    }
}

async fn check(repo: &Repo, model: &Model, step: usize, op: &Op) {
    for (rname, hash) in &model.refs {
        let state = repo.read_ref(&name(rname)).await.unwrap().unwrap();
        assert_eq!(state.manifest, *hash, "step {step} {op:?}: ref {rname}");
        let tracks = tracks_of(repo, hash).await;
        assert_eq!(
            &tracks, &model.states[hash],
            "step {step} {op:?}: tracks of {rname}"
        );
    }
    for (tname, hash) in &model.tags {
        let state = repo.read_tag(&name(tname)).await.unwrap().unwrap();
        assert_eq!(state.manifest, *hash, "step {step}: tag {tname}");
    }
    let targets: BTreeSet<ContentHash> = model
        .refs
        .values()
        .chain(model.tags.values())
        .copied()
        .collect();
    for a in &targets {
        for b in &targets {
            assert_eq!(
                repo.is_ancestor(*a, *b).await.unwrap(),
                model.is_anc(*a, *b),
                "step {step} {op:?}: is_ancestor"
            );
        }
    }
}
