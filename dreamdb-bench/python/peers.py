"""The peers' side of the benchmark suite: Faiss and LanceDB on the same
``.npy`` files, same k, same nprobe grid and refine factors as the Rust
suite, one query per call.

    peers.py --sets rust-1.json --threads 1 --work DIR --out peers-1.json [--torch]

- **Faiss** (in memory, the near-limit reference): ``IndexIVFFlat`` and
  ``IndexIVFRaBitQ`` wrapped in ``IndexRefineFlat`` (refine = k_factor,
  swept wider than the others' — 4, 10, 20, 40 — so Faiss's curve is
  read at its best);
  cosine sets are normalised and searched with L2 (same ranking).
- **LanceDB** (embedded, local disk): ``create_table`` then
  ``create_index`` IVF_PQ and IVF_RQ (1-bit RaBitQ) with the set's cell
  count; queries with ``nprobes`` and ``refine_factor``. Ingest rows/s is
  create_table + index build.
- **Iteration** (``--torch``): LanceDB ``to_batches`` MB/s; PyTorch
  ``DataLoader`` samples/s with 0 and 2 workers over DreamDB
  (``DreamDBDataset``) and LanceDB (``lance.torch.data.LanceDataset``).

Threads: ``--threads N`` sets OpenMP, LanceDB's CPU pool
(``LANCE_CPU_THREADS``) and torch to N before they are imported; with
N > 1, N Python threads issue queries concurrently (Faiss and LanceDB
release the GIL while searching).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Dict, List


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--sets", required=True, help="the Rust suite's JSON (its 'sets')")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--torch", action="store_true", help="also the iteration / DataLoader measures")
    p.add_argument("--lance-queries", type=int, default=200, help="queries per LanceDB point")
    return p.parse_args()


ARGS = parse()
for var in ("OMP_NUM_THREADS", "LANCE_CPU_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
# LanceDB logs a deprecation warning per query otherwise.
os.environ.setdefault("LANCEDB_LOG", "error")
os.environ.setdefault("LANCE_LOG", "error")
os.environ.setdefault("RUST_LOG", "error")

import faiss  # noqa: E402
import lancedb  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

REFINES = [4, 10]
PROBE_PCT = [1.0, 2.0, 4.0, 8.0, 12.0, 18.0, 25.0, 35.0]
# Faiss is cheap to sweep: wider refine so its curve reaches high recall.
FAISS_REFINES = [4, 10, 20, 40]


def say(msg: str) -> None:
    print(f"peers: {msg}", file=sys.stderr, flush=True)


def nprobes(cells: int) -> List[int]:
    """The Rust suite's grid (``suite::query::nprobes``)."""
    out: List[int] = []
    for p in PROBE_PCT:
        n = max(1, int(np.floor(cells * p / 100.0 + 0.5)))
        if not out or out[-1] != n:
            out.append(n)
    return out


def recall(found: List[List[int]], truth: np.ndarray) -> float:
    hit = sum(len(set(f[:10]) & set(int(x) for x in t[:10])) for f, t in zip(found, truth))
    return hit / (10 * len(found))


def sweep(search_one: Callable[[int], List[int]], nq: int, threads: int) -> Dict[str, Any]:
    """Runs queries 0..nq one per call, ``threads`` at a time."""
    lat = [0.0] * nq
    found: List[List[int]] = [[] for _ in range(nq)]

    def one(i: int) -> None:
        t = time.perf_counter()
        found[i] = search_one(i)
        lat[i] = (time.perf_counter() - t) * 1e3

    t0 = time.perf_counter()
    if threads <= 1:
        for i in range(nq):
            one(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(nq)))
    seconds = time.perf_counter() - t0
    s = sorted(lat)
    q = lambda p: s[int((len(s) - 1) * p)]  # noqa: E731
    return {"found": found, "qps": nq / seconds, "p50_ms": q(0.5), "p95_ms": q(0.95), "queries": nq}


def point(set_: Dict[str, Any], system: str, nprobe: int, refine: int, r: Dict[str, Any], truth: np.ndarray) -> Dict[str, Any]:
    rec = recall(r["found"], truth[: r["queries"]])
    say(f"{set_['name']} {system} t{ARGS.threads} nprobe {nprobe} refine {refine}: recall {rec:.3f}, {r['qps']:.0f} QPS")
    return {
        "set": set_["name"], "system": system, "path": "peer", "threads": ARGS.threads,
        "nprobe": nprobe, "refine": refine, "cells": set_["cells"], "recall": rec,
        "qps": r["qps"], "p50_ms": r["p50_ms"], "p95_ms": r["p95_ms"], "queries": r["queries"],
    }


