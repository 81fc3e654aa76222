#!/usr/bin/env python3
# recall-check.py — the recall gate of rebuild-workflow.yaml.
#
# Policy: a rebuilt or re-balanced index is published only if its
# recall@k on held-out queries, against exact search over the same ref's
# vectors, is at least the threshold (default 0.95).
#
#   recall-check.py --backend URL --dataset NAME --ref REF --field F \
#       --queries heldout.npy [--k 10] [--nprobe 16] [--refine 4] \
#       [--fail-below 0.95] [--json]
#
# Exit status, as for the command line's verbs: 0 at or above the
# threshold, 4 below it ("threshold crossed"), 1 on an error. Exact
# neighbours come from streaming the ref's vectors in Arrow batches
# (bounded memory; cosine when the field's metric is cosine, else L2).
# Needs the dreamdb_dataset wheel and numpy.
"""Recall@k of a ref's index against exact search (see the comment above)."""
import argparse
import json
import sys

import numpy as np

import dreamdb_dataset as vd


def exact_topk(ds, field, queries, k, cosine):
    """Exact top-k anchors per query, one pass over the ref's vectors."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True) if cosine else queries
    best_d = np.full((len(q), k), np.inf, dtype=np.float32)
    best_a = np.zeros((len(q), k), dtype=np.uint64)
    for batch in ds.iter_arrow_batches(batch_size=8192, fields=[field]):
        anchors = batch.column("_anchor").to_numpy()
        col = batch.column(field)
        x = np.asarray(col.values.to_numpy(zero_copy_only=False), dtype=np.float32)
        x = x.reshape(len(anchors), -1)
        if cosine:
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
            d = 1.0 - q @ x.T
        else:
            d = (q * q).sum(1)[:, None] - 2.0 * q @ x.T + (x * x).sum(1)[None, :]
        all_d = np.concatenate([best_d, d.astype(np.float32)], axis=1)
        all_a = np.concatenate([best_a, np.broadcast_to(anchors, d.shape)], axis=1)
        idx = np.argsort(all_d, axis=1, kind="stable")[:, :k]
        best_d = np.take_along_axis(all_d, idx, axis=1)
        best_a = np.take_along_axis(all_a, idx, axis=1)
    return best_a


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--ref", default="main")
    p.add_argument("--field", required=True)
    p.add_argument("--queries", required=True, help=".npy float32 array, one query per row")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--nprobe", type=int, default=16)
    p.add_argument("--refine", type=int, default=4)
    p.add_argument("--fail-below", type=float, default=0.95)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    try:
        ds = vd.Dataset.open(a.dataset, backend=a.backend, ref=a.ref)
        spec = ds.schema[a.field]
        cosine = spec.get("metric", "cosine") == "cosine"
        queries = np.load(a.queries).astype(np.float32)
        truth = exact_topk(ds, a.field, queries, a.k, cosine)
        hits = 0
        for i, q in enumerate(queries):
            got = ds.query(a.field, q, top_k=a.k, nprobe=a.nprobe, refine_factor=a.refine).anchors
            hits += len(set(got.tolist()) & set(truth[i].tolist()))
        recall = hits / float(a.k * len(queries))
    except Exception as e:  # noqa: BLE001 - report any failure as exit 1
        print(json.dumps({"error": str(e), "exit": 1}) if a.json else f"recall-check: {e}", file=sys.stdout if a.json else sys.stderr)
        return 1
    passed = recall >= a.fail_below
    report = {"ref": a.ref, "field": a.field, "queries": len(queries), "k": a.k,
              "nprobe": a.nprobe, "recall": recall, "fail_below": a.fail_below, "passed": passed}
    print(json.dumps(report) if a.json else f"recall@{a.k} of {a.ref}: {recall:.4f} (threshold {a.fail_below})")
    return 0 if passed else 4


if __name__ == "__main__":
    sys.exit(main())
