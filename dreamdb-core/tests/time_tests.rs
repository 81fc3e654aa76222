//! Tests of `dreamdb_core::time`: checked arithmetic, hex and duration
//! text forms, Genesis conversions, ranges and serde encodings, with
//! property tests against u128 reference arithmetic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use dreamdb_core::time::{
    unix_nanos_from_system_time, Genesis, Ticks, TimeAnchor, TimeError, TimeRange, NANOS_PER_DAY,
    NANOS_PER_HOUR, NANOS_PER_MICRO, NANOS_PER_MILLI, NANOS_PER_MINUTE, NANOS_PER_SECOND,
};
use proptest::prelude::*;

/// Canonical CBOR bytes (checked to equal ciborium's plain encoding).
fn cbor<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut plain = Vec::new();
    ciborium::into_writer(value, &mut plain).unwrap();
    let canonical = dreamdb_core::cbor::to_vec(value).unwrap();
    assert_eq!(canonical, plain);
    canonical
}

#[test]
fn unit_constants() {
    assert_eq!(NANOS_PER_MICRO, 1_000);
    assert_eq!(NANOS_PER_MILLI, 1_000_000);
    assert_eq!(NANOS_PER_SECOND, 1_000_000_000);
    assert_eq!(NANOS_PER_MINUTE, 60_000_000_000);
    assert_eq!(NANOS_PER_HOUR, 3_600_000_000_000);
    assert_eq!(NANOS_PER_DAY, 86_400_000_000_000);
}

#[test]
fn checked_constructors() {
    assert_eq!(Ticks::from_secs(10).unwrap().as_nanos(), 10_000_000_000);
    assert_eq!(Ticks::from_millis(500).unwrap().as_nanos(), 500_000_000);
    assert_eq!(Ticks::from_micros(3).unwrap().as_nanos(), 3_000);
    assert_eq!(
        Ticks::from_minutes(30).unwrap().as_nanos(),
        1_800_000_000_000
    );
    assert_eq!(Ticks::from_hours(24).unwrap().as_nanos(), NANOS_PER_DAY);
    assert_eq!(Ticks::from_days(7).unwrap().as_nanos(), 7 * NANOS_PER_DAY);
    assert_eq!(Ticks::from_nanos(5).as_nanos(), 5);
    // 213 503 days fit in u64 nanoseconds; 213 504 do not.
    assert!(Ticks::from_days(213_503).is_ok());
    let err = Ticks::from_days(213_504).unwrap_err();
    assert_eq!(err.class(), "overflow");
    assert_eq!(Ticks::from_secs(u64::MAX).unwrap_err().class(), "overflow");
}

#[test]
fn anchor_arithmetic_refuses_to_wrap() {
    let a = TimeAnchor::new(100);
    assert_eq!(
        a.checked_add(Ticks::from_nanos(5)).unwrap(),
        TimeAnchor::new(105)
    );
    assert_eq!(
        a.checked_sub(Ticks::from_nanos(100)).unwrap(),
        TimeAnchor::MIN
    );
    assert!(matches!(
        a.checked_sub(Ticks::from_nanos(101)),
        Err(TimeError::Underflow {
            lhs: 100,
            rhs: 101,
            ..
        })
    ));
    assert!(matches!(
        TimeAnchor::MAX.checked_add(Ticks::from_nanos(1)),
        Err(TimeError::Overflow { .. })
    ));
    assert_eq!(a.since(TimeAnchor::new(40)).unwrap(), Ticks::from_nanos(60));
    assert_eq!(
        a.since(TimeAnchor::new(101)).unwrap_err().class(),
        "underflow"
    );
    assert_eq!(
        Ticks::MAX
            .checked_add(Ticks::from_nanos(1))
            .unwrap_err()
            .class(),
        "overflow"
    );
}

