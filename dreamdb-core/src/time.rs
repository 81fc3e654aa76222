//! Time on the DreamDB timeline: u64 nanosecond ticks (spec/0003).
//!
//! Every record is anchored at a [`TimeAnchor`]: nanoseconds since the
//! dataset's [`Genesis`]. Genesis-relative anchors are canonical because
//! they are independent of wall clocks and time zones, and because a u64 of
//! nanoseconds covers about 584 years from Genesis without any fractional
//! part. Durations are [`Ticks`], also u64 nanoseconds.
//!
//! All arithmetic here is integer-only and checked: nothing wraps, nothing
//! rounds, and there is no floating point anywhere in this module, so the
//! same inputs give the same anchors on every platform. Out-of-range results
//! are [`TimeError`]s, never silently clamped or wrapped values.
//!
//! The core never reads a clock. Higher layers read the clock and convert
//! with [`unix_nanos_from_system_time`] and [`Genesis`].
//!
//! Encodings:
//! - Text: an anchor's text form is exactly 16 lowercase hex digits
//!   ([`TimeAnchor::to_hex`]), so sorting the text sorts the timeline.
//! - CBOR: an anchor is tag 65524 ([`crate::cbor::TAG_TIME_ANCHOR`])
//!   wrapping the unsigned integer; a [`TimeRange`] is tag 65525
//!   ([`crate::cbor::TAG_TIME_RANGE`]) wrapping the two-element array
//!   `[start, end]` of unsigned integers. [`Ticks`] are a plain integer.
//! - Human-readable serde formats (JSON): an anchor is an integer, a range
//!   is `[start, end]`, ticks are an integer.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cbor::{TAG_TIME_ANCHOR, TAG_TIME_RANGE};

/// Nanoseconds in one microsecond.
pub const NANOS_PER_MICRO: u64 = 1_000;
/// Nanoseconds in one millisecond.
pub const NANOS_PER_MILLI: u64 = 1_000_000;
/// Nanoseconds in one second.
pub const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// Nanoseconds in one minute.
pub const NANOS_PER_MINUTE: u64 = 60 * NANOS_PER_SECOND;
/// Nanoseconds in one hour.
pub const NANOS_PER_HOUR: u64 = 60 * NANOS_PER_MINUTE;
/// Nanoseconds in one day (86 400 s; the timeline has no leap seconds).
pub const NANOS_PER_DAY: u64 = 24 * NANOS_PER_HOUR;

/// Length in characters of [`TimeAnchor::to_hex`].
pub const ANCHOR_HEX_LEN: usize = 16;

/// Duration units accepted by [`Ticks::parse`], largest first (the order
/// [`Ticks`]' `Display` writes them in).
const UNITS: [(&str, u64); 7] = [
    ("d", NANOS_PER_DAY),
    ("h", NANOS_PER_HOUR),
    ("m", NANOS_PER_MINUTE),
    ("s", NANOS_PER_SECOND),
    ("ms", NANOS_PER_MILLI),
    ("us", NANOS_PER_MICRO),
    ("ns", 1),
];

/// Why a time value could not be computed or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// A result would exceed `u64::MAX` nanoseconds.
    #[error("time overflow: {operation} of {lhs} and {rhs} exceeds u64 nanoseconds")]
    Overflow {
        /// What was being computed, e.g. "anchor + ticks".
        operation: &'static str,
        /// Left operand.
        lhs: u64,
        /// Right operand.
        rhs: u64,
    },
    /// A result would be below zero nanoseconds.
    #[error("time underflow: {operation} of {lhs} and {rhs} is below zero")]
    Underflow {
        /// What was being computed, e.g. "anchor - ticks".
        operation: &'static str,
        /// Left operand.
        lhs: u64,
        /// Right operand.
        rhs: u64,
    },
    /// A Unix instant earlier than the dataset's Genesis has no anchor.
    #[error("unix time {unix_nanos} ns is before genesis at {genesis_unix_nanos} ns")]
    BeforeGenesis {
        /// The instant that was converted.
        unix_nanos: u64,
        /// The Genesis instant.
        genesis_unix_nanos: u64,
    },
    /// A `SystemTime` earlier than the Unix epoch.
    #[error("system time is before the unix epoch")]
    BeforeUnixEpoch,
    /// The text is not exactly 16 lowercase hex digits.
    #[error("time anchor text {input:?} is invalid: {reason}")]
    BadHex {
        /// The text given.
        input: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// The text is not a duration such as `1h30m`.
    #[error("duration {input:?} is invalid: {reason}")]
    BadDuration {
        /// The text given.
        input: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A range whose start is after its end.
    #[error("time range start {start} is after end {end}")]
    InvertedRange {
        /// Start anchor, in nanoseconds.
        start: u64,
        /// End anchor, in nanoseconds.
        end: u64,
    },
}

impl TimeError {
    /// A stable kebab-case identifier of the error kind, used by the
    /// conformance vectors.
    pub fn class(&self) -> &'static str {
        match self {
            TimeError::Overflow { .. } => "overflow",
            TimeError::Underflow { .. } => "underflow",
            TimeError::BeforeGenesis { .. } => "before-genesis",
            TimeError::BeforeUnixEpoch => "before-unix-epoch",
            TimeError::BadHex { .. } => "bad-hex",
            TimeError::BadDuration { .. } => "bad-duration",
            TimeError::InvertedRange { .. } => "inverted-range",
        }
    }
}

