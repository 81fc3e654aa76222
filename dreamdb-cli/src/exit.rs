//! Errors and the exit status.

use std::process::ExitCode;

use dreamdb_connector::ConnectorError;
use dreamdb_dataset::DatasetError;
use dreamdb_protocol::dag::DagError;
use dreamdb_protocol::maintenance::MaintenanceError;

/// The exit-status table, shown by `--help` and kept in the README.
pub const EXIT_STATUS: &str = "\
Exit status:
  0  done
  1  error (backend unreachable, object missing, bad input file, ...)
  2  usage (unknown verb or flag, bad value; clap's own)
  3  conflict (a ref moved and CAS was lost after retries, a name already taken,
     an incompatible or conflicting merge, fast-forward refused)
  4  threshold crossed (verify found damage; gc refused to sweep over damaged
     reachable objects; ada-ivf-status --fail-above exceeded)

With --json the report (or, on failure, {\"error\": {...}, \"exit\": N}) is
JSON on stdout; logs and progress go to stderr.";

/// Done.
pub const OK: u8 = 0;
/// An error.
pub const ERROR: u8 = 1;
/// Bad usage.
pub const USAGE: u8 = 2;
/// A lost race or an incompatible merge.
pub const CONFLICT: u8 = 3;
/// A threshold was crossed (damage found).
pub const THRESHOLD: u8 = 4;

/// A failure with its exit status.
#[derive(Debug)]
pub struct CliError {
    /// The exit status.
    pub code: u8,
    /// A stable class (`conflict`, `merge-conflict`, `usage`, ...).
    pub class: String,
    /// The message for people.
    pub message: String,
}

impl CliError {
    pub fn other(message: impl Into<String>) -> Self {
        CliError {
            code: ERROR,
            class: "error".to_owned(),
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: USAGE,
            class: "usage".to_owned(),
            message: message.into(),
        }
    }
}

impl From<DagError> for CliError {
    fn from(e: DagError) -> Self {
        let class = e.class();
        let code = match &e {
            DagError::Conflict { .. }
            | DagError::AlreadyExists { .. }
            | DagError::NotAncestor { .. }
            | DagError::MergeConflict { .. }
            | DagError::SpatialIndexIncompatible { .. }
            | DagError::CrissCross { .. } => CONFLICT,
            DagError::InvalidArgument(_) => USAGE,
            _ => ERROR,
        };
        CliError {
            code,
            class: class.to_owned(),
            message: e.to_string(),
        }
    }
}

impl From<MaintenanceError> for CliError {
    fn from(e: MaintenanceError) -> Self {
        let code = match &e {
            MaintenanceError::Damaged { .. } => THRESHOLD,
            MaintenanceError::InvalidArgument(_) => USAGE,
            _ => ERROR,
        };
        CliError {
            code,
            class: e.class().to_owned(),
            message: e.to_string(),
        }
    }
}

impl From<ConnectorError> for CliError {
    fn from(e: ConnectorError) -> Self {
        CliError {
            code: ERROR,
            class: "backend".to_owned(),
            message: e.to_string(),
        }
    }
}

/// The SDK's errors: bad input, a refused schema change or a missing
/// record or version is an error (1); a name already taken, a lost race or
/// a merge conflict is a conflict (3); writing through a pinned version is
/// usage (2). The class is the SDK's `kind()`.
impl From<DatasetError> for CliError {
    fn from(e: DatasetError) -> Self {
        let code = match &e {
            DatasetError::AlreadyExists { .. } | DatasetError::Conflict { .. } => CONFLICT,
            DatasetError::ReadOnly { .. } => USAGE,
            _ => ERROR,
        };
        CliError {
            code,
            class: e.kind().to_owned(),
            message: e.to_string(),
        }
    }
}

/// Prints `error` (stderr; and JSON on stdout with `--json`) and returns
/// its exit status.
pub fn report_error(error: &CliError, json: bool) -> ExitCode {
    eprintln!("dreamdb: error: {}", error.message);
    if json {
        let value = serde_json::json!({
            "error": { "class": error.class, "message": error.message },
            "exit": error.code,
        });
        println!("{value}");
    }
    ExitCode::from(error.code)
}
