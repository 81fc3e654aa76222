//! The individual checks of [`run_all`](super::run_all).

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use super::{Ctx, SuiteFailure};
use crate::{
    ByteRange, ConnectorError, ConnectorExt, GetResult, ObjectKey, PutMode, PutOutcome, Version,
};

/// Writers in each round of the create race.
const CREATE_RACERS: usize = 8;
/// Rounds of the create race.
const CREATE_ROUNDS: usize = 10;

/// Keys written by the listing check (relative to `<base>list/`): nested
/// directories, and names ordered around `/` (`a-b` < `a/b` < `a0`).
const LIST_KEYS: [&str; 30] = [
    "a-b",
    "a/b",
    "a/c/d",
    "a/c/e",
    "a/c/f/g",
    "a0",
    "b",
    "b.c/d",
    "b0/x/y/z",
    "c/1",
    "c/10",
    "c/2",
    "c/20",
    "c/3/x",
    "d/e/f/g/h/i",
    "e",
    "e-",
    "e.",
    "e_",
    "f/a",
    "f/b",
    "f/c",
    "g~",
    "h/h/h",
    "p/ab",
    "p/abc/x",
    "p/abd",
    "p/ac",
    "p/b/ab",
    "z",
];

/// A deterministic, non-repeating-looking byte pattern.
fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8 ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

/// Writes with [`PutMode::Overwrite`], which must report `Written`.
async fn overwrite(
    ctx: &Ctx,
    check: &str,
    key: &ObjectKey,
    bytes: Bytes,
) -> Result<Version, SuiteFailure> {
    match ctx.ok(check, ctx.conn.put(key, bytes, PutMode::Overwrite).await)? {
        PutOutcome::Written(version) => Ok(version),
        other => Err(ctx.fail(check, "Overwrite to report Written", format!("{other:?}"))),
    }
}

/// Checks that a whole read returned `bytes` with matching metadata.
fn expect_object(
    ctx: &Ctx,
    check: &str,
    key: &ObjectKey,
    found: &GetResult,
    bytes: &[u8],
    version: Option<&Version>,
) -> Result<(), SuiteFailure> {
    ctx.ensure(
        found.bytes.as_ref() == bytes,
        check,
        format!("{} bytes as written", bytes.len()),
        format!("{} different bytes", found.bytes.len()),
    )?;
    ctx.ensure(
        found.meta.size == bytes.len() as u64,
        check,
        format!("size {}", bytes.len()),
        format!("size {}", found.meta.size),
    )?;
    ctx.ensure(
        &found.meta.key == key,
        check,
        format!("key {key}"),
        format!("key {}", found.meta.key),
    )?;
    if let Some(version) = version {
        ctx.ensure(
            &found.meta.version == version,
            check,
            format!("version {version}"),
            format!("version {}", found.meta.version),
        )?;
    }
    Ok(())
}

/// Checks that `result` is `NotFound`.
fn expect_not_found<T: std::fmt::Debug>(
    ctx: &Ctx,
    check: &str,
    result: Result<T, ConnectorError>,
) -> Result<(), SuiteFailure> {
    match result {
        Err(ConnectorError::NotFound { .. }) => Ok(()),
        Err(other) => Err(ctx.fail(check, "NotFound", format!("error: {other}"))),
        Ok(found) => Err(ctx.fail(check, "NotFound", format!("{found:?}"))),
    }
}