#[test]
fn anchor_hex_form() {
    assert_eq!(TimeAnchor::MIN.to_hex(), "0000000000000000");
    assert_eq!(TimeAnchor::new(255).to_hex(), "00000000000000ff");
    assert_eq!(TimeAnchor::MAX.to_hex(), "ffffffffffffffff");
    assert_eq!(
        TimeAnchor::new(0x0123_4567_89ab_cdef).to_string(),
        "0123456789abcdef"
    );
    assert_eq!(
        TimeAnchor::from_hex("0123456789abcdef").unwrap(),
        TimeAnchor::new(0x0123_4567_89ab_cdef)
    );
    for bad in [
        "",
        "ff",
        "00000000000000FF",
        "000000000000000g",
        "0x000000000000ff",
        "+000000000000000",
        " 000000000000000",
        "00000000000000000",
        "000000000000000é",
    ] {
        let err = TimeAnchor::from_hex(bad).unwrap_err();
        assert_eq!(err.class(), "bad-hex", "{bad:?}");
    }
    assert_eq!(
        "00000000000000ff".parse::<TimeAnchor>().unwrap(),
        TimeAnchor::new(255)
    );
}

#[test]
fn duration_parse_examples() {
    let cases: &[(&str, u64)] = &[
        ("0s", 0),
        ("0ns", 0),
        ("500ms", 500 * NANOS_PER_MILLI),
        ("10s", 10 * NANOS_PER_SECOND),
        ("30m", 30 * NANOS_PER_MINUTE),
        ("24h", 24 * NANOS_PER_HOUR),
        ("7d", 7 * NANOS_PER_DAY),
        ("1h30m", 90 * NANOS_PER_MINUTE),
        ("90m", 90 * NANOS_PER_MINUTE),
        ("1s500ms", 1500 * NANOS_PER_MILLI),
        ("250us", 250_000),
        ("1d2h3m4s5ms6us7ns", {
            NANOS_PER_DAY
                + 2 * NANOS_PER_HOUR
                + 3 * NANOS_PER_MINUTE
                + 4 * NANOS_PER_SECOND
                + 5 * NANOS_PER_MILLI
                + 6 * NANOS_PER_MICRO
                + 7
        }),
        ("30m1h", 90 * NANOS_PER_MINUTE),
        ("1h1h", 2 * NANOS_PER_HOUR),
        ("1ms1s", 1001 * NANOS_PER_MILLI),
        ("07d", 7 * NANOS_PER_DAY),
        ("00s", 0),
        ("000000000000000000000000001ns", 1),
        ("18446744073709551615ns", u64::MAX),
        ("213503d23h34m33s709ms551us615ns", u64::MAX),
    ];
    for &(text, nanos) in cases {
        assert_eq!(Ticks::parse(text).unwrap().as_nanos(), nanos, "{text}");
        assert_eq!(text.parse::<Ticks>().unwrap().as_nanos(), nanos, "{text}");
    }
}

#[test]
fn duration_parse_refusals() {
    let bad_duration = [
        "", "7", "d", "7 d", " 7d", "7d ", "1.5s", "-1s", "+1s", "7D", "7days", "1h 30m", "1µs",
        "1h\t", "7w", "1y", "ms", "1_000s", "1h30", "0x10s", "1e3s",
    ];
    for text in bad_duration {
        let err = Ticks::parse(text).unwrap_err();
        assert_eq!(err.class(), "bad-duration", "{text:?}: {err}");
    }
    for text in [
        "18446744073709551616ns",
        "213504d",
        "213503d23h34m33s709ms551us616ns",
        "99999999999999999999999999s",
    ] {
        let err = Ticks::parse(text).unwrap_err();
        assert_eq!(err.class(), "overflow", "{text:?}: {err}");
    }
}

#[test]
fn duration_display() {
    assert_eq!(Ticks::ZERO.to_string(), "0s");
    assert_eq!(Ticks::from_nanos(1).to_string(), "1ns");
    assert_eq!(Ticks::from_minutes(90).unwrap().to_string(), "1h30m");
    assert_eq!(Ticks::from_days(7).unwrap().to_string(), "7d");
    assert_eq!(Ticks::from_millis(1500).unwrap().to_string(), "1s500ms");
    assert_eq!(Ticks::MAX.to_string(), "213503d23h34m33s709ms551us615ns");
}

#[test]
fn genesis_conversions() {
    let genesis = Genesis::new(1_700_000_000_000_000_000);
    assert_eq!(
        genesis
            .anchor_from_unix_nanos(1_700_000_000_000_000_123)
            .unwrap(),
        TimeAnchor::new(123)
    );
    assert_eq!(
        genesis.anchor_from_unix_nanos(genesis.unix_nanos).unwrap(),
        TimeAnchor::MIN
    );
    let err = genesis
        .anchor_from_unix_nanos(genesis.unix_nanos - 1)
        .unwrap_err();
    assert_eq!(err.class(), "before-genesis");
    assert_eq!(
        genesis.unix_nanos_from_anchor(TimeAnchor::new(77)).unwrap(),
        1_700_000_000_000_000_077
    );
    assert_eq!(
        genesis
            .unix_nanos_from_anchor(TimeAnchor::MAX)
            .unwrap_err()
            .class(),
        "overflow"
    );
    assert_eq!(
        Genesis::new(0)
            .unix_nanos_from_anchor(TimeAnchor::MAX)
            .unwrap(),
        u64::MAX
    );
}

