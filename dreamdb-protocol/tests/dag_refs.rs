//! Publishing by compare-and-swap, lost responses, transient errors, and
//! the branch/tag verbs (spec/0008 §2–§3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dag_support;

use std::sync::Arc;

use dag_support::*;
use dreamdb_connector::memory::MemoryConnector;
use dreamdb_connector::wrappers::{CountingConnector, FaultInjector, FaultPlan, OpKind};
use dreamdb_connector::Connector;
use dreamdb_core::ContentHash;
use dreamdb_protocol::dag::{CommitOptions, DagError, Draft, PublishOutcome, Repo};

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
async fn publish_wins_then_loses_a_race() {
    for backend in backends() {
        let repo = repo(backend.connector.clone());
        let m0 = create(&repo).await;
        let main = name("main");
        let tip = repo.read_ref(&main).await.unwrap().unwrap();
        assert_eq!(tip.manifest, m0);
        let a = commit_on(&repo, &[m0], "a").await;
        let b = commit_on(&repo, &[m0], "b").await;
        match repo.publish(&main, a, Some(&tip)).await.unwrap() {
            PublishOutcome::Published {
                state,
                confirmed_by_reread,
            } => {
                assert_eq!(state.manifest, a);
                assert!(!confirmed_by_reread);
            }
            other => panic!("{}: {other:?}", backend.name),
        }
        // `b` was built on the old tip: the race is lost and the new tip told.
        match repo.publish(&main, b, Some(&tip)).await.unwrap() {
            PublishOutcome::Lost { tip } => assert_eq!(tip.manifest, a),
            other => panic!("{}: {other:?}", backend.name),
        }
        assert_eq!(repo.read_ref(&main).await.unwrap().unwrap().manifest, a);
        // Heights and times follow the parents.
        let ma = repo.manifest(&a).await.unwrap();
        let m0m = repo.manifest(&m0).await.unwrap();
        assert_eq!(ma.height, 1);
        assert!(ma.time_unix_nanos > m0m.time_unix_nanos);
    }
}

#[tokio::test]
async fn lost_response_is_published_not_a_conflict() {
    let counting = CountingConnector::new(MemoryConnector::new());
    let faulty = Arc::new(FaultInjector::inert(counting));
    let connector: Arc<dyn Connector> = faulty.clone();
    let repo = repo(connector);
    let m0 = create(&repo).await;
    let main = name("main");
    let tip = repo.read_ref(&main).await.unwrap().unwrap();
    let a = commit_on(&repo, &[m0], "a").await;

    faulty.inner().reset();
    faulty.set_plan(FaultPlan::none().fail_after_put());
    let outcome = repo.publish(&main, a, Some(&tip)).await.unwrap();
    faulty.set_plan(FaultPlan::none());
    let counts = faulty.inner().snapshot();
    match outcome {
        PublishOutcome::Published {
            state,
            confirmed_by_reread,
        } => {
            assert_eq!(state.manifest, a);
            assert!(
                confirmed_by_reread,
                "the outcome must come from the re-read"
            );
        }
        other => panic!("{other:?}"),
    }
    // One conditional PUT (whose answer was lost), then one re-read of the
    // ref that found our Manifest: no second write.
    assert_eq!(counts.calls(OpKind::Put), 1, "{counts:?}");
    assert_eq!(counts.calls(OpKind::Get), 1, "{counts:?}");
    assert_eq!(repo.read_ref(&main).await.unwrap().unwrap().manifest, a);
}

#[tokio::test]
async fn transient_error_before_the_put_is_retried() {
    let counting = CountingConnector::new(MemoryConnector::new());
    let faulty = Arc::new(FaultInjector::inert(counting));
    let connector: Arc<dyn Connector> = faulty.clone();
    let repo = repo(connector);
    let m0 = create(&repo).await;
    let main = name("main");
    let tip = repo.read_ref(&main).await.unwrap().unwrap();
    let a = commit_on(&repo, &[m0], "a").await;
    faulty.inner().reset();
    // The next call (the ref PUT) fails before reaching the backend.
    let next = faulty.calls() + 1;
    faulty.set_plan(FaultPlan::none().fail_nth(next));
    let outcome = repo.publish(&main, a, Some(&tip)).await.unwrap();
    let counts = faulty.inner().snapshot();
    assert!(
        matches!(outcome, PublishOutcome::Published { ref state, .. } if state.manifest == a),
        "{outcome:?}"
    );
    // The failed PUT never reached the backend; the re-read saw the old
    // version, so the PUT was repeated.
    assert_eq!(counts.calls(OpKind::Put), 1, "{counts:?}");
    assert_eq!(counts.calls(OpKind::Get), 1, "{counts:?}");
    assert_eq!(repo.read_ref(&main).await.unwrap().unwrap().manifest, a);
}

