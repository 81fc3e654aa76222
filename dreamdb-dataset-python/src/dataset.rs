//! `Dataset`: the native handle of the Python API.
//!
//! Input normalisation (rows of dicts, dicts of columns, pyarrow tables)
//! happens in the Python wrapper (`dreamdb_dataset/__init__.py`), which
//! hands this layer one *normalised column* per field:
//!
//! | kind | tuple |
//! |---|---|
//! | embedding | `("embedding", float32[rows, dim])` |
//! | blob, string, categorical | `(kind, int64 offsets[rows+1], uint8 data, bool valid or None)` |
//! | int, timestamp | `(kind, int64[rows], bool valid or None)` |
//! | float | `("float", float64[rows], valid)` |
//! | bool | `("bool", bool[rows], valid)` |
//!
//! so a columnar append crosses the boundary as a handful of numpy arrays,
//! never as one Python object per row.

use std::ops::Bound as RangeBound;
use std::pin::Pin;
use std::sync::Mutex;

use arrow_array::RecordBatch;
use bytes::Bytes;
use dreamdb_core::ContentHash;
use dreamdb_dataset::batch::{Batch, Column, ScalarColumn};
use dreamdb_dataset::dataset::{
    CreateOptions, DatasetVersion, MergeKind, MergeResult, MergeStrategy, OpenOptions, Version,
};
use dreamdb_dataset::read::{ArrowOptions, Filter, Predicate, QueryRequest, Value};
use dreamdb_dataset::schema::ScalarType;
use dreamdb_dataset::write::{AppendOptions, AppendResult, Signals};
use dreamdb_dataset::{Dataset, DatasetError};
use futures::{Stream, StreamExt};
use numpy::{PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use crate::arrow::ArrowBatch;
use crate::errors::{invalid, to_py, IntoPyResult};
use crate::runtime::{block_on, runtime};
use crate::schema::PySchema;

/// Where a handle stands, to reopen it in another process.
#[derive(Debug, Clone)]
enum Position {
    Ref(String),
    Pinned { manifest: ContentHash },
}

/// The Rust handle and the pid it was opened in.
#[derive(Debug)]
struct Handle {
    pid: u32,
    ds: Dataset,
}

/// A handle on one dataset in one backend: following a branch (reads see
/// its latest version, writes move it by compare-and-swap) or pinned to
/// one version (read-only).
///
/// The handle is fork-safe: used in a process other than the one that
/// opened it (a forked DataLoader worker), it reopens itself there. It
/// pickles as (backend, name, position), so it also crosses ``spawn``.
#[pyclass(module = "dreamdb_dataset._native", name = "Dataset")]
pub struct PyDataset {
    url: String,
    name: String,
    position: Position,
    handle: Mutex<Handle>,
}

impl PyDataset {
    fn wrap(ds: Dataset) -> PyDataset {
        let position = match ds.ref_name() {
            Some(r) => Position::Ref(r.to_owned()),
            None => Position::Pinned {
                manifest: ContentHash::of(b""),
            },
        };
        PyDataset {
            url: ds.url().to_owned(),
            name: ds.name().to_owned(),
            position,
            handle: Mutex::new(Handle {
                pid: std::process::id(),
                ds,
            }),
        }
    }

    fn wrap_pinned(ds: Dataset, manifest: ContentHash) -> PyDataset {
        let mut out = PyDataset::wrap(ds);
        out.position = Position::Pinned { manifest };
        out
    }

    /// The Rust handle, reopened first if this is another process.
    fn ds(&self, py: Python<'_>) -> PyResult<Dataset> {
        let pid = std::process::id();
        {
            let h = self.handle.lock().unwrap_or_else(|p| p.into_inner());
            if h.pid == pid {
                return Ok(h.ds.clone());
            }
        }
        let (url, name, position) = (self.url.clone(), self.name.clone(), self.position.clone());
        let fresh = block_on(py, async move {
            match position {
                Position::Ref(r) => {
                    Dataset::open(
                        &url,
                        &name,
                        OpenOptions {
                            ref_name: Some(r),
                            ..OpenOptions::default()
                        },
                    )
                    .await
                }
                Position::Pinned { manifest } => {
                    Dataset::open_at(&url, &name, Version::Manifest(manifest)).await
                }
            }
        })?
        .py_err(py)?;
        let mut h = self.handle.lock().unwrap_or_else(|p| p.into_inner());
        // The old handle's connections belong to the parent's runtime: leak
        // rather than drop them here.
        let old = std::mem::replace(
            &mut *h,
            Handle {
                pid,
                ds: fresh.clone(),
            },
        );
        std::mem::forget(old);
        Ok(fresh)
    }
}

/// Parses a merge strategy name.
fn strategy(py: Python<'_>, s: &str) -> PyResult<MergeStrategy> {
    match s.to_ascii_lowercase().replace('_', "-").as_str() {
        "union" => Ok(MergeStrategy::Union),
        "fast-forward" | "ff" | "fast-forward-only" => Ok(MergeStrategy::FastForwardOnly),
        "ours" => Ok(MergeStrategy::Ours),
        "theirs" => Ok(MergeStrategy::Theirs),
        other => Err(invalid(
            py,
            "_merge",
            format!("unknown strategy {other:?} (union, fast-forward, ours, theirs)"),
        )),
    }
}

fn merge_dict<'py>(py: Python<'py>, r: &MergeResult) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(
        "kind",
        match r.kind {
            MergeKind::AlreadyUpToDate => "already-up-to-date",
            MergeKind::FastForward => "fast-forward",
            MergeKind::Merged => "merged",
        },
    )?;
    d.set_item("manifest", r.manifest.to_hex())?;
    Ok(d)
}