/// Put, get, head, rewrite and delete; empty and larger objects.
pub(super) async fn round_trip(ctx: &Ctx) -> Result<(), SuiteFailure> {
    let check = "round_trip";
    let key = ctx.key(check, "round-trip/object")?;
    let first = Bytes::from_static(b"hello");
    let v1 = overwrite(ctx, check, &key, first.clone()).await?;
    let found = ctx.ok(check, ctx.conn.get(&key).await)?;
    expect_object(ctx, "round_trip: get", &key, &found, &first, Some(&v1))?;
    let meta = ctx.ok(check, ctx.conn.head(&key).await)?;
    ctx.ensure(
        meta.size == 5 && meta.version == v1 && meta.key == key,
        "round_trip: head",
        format!("{key}, 5 bytes, version {v1}"),
        format!(
            "{}, {} bytes, version {}",
            meta.key, meta.size, meta.version
        ),
    )?;

    let second = Bytes::from_static(b"hello, world!");
    let v2 = overwrite(ctx, check, &key, second.clone()).await?;
    ctx.ensure(
        v2 != v1,
        "round_trip: rewrite",
        "a new version after rewriting different bytes",
        format!("the same version {v2}"),
    )?;
    let found = ctx.ok(check, ctx.conn.get(&key).await)?;
    expect_object(
        ctx,
        "round_trip: get after rewrite",
        &key,
        &found,
        &second,
        Some(&v2),
    )?;
    let meta = ctx.ok(check, ctx.conn.head(&key).await)?;
    ctx.ensure(
        meta.version == v2 && meta.size == 13,
        "round_trip: head after rewrite",
        format!("13 bytes, version {v2}"),
        format!("{} bytes, version {}", meta.size, meta.version),
    )?;

    let empty_key = ctx.key(check, "round-trip/empty")?;
    let v = overwrite(ctx, check, &empty_key, Bytes::new()).await?;
    let found = ctx.ok(check, ctx.conn.get(&empty_key).await)?;
    expect_object(
        ctx,
        "round_trip: empty object",
        &empty_key,
        &found,
        b"",
        Some(&v),
    )?;

    let large_key = ctx.key(check, "round-trip/nested/dir/large")?;
    let large = pattern(256 * 1024 + 7, 0x5a);
    let v = overwrite(ctx, check, &large_key, large.clone()).await?;
    let found = ctx.ok(check, ctx.conn.get(&large_key).await)?;
    expect_object(
        ctx,
        "round_trip: 256 KiB object",
        &large_key,
        &found,
        &large,
        Some(&v),
    )?;

    ctx.ok(check, ctx.conn.delete(&key).await)?;
    expect_not_found(
        ctx,
        "round_trip: get after delete",
        ctx.conn.get(&key).await,
    )?;
    expect_not_found(
        ctx,
        "round_trip: head after delete",
        ctx.conn.head(&key).await,
    )?;
    ctx.ok("round_trip: delete twice", ctx.conn.delete(&key).await)?;
    // The other objects are still there.
    let found = ctx.ok(check, ctx.conn.get(&empty_key).await)?;
    expect_object(
        ctx,
        "round_trip: sibling after delete",
        &empty_key,
        &found,
        b"",
        None,
    )
}

/// Reads and deletes of keys that were never written.
pub(super) async fn missing(ctx: &Ctx) -> Result<(), SuiteFailure> {
    let check = "missing";
    let key = ctx.key(check, "missing/never-written")?;
    expect_not_found(ctx, "missing: get", ctx.conn.get(&key).await)?;
    expect_not_found(ctx, "missing: head", ctx.conn.head(&key).await)?;
    expect_not_found(
        ctx,
        "missing: get_range",
        ctx.conn.get_range(&key, ByteRange::new(0, 1)).await,
    )?;
    let found = ctx.ok(check, ctx.conn.get_opt(&key).await)?;
    ctx.ensure(found.is_none(), "missing: get_opt", "None", "an object")?;
    ctx.ok("missing: delete", ctx.conn.delete(&key).await)
}

/// Lists the keys under `<base><rel>`, relative to `<base>list/`.
async fn list_names(ctx: &Ctx, check: &str, rel: &str) -> Result<Vec<String>, SuiteFailure> {
    let prefix = ctx.prefix(check, rel)?;
    let listed = ctx.ok(check, ctx.conn.list_all(&prefix).await)?;
    let strip = format!("{}list/", ctx.base);
    Ok(listed
        .into_iter()
        .map(|meta| {
            let key = meta.key.as_str();
            key.strip_prefix(&strip).unwrap_or(key).to_owned()
        })
        .collect())
}

