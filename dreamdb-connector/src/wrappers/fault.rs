//! [`FaultInjector`]: a connector that fails on purpose.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use super::OpKind;
use crate::{
    ByteRange, Connector, ConnectorError, GetResult, KeyPrefix, ListStream, ObjectKey, ObjectMeta,
    PutMode, PutOutcome,
};

/// Which faults a [`FaultInjector`] injects. The default injects nothing.
///
/// Calls are numbered from 1 over all operations, in the order they start
/// (a [`Connector::list`] call counts once, when it is made).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Fail these call numbers before they reach the backend.
    pub fail_calls: BTreeSet<u64>,
    /// Fail every call of these kinds before it reaches the backend.
    pub fail_ops: BTreeSet<OpKind>,
    /// Perform every put, then report it as failed: the data is written
    /// (or the CAS decided) but the caller sees an error, as when a
    /// response is lost on the network.
    pub fail_after_put: bool,
    /// Delay every call by this much before it starts.
    pub latency: Option<Duration>,
}

impl FaultPlan {
    /// A plan that injects nothing.
    pub fn none() -> Self {
        FaultPlan::default()
    }

    /// Also fail call number `call` (1-based).
    pub fn fail_nth(mut self, call: u64) -> Self {
        self.fail_calls.insert(call);
        self
    }

    /// Also fail every call of kind `op`.
    pub fn fail_op(mut self, op: OpKind) -> Self {
        self.fail_ops.insert(op);
        self
    }

    /// Perform puts, then report them as failed.
    pub fn fail_after_put(mut self) -> Self {
        self.fail_after_put = true;
        self
    }

    /// Delay every call by `latency`.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency);
        self
    }
}

/// Wraps a connector and injects the faults of a [`FaultPlan`], which can be
/// changed while in use.
#[derive(Debug)]
pub struct FaultInjector<C: Connector> {
    inner: C,
    plan: Mutex<FaultPlan>,
    calls: AtomicU64,
}

/// What to do with one call.
struct Decision {
    call: u64,
    fail_before: bool,
    latency: Option<Duration>,
}

impl<C: Connector> FaultInjector<C> {
    /// Wraps `inner` with `plan`.
    pub fn new(inner: C, plan: FaultPlan) -> Self {
        FaultInjector {
            inner,
            plan: Mutex::new(plan),
            calls: AtomicU64::new(0),
        }
    }

    /// Wraps `inner` injecting nothing (until [`FaultInjector::set_plan`]).
    pub fn inert(inner: C) -> Self {
        Self::new(inner, FaultPlan::none())
    }

    /// Replaces the plan; calls already started keep the old one.
    pub fn set_plan(&self, plan: FaultPlan) {
        *self.lock_plan() = plan;
    }

    /// The current plan.
    pub fn plan(&self) -> FaultPlan {
        self.lock_plan().clone()
    }

    /// How many calls have been made (including failed ones).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// The wrapped connector.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    fn lock_plan(&self) -> MutexGuard<'_, FaultPlan> {
        self.plan
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Numbers the call and decides its fate under the current plan.
    fn decide(&self, op: OpKind) -> Decision {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let plan = self.lock_plan();
        Decision {
            call,
            fail_before: plan.fail_calls.contains(&call) || plan.fail_ops.contains(&op),
            latency: plan.latency,
        }
    }

    fn fail_after_put(&self) -> bool {
        self.lock_plan().fail_after_put
    }

    /// Applies latency, then fails the call if the plan says so.
    async fn enter(&self, op: OpKind, key: &str) -> Result<u64, ConnectorError> {
        let decision = self.decide(op);
        if let Some(latency) = decision.latency {
            tokio::time::sleep(latency).await;
        }
        if decision.fail_before {
            return Err(injected(decision.call, op, key));
        }
        Ok(decision.call)
    }
}

fn injected(call: u64, op: OpKind, key: &str) -> ConnectorError {
    ConnectorError::Injected {
        call,
        operation: op.as_str(),
        key: key.to_owned(),
    }
}

#[async_trait]
impl<C: Connector> Connector for FaultInjector<C> {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn get(&self, key: &ObjectKey) -> Result<GetResult, ConnectorError> {
        self.enter(OpKind::Get, key.as_str()).await?;
        self.inner.get(key).await
    }

    async fn get_range(&self, key: &ObjectKey, range: ByteRange) -> Result<Bytes, ConnectorError> {
        self.enter(OpKind::GetRange, key.as_str()).await?;
        self.inner.get_range(key, range).await
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, ConnectorError> {
        self.enter(OpKind::Head, key.as_str()).await?;
        self.inner.head(key).await
    }

    async fn put(
        &self,
        key: &ObjectKey,
        bytes: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, ConnectorError> {
        let call = self.enter(OpKind::Put, key.as_str()).await?;
        let outcome = self.inner.put(key, bytes, mode).await?;
        if self.fail_after_put() {
            return Err(injected(call, OpKind::Put, key.as_str()));
        }
        Ok(outcome)
    }

    fn list<'a>(&'a self, prefix: &'a KeyPrefix) -> ListStream<'a> {
        // Numbered now, when the call is made; latency and failure are
        // delivered on first poll.
        let decision = self.decide(OpKind::List);
        let gate = async move {
            if let Some(latency) = decision.latency {
                tokio::time::sleep(latency).await;
            }
            decision.fail_before
        };
        futures::stream::once(gate)
            .flat_map(move |fail| {
                if fail {
                    let err = injected(decision.call, OpKind::List, prefix.as_str());
                    futures::stream::once(async move { Err(err) }).boxed()
                } else {
                    self.inner.list(prefix)
                }
            })
            .boxed()
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), ConnectorError> {
        self.enter(OpKind::Delete, key.as_str()).await?;
        self.inner.delete(key).await
    }
}