fn checked_add(operation: &'static str, lhs: u64, rhs: u64) -> Result<u64, TimeError> {
    lhs.checked_add(rhs).ok_or(TimeError::Overflow {
        operation,
        lhs,
        rhs,
    })
}

fn checked_sub(operation: &'static str, lhs: u64, rhs: u64) -> Result<u64, TimeError> {
    lhs.checked_sub(rhs).ok_or(TimeError::Underflow {
        operation,
        lhs,
        rhs,
    })
}

fn checked_mul(operation: &'static str, lhs: u64, rhs: u64) -> Result<u64, TimeError> {
    lhs.checked_mul(rhs).ok_or(TimeError::Overflow {
        operation,
        lhs,
        rhs,
    })
}

/// A duration in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticks(u64);

impl Ticks {
    /// No time at all.
    pub const ZERO: Ticks = Ticks(0);
    /// The longest representable duration (about 584 years).
    pub const MAX: Ticks = Ticks(u64::MAX);

    /// A duration of `nanos` nanoseconds (always representable).
    pub const fn from_nanos(nanos: u64) -> Ticks {
        Ticks(nanos)
    }

    /// A duration of `micros` microseconds.
    pub fn from_micros(micros: u64) -> Result<Ticks, TimeError> {
        checked_mul("micros * 1000", micros, NANOS_PER_MICRO).map(Ticks)
    }

    /// A duration of `millis` milliseconds.
    pub fn from_millis(millis: u64) -> Result<Ticks, TimeError> {
        checked_mul("millis * 10^6", millis, NANOS_PER_MILLI).map(Ticks)
    }

    /// A duration of `secs` seconds.
    pub fn from_secs(secs: u64) -> Result<Ticks, TimeError> {
        checked_mul("secs * 10^9", secs, NANOS_PER_SECOND).map(Ticks)
    }

    /// A duration of `minutes` minutes.
    pub fn from_minutes(minutes: u64) -> Result<Ticks, TimeError> {
        checked_mul("minutes * 60 s", minutes, NANOS_PER_MINUTE).map(Ticks)
    }

    /// A duration of `hours` hours.
    pub fn from_hours(hours: u64) -> Result<Ticks, TimeError> {
        checked_mul("hours * 3600 s", hours, NANOS_PER_HOUR).map(Ticks)
    }

    /// A duration of `days` days of exactly 86 400 s.
    pub fn from_days(days: u64) -> Result<Ticks, TimeError> {
        checked_mul("days * 86400 s", days, NANOS_PER_DAY).map(Ticks)
    }

    /// The duration in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + other`, or [`TimeError::Overflow`].
    pub fn checked_add(self, other: Ticks) -> Result<Ticks, TimeError> {
        checked_add("ticks + ticks", self.0, other.0).map(Ticks)
    }

    /// `self - other`, or [`TimeError::Underflow`].
    pub fn checked_sub(self, other: Ticks) -> Result<Ticks, TimeError> {
        checked_sub("ticks - ticks", self.0, other.0).map(Ticks)
    }

    /// Parses a duration such as `500ms`, `10s`, `30m`, `24h`, `7d` or
    /// `1h30m` (spec/0003 §5).
    ///
    /// Grammar: `duration = 1*( number unit )`, `number = 1*DIGIT` (ASCII
    /// decimal, no sign, no fraction), `unit = "ns" / "us" / "ms" / "s" /
    /// "m" / "h" / "d"`. Parts add up in any order (`1h30m` = `30m1h` =
    /// `90m`). Whitespace, fractions, signs and unknown units are
    /// [`TimeError::BadDuration`]; a number or total above `u64::MAX`
    /// nanoseconds is [`TimeError::Overflow`].
    pub fn parse(text: &str) -> Result<Ticks, TimeError> {
        let bad = |reason: &'static str| TimeError::BadDuration {
            input: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        let bytes = text.as_bytes();
        let mut pos = 0usize;
        let mut total = 0u64;
        while pos < bytes.len() {
            let digits_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            let digits = &text[digits_start..pos];
            if digits.is_empty() {
                return Err(bad("expected a decimal number"));
            }
            let unit_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_lowercase() {
                pos += 1;
            }
            let unit = &text[unit_start..pos];
            if unit.is_empty() {
                return Err(bad("expected a unit (d, h, m, s, ms, us, ns)"));
            }
            let Some(&(_, size)) = UNITS.iter().find(|(name, _)| *name == unit) else {
                return Err(bad("unknown unit (expected d, h, m, s, ms, us, ns)"));
            };
            // Only ASCII digits remain, so the one possible failure is a
            // number above u64::MAX, which overflows the total anyway.
            let value: u64 = digits.parse().map_err(|_| TimeError::Overflow {
                operation: "duration number (saturated) * unit",
                lhs: u64::MAX,
                rhs: size,
            })?;
            let nanos = checked_mul("duration number * unit", value, size)?;
            total = checked_add("duration sum", total, nanos)?;
        }
        Ok(Ticks(total))
    }
}