/// A value read back → Python (embeddings as float32 numpy arrays, blobs
/// as bytes).
pub(crate) fn value_to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Embedding(x) => PyArray1::from_slice(py, x).into_any(),
        Value::Blob(b) => PyBytes::new(py, b).into_any(),
        Value::I64(i) => i.into_pyobject(py)?.into_any(),
        Value::F64(f) => f.into_pyobject(py)?.into_any(),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Str(s) => s.into_pyobject(py)?.into_any(),
        _ => py.None().into_bound(py),
    })
}

/// A Python scalar → a filter value.
fn py_to_value(v: &Bound<'_, PyAny>) -> PyResult<Value> {
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<pyo3::types::PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = v.extract::<i64>() {
        return Ok(Value::I64(i));
    }
    if let Ok(f) = v.extract::<f64>() {
        return Ok(Value::F64(f));
    }
    if let Ok(s) = v.extract::<String>() {
        return Ok(Value::Str(s));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "a filter value must be None, bool, int, float or str, not {}",
        v.get_type().name()?
    )))
}

/// The normalised filter of the wrapper: a list of `("eq", field, value)`,
/// `("in", field, [values])`, `("range", field, low, high, low_incl,
/// high_incl)` (low/high `None` = unbounded).
fn parse_filter(py: Python<'_>, spec: &Bound<'_, PyList>) -> PyResult<Filter> {
    let mut filter = Filter::new();
    for item in spec.iter() {
        let t = item.cast::<PyTuple>()?;
        let op: String = t.get_item(0)?.extract()?;
        let field: String = t.get_item(1)?.extract()?;
        let pred = match op.as_str() {
            "eq" => Predicate::Eq {
                field,
                value: py_to_value(&t.get_item(2)?)?,
            },
            "in" => {
                let values = t
                    .get_item(2)?
                    .try_iter()?
                    .map(|v| py_to_value(&v?))
                    .collect::<PyResult<Vec<_>>>()?;
                Predicate::In { field, values }
            }
            "range" => {
                let bound = |v: Bound<'_, PyAny>, incl: bool| -> PyResult<RangeBound<Value>> {
                    if v.is_none() {
                        return Ok(RangeBound::Unbounded);
                    }
                    let v = py_to_value(&v)?;
                    Ok(if incl {
                        RangeBound::Included(v)
                    } else {
                        RangeBound::Excluded(v)
                    })
                };
                let low_incl: bool = t.get_item(4)?.extract()?;
                let high_incl: bool = t.get_item(5)?.extract()?;
                Predicate::Range {
                    low: bound(t.get_item(2)?, low_incl)?,
                    high: bound(t.get_item(3)?, high_incl)?,
                    field,
                }
            }
            other => return Err(invalid(py, &field, format!("unknown filter op {other:?}"))),
        };
        filter.predicates.push(pred);
    }
    Ok(filter)
}

fn validity(valid: Option<PyReadonlyArray1<'_, bool>>, rows: usize) -> PyResult<Option<Vec<bool>>> {
    match valid {
        None => Ok(None),
        Some(v) => {
            let v = v.as_array();
            if v.len() != rows {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "validity mask of the wrong length",
                ));
            }
            Ok(Some(v.iter().copied().collect()))
        }
    }
}

fn with_validity<T: Copy>(
    values: impl Iterator<Item = T>,
    valid: &Option<Vec<bool>>,
) -> Vec<Option<T>> {
    match valid {
        None => values.map(Some).collect(),
        Some(mask) => values
            .zip(mask.iter())
            .map(|(v, ok)| ok.then_some(v))
            .collect(),
    }
}

/// Var-length values (offsets + data) → per-row byte ranges.
fn varlen<'a>(
    py: Python<'_>,
    field: &str,
    offsets: &'a [i64],
    data: &'a [u8],
    rows: usize,
) -> PyResult<Vec<&'a [u8]>> {
    if offsets.len() != rows + 1 {
        return Err(invalid(
            py,
            field,
            format!("{} offsets for {rows} rows", offsets.len()),
        ));
    }
    let mut out = Vec::with_capacity(rows);
    for w in offsets.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (Ok(a), Ok(b)) = (usize::try_from(a), usize::try_from(b)) else {
            return Err(invalid(py, field, "negative offset"));
        };
        match data.get(a..b) {
            Some(s) => out.push(s),
            None => return Err(invalid(py, field, "offsets out of range")),
        }
    }
    Ok(out)
}

