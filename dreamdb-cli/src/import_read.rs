//! Reading import files into rows of a schema: `.npy` (via `npyz`),
//! `.fvecs` (a small reader: no maintained crate reads it), Parquet (the
//! `parquet` crate) and Arrow IPC file or stream (`arrow-ipc`), each
//! turned into [`Rows`] — the columns of schema fields — chunk by chunk,
//! so memory stays bounded by the chunk size. Conversion refuses, naming
//! the column and the file row: a column naming no field, a type of the
//! wrong family, a null embedding, blob or anchor, ragged vectors, a
//! non-finite number. The SDK's `Batch::validate` then checks the rest
//! (dimension, NaN, required fields, blob sizes).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int64Type, TimestampNanosecondType, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_cast::{cast_with_options, CastOptions};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use clap::ValueEnum;
use dreamdb_dataset::batch::{Batch, ScalarColumn};
use dreamdb_protocol::objects::{FieldSpec, ScalarDtype, Schema};

use crate::exit::CliError;
use crate::out::Out;

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// 2-D float32 NumPy array.
    Npy,
    /// TEXMEX .fvecs.
    Fvecs,
    /// Parquet.
    Parquet,
    /// Arrow IPC (file or stream).
    Arrow,
}

impl InputFormat {
    pub(crate) fn of_path(path: &Path) -> Result<InputFormat, CliError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("npy") => Ok(InputFormat::Npy),
            Some("fvecs") => Ok(InputFormat::Fvecs),
            Some("parquet" | "pq") => Ok(InputFormat::Parquet),
            Some("arrow" | "ipc" | "feather" | "arrows") => Ok(InputFormat::Arrow),
            _ => Err(CliError::usage(format!(
                "{}: cannot tell the format from the extension (.npy, .fvecs, .parquet, .arrow): pass --format",
                path.display()
            ))),
        }
    }
}

/// Rows converted from the file, not yet appended.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    pub(crate) rows: usize,
    anchors: Option<Vec<u64>>,
    embeddings: BTreeMap<String, (u32, Vec<f32>)>,
    blobs: BTreeMap<String, Vec<Bytes>>,
    scalars: BTreeMap<String, ScalarColumn>,
}

fn scalar_append(a: &mut ScalarColumn, b: ScalarColumn) -> Result<(), CliError> {
    match (a, b) {
        (ScalarColumn::I64(a), ScalarColumn::I64(b))
        | (ScalarColumn::Timestamp(a), ScalarColumn::Timestamp(b)) => a.extend(b),
        (ScalarColumn::F64(a), ScalarColumn::F64(b)) => a.extend(b),
        (ScalarColumn::Bool(a), ScalarColumn::Bool(b)) => a.extend(b),
        (ScalarColumn::Str(a), ScalarColumn::Str(b))
        | (ScalarColumn::Categorical(a), ScalarColumn::Categorical(b)) => a.extend(b),
        _ => return Err(CliError::other("a column changed type between batches")),
    }
    Ok(())
}

fn scalar_split(a: &mut ScalarColumn, n: usize) -> ScalarColumn {
    fn front<T>(v: &mut Vec<T>, n: usize) -> Vec<T> {
        let rest = v.split_off(n.min(v.len()));
        std::mem::replace(v, rest)
    }
    match a {
        ScalarColumn::I64(v) => ScalarColumn::I64(front(v, n)),
        ScalarColumn::Timestamp(v) => ScalarColumn::Timestamp(front(v, n)),
        ScalarColumn::F64(v) => ScalarColumn::F64(front(v, n)),
        ScalarColumn::Bool(v) => ScalarColumn::Bool(front(v, n)),
        ScalarColumn::Str(v) => ScalarColumn::Str(front(v, n)),
        ScalarColumn::Categorical(v) => ScalarColumn::Categorical(front(v, n)),
    }
}

impl Rows {
    pub(crate) fn append(&mut self, other: Rows) -> Result<(), CliError> {
        let first = self.rows == 0;
        if first {
            *self = other;
            return Ok(());
        }
        let same_columns = self.anchors.is_some() == other.anchors.is_some()
            && self.embeddings.keys().eq(other.embeddings.keys())
            && self.blobs.keys().eq(other.blobs.keys())
            && self.scalars.keys().eq(other.scalars.keys());
        if !same_columns {
            return Err(CliError::other(
                "the file's batches do not all have the same columns",
            ));
        }
        self.rows += other.rows;
        if let (Some(a), Some(b)) = (&mut self.anchors, other.anchors) {
            a.extend(b);
        }
        for (k, (_, v)) in other.embeddings {
            if let Some((_, a)) = self.embeddings.get_mut(&k) {
                a.extend(v);
            }
        }
        for (k, v) in other.blobs {
            if let Some(a) = self.blobs.get_mut(&k) {
                a.extend(v);
            }
        }
        for (k, v) in other.scalars {
            if let Some(a) = self.scalars.get_mut(&k) {
                scalar_append(a, v)?;
            }
        }
        Ok(())
    }

