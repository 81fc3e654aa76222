//! Output: a JSON report on stdout with `--json`, a human table otherwise;
//! progress on stderr only when it is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;

use dreamdb_protocol::maintenance::ProgressFn;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    pub json: bool,
    pub quiet: bool,
}

impl Out {
    /// Prints `report` as one JSON document (with `--json`) or through
    /// `human` (otherwise).
    pub fn emit(&self, report: &Value, human: impl FnOnce(&Value) -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(report).unwrap_or_else(|_| report.to_string())
            );
        } else {
            let text = human(report);
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }

    /// A log line on stderr (unless `--quiet`).
    pub fn log(&self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("dreamdb: {}", line.as_ref());
        }
    }

    /// A spinner fed by a maintenance progress callback, when stderr is a
    /// terminal and output is not quiet.
    pub fn progress(&self) -> (Option<ProgressFn>, Option<ProgressBar>) {
        if self.quiet || !std::io::stderr().is_terminal() {
            return (None, None);
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let feed = bar.clone();
        let callback: ProgressFn = Arc::new(move |phase, n| {
            feed.set_message(format!("{phase}: {n}"));
        });
        (Some(callback), Some(bar))
    }
}

/// Aligned `key  value` lines.
pub fn table(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

/// A value as plain text (strings unquoted).
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// Unix nanoseconds as an ISO 8601 UTC instant (`2026-05-18T12:00:00Z`).
pub fn iso_time(unix_nanos: u64) -> String {
    let secs = unix_nanos / 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso_time(1_779_105_600 * 1_000_000_000),
            "2026-05-18T12:00:00Z"
        );
        assert_eq!(
            iso_time(951_782_400 * 1_000_000_000),
            "2000-02-29T00:00:00Z"
        );
    }
}
