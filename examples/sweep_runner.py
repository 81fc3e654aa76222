#!/usr/bin/env python3
"""Sweep runner: measure recall@k of DreamDB's vector search over a grid of
(nprobe, refine_factor) settings, against ONE pinned version, and write the
results as a table (JSON lines). Every configuration sees the same data, so
differences are the settings' alone; the version's Manifest hash goes into
every result row for reproducibility.

    python examples/sweep_runner.py --backend ./sweep-data --records 3000 --queries 20

Ground truth is an exact scan of the same version (numpy), read as Arrow.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

import dreamdb_dataset as vd


def ensure_dataset(backend: str, name: str, records: int, dim: int, k: int, bits: int) -> vd.Version:
    try:
        ds = vd.Dataset.open(name, backend=backend)
    except vd.NotFoundError:
        schema = vd.Schema().add_embedding(
            "v", dim=dim, algorithm="ivf", k=k, bits=bits if bits > 0 else None, rerank=True
        )
        ds = vd.Dataset.create(name, schema, backend=backend)
        rng = np.random.default_rng(1)
        ds.append_many({"v": rng.standard_normal((records, dim)).astype(np.float32)})
    return ds.snapshot("sweep-base")


def exact_neighbours(vectors: np.ndarray, anchors: np.ndarray, query: np.ndarray, k: int) -> List[int]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = query / np.linalg.norm(query)
    order = np.argsort(-(unit @ q), kind="stable")[:k]
    return [int(a) for a in anchors[order]]


def sweep(args: argparse.Namespace) -> List[Dict[str, Any]]:
    version = ensure_dataset(args.backend, args.name, args.records, args.dim, args.cells, args.bits)
    pinned = vd.Dataset.open_at(version)
    table = pinned.to_table(["v"])
    vectors = table.column("v").combine_chunks().flatten().to_numpy().reshape(table.num_rows, args.dim)
    anchors = table.column("_anchor").to_numpy()
    rng = np.random.default_rng(7)
    queries = rng.standard_normal((args.queries, args.dim)).astype(np.float32)
    truth = [exact_neighbours(vectors, anchors, q, args.k) for q in queries]
    rows: List[Dict[str, Any]] = []
    for nprobe, refine in itertools.product(args.nprobe, args.refine):
        t0 = time.perf_counter()
        hits = 0
        for q, want in zip(queries, truth):
            got = pinned.query("v", q, top_k=args.k, nprobe=nprobe, refine_factor=refine)
            hits += len(set(got.anchors.tolist()) & set(want))
        elapsed = time.perf_counter() - t0
        rows.append(
            {
                "manifest": version.manifest,
                "bits": args.bits,
                "nprobe": nprobe,
                "refine_factor": refine,
                "recall_at_k": hits / (args.k * len(queries)),
                "ms_per_query": 1000 * elapsed / len(queries),
            }
        )
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Recall sweep over query settings on a pinned version")
    p.add_argument("--backend", default="./sweep-data")
    p.add_argument("--name", default="sweep")
    p.add_argument("--records", type=int, default=3000)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--cells", type=int, default=16)
    p.add_argument("--bits", type=int, default=1, help="RaBitQ bits per dimension (0: raw float32 codes)")
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--nprobe", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--refine", type=int, nargs="+", default=[1, 4])
    p.add_argument("--out", default=None, help="write JSON lines here (default: stdout)")
    args = p.parse_args(argv)
    rows = sweep(args)
    lines = "\n".join(json.dumps(r) for r in rows)
    if args.out:
        with open(args.out, "w") as f:
            f.write(lines + "\n")
    else:
        print(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
