"""PyTorch integration: :class:`DreamDBDataset`, an ``IterableDataset``
that is version-pinned, sharded by (rank, worker), deterministic, resumable
and safe under both ``fork`` and ``spawn`` DataLoader workers.

>>> from torch.utils.data import DataLoader
>>> from dreamdb_dataset.torch import DreamDBDataset
>>> data = DreamDBDataset("imagenet-1k", backend="./data", seed=0)  # doctest: +SKIP
>>> loader = DataLoader(data, batch_size=256, num_workers=4)         # doctest: +SKIP
>>> for epoch in range(10):                                           # doctest: +SKIP
...     data.set_epoch(epoch)
...     for batch in loader:
...         data.mark_consumed(batch)   # keeps state_dict() exact
...         ...

**Pinning.** The ref is resolved to one Manifest hash in ``__init__`` (and
again in ``set_epoch`` when following a branch); every worker opens that
Manifest (``Dataset.open_at``), so an append that lands mid-epoch is not
seen until the next ``set_epoch``.

**Sharding.** The epoch's records are split into ``world_size ×
num_workers`` shards, disjoint and together complete; rank ``r``'s worker
``w`` reads shard ``r · num_workers + w``. ``rank``/``world_size`` come
from ``torch.distributed`` when it is initialised, else from the
arguments (default 0 / 1). Shards follow the storage's units (one append
is one unit), so balance is per append.

**Order.** With ``shuffle=True`` the order is a deterministic function of
(``seed``, ``epoch``) and the Manifest — the same on every machine, a
different one each epoch.

**Resuming.** Every sample carries ``_shard``, ``_pos`` (its position
in its shard) and ``_nshards``. ``state_dict()`` holds, per shard, how many samples were
consumed; in the main process call ``mark_consumed(batch)`` for each batch
the training loop finishes (with ``num_workers=0`` iteration tracks this
itself). ``load_state_dict`` then makes the next iteration of each shard skip
what was consumed: the epoch continues with no repeat and no gap. Without
a loaded state every iteration is a full pass of the epoch (same order
until ``set_epoch``).

**Spawn/fork.** The dataset pickles as plain settings; the native handle is
opened lazily in each worker process, never inherited or pickled.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from . import Dataset, Version

__all__ = ["DreamDBDataset"]

_SEED_MIX = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


def _epoch_seed(seed: int, epoch: int) -> int:
    """One 64-bit shuffle seed per (seed, epoch) (splitmix-style mixing)."""
    z = (seed * _SEED_MIX + epoch + 1) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _dist_rank_world() -> Optional[tuple[int, int]]:
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except Exception:  # pragma: no cover - torch builds without distributed
        pass
    return None


def _batch_rows(batch: Any) -> Optional[int]:
    """The number of samples in a batched-mode dict (from its first
    per-sample column), or ``None`` for a single sample."""
    if not isinstance(batch, dict):
        return None
    for key, value in batch.items():
        if key in ("_shard", "_pos", "_nshards"):
            continue
        if isinstance(value, torch.Tensor):
            return int(value.shape[0]) if value.dim() >= 1 else None
        if isinstance(value, list):
            return len(value)
    return None


class DreamDBDataset(IterableDataset):  # type: ignore[type-arg]
    """A DreamDB dataset version as a PyTorch ``IterableDataset``.

    Args:
        name: the dataset's name.
        backend: its backend URL or directory.
        ref: the branch to follow (re-resolved at each :meth:`set_epoch`),
            or ``version`` to pin one version for good.
        version: a :class:`~dreamdb_dataset.Version`, tag or Manifest hash.
        fields: the fields to read (default: all).
        shuffle: deterministic shuffle from ``seed`` and the epoch.
        seed: the shuffle seed.
        rank, world_size: this process's place among data-parallel ranks
            when ``torch.distributed`` is not initialised.
        batch_size: records per native read (not the training batch size).
        transform: called on each sample dict (after tensor conversion);
            returns the sample to yield (decode images here). In batched
            mode it is called on each batch dict.
        batches: yield collated batches of up to this many samples instead
            of single samples (use ``DataLoader(batch_size=None)``):
            embeddings and numbers as one tensor per field, blobs and
            strings as lists; ``_shard``, ``_nshards`` and ``_pos`` (the
            position of the batch's first sample; the others follow it)
            as plain ints, so :meth:`mark_consumed` and resuming work as
            in sample mode. Skips torch's per-sample collation, the slow
            part of sample mode, and sends only the data tensors through
            DataLoader workers' shared memory (each tensor costs a
            shared-memory segment per batch).
        anchors: include ``_anchor`` (each sample's anchor, an int64
            tensor per batch) in what is yielded (default). ``False`` when
            training needs only the fields: one tensor fewer per batch
            crosses DataLoader workers' shared memory. Positions
            (``_shard``, ``_pos``) still make resuming exact.
        decode_blobs: how blobs are yielded: ``bytes`` (default).
    """

    def __init__(
        self,
        name: str,
        backend: Optional[str] = None,
        ref: str = "main",
        *,
        version: Optional[Any] = None,
        fields: Optional[Sequence[str]] = None,
        shuffle: bool = True,
        seed: int = 0,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        batch_size: int = 1024,
        transform: Optional[Callable[[Dict[str, Any]], Any]] = None,
        batches: Optional[int] = None,
        anchors: bool = True,
    ) -> None:
        super().__init__()
        self.name = name
        self.backend = backend if backend is not None else (version.backend if isinstance(version, Version) else None)
        self.ref = ref
        self.fields: Optional[List[str]] = None if fields is None else list(fields)
        self.shuffle = shuffle
        self.seed = int(seed)
        self._rank = rank
        self._world_size = world_size
        if batches is not None and int(batches) < 1:
            raise ValueError(f"batches must be at least 1, not {batches}")
        self.batches: Optional[int] = None if batches is None else int(batches)
        self.read_batch_size = int(batch_size) if self.batches is None else self.batches
        self.transform = transform
        self.anchors = bool(anchors)
        self.epoch = 0
        self._follow = version is None
        if version is None:
            self.manifest = Dataset.open(name, self.backend, ref).manifest_hash()
        else:
            key = version.manifest if isinstance(version, Version) else str(version)
            self.manifest = Dataset.open_at(key, self.backend, name).manifest_hash()
        self._consumed: Dict[int, int] = {}
        self._resume = False
        self._shards: Optional[int] = None
        self._kinds: Optional[Dict[str, Dict[str, Any]]] = None

    # -- epoch and placement --

    def set_epoch(self, epoch: int, refresh: Optional[bool] = None) -> None:
        """Starts epoch ``epoch``: a new shuffle order, progress reset, and
        (when following a branch, or ``refresh=True``) the branch's current
        version pinned for the epoch."""
        self.epoch = int(epoch)
        self._consumed = {}
        self._resume = False
        if refresh if refresh is not None else self._follow:
            self.manifest = Dataset.open(self.name, self.backend, self.ref).manifest_hash()

    def rank_world(self) -> tuple[int, int]:
        """(rank, world_size): from ``torch.distributed`` when initialised,
        else the constructor's arguments (default 0, 1)."""
        got = _dist_rank_world()
        if got is not None and self._rank is None:
            return got
        rank = 0 if self._rank is None else int(self._rank)
        world = 1 if self._world_size is None else int(self._world_size)
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in 0..{world}")
        return rank, world

    def _shard(self) -> tuple[int, int]:
        rank, world = self.rank_world()
        info = get_worker_info()
        wid, nw = (0, 1) if info is None else (info.id, info.num_workers)
        return rank * nw + wid, world * nw

    # -- state --

    def state_dict(self) -> Dict[str, Any]:
        """The position within the epoch: the pinned Manifest, epoch, seed
        and, per shard, the samples consumed."""
        return {
            "name": self.name,
            "manifest": self.manifest,
            "epoch": self.epoch,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "shards": self._shards,
            "consumed": dict(self._consumed),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Resumes at ``state`` (same Manifest, epoch and order; each shard
        skips the samples already consumed)."""
        self.manifest = str(state["manifest"])
        self.epoch = int(state["epoch"])
        self.seed = int(state["seed"])
        self.shuffle = bool(state["shuffle"])
        self._shards = state.get("shards")
        self._consumed = {int(k): int(v) for k, v in dict(state["consumed"]).items()}
        self._resume = True

    def mark_consumed(self, batch: Any) -> None:
        """Records that the samples of ``batch`` (a collated batch or one
        sample, carrying ``_shard`` and ``_pos``) were consumed."""
        shards = batch["_shard"]
        pos = batch["_pos"]
        nshards = batch.get("_nshards") if isinstance(batch, dict) else None
        rows = _batch_rows(batch) if isinstance(pos, int) else None
        if rows is not None and isinstance(shards, int):
            # A batch of batched mode: `_pos` is its first sample's position.
            if isinstance(nshards, int):
                self._shards = nshards
            end = pos + rows
            if end > self._consumed.get(shards, 0):
                self._consumed[shards] = end
            return
        if nshards is not None:
            n = np.asarray(nshards.cpu() if isinstance(nshards, torch.Tensor) else nshards).reshape(-1)
            if len(n):
                self._shards = int(n[0])
        shards_a = np.asarray(shards.cpu() if isinstance(shards, torch.Tensor) else shards).reshape(-1)
        pos_a = np.asarray(pos.cpu() if isinstance(pos, torch.Tensor) else pos).reshape(-1)
        for s, p in zip(shards_a.tolist(), pos_a.tolist()):
            if p + 1 > self._consumed.get(s, 0):
                self._consumed[s] = p + 1

    # -- iteration --

    def _open(self) -> Dataset:
        return Dataset.open_at(self.manifest, self.backend, self.name)

    def _kinds_of(self, ds: Dataset) -> Dict[str, Dict[str, Any]]:
        if self._kinds is None:
            self._kinds = ds.schema
        return self._kinds

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        shard, shards = self._shard()
        if not self._resume:
            # A fresh pass over the epoch (the same order again); only a
            # loaded state makes an iteration skip what was consumed.
            self._consumed.pop(shard, None)
        if self._resume and self._shards is not None and self._consumed and self._shards != shards:
            raise ValueError(
                f"this state was saved with {self._shards} shards (ranks × workers); "
                f"resuming with {shards} would repeat or skip samples"
            )
        self._shards = shards
        in_main = get_worker_info() is None
        ds = self._open()  # lazily, in this process
        kinds = self._kinds_of(ds)
        skip = self._consumed.get(shard, 0)
        pos = 0
        seed = _epoch_seed(self.seed, self.epoch) if self.shuffle else None
        for batch in ds.iter_arrow_batches(self.read_batch_size, self.fields, seed, (shard, shards)):
            n = batch.num_rows
            if pos + n <= skip:
                pos += n
                continue
            start = max(0, skip - pos)
            cols = self._columns(batch, kinds, self.anchors)
            if self.batches is not None:
                out: Dict[str, Any] = {k: v[start:n] for k, v in cols.items()}
                m = n - start
                out["_shard"] = shard
                out["_pos"] = pos + start
                out["_nshards"] = shards
                if in_main:
                    self._consumed[shard] = pos + n
                yield self.transform(out) if self.transform is not None else out
                pos += n
                continue
            for i in range(start, n):
                sample: Dict[str, Any] = {k: v[i] for k, v in cols.items()}
                sample["_shard"] = shard
                sample["_pos"] = pos + i
                sample["_nshards"] = shards
                if in_main:
                    self._consumed[shard] = pos + i + 1
                yield self.transform(sample) if self.transform is not None else sample
            pos += n
        if in_main:
            self._resume = False

    @staticmethod
    def _columns(batch: Any, kinds: Dict[str, Dict[str, Any]], anchors: bool = True) -> Dict[str, Any]:
        """One Arrow batch → per-field columns indexable by row (tensors for
        numeric data, created once per batch); ``_anchor`` only if
        ``anchors``."""
        import pyarrow as pa

        out: Dict[str, Any] = {}
        for name, col in zip(batch.schema.names, batch.columns):
            if name == "_anchor":
                if not anchors:
                    continue
                out["_anchor"] = torch.from_numpy(col.to_numpy().astype(np.int64))
                continue
            desc = kinds.get(name, {})
            t = col.type
            if pa.types.is_fixed_size_list(t):
                flat = col.flatten().to_numpy(zero_copy_only=False)
                # One copy per batch: Arrow memory is immutable, a tensor is not.
                out[name] = torch.from_numpy(np.array(flat, dtype=np.float32).reshape(len(col), t.list_size))
            elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
                out[name] = col.to_pylist()
            elif pa.types.is_dictionary(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
                out[name] = col.to_pylist()
            elif col.null_count:
                out[name] = col.to_pylist()
            elif pa.types.is_timestamp(t):
                out[name] = torch.from_numpy(col.cast(pa.int64()).to_numpy().copy())
            elif pa.types.is_boolean(t):
                out[name] = torch.from_numpy(col.to_numpy(zero_copy_only=False).copy())
            elif pa.types.is_integer(t):
                out[name] = torch.from_numpy(col.to_numpy().astype(np.int64))
            elif pa.types.is_floating(t):
                out[name] = torch.from_numpy(col.to_numpy().astype(np.float64))
            else:  # pragma: no cover - every stored type is handled above
                out[name] = col.to_pylist()
            del desc
        return out

    def __len__(self) -> int:
        """Live records of the pinned version (all shards together)."""
        return self._open().records()

    def __getstate__(self) -> Dict[str, Any]:
        # Only settings cross fork/spawn; the native handle is opened in
        # the worker.
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return (
            f"DreamDBDataset(name={self.name!r}, manifest={self.manifest[:12]}, epoch={self.epoch}, "
            f"shuffle={self.shuffle}, seed={self.seed})"
        )