#[test]
fn system_time_conversion_is_pure_and_checked() {
    let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
    assert_eq!(
        unix_nanos_from_system_time(t).unwrap(),
        1_700_000_000_000_000_005
    );
    assert_eq!(
        unix_nanos_from_system_time(SystemTime::UNIX_EPOCH).unwrap(),
        0
    );
    if let Some(before) = SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(1)) {
        assert_eq!(
            unix_nanos_from_system_time(before).unwrap_err().class(),
            "before-unix-epoch"
        );
    }
    // 2^64 ns is in the year 2554.
    if let Some(late) = SystemTime::UNIX_EPOCH.checked_add(Duration::new(18_446_744_074, 0)) {
        assert_eq!(
            unix_nanos_from_system_time(late).unwrap_err().class(),
            "overflow"
        );
    }
}

#[test]
fn ranges_are_half_open() {
    let r = TimeRange::new(TimeAnchor::new(10), TimeAnchor::new(20)).unwrap();
    assert_eq!(r.start(), TimeAnchor::new(10));
    assert_eq!(r.end(), TimeAnchor::new(20));
    assert_eq!(r.len(), Ticks::from_nanos(10));
    assert!(!r.is_empty());
    assert!(r.contains(TimeAnchor::new(10)));
    assert!(r.contains(TimeAnchor::new(19)));
    assert!(!r.contains(TimeAnchor::new(20)));
    assert!(!r.contains(TimeAnchor::new(9)));

    let touching = TimeRange::new(TimeAnchor::new(20), TimeAnchor::new(30)).unwrap();
    assert!(!r.overlaps(&touching));
    let crossing = TimeRange::new(TimeAnchor::new(19), TimeAnchor::new(30)).unwrap();
    assert!(r.overlaps(&crossing) && crossing.overlaps(&r));
    let inside = TimeRange::new(TimeAnchor::new(12), TimeAnchor::new(13)).unwrap();
    assert!(r.overlaps(&inside) && inside.overlaps(&r));

    let empty = TimeRange::new(TimeAnchor::new(15), TimeAnchor::new(15)).unwrap();
    assert!(empty.is_empty());
    assert!(!empty.contains(TimeAnchor::new(15)));
    assert!(!empty.overlaps(&r) && !r.overlaps(&empty));

    let err = TimeRange::new(TimeAnchor::new(21), TimeAnchor::new(20)).unwrap_err();
    assert_eq!(err.class(), "inverted-range");
    assert!(TimeRange::ALL.contains(TimeAnchor::MIN));
    assert!(!TimeRange::ALL.contains(TimeAnchor::MAX));
}

