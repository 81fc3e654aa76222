//! `Schema`: the chainable schema builder of the Python API.

use dreamdb_dataset::schema::{EmbeddingField, Metric, ScalarField, ScalarType, SchemaBuilder};
use dreamdb_dataset::DatasetError;
use dreamdb_protocol::objects::{Compression, FieldSpec, IndexSpec, ScalarDtype, Schema};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::IntoPyResult;

/// Default `max_bytes` of blob and image fields: 16 MiB.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 16 << 20;

/// One field as declared from Python.
#[derive(Debug, Clone)]
enum Def {
    Embedding(EmbeddingField),
    Blob { mime: String, max_bytes: u64 },
    Scalar(ScalarField),
}

/// A dataset schema, built by chaining ``add_*`` calls (each returns the
/// schema itself, so the imperative style works too).
///
/// Every ``add_*`` checks the field at once and raises ``InvalidInputError``
/// (``kind == "invalid-schema"``) naming the field.
#[pyclass(module = "dreamdb_dataset._native", name = "Schema")]
#[derive(Debug, Clone, Default)]
pub struct PySchema {
    defs: Vec<(String, Def)>,
}

impl PySchema {
    fn builder(defs: &[(String, Def)]) -> SchemaBuilder {
        defs.iter()
            .fold(SchemaBuilder::new(), |b, (name, def)| match def {
                Def::Embedding(e) => b.embedding(name, e.clone()),
                Def::Blob { mime, max_bytes } => b.blob(name, mime, *max_bytes),
                Def::Scalar(s) => b.scalar(name, *s),
            })
    }

    /// Adds `def` after checking it (the schema is unchanged on error).
    fn push(slf: &Bound<'_, Self>, name: &str, def: Def) -> PyResult<()> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        let mut defs = this.defs.clone();
        defs.push((name.to_owned(), def));
        // Build to check: errors name the field. An otherwise empty schema
        // is fine here; only `build` of zero fields fails, and we have one.
        Self::builder(&defs).build().py_err(py)?;
        this.defs = defs;
        Ok(())
    }

    /// The Rust schema (refused if it has no field).
    pub(crate) fn to_schema(&self) -> Result<Schema, DatasetError> {
        Self::builder(&self.defs).build()
    }

    /// A Python-side description of a stored schema (`fields` property).
    pub(crate) fn describe<'py>(py: Python<'py>, schema: &Schema) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (name, field) in &schema.fields {
            let d = PyDict::new(py);
            match &field.spec {
                FieldSpec::Embedding {
                    dim,
                    metric,
                    index,
                    compression,
                    rerank,
                } => {
                    d.set_item("kind", "embedding")?;
                    d.set_item("dim", *dim)?;
                    d.set_item("metric", metric_name(*metric))?;
                    let (alg, k) = match index {
                        IndexSpec::Ivf { k } => ("ivf", Some(u64::from(*k))),
                        IndexSpec::Lsh { tables, bits } => {
                            d.set_item("tables", *tables)?;
                            ("lsh", Some(u64::from(*bits)))
                        }
                        IndexSpec::Imi { k1, k2 } => {
                            d.set_item("k2", *k2)?;
                            ("imi", Some(u64::from(*k1)))
                        }
                        IndexSpec::Flat => ("flat", None),
                        #[allow(unreachable_patterns)]
                        _ => ("other", None),
                    };
                    d.set_item("algorithm", alg)?;
                    d.set_item("k", k)?;
                    d.set_item(
                        "bits",
                        match compression {
                            Some(Compression::Rabitq { bits }) => Some(*bits),
                            #[allow(unreachable_patterns)]
                            _ => None,
                        },
                    )?;
                    d.set_item("rerank", *rerank)?;
                }
                FieldSpec::Blob { mime, max_bytes } => {
                    d.set_item("kind", "blob")?;
                    d.set_item("mime", mime)?;
                    d.set_item("max_bytes", *max_bytes)?;
                }
                FieldSpec::Scalar { dtype, nullable } => {
                    d.set_item("kind", "scalar")?;
                    d.set_item("dtype", dtype_name(*dtype))?;
                    d.set_item("nullable", *nullable)?;
                }
                FieldSpec::Fragment { mime } => {
                    d.set_item("kind", "fragment")?;
                    d.set_item("mime", mime)?;
                }
            }
            out.set_item(name, d)?;
        }
        Ok(out)
    }
}

/// The Python name of a metric.
pub(crate) fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::Cosine => "cosine",
        Metric::L2 => "l2",
        Metric::InnerProduct => "ip",
    }
}

/// The Python name of a scalar dtype.
pub(crate) fn dtype_name(d: ScalarDtype) -> &'static str {
    match ScalarType::of_dtype(d) {
        ScalarType::Categorical => "categorical",
        ScalarType::I64 => "int",
        ScalarType::F64 => "float",
        ScalarType::Bool => "bool",
        ScalarType::String => "string",
        ScalarType::Timestamp => "timestamp",
    }
}

