//! Arrow batches to Python through the Arrow C Data Interface.
//!
//! [`ArrowBatch`] implements the Arrow PyCapsule interface
//! (`__arrow_c_schema__`, `__arrow_c_array__`): `pyarrow.record_batch(b)`
//! imports it by moving the `ArrowArray`/`ArrowSchema` structs, so the
//! pyarrow arrays point at the very buffers the Rust side decoded — no
//! copy, no per-row Python object. The buffers are freed when pyarrow
//! releases the last array that uses them (the `release` callback of the
//! exported struct owns a reference to the Rust buffers).
//!
//! `buffer_addresses()` reports, per column, the address of the first value
//! of the column's value buffer as the Rust side sees it, so a test can
//! check that pyarrow's array starts at the same address (zero copy).

use std::ffi::CStr;
use std::sync::Mutex;

use arrow_array::ffi::to_ffi;
use arrow_array::{Array, FixedSizeListArray, RecordBatch, StructArray};
use arrow_schema::ffi::FFI_ArrowSchema;
use arrow_schema::DataType;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

const SCHEMA_NAME: &CStr = c"arrow_schema";
const ARRAY_NAME: &CStr = c"arrow_array";

/// One Arrow record batch held by Rust until Python imports it (once).
#[pyclass(module = "dreamdb_dataset._native", name = "ArrowBatch")]
pub struct ArrowBatch {
    batch: Mutex<Option<RecordBatch>>,
    addresses: Vec<(String, usize)>,
    rows: usize,
}

impl ArrowBatch {
    /// Wraps `batch` (records the value-buffer addresses first).
    pub(crate) fn new(batch: RecordBatch) -> Self {
        let addresses = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .filter_map(|(f, c)| value_address(c.as_ref()).map(|a| (f.name().clone(), a)))
            .collect();
        let rows = batch.num_rows();
        ArrowBatch {
            batch: Mutex::new(Some(batch)),
            addresses,
            rows,
        }
    }

    fn take(&self) -> PyResult<RecordBatch> {
        self.batch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| {
                pyo3::exceptions::PyRuntimeError::new_err(
                    "this Arrow batch was already exported (it can be imported once)",
                )
            })
    }

    fn schema_of(&self) -> PyResult<arrow_schema::SchemaRef> {
        self.batch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|b| b.schema())
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("already exported"))
    }
}

/// The address of the first value of a column's main value buffer
/// (embeddings: the flat float32 values; primitives: the values).
fn value_address(array: &dyn Array) -> Option<usize> {
    match array.data_type() {
        DataType::FixedSizeList(_, size) => {
            let list = array.as_any().downcast_ref::<FixedSizeListArray>()?;
            let child = list.values().to_data();
            let width = child.data_type().primitive_width()?;
            let buf = child.buffers().first()?;
            let start = (child.offset() + list.offset() * (*size as usize)) * width;
            Some(buf.as_ptr() as usize + start)
        }
        dt => {
            let width = dt.primitive_width()?;
            let data = array.to_data();
            let buf = data.buffers().first()?;
            Some(buf.as_ptr() as usize + data.offset() * width)
        }
    }
}

fn arrow_err(e: arrow_schema::ArrowError) -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err(format!("arrow export: {e}"))
}

#[pymethods]
impl ArrowBatch {
    /// The schema as an ``arrow_schema`` PyCapsule.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let schema = self.schema_of()?;
        let ffi = FFI_ArrowSchema::try_from(schema.as_ref()).map_err(arrow_err)?;
        PyCapsule::new_with_value(py, ffi, SCHEMA_NAME)
    }

    /// The batch as (``arrow_schema``, ``arrow_array``) PyCapsules of a
    /// struct array (the Arrow PyCapsule interface). A requested schema is
    /// ignored: the batch is exported as it is.
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
        let _ = requested_schema;
        let batch = self.take()?;
        let array = StructArray::from(batch);
        let (ffi_array, ffi_schema) = to_ffi(&array.to_data()).map_err(arrow_err)?;
        Ok((
            PyCapsule::new_with_value(py, ffi_schema, SCHEMA_NAME)?,
            PyCapsule::new_with_value(py, ffi_array, ARRAY_NAME)?,
        ))
    }

    /// Rows in the batch.
    fn __len__(&self) -> usize {
        self.rows
    }

    /// Column → address of its first value in the Rust buffers (for
    /// zero-copy checks; see the module docs).
    fn buffer_addresses<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, addr) in &self.addresses {
            d.set_item(name, *addr)?;
        }
        Ok(d)
    }
}
