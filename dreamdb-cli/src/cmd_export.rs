//! `dreamdb export`: one version's live records to an Arrow IPC or Parquet
//! file, streamed through the SDK's `iter_arrow_batches` (bounded memory:
//! one batch at a time). The file has `_anchor: UInt64` first, then one
//! column per field in the SDK's Arrow types (embeddings
//! `FixedSizeList<Float32>`, blobs `Binary`, categorical
//! `Dictionary<Int32, Utf8>`, timestamps `Timestamp(ns, UTC)`), so
//! `dreamdb import --anchor-column _anchor` reads it back.
//!
//! Also the wide-table writer of `compare-refs --out` (Arrow IPC or CSV;
//! CSV cells are Arrow's display form, vectors as `[x, y, ...]`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Field, Schema as ArrowSchema, SchemaRef};
use clap::{Args, ValueEnum};
use dreamdb_dataset::read::{iter_arrow_batches, ArrowOptions};
use futures::StreamExt;
use serde_json::json;

use crate::cmd_data::{open_version, ReadTarget};
use crate::ctx::Ctx;
use crate::exit::{CliError, OK};
use crate::out::{table, text};

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Arrow IPC file.
    Arrow,
    /// Parquet (Snappy).
    Parquet,
}

/// `compare-refs --out` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    /// Arrow IPC file.
    Arrow,
    /// Comma-separated values with a header line.
    Csv,
}

impl TableFormat {
    /// `.csv` → CSV, anything else Arrow IPC.
    pub fn of_path(path: &Path) -> TableFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => TableFormat::Csv,
            _ => TableFormat::Arrow,
        }
    }

    /// The format's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            TableFormat::Arrow => "arrow",
            TableFormat::Csv => "csv",
        }
    }
}

/// `dreamdb export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The file written (replaced if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The format (default from the extension: .parquet/.pq → parquet, else arrow).
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// Fields exported (comma-separated; default every readable field).
    #[arg(long, value_delimiter = ',')]
    pub fields: Option<Vec<String>>,
    /// Rows per written batch (Arrow record batch / Parquet row group chunk).
    #[arg(long, value_name = "N", default_value_t = 8192)]
    pub batch: usize,
    #[command(flatten)]
    pub target: ReadTarget,
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> CliError {
    CliError::other(format!("{}: {e}", path.display()))
}

/// Where batches go.
enum Sink {
    Arrow(arrow_ipc::writer::FileWriter<BufWriter<File>>),
    Parquet(parquet::arrow::ArrowWriter<File>),
}

/// The IPC file format cannot replace a dictionary between batches, and
/// every exported batch has its own categorical dictionary: those columns
/// are written as plain `Utf8` in Arrow IPC (Parquet keeps them).
fn ipc_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Dictionary(_, value) => {
                f.as_ref().clone().with_data_type(value.as_ref().clone())
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(ArrowSchema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ))
}

fn to_ipc(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch, CliError> {
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                arrow_cast::cast(c, f.data_type())
                    .map_err(|e| CliError::other(format!("arrow: {e}")))
            }
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| CliError::other(format!("arrow: {e}")))
}

impl Sink {
    fn create(path: &Path, format: ExportFormat, schema: &SchemaRef) -> Result<Sink, CliError> {
        let file = File::create(path).map_err(|e| io_error(path, e))?;
        Ok(match format {
            ExportFormat::Arrow => Sink::Arrow(
                arrow_ipc::writer::FileWriter::try_new(BufWriter::new(file), &ipc_schema(schema))
                    .map_err(|e| io_error(path, e))?,
            ),
            ExportFormat::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .build();
                Sink::Parquet(
                    parquet::arrow::ArrowWriter::try_new(file, schema.clone(), Some(props))
                        .map_err(|e| io_error(path, e))?,
                )
            }
        })
    }

    fn write(&mut self, path: &Path, batch: &RecordBatch) -> Result<(), CliError> {
        match self {
            Sink::Arrow(w) => {
                let converted = to_ipc(w.schema(), batch)?;
                w.write(&converted).map_err(|e| io_error(path, e))
            }
            Sink::Parquet(w) => w.write(batch).map_err(|e| io_error(path, e)),
        }
    }

    fn finish(self, path: &Path) -> Result<(), CliError> {
        match self {
            Sink::Arrow(mut w) => w.finish().map_err(|e| io_error(path, e)),
            Sink::Parquet(w) => w.close().map(|_| ()).map_err(|e| io_error(path, e)),
        }
    }
}

