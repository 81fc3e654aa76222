//! The counter race: read-modify-write increments with compare-and-swap.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;

use super::{failure, SuiteFailure};
use crate::{Connector, ConnectorExt, ObjectKey, PutMode, PutOutcome};

/// Attempts allowed for one increment before the race is declared stuck.
const MAX_ATTEMPTS: u64 = 10_000;

/// Races `workers` tasks, each making `increments` increments of the ASCII
/// decimal counter at `key` (reset to 0 first) with [`PutMode::Update`],
/// and checks the final value is exactly `workers × increments`, which holds
/// only if no update was lost. Returns the final value.
pub async fn counter_race(
    connector: Arc<dyn Connector>,
    key: &ObjectKey,
    workers: usize,
    increments: usize,
) -> Result<u64, SuiteFailure> {
    race(connector, key, workers, increments)
        .await
        .map(|(value, _)| value)
}

/// [`counter_race`], also returning the number of lost CAS attempts.
pub(super) async fn race(
    connector: Arc<dyn Connector>,
    key: &ObjectKey,
    workers: usize,
    increments: usize,
) -> Result<(u64, u64), SuiteFailure> {
    let backend = connector.describe();
    let check = "counter_race";
    let reset = connector
        .put(key, Bytes::from_static(b"0"), PutMode::Overwrite)
        .await
        .map_err(|err| failure(&backend, check, "the counter reset to 0", err))?;
    if reset.written().is_none() {
        return Err(failure(
            &backend,
            check,
            "Overwrite to report Written",
            format!("{reset:?}"),
        ));
    }
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let conn = Arc::clone(&connector);
            let key = key.clone();
            tokio::spawn(async move { increment_counter(conn.as_ref(), &key, increments).await })
        })
        .collect();
    let mut attempts = 0;
    for task in tasks {
        attempts += task
            .await
            .map_err(|err| failure(&backend, check, "the worker to finish", err))??;
    }
    let value = read_counter(connector.as_ref(), key, check).await?;
    let want = (workers * increments) as u64;
    if value != want {
        return Err(failure(
            &backend,
            check,
            format!("{want} after {workers} workers x {increments} increments"),
            format!("{value}: {} updates were lost", want.saturating_sub(value)),
        ));
    }
    Ok((value, attempts.saturating_sub(want)))
}

/// Reads the counter at `key` (`None` if it does not exist yet).
async fn read_counter_opt(
    connector: &dyn Connector,
    key: &ObjectKey,
    check: &str,
) -> Result<Option<(u64, crate::Version)>, SuiteFailure> {
    let backend = connector.describe();
    let Some(found) = connector
        .get_opt(key)
        .await
        .map_err(|err| failure(&backend, check, "the counter to be readable", err))?
    else {
        return Ok(None);
    };
    let value = std::str::from_utf8(&found.bytes)
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            failure(
                &backend,
                check,
                "an ASCII decimal counter",
                format!("{:?}", String::from_utf8_lossy(&found.bytes)),
            )
        })?;
    Ok(Some((value, found.meta.version)))
}

async fn read_counter(
    connector: &dyn Connector,
    key: &ObjectKey,
    check: &str,
) -> Result<u64, SuiteFailure> {
    match read_counter_opt(connector, key, check).await? {
        Some((value, _)) => Ok(value),
        None => Err(failure(
            &connector.describe(),
            check,
            "the counter to exist",
            "NotFound",
        )),
    }
}

/// Increments the ASCII decimal counter at `key` `times` times, each by
/// reading it and writing the next value with [`PutMode::Update`] (or
/// [`PutMode::Create`] of `1` if it does not exist), retrying lost races
/// after a small random backoff. Returns the number of write attempts made
/// (`times` plus the retries). Safe to run from many tasks or processes.
pub async fn increment_counter(
    connector: &dyn Connector,
    key: &ObjectKey,
    times: usize,
) -> Result<u64, SuiteFailure> {
    let check = "increment_counter";
    let backend = connector.describe();
    let mut attempts = 0;
    for _ in 0..times {
        let mut lost = 0u32;
        loop {
            attempts += 1;
            if u64::from(lost) >= MAX_ATTEMPTS {
                return Err(failure(
                    &backend,
                    check,
                    format!("an increment to succeed within {MAX_ATTEMPTS} attempts"),
                    "every attempt lost its race",
                ));
            }
            let (next, mode) = match read_counter_opt(connector, key, check).await? {
                Some((value, version)) => (value + 1, PutMode::Update(version)),
                None => (1, PutMode::Create),
            };
            let outcome = connector
                .put(key, Bytes::from(next.to_string()), mode)
                .await
                .map_err(|err| failure(&backend, check, "the write to be decided", err))?;
            match outcome {
                PutOutcome::Written(_) => break,
                PutOutcome::PreconditionFailed | PutOutcome::AlreadyExists => {
                    lost += 1;
                    tokio::time::sleep(backoff(lost)).await;
                }
            }
        }
    }
    Ok(attempts)
}

/// A random pause after losing `lost` races in a row: up to 0.5 ms doubling
/// to 16 ms.
fn backoff(lost: u32) -> Duration {
    let ceiling_us = 500u64 << lost.min(5);
    Duration::from_micros(rand::thread_rng().gen_range(0..=ceiling_us))
}
