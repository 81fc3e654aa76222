"""The core API against a local directory: create/open, appends in every
input form, query, get, Arrow batches (zero copy), versions, deletes and
the error classes."""

from __future__ import annotations

import ctypes
import pickle
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import dreamdb_dataset as vd
from conftest import make_rows, small_schema, unit_vectors


def test_schema_is_chainable_and_imperative() -> None:
    chained = vd.Schema().add_embedding("e", dim=4).add_scalar_int("n")
    imperative = vd.Schema()
    imperative.add_embedding("e", dim=4)
    imperative.add_scalar_int("n")
    assert chained.fields == imperative.fields
    assert chained.fields["e"]["kind"] == "embedding"
    assert chained.fields["e"]["dim"] == 4
    assert chained.fields["n"] == {"kind": "scalar", "dtype": "int", "nullable": False}


def test_schema_errors_name_the_field() -> None:
    with pytest.raises(vd.InvalidInputError) as e:
        vd.Schema().add_embedding("e", dim=0)
    assert e.value.kind == "invalid-schema"
    assert "e" in str(e.value)
    with pytest.raises(vd.InvalidInputError) as e:
        vd.Schema().add_scalar_int("x").add_scalar_int("x")
    assert "twice" in str(e.value)
    with pytest.raises(vd.InvalidInputError):
        vd.Schema().add_embedding("e", dim=4, algorithm="hnsw")
    with pytest.raises(vd.InvalidInputError):
        vd.Schema().add_embedding("Bad-Name", dim=4)


def test_create_append_rows_and_reopen(backend: str) -> None:
    ds = vd.Dataset.create("rows", small_schema(bits=None), backend=backend)
    r = ds.append_many(make_rows(30))
    assert isinstance(r.anchors, np.ndarray) and r.anchors.dtype == np.uint64
    assert len(r.anchors) == 30 and np.all(np.diff(r.anchors.astype(np.int64)) > 0)
    assert all(c in "0123456789abcdef" for c in r.manifest) and len(r.manifest) >= 64
    assert r.attempts == 1
    assert "embedding" in r.signals and r.signals["embedding"]["k"] == 4
    again = vd.Dataset.open("rows", backend=backend)
    assert again.records() == 30 == len(again)
    assert again.manifest_hash() == r.manifest
    rec = again.get(int(r.anchors[7]))
    assert rec is not None
    assert rec["_anchor"] == int(r.anchors[7])
    assert rec["label"] == "dog" and rec["idx"] == 7 and rec["score"] == pytest.approx(0.7)
    np.testing.assert_array_equal(rec["embedding"], make_rows(30)[7]["embedding"])
    assert again.get(int(r.anchors[7]), fields=["idx"]) == {"_anchor": int(r.anchors[7]), "idx": 7}
    assert again.get(12345) is None


def test_append_columns_numpy_and_lists(backend: str) -> None:
    ds = vd.Dataset.create("cols", small_schema(), backend=backend)
    n = 40
    r = ds.append_many(
        {
            "embedding": unit_vectors(n, 8),
            "label": ["cat"] * n,
            "idx": np.arange(n),
            "score": np.linspace(0, 1, n),
        }
    )
    assert len(r.anchors) == n
    t = ds.to_table()
    assert t.num_rows == n
    assert t.column("idx").to_pylist() == list(range(n))