/// Adds one normalised column to `batch`.
fn add_column(
    py: Python<'_>,
    batch: Batch,
    field: &str,
    spec: &Bound<'_, PyTuple>,
    rows: usize,
) -> PyResult<Batch> {
    let kind: String = spec.get_item(0)?.extract()?;
    Ok(match kind.as_str() {
        "embedding" => {
            let arr: PyReadonlyArray2<'_, f32> = spec.get_item(1)?.extract()?;
            let shape = arr.shape();
            let dim = u32::try_from(shape[1]).map_err(|_| invalid(py, field, "dim too large"))?;
            let values: Vec<f32> = match arr.as_slice() {
                Ok(s) => s.to_vec(),
                Err(_) => arr.as_array().iter().copied().collect(),
            };
            if shape[0] != rows {
                return Err(invalid(
                    py,
                    field,
                    format!("ragged column: {} vectors for {rows} rows", shape[0]),
                ));
            }
            batch.embeddings(field, dim, values)
        }
        "blob" | "string" | "categorical" => {
            let offsets: PyReadonlyArray1<'_, i64> = spec.get_item(1)?.extract()?;
            let data: PyReadonlyArray1<'_, u8> = spec.get_item(2)?.extract()?;
            let valid = validity(spec.get_item(3)?.extract()?, rows)?;
            let offsets = offsets.as_slice()?;
            let data = data.as_slice()?;
            let parts = varlen(py, field, offsets, data, rows)?;
            if kind == "blob" {
                if let Some(row) = valid.as_ref().and_then(|m| m.iter().position(|ok| !ok)) {
                    return Err(invalid(
                        py,
                        field,
                        format!("row {row}: a blob field needs bytes, got None"),
                    ));
                }
                batch.blobs(
                    field,
                    parts.iter().map(|p| Bytes::copy_from_slice(p)).collect(),
                )
            } else {
                let mut strings = Vec::with_capacity(rows);
                for (row, p) in parts.iter().enumerate() {
                    if valid.as_ref().is_some_and(|m| !m[row]) {
                        strings.push(None);
                        continue;
                    }
                    match std::str::from_utf8(p) {
                        Ok(s) => strings.push(Some(s.to_owned())),
                        Err(_) => {
                            return Err(invalid(py, field, format!("row {row}: not UTF-8 text")))
                        }
                    }
                }
                let column = if kind == "string" {
                    ScalarColumn::Str(strings)
                } else {
                    ScalarColumn::Categorical(strings)
                };
                batch.scalars(field, column)
            }
        }
        "int" | "timestamp" => {
            let values: PyReadonlyArray1<'_, i64> = spec.get_item(1)?.extract()?;
            let valid = validity(spec.get_item(2)?.extract()?, rows)?;
            let values = with_validity(values.as_array().iter().copied(), &valid);
            batch.scalars(
                field,
                if kind == "int" {
                    ScalarColumn::I64(values)
                } else {
                    ScalarColumn::Timestamp(values)
                },
            )
        }
        "float" => {
            let values: PyReadonlyArray1<'_, f64> = spec.get_item(1)?.extract()?;
            let valid = validity(spec.get_item(2)?.extract()?, rows)?;
            batch.scalars(
                field,
                ScalarColumn::F64(with_validity(values.as_array().iter().copied(), &valid)),
            )
        }
        "bool" => {
            let values: PyReadonlyArray1<'_, bool> = spec.get_item(1)?.extract()?;
            let valid = validity(spec.get_item(2)?.extract()?, rows)?;
            batch.scalars(
                field,
                ScalarColumn::Bool(with_validity(values.as_array().iter().copied(), &valid)),
            )
        }
        other => return Err(invalid(py, field, format!("unknown column kind {other:?}"))),
    })
}

fn signals_dict<'py>(py: Python<'py>, s: &Signals) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (field, f) in &s.fields {
        let d = PyDict::new(py);
        d.set_item("imbalance", f.imbalance)?;
        d.set_item("k", f.k)?;
        d.set_item("n", f.n)?;
        d.set_item("sqrt_n", f.sqrt_n)?;
        d.set_item("k_max", f.k_max)?;
        d.set_item("fragmentation", f.fragmentation)?;
        d.set_item("runs", f.runs)?;
        let dens = PyDict::new(py);
        dens.set_item("min", f.density.min)?;
        dens.set_item("median", f.density.median)?;
        dens.set_item("max", f.density.max)?;
        dens.set_item("non_empty_cells", f.density.non_empty_cells)?;
        dens.set_item("empty_cells", f.density.empty_cells)?;
        d.set_item("density", dens)?;
        d.set_item("stats", f.stats.map(|h| h.to_hex()))?;
        out.set_item(field, d)?;
    }
    Ok(out)
}