#[test]
fn serde_encodings() {
    let a = TimeAnchor::new(1_000_000_000);
    // Tag 65524 = 0xfff4 (d9 ff f4), then uint 0x3b9aca00 (1a 3b 9a ca 00).
    assert_eq!(hex::encode(cbor(&a)), "d9fff41a3b9aca00");
    assert_eq!(hex::encode(cbor(&TimeAnchor::MIN)), "d9fff400");
    let back: TimeAnchor = ciborium::from_reader(&cbor(&a)[..]).unwrap();
    assert_eq!(back, a);
    // An untagged integer or the wrong tag is refused in CBOR.
    assert!(
        ciborium::from_reader::<TimeAnchor, _>(&hex::decode("1a3b9aca00").unwrap()[..]).is_err()
    );
    assert!(
        ciborium::from_reader::<TimeAnchor, _>(&hex::decode("d9fff51a3b9aca00").unwrap()[..])
            .is_err()
    );
    assert_eq!(serde_json::to_string(&a).unwrap(), "1000000000");
    assert_eq!(
        serde_json::to_string(&TimeAnchor::MAX).unwrap(),
        "18446744073709551615"
    );
    assert_eq!(
        serde_json::from_str::<TimeAnchor>("18446744073709551615").unwrap(),
        TimeAnchor::MAX
    );

    let r = TimeRange::new(TimeAnchor::new(1), TimeAnchor::new(2)).unwrap();
    // Tag 65525 (d9 ff f5), array of 2 (82), 1, 2.
    assert_eq!(hex::encode(cbor(&r)), "d9fff5820102");
    assert_eq!(
        ciborium::from_reader::<TimeRange, _>(&cbor(&r)[..]).unwrap(),
        r
    );
    assert_eq!(serde_json::to_string(&r).unwrap(), "[1,2]");
    assert_eq!(serde_json::from_str::<TimeRange>("[1,2]").unwrap(), r);
    assert!(serde_json::from_str::<TimeRange>("[3,2]").is_err());
    assert!(
        ciborium::from_reader::<TimeRange, _>(&hex::decode("d9fff5820302").unwrap()[..]).is_err()
    );

    let t = Ticks::from_nanos(24);
    assert_eq!(hex::encode(cbor(&t)), "1818");
    assert_eq!(serde_json::to_string(&t).unwrap(), "24");
    assert_eq!(serde_json::from_str::<Ticks>("24").unwrap(), t);

    let g = Genesis::new(5);
    assert_eq!(serde_json::to_string(&g).unwrap(), r#"{"unix_nanos":5}"#);
}

/// The worked examples of spec/0003 §2, §4 and §6.
#[test]
fn spec_0003_examples() {
    let genesis = Genesis::new(1_779_083_474_791_115_000);
    let anchor = genesis
        .anchor_from_unix_nanos(1_779_083_474_791_115_000 + 1_500_000_000)
        .unwrap();
    assert_eq!(anchor, TimeAnchor::new(1_500_000_000));
    assert_eq!(anchor.to_hex(), "0000000059682f00");
    assert_eq!(TimeAnchor::MAX.to_hex(), "ffffffffffffffff");
    assert_eq!(hex::encode(cbor(&anchor)), "d9fff41a59682f00");
    let range = TimeRange::new(TimeAnchor::MIN, TimeAnchor::new(1000)).unwrap();
    assert_eq!(hex::encode(cbor(&range)), "d9fff582001903e8");
    assert_eq!(
        dreamdb_core::cbor::from_slice::<TimeRange>(&cbor(&range)).unwrap(),
        range
    );
    assert_eq!(Ticks::parse("1h30m").unwrap().as_nanos(), 5_400_000_000_000);
}

proptest! {
    #[test]
    fn add_agrees_with_u128(a in any::<u64>(), t in any::<u64>()) {
        let exact = u128::from(a) + u128::from(t);
        let got = TimeAnchor::new(a).checked_add(Ticks::from_nanos(t));
        if exact > u128::from(u64::MAX) {
            prop_assert_eq!(got.unwrap_err().class(), "overflow");
        } else {
            prop_assert_eq!(u128::from(got.unwrap().as_nanos()), exact);
        }
    }

    #[test]
    fn add_near_the_top_agrees_with_u128(a in (u64::MAX - 1000)..=u64::MAX, t in 0u64..2000) {
        let exact = u128::from(a) + u128::from(t);
        let got = TimeAnchor::new(a).checked_add(Ticks::from_nanos(t));
        prop_assert_eq!(got.is_ok(), exact <= u128::from(u64::MAX));
    }

    #[test]
    fn sub_and_since_agree_with_i128(a in any::<u64>(), b in any::<u64>()) {
        let exact = i128::from(a) - i128::from(b);
        let sub = TimeAnchor::new(a).checked_sub(Ticks::from_nanos(b));
        let since = TimeAnchor::new(a).since(TimeAnchor::new(b));
        if exact < 0 {
            prop_assert_eq!(sub.unwrap_err().class(), "underflow");
            prop_assert_eq!(since.unwrap_err().class(), "underflow");
        } else {
            prop_assert_eq!(i128::from(sub.unwrap().as_nanos()), exact);
            prop_assert_eq!(i128::from(since.unwrap().as_nanos()), exact);
        }
    }

    #[test]
    fn unit_constructors_agree_with_u128(n in any::<u64>(), small in 0u64..1_000_000) {
        type Ctor = fn(u64) -> Result<Ticks, TimeError>;
        let ctors: [(Ctor, u64); 6] = [
            (Ticks::from_micros, NANOS_PER_MICRO),
            (Ticks::from_millis, NANOS_PER_MILLI),
            (Ticks::from_secs, NANOS_PER_SECOND),
            (Ticks::from_minutes, NANOS_PER_MINUTE),
            (Ticks::from_hours, NANOS_PER_HOUR),
            (Ticks::from_days, NANOS_PER_DAY),
        ];
        for (ctor, unit) in ctors {
            for value in [n, small] {
                let exact = u128::from(value) * u128::from(unit);
                match ctor(value) {
                    Ok(t) => prop_assert_eq!(u128::from(t.as_nanos()), exact),
                    Err(e) => {
                        prop_assert!(exact > u128::from(u64::MAX));
                        prop_assert_eq!(e.class(), "overflow");
                    }
                }
            }
        }
    }

    #[test]
    fn hex_round_trips_and_orders(a in any::<u64>(), b in any::<u64>()) {
        let (ha, hb) = (TimeAnchor::new(a).to_hex(), TimeAnchor::new(b).to_hex());
        prop_assert_eq!(ha.len(), 16);
        prop_assert_eq!(TimeAnchor::from_hex(&ha).unwrap(), TimeAnchor::new(a));
        prop_assert_eq!(ha.cmp(&hb), a.cmp(&b));
    }

    #[test]
    fn ticks_display_parse_round_trip(n in any::<u64>()) {
        let t = Ticks::from_nanos(n);
        prop_assert_eq!(Ticks::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn ticks_display_round_trips_round_values(n in 0u64..100_000, unit in 0usize..7) {
        let units = [1, NANOS_PER_MICRO, NANOS_PER_MILLI, NANOS_PER_SECOND, NANOS_PER_MINUTE,
            NANOS_PER_HOUR, NANOS_PER_DAY];
        let t = Ticks::from_nanos(n * units[unit]);
        prop_assert_eq!(Ticks::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn parse_never_panics(text in "[0-9a-z .+-]{0,24}") {
        let _ = Ticks::parse(&text);
    }

    #[test]
    fn genesis_round_trips(genesis in any::<u64>(), unix in any::<u64>()) {
        let g = Genesis::new(genesis);
        match g.anchor_from_unix_nanos(unix) {
            Ok(anchor) => {
                prop_assert!(unix >= genesis);
                prop_assert_eq!(g.unix_nanos_from_anchor(anchor).unwrap(), unix);
            }
            Err(e) => {
                prop_assert!(unix < genesis);
                prop_assert_eq!(e.class(), "before-genesis");
            }
        }
        match g.unix_nanos_from_anchor(TimeAnchor::new(unix)) {
            Ok(back) => prop_assert_eq!(g.anchor_from_unix_nanos(back).unwrap(), TimeAnchor::new(unix)),
            Err(e) => {
                prop_assert!(u128::from(genesis) + u128::from(unix) > u128::from(u64::MAX));
                prop_assert_eq!(e.class(), "overflow");
            }
        }
    }

    #[test]
    fn anchor_serde_round_trips(a in any::<u64>()) {
        let anchor = TimeAnchor::new(a);
        let bytes = cbor(&anchor);
        prop_assert_eq!(ciborium::from_reader::<TimeAnchor, _>(&bytes[..]).unwrap(), anchor);
        prop_assert_eq!(dreamdb_core::cbor::from_slice::<TimeAnchor>(&bytes).unwrap(), anchor);
        let json = serde_json::to_string(&anchor).unwrap();
        prop_assert_eq!(serde_json::from_str::<TimeAnchor>(&json).unwrap(), anchor);
    }

    #[test]
    fn range_relations_agree_with_brute_force(a in 0u64..40, b in 0u64..40, c in 0u64..40, d in 0u64..40) {
        let r1 = TimeRange::new(TimeAnchor::new(a.min(b)), TimeAnchor::new(a.max(b))).unwrap();
        let r2 = TimeRange::new(TimeAnchor::new(c.min(d)), TimeAnchor::new(c.max(d))).unwrap();
        let common = (0..40).any(|x| r1.contains(TimeAnchor::new(x)) && r2.contains(TimeAnchor::new(x)));
        prop_assert_eq!(r1.overlaps(&r2), common);
        prop_assert_eq!(r2.overlaps(&r1), common);
    }
}