/// Listing order, metadata, and prefix matching.
pub(super) async fn list(ctx: &Ctx) -> Result<(), SuiteFailure> {
    let check = "list";
    let mut written = Vec::new();
    for name in LIST_KEYS {
        written.push((ctx.key(check, &format!("list/{name}"))?, name));
    }
    let versions: Vec<Result<Version, SuiteFailure>> = futures::stream::iter(&written)
        .map(|(key, name)| overwrite(ctx, check, key, Bytes::from(name.as_bytes().to_vec())))
        .buffered(8)
        .collect()
        .await;

    let prefix = ctx.prefix(check, "list/")?;
    let listed = ctx.ok(check, ctx.conn.list_all(&prefix).await)?;
    let mut expected: Vec<(&ObjectKey, &str, Version)> = Vec::new();
    for ((key, name), version) in written.iter().zip(versions) {
        expected.push((key, name, version?));
    }
    expected.sort_by(|a, b| a.0.cmp(b.0));
    // Compared in full, shown relative to `<base>list/` for readability.
    let strip = format!("{}list/", ctx.base);
    let short = |key: &ObjectKey| {
        let key = key.as_str();
        key.strip_prefix(&strip).unwrap_or(key).to_owned()
    };
    let seen: Vec<String> = listed.iter().map(|m| short(&m.key)).collect();
    let want: Vec<String> = expected.iter().map(|(k, _, _)| short(k)).collect();
    let exact = listed.len() == expected.len()
        && listed
            .iter()
            .zip(&expected)
            .all(|(m, (k, _, _))| &m.key == *k);
    ctx.ensure(
        exact,
        "list: every key in byte order",
        format!("{want:?}"),
        format!("{seen:?}"),
    )?;
    for (meta, (key, name, version)) in listed.iter().zip(&expected) {
        ctx.ensure(
            meta.size == name.len() as u64 && &meta.version == version,
            "list: metadata",
            format!("{key}: {} bytes, version {version}", name.len()),
            format!(
                "{}: {} bytes, version {}",
                meta.key, meta.size, meta.version
            ),
        )?;
    }

    let cases: [(&str, &[&str]); 7] = [
        ("list/a/", &["a/b", "a/c/d", "a/c/e", "a/c/f/g"]),
        ("list/a", &["a-b", "a/b", "a/c/d", "a/c/e", "a/c/f/g", "a0"]),
        ("list/p/ab", &["p/ab", "p/abc/x", "p/abd"]),
        ("list/c/1", &["c/1", "c/10"]),
        ("list/d/e/f/", &["d/e/f/g/h/i"]),
        ("list/nothing-here/", &[]),
        ("list/zz", &[]),
    ];
    for (rel, want) in cases {
        let seen = list_names(ctx, check, rel).await?;
        ctx.ensure(
            seen == want,
            &format!("list: prefix {rel:?}"),
            format!("{want:?}"),
            format!("{seen:?}"),
        )?;
    }
    Ok(())
}

/// Byte ranges inside and outside an object.
pub(super) async fn ranges(ctx: &Ctx) -> Result<(), SuiteFailure> {
    let check = "ranges";
    let key = ctx.key(check, "ranges/object")?;
    let data = pattern(1000, 0x17);
    overwrite(ctx, check, &key, data.clone()).await?;
    for (start, end, what) in [
        (0, 1, "first byte"),
        (100, 600, "middle"),
        (999, 1000, "last byte"),
        (0, 1000, "whole object"),
    ] {
        let step = format!("ranges: {what} {start}-{end}");
        let got = ctx.ok(
            &step,
            ctx.conn.get_range(&key, ByteRange::new(start, end)).await,
        )?;
        let want = &data[start as usize..end as usize];
        ctx.ensure(
            got.as_ref() == want,
            &step,
            format!("{} bytes of the object", want.len()),
            format!("{} different bytes", got.len()),
        )?;
    }
    for (start, end, what) in [
        (990, 1001, "past the end"),
        (0, 1001, "one byte too long"),
        (5, 5, "empty"),
        (10, 5, "inverted"),
        (1000, 1001, "start at size"),
        (2000, 3000, "start past size"),
    ] {
        let step = format!("ranges: {what} {start}-{end}");
        match ctx.conn.get_range(&key, ByteRange::new(start, end)).await {
            Err(ConnectorError::InvalidRange { .. }) => {}
            Err(other) => return Err(ctx.fail(&step, "InvalidRange", format!("error: {other}"))),
            Ok(bytes) => {
                return Err(ctx.fail(&step, "InvalidRange", format!("{} bytes", bytes.len())))
            }
        }
    }
    Ok(())
}

/// Create-if-absent.
pub(super) async fn create(ctx: &Ctx) -> Result<(), SuiteFailure> {
    let check = "create";
    let key = ctx.key(check, "create/object")?;
    let first = Bytes::from_static(b"first");
    let outcome = ctx.ok(
        check,
        ctx.conn.put(&key, first.clone(), PutMode::Create).await,
    )?;
    let PutOutcome::Written(version) = outcome else {
        return Err(ctx.fail("create: new key", "Written", format!("{outcome:?}")));
    };
    let outcome = ctx.ok(
        check,
        ctx.conn
            .put(&key, Bytes::from_static(b"second"), PutMode::Create)
            .await,
    )?;
    ctx.ensure(
        outcome == PutOutcome::AlreadyExists,
        "create: existing key",
        "AlreadyExists",
        format!("{outcome:?}"),
    )?;
    let found = ctx.ok(check, ctx.conn.get(&key).await)?;
    expect_object(
        ctx,
        "create: bytes unchanged",
        &key,
        &found,
        &first,
        Some(&version),
    )
}

