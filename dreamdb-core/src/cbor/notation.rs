//! RFC 8949 §8 diagnostic notation, in the style of RFC 8949 Appendix A.
//!
//! Used in error reports, conformance vectors and tests, so that a human can
//! read what bytes mean. The output is ASCII-only and deterministic:
//!
//! - integers in decimal (`0`, `-1000`, `18446744073709551615`);
//! - byte strings as `h'0102'` (lowercase hex, `h''` when empty);
//! - text strings in double quotes with JSON escapes: `\"`, `\\`,
//!   `\b \f \n \r \t`, and `\uXXXX` (lowercase hex, UTF-16 surrogate pairs
//!   above U+FFFF) for every other character outside printable ASCII, as in
//!   `"\u00fc"` and `"\ud800\udd51"`;
//! - floats as described in [`format_float`]: `1.5`, `-0.0`, `100000.0`,
//!   `1.0e+300`, `5.960464477539063e-8`, `Infinity`, `-Infinity`, `NaN`;
//! - `false`, `true`, `null`;
//! - tags as `1(1363896240)`; bignums (tags 2 and 3) are shown as ordinary
//!   tags, e.g. `2(h'010000000000000000')`, not as the number they denote;
//! - arrays as `[1, [2, 3]]` and maps as `{"a": 1, "b": [2, 3]}`, entries in
//!   the order held by the value.
//!
//! Encoding indicators (`_`, `_1`, ...) are never printed: a
//! `ciborium::Value` does not remember how it was encoded.

use std::fmt::Write as _;

use ciborium::value::Value;

/// Renders `value` in diagnostic notation.
pub(crate) fn render(value: &Value) -> String {
    // An explicit work stack instead of recursion, so that even a very deep
    // value built in memory cannot overflow the call stack here.
    enum Step<'a> {
        Item(&'a Value),
        Text(&'static str),
    }
    let mut out = String::new();
    let mut stack = vec![Step::Item(value)];
    while let Some(step) = stack.pop() {
        let item = match step {
            Step::Text(text) => {
                out.push_str(text);
                continue;
            }
            Step::Item(item) => item,
        };
        match item {
            Value::Integer(integer) => {
                let _ = write!(out, "{}", i128::from(*integer));
            }
            Value::Bytes(bytes) => {
                out.push_str("h'");
                out.push_str(&hex::encode(bytes));
                out.push('\'');
            }
            Value::Text(text) => push_text(&mut out, text),
            Value::Float(f) => out.push_str(&format_float(*f)),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Null => out.push_str("null"),
            Value::Tag(tag, inner) => {
                let _ = write!(out, "{tag}(");
                stack.push(Step::Text(")"));
                stack.push(Step::Item(inner));
            }
            Value::Array(items) => {
                out.push('[');
                stack.push(Step::Text("]"));
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push(Step::Item(item));
                    if i > 0 {
                        stack.push(Step::Text(", "));
                    }
                }
            }
            Value::Map(entries) => {
                out.push('{');
                stack.push(Step::Text("}"));
                for (i, (key, value)) in entries.iter().enumerate().rev() {
                    stack.push(Step::Item(value));
                    stack.push(Step::Text(": "));
                    stack.push(Step::Item(key));
                    if i > 0 {
                        stack.push(Step::Text(", "));
                    }
                }
            }
            _ => out.push_str("<unknown>"),
        }
    }
    out
}

/// Appends a quoted, escaped text string.
fn push_text(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Formats a float exactly and unambiguously, in the style of RFC 8949
/// Appendix A.
///
/// The digits are the shortest decimal that reads back as the same `f64`
/// (so the text identifies the value exactly), laid out with the
/// ECMAScript `Number::toString` rules, except that a number with no
/// fractional digits always gets `.0` so it cannot be mistaken for an
/// integer:
///
/// - decimal exponent `n` (value = 0.d1d2… × 10^n) with `-6 < n <= 21`:
///   positional, e.g. `100000.0`, `1.1`, `0.00006103515625`;
/// - otherwise scientific with a signed exponent: `1.0e+300`,
///   `3.4028234663852886e+38`, `5.960464477539063e-8`;
/// - `0.0`, `-0.0`, `Infinity`, `-Infinity`, `NaN`.
pub(crate) fn format_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if value == 0.0 {
        return format!("{sign}0.0");
    }
    // `{:e}` gives the shortest round-trip digits: "d[.ddd]e<exp>".
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    let n = exponent + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}.0", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        let e = n - 1;
        let e_sign = if e >= 0 { "+" } else { "-" };
        format!("{first}.{rest}e{e_sign}{}", e.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::format_float;

    #[test]
    fn floats_follow_appendix_a_style() {
        for (value, text) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (1.1, "1.1"),
            (1.5, "1.5"),
            (65504.0, "65504.0"),
            (100000.0, "100000.0"),
            (3.4028234663852886e38, "3.4028234663852886e+38"),
            (1.0e300, "1.0e+300"),
            (5.960464477539063e-8, "5.960464477539063e-8"),
            (0.00006103515625, "0.00006103515625"),
            (-4.0, "-4.0"),
            (-4.1, "-4.1"),
            (1363896240.5, "1363896240.5"),
            (1e21, "1.0e+21"),
            (1e20, "100000000000000000000.0"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (f64::MIN_POSITIVE * f64::EPSILON, "5.0e-324"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(format_float(value), text, "{value:?}");
        }
    }

    #[test]
    fn formatted_floats_read_back_exactly() {
        for value in [
            0.1,
            1.0 / 3.0,
            f64::MAX,
            f64::MIN_POSITIVE,
            -2.5e-300,
            123456789.125,
        ] {
            let text = format_float(value);
            let parsed: f64 = text.parse().unwrap_or(f64::NAN);
            assert_eq!(parsed.to_bits(), value.to_bits(), "{text}");
        }
    }
}
