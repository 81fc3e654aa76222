#!/usr/bin/env python3
"""Training recipe: a PyTorch DataLoader over a DreamDB version, with
worker processes, a per-epoch shuffle, and checkpoint/resume that neither
repeats nor skips a sample.

    python examples/training_recipe.py --backend ./train-data --epochs 2
    python examples/training_recipe.py --backend ./train-data --stop-after 5   # "crash"
    python examples/training_recipe.py --backend ./train-data --resume        # continue

The loader pins the branch's current Manifest at each epoch start, so
appends landing during training show up in the next epoch, never in the
middle of one. Under DDP, pass nothing: rank and world size come from
torch.distributed; each rank × worker reads a disjoint shard.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

import dreamdb_dataset as vd
from dreamdb_dataset.torch import DreamDBDataset


def ensure_dataset(backend: str, name: str, records: int, dim: int) -> None:
    """Creates a small regression dataset (target = a fixed linear function)."""
    try:
        vd.Dataset.open(name, backend=backend)
        return
    except vd.NotFoundError:
        pass
    schema = vd.Schema().add_embedding("x", dim=dim, algorithm="flat").add_scalar_float("y")
    ds = vd.Dataset.create(name, schema, backend=backend)
    rng = np.random.default_rng(0)
    w = rng.standard_normal(dim)
    for _ in range(4):  # four appends: four shardable units
        x = rng.standard_normal((records // 4, dim)).astype(np.float32)
        ds.append_many({"x": x, "y": x.astype(np.float64) @ w})


def run(args: argparse.Namespace) -> Dict[str, Any]:
    ensure_dataset(args.backend, args.name, args.records, args.dim)
    data = DreamDBDataset(args.name, backend=args.backend, seed=args.seed)
    model = torch.nn.Linear(args.dim, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    start_epoch = 0
    ckpt_path = os.path.join(args.backend, f"{args.name}.ckpt")
    if args.resume and os.path.exists(ckpt_path):
        ckpt = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["opt"])
        data.load_state_dict(ckpt["data"])
        start_epoch = int(ckpt["data"]["epoch"])
    loader = DataLoader(data, batch_size=args.batch_size, num_workers=args.workers)
    seen = 0
    loss_value = float("nan")
    for epoch in range(start_epoch, args.epochs):
        if epoch != start_epoch or not args.resume:
            data.set_epoch(epoch)
        for step, batch in enumerate(loader):
            opt.zero_grad()
            pred = model(batch["x"]).squeeze(1)
            loss = torch.nn.functional.mse_loss(pred, batch["y"].float())
            loss.backward()
            opt.step()
            data.mark_consumed(batch)
            seen += len(batch["y"])
            loss_value = float(loss)
            if args.stop_after is not None and step + 1 >= args.stop_after:
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "data": data.state_dict()}, ckpt_path)
                return {"stopped_at_epoch": epoch, "seen": seen, "loss": loss_value}
    return {"epochs": args.epochs, "seen": seen, "loss": loss_value}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Train on a DreamDB dataset with resumable loading")
    p.add_argument("--backend", default="./train-data")
    p.add_argument("--name", default="regression")
    p.add_argument("--records", type=int, default=2048)
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop-after", type=int, default=None, help="save a checkpoint after N steps and stop")
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    print(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