def load(set_: Dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = Path(set_["dir"])
    xb = np.load(d / "base.f32.npy")
    xq = np.load(d / "query.f32.npy")
    gt = np.load(d / "groundtruth.i32.npy")
    return np.ascontiguousarray(xb, dtype=np.float32), np.ascontiguousarray(xq, dtype=np.float32), gt


def run_faiss(set_: Dict[str, Any], xb: np.ndarray, xq: np.ndarray, gt: np.ndarray, out: Dict[str, list]) -> None:
    if set_["metric"] == "cosine":
        xb = xb / np.linalg.norm(xb, axis=1, keepdims=True)
        xq = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    d, cells, train = xb.shape[1], set_["cells"], xb[: set_["train_rows"]]
    nq = xq.shape[0]

    t = time.perf_counter()
    flat = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, cells)
    flat.train(train)
    flat.add(xb)
    out["ingest"].append({"set": set_["name"], "system": "faiss-ivfflat", "target": "memory", "rows": len(xb),
                          "seconds": time.perf_counter() - t, "rows_per_s": len(xb) / (time.perf_counter() - t)})
    for nprobe in nprobes(cells):
        flat.nprobe = nprobe
        r = sweep(lambda i: flat.search(xq[i : i + 1], 10)[1][0].tolist(), nq, ARGS.threads)
        out["query"].append(point(set_, "faiss-ivfflat", nprobe, 0, r, gt))

    t = time.perf_counter()
    rq = faiss.IndexIVFRaBitQ(faiss.IndexFlatL2(d), d, cells)
    rq.train(train)
    refine = faiss.IndexRefineFlat(rq)
    refine.add(xb)
    secs = time.perf_counter() - t
    out["ingest"].append({"set": set_["name"], "system": "faiss-ivfrabitq-refine", "target": "memory",
                          "rows": len(xb), "seconds": secs, "rows_per_s": len(xb) / secs})
    for k_factor in FAISS_REFINES:
        refine.k_factor = float(k_factor)
        for nprobe in nprobes(cells):
            rq.nprobe = nprobe
            r = sweep(lambda i: refine.search(xq[i : i + 1], 10)[1][0].tolist(), nq, ARGS.threads)
            out["query"].append(point(set_, "faiss-ivfrabitq-refine", nprobe, k_factor, r, gt))


def vectors_table(xb: np.ndarray) -> pa.Table:
    n, d = xb.shape
    return pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(xb.ravel()), d),
    })


def run_lance(set_: Dict[str, Any], xb: np.ndarray, xq: np.ndarray, gt: np.ndarray, out: Dict[str, list], work: Path) -> str:
    """Ingest + query sweeps; returns the table's URI (for iteration)."""
    metric = "cosine" if set_["metric"] == "cosine" else "l2"
    cells = set_["cells"]
    nq = min(xq.shape[0], ARGS.lance_queries)
    uri = work / f"lance-{set_['name']}"
    shutil.rmtree(uri, ignore_errors=True)
    db = lancedb.connect(str(uri))
    data = vectors_table(xb)
    os.sync()  # as the DreamDB suite does before a timed ingest
    t = time.perf_counter()
    tbl = db.create_table("bench", data, mode="overwrite")
    create_s = time.perf_counter() - t
    for index_type, kw in (("IVF_PQ", {}), ("IVF_RQ", {"num_bits": 1})):
        os.sync()
        t = time.perf_counter()
        tbl.create_index(metric=metric, num_partitions=cells, vector_column_name="vector",
                         index_type=index_type, replace=True, **kw)
        index_s = time.perf_counter() - t
        system = f"lancedb-{index_type.lower().replace('_', '-')}"
        secs = create_s + index_s
        out["ingest"].append({"set": set_["name"], "system": system, "target": "local", "rows": len(xb),
                              "seconds": secs, "create_table_s": create_s, "index_s": index_s,
                              "rows_per_s": len(xb) / secs})
        say(f"{set_['name']} {system} ingest: {len(xb) / secs:.0f} rows/s (create {create_s:.2f} s + index {index_s:.2f} s)")

        def search(i: int, nprobe: int, rf: int) -> List[int]:
            res = (tbl.search(xq[i], vector_column_name="vector").distance_type(metric)
                   .nprobes(nprobe).refine_factor(rf).limit(10).select(["id"]).to_arrow())
            return res.column("id").to_pylist()

        search(0, 1, 1)  # open the index (warm session)
        for rf in REFINES:
            for nprobe in nprobes(cells):
                r = sweep(lambda i: search(i, nprobe, rf), nq, ARGS.threads)
                out["query"].append(point(set_, system, nprobe, rf, r, gt))
    return str(uri / "bench.lance")


def arrow_iteration(set_: Dict[str, Any], uri: str, out: Dict[str, list]) -> None:
    import lance

    ds = lance.dataset(uri)

    def drain() -> tuple[int, int, int, float]:
        t = time.perf_counter()
        batches = rows = nbytes = 0
        for b in ds.to_batches(batch_size=1024, columns=["id", "vector"]):
            batches += 1
            rows += b.num_rows
            nbytes += b.nbytes
        return batches, rows, nbytes, time.perf_counter() - t

    # Warm once, then timed passes for at least a second (as the DreamDB
    # suite does: one pass over a small set takes milliseconds).
    drain()
    batches = rows = nbytes = passes = 0
    secs = 0.0
    while passes == 0 or secs < 1.0:
        b, r, n, s = drain()
        batches, rows, nbytes, secs, passes = batches + b, rows + r, nbytes + n, secs + s, passes + 1
    say(f"{set_['name']} lancedb to_batches: {nbytes / 1e6 / secs:.0f} MB/s ({passes} passes)")
    out["iteration"].append({"set": set_["name"], "system": "lancedb", "kind": "arrow", "rows": rows,
                             "batches": batches, "batch_size": 1024, "seconds": secs, "passes": passes,
                             "rows_per_s": rows / secs, "batches_per_s": batches / secs,
                             "mb_per_s": nbytes / 1e6 / secs, "payload_bytes": nbytes})


