#!/usr/bin/env python3
"""Linear probe: how well do a dataset version's embeddings predict its
labels? Trains a logistic-regression probe (PyTorch) on a pinned snapshot,
reading embeddings and labels as Arrow batches (zero copy), and reports
held-out accuracy. Pinning makes the number reproducible: rerun it against
the same snapshot next month and you get the same data.

    python examples/linear_probe.py --backend ./probe-data --records 2000

With no existing dataset it creates a synthetic one (clustered vectors
whose cluster is the label) so the example runs anywhere.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import torch

import dreamdb_dataset as vd

CLASSES = ["cat", "dog", "bird", "fish"]


def make_dataset(backend: str, name: str, records: int, dim: int, seed: int) -> vd.Dataset:
    """A synthetic labelled dataset: one Gaussian blob per class."""
    schema = (
        vd.Schema()
        .add_embedding("embedding", dim=dim, algorithm="ivf", k=8, bits=None)
        .add_scalar_categorical("label")
    )
    ds = vd.Dataset.create(name, schema, backend=backend)
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((len(CLASSES), dim)).astype(np.float32) * 3
    labels = rng.integers(0, len(CLASSES), records)
    vecs = centers[labels] + rng.standard_normal((records, dim)).astype(np.float32)
    table = pa.table(
        {
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1)), dim),
            "label": pa.array([CLASSES[i] for i in labels]),
        }
    )
    ds.append_many(table)
    ds.snapshot("probe-v1")
    return ds


def load(version: vd.Dataset) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """Embeddings (float32) and label ids from Arrow batches."""
    xs: List[np.ndarray] = []
    ys: List[str] = []
    for batch in version.iter_arrow_batches(batch_size=4096, fields=["embedding", "label"]):
        emb = batch.column("embedding")
        dim = emb.type.list_size
        xs.append(emb.flatten().to_numpy(zero_copy_only=False).reshape(len(emb), dim))
        ys.extend(str(v) for v in batch.column("label").to_pylist())
    classes = sorted(set(ys))
    y = np.array([classes.index(v) for v in ys], dtype=np.int64)
    return np.concatenate(xs), y, classes


def train_probe(x: np.ndarray, y: np.ndarray, classes: int, epochs: int, seed: int) -> float:
    """Trains on 80 %, returns accuracy on the other 20 %."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    cut = int(0.8 * len(x))
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y)
    train, test = perm[:cut], perm[cut:]
    torch.manual_seed(seed)
    model = torch.nn.Linear(x.shape[1], classes)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt[train]), yt[train])
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = model(xt[test]).argmax(dim=1)
        return float((pred == yt[test]).float().mean())


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--backend", default="./probe-data")
    p.add_argument("--name", default="probe")
    p.add_argument("--version", default="probe-v1", help="tag, branch or Manifest hash")
    p.add_argument("--records", type=int, default=2000)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        vd.Dataset.open(args.name, backend=args.backend)
    except vd.NotFoundError:
        make_dataset(args.backend, args.name, args.records, args.dim, args.seed)
    version = vd.Dataset.open_at(args.version, backend=args.backend, name=args.name)
    x, y, classes = load(version)
    acc = train_probe(x, y, len(classes), args.epochs, args.seed)
    print(f"version {version.manifest_hash()[:12]}: {len(x)} records, {len(classes)} classes, "
          f"probe accuracy {acc:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
