//! The `dreamdb` command. Not yet built beyond `--version`: the CLI issue
//! adds the data, history and maintenance verbs.

use clap::Parser;

/// DreamDB: a content-addressed, versioned store for vector datasets.
#[derive(Debug, Parser)]
#[command(name = "dreamdb", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
