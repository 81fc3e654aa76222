//! The command line: global options and verbs.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ctx::Ctx;
use crate::exit::{CliError, EXIT_STATUS};
use crate::out::Out;
use crate::{cmd_history, cmd_maintenance, cmd_refs, cmd_sweep};

/// DreamDB: a content-addressed, versioned store for vector datasets.
///
/// Every verb is one step for a person, cron or a k8s Job: it does its
/// work, prints a report (JSON with --json) and exits with a status from
/// the table below. Credentials come from AWS_ACCESS_KEY_ID,
/// AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), never from the URL.
#[derive(Debug, Parser)]
#[command(name = "dreamdb", version, about, long_about, after_help = EXIT_STATUS)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub verb: Verb,
}

/// Options every verb takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Backend: a directory, file:///abs/dir, memory://name or
    /// http(s)://host[:port]/bucket[/prefix] (S3-compatible).
    #[arg(
        long,
        global = true,
        env = "DREAMDB_BACKEND",
        default_value = "./dreamdb-data"
    )]
    pub backend: String,
    /// Dataset name (gc and verify cover every dataset of the backend).
    #[arg(
        long,
        global = true,
        env = "DREAMDB_DATASET",
        default_value = "default"
    )]
    pub dataset: String,
    /// Print the report as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// No logs or progress on stderr (errors are still printed).
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Delete objects no retained version reaches (mark and sweep over every
    /// dataset of the backend; spec/0006 §4).
    #[command(after_help = EXIT_STATUS)]
    Gc(GcArgs),
    /// Check every object reachable from every ref and tag: present, hashes
    /// to its name, decodes strictly, links resolve. Reports every bad object.
    #[command(after_help = EXIT_STATUS)]
    Verify(VerifyArgs),
    /// History of a version: per commit the writer, time, message, record
    /// and track deltas.
    #[command(after_help = EXIT_STATUS)]
    Log(LogArgs),
    /// One version in detail: parents, schema, tracks, registry.
    #[command(after_help = EXIT_STATUS)]
    Inspect(InspectArgs),
    /// List branches and tags with their targets.
    #[command(after_help = EXIT_STATUS)]
    Refs(RefsArgs),
    /// Create a branch (or list or delete branches).
    #[command(after_help = EXIT_STATUS)]
    Branch(BranchArgs),
    /// Tag the current target of a ref (create-once).
    #[command(after_help = EXIT_STATUS)]
    Snapshot(SnapshotArgs),
    /// Move a branch to any version of the dataset (one CAS).
    #[command(after_help = EXIT_STATUS)]
    Reset(ResetArgs),
    /// Merge a version into a branch (spec/0008 §5).
    #[command(after_help = EXIT_STATUS)]
    Merge(MergeArgs),
    /// Merge many branches into one as ONE Manifest and ONE CAS (sharded ingest).
    #[command(name = "merge-many", after_help = EXIT_STATUS)]
    MergeMany(MergeManyArgs),
    /// Records only in A and only in B (track diff; cost proportional to the change).
    #[command(after_help = EXIT_STATUS)]
    Diff(DiffArgs),
    /// Create sweep branches sweep/run-001.. at a source version.
    #[command(name = "sweep-init", after_help = EXIT_STATUS)]
    SweepInit(SweepInitArgs),
    /// Compare sweep branches by a metric.
    #[command(name = "sweep-summarize", after_help = EXIT_STATUS)]
    SweepSummarize(SweepSummarizeArgs),
    /// Create the dataset with a schema (JSON file or field flags).
    #[command(after_help = EXIT_STATUS)]
    Create(crate::cmd_schema::CreateArgs),
    /// Append records from .npy, .fvecs, Parquet or Arrow IPC files.
    #[command(after_help = EXIT_STATUS)]
    Import(crate::cmd_import::ImportArgs),
    /// Write one version's records to an Arrow IPC or Parquet file.
    #[command(after_help = EXIT_STATUS)]
    Export(crate::cmd_export::ExportArgs),
    /// Top-k nearest records to a vector (with an optional scalar filter).
    #[command(after_help = EXIT_STATUS)]
    Query(crate::cmd_data::QueryArgs),
    /// One record by anchor.
    #[command(after_help = EXIT_STATUS)]
    Get(crate::cmd_data::GetArgs),
    /// Delete records by anchor (tombstones; one CAS).
    #[command(after_help = EXIT_STATUS)]
    Delete(crate::cmd_data::DeleteArgs),
    /// One field across versions: summary per version, wide table to a file.
    #[command(name = "compare-refs", after_help = EXIT_STATUS)]
    CompareRefs(crate::cmd_data::CompareRefsArgs),
    /// Replace the schema by a forward-compatible evolution of it.
    #[command(name = "schema-update", after_help = EXIT_STATUS)]
    SchemaUpdate(crate::cmd_schema::SchemaUpdateArgs),
    /// Rewrite fragmented cells into one run each and drop deleted records
    /// (blob and scalar segments too), so a later gc reclaims their bytes.
    #[command(after_help = EXIT_STATUS)]
    Compact(crate::cmd_spatial::CompactArgs),
    /// Retrain the IVF index from every record and re-dispatch everything
    /// (raw vectors where kept, else decoded codes, flagged).
    #[command(name = "rebuild-ivf", after_help = EXIT_STATUS)]
    RebuildIvf(crate::cmd_spatial::RebuildIvfArgs),
    /// Add RaBitQ compression to an embedding field or change its bits
    /// (re-encodes every record from its raw vector).
    #[command(name = "publish-rabitq", after_help = EXIT_STATUS)]
    PublishRabitq(crate::cmd_spatial::PublishRabitqArgs),
    /// Ada-IVF signals from the track's cell stats (never LIST): imbalance,
    /// k, N, √N, over/under-populated cells, fragmentation, GC candidates;
    /// --fail-above X exits 4 when the imbalance exceeds X.
    #[command(name = "ada-ivf-status", after_help = EXIT_STATUS)]
    AdaIvfStatus(crate::cmd_spatial::AdaIvfStatusArgs),
    /// One Ada-IVF step: merge cold cells, split hot ones (k ≤ 2·√N), rewrite
    /// only the changed cells; sharded with --shard/--of/--job-id workers
    /// and --orchestrate to publish.
    #[command(name = "ada-ivf-step", after_help = EXIT_STATUS)]
    AdaIvfStep(crate::cmd_spatial::AdaIvfStepArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("retention").required(true).multiple(true)))]