fn invalid_schema(py: Python<'_>, name: &str, reason: String) -> PyErr {
    crate::errors::to_py(
        py,
        &DatasetError::InvalidSchema {
            reason: format!("field {name:?}: {reason}"),
        },
    )
}

fn parse_metric(py: Python<'_>, name: &str, metric: &str) -> PyResult<Metric> {
    match metric.to_ascii_lowercase().as_str() {
        "cosine" | "cos" => Ok(Metric::Cosine),
        "l2" | "euclidean" => Ok(Metric::L2),
        "ip" | "dot" | "inner_product" | "inner-product" => Ok(Metric::InnerProduct),
        other => Err(invalid_schema(
            py,
            name,
            format!("unknown metric {other:?} (cosine, l2, ip)"),
        )),
    }
}

/// `"ivf"`, or the long form of the seed documents `"dreamdb.ivf-cosine"`
/// (which also names the metric).
fn parse_algorithm(algorithm: &str) -> (String, Option<&str>) {
    let short = algorithm.strip_prefix("dreamdb.").unwrap_or(algorithm);
    match short.split_once('-') {
        Some((alg, metric)) => (alg.to_ascii_lowercase(), Some(metric)),
        None => (short.to_ascii_lowercase(), None),
    }
}

/// `"jpeg"` → `"image/jpeg"`; full MIME types pass through.
fn image_mime(mime: &str) -> String {
    if mime.contains('/') {
        mime.to_owned()
    } else {
        format!("image/{}", mime.to_ascii_lowercase())
    }
}

#[pymethods]
impl PySchema {
    /// An empty schema.
    #[new]
    fn new() -> Self {
        PySchema::default()
    }

