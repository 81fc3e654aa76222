//! Model-based property test of the DAG (the acceptance line): random
//! sequences of appends, deletes, branches, tags, resets, merges (union,
//! ours, theirs, with and without fast-forward), N-way merges and
//! fast-forwards run against a repository and against an in-memory model
//! (per-ref field → key → value maps, tags, ancestry sets). After every op
//! each ref's tracks (fully iterated) equal the model's, tags are
//! unchanged and `is_ancestor` agrees for every pair of ref and tag
//! targets. Runs on the memory and local backends; `dag_s3.rs` runs the
//! same body on an S3-compatible backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dag_support;

use std::sync::Arc;

use dag_support::model::{ops, run_model};
use dreamdb_connector::local::LocalConnector;
use dreamdb_connector::memory::MemoryConnector;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn dag_agrees_with_model_on_memory(ops in ops(48)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(run_model(Arc::new(MemoryConnector::new()), &ops));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 50, ..ProptestConfig::default() })]

    #[test]
    fn dag_agrees_with_model_on_local(ops in ops(30)) {
        let dir = tempfile::tempdir().unwrap();
        let connector = Arc::new(LocalConnector::open(dir.path().join("store")).unwrap());
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(run_model(connector, &ops));
    }
}