pub struct GcArgs {
    /// Keep the newest N Manifests of every branch's history (tip included).
    #[arg(long, value_name = "N", group = "retention")]
    pub keep_manifests: Option<u64>,
    /// Keep every Manifest younger than DUR (e.g. 7d, 24h) on every branch.
    #[arg(long, value_name = "DUR", group = "retention", value_parser = parse_ticks)]
    pub keep_since: Option<dreamdb_core::time::Ticks>,
    /// Never delete an object younger than DUR (safety beside writers).
    #[arg(long, value_name = "DUR", default_value = "24h", value_parser = parse_ticks)]
    pub grace: dreamdb_core::time::Ticks,
    /// Report what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Sweep only fan-out directories d with d mod N = I (needs --of).
    #[arg(long, value_name = "I", requires = "of")]
    pub shard: Option<u32>,
    /// Number of shards (with --shard).
    #[arg(long, value_name = "N", requires = "shard")]
    pub of: Option<u32>,
    /// Requests in flight.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// List every deleted hash in the human report too.
    #[arg(long)]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Follow at most N generations of parents from each ref or tag.
    #[arg(long, value_name = "N")]
    pub max_depth: Option<u64>,
    /// Count a parent Manifest removed by gc as damage.
    #[arg(long)]
    pub strict_history: bool,
    /// Requests in flight.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Branch, tag or Manifest hash.
    #[arg(default_value = "main")]
    pub version: String,
    /// Show at most N commits.
    #[arg(long, short = 'n', value_name = "N")]
    pub max_depth: Option<u64>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Branch, tag or Manifest hash.
    #[arg(default_value = "main")]
    pub version: String,
}

#[derive(Debug, Args)]
pub struct RefsArgs {
    /// Only names matching this glob (`*` and `?` within one segment).
    #[arg(long)]
    pub pattern: Option<String>,
}

#[derive(Debug, Args)]
pub struct BranchArgs {
    /// The branch to create (or delete with --delete).
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// Where the new branch starts (branch, tag or hash).
    #[arg(long, default_value = "main")]
    pub from: String,
    /// List branches instead.
    #[arg(long, conflicts_with_all = ["delete"])]
    pub list: bool,
    /// Delete the branch NAME (never a tag).
    #[arg(long)]
    pub delete: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// The version to tag.
    #[arg(long = "ref", default_value = "main")]
    pub reference: String,
    /// The tag's name.
    #[arg(long)]
    pub label: String,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The branch to move.
    pub branch: String,
    /// Where to (branch, tag or Manifest hash).
    pub to: String,
}

/// Merge strategies.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    /// 3-way union per field; refuses conflicts and incompatible indexes.
    Union,
    /// Every field from the branch merged into.
    Ours,
    /// Every field from the branch merged in.
    Theirs,
    /// Only move the branch forward; refuse if that is not possible.
    FastForward,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The version to merge in (branch, tag or hash).
    pub theirs: String,
    /// The branch merged into.
    #[arg(long, default_value = "main")]
    pub into: String,
    /// Strategy.
    #[arg(long, value_enum, default_value = "union")]
    pub strategy: StrategyArg,
    /// Per-field override: FIELD=ours or FIELD=theirs (repeatable).
    #[arg(long = "field", value_name = "FIELD=SIDE")]
    pub fields: Vec<String>,
    /// Always write a merge Manifest, never fast-forward.
    #[arg(long)]
    pub no_ff: bool,
    /// Commit message.
    #[arg(long, short)]
    pub message: Option<String>,
    /// Writer identity recorded in the Manifest.
    #[arg(long, env = "DREAMDB_WRITER", default_value = "dreamdb-cli")]
    pub writer: String,
}