    /// Adds an embedding field of ``dim`` float32 components.
    ///
    /// ``algorithm``: ``"ivf"`` (k cells trained on the first append),
    /// ``"lsh"`` (``tables`` tables of ``k`` hyperplanes, cosine only),
    /// ``"imi"`` (``k × k2`` cells, cosine only) or ``"flat"`` (exact scan);
    /// the long form ``"dreamdb.ivf-cosine"`` also sets the metric.
    /// ``metric``: ``"cosine"``, ``"l2"`` or ``"ip"``. ``k``: cells (ivf,
    /// default 16 — pass about √N for real data; DreamDB never retunes it
    /// behind your back), hyperplanes per table (lsh, default 8), or the
    /// first factor (imi, default 16). ``bits``: RaBitQ bits per dimension
    /// (1–8) or ``None`` for raw float32 codes. ``rerank``: keep raw vectors
    /// for exact re-ranking.
    #[pyo3(signature = (name, dim, algorithm = "ivf", metric = None, k = None, bits = Some(1), rerank = true, tables = None, k2 = None, tag = None))]
    #[allow(clippy::too_many_arguments)]
    fn add_embedding<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        dim: u32,
        algorithm: &str,
        metric: Option<&str>,
        k: Option<u32>,
        bits: Option<u8>,
        rerank: bool,
        tables: Option<u32>,
        k2: Option<u32>,
        tag: Option<&str>,
    ) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let (alg, alg_metric) = parse_algorithm(algorithm);
        let metric = match (metric, alg_metric) {
            (Some(m), Some(a)) if !m.eq_ignore_ascii_case(a) => {
                return Err(invalid_schema(
                    py,
                    name,
                    format!("algorithm {algorithm:?} says metric {a:?} but metric={m:?}"),
                ))
            }
            (Some(m), _) | (None, Some(m)) => parse_metric(py, name, m)?,
            (None, None) => Metric::Cosine,
        };
        let mut field = EmbeddingField::new(dim).metric(metric);
        field = match alg.as_str() {
            "ivf" => field.ivf(k.unwrap_or(16)),
            "lsh" => field.lsh(tables.unwrap_or(4), k.unwrap_or(8)),
            "imi" => {
                let k1 = k.unwrap_or(16);
                field.imi(k1, k2.unwrap_or(k1))
            }
            "flat" => field.flat(),
            other => {
                return Err(invalid_schema(
                    py,
                    name,
                    format!("unknown algorithm {other:?} (ivf, lsh, imi, flat)"),
                ))
            }
        };
        if let Some(bits) = bits {
            field = field.rabitq(bits);
        }
        field = field.rerank(rerank);
        if let Some(tag) = tag {
            field = field.tag(tag);
        }
        Self::push(&slf, name, Def::Embedding(field))?;
        Ok(slf)
    }

    /// Adds an image field: blobs of one image MIME type (``"jpeg"`` means
    /// ``"image/jpeg"``), each at most ``max_bytes`` long.
    #[pyo3(signature = (name, mime = "image/jpeg", max_bytes = DEFAULT_MAX_BYTES))]
    fn add_image<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        mime: &str,
        max_bytes: u64,
    ) -> PyResult<Bound<'py, Self>> {
        let mime = image_mime(mime);
        Self::push(&slf, name, Def::Blob { mime, max_bytes })?;
        Ok(slf)
    }

    /// Adds a blob field (opaque bytes of one MIME type, each at most
    /// ``max_bytes`` long).
    #[pyo3(signature = (name, mime = "application/octet-stream", max_bytes = DEFAULT_MAX_BYTES))]
    fn add_blob<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        mime: &str,
        max_bytes: u64,
    ) -> PyResult<Bound<'py, Self>> {
        Self::push(
            &slf,
            name,
            Def::Blob {
                mime: mime.to_owned(),
                max_bytes,
            },
        )?;
        Ok(slf)
    }

    /// Adds a categorical scalar field (a label out of a small set, ``str``).
    #[pyo3(signature = (name, nullable = false))]
    fn add_scalar_categorical<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        nullable: bool,
    ) -> PyResult<Bound<'py, Self>> {
        Self::scalar(slf, name, ScalarType::Categorical, nullable)
    }

    /// Adds a signed 64-bit integer scalar field.
    #[pyo3(signature = (name, nullable = false))]
    fn add_scalar_int<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        nullable: bool,
    ) -> PyResult<Bound<'py, Self>> {
        Self::scalar(slf, name, ScalarType::I64, nullable)
    }

    /// Adds a float64 scalar field (finite values only).
    #[pyo3(signature = (name, nullable = false))]
    fn add_scalar_float<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        nullable: bool,
    ) -> PyResult<Bound<'py, Self>> {
        Self::scalar(slf, name, ScalarType::F64, nullable)
    }

    /// Adds a boolean scalar field.
    #[pyo3(signature = (name, nullable = false))]
    fn add_scalar_bool<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        nullable: bool,
    ) -> PyResult<Bound<'py, Self>> {
        Self::scalar(slf, name, ScalarType::Bool, nullable)
    }

    /// Adds a UTF-8 text scalar field.
    #[pyo3(signature = (name, nullable = false))]
    fn add_scalar_string<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        nullable: bool,
    ) -> PyResult<Bound<'py, Self>> {
        Self::scalar(slf, name, ScalarType::String, nullable)
    }

    /// Adds a timestamp scalar field (nanoseconds since the Unix epoch;
    /// ``numpy.datetime64`` and ``datetime`` values are converted).
    #[pyo3(signature = (name, nullable = false))]
    fn add_scalar_timestamp<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        nullable: bool,
    ) -> PyResult<Bound<'py, Self>> {
        Self::scalar(slf, name, ScalarType::Timestamp, nullable)
    }

    /// The fields: name → description dict (``kind``, and ``dim``/
    /// ``metric``/``algorithm``/... for embeddings, ``mime``/``max_bytes``
    /// for blobs, ``dtype``/``nullable`` for scalars).
    #[getter]
    fn fields<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        match self.to_schema() {
            Ok(schema) => Self::describe(py, &schema),
            Err(_) => Ok(PyDict::new(py)),
        }
    }

    fn __len__(&self) -> usize {
        self.defs.len()
    }

    fn __repr__(&self) -> String {
        let names: Vec<&str> = self.defs.iter().map(|(n, _)| n.as_str()).collect();
        format!("Schema(fields={names:?})")
    }
}

impl PySchema {
    fn scalar<'py>(
        slf: Bound<'py, Self>,
        name: &str,
        dtype: ScalarType,
        nullable: bool,
    ) -> PyResult<Bound<'py, Self>> {
        let field = if nullable {
            dtype.nullable()
        } else {
            ScalarField::from(dtype)
        };
        Self::push(&slf, name, Def::Scalar(field))?;
        Ok(slf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_long_form_names_the_metric() {
        assert_eq!(parse_algorithm("ivf"), ("ivf".to_owned(), None));
        assert_eq!(
            parse_algorithm("dreamdb.ivf-cosine"),
            ("ivf".to_owned(), Some("cosine"))
        );
        assert_eq!(
            parse_algorithm("dreamdb.lsh-cosine"),
            ("lsh".to_owned(), Some("cosine"))
        );
        assert_eq!(parse_algorithm("FLAT"), ("flat".to_owned(), None));
    }

    #[test]
    fn image_mime_short_forms() {
        assert_eq!(image_mime("jpeg"), "image/jpeg");
        assert_eq!(image_mime("image/png"), "image/png");
    }

    #[test]
    fn names_of_metrics_and_dtypes() {
        assert_eq!(metric_name(Metric::InnerProduct), "ip");
        assert_eq!(dtype_name(ScalarDtype::I64), "int");
        assert_eq!(dtype_name(ScalarDtype::Categorical), "categorical");
    }
}