impl fmt::Display for Ticks {
    /// The compact form accepted by [`Ticks::parse`]: every non-zero unit,
    /// largest first (`1h30m`, `1s500ms`), and `0s` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (name, size) in UNITS {
            let count = rest / size;
            rest %= size;
            if count > 0 {
                write!(f, "{count}{name}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for Ticks {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ticks::parse(s)
    }
}

impl Serialize for Ticks {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Ticks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u64::deserialize(deserializer).map(Ticks)
    }
}

/// A point on the dataset timeline: nanoseconds since the dataset's
/// [`Genesis`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeAnchor(u64);

impl TimeAnchor {
    /// Genesis itself, the earliest anchor.
    pub const MIN: TimeAnchor = TimeAnchor(0);
    /// The latest anchor (about 584 years after Genesis).
    pub const MAX: TimeAnchor = TimeAnchor(u64::MAX);

    /// The anchor `nanos` nanoseconds after Genesis.
    pub const fn new(nanos: u64) -> TimeAnchor {
        TimeAnchor(nanos)
    }

    /// Nanoseconds since Genesis.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The anchor `ticks` later, or [`TimeError::Overflow`].
    pub fn checked_add(self, ticks: Ticks) -> Result<TimeAnchor, TimeError> {
        checked_add("anchor + ticks", self.0, ticks.0).map(TimeAnchor)
    }

    /// The anchor `ticks` earlier, or [`TimeError::Underflow`] before
    /// Genesis.
    pub fn checked_sub(self, ticks: Ticks) -> Result<TimeAnchor, TimeError> {
        checked_sub("anchor - ticks", self.0, ticks.0).map(TimeAnchor)
    }

    /// The time elapsed from `earlier` to `self`, or
    /// [`TimeError::Underflow`] if `earlier` is after `self`.
    pub fn since(self, earlier: TimeAnchor) -> Result<Ticks, TimeError> {
        checked_sub("anchor - anchor", self.0, earlier.0).map(Ticks)
    }

    /// Exactly 16 lowercase hex digits, zero-padded, so that text order is
    /// timeline order.
    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }

    /// Parses [`TimeAnchor::to_hex`]'s form: exactly 16 characters, digits
    /// and lowercase `a`-`f` only, so every anchor has one spelling.
    pub fn from_hex(text: &str) -> Result<TimeAnchor, TimeError> {
        let bad = |reason: &'static str| TimeError::BadHex {
            input: text.to_owned(),
            reason,
        };
        if !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("only lowercase hex digits are allowed"));
        }
        if text.len() != ANCHOR_HEX_LEN {
            return Err(bad("must be exactly 16 hex digits"));
        }
        u64::from_str_radix(text, 16)
            .map(TimeAnchor)
            .map_err(|_| bad("not a hex number"))
    }
}

impl fmt::Display for TimeAnchor {
    /// The 16-digit hex form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for TimeAnchor {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TimeAnchor::from_hex(s)
    }
}

impl Serialize for TimeAnchor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_u64(self.0)
        } else {
            ciborium::tag::Required::<u64, TAG_TIME_ANCHOR>(self.0).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for TimeAnchor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            u64::deserialize(deserializer).map(TimeAnchor)
        } else {
            let tagged =
                ciborium::tag::Required::<u64, TAG_TIME_ANCHOR>::deserialize(deserializer)?;
            Ok(TimeAnchor(tagged.0))
        }
    }
}

/// A half-open stretch of the timeline, `[start, end)`.
///
/// `start <= end` always holds; `start == end` is the empty range, which
/// contains and overlaps nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeRange {
    start: TimeAnchor,
    end: TimeAnchor,
}