    /// The first `n` rows (all when fewer) as an SDK batch.
    pub(crate) fn take(&mut self, n: usize) -> Result<Batch, CliError> {
        let n = n.min(self.rows);
        let mut batch = Batch::new(n);
        if let Some(a) = &mut self.anchors {
            let rest = a.split_off(n);
            batch = batch.anchors(std::mem::replace(a, rest))?;
        }
        for (k, (dim, v)) in &mut self.embeddings {
            let rest = v.split_off((n * *dim as usize).min(v.len()));
            batch = batch.embeddings(k, *dim, std::mem::replace(v, rest));
        }
        for (k, v) in &mut self.blobs {
            let rest = v.split_off(n.min(v.len()));
            batch = batch.blobs(k, std::mem::replace(v, rest));
        }
        for (k, v) in &mut self.scalars {
            batch = batch.scalars(k, scalar_split(v, n));
        }
        self.rows -= n;
        Ok(batch)
    }
}

fn bad_input(path: &Path, reason: impl std::fmt::Display) -> CliError {
    CliError {
        code: crate::exit::ERROR,
        class: "invalid-input".to_owned(),
        message: format!("{}: {reason}", path.display()),
    }
}

fn open(path: &Path) -> Result<File, CliError> {
    File::open(path).map_err(|e| CliError {
        code: crate::exit::ERROR,
        class: "not-found".to_owned(),
        message: format!("cannot open {}: {e}", path.display()),
    })
}

// ----- vector files -----

/// Reads a whole `.npy` or `.fvecs` file (by extension): `(dim, values)`.
pub fn read_vector_file(path: &Path) -> Result<(usize, Vec<f32>), CliError> {
    let mut chunks: VectorIter = match InputFormat::of_path(path)? {
        InputFormat::Npy => Box::new(npy_chunks(path, usize::MAX)?.0),
        InputFormat::Fvecs => Box::new(fvecs_chunks(path, usize::MAX)?.0),
        _ => {
            return Err(CliError::usage(format!(
                "{}: a query vector file is .npy or .fvecs",
                path.display()
            )))
        }
    };
    let (mut dim, mut all) = (0, Vec::new());
    for chunk in chunks.by_ref() {
        let (d, values) = chunk?;
        dim = d;
        all.extend(values);
    }
    Ok((dim, all))
}

/// Chunks of `(dim, row-major values)`.
type VectorIter = Box<dyn Iterator<Item = Result<(usize, Vec<f32>), CliError>>>;
/// Vector chunks and the file's row count.
type VectorChunks = (VectorIter, Option<u64>);
/// Converted rows, chunk by chunk.
pub(crate) type RowChunks = Box<dyn Iterator<Item = Result<Rows, CliError>>>;

/// A 2-D float32 `.npy` in chunks of `rows` rows; with the row count.
fn npy_chunks(path: &Path, rows: usize) -> Result<VectorChunks, CliError> {
    let file = npyz::NpyFile::new(BufReader::new(open(path)?))
        .map_err(|e| bad_input(path, format!("not a .npy file: {e}")))?;
    let shape = file.shape().to_vec();
    let [n, dim] = shape.as_slice() else {
        return Err(bad_input(
            path,
            format!("expected a 2-D array (rows × dim), got shape {shape:?}"),
        ));
    };
    let (n, dim) = (*n, *dim as usize);
    if file.order() != npyz::Order::C {
        return Err(bad_input(
            path,
            "Fortran-order arrays are not supported; save in C order",
        ));
    }
    let dtype = file.dtype();
    let mut data = file.data::<f32>().map_err(|e| {
        bad_input(
            path,
            format!(
                "expected float32 values, the file holds {}: {e}",
                dtype.descr()
            ),
        )
    })?;
    let path = path.to_owned();
    let per = rows.saturating_mul(dim).max(dim);
    let mut done = false;
    let iter = std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut values = Vec::with_capacity(per.min(1 << 24));
        for _ in 0..per {
            match data.next() {
                Some(Ok(x)) => values.push(x),
                Some(Err(e)) => {
                    done = true;
                    return Some(Err(bad_input(&path, format!("read error: {e}"))));
                }
                None => {
                    done = true;
                    break;
                }
            }
        }
        (!values.is_empty()).then_some(Ok((dim, values)))
    });
    Ok((Box::new(iter), Some(n)))
}