def test_append_pyarrow_table_without_row_objects(backend: str) -> None:
    schema = small_schema(bits=None).add_blob("raw").add_scalar_string("note", nullable=True)
    schema = schema.add_scalar_bool("flag").add_scalar_timestamp("ts")
    ds = vd.Dataset.create("arrow-in", schema, backend=backend)
    n = 20
    vecs = unit_vectors(n, 8)
    table = pa.table(
        {
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), 8),
            "label": pa.array(["a", "b"] * 10).dictionary_encode(),
            "idx": pa.array(np.arange(n, dtype=np.int64)),
            "score": pa.array(np.arange(n, dtype=np.float64)),
            "raw": pa.array([bytes([i]) * i for i in range(n)], pa.binary()),
            "note": pa.array([None if i % 2 else f"n{i}" for i in range(n)]),
            "flag": pa.array([i % 3 == 0 for i in range(n)]),
            "ts": pa.array(np.datetime64("2026-01-01", "ns") + np.arange(n).astype("timedelta64[ns]")),
        }
    )
    # Slices exercise non-zero Arrow offsets.
    ds.append_many(table.slice(0, 5))
    ds.append_many(table.slice(5))
    out = ds.to_table()
    assert out.num_rows == n
    assert out.column("raw").to_pylist() == [bytes([i]) * i for i in range(n)]
    assert out.column("note").to_pylist() == [None if i % 2 else f"n{i}" for i in range(n)]
    assert out.column("flag").to_pylist() == [i % 3 == 0 for i in range(n)]
    assert out.column("label").to_pylist() == ["a", "b"] * 10
    ts = out.column("ts").cast(pa.int64()).to_numpy()
    assert ts[0] == np.datetime64("2026-01-01", "ns").astype(np.int64)
    np.testing.assert_array_equal(
        out.column("embedding").combine_chunks().flatten().to_numpy().reshape(n, 8), vecs
    )


def test_compressed_rerank_field_reads_back_exact_vectors(backend: str) -> None:
    ds = vd.Dataset.create("exact", small_schema(bits=1), backend=backend)
    rows = make_rows(10)
    r = ds.append_many(rows)
    got = ds.get(int(r.anchors[3]))
    assert got is not None
    np.testing.assert_array_equal(got["embedding"], rows[3]["embedding"])


def test_query_finds_the_vector_itself_with_fields_and_filter(small: vd.Dataset) -> None:
    vecs = unit_vectors(25, 8, seed=2)  # the third append (idx 50..74)
    res = small.query("embedding", vecs[3], top_k=5, nprobe=4, fields=["idx", "label"])
    assert isinstance(res, vd.QueryResult) and len(res) == 5
    best = res[0]
    assert best["idx"] == 53 and best.distance == pytest.approx(0.0, abs=1e-5)
    assert best.fields["label"] == ["cat", "dog", "bird"][53 % 3]
    assert list(res.distances) == sorted(res.distances)
    assert res.stats["cells_probed"] >= 1
    filtered = small.query(
        "embedding", vecs[3], top_k=10, nprobe=4, fields=["label", "idx"], filter={"label": "cat"}
    )
    assert len(filtered) > 0 and all(h["label"] == "cat" for h in filtered)
    ranged = small.query(
        "embedding", vecs[3], top_k=10, nprobe=4, fields=["idx"], filter={"idx": vd.Range(10, 19)}
    )
    assert all(10 <= h["idx"] <= 19 for h in ranged)
    batches = list(small.iter_vector("embedding", vecs[3], top_k=3))
    assert len(batches) == 1 and len(batches[0]["_time_anchors"]) == 3


def test_iter_arrow_batches_types_shuffle_and_shards(small: vd.Dataset) -> None:
    batches = list(small.iter_arrow_batches(batch_size=16))
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    assert batches[0].schema.field("_anchor").type == pa.uint64()
    assert batches[0].schema.field("embedding").type == pa.list_(pa.field("item", pa.float32(), nullable=False), 8)
    idx = [i for b in batches for i in b.column("idx").to_pylist()]
    assert idx == list(range(100))
    shuffled = [i for b in small.iter_arrow_batches(16, ["idx"], shuffle_seed=7) for i in b.column("idx").to_pylist()]
    assert sorted(shuffled) == list(range(100)) and shuffled != idx
    again = [i for b in small.iter_arrow_batches(16, ["idx"], shuffle_seed=7) for i in b.column("idx").to_pylist()]
    assert again == shuffled
    shards = [
        [i for b in small.iter_arrow_batches(16, ["idx"], shard=(s, 3)) for i in b.column("idx").to_pylist()]
        for s in range(3)
    ]
    flat = [i for s in shards for i in s]
    assert sorted(flat) == list(range(100)) and len(flat) == 100