/// What an append did.
#[pyclass(module = "dreamdb_dataset._native", name = "AppendResult", frozen)]
pub struct PyAppendResult {
    anchors: Py<PyArray1<u64>>,
    manifest: String,
    attempts: u32,
    signals: Py<PyDict>,
}

#[pymethods]
impl PyAppendResult {
    /// The records' anchors (``numpy.uint64``), in input row order.
    #[getter]
    fn anchors(&self, py: Python<'_>) -> Py<PyArray1<u64>> {
        self.anchors.clone_ref(py)
    }

    /// The published Manifest's hash (hex): the new version's identity.
    #[getter]
    fn manifest(&self) -> &str {
        &self.manifest
    }

    /// Commit attempts (1 = no race lost; each lost race was a rebase).
    #[getter]
    fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Index-upkeep signals per embedding field (imbalance, density,
    /// fragmentation, k and √N): reported, never acted on.
    #[getter]
    fn signals(&self, py: Python<'_>) -> Py<PyDict> {
        self.signals.clone_ref(py)
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.anchors.bind(py).len()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "AppendResult(records={}, manifest={:.12}, attempts={})",
            self.anchors.bind(py).len(),
            self.manifest,
            self.attempts
        )
    }
}

fn append_result(py: Python<'_>, r: AppendResult) -> PyResult<PyAppendResult> {
    Ok(PyAppendResult {
        anchors: PyArray1::from_vec(py, r.anchors).unbind(),
        manifest: r.manifest.to_hex(),
        attempts: r.attempts,
        signals: signals_dict(py, &r.signals)?.unbind(),
    })
}

/// An immutable, named version (what ``snapshot`` returns); ``str(v)`` is
/// the Manifest hash, and ``Dataset.open_at(v, backend=...)`` opens it.
#[pyclass(module = "dreamdb_dataset._native", name = "Version", frozen, eq)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyVersion {
    /// The tag name.
    #[pyo3(get)]
    label: String,
    /// The Manifest hash (hex).
    #[pyo3(get)]
    manifest: String,
    /// The dataset's name.
    #[pyo3(get)]
    dataset: String,
    /// The backend the version was made in.
    #[pyo3(get)]
    backend: String,
}

#[pymethods]
impl PyVersion {
    #[new]
    fn new(label: String, manifest: String, dataset: String, backend: String) -> Self {
        PyVersion {
            label,
            manifest,
            dataset,
            backend,
        }
    }

    fn __str__(&self) -> &str {
        &self.manifest
    }

    fn __repr__(&self) -> String {
        format!(
            "Version(label={:?}, manifest={:.12}, dataset={:?})",
            self.label, self.manifest, self.dataset
        )
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.manifest.hash(&mut h);
        h.finish()
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> Reduced<'py, (String, String, String, String)> {
        Ok((
            py.get_type::<PyVersion>().into_any(),
            (
                self.label.clone(),
                self.manifest.clone(),
                self.dataset.clone(),
                self.backend.clone(),
            ),
        ))
    }
}

fn version_of(s: &str) -> Version {
    match ContentHash::from_hex(s) {
        Ok(h) => Version::Manifest(h),
        Err(_) => match s.strip_prefix("refs/") {
            Some(branch) => Version::Ref(branch.to_owned()),
            None => Version::Tag(s.strip_prefix("tags/").unwrap_or(s).to_owned()),
        },
    }
}

/// What `__reduce__` returns: the callable and its arguments.
type Reduced<'py, A> = PyResult<(Bound<'py, PyAny>, A)>;

/// A boxed, sendable stream of Arrow batches.
type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch, DatasetError>> + Send>>;

/// An iterator of Arrow batches, each handed to Python through the Arrow
/// C Data Interface (the wrapper turns each into a ``pyarrow.RecordBatch``
/// with ``pyarrow.record_batch(obj)``: zero copies).
#[pyclass(module = "dreamdb_dataset._native", name = "ArrowBatchIter")]
pub struct PyArrowBatchIter {
    pid: u32,
    stream: Mutex<Option<BatchStream>>,
}

#[pymethods]
impl PyArrowBatchIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<ArrowBatch>> {
        if std::process::id() != self.pid {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "this iterator was started in another process; start a new one after fork",
            ));
        }
        let Some(mut stream) = self.stream.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(None);
        };
        let rt = runtime(py)?;
        let (next, stream) = py.detach(move || {
            let next = rt.block_on(stream.next());
            (next, stream)
        });
        match next {
            None => Ok(None),
            Some(Err(e)) => Err(to_py(py, &e)),
            Some(Ok(batch)) => {
                *self.stream.lock().unwrap_or_else(|p| p.into_inner()) = Some(stream);
                Ok(Some(ArrowBatch::new(batch)))
            }
        }
    }
}

