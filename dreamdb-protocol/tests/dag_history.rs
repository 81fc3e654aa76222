//! History walks, ancestry and LCA, and hostile histories (spec/0008 §1,
//! §4): missing parents, inconsistent heights and over-deep chains are
//! typed errors in bounded time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dag_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dag_support::*;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{CommitOptions, DagError, Draft, HistoryProblem, Repo, RepoConfig};
use dreamdb_protocol::objects::Manifest;

async fn commit_on(repo: &Repo, parents: &[ContentHash], msg: &str) -> ContentHash {
    let first = repo.manifest(&parents[0]).await.unwrap();
    repo.commit(CommitOptions {
        parents: parents.to_vec(),
        draft: Draft::from_manifest(&first, "test", msg),
        time_unix_nanos: None,
    })
    .await
    .unwrap()
    .0
}

#[tokio::test]
async fn history_ancestry_and_lca() {
    let repo = repo(Arc::new(MemoryConnector::new()));
    let m0 = create(&repo).await;
    let a1 = commit_on(&repo, &[m0], "a1").await;
    let a2 = commit_on(&repo, &[a1], "a2").await;
    let b1 = commit_on(&repo, &[m0], "b1").await;
    let b2 = commit_on(&repo, &[b1], "b2").await;
    let b3 = commit_on(&repo, &[b2], "b3").await;
    let m = commit_on(&repo, &[a2, b3], "merge").await;
    let c = commit_on(&repo, &[m], "c").await;

    let walk = repo.history(c).collect().await.unwrap();
    let hashes: Vec<ContentHash> = walk.iter().map(|(h, _)| *h).collect();
    assert_eq!(hashes.len(), 8);
    assert_eq!(hashes.iter().collect::<HashSet<_>>().len(), 8, "each once");
    let heights: Vec<u64> = walk.iter().map(|(_, m)| m.height).collect();
    assert!(heights.windows(2).all(|w| w[0] >= w[1]), "{heights:?}");
    assert_eq!(hashes[0], c);
    assert_eq!(*hashes.last().unwrap(), m0);

    assert!(repo.is_ancestor(m0, c).await.unwrap());
    assert!(repo.is_ancestor(b2, c).await.unwrap());
    assert!(repo.is_ancestor(c, c).await.unwrap());
    assert!(!repo.is_ancestor(c, m0).await.unwrap());
    assert!(!repo.is_ancestor(a1, b3).await.unwrap());

    assert_eq!(repo.lca(a2, b3).await.unwrap(), vec![m0]);
    assert_eq!(repo.lca(c, b2).await.unwrap(), vec![b2]);
    assert_eq!(repo.lca(a1, a2).await.unwrap(), vec![a1]);
    let d = commit_on(&repo, &[a2], "d").await;
    // After the merge, the LCA of c and a branch off a2 is a2, not m0.
    assert_eq!(repo.lca(c, d).await.unwrap(), vec![a2]);
}

async fn write(repo: &Repo, m: &Manifest) -> ContentHash {
    repo.put_object(m).await.unwrap()
}

#[tokio::test]
async fn missing_parent_is_a_typed_error() {
    let repo = repo(Arc::new(MemoryConnector::new()));
    let m0 = create(&repo).await;
    let mut m = repo.manifest(&m0).await.unwrap();
    let ghost = ContentHash::of(b"never written");
    m.parents = vec![ghost];
    m.height = 1;
    let bad = write(&repo, &m).await;
    let err = repo.history(bad).collect().await.unwrap_err();
    assert!(
        matches!(err, DagError::History { hash, problem: HistoryProblem::Missing } if hash == ghost),
        "{err}"
    );
    let err = repo.lca(bad, m0).await.unwrap_err();
    assert_eq!(err.class(), "history:missing");
    let err = repo.is_ancestor(m0, bad).await.unwrap_err();
    assert_eq!(err.class(), "history:missing");
}

#[tokio::test]
async fn inconsistent_height_is_a_typed_error() {
    let repo = repo(Arc::new(MemoryConnector::new()));
    let m0 = create(&repo).await;
    let mut m = repo.manifest(&m0).await.unwrap();
    m.parents = vec![m0];
    m.height = 7;
    let bad = write(&repo, &m).await;
    let err = repo.history(bad).collect().await.unwrap_err();
    assert!(
        matches!(err, DagError::History { hash, problem: HistoryProblem::Height { found: 7, expected: 1 } } if hash == bad),
        "{err}"
    );
    let good = commit_on(&repo, &[m0], "ok").await;
    let err = repo.lca(bad, good).await.unwrap_err();
    assert_eq!(err.class(), "history:height");
}

#[tokio::test]
async fn a_chain_deeper_than_the_bound_is_refused_quickly() {
    let connector = Arc::new(MemoryConnector::new());
    let repo = repo_with(
        connector,
        RepoConfig {
            history_limit: 50,
            ..config()
        },
    );
    let m0 = create(&repo).await;
    let mut tip = m0;
    for i in 0..80 {
        tip = commit_on(&repo, &[tip], &format!("c{i}")).await;
    }
    let started = Instant::now();
    let err = repo.history(tip).collect().await.unwrap_err();
    assert!(
        matches!(
            err,
            DagError::History {
                problem: HistoryProblem::TooLarge { limit: 50 },
                ..
            }
        ),
        "{err}"
    );
    let err = repo.is_ancestor(m0, tip).await.unwrap_err();
    assert_eq!(err.class(), "history:too-large");
    let side = commit_on(&repo, &[m0], "side").await;
    let err = repo.lca(tip, side).await.unwrap_err();
    assert_eq!(err.class(), "history:too-large");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Within the bound, the same walks work.
    let near = repo.history(tip).next().await.unwrap().unwrap();
    assert_eq!(near.0, tip);
}