def test_arrow_embedding_column_is_zero_copy(small: vd.Dataset) -> None:
    """The pyarrow batch's embedding values sit at the very address the Rust
    side decoded them to: `ArrowBatch.buffer_addresses()` reports the Rust
    address of each column's first value BEFORE export, and after
    `pa.record_batch()` (the Arrow PyCapsule interface) the flattened
    pyarrow column's first value — read through numpy without copying
    (`zero_copy_only=True`) — is at the same address."""
    native = next(iter(small.iter_arrow_batches_native(batch_size=32, fields=["embedding", "idx"])))
    rust_addr = native.buffer_addresses()
    batch = pa.record_batch(native)
    emb = batch.column("embedding")
    values = emb.flatten().to_numpy(zero_copy_only=True)
    assert values.ctypes.data == rust_addr["embedding"]
    idx = batch.column("idx").to_numpy(zero_copy_only=True)
    assert idx.ctypes.data == rust_addr["idx"]
    # The memory is live and holds the vectors (read through ctypes too).
    first = (ctypes.c_float * 8).from_address(rust_addr["embedding"])
    np.testing.assert_array_equal(np.frombuffer(first, dtype=np.float32), values[:8])
    # A batch can be imported once only.
    with pytest.raises(RuntimeError):
        pa.record_batch(native)


def test_versions_snapshot_branch_merge_delete(small: vd.Dataset, backend: str) -> None:
    v1 = small.snapshot("v1")
    assert isinstance(v1, vd.Version) and v1.label == "v1" and str(v1) == small.manifest_hash()
    worker = small.branch("worker-0")
    worker.append_many(make_rows(10, seed=9, start=100))
    assert worker.records() == 110 and small.records() == 100
    m = small.merge("worker-0")
    assert m["kind"] == "fast-forward" and small.records() == 110
    other = small.branch("worker-1")
    other.append_many(make_rows(5, seed=10, start=200))
    small.append_many(make_rows(5, seed=11, start=300))
    merged = small.merge_many(["worker-1"])
    assert merged["kind"] == "merged" and small.records() == 120
    anchors = [int(b.column("_anchor")[0].as_py()) for b in small.iter_arrow_batches(10, ["idx"])][:2]
    assert small.delete(anchors, reason="gdpr") == 2
    assert small.records() == 118
    assert {t["anchor"] for t in small.tombstones()} == set(anchors)
    assert all(t["reason"] == "gdpr" for t in small.tombstones())
    assert small.get(anchors[0]) is None
    old = vd.Dataset.open_at(v1, backend=backend)
    assert old.records() == 100 and old.pinned and old.ref is None
    assert old.get(anchors[0]) is not None
    by_tag = vd.Dataset.open_at("v1", backend=backend, name="small")
    assert by_tag.manifest_hash() == v1.manifest
    by_branch = vd.Dataset.open_at("worker-1", backend=backend, name="small")
    assert by_branch.records() == 115
    hist = small.history(limit=50)
    assert hist[0]["manifest"] == small.manifest_hash()
    assert any(len(h["parents"]) == 2 for h in hist)
    assert "gdpr" in hist[0]["message"]


def test_compare_refs_returns_a_table(small: vd.Dataset) -> None:
    small.snapshot("before")
    anchors = [int(a) for a in small.to_table(["idx"]).column("_anchor").to_pylist()[:3]]
    small.delete(anchors, "cleanup")
    t = small.compare_refs("idx", ["before", "main"])
    assert isinstance(t, pa.Table)
    assert t.column_names == ["_anchor", "idx@before", "idx@main"]
    assert t.num_rows == 100
    assert t.column("idx@main").null_count == 3
    summary = small.compare_refs_summary("idx", ["before", "main"])
    assert [s["name"] for s in summary] == ["before", "main"]
    assert summary[1]["values"] == 97