/// One hit of a query.
#[pyclass(module = "dreamdb_dataset._native", name = "Hit", frozen)]
pub struct PyHit {
    /// The record's anchor.
    #[pyo3(get)]
    anchor: u64,
    /// Its distance to the query (smaller is nearer).
    #[pyo3(get)]
    distance: f32,
    /// The requested fields' values.
    #[pyo3(get)]
    fields: Py<PyDict>,
}

#[pymethods]
impl PyHit {
    fn __getitem__<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        match key {
            "anchor" | "_anchor" => Ok(self.anchor.into_pyobject(py)?.into_any()),
            "distance" | "_distance" => Ok(self.distance.into_pyobject(py)?.into_any()),
            _ => self
                .fields
                .bind(py)
                .get_item(key)?
                .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(key.to_owned())),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let names: Vec<String> = self
            .fields
            .bind(py)
            .keys()
            .iter()
            .filter_map(|k| k.extract::<String>().ok())
            .collect();
        format!(
            "Hit(anchor={}, distance={:.6}, fields={names:?})",
            self.anchor, self.distance
        )
    }
}

#[pymethods]
impl PyDataset {
    /// Creates dataset ``name`` with ``schema`` in ``backend`` (a directory
    /// path, ``file://``, ``memory://name`` or ``http(s)://host/bucket``)
    /// and returns a handle on its ``main`` branch. Raises
    /// ``AlreadyExistsError`` if it exists.
    #[staticmethod]
    #[pyo3(signature = (name, schema, backend, writer = None, cache_bytes = None))]
    fn create(
        py: Python<'_>,
        name: String,
        schema: PyRef<'_, PySchema>,
        backend: String,
        writer: Option<String>,
        cache_bytes: Option<u64>,
    ) -> PyResult<PyDataset> {
        let schema = schema.to_schema().py_err(py)?;
        let ds = block_on(py, async move {
            Dataset::create(
                &backend,
                &name,
                schema,
                CreateOptions {
                    writer,
                    cache_bytes,
                },
            )
            .await
        })?
        .py_err(py)?;
        Ok(PyDataset::wrap(ds))
    }

    /// Opens dataset ``name`` in ``backend`` following branch ``ref``.
    #[staticmethod]
    #[pyo3(signature = (name, backend, r#ref = "main".to_owned(), writer = None, cache_bytes = None))]
    fn open(
        py: Python<'_>,
        name: String,
        backend: String,
        r#ref: String,
        writer: Option<String>,
        cache_bytes: Option<u64>,
    ) -> PyResult<PyDataset> {
        let ds = block_on(py, async move {
            Dataset::open(
                &backend,
                &name,
                OpenOptions {
                    ref_name: Some(r#ref),
                    cache_bytes,
                    writer,
                },
            )
            .await
        })?
        .py_err(py)?;
        Ok(PyDataset::wrap(ds))
    }

    /// Opens one version read-only: a Manifest hash (hex), a tag name
    /// (``"v1"`` or ``"tags/v1"``) or a branch's current version
    /// (``"refs/main"``). A plain name that is no tag is tried as a branch.
    #[staticmethod]
    fn open_at(
        py: Python<'_>,
        version: String,
        backend: String,
        name: String,
    ) -> PyResult<PyDataset> {
        let parsed = version_of(&version);
        let (b, n) = (backend.clone(), name.clone());
        let first = block_on(py, async move { Dataset::open_at(&b, &n, parsed).await })?;
        let ds = match first {
            Err(DatasetError::NotFound { .. }) if !version.contains('/') => {
                let branch = Version::Ref(version.clone());
                let second = block_on(py, async move {
                    Dataset::open_at(&backend, &name, branch).await
                })?;
                second.py_err(py)?
            }
            other => other.py_err(py)?,
        };
        let manifest = block_on(py, {
            let ds = ds.clone();
            async move { ds.manifest_hash().await }
        })?
        .py_err(py)?;
        Ok(PyDataset::wrap_pinned(ds, manifest))
    }

    /// The dataset's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The backend URL.
    #[getter]
    fn backend(&self) -> &str {
        &self.url
    }

    /// The branch this handle follows (``None`` when pinned).
    #[getter]
    fn r#ref(&self) -> Option<&str> {
        match &self.position {
            Position::Ref(r) => Some(r),
            Position::Pinned { .. } => None,
        }
    }

    /// Whether the handle is pinned to one version (read-only).
    #[getter]
    fn pinned(&self) -> bool {
        matches!(self.position, Position::Pinned { .. })
    }

    /// The Manifest hash (hex) this handle reads now.
    fn manifest_hash(&self, py: Python<'_>) -> PyResult<String> {
        let ds = self.ds(py)?;
        let h = block_on(py, async move { ds.manifest_hash().await })?.py_err(py)?;
        Ok(h.to_hex())
    }

    /// Live records of the current version.
    fn records(&self, py: Python<'_>) -> PyResult<u64> {
        let ds = self.ds(py)?;
        block_on(py, async move { ds.records().await })?.py_err(py)
    }

