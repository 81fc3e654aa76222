//! [`CountingConnector`]: a connector that counts calls and bytes.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use super::OpKind;
use crate::{
    ByteRange, Connector, ConnectorError, GetResult, KeyPrefix, ListStream, ObjectKey, ObjectMeta,
    PutMode, PutOutcome,
};

/// Counts for one [`OpKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Calls made (successful or not).
    pub calls: u64,
    /// Object bytes returned by successful reads.
    pub bytes_read: u64,
    /// Object bytes sent by puts (whatever their outcome).
    pub bytes_written: u64,
}

/// A snapshot of a [`CountingConnector`]'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    per_op: [OpCounts; 6],
}

impl CallCounts {
    /// The counts of one kind of call.
    pub fn op(&self, op: OpKind) -> OpCounts {
        self.per_op[op.index()]
    }

    /// Calls of one kind.
    pub fn calls(&self, op: OpKind) -> u64 {
        self.op(op).calls
    }

    /// Calls of every kind.
    pub fn total_calls(&self) -> u64 {
        self.per_op.iter().map(|c| c.calls).sum()
    }

    /// Bytes read by every kind of call.
    pub fn total_bytes_read(&self) -> u64 {
        self.per_op.iter().map(|c| c.bytes_read).sum()
    }

    /// Bytes written by every kind of call.
    pub fn total_bytes_written(&self) -> u64 {
        self.per_op.iter().map(|c| c.bytes_written).sum()
    }
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

/// Wraps a connector and counts its calls and bytes per [`OpKind`].
///
/// A call is counted when it is made (a listing when `list` is called, not
/// per page); bytes read are counted when a read succeeds.
#[derive(Debug)]
pub struct CountingConnector<C: Connector> {
    inner: C,
    counters: [Counters; 6],
}

impl<C: Connector> CountingConnector<C> {
    /// Wraps `inner` with all counters at zero.
    pub fn new(inner: C) -> Self {
        CountingConnector {
            inner,
            counters: Default::default(),
        }
    }

    /// The current counts. Counters are read one by one, so a snapshot
    /// taken while calls are running may mix before and after.
    pub fn snapshot(&self) -> CallCounts {
        let mut counts = CallCounts::default();
        for op in OpKind::ALL {
            let c = &self.counters[op.index()];
            counts.per_op[op.index()] = OpCounts {
                calls: c.calls.load(Ordering::SeqCst),
                bytes_read: c.bytes_read.load(Ordering::SeqCst),
                bytes_written: c.bytes_written.load(Ordering::SeqCst),
            };
        }
        counts
    }

    /// Sets every counter back to zero.
    pub fn reset(&self) {
        for c in &self.counters {
            c.calls.store(0, Ordering::SeqCst);
            c.bytes_read.store(0, Ordering::SeqCst);
            c.bytes_written.store(0, Ordering::SeqCst);
        }
    }

    /// The wrapped connector.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    fn call(&self, op: OpKind) -> &Counters {
        let c = &self.counters[op.index()];
        c.calls.fetch_add(1, Ordering::SeqCst);
        c
    }
}

#[async_trait]
impl<C: Connector> Connector for CountingConnector<C> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn get(&self, key: &ObjectKey) -> Result<GetResult, ConnectorError> {
        let c = self.call(OpKind::Get);
        let found = self.inner.get(key).await?;
        c.bytes_read
            .fetch_add(found.bytes.len() as u64, Ordering::SeqCst);
        Ok(found)
    }

    async fn get_range(&self, key: &ObjectKey, range: ByteRange) -> Result<Bytes, ConnectorError> {
        let c = self.call(OpKind::GetRange);
        let bytes = self.inner.get_range(key, range).await?;
        c.bytes_read.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        Ok(bytes)
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ConnectorError> {
        self.call(OpKind::Head);
        self.inner.head(key).await
    }

    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, ConnectorError> {
        let c = self.call(OpKind::Put);
        c.bytes_written
            .fetch_add(bytes.len() as u64, Ordering::SeqCst);
        self.inner.put(key, bytes, mode).await
    }

    fn list<'a>(&'a self, prefix: &'a KeyPrefix) -> ListStream<'a> {
        self.call(OpKind::List);
        self.inner.list(prefix)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), ConnectorError> {
        self.call(OpKind::Delete);
        self.inner.delete(key).await
    }
}