@pytest.mark.parametrize(
    "action, cls, kind",
    [
        ("missing-dataset", vd.NotFoundError, "not-found"),
        ("exists", vd.AlreadyExistsError, "already-exists"),
        ("bad-dim", vd.InvalidInputError, "invalid-input"),
        ("unknown-field", vd.InvalidInputError, "invalid-input"),
        ("nan", vd.InvalidInputError, "invalid-input"),
        ("bad-name", vd.InvalidInputError, "invalid-name"),
        ("read-only", vd.ReadOnlyError, "read-only"),
        ("ff-conflict", vd.ConflictError, "conflict"),
        ("tag-moved", vd.AlreadyExistsError, "already-exists"),
        ("backend", vd.BackendError, "backend"),
    ],
)
def test_errors_carry_class_and_kind(small: vd.Dataset, backend: str, action: str, cls: Any, kind: str) -> None:
    with pytest.raises(cls) as e:
        if action == "missing-dataset":
            vd.Dataset.open("nope", backend=backend)
        elif action == "exists":
            vd.Dataset.create("small", small_schema(), backend=backend)
        elif action == "bad-dim":
            small.append_many([{"embedding": np.ones(3, np.float32), "label": "x", "idx": 1, "score": 0.0}])
        elif action == "unknown-field":
            small.append_many([{"embedding": np.ones(8, np.float32), "label": "x", "idx": 1, "score": 0.0, "zzz": 1}])
        elif action == "nan":
            v = np.ones(8, np.float32)
            v[2] = np.nan
            small.append_many([{"embedding": v, "label": "x", "idx": 1, "score": 0.0}])
        elif action == "bad-name":
            vd.Dataset.create("Bad Name!", small_schema(), backend=backend)
        elif action == "read-only":
            v = small.snapshot("ro")
            vd.Dataset.open_at(v).append_many(make_rows(1))
        elif action == "ff-conflict":
            b = small.branch("side")
            b.append_many(make_rows(1, seed=3))
            small.append_many(make_rows(1, seed=4))
            small.merge("side", strategy="fast-forward")
        elif action == "tag-moved":
            small.snapshot("t")
            small.append_many(make_rows(1, seed=5))
            small.snapshot("t")
        elif action == "backend":
            vd.Dataset.open("x", backend="http://127.0.0.1:9/no-bucket")
    assert isinstance(e.value, vd.DreamDBError)
    assert e.value.kind == kind
    if action in ("bad-dim", "unknown-field", "nan"):
        assert "embedding" in str(e.value) or "zzz" in str(e.value)
        assert small.records() == 100  # a refused batch writes nothing


def test_handles_pickle_and_reopen(small: vd.Dataset) -> None:
    clone = pickle.loads(pickle.dumps(small))
    assert clone.records() == small.records()
    v = small.snapshot("p")
    assert pickle.loads(pickle.dumps(v)) == v
    pinned = vd.Dataset.open_at(v)
    again = pickle.loads(pickle.dumps(pinned))
    assert again.pinned and again.manifest_hash() == v.manifest


def test_memory_backend_and_default_names(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    ds = vd.Dataset.create("local-default", vd.Schema().add_embedding("v", dim=2, algorithm="flat"))
    ds.append_many([{"v": [1.0, 0.0]}, {"v": [0.0, 1.0]}])
    assert (tmp_path / "dreamdb-data").is_dir()
    mem = vd.Dataset.create("m", vd.Schema().add_embedding("v", dim=2, algorithm="flat"), backend="memory://t1")
    mem.append_many({"v": np.eye(2, dtype=np.float32)})
    assert vd.Dataset.open("m", backend="memory://t1").records() == 2


def test_scalar_layer_adds_a_field_to_existing_records(small: vd.Dataset) -> None:
    t = small.to_table(["idx"])
    anchors = t.column("_anchor").to_numpy()[:10]
    idx = t.column("idx").to_numpy()[:10]
    r = small.add_scalar_layer("quality", "float", anchors, idx / 100.0)
    assert r["records"] == 10
    assert small.schema["quality"] == {"kind": "scalar", "dtype": "float", "nullable": True}
    rec = small.get(int(anchors[3]), fields=["quality"])
    assert rec is not None and rec["quality"] == pytest.approx(idx[3] / 100.0)
    later = small.get(int(t.column("_anchor")[50].as_py()), fields=["idx", "quality"])
    assert later is not None and later["idx"] == 50 and later.get("quality") is None
    only = small.get(int(t.column("_anchor")[50].as_py()), fields=["quality"])
    assert only is not None and only["quality"] is None  # the record exists; the layer skipped it
    assert small.to_table(["quality"]).column("quality").null_count in (0, 90)
    with pytest.raises(vd.InvalidInputError):
        small.add_scalar_layer("other", "float", [123456789], [1.0])