    /// The current schema's fields (name → description dict).
    fn schema_fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let ds = self.ds(py)?;
        let schema = block_on(py, async move { ds.schema().await })?.py_err(py)?;
        PySchema::describe(py, &schema)
    }

    /// Appends ``rows`` records given as normalised columns (see the
    /// module docs); ``anchors`` (uint64) are assigned when ``None``.
    #[pyo3(signature = (rows, columns, anchors = None, message = None, seed = 0))]
    fn append_columns(
        &self,
        py: Python<'_>,
        rows: usize,
        columns: &Bound<'_, PyDict>,
        anchors: Option<PyReadonlyArray1<'_, u64>>,
        message: Option<String>,
        seed: u64,
    ) -> PyResult<PyAppendResult> {
        let mut batch = Batch::new(rows);
        if let Some(a) = anchors {
            batch = batch.anchors(a.as_array().to_vec()).py_err(py)?;
        }
        for (k, v) in columns.iter() {
            let field: String = k.extract()?;
            let spec = v.cast::<PyTuple>()?;
            batch = add_column(py, batch, &field, spec, rows)?;
        }
        let ds = self.ds(py)?;
        let options = AppendOptions {
            seed,
            message,
            ..AppendOptions::default()
        };
        let r =
            block_on(py, async move { ds.append_many_with(batch, options).await })?.py_err(py)?;
        append_result(py, r)
    }

    /// Adds a nullable scalar field to the schema with values for existing
    /// records (``anchors``); other records have no value. ``column`` is a
    /// normalised column (see the module docs) of ``len(anchors)`` rows.
    fn add_scalar_layer(
        &self,
        py: Python<'_>,
        field: String,
        dtype: &str,
        anchors: PyReadonlyArray1<'_, u64>,
        column: &Bound<'_, PyTuple>,
    ) -> PyResult<Py<PyDict>> {
        let dtype = match dtype {
            "categorical" => ScalarType::Categorical,
            "int" => ScalarType::I64,
            "float" => ScalarType::F64,
            "bool" => ScalarType::Bool,
            "string" => ScalarType::String,
            "timestamp" => ScalarType::Timestamp,
            other => {
                return Err(invalid(
                    py,
                    &field,
                    format!("unknown scalar type {other:?} (categorical, int, float, bool, string, timestamp)"),
                ))
            }
        };
        let anchors = anchors.as_array().to_vec();
        let batch = add_column(py, Batch::new(anchors.len()), &field, column, anchors.len())?;
        let Some(Column::Scalar(values)) = batch.columns().get(&field).cloned() else {
            return Err(invalid(py, &field, "a scalar layer needs a scalar column"));
        };
        let ds = self.ds(py)?;
        let r = block_on(py, async move {
            ds.add_scalar_layer(&field, dtype, &anchors, values).await
        })?
        .py_err(py)?;
        let d = PyDict::new(py);
        d.set_item("manifest", r.manifest.to_hex())?;
        d.set_item("records", r.records)?;
        d.set_item("attempts", r.attempts)?;
        Ok(d.unbind())
    }

    /// Top-``top_k`` records nearest to ``query`` (float32 vector) in the
    /// embedding ``field``, with the values of ``fields``.
    #[pyo3(signature = (field, query, top_k = 10, nprobe = None, refine_factor = None, filter = None, fields = None))]
    #[allow(clippy::too_many_arguments)]
    fn query(
        &self,
        py: Python<'_>,
        field: &str,
        query: PyReadonlyArray1<'_, f32>,
        top_k: usize,
        nprobe: Option<usize>,
        refine_factor: Option<usize>,
        filter: Option<Bound<'_, PyList>>,
        fields: Option<Vec<String>>,
    ) -> PyResult<(Vec<PyHit>, Py<PyDict>)> {
        let mut req = QueryRequest::new(field, query.as_array().to_vec(), top_k);
        if let Some(n) = nprobe {
            req = req.nprobe(n);
        }
        if let Some(r) = refine_factor {
            req = req.refine_factor(r);
        }
        if let Some(f) = filter {
            let f = parse_filter(py, &f)?;
            if !f.is_empty() {
                req = req.filter(f);
            }
        }
        if let Some(fields) = fields {
            req.fields = fields;
        }
        let ds = self.ds(py)?;
        let result = block_on(py, async move { ds.query(&req).await })?.py_err(py)?;
        let hits = result
            .hits
            .iter()
            .map(|h| {
                let d = PyDict::new(py);
                for (k, v) in &h.fields {
                    d.set_item(k, value_to_py(py, v)?)?;
                }
                Ok(PyHit {
                    anchor: h.anchor,
                    distance: h.distance,
                    fields: d.unbind(),
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let s = &result.stats;
        let stats = PyDict::new(py);
        stats.set_item("cells_probed", s.cells_probed)?;
        stats.set_item("runs_read", s.runs_read)?;
        stats.set_item("raw_reads", s.raw_reads)?;
        stats.set_item("raw_prefetched", s.raw_prefetched)?;
        stats.set_item("bytes_read", s.bytes_read)?;
        stats.set_item("candidates", s.candidates)?;
        stats.set_item("reranked", s.reranked)?;
        stats.set_item("tombstoned", s.tombstoned)?;
        stats.set_item("filter_tested", s.filter_tested)?;
        stats.set_item("filter_rejected", s.filter_rejected)?;
        Ok((hits, stats.unbind()))
    }

    /// The record at ``anchor`` as a dict (``None`` if absent or deleted).
    #[pyo3(signature = (anchor, fields = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        anchor: u64,
        fields: Option<Vec<String>>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let ds = self.ds(py)?;
        let rec = block_on(py, async move {
            let names: Option<Vec<&str>> = fields
                .as_ref()
                .map(|f| f.iter().map(String::as_str).collect());
            ds.get(anchor, names.as_deref()).await
        })?
        .py_err(py)?;
        let Some(rec) = rec else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("_anchor", rec.anchor)?;
        for (k, v) in &rec.fields {
            d.set_item(k, value_to_py(py, v)?)?;
        }
        Ok(Some(d))
    }

    /// Arrow batches of the current version (pinned when called).
    #[pyo3(signature = (batch_size = 1024, fields = None, shuffle_seed = None, shard = None, prefetch = 4))]
    fn iter_arrow_batches(
        &self,
        py: Python<'_>,
        batch_size: usize,
        fields: Option<Vec<String>>,
        shuffle_seed: Option<u64>,
        shard: Option<(usize, usize)>,
        prefetch: usize,
    ) -> PyResult<PyArrowBatchIter> {
        let ds = self.ds(py)?;
        let options = ArrowOptions {
            batch_size,
            fields,
            shuffle_seed,
            shard,
            prefetch_runs: prefetch,
            ..ArrowOptions::default()
        };
        let stream = block_on(py, async move {
            ds.iter_arrow_batches(options)
                .await
                .map(|s| Box::pin(s) as BatchStream)
        })?
        .py_err(py)?;
        Ok(PyArrowBatchIter {
            pid: std::process::id(),
            stream: Mutex::new(Some(stream)),
        })
    }

    /// Compares ``field`` across ``refs`` (branch or tag names, or Manifest
    /// hashes); the first is the baseline. Returns (Arrow table, summaries).
    fn compare_refs<'py>(
        &self,
        py: Python<'py>,
        field: String,
        refs: Vec<String>,
    ) -> PyResult<(ArrowBatch, Bound<'py, PyList>)> {
        if refs.is_empty() {
            return Err(invalid(py, "_compare", "no version to compare"));
        }
        let mut handles = Vec::with_capacity(refs.len());
        for r in &refs {
            let h = PyDataset::open_at(py, r.clone(), self.url.clone(), self.name.clone())?;
            handles.push(h.ds(py)?);
        }
        let names = refs.clone();
        let cmp = block_on(py, async move {
            let others: Vec<(&str, &Dataset)> = names
                .iter()
                .zip(handles.iter())
                .skip(1)
                .map(|(n, d)| (n.as_str(), d))
                .collect();
            handles[0].compare_refs(&others, &field).await
        })?
        .py_err(py)?;
        let summaries = PyList::empty(py);
        for (i, s) in cmp.summaries.iter().enumerate() {
            let d = PyDict::new(py);
            let name = if i == 0 {
                refs[0].as_str()
            } else {
                s.name.as_str()
            };
            d.set_item("name", name)?;
            d.set_item("values", s.values)?;
            d.set_item("paired", s.paired)?;
            d.set_item("mean", s.mean)?;
            d.set_item("mean_diff_vs_first", s.mean_diff_vs_first)?;
            d.set_item("mean_cosine_vs_first", s.mean_cosine_vs_first)?;
            d.set_item("changed_vs_first", s.changed_vs_first)?;
            summaries.append(d)?;
        }
        Ok((ArrowBatch::new(cmp.table), summaries))
    }

    /// Tags the current version as ``label`` (tags never move).
    fn snapshot(&self, py: Python<'_>, label: String) -> PyResult<PyVersion> {
        let ds = self.ds(py)?;
        let v: DatasetVersion =
            block_on(py, async move { ds.snapshot(&label).await })?.py_err(py)?;
        Ok(PyVersion {
            label: v.label,
            manifest: v.manifest.to_hex(),
            dataset: self.name.clone(),
            backend: self.url.clone(),
        })
    }

    /// Creates branch ``name`` at the current version; returns its handle.
    fn branch(&self, py: Python<'_>, name: String) -> PyResult<PyDataset> {
        let ds = self.ds(py)?;
        let b = block_on(py, async move { ds.branch(&name).await })?.py_err(py)?;
        Ok(PyDataset::wrap(b))
    }

    /// A handle on another existing branch.
    fn checkout(&self, py: Python<'_>, name: String) -> PyResult<PyDataset> {
        let ds = self.ds(py)?;
        let b = block_on(py, async move { ds.checkout(&name).await })?.py_err(py)?;
        Ok(PyDataset::wrap(b))
    }

    /// Merges branch ``other`` into this branch.
    #[pyo3(signature = (other, strategy = "union"))]
    fn merge<'py>(
        &self,
        py: Python<'py>,
        other: String,
        strategy: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let s = self::strategy(py, strategy)?;
        let ds = self.ds(py)?;
        let r = block_on(py, async move { ds.merge(&other, s).await })?.py_err(py)?;
        merge_dict(py, &r)
    }

    /// Merges every branch of ``others`` as one version (one commit).
    fn merge_many<'py>(
        &self,
        py: Python<'py>,
        others: Vec<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ds = self.ds(py)?;
        let r = block_on(py, async move {
            let refs: Vec<&str> = others.iter().map(String::as_str).collect();
            ds.merge_many(&refs).await
        })?
        .py_err(py)?;
        merge_dict(py, &r)
    }

    /// Deletes the records at ``anchors``; returns how many were live.
    fn delete(&self, py: Python<'_>, anchors: Vec<u64>, reason: String) -> PyResult<u64> {
        let ds = self.ds(py)?;
        block_on(py, async move { ds.delete(&anchors, &reason).await })?.py_err(py)
    }

    /// The tombstones of the current version: list of dicts (``anchor``,
    /// ``reason``, ``time``).
    fn tombstones<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let ds = self.ds(py)?;
        let list = block_on(py, async move { ds.tombstones().await })?.py_err(py)?;
        let out = PyList::empty(py);
        for t in list {
            let d = PyDict::new(py);
            d.set_item("anchor", t.anchor.as_nanos())?;
            d.set_item("reason", t.reason)?;
            d.set_item("time", t.time_unix_nanos)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// The history of the current version, newest first.
    #[pyo3(signature = (limit = 100))]
    fn history<'py>(&self, py: Python<'py>, limit: usize) -> PyResult<Bound<'py, PyList>> {
        let ds = self.ds(py)?;
        let entries = block_on(py, async move { ds.history(limit).await })?.py_err(py)?;
        let out = PyList::empty(py);
        for e in entries {
            let d = PyDict::new(py);
            d.set_item("manifest", e.manifest.to_hex())?;
            d.set_item(
                "parents",
                e.parents.iter().map(|p| p.to_hex()).collect::<Vec<_>>(),
            )?;
            d.set_item("writer", e.writer)?;
            d.set_item("time", e.time)?;
            d.set_item("message", e.message)?;
            d.set_item("records", e.records)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Pickles as (backend, name, position): the unpickled handle opens
    /// lazily in its own process.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> Reduced<'py, (String, String, Option<String>, Option<String>)> {
        let reopen = py.import("dreamdb_dataset._native")?.getattr("_reopen")?;
        let (r, m) = match &self.position {
            Position::Ref(r) => (Some(r.clone()), None),
            Position::Pinned { manifest } => (None, Some(manifest.to_hex())),
        };
        Ok((reopen, (self.url.clone(), self.name.clone(), r, m)))
    }

    fn __repr__(&self) -> String {
        match &self.position {
            Position::Ref(r) => format!(
                "Dataset(name={:?}, backend={:?}, ref={r:?})",
                self.name, self.url
            ),
            Position::Pinned { manifest } => format!(
                "Dataset(name={:?}, backend={:?}, pinned={})",
                self.name,
                self.url,
                manifest.short()
            ),
        }
    }
}