/// An `.fvecs` file in chunks of `rows` rows; with the row count.
fn fvecs_chunks(path: &Path, rows: usize) -> Result<VectorChunks, CliError> {
    let file = open(path)?;
    let len = file.metadata().map(|m| m.len()).ok();
    let mut reader = BufReader::new(file);
    let path = path.to_owned();
    let mut dim: Option<usize> = None;
    let mut row = 0u64;
    let mut done = false;
    let mut total = None;
    // Peek the first dimension for the row count.
    let mut first = [0u8; 4];
    let has_first = match reader.read_exact(&mut first) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => false,
        Err(e) => return Err(bad_input(&path, format!("read error: {e}"))),
    };
    let mut pending_dim = has_first.then_some(first);
    if let Some(d) = pending_dim {
        let d = i32::from_le_bytes(d);
        if d <= 0 {
            return Err(bad_input(&path, format!("row 0 has dimension {d}")));
        }
        total = len.map(|l| l / (4 + 4 * d as u64));
    }
    let iter = std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut values = Vec::new();
        let mut got = 0usize;
        while got < rows {
            let mut head = [0u8; 4];
            if let Some(h) = pending_dim.take() {
                head = h;
            } else {
                match reader.read_exact(&mut head) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        done = true;
                        break;
                    }
                    Err(e) => {
                        done = true;
                        return Some(Err(bad_input(&path, format!("read error: {e}"))));
                    }
                }
            }
            let d = i32::from_le_bytes(head);
            let d = match (d, dim) {
                (d, _) if d <= 0 => {
                    done = true;
                    return Some(Err(bad_input(
                        &path,
                        format!("row {row} has dimension {d}"),
                    )));
                }
                (d, Some(expected)) if d as usize != expected => {
                    done = true;
                    return Some(Err(bad_input(
                        &path,
                        format!("row {row} has dimension {d}, row 0 has {expected}"),
                    )));
                }
                (d, _) => d as usize,
            };
            dim = Some(d);
            let mut buf = vec![0u8; 4 * d];
            if let Err(e) = reader.read_exact(&mut buf) {
                done = true;
                return Some(Err(bad_input(
                    &path,
                    format!("row {row} is truncated: {e}"),
                )));
            }
            values.extend(
                buf.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
            got += 1;
            row += 1;
        }
        (got > 0).then(|| Ok((dim.unwrap_or(0), values)))
    });
    Ok((Box::new(iter), total))
}

// ----- tables -----

type TableChunks = (
    Box<dyn Iterator<Item = Result<RecordBatch, CliError>>>,
    Option<u64>,
);

fn table_chunks(path: &Path, format: InputFormat, rows: usize) -> Result<TableChunks, CliError> {
    let owned = path.to_owned();
    let arrow_err = move |e: arrow_schema::ArrowError| bad_input(&owned, e);
    match format {
        InputFormat::Parquet => {
            let builder =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(open(path)?)
                    .map_err(|e| bad_input(path, format!("not a Parquet file: {e}")))?;
            let total = u64::try_from(builder.metadata().file_metadata().num_rows()).ok();
            let reader = builder
                .with_batch_size(rows.clamp(1, 65_536))
                .build()
                .map_err(|e| bad_input(path, e))?;
            Ok((Box::new(reader.map(move |b| b.map_err(&arrow_err))), total))
        }
        _ => {
            let mut file = open(path)?;
            let mut magic = [0u8; 6];
            let is_file = file.read_exact(&mut magic).is_ok() && &magic == b"ARROW1";
            let file = open(path)?;
            if is_file {
                let reader = arrow_ipc::reader::FileReader::try_new(file, None)
                    .map_err(|e| bad_input(path, format!("not an Arrow IPC file: {e}")))?;
                Ok((Box::new(reader.map(move |b| b.map_err(&arrow_err))), None))
            } else {
                let reader = arrow_ipc::reader::StreamReader::try_new(BufReader::new(file), None)
                    .map_err(|e| {
                    bad_input(path, format!("not an Arrow IPC file or stream: {e}"))
                })?;
                Ok((Box::new(reader.map(move |b| b.map_err(&arrow_err))), None))
            }
        }
    }
}

