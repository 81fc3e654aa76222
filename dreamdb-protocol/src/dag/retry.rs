//! Bounded retries with jittered exponential backoff, without tying the
//! library to one async runtime.
//!
//! The protocol crate does not depend on an async runtime, so the default
//! sleep parks a short-lived helper thread and awaits a oneshot channel; it
//! works under any executor. Callers with a runtime may supply their own
//! sleep function ([`RetryPolicy::with_sleep`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use futures::FutureExt;

/// A sleep function: returns a future that completes after the duration.
pub type SleepFn = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;

/// How often and how patiently an operation retries.
#[derive(Clone)]
pub struct RetryPolicy {
    /// Most attempts of the whole operation (at least 1).
    pub max_attempts: u32,
    /// Most retries of a request that failed transiently.
    pub max_transient: u32,
    /// Backoff before the second attempt; doubled per attempt.
    pub base: Duration,
    /// Largest backoff.
    pub max: Duration,
    /// How to wait; `None` uses a runtime-agnostic thread-backed sleep.
    pub sleep: Option<SleepFn>,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("max_transient", &self.max_transient)
            .field("base", &self.base)
            .field("max", &self.max)
            .field("sleep", &self.sleep.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            // Lock-free compare-and-swap has no fairness: a writer whose
            // rebase reads pages another session wrote (and that session
            // has cached) loses more often than it wins while others
            // commit steadily. Many cheap attempts with a short backoff
            // make losing them all unlikely (measured: 2 SDK writers on
            // the S3 server, 32 attempts lost ~1 append in 150; see
            // docs/reliability.md item 4).
            max_attempts: 128,
            max_transient: 5,
            base: Duration::from_millis(2),
            max: Duration::from_millis(200),
            sleep: None,
        }
    }
}

impl RetryPolicy {
    /// This policy with `sleep` as its wait function.
    pub fn with_sleep(mut self, sleep: SleepFn) -> Self {
        self.sleep = Some(sleep);
        self
    }

    /// The jittered backoff before attempt `attempt` (1-based; none before
    /// the first): uniformly random in `[d/2, d]` with `d = base · 2^(attempt-2)`
    /// capped at `max`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        let shift = (attempt - 2).min(20);
        let full = self.base.saturating_mul(1u32 << shift).min(self.max);
        let nanos = u64::try_from(full.as_nanos()).unwrap_or(u64::MAX);
        let half = nanos / 2;
        let jitter = if half == 0 {
            0
        } else {
            next_random() % (half + 1)
        };
        Duration::from_nanos(half + jitter)
    }

    /// Waits the backoff before attempt `attempt`.
    pub async fn wait(&self, attempt: u32) {
        let delay = self.backoff(attempt);
        if delay.is_zero() {
            return;
        }
        match &self.sleep {
            Some(sleep) => sleep(delay).await,
            None => thread_sleep(delay).await,
        }
    }
}

/// Jitter source: splitmix64 over a process-wide counter seeded from the
/// clock (jitter only decorrelates writers; it needs no quality).
fn next_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut z = STATE
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(seed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Sleeps `delay` on a helper thread and completes when it wakes; if no
/// thread can be started, returns at once (a retry without backoff is
/// still correct).
fn thread_sleep(delay: Duration) -> BoxFuture<'static, ()> {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("dreamdb-backoff".to_owned())
        .spawn(move || {
            std::thread::sleep(delay);
            let _ignored = tx.send(());
        });
    async move {
        if spawned.is_ok() {
            let _ignored = rx.await;
        }
    }
    .boxed()
}
