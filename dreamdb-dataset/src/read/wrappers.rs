//! The read verbs on a [`Dataset`] handle: each takes the handle's current
//! version (`read_snapshot`: one ref read when the handle follows a ref,
//! none when it is pinned) and calls the free function of the same name.

use arrow_array::RecordBatch;
use futures::Stream;

use super::{
    compare_refs, get, iter, iter_arrow_batches, iter_stream, query, ArrowOptions, Comparison,
    IterOptions, QueryRequest, QueryResult, ReadBatch, Record,
};
use crate::{Dataset, DatasetError, Snapshot};

impl Dataset {
    /// `read_snapshot`, decoding strictly (see [`Snapshot::open`]).
    async fn snapshot_for_read(&self) -> Result<Snapshot, DatasetError> {
        self.snapshot_prefetching(|_| Vec::new()).await
    }

    /// The current version's Snapshot: the last one decoded when the
    /// version has not moved, else opened (reading `prefetch`'s objects
    /// beside the Schema, see [`Snapshot::open_prefetching`]).
    async fn snapshot_prefetching(
        &self,
        prefetch: impl FnOnce(&dreamdb_protocol::objects::Manifest) -> Vec<dreamdb_core::ContentHash>,
    ) -> Result<Snapshot, DatasetError> {
        let hash = self.manifest_hash().await?;
        if let Some(last) = crate::dataset::lock(&self.inner.last_snapshot).as_ref() {
            if last.manifest_hash() == hash {
                return Ok(last.clone());
            }
        }
        let snapshot = Snapshot::open_prefetching(self.store().clone(), hash, prefetch).await?;
        *crate::dataset::lock(&self.inner.last_snapshot) = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Runs `work` on the version this handle reads now. A handle that
    /// follows a ref and has read a version before starts `work` on that
    /// version *while* it reads the ref again: when the ref still names
    /// it (the usual case) the result stands, and the ref read cost no
    /// round trip of its own; when the ref moved, the result is dropped
    /// and `work` runs again on the new version (design 0006). Either way
    /// the answer is that of the version current when the call began.
    async fn on_current<T, F, Fut>(
        &self,
        prefetch: impl FnOnce(&dreamdb_protocol::objects::Manifest) -> Vec<dreamdb_core::ContentHash>,
        work: F,
    ) -> Result<T, DatasetError>
    where
        F: Fn(Snapshot) -> Fut,
        Fut: std::future::Future<Output = Result<T, DatasetError>>,
    {
        let last = crate::dataset::lock(&self.inner.last_snapshot).clone();
        if let (Some(last), false) = (last, self.is_pinned()) {
            let (hash, out) = futures::future::join(self.manifest_hash(), work(last.clone())).await;
            if hash? == last.manifest_hash() {
                return out;
            }
        }
        let snapshot = self.snapshot_prefetching(prefetch).await?;
        work(snapshot).await
    }

    /// The version this handle reads now, pinned, for the free functions of
    /// [`crate::read`] (one ref read when the handle follows a ref, none
    /// when it is pinned; the Manifest and Schema come from the cache when
    /// warm).
    pub async fn read_version(&self) -> Result<Snapshot, DatasetError> {
        self.snapshot_for_read().await
    }

    /// The record at `anchor` (see [`get()`](super::get())).
    pub async fn get(
        &self,
        anchor: u64,
        fields: Option<&[&str]>,
    ) -> Result<Option<Record>, DatasetError> {
        self.on_current(
            |_| Vec::new(),
            |snapshot| async move { get(&snapshot, anchor, fields).await },
        )
        .await
    }

    /// Top-k by vector (see [`query()`](super::query())).
    pub async fn query(&self, request: &QueryRequest) -> Result<QueryResult, DatasetError> {
        self.on_current(
            |m| super::query::first_reads(m, &request.field),
            |snapshot| async move { query(&snapshot, request).await },
        )
        .await
    }

    /// Every live record, collected (see [`iter()`](super::iter())).
    pub async fn iter(&self, options: IterOptions) -> Result<Vec<Record>, DatasetError> {
        let snapshot = self.snapshot_for_read().await?;
        iter(&snapshot, options).await
    }

    /// Every live record as a bounded-memory stream of batches, pinned to
    /// the version current when called (see
    /// [`iter_stream()`](super::iter_stream())).
    pub async fn iter_stream(
        &self,
        options: IterOptions,
    ) -> Result<
        impl Stream<Item = Result<ReadBatch, DatasetError>> + Send + Unpin + 'static,
        DatasetError,
    > {
        let snapshot = self.snapshot_for_read().await?;
        iter_stream(&snapshot, options)
    }

    /// Arrow batches, pinned to the version current when called (see
    /// [`iter_arrow_batches()`](super::iter_arrow_batches())).
    pub async fn iter_arrow_batches(
        &self,
        options: ArrowOptions,
    ) -> Result<
        impl Stream<Item = Result<RecordBatch, DatasetError>> + Send + Unpin + 'static,
        DatasetError,
    > {
        let snapshot = self.snapshot_for_read().await?;
        iter_arrow_batches(&snapshot, options)
    }

    /// Compares `field` between this handle's version (named `"self"`,
    /// the baseline) and `others` (see
    /// [`compare_refs()`](super::compare_refs())).
    pub async fn compare_refs(
        &self,
        others: &[(&str, &Dataset)],
        field: &str,
    ) -> Result<Comparison, DatasetError> {
        let mut snapshots = vec![("self", self.snapshot_for_read().await?)];
        for (name, ds) in others {
            snapshots.push((name, ds.snapshot_for_read().await?));
        }
        compare_refs(&snapshots, field).await
    }
}