/// How the file's columns map to fields.
pub(crate) struct Mapping {
    pub(crate) path: PathBuf,
    pub(crate) schema: Schema,
    pub(crate) field: String,
    pub(crate) embedding_column: String,
    pub(crate) anchor_column: Option<String>,
    pub(crate) skip_unknown: bool,
    /// Whether skipped `_` columns were already noted (once per import,
    /// not once per pass).
    pub(crate) noted: std::sync::atomic::AtomicBool,
}

fn col_error(m: &Mapping, column: &str, reason: impl std::fmt::Display) -> CliError {
    bad_input(&m.path, format!("column {column:?}: {reason}"))
}

fn cast(m: &Mapping, column: &str, array: &ArrayRef, to: &DataType) -> Result<ArrayRef, CliError> {
    cast_with_options(
        array,
        to,
        &CastOptions {
            safe: false,
            ..CastOptions::default()
        },
    )
    .map_err(|e| col_error(m, column, e))
}

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

fn scalar_column(
    m: &Mapping,
    name: &str,
    array: &ArrayRef,
    dtype: ScalarDtype,
    row0: usize,
) -> Result<ScalarColumn, CliError> {
    let t = array.data_type();
    let refuse = || {
        col_error(
            m,
            name,
            format!("type {t} does not fit the field's type {dtype:?}"),
        )
    };
    Ok(match dtype {
        ScalarDtype::I64 => {
            if !t.is_integer() {
                return Err(refuse());
            }
            let a = cast(m, name, array, &DataType::Int64)?;
            ScalarColumn::I64(a.as_primitive::<Int64Type>().iter().collect())
        }
        ScalarDtype::F64 => {
            if !t.is_integer() && !t.is_floating() {
                return Err(refuse());
            }
            let a = cast(m, name, array, &DataType::Float64)?;
            let values: Vec<Option<f64>> = a.as_primitive::<Float64Type>().iter().collect();
            if let Some(row) = values
                .iter()
                .position(|v| v.is_some_and(|x| !x.is_finite()))
            {
                return Err(col_error(
                    m,
                    name,
                    format!("row {} is not finite", row0 + row),
                ));
            }
            ScalarColumn::F64(values)
        }
        ScalarDtype::Bool => {
            if t != &DataType::Boolean {
                return Err(refuse());
            }
            ScalarColumn::Bool(array.as_boolean().iter().collect())
        }
        ScalarDtype::String | ScalarDtype::Categorical => {
            if !is_text(t) {
                return Err(refuse());
            }
            let a = cast(m, name, array, &DataType::Utf8)?;
            let v: Vec<Option<String>> = a
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(str::to_owned))
                .collect();
            if dtype == ScalarDtype::String {
                ScalarColumn::Str(v)
            } else {
                ScalarColumn::Categorical(v)
            }
        }
        ScalarDtype::Timestamp => {
            if !matches!(t, DataType::Timestamp(..) | DataType::Int64) {
                return Err(refuse());
            }
            let a = cast(
                m,
                name,
                array,
                &DataType::Timestamp(TimeUnit::Nanosecond, None),
            )?;
            ScalarColumn::Timestamp(a.as_primitive::<TimestampNanosecondType>().iter().collect())
        }
    })
}

fn embedding_column(
    m: &Mapping,
    name: &str,
    array: &ArrayRef,
    row0: usize,
) -> Result<(u32, Vec<f32>), CliError> {
    let item_ok = |f: &arrow_schema::FieldRef| f.data_type() == &DataType::Float32;
    let rows: Vec<Option<ArrayRef>> = match array.data_type() {
        DataType::FixedSizeList(item, _) if item_ok(item) => {
            let a = array.as_fixed_size_list();
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i)))
                .collect()
        }
        DataType::List(item) if item_ok(item) => {
            let a = array.as_list::<i32>();
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i)))
                .collect()
        }
        DataType::LargeList(item) if item_ok(item) => {
            let a = array.as_list::<i64>();
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i)))
                .collect()
        }
        other => {
            return Err(col_error(
                m,
                name,
                format!(
                    "an embedding column is FixedSizeList<Float32> or List<Float32>, not {other}"
                ),
            ))
        }
    };
    let mut dim: Option<usize> = None;
    let mut values = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        let Some(row) = row else {
            return Err(col_error(m, name, format!("row {} is null", row0 + i)));
        };
        let row = row.as_primitive::<Float32Type>();
        if row.null_count() > 0 {
            return Err(col_error(
                m,
                name,
                format!("row {} holds a null value", row0 + i),
            ));
        }
        match dim {
            None => dim = Some(row.len()),
            Some(d) if d != row.len() => {
                return Err(col_error(
                    m,
                    name,
                    format!(
                        "row {} has {} values, earlier rows {d}",
                        row0 + i,
                        row.len()
                    ),
                ))
            }
            Some(_) => {}
        }
        values.extend_from_slice(row.values());
    }
    Ok((dim.unwrap_or(0) as u32, values))
}

