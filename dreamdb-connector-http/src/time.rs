//! Tiny parsers for the two timestamp formats S3 uses: RFC 3339 in listings
//! (`2026-11-23T18:16:00.123Z`) and the HTTP date in `Last-Modified`
//! headers (`Mon, 23 Nov 2026 18:16:00 GMT`). Anything unexpected parses as
//! `None`: a timestamp is informative, never load-bearing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn to_system_time(
    (year, month, day): (i64, u32, u32),
    (hour, minute, second): (u32, u32, u32),
    nanos: u32,
    offset_seconds: i64,
) -> Option<SystemTime> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Leap seconds (60) are folded into the next second's start.
    if second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60 + i64::from(second)
        - offset_seconds;
    if secs < 0 {
        return None;
    }
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses an RFC 3339 timestamp (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`).
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let year = i64::from(digits(text.get(0..4)?)?);
    let month = digits(text.get(5..7)?)?;
    let day = digits(text.get(8..10)?)?;
    let hour = digits(text.get(11..13)?)?;
    let minute = digits(text.get(14..16)?)?;
    let second = digits(text.get(17..19)?)?;
    let mut rest = text.get(19..)?;
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let len = frac.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let mut scaled = 0u64;
        for (i, b) in frac.bytes().take(len).enumerate() {
            if i < 9 {
                scaled = scaled * 10 + u64::from(b - b'0');
            }
        }
        for _ in len..9 {
            scaled *= 10;
        }
        nanos = u32::try_from(scaled).ok()?;
        rest = frac.get(len..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let body = rest.get(1..)?;
            if body.len() != 5 || body.as_bytes()[2] != b':' {
                return None;
            }
            let hours = i64::from(digits(body.get(0..2)?)?);
            let minutes = i64::from(digits(body.get(3..5)?)?);
            sign * (hours * 3_600 + minutes * 60)
        }
    };
    to_system_time((year, month, day), (hour, minute, second), nanos, offset)
}

/// Parses an HTTP date in the IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?;
    let day = digits(parts.next()?)?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year = i64::from(digits(parts.next()?)?);
    let mut clock = parts.next()?.split(':');
    let hour = digits(clock.next()?)?;
    let minute = digits(clock.next()?)?;
    let second = digits(clock.next()?)?;
    if clock.next().is_some() || !matches!(parts.next(), Some("GMT" | "UTC")) {
        return None;
    }
    to_system_time((year, month, day), (hour, minute, second), 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> f64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
    }

    #[test]
    fn rfc3339() {
        assert_eq!(secs(parse_rfc3339("1970-01-01T00:00:00Z").unwrap()), 0.0);
        assert_eq!(
            secs(parse_rfc3339("2026-11-23T18:16:00.000Z").unwrap()),
            1_795_457_760.0
        );
        assert_eq!(
            secs(parse_rfc3339("2026-11-23T18:16:00.5Z").unwrap()),
            1_795_457_760.5
        );
        assert_eq!(
            secs(parse_rfc3339("2026-11-23T19:16:00+01:00").unwrap()),
            1_795_457_760.0
        );
        assert_eq!(
            secs(parse_rfc3339("2000-02-29T12:00:00Z").unwrap()),
            951_825_600.0
        );
        for bad in [
            "",
            "2026-11-23",
            "2026-13-01T00:00:00Z",
            "2026-11-23T18:16:00",
            "x",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn http_date() {
        assert_eq!(
            secs(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap()),
            784_111_777.0
        );
        assert_eq!(
            parse_http_date("Mon, 23 Nov 2026 18:16:00 GMT"),
            parse_rfc3339("2026-11-23T18:16:00Z")
        );
        assert!(parse_http_date("Mon, 23 Foo 2026 18:16:00 GMT").is_none());
        assert!(parse_http_date("garbage").is_none());
    }
}