/// Compare-and-swap updates.
pub(super) async fn update(ctx: &Ctx) -> Result<(), SuiteFailure> {
    let check = "update";
    let key = ctx.key(check, "update/object")?;
    let v1 = overwrite(ctx, check, &key, Bytes::from_static(b"one")).await?;
    let two = Bytes::from_static(b"two");
    let outcome = ctx.ok(
        check,
        ctx.conn
            .put(&key, two.clone(), PutMode::Update(v1.clone()))
            .await,
    )?;
    let PutOutcome::Written(v2) = outcome else {
        return Err(ctx.fail("update: fresh version", "Written", format!("{outcome:?}")));
    };
    ctx.ensure(
        v2 != v1,
        "update: fresh version",
        "a new version",
        format!("the old version {v1}"),
    )?;
    let found = ctx.ok(check, ctx.conn.get(&key).await)?;
    expect_object(
        ctx,
        "update: bytes after update",
        &key,
        &found,
        &two,
        Some(&v2),
    )?;

    let outcome = ctx.ok(
        check,
        ctx.conn
            .put(
                &key,
                Bytes::from_static(b"three"),
                PutMode::Update(v1.clone()),
            )
            .await,
    )?;
    ctx.ensure(
        outcome == PutOutcome::PreconditionFailed,
        "update: stale version",
        "PreconditionFailed",
        format!("{outcome:?}"),
    )?;
    let found = ctx.ok(check, ctx.conn.get(&key).await)?;
    expect_object(
        ctx,
        "update: bytes unchanged",
        &key,
        &found,
        &two,
        Some(&v2),
    )?;

    let absent = ctx.key(check, "update/missing")?;
    let outcome = ctx.ok(
        check,
        ctx.conn
            .put(
                &absent,
                Bytes::from_static(b"x"),
                PutMode::Update(v2.clone()),
            )
            .await,
    )?;
    ctx.ensure(
        outcome == PutOutcome::PreconditionFailed,
        "update: missing key",
        "PreconditionFailed",
        format!("{outcome:?}"),
    )?;
    expect_not_found(
        ctx,
        "update: missing key stays missing",
        ctx.conn.head(&absent).await,
    )?;

    ctx.ok(check, ctx.conn.delete(&key).await)?;
    let outcome = ctx.ok(
        check,
        ctx.conn
            .put(&key, Bytes::from_static(b"four"), PutMode::Update(v2))
            .await,
    )?;
    ctx.ensure(
        outcome == PutOutcome::PreconditionFailed,
        "update: deleted key",
        "PreconditionFailed",
        format!("{outcome:?}"),
    )?;
    expect_not_found(
        ctx,
        "update: deleted key stays deleted",
        ctx.conn.head(&key).await,
    )
}

/// Eight tasks create one key at once, ten times: exactly one wins each
/// round, and its bytes are what is stored.
pub(super) async fn create_race(ctx: &Ctx) -> Result<(), SuiteFailure> {
    let check = "create_race";
    for round in 0..CREATE_ROUNDS {
        let step = format!("create_race: round {round}");
        let key = ctx.key(check, &format!("create-race/round-{round}"))?;
        let tasks: Vec<_> = (0..CREATE_RACERS)
            .map(|writer| {
                let conn = Arc::clone(&ctx.conn);
                let key = key.clone();
                let bytes = Bytes::from(format!("writer {writer}"));
                tokio::spawn(async move { conn.put(&key, bytes, PutMode::Create).await })
            })
            .collect();
        let mut winners = Vec::new();
        let mut losers = 0;
        for (writer, task) in tasks.into_iter().enumerate() {
            let joined = task
                .await
                .map_err(|err| ctx.fail(&step, "the task to finish", err))?;
            match ctx.ok(&step, joined)? {
                PutOutcome::Written(version) => winners.push((writer, version)),
                PutOutcome::AlreadyExists => losers += 1,
                other => {
                    return Err(ctx.fail(&step, "Written or AlreadyExists", format!("{other:?}")))
                }
            }
        }
        let [(writer, version)] = winners.as_slice() else {
            return Err(ctx.fail(
                &step,
                "exactly one Written",
                format!("{} Written, {losers} AlreadyExists", winners.len()),
            ));
        };
        let found = ctx.ok(&step, ctx.conn.get(&key).await)?;
        let want = format!("writer {writer}");
        expect_object(ctx, &step, &key, &found, want.as_bytes(), Some(version))?;
    }
    Ok(())
}