impl TimeRange {
    /// The range `[start, end)`, or [`TimeError::InvertedRange`] if
    /// `start > end`.
    pub fn new(start: TimeAnchor, end: TimeAnchor) -> Result<TimeRange, TimeError> {
        if start > end {
            return Err(TimeError::InvertedRange {
                start: start.0,
                end: end.0,
            });
        }
        Ok(TimeRange { start, end })
    }

    /// The whole timeline except [`TimeAnchor::MAX`] itself (the range is
    /// half-open).
    pub const ALL: TimeRange = TimeRange {
        start: TimeAnchor::MIN,
        end: TimeAnchor::MAX,
    };

    /// The first anchor in the range.
    pub const fn start(&self) -> TimeAnchor {
        self.start
    }

    /// The first anchor after the range.
    pub const fn end(&self) -> TimeAnchor {
        self.end
    }

    /// The range's length.
    pub const fn len(&self) -> Ticks {
        // Cannot underflow: `start <= end` is an invariant.
        Ticks(self.end.0 - self.start.0)
    }

    /// Whether the range holds no anchor at all.
    pub const fn is_empty(&self) -> bool {
        self.start.0 == self.end.0
    }

    /// Whether `anchor` lies in `[start, end)`.
    pub fn contains(&self, anchor: TimeAnchor) -> bool {
        self.start <= anchor && anchor < self.end
    }

    /// Whether some anchor lies in both ranges (never true for an empty
    /// range).
    pub fn overlaps(&self, other: &TimeRange) -> bool {
        !self.is_empty() && !other.is_empty() && self.start < other.end && other.start < self.end
    }
}

impl Serialize for TimeRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let pair = [self.start.0, self.end.0];
        if serializer.is_human_readable() {
            pair.serialize(serializer)
        } else {
            ciborium::tag::Required::<[u64; 2], TAG_TIME_RANGE>(pair).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let [start, end] = if deserializer.is_human_readable() {
            <[u64; 2]>::deserialize(deserializer)?
        } else {
            ciborium::tag::Required::<[u64; 2], TAG_TIME_RANGE>::deserialize(deserializer)?.0
        };
        TimeRange::new(TimeAnchor(start), TimeAnchor(end)).map_err(serde::de::Error::custom)
    }
}

/// The Unix instant of anchor 0 of a dataset, in nanoseconds since
/// 1970-01-01T00:00:00Z (leap seconds not counted, as in Unix time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Genesis {
    /// Nanoseconds since the Unix epoch at which anchor 0 lies.
    pub unix_nanos: u64,
}

impl Genesis {
    /// A Genesis at `unix_nanos` nanoseconds after the Unix epoch.
    pub const fn new(unix_nanos: u64) -> Genesis {
        Genesis { unix_nanos }
    }

    /// The anchor of a Unix instant, or [`TimeError::BeforeGenesis`].
    pub fn anchor_from_unix_nanos(&self, unix_nanos: u64) -> Result<TimeAnchor, TimeError> {
        unix_nanos
            .checked_sub(self.unix_nanos)
            .map(TimeAnchor)
            .ok_or(TimeError::BeforeGenesis {
                unix_nanos,
                genesis_unix_nanos: self.unix_nanos,
            })
    }

    /// The Unix instant of an anchor, or [`TimeError::Overflow`] if it lies
    /// beyond `u64::MAX` Unix nanoseconds (the year 2554).
    pub fn unix_nanos_from_anchor(&self, anchor: TimeAnchor) -> Result<u64, TimeError> {
        checked_add("genesis + anchor", self.unix_nanos, anchor.0)
    }
}

/// Converts a `SystemTime` (read by a higher layer) to Unix nanoseconds:
/// [`TimeError::BeforeUnixEpoch`] before 1970, [`TimeError::Overflow`] after
/// `u64::MAX` nanoseconds. A pure conversion: the core never reads a clock.
pub fn unix_nanos_from_system_time(time: SystemTime) -> Result<u64, TimeError> {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| TimeError::BeforeUnixEpoch)?;
    let secs = since.as_secs();
    let nanos = checked_mul("system time seconds * 10^9", secs, NANOS_PER_SECOND)?;
    checked_add("system time", nanos, u64::from(since.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_consistent() {
        assert_eq!(NANOS_PER_DAY, 86_400_000_000_000);
        assert_eq!(Ticks::from_days(1).unwrap().as_nanos(), NANOS_PER_DAY);
    }

    #[test]
    fn display_examples() {
        assert_eq!(Ticks::from_nanos(0).to_string(), "0s");
        assert_eq!(Ticks::from_minutes(90).unwrap().to_string(), "1h30m");
        assert_eq!(Ticks::from_millis(1500).unwrap().to_string(), "1s500ms");
        assert_eq!(Ticks::MAX.to_string(), "213503d23h34m33s709ms551us615ns");
    }
}