/// One record batch of the file as rows for the schema.
fn convert(m: &Mapping, batch: &RecordBatch, row0: usize, out: &Out) -> Result<Rows, CliError> {
    let mut rows = Rows {
        rows: batch.num_rows(),
        ..Rows::default()
    };
    for (column, array) in batch.schema().fields().iter().zip(batch.columns()) {
        let name = column.name().as_str();
        if Some(name) == m.anchor_column.as_deref() {
            if !array.data_type().is_integer() {
                return Err(col_error(
                    m,
                    name,
                    format!("anchors are integers, not {}", array.data_type()),
                ));
            }
            let a = cast(m, name, array, &DataType::UInt64)?;
            let a = a.as_primitive::<UInt64Type>();
            if let Some(row) = (0..a.len()).find(|i| a.is_null(*i)) {
                return Err(col_error(
                    m,
                    name,
                    format!("row {} has no anchor", row0 + row),
                ));
            }
            rows.anchors = Some(a.values().to_vec());
            continue;
        }
        let field = if name == m.embedding_column {
            m.field.as_str()
        } else {
            name
        };
        let Some(spec) = m.schema.fields.get(field).map(|f| &f.spec) else {
            if name.starts_with('_') {
                if row0 == 0 && !m.noted.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    out.log(format!("skipping column {name:?} (pass --anchor-column {name} to use it as anchors)"));
                }
                continue;
            }
            if m.skip_unknown {
                continue;
            }
            return Err(col_error(
                m,
                name,
                format!(
                    "unknown field (the schema has {:?}; --skip-unknown-columns ignores it)",
                    m.schema.fields.keys().collect::<Vec<_>>()
                ),
            ));
        };
        match spec {
            FieldSpec::Embedding { .. } => {
                let e = embedding_column(m, name, array, row0)?;
                rows.embeddings.insert(field.to_owned(), e);
            }
            FieldSpec::Blob { .. } => {
                let a = match array.data_type() {
                    DataType::Binary
                    | DataType::LargeBinary
                    | DataType::BinaryView
                    | DataType::FixedSizeBinary(_) => cast(m, name, array, &DataType::LargeBinary)?,
                    other => {
                        return Err(col_error(
                            m,
                            name,
                            format!("a blob column is binary, not {other}"),
                        ))
                    }
                };
                let a = a.as_binary::<i64>();
                let mut blobs = Vec::with_capacity(a.len());
                for i in 0..a.len() {
                    if a.is_null(i) {
                        return Err(col_error(m, name, format!("row {} is null", row0 + i)));
                    }
                    blobs.push(Bytes::copy_from_slice(a.value(i)));
                }
                rows.blobs.insert(field.to_owned(), blobs);
            }
            FieldSpec::Scalar { dtype, .. } => {
                let c = scalar_column(m, name, array, *dtype, row0)?;
                rows.scalars.insert(field.to_owned(), c);
            }
            FieldSpec::Fragment { .. } => {
                return Err(col_error(
                    m,
                    name,
                    "fragment fields are not imported from tables",
                ))
            }
        }
    }
    Ok(rows)
}

/// The file as a stream of `Rows` chunks; with the row count when known.
pub(crate) fn chunks(
    path: &Path,
    rows_per_chunk: usize,
    m: &Arc<Mapping>,
    format: InputFormat,
    out: Out,
) -> Result<(RowChunks, Option<u64>), CliError> {
    match format {
        InputFormat::Npy | InputFormat::Fvecs => {
            let (iter, total) = if format == InputFormat::Npy {
                npy_chunks(path, rows_per_chunk)?
            } else {
                fvecs_chunks(path, rows_per_chunk)?
            };
            let field = m.field.clone();
            let iter = iter.map(move |c| {
                let (dim, values) = c?;
                let mut rows = Rows {
                    rows: values.len() / dim.max(1),
                    ..Rows::default()
                };
                rows.embeddings.insert(field.clone(), (dim as u32, values));
                Ok(rows)
            });
            Ok((Box::new(iter), total))
        }
        _ => {
            let (iter, total) = table_chunks(path, format, rows_per_chunk)?;
            let m = m.clone();
            let mut row0 = 0usize;
            let iter = iter.map(move |b| {
                let b = b?;
                let rows = convert(&m, &b, row0, &out)?;
                row0 += b.num_rows();
                Ok(rows)
            });
            Ok((Box::new(iter), total))
        }
    }
}
