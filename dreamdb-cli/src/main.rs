//! The `dreamdb` command: data, history and maintenance verbs for people,
//! cron and k8s (the operator API of seeds/000, Layer 3).
//!
//! One shell command per step, a documented exit status (see
//! [`exit::EXIT_STATUS`]), a machine-readable report on stdout with
//! `--json`, human tables otherwise; logs and progress go to stderr, and
//! progress bars only when stderr is a terminal. No daemon: every verb does
//! its work and exits.
//!
//! Module map: `cli` (the clap definitions), `exit` (errors and exit
//! status), `out` (JSON / human output, progress), `ctx` (backend, repo,
//! resolving versions), `cmd_*` (the verbs; the data verbs build on the
//! `dreamdb-dataset` SDK), `import_read` (import file readers).

mod cli;
mod cmd_data;
mod cmd_export;
mod cmd_history;
mod cmd_import;
mod cmd_maintenance;
mod cmd_refs;
mod cmd_schema;
mod cmd_spatial;
mod cmd_sweep;
mod ctx;
mod exit;
mod import_read;
mod out;

// mimalloc, tuned at start (dreamdb_dataset::allocator says why).
dreamdb_dataset::install_allocator!();

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    dreamdb_dataset::allocator::tune();
    let cli = cli::Cli::parse();
    let json = cli.global.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return exit::report_error(
                &exit::CliError::other(format!("cannot start the async runtime: {e}")),
                json,
            )
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => exit::report_error(&e, json),
    }
}