/// `dreamdb export`.
pub async fn export(ctx: &Ctx, args: ExportArgs) -> Result<u8, CliError> {
    if args.batch == 0 {
        return Err(CliError::usage("--batch must be at least 1"));
    }
    let format =
        args.format
            .unwrap_or_else(|| match args.out.extension().and_then(|e| e.to_str()) {
                Some("parquet" | "pq") => ExportFormat::Parquet,
                _ => ExportFormat::Arrow,
            });
    let (at, snapshot) = open_version(ctx, &args.target.reference).await?;
    let started = Instant::now();
    let schema = dreamdb_dataset::read::arrow_schema(&snapshot, args.fields.as_deref())?;
    let mut stream = iter_arrow_batches(
        &snapshot,
        ArrowOptions {
            batch_size: args.batch,
            fields: args.fields.clone(),
            ..ArrowOptions::default()
        },
    )?;
    let bar = progress(ctx, snapshot.records());
    let mut sink = Sink::create(&args.out, format, &schema)?;
    let (mut rows, mut batches) = (0u64, 0u64);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        sink.write(&args.out, &batch)?;
        rows += batch.num_rows() as u64;
        batches += 1;
        if let Some(b) = &bar {
            b.set_position(rows);
        }
    }
    sink.finish(&args.out)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    let value = json!({
        "verb": "export",
        "dataset": ctx.dataset,
        "version": at.via,
        "manifest": at.manifest.to_hex(),
        "out": args.out.display().to_string(),
        "format": format!("{format:?}").to_lowercase(),
        "columns": schema.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>(),
        "records": rows,
        "batches": batches,
        "bytes": bytes,
        "seconds": started.elapsed().as_secs_f64(),
    });
    ctx.out.emit(&value, |v| {
        table(&[
            ("version", text(&v["version"])),
            ("out", text(&v["out"])),
            ("format", text(&v["format"])),
            ("records", text(&v["records"])),
            ("bytes", text(&v["bytes"])),
        ])
    });
    Ok(OK)
}

fn progress(ctx: &Ctx, total: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if ctx.out.quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("exporting {bar:40} {pos}/{len} rows [{elapsed}]")
    {
        bar.set_style(style);
    }
    Some(bar)
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Writes `table` to `path` as Arrow IPC or CSV.
pub fn write_table(path: &Path, format: TableFormat, table: &RecordBatch) -> Result<(), CliError> {
    match format {
        TableFormat::Arrow => {
            let mut sink = Sink::create(path, ExportFormat::Arrow, &table.schema())?;
            sink.write(path, table)?;
            sink.finish(path)
        }
        TableFormat::Csv => {
            let file = File::create(path).map_err(|e| io_error(path, e))?;
            let mut w = BufWriter::new(file);
            let header: Vec<String> = table
                .schema()
                .fields()
                .iter()
                .map(|f| csv_cell(f.name()))
                .collect();
            writeln!(w, "{}", header.join(",")).map_err(|e| io_error(path, e))?;
            let options = FormatOptions::default().with_null("");
            let formatters: Vec<ArrayFormatter> = table
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<_, _>>()
                .map_err(|e| io_error(path, e))?;
            for row in 0..table.num_rows() {
                let cells: Vec<String> = formatters
                    .iter()
                    .zip(table.columns())
                    .map(|(f, c)| {
                        if c.is_null(row) {
                            String::new()
                        } else {
                            csv_cell(&f.value(row).to_string())
                        }
                    })
                    .collect();
                writeln!(w, "{}", cells.join(",")).map_err(|e| io_error(path, e))?;
            }
            w.flush().map_err(|e| io_error(path, e))
        }
    }
}
