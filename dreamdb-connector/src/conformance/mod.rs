//! The conformance suite every backend runs.
//!
//! [`run_all`] checks the whole [`Connector`] contract against a live
//! backend: round trips, listing order, byte ranges, create-if-absent,
//! compare-and-swap updates, a create race and a counter race. It is safe to
//! run against a shared, non-empty store: each run works only under a fresh
//! random prefix `conformance-<16 hex>/` (the connector itself is not
//! changed) and deletes everything it wrote at the end, whether the checks
//! passed or not.
//!
//! The suite never panics: a failed check is a [`SuiteFailure`] naming the
//! check and saying what was expected and what was seen, so it can run from
//! any test harness (or a `dreamdb doctor` command).
//!
//! [`counter_race`] and [`increment_counter`] are exported on their own for
//! tests that race several processes on one counter.

mod checks;
mod counter;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{Connector, ConnectorError, ConnectorExt, KeyPrefix, ObjectKey};

pub use counter::{counter_race, increment_counter};

/// A failed conformance check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("conformance check `{check}` failed on {backend}: expected {expected}; saw {seen}")]
pub struct SuiteFailure {
    /// Which check failed (and which step of it).
    pub check: String,
    /// The backend's description.
    pub backend: String,
    /// What the contract requires.
    pub expected: String,
    /// What the backend did.
    pub seen: String,
}

/// One check that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    /// The check's name.
    pub name: &'static str,
    /// How long it took.
    pub elapsed: Duration,
}

/// What a successful [`run_all`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteReport {
    /// The backend's description.
    pub backend: String,
    /// The prefix the run worked under (deleted at the end).
    pub prefix: String,
    /// The checks run, in order.
    pub checks: Vec<CheckRecord>,
    /// Compare-and-swap attempts lost (and retried) in the counter race.
    pub cas_retries: u64,
    /// The counter race's final value.
    pub counter_value: u64,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} checks passed on {} in {:?} ({} CAS retries in the counter race)",
            self.checks.len(),
            self.backend,
            self.elapsed,
            self.cas_retries
        )?;
        for check in &self.checks {
            write!(f, "\n  {:<16} {:?}", check.name, check.elapsed)?;
        }
        Ok(())
    }
}

/// Workers in [`run_all`]'s counter race.
pub const COUNTER_WORKERS: usize = 8;
/// Increments per worker in [`run_all`]'s counter race.
pub const COUNTER_INCREMENTS: usize = 25;

/// Shared state of one run: the connector and the run's key prefix.
pub(crate) struct Ctx {
    pub(crate) conn: Arc<dyn Connector>,
    pub(crate) backend: String,
    pub(crate) base: String,
}

impl Ctx {
    /// The key `<base><rel>`.
    pub(crate) fn key(&self, check: &str, rel: &str) -> Result<ObjectKey, SuiteFailure> {
        ObjectKey::new(format!("{}{rel}", self.base))
            .map_err(|err| self.fail(check, "a valid test key", err))
    }

    /// The prefix `<base><rel>`.
    pub(crate) fn prefix(&self, check: &str, rel: &str) -> Result<KeyPrefix, SuiteFailure> {
        KeyPrefix::new(format!("{}{rel}", self.base))
            .map_err(|err| self.fail(check, "a valid test prefix", err))
    }

    /// A failure of `check`.
    pub(crate) fn fail(
        &self,
        check: &str,
        expected: impl fmt::Display,
        seen: impl fmt::Display,
    ) -> SuiteFailure {
        failure(&self.backend, check, expected, seen)
    }

    /// Fails `check` unless `ok`.
    pub(crate) fn ensure(
        &self,
        ok: bool,
        check: &str,
        expected: impl fmt::Display,
        seen: impl fmt::Display,
    ) -> Result<(), SuiteFailure> {
        if ok {
            Ok(())
        } else {
            Err(self.fail(check, expected, seen))
        }
    }

    /// Unwraps a connector result that must succeed.
    pub(crate) fn ok<T>(
        &self,
        check: &str,
        result: Result<T, ConnectorError>,
    ) -> Result<T, SuiteFailure> {
        result.map_err(|err| self.fail(check, "success", format!("error: {err}")))
    }
}

pub(crate) fn failure(
    backend: &str,
    check: &str,
    expected: impl fmt::Display,
    seen: impl fmt::Display,
) -> SuiteFailure {
    SuiteFailure {
        check: check.to_owned(),
        backend: backend.to_owned(),
        expected: expected.to_string(),
        seen: seen.to_string(),
    }
}

/// Runs every check against `connector` under a fresh random prefix, then
/// deletes what it wrote. Returns the first failure.
pub async fn run_all(connector: Arc<dyn Connector>) -> Result<SuiteReport, SuiteFailure> {
    let started = Instant::now();
    let ctx = Ctx {
        backend: connector.describe(),
        base: format!("conformance-{:016x}/", rand::random::<u64>()),
        conn: connector,
    };
    let mut report = SuiteReport {
        backend: ctx.backend.clone(),
        prefix: ctx.base.clone(),
        checks: Vec::new(),
        cas_retries: 0,
        counter_value: 0,
        elapsed: Duration::ZERO,
    };
    let outcome = run_checks(&ctx, &mut report).await;
    let cleanup_started = Instant::now();
    let cleanup = cleanup(&ctx).await;
    outcome?;
    cleanup?;
    report.checks.push(CheckRecord {
        name: "cleanup",
        elapsed: cleanup_started.elapsed(),
    });
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn run_checks(ctx: &Ctx, report: &mut SuiteReport) -> Result<(), SuiteFailure> {
    macro_rules! check {
        ($name:literal, $body:expr) => {{
            let started = Instant::now();
            let value = $body.await?;
            report.checks.push(CheckRecord {
                name: $name,
                elapsed: started.elapsed(),
            });
            value
        }};
    }
    check!("round_trip", checks::round_trip(ctx));
    check!("missing", checks::missing(ctx));
    check!("list", checks::list(ctx));
    check!("ranges", checks::ranges(ctx));
    check!("create", checks::create(ctx));
    check!("update", checks::update(ctx));
    check!("create_race", checks::create_race(ctx));
    let (value, retries) = check!("counter_race", async {
        let key = ctx.key("counter_race", "counter")?;
        counter::race(
            Arc::clone(&ctx.conn),
            &key,
            COUNTER_WORKERS,
            COUNTER_INCREMENTS,
        )
        .await
    });
    report.counter_value = value;
    report.cas_retries = retries;
    Ok(())
}

/// Deletes everything under the run's prefix and checks it is gone.
async fn cleanup(ctx: &Ctx) -> Result<(), SuiteFailure> {
    let check = "cleanup";
    let prefix = ctx.prefix(check, "")?;
    ctx.ok(check, ctx.conn.delete_prefix(&prefix, 8).await)?;
    let left = ctx.ok(check, ctx.conn.list_all(&prefix).await)?;
    ctx.ensure(
        left.is_empty(),
        check,
        format!("nothing left under {prefix}"),
        format!(
            "{} objects, first {:?}",
            left.len(),
            left.first().map(|m| &m.key)
        ),
    )
}