def torch_loaders(set_: Dict[str, Any], xb: np.ndarray, lance_uri: str, work: Path, out: Dict[str, list]) -> None:
    """DataLoader samples/s, 0 and 2 workers: DreamDB vs LanceDB."""
    import torch
    from torch.utils.data import DataLoader
    import dreamdb_dataset as vd
    from dreamdb_dataset.torch import DreamDBDataset
    from lance.torch.data import LanceDataset

    torch.set_num_threads(ARGS.threads)
    n, d = xb.shape
    backend = str(work / f"torch-{set_['name']}")
    shutil.rmtree(backend, ignore_errors=True)
    # A training set as a stream of writers makes it: 10 appends.
    schema = vd.Schema().add_embedding("emb", dim=d, algorithm="flat", bits=None, rerank=False)
    ds = vd.Dataset.create("torch", schema, backend=backend)
    for chunk in np.array_split(xb, 10):
        ds.append_many({"emb": np.ascontiguousarray(chunk)})
    batch = 256

    def count(loader: Any) -> int:
        total = 0
        for b in loader:
            if isinstance(b, dict):
                b = b["emb"] if "emb" in b else b["vector"]
            total += len(b)
        return total

    def measure(system: str, label: str, loader: Any, workers: int) -> None:
        # Whole epochs for at least a second (one epoch over a small set
        # takes tens of milliseconds, and a single one measured mostly
        # noise): samples over the time of all of them, both systems alike.
        got = epochs = 0
        secs = 0.0
        while epochs == 0 or secs < 1.0:
            t = time.perf_counter()
            one = count(loader)
            secs += time.perf_counter() - t
            if one != n:
                raise SystemExit(f"{label} DataLoader yielded {one} samples of {n}")
            got += one
            epochs += 1
        out["torch"].append({"set": set_["name"], "system": system, "workers": workers, "samples": got,
                             "epochs": epochs, "seconds": secs, "samples_per_s": got / secs,
                             "batch_size": batch})
        say(f"{set_['name']} torch {label} workers {workers}: {got / secs:.0f} samples/s ({epochs} epochs)")

    for workers in (0, 2):
        dd = DreamDBDataset("torch", backend=backend, fields=["emb"], shuffle=False)
        measure("dreamdb", "dreamdb", DataLoader(dd, batch_size=batch, num_workers=workers), workers)
        # Batched mode: tensors per batch of 256, no per-sample collation,
        # and the same columns LanceDataset yields (the vectors only: no
        # `_anchor` tensor, so one shared-memory segment per batch each).
        db = DreamDBDataset("torch", backend=backend, fields=["emb"], shuffle=False, batches=batch,
                            anchors=False)
        measure("dreamdb-batched", "dreamdb batched", DataLoader(db, batch_size=None, num_workers=workers), workers)
        ld = LanceDataset(lance_uri, batch_size=batch, columns=["vector"])
        measure("lancedb", "lancedb", DataLoader(ld, batch_size=None, num_workers=workers), workers)


def main() -> None:
    sets = json.loads(Path(ARGS.sets).read_text())["sets"]
    work = Path(ARGS.work)
    work.mkdir(parents=True, exist_ok=True)
    import lance
    import matplotlib
    import torch

    out: Dict[str, Any] = {
        "threads": ARGS.threads,
        "versions": {"faiss-cpu": faiss.__version__, "lancedb": lancedb.__version__,
                     "pylance": lance.__version__, "numpy": np.__version__, "pyarrow": pa.__version__,
                     "torch": torch.__version__, "matplotlib": matplotlib.__version__,
                     "python": sys.version.split()[0]},
        "ingest": [], "query": [], "iteration": [], "torch": [],
    }
    for set_ in sets:
        say(f"{set_['name']}: loading")
        xb, xq, gt = load(set_)
        say(f"{set_['name']}: faiss")
        run_faiss(set_, xb, xq, gt, out)
        say(f"{set_['name']}: lancedb")
        uri = run_lance(set_, xb, xq, gt, out, work)
        if ARGS.torch:
            arrow_iteration(set_, uri, out)
            if set_["name"].startswith("synthetic") and set_["rows"] <= 200_000:
                torch_loaders(set_, xb, uri, work, out)
        shutil.rmtree(Path(uri).parent, ignore_errors=True)
    Path(ARGS.out).write_text(json.dumps(out, indent=1))
    say(f"wrote {ARGS.out}")


if __name__ == "__main__":
    main()