/// Unpickles a [`PyDataset`].
#[pyfunction]
#[pyo3(signature = (backend, name, r#ref, manifest))]
pub fn _reopen(
    py: Python<'_>,
    backend: String,
    name: String,
    r#ref: Option<String>,
    manifest: Option<String>,
) -> PyResult<PyDataset> {
    match (r#ref, manifest) {
        (_, Some(m)) => PyDataset::open_at(py, m, backend, name),
        (Some(r), None) => PyDataset::open(py, name, backend, r, None, None),
        (None, None) => Err(invalid(py, "_ref", "neither a ref nor a manifest")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_hashes_tags_or_refs() {
        let h = ContentHash::of(b"x");
        assert_eq!(version_of(&h.to_hex()), Version::Manifest(h));
        assert_eq!(version_of("v1"), Version::Tag("v1".to_owned()));
        assert_eq!(version_of("tags/v1"), Version::Tag("v1".to_owned()));
        assert_eq!(version_of("refs/main"), Version::Ref("main".to_owned()));
    }

    #[test]
    fn validity_masks_make_nulls() {
        let valid = Some(vec![true, false, true]);
        assert_eq!(
            with_validity([1i64, 2, 3].into_iter(), &valid),
            vec![Some(1), None, Some(3)]
        );
        assert_eq!(with_validity([1.5f64].into_iter(), &None), vec![Some(1.5)]);
    }
}
