//! [`Probe`]: a connector wrapper that measures what a workload asks of
//! its backend — calls, bytes read and written, objects written, and
//! **sequential round trips** (the longest chain of calls each of which
//! started after the previous one finished).
//!
//! Why round trips: on object storage a request costs a network round
//! trip (tens of ms on a real cloud), so latency is set by how many calls
//! must wait for one another, not by how many are made. Calls issued
//! concurrently count once. The depth of a call is one more than the
//! deepest call that had *finished* when it started; the workload's depth
//! is the deepest call. This is exact for dependency chains (a call that
//! needs an earlier answer starts after it) and never undercounts.
//! [`dreamdb_connector::wrappers::CountingConnector`] counts calls per
//! kind but not depth, hence this wrapper.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use dreamdb_connector::{
    ByteRange, Connector, ConnectorError, GetResult, KeyPrefix, ListStream, ObjectKey, ObjectMeta,
    PutMode, PutOutcome,
};

/// What a [`Probe`] saw since its last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProbeCounts {
    /// Calls of every kind.
    pub calls: u64,
    /// Sequential round trips (see the module docs).
    pub round_trips: u64,
    /// Bytes returned by reads.
    pub bytes_read: u64,
    /// Bytes sent by puts.
    pub bytes_written: u64,
    /// Puts made (objects and refs written).
    pub puts: u64,
    /// Sizes of the puts, in call order.
    pub put_sizes: Vec<u64>,
}

/// Wraps a connector and measures it (see the module docs).
#[derive(Debug)]
pub struct Probe<C: Connector> {
    inner: C,
    calls: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    finished_depth: AtomicU64,
    max_depth: AtomicU64,
    puts: Mutex<Vec<u64>>,
    /// Print every read with its depth (`DREAMDB_PROBE_TRACE=1`): which
    /// calls make up the round trips. A whole-object read also prints the
    /// object's first 64 bytes as text, where its `kind` can be read.
    trace: bool,
}

impl<C: Connector> Probe<C> {
    /// Wraps `inner` with every counter at zero.
    pub fn new(inner: C) -> Self {
        Probe {
            inner,
            calls: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            finished_depth: AtomicU64::new(0),
            max_depth: AtomicU64::new(0),
            puts: Mutex::new(Vec::new()),
            trace: std::env::var_os("DREAMDB_PROBE_TRACE").is_some(),
        }
    }

    /// Sets every counter back to zero (call between workloads, with none
    /// running).
    pub fn reset(&self) {
        for c in [
            &self.calls,
            &self.bytes_read,
            &self.bytes_written,
            &self.finished_depth,
            &self.max_depth,
        ] {
            c.store(0, Ordering::SeqCst);
        }
        if let Ok(mut p) = self.puts.lock() {
            p.clear();
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> ProbeCounts {
        let put_sizes = self.puts.lock().map(|p| p.clone()).unwrap_or_default();
        ProbeCounts {
            calls: self.calls.load(Ordering::SeqCst),
            round_trips: self.max_depth.load(Ordering::SeqCst),
            bytes_read: self.bytes_read.load(Ordering::SeqCst),
            bytes_written: self.bytes_written.load(Ordering::SeqCst),
            puts: put_sizes.len() as u64,
            put_sizes,
        }
    }

    /// Starts a call: returns its depth.
    fn start(&self) -> u64 {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.finished_depth.load(Ordering::SeqCst) + 1
    }

    fn show(&self, depth: u64, op: &str, key: &ObjectKey) {
        if self.trace {
            eprintln!("probe: depth {depth:3} {op:9} {}", key.as_str());
        }
    }

    /// Ends a call of `depth`.
    fn end(&self, depth: u64) {
        self.finished_depth.fetch_max(depth, Ordering::SeqCst);
        self.max_depth.fetch_max(depth, Ordering::SeqCst);
    }
}

#[async_trait]
impl<C: Connector> Connector for Probe<C> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn get(&self, key: &ObjectKey) -> Result<GetResult, ConnectorError> {
        let depth = self.start();
        self.show(depth, "get", key);
        let out = self.inner.get(key).await;
        self.end(depth);
        if let (true, Ok(found)) = (self.trace, &out) {
            let head = found.bytes.get(..64).unwrap_or(&found.bytes);
            eprintln!(
                "probe:   {}",
                String::from_utf8_lossy(head).replace(|c: char| c.is_control(), ".")
            );
        }
        if let Ok(found) = &out {
            self.bytes_read
                .fetch_add(found.bytes.len() as u64, Ordering::SeqCst);
        }
        out
    }

    async fn get_range(&self, key: &ObjectKey, range: ByteRange) -> Result<Bytes, ConnectorError> {
        let depth = self.start();
        self.show(depth, "get_range", key);
        let out = self.inner.get_range(key, range).await;
        self.end(depth);
        if let Ok(bytes) = &out {
            self.bytes_read
                .fetch_add(bytes.len() as u64, Ordering::SeqCst);
        }
        out
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ConnectorError> {
        let depth = self.start();
        self.show(depth, "head", key);
        let out = self.inner.head(key).await;
        self.end(depth);
        out
    }

    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, ConnectorError> {
        let depth = self.start();
        let len = bytes.len() as u64;
        self.bytes_written.fetch_add(len, Ordering::SeqCst);
        if let Ok(mut p) = self.puts.lock() {
            p.push(len);
        }
        let out = self.inner.put(key, bytes, mode).await;
        self.end(depth);
        out
    }

    fn list<'a>(&'a self, prefix: &'a KeyPrefix) -> ListStream<'a> {
        // A listing's pages are not timed; it counts as one round trip.
        let depth = self.start();
        self.end(depth);
        self.inner.list(prefix)
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), ConnectorError> {
        let depth = self.start();
        let out = self.inner.delete(key).await;
        self.end(depth);
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use dreamdb_connector::memory::MemoryConnector;

    use super::*;

    #[tokio::test]
    async fn concurrent_calls_count_once_and_chains_add_up() {
        let probe = Arc::new(Probe::new(MemoryConnector::new()));
        let key = |i: u32| ObjectKey::new(format!("k{i}")).unwrap();
        for i in 0..3 {
            let outcome = probe
                .put(&key(i), Bytes::from(vec![0u8; 10]), PutMode::Overwrite)
                .await
                .unwrap();
            assert!(outcome.written().is_some());
        }
        let after_puts = probe.counts();
        assert_eq!(after_puts.round_trips, 3);
        assert_eq!(after_puts.bytes_written, 30);
        probe.reset();
        // Two calls in flight together, then one after both: depth 2.
        let (a, b) = (probe.start(), probe.start());
        probe.end(a);
        probe.end(b);
        assert_eq!(probe.counts().round_trips, 1);
        probe.get(&key(2)).await.unwrap();
        let c = probe.counts();
        assert_eq!((c.calls, c.round_trips, c.bytes_read), (3, 2, 10));
        assert_eq!(probe.counts().round_trips, 2);
    }
}