#[derive(Debug, Args)]
pub struct MergeManyArgs {
    /// Branches (or tags, hashes) to merge.
    pub branches: Vec<String>,
    /// Also every branch matching this glob (e.g. 'ingest/*').
    #[arg(long)]
    pub pattern: Option<String>,
    /// The branch merged into.
    #[arg(long, default_value = "main")]
    pub into: String,
    /// Strategy (union, ours, theirs).
    #[arg(long, value_enum, default_value = "union")]
    pub strategy: StrategyArg,
    /// Commit message.
    #[arg(long, short)]
    pub message: Option<String>,
    /// Writer identity recorded in the Manifest.
    #[arg(long, env = "DREAMDB_WRITER", default_value = "dreamdb-cli")]
    pub writer: String,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Version A.
    pub a: String,
    /// Version B.
    pub b: String,
    /// Only this field.
    #[arg(long)]
    pub field: Option<String>,
    /// List at most N runs per side and field.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct SweepInitArgs {
    /// Where every run starts.
    #[arg(long, default_value = "main")]
    pub source: String,
    /// Number of runs.
    #[arg(long)]
    pub runs: u32,
    /// Branch prefix.
    #[arg(long, default_value = "sweep")]
    pub prefix: String,
}

#[derive(Debug, Args)]
pub struct SweepSummarizeArgs {
    /// Branches to compare.
    #[arg(long, default_value = "sweep/*")]
    pub pattern: String,
    /// The metric: records, commits, height, tombstones, or NAME read as
    /// NAME=<number> from the newest commit message on the run that has it.
    #[arg(long)]
    pub metric: String,
    /// Where the runs started (commits are counted from there).
    #[arg(long, default_value = "main")]
    pub source: String,
    /// Lower is better (default: higher is better).
    #[arg(long)]
    pub ascending: bool,
}

fn parse_ticks(text: &str) -> Result<dreamdb_core::time::Ticks, String> {
    dreamdb_core::time::Ticks::parse(text).map_err(|e| e.to_string())
}

/// Runs the verb; returns the exit status.
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    let out = Out {
        json: cli.global.json,
        quiet: cli.global.quiet,
    };
    let ctx = Ctx::open(&cli.global.backend, &cli.global.dataset, out).await?;
    match cli.verb {
        Verb::Gc(args) => cmd_maintenance::gc(&ctx, args).await,
        Verb::Verify(args) => cmd_maintenance::verify(&ctx, args).await,
        Verb::Log(args) => cmd_history::log(&ctx, args).await,
        Verb::Inspect(args) => cmd_history::inspect(&ctx, args).await,
        Verb::Diff(args) => cmd_history::diff(&ctx, args).await,
        Verb::Refs(args) => cmd_refs::refs(&ctx, args).await,
        Verb::Branch(args) => cmd_refs::branch(&ctx, args).await,
        Verb::Snapshot(args) => cmd_refs::snapshot(&ctx, args).await,
        Verb::Reset(args) => cmd_refs::reset(&ctx, args).await,
        Verb::Merge(args) => cmd_refs::merge(&ctx, args).await,
        Verb::MergeMany(args) => cmd_refs::merge_many(&ctx, args).await,
        Verb::SweepInit(args) => cmd_sweep::init(&ctx, args).await,
        Verb::SweepSummarize(args) => cmd_sweep::summarize(&ctx, args).await,
        Verb::Create(args) => crate::cmd_schema::create(&ctx, args).await,
        Verb::Import(args) => crate::cmd_import::import(&ctx, args).await,
        Verb::Export(args) => crate::cmd_export::export(&ctx, args).await,
        Verb::Query(args) => crate::cmd_data::query(&ctx, args).await,
        Verb::Get(args) => crate::cmd_data::get(&ctx, args).await,
        Verb::Delete(args) => crate::cmd_data::delete(&ctx, args).await,
        Verb::CompareRefs(args) => crate::cmd_data::compare(&ctx, args).await,
        Verb::SchemaUpdate(args) => crate::cmd_schema::schema_update(&ctx, args).await,
        Verb::Compact(args) => crate::cmd_spatial::compact(&ctx, args).await,
        Verb::RebuildIvf(args) => crate::cmd_spatial::rebuild_ivf(&ctx, args).await,
        Verb::PublishRabitq(args) => crate::cmd_spatial::publish_rabitq(&ctx, args).await,
        Verb::AdaIvfStatus(args) => crate::cmd_spatial::ada_ivf_status(&ctx, args).await,
        Verb::AdaIvfStep(args) => crate::cmd_spatial::ada_ivf_step(&ctx, args).await,
    }
}
