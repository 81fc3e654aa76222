"""DreamDB datasets from Python: a content-addressed, versioned store for
vector datasets on object storage ("git for ML datasets").

>>> import numpy as np, dreamdb_dataset as vd
>>> schema = (vd.Schema()
...           .add_embedding("embedding", dim=4, algorithm="ivf", k=2)
...           .add_scalar_categorical("label"))
>>> ds = vd.Dataset.create("demo", schema, backend="memory://doctest")
>>> r = ds.append_many([{"embedding": np.ones(4, np.float32), "label": "cat"},
...                     {"embedding": -np.ones(4, np.float32), "label": "dog"}])
>>> len(r.anchors)
2

The native work (storage, indexing, queries, Arrow export) happens in Rust
(``dreamdb_dataset._native``) with the GIL released; this module turns
Python inputs into columns and native results into numpy/pyarrow values.
"""

from __future__ import annotations

import datetime as _dt
from typing import (
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np

from . import _native
from ._errors import (
    AlreadyExistsError,
    BackendError,
    ConflictError,
    DreamDBError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    ProtocolError,
    ReadOnlyError,
)
from ._native import AppendResult, Hit, Schema, Version

__version__: str = _native.__version__

__all__ = [
    "Schema",
    "Dataset",
    "Version",
    "AppendResult",
    "Hit",
    "QueryResult",
    "Range",
    "DreamDBError",
    "InvalidInputError",
    "NotFoundError",
    "ConflictError",
    "AlreadyExistsError",
    "ReadOnlyError",
    "IntegrityError",
    "BackendError",
    "ProtocolError",
]

#: The default backend: a directory in the working directory.
DEFAULT_BACKEND = "./dreamdb-data"

Row = Mapping[str, Any]
Columns = Mapping[str, Any]
FilterValue = Union[None, bool, int, float, str]


class Range:
    """A numeric range for a query filter: ``Range(low, high)`` is
    ``low <= value <= high``; ``None`` leaves a side open; ``inclusive``
    picks which ends are closed (``"both"``, ``"left"``, ``"right"``,
    ``"neither"``)."""

    def __init__(
        self,
        low: Optional[Union[int, float]] = None,
        high: Optional[Union[int, float]] = None,
        inclusive: str = "both",
    ) -> None:
        if inclusive not in ("both", "left", "right", "neither"):
            raise ValueError(f"inclusive must be both, left, right or neither, not {inclusive!r}")
        self.low = low
        self.high = high
        self.inclusive = inclusive

    def __repr__(self) -> str:
        return f"Range({self.low!r}, {self.high!r}, inclusive={self.inclusive!r})"


Filter = Mapping[str, Union[FilterValue, Sequence[FilterValue], Range]]


def _filter_spec(filter: Optional[Filter]) -> Optional[List[Tuple[Any, ...]]]:
    """``{"label": "cat", "year": Range(2000, None), "split": ["a", "b"]}``
    → the native list of predicates (all must hold)."""
    if not filter:
        return None
    out: List[Tuple[Any, ...]] = []
    for field, cond in filter.items():
        if isinstance(cond, Range):
            out.append(
                (
                    "range",
                    field,
                    cond.low,
                    cond.high,
                    cond.inclusive in ("both", "left"),
                    cond.inclusive in ("both", "right"),
                )
            )
        elif isinstance(cond, (list, tuple, set, frozenset)):
            out.append(("in", field, list(cond)))
        else:
            out.append(("eq", field, cond))
    return out


# ----- input normalisation ------------------------------------------------


def _ns(value: Any) -> int:
    """A timestamp value → nanoseconds since the Unix epoch."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        delta = value - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    raise TypeError(f"a timestamp must be int nanoseconds, numpy.datetime64 or datetime, not {type(value).__name__}")


def _varlen_from_items(items: Sequence[Any], as_text: bool, field: str) -> Tuple[Any, ...]:
    """Python str/bytes values (None = null) → (offsets, data, valid)."""
    parts: List[bytes] = []
    valid = np.ones(len(items), dtype=np.bool_)
    for i, v in enumerate(items):
        if v is None:
            valid[i] = False
            parts.append(b"")
        elif isinstance(v, str):
            parts.append(v.encode("utf-8"))
        elif isinstance(v, (bytes, bytearray, memoryview)):
            if as_text:
                raise InvalidInputError(f"invalid input for field {field!r}: row {i}: expected str, got bytes")
            parts.append(bytes(v))
        elif isinstance(v, np.ndarray) and v.dtype == np.uint8 and not as_text:
            parts.append(v.tobytes())
        else:
            kind = "str" if as_text else "bytes"
            raise InvalidInputError(
                f"invalid input for field {field!r}: row {i}: expected {kind}, got {type(v).__name__}"
            )
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = np.frombuffer(b"".join(parts), dtype=np.uint8)
    return (offsets, data, None if valid.all() else valid)


def _varlen_from_arrow(arr: Any) -> Tuple[Any, ...]:
    """A pyarrow string/binary array → (offsets, data, valid) from its
    buffers: no per-row Python object."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    elif pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type) or pa.types.is_fixed_size_binary(arr.type):
        arr = arr.cast(pa.large_binary())
    else:
        raise TypeError(f"expected a string or binary column, got {arr.type}")
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    valid = None
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
    return (offsets, data, valid)


def _numeric(values: Any, dtype: Any, field: str, kind: str) -> Tuple[Any, ...]:
    """A numeric column (numpy/pyarrow/list, None = null) → (values, valid)."""
    try:
        import pyarrow as pa

        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            valid = values.is_valid().to_numpy(zero_copy_only=False) if values.null_count else None
            if pa.types.is_timestamp(values.type):
                values = values.cast(pa.timestamp("ns")).cast(pa.int64())
            filled = values.fill_null(False if kind == "bool" else 0) if values.null_count else values
            return (np.ascontiguousarray(filled.to_numpy(zero_copy_only=False), dtype=dtype), valid)
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pass
    if isinstance(values, np.ndarray) and values.dtype != object:
        if kind == "timestamp" and np.issubdtype(values.dtype, np.datetime64):
            values = values.astype("datetime64[ns]").astype(np.int64)
        if kind != "float" and np.issubdtype(values.dtype, np.floating):
            raise InvalidInputError(f"invalid input for field {field!r}: a {values.dtype} array for a {kind} field")
        return (np.ascontiguousarray(values, dtype=dtype).reshape(-1), None)
    items = list(values)
    valid = np.array([v is not None for v in items], dtype=np.bool_)
    out = np.zeros(len(items), dtype=dtype)
    for i, v in enumerate(items):
        if v is None:
            continue
        if kind == "timestamp":
            out[i] = _ns(v)
        elif kind == "bool":
            if not isinstance(v, (bool, np.bool_)):
                raise InvalidInputError(f"invalid input for field {field!r}: row {i}: expected bool, got {type(v).__name__}")
            out[i] = bool(v)
        elif kind == "int":
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                raise InvalidInputError(f"invalid input for field {field!r}: row {i}: expected int, got {type(v).__name__}")
            out[i] = int(v)
        else:
            if not isinstance(v, (int, float, np.integer, np.floating)) or isinstance(v, bool):
                raise InvalidInputError(f"invalid input for field {field!r}: row {i}: expected float, got {type(v).__name__}")
            out[i] = float(v)
    return (out, None if valid.all() else valid)


def _embeddings(values: Any, dim: int, field: str) -> Any:
    """Vectors (2-D array, list of vectors, pyarrow FixedSizeList) → a
    C-contiguous float32[rows, dim] array (no copy when already one)."""
    try:
        import pyarrow as pa

        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            if values.null_count:
                raise InvalidInputError(f"invalid input for field {field!r}: null vectors")
            flat = values.flatten().to_numpy(zero_copy_only=False)
            return np.ascontiguousarray(flat, dtype=np.float32).reshape(len(values), -1)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(values, np.ndarray) and values.dtype != object:
        arr = values
    else:
        items = list(values)
        for i, v in enumerate(items):
            if v is None:
                raise InvalidInputError(f"invalid input for field {field!r}: row {i}: an embedding is required, got None")
        arr = np.asarray(items, dtype=np.float32) if items else np.zeros((0, dim), np.float32)
    if arr.ndim == 1 and len(arr) == dim:
        arr = arr.reshape(1, dim)
    if arr.ndim != 2:
        raise InvalidInputError(
            f"invalid input for field {field!r}: wrong dimension: expected vectors of dim {dim}, got an array of shape {arr.shape}"
        )
    return np.ascontiguousarray(arr, dtype=np.float32)


def _column(kind: str, desc: Mapping[str, Any], values: Any, field: str) -> Tuple[Any, ...]:
    """One column of values → the native normalised tuple."""
    import pyarrow as pa

    if kind == "embedding":
        return ("embedding", _embeddings(values, int(desc["dim"]), field))
    if kind in ("blob", "string", "categorical"):
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            return (kind,) + _varlen_from_arrow(values)
        return (kind,) + _varlen_from_items(list(values), kind != "blob", field)
    dtype = {"int": np.int64, "timestamp": np.int64, "float": np.float64, "bool": np.bool_}[kind]
    return (kind,) + _numeric(values, dtype, field, kind)


def _field_kinds(fields: Mapping[str, Mapping[str, Any]]) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for name, d in fields.items():
        if d["kind"] == "scalar":
            out[name] = str(d["dtype"])
        else:
            out[name] = str(d["kind"])
    return out


# ----- query results ------------------------------------------------------


class QueryResult(Sequence[Hit]):
    """The hits of a query, nearest first: a sequence of :class:`Hit`
    (``hit.anchor``, ``hit.distance``, ``hit.fields`` / ``hit["label"]``),
    with ``anchors``/``distances`` as numpy arrays and ``stats`` (cells
    probed, bytes read, candidates, reranked, ...)."""

    def __init__(self, hits: List[Hit], stats: Dict[str, int]) -> None:
        self._hits = hits
        self.stats: Dict[str, int] = stats

    def __len__(self) -> int:
        return len(self._hits)

    def __getitem__(self, i: Any) -> Any:
        return self._hits[i]

    def __iter__(self) -> Iterator[Hit]:
        return iter(self._hits)

    @property
    def anchors(self) -> "np.ndarray[Any, np.dtype[np.uint64]]":
        """The hits' anchors (uint64), nearest first."""
        return np.fromiter((h.anchor for h in self._hits), dtype=np.uint64, count=len(self._hits))

    @property
    def distances(self) -> "np.ndarray[Any, np.dtype[np.float32]]":
        """The hits' distances (float32), ascending."""
        return np.fromiter((h.distance for h in self._hits), dtype=np.float32, count=len(self._hits))

    def to_batch(self) -> Dict[str, Any]:
        """The hits as one columnar batch: ``_time_anchors``, ``_distances``
        and one list per returned field."""
        out: Dict[str, Any] = {"_time_anchors": self.anchors, "_distances": self.distances}
        names: List[str] = []
        for h in self._hits:
            for k in h.fields:
                if k not in names:
                    names.append(k)
        for k in names:
            out[k] = [h.fields.get(k) for h in self._hits]
        return out

    def __repr__(self) -> str:
        return f"QueryResult({len(self._hits)} hits)"


# ----- the dataset --------------------------------------------------------


def _backend(backend: Optional[str]) -> str:
    return str(backend) if backend is not None else DEFAULT_BACKEND


class Dataset:
    """A handle on one dataset in one backend.

    A handle follows a branch (``ref``, default ``"main"``: reads see its
    latest version, writes move it with a compare-and-swap) or is pinned to
    one version (``open_at``: read-only, never re-reads a ref). Handles are
    cheap, thread-safe, fork-safe (a handle used in a forked child reopens
    itself there) and picklable (they reopen lazily after unpickling, so
    they cross ``spawn`` too).
    """

    def __init__(self, native: "_native.Dataset") -> None:
        self._native = native
        self._kinds: Optional[Dict[str, str]] = None
        self._fields: Optional[Dict[str, Dict[str, Any]]] = None

    # -- opening --

    @classmethod
    def create(
        cls,
        name: str,
        schema: Schema,
        backend: Optional[str] = None,
        *,
        writer: Optional[str] = None,
        cache_bytes: Optional[int] = None,
    ) -> "Dataset":
        """Creates dataset ``name`` with ``schema`` in ``backend`` (a
        directory — the default is ``./dreamdb-data`` — ``file://``,
        ``memory://name`` or ``http(s)://host/bucket[/prefix]`` for any
        S3-compatible store; ``AWS_*`` variables sign requests). Raises
        :class:`AlreadyExistsError` if it exists."""
        return cls(_native.Dataset.create(name, schema, _backend(backend), writer, cache_bytes))

    @classmethod
    def open(
        cls,
        name: str,
        backend: Optional[str] = None,
        ref: str = "main",
        *,
        writer: Optional[str] = None,
        cache_bytes: Optional[int] = None,
    ) -> "Dataset":
        """Opens dataset ``name`` following branch ``ref``. Raises
        :class:`NotFoundError` if the dataset or branch does not exist."""
        return cls(_native.Dataset.open(name, _backend(backend), ref, writer, cache_bytes))

    @classmethod
    def open_at(
        cls,
        version: Union[Version, str],
        backend: Optional[str] = None,
        name: Optional[str] = None,
    ) -> "Dataset":
        """Opens one version read-only: a :class:`Version` (from
        :meth:`snapshot`; it knows its dataset and backend), a Manifest hash,
        a tag name, or a branch name (its version now)."""
        if isinstance(version, Version):
            name = name or version.dataset
            backend = backend if backend is not None else version.backend
            key = version.manifest
        else:
            key = str(version)
            if name is None:
                raise InvalidInputError("open_at: name= is required unless a Version is given")
        return cls(_native.Dataset.open_at(key, _backend(backend), name))

    # -- properties --

    @property
    def name(self) -> str:
        """The dataset's name."""
        return self._native.name

    @property
    def backend(self) -> str:
        """The backend URL."""
        return self._native.backend

    @property
    def ref(self) -> Optional[str]:
        """The branch this handle follows (``None`` when pinned)."""
        return self._native.ref

    @property
    def pinned(self) -> bool:
        """Whether this handle is pinned to one version (read-only)."""
        return self._native.pinned

    @property
    def native(self) -> "_native.Dataset":
        """The native handle."""
        return self._native

    def manifest_hash(self) -> str:
        """The Manifest hash (hex) of the version this handle reads now."""
        return self._native.manifest_hash()

    def records(self) -> int:
        """Live records of the current version."""
        return self._native.records()

    def __len__(self) -> int:
        return self.records()

    @property
    def schema(self) -> Dict[str, Dict[str, Any]]:
        """The fields of the dataset's schema (name → description)."""
        if self._fields is None:
            self._fields = dict(self._native.schema_fields())
        return self._fields

    def _field_kinds(self) -> Dict[str, str]:
        if self._kinds is None:
            self._kinds = _field_kinds(self.schema)
        return self._kinds

    # -- writing --

    def append_many(
        self,
        data: Union[Iterable[Row], Columns, Any],
        *,
        anchors: Optional[Sequence[int]] = None,
        message: Optional[str] = None,
        seed: int = 0,
    ) -> AppendResult:
        """Appends records as ONE new version (all or nothing).

        ``data`` is either a list of rows (one dict per record, keyed by
        field: numpy arrays or lists for embeddings, ``bytes`` for
        images/blobs, ``str``/``int``/``float``/``bool``/``None`` for
        scalars, ``datetime``/``numpy.datetime64``/int ns for timestamps), or
        columns: a dict of field → numpy array / list (embeddings as one
        ``[rows, dim]`` array), or a ``pyarrow.Table``/``RecordBatch``
        (converted from its buffers, no per-row Python objects).

        ``anchors`` (uint64, unique) name the records; by default they are
        assigned (strictly increasing). A refused batch writes nothing and
        raises :class:`InvalidInputError` naming the field and row.
        """
        kinds = self._field_kinds()
        columns, rows = self._columns(data, kinds)
        anchor_arr = None if anchors is None else np.ascontiguousarray(anchors, dtype=np.uint64)
        return self._native.append_columns(rows, columns, anchor_arr, message, seed)

    def _columns(self, data: Any, kinds: Mapping[str, str]) -> Tuple[Dict[str, Tuple[Any, ...]], int]:
        import pyarrow as pa

        fields = self.schema
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if isinstance(data, pa.Table):
            cols = {n: data.column(n) for n in data.column_names}
            rows = data.num_rows
        elif isinstance(data, Mapping):
            cols = dict(data)
            rows = -1
            for n, v in cols.items():
                k = kinds.get(n)
                ln = (len(v) if not (k == "embedding" and isinstance(v, np.ndarray) and v.ndim == 1) else 1)
                if rows == -1:
                    rows = ln
                elif ln != rows:
                    raise InvalidInputError(
                        f"invalid input for field {n!r}: ragged column: {ln} values, other columns have {rows}"
                    )
            rows = max(rows, 0)
        else:
            items = data if isinstance(data, list) else list(data)
            rows = len(items)
            names: List[str] = []
            seen = set()
            for i, row in enumerate(items):
                if not isinstance(row, Mapping):
                    raise InvalidInputError(
                        f"invalid input for field '_batch': row {i} is a {type(row).__name__}, not a dict"
                    )
                for n in row:
                    if n not in seen:
                        seen.add(n)
                        names.append(n)
            cols = {}
            for n in names:
                vals = [row.get(n) for row in items]
                if kinds.get(n) == "embedding":
                    missing = [i for i, v in enumerate(vals) if v is None]
                    if missing:
                        raise InvalidInputError(
                            f"invalid input for field {n!r}: row {missing[0]}: required field missing"
                        )
                cols[n] = vals
        out: Dict[str, Tuple[Any, ...]] = {}
        for n, v in cols.items():
            kind = kinds.get(n)
            if kind is None:
                raise InvalidInputError(
                    f"invalid input for field {n!r}: unknown field (the schema has {sorted(kinds)})"
                )
            out[n] = _column(kind, fields[n], v, n)
        return out, rows

    def add_scalar_layer(self, field: str, dtype: str, anchors: Sequence[int], values: Any) -> Dict[str, Any]:
        """Adds a new nullable scalar field (``dtype``: ``"categorical"``,
        ``"int"``, ``"float"``, ``"bool"``, ``"string"``, ``"timestamp"``)
        with ``values`` for the existing records at ``anchors`` (say, labels
        computed after ingest); other records read ``None``. One new
        version; existing segments are not rewritten."""
        desc: Dict[str, Any] = {"kind": "scalar", "dtype": dtype, "nullable": True}
        column = _column(dtype, desc, values, field)
        out = dict(self._native.add_scalar_layer(field, dtype, np.ascontiguousarray(anchors, dtype=np.uint64), column))
        self._fields = None
        self._kinds = None
        return out

    # -- reading --

    def query(
        self,
        field: str,
        query: Any,
        top_k: int = 10,
        nprobe: Optional[int] = None,
        refine_factor: Optional[int] = None,
        filter: Optional[Filter] = None,
        fields: Optional[Sequence[str]] = None,
    ) -> QueryResult:
        """The ``top_k`` records nearest to ``query`` in embedding ``field``.

        ``nprobe`` cells are probed (default 8), ``top_k × refine_factor``
        candidates are reranked exactly (default 4), ``filter`` keeps only
        records whose scalars match (``{"label": "cat"}``, ``{"label":
        ["cat", "dog"]}``, ``{"year": Range(2000, 2010)}``), and ``fields``
        are returned with each hit (default: none)."""
        vec = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        hits, stats = self._native.query(
            field, vec, top_k, nprobe, refine_factor, _filter_spec(filter),
            None if fields is None else list(fields),
        )
        return QueryResult(list(hits), dict(stats))

    def iter_vector(
        self,
        field: str,
        query: Any,
        top_k: int = 10,
        nprobe: Optional[int] = None,
        refine_factor: Optional[int] = None,
        filter: Optional[Filter] = None,
        fields: Optional[Sequence[str]] = None,
    ) -> Iterator[Dict[str, Any]]:
        """Like :meth:`query`, as an iterator of columnar result batches
        (dicts with ``_time_anchors``, ``_distances`` and the fields)."""
        yield self.query(field, query, top_k, nprobe, refine_factor, filter, fields).to_batch()

    def get(self, anchor: int, fields: Optional[Sequence[str]] = None) -> Optional[Dict[str, Any]]:
        """The record at ``anchor`` (``_anchor`` plus its fields), or
        ``None`` if there is none or it was deleted."""
        rec = self._native.get(int(anchor), None if fields is None else list(fields))
        return None if rec is None else dict(rec)

    def iter_arrow_batches(
        self,
        batch_size: int = 1024,
        fields: Optional[Sequence[str]] = None,
        shuffle_seed: Optional[int] = None,
        shard: Optional[Tuple[int, int]] = None,
        *,
        prefetch: int = 4,
    ) -> Iterator[Any]:
        """Every live record as ``pyarrow.RecordBatch``es (``_anchor``
        uint64 first, embeddings as ``FixedSizeList<float32>``, blobs as
        binary, typed scalars), in bounded memory, through the Arrow C Data
        Interface (zero copy). ``shuffle_seed`` gives a deterministic
        shuffle; ``shard=(i, n)`` only shard ``i`` of ``n`` (disjoint,
        together complete). The version is pinned when this is called."""
        import pyarrow as pa

        it = self._native.iter_arrow_batches(
            batch_size, None if fields is None else list(fields), shuffle_seed,
            None if shard is None else (int(shard[0]), int(shard[1])), prefetch,
        )
        for native_batch in it:
            yield pa.record_batch(native_batch)

    def iter_arrow_batches_native(
        self,
        batch_size: int = 1024,
        fields: Optional[Sequence[str]] = None,
        shuffle_seed: Optional[int] = None,
        shard: Optional[Tuple[int, int]] = None,
    ) -> Iterator[Any]:
        """Like :meth:`iter_arrow_batches` but yields the native
        ``ArrowBatch`` objects (``__arrow_c_array__`` providers) — for
        zero-copy checks and other Arrow consumers (polars, duckdb, ...)."""
        return iter(self._native.iter_arrow_batches(batch_size, None if fields is None else list(fields), shuffle_seed, shard, 4))

    def to_table(self, fields: Optional[Sequence[str]] = None, batch_size: int = 4096) -> Any:
        """The whole current version as one ``pyarrow.Table`` (small data)."""
        import pyarrow as pa

        batches = list(self.iter_arrow_batches(batch_size, fields))
        if not batches:
            return None
        return pa.Table.from_batches(batches)

    def compare_refs(self, field: str, refs: Sequence[Union[str, Version]]) -> Any:
        """``field`` across versions (branch/tag names, Manifest hashes or
        :class:`Version`s) as a ``pyarrow.Table``: ``_anchor`` (the union of
        the versions' live anchors) and one column ``field@ref`` per
        version, null where that version has no value. Summary statistics
        against the first version: :meth:`compare_refs_summary`."""
        table, _ = self._compare(field, refs)
        return table

    def compare_refs_summary(self, field: str, refs: Sequence[Union[str, Version]]) -> List[Dict[str, Any]]:
        """Per-version summary of :meth:`compare_refs`: values, paired,
        mean, mean difference / cosine to the first, changed count."""
        _, summaries = self._compare(field, refs)
        return summaries

    def _compare(self, field: str, refs: Sequence[Union[str, Version]]) -> Tuple[Any, List[Dict[str, Any]]]:
        import pyarrow as pa

        keys = [r.manifest if isinstance(r, Version) else str(r) for r in refs]
        labels = [r.label if isinstance(r, Version) else str(r) for r in refs]
        native_table, summaries = self._native.compare_refs(field, keys)
        batch = pa.record_batch(native_table)
        names = list(batch.schema.names)
        renamed = []
        for n in names:
            if n == f"{field}@self":
                renamed.append(f"{field}@{labels[0]}")
            else:
                for k, lab in zip(keys, labels):
                    if n == f"{field}@{k}":
                        n = f"{field}@{lab}"
                        break
                renamed.append(n)
        table = pa.Table.from_batches([batch]).rename_columns(renamed)
        out = [dict(s) for s in summaries]
        for s, lab in zip(out, labels):
            s["name"] = lab
        return table, out

    # -- versions --

    def snapshot(self, label: str) -> Version:
        """Tags the current version as ``label`` (tags never move; tagging
        the same version twice is fine, another version raises
        :class:`AlreadyExistsError`)."""
        return self._native.snapshot(label)

    def branch(self, name: str) -> "Dataset":
        """Creates branch ``name`` at the current version; returns a handle
        on it."""
        return Dataset(self._native.branch(name))

    def checkout(self, name: str) -> "Dataset":
        """A handle on another existing branch."""
        return Dataset(self._native.checkout(name))

    def merge(self, ref: str, strategy: str = "union") -> Dict[str, str]:
        """Merges branch ``ref`` into this branch: ``"union"`` (fast-forward
        when possible, else a 3-way union per field), ``"fast-forward"``,
        ``"ours"`` or ``"theirs"``. Returns ``{"kind", "manifest"}``; a
        conflict raises :class:`ConflictError`."""
        return dict(self._native.merge(ref, strategy))

    def merge_many(self, refs: Sequence[str]) -> Dict[str, str]:
        """Merges every branch in ``refs`` as ONE version and ONE
        compare-and-swap (sharded ingest: each worker appends on its own
        branch, then one merge)."""
        return dict(self._native.merge_many(list(refs)))

    def delete(self, anchors: Iterable[int], reason: str = "") -> int:
        """Deletes the records at ``anchors`` (read-side suppression: they
        vanish from this version on; older versions still have them).
        Returns how many were live. Unknown anchors raise
        :class:`InvalidInputError` and nothing is deleted."""
        return self._native.delete([int(a) for a in np.asarray(list(anchors) if not isinstance(anchors, np.ndarray) else anchors).reshape(-1)], reason)

    def tombstones(self) -> List[Dict[str, Any]]:
        """The deletions of the current version (``anchor``, ``reason``,
        ``time``)."""
        return [dict(t) for t in self._native.tombstones()]

    def history(self, limit: int = 100) -> List[Dict[str, Any]]:
        """The versions behind the current one, newest first (``manifest``,
        ``parents``, ``writer``, ``time``, ``message``, ``records``)."""
        return [dict(h) for h in self._native.history(limit)]

    def __reduce__(self) -> Any:
        return (Dataset, (self._native,))

    def __repr__(self) -> str:
        return repr(self._native)