#[tokio::test]
async fn branch_tag_reset_fast_forward_delete() {
    for backend in backends() {
        let repo = repo(backend.connector.clone());
        let m0 = create(&repo).await;
        let a = commit_on(&repo, &[m0], "a").await;
        let b = commit_on(&repo, &[a], "b").await;
        let side = commit_on(&repo, &[m0], "side").await;

        // branch: create-once, idempotent on the same target.
        repo.branch(&name("dev"), a).await.unwrap();
        repo.branch(&name("dev"), a).await.unwrap();
        let err = repo.branch(&name("dev"), b).await.unwrap_err();
        assert!(
            matches!(err, DagError::AlreadyExists { ref name, existing } if name == "refs/dev" && existing == a),
            "{err}"
        );
        // tag: same rule, never moved.
        repo.tag(&name("v1"), a).await.unwrap();
        repo.tag(&name("v1"), a).await.unwrap();
        assert!(matches!(
            repo.tag(&name("v1"), b).await.unwrap_err(),
            DagError::AlreadyExists { .. }
        ));
        assert_eq!(
            repo.read_tag(&name("v1")).await.unwrap().unwrap().manifest,
            a
        );
        assert!(repo.read_ref(&name("v1")).await.unwrap().is_none());

        // fast_forward: only along history.
        let err = repo.fast_forward(&name("dev"), side).await.unwrap_err();
        assert!(
            matches!(err, DagError::NotAncestor { ancestor, descendant } if ancestor == a && descendant == side),
            "{err}"
        );
        repo.fast_forward(&name("dev"), b).await.unwrap();
        assert_eq!(
            repo.read_ref(&name("dev")).await.unwrap().unwrap().manifest,
            b
        );

        // reset: anywhere.
        repo.reset(&name("dev"), side).await.unwrap();
        assert_eq!(
            repo.read_ref(&name("dev")).await.unwrap().unwrap().manifest,
            side
        );
        assert!(matches!(
            repo.reset(&name("nope"), side).await.unwrap_err(),
            DagError::RefNotFound { .. }
        ));

        // list (LIST is fine for tools) and delete.
        repo.branch(&name("sweep/run-1"), a).await.unwrap();
        repo.branch(&name("sweep/run-2"), a).await.unwrap();
        let names: Vec<String> = repo
            .list_refs("sweep/*")
            .await
            .unwrap()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["sweep/run-1", "sweep/run-2"], "{}", backend.name);
        assert_eq!(repo.list_refs("*").await.unwrap().len(), 2);
        assert_eq!(repo.list_tags("*").await.unwrap().len(), 1);
        repo.delete_branch(&name("sweep/run-1")).await.unwrap();
        assert!(repo.read_ref(&name("sweep/run-1")).await.unwrap().is_none());
        assert!(matches!(
            repo.delete_branch(&name("sweep/run-1")).await.unwrap_err(),
            DagError::RefNotFound { .. }
        ));
        // The tag survives everything.
        assert_eq!(
            repo.read_tag(&name("v1")).await.unwrap().unwrap().manifest,
            a
        );
    }
}

#[tokio::test]
async fn create_dataset_twice_is_refused() {
    let repo = repo(Arc::new(MemoryConnector::new()));
    create(&repo).await;
    let again = repo
        .create_dataset(dreamdb_protocol::dag::CreateDataset {
            genesis: dreamdb_protocol::objects::Genesis {
                dataset: "dagtest".to_owned(),
                created_unix_nanos: 2,
                nonce: [1; 16],
            },
            schema: schema(),
            writer: "w".to_owned(),
            message: "m".to_owned(),
            tracks: Default::default(),
            time_unix_nanos: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(again, DagError::AlreadyExists { .. }), "{again}");
}
