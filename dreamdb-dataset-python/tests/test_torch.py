"""`DreamDBDataset` with real torch DataLoaders: exactly once per epoch
under fork and spawn workers, a new order per epoch, disjoint DDP ranks,
resume without repeats, pinning against concurrent appends."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
from typing import Any, Dict, List

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import dreamdb_dataset as vd
from dreamdb_dataset.torch import DreamDBDataset
from conftest import make_rows

N = 100


def idx_of(loader: Any) -> List[int]:
    out: List[int] = []
    for batch in loader:
        out.extend(batch["idx"].tolist())
    return out


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_two_workers_see_every_record_once_per_epoch(small: vd.Dataset, start_method: str) -> None:
    data = DreamDBDataset("small", backend=small.backend, seed=3, batch_size=8)
    loader = DataLoader(
        data,
        batch_size=10,
        num_workers=2,
        multiprocessing_context=mp.get_context(start_method),
        persistent_workers=False,
    )
    data.set_epoch(0)
    first = idx_of(loader)
    assert sorted(first) == list(range(N)), Counter(first).most_common(3)
    data.set_epoch(1)
    second = idx_of(loader)
    assert sorted(second) == list(range(N))
    assert second != first  # a new order each epoch
    data.set_epoch(0)
    assert idx_of(loader) == first  # and the same order for the same epoch


def test_samples_are_typed_tensors(small: vd.Dataset) -> None:
    data = DreamDBDataset("small", backend=small.backend, shuffle=False)
    sample = next(iter(data))
    assert sample["embedding"].dtype == torch.float32 and sample["embedding"].shape == (8,)
    assert sample["idx"].dtype == torch.int64 and int(sample["idx"]) == 0
    assert sample["score"].dtype == torch.float64
    assert isinstance(sample["label"], str)
    assert int(sample["_anchor"]) > 0
    batch = next(iter(DataLoader(data, batch_size=4)))
    assert batch["embedding"].shape == (4, 8) and batch["idx"].tolist() == [0, 1, 2, 3]


def test_ddp_ranks_are_disjoint_and_complete(small: vd.Dataset) -> None:
    seen: List[List[int]] = []
    for rank in range(2):
        data = DreamDBDataset("small", backend=small.backend, seed=1, rank=rank, world_size=2)
        seen.append(idx_of(DataLoader(data, batch_size=7, num_workers=2)))
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(N))
    assert seen[0] and seen[1]


def test_state_dict_resume_continues_without_repeats(small: vd.Dataset) -> None:
    # In-process iteration tracks its own position.
    data = DreamDBDataset("small", backend=small.backend, seed=5)
    data.set_epoch(2)
    it = iter(data)
    head = [int(next(it)["idx"]) for _ in range(37)]
    state = data.state_dict()
    resumed = DreamDBDataset("small", backend=small.backend, seed=0)
    resumed.load_state_dict(state)
    tail = [int(s["idx"]) for s in resumed]
    assert not set(head) & set(tail)
    assert sorted(head + tail) == list(range(N))
    full = DreamDBDataset("small", backend=small.backend, seed=5)
    full.set_epoch(2)
    assert head + tail == [int(s["idx"]) for s in full]


def test_state_dict_resume_with_workers(small: vd.Dataset) -> None:
    data = DreamDBDataset("small", backend=small.backend, seed=9)
    loader = DataLoader(data, batch_size=6, num_workers=2)
    seen: List[int] = []
    for i, batch in enumerate(loader):
        seen.extend(batch["idx"].tolist())
        data.mark_consumed(batch)
        if i == 4:
            break
    state = data.state_dict()
    assert sum(state["consumed"].values()) == len(seen) == 30
    resumed = DreamDBDataset("small", backend=small.backend)
    resumed.load_state_dict(state)
    rest = idx_of(DataLoader(resumed, batch_size=6, num_workers=2))
    assert not set(seen) & set(rest)
    assert sorted(seen + rest) == list(range(N))
    with pytest.raises(ValueError):
        other = DreamDBDataset("small", backend=small.backend)
        other.load_state_dict(state)
        next(iter(other))  # 1 shard in-process, the state has 2


def test_epoch_is_pinned_against_concurrent_appends(small: vd.Dataset) -> None:
    data = DreamDBDataset("small", backend=small.backend, shuffle=False)
    it = iter(data)
    first = [int(next(it)["idx"]) for _ in range(10)]
    small.append_many(make_rows(5, seed=42, start=N))  # lands mid-epoch
    rest = [int(s["idx"]) for s in it]
    assert sorted(first + rest) == list(range(N))
    data.set_epoch(1)  # following main: the next epoch sees the append
    assert sorted(int(s["idx"]) for s in data) == list(range(N + 5))
    pinned = DreamDBDataset("small", backend=small.backend, version=small.snapshot("pin"))
    small.append_many(make_rows(5, seed=43, start=N + 5))
    pinned.set_epoch(7)
    assert len([s for s in pinned]) == N + 5


def test_transform_and_blobs(backend: str) -> None:
    schema = vd.Schema().add_embedding("e", dim=2, algorithm="flat").add_image("img", mime="png")
    ds = vd.Dataset.create("imgs", schema, backend=backend)
    ds.append_many([{"e": [1.0, float(i)], "img": bytes([i]) * 3} for i in range(6)])

    def decode(sample: Dict[str, Any]) -> Dict[str, Any]:
        sample["img"] = torch.tensor(list(sample["img"]), dtype=torch.uint8)
        return sample

    data = DreamDBDataset("imgs", backend=backend, shuffle=False, transform=decode)
    batch = next(iter(DataLoader(data, batch_size=6)))
    assert batch["img"].shape == (6, 3)
    assert batch["img"][:, 0].tolist() == list(range(6))
    raw = next(iter(DreamDBDataset("imgs", backend=backend, shuffle=False)))
    assert raw["img"] == b"\x00\x00\x00"


def _child_reads(ds: vd.Dataset, q: Any) -> None:
    q.put(ds.records())


def test_handle_used_after_fork_reopens_itself(small: vd.Dataset) -> None:
    """A handle opened (and used) in the parent works in a forked child:
    the child builds its own runtime instead of blocking on the parent's."""
    assert small.records() == N
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_reads, args=(small, q))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert q.get(timeout=5) == N
    assert np.uint64(small.records()) == N


def test_batched_mode_yields_the_same_samples_as_collated_batches(small: vd.Dataset) -> None:
    """`batches=n` yields dicts of tensors of up to n samples, in the same
    order and with the same values as sample mode; resuming works, with 2
    workers every record comes once."""
    plain = DreamDBDataset("small", backend=small.backend, seed=4)
    plain.set_epoch(1)
    samples = list(plain)
    batched = DreamDBDataset("small", backend=small.backend, seed=4, batches=16)
    batched.set_epoch(1)
    got = list(DataLoader(batched, batch_size=None))
    assert all(len(b["idx"]) <= 16 for b in got) and len(got) >= N // 16
    assert got[0]["embedding"].dtype == torch.float32 and got[0]["embedding"].shape[1] == 8
    assert torch.cat([b["idx"] for b in got]).tolist() == [int(s["idx"]) for s in samples]
    emb = torch.cat([b["embedding"] for b in got])
    assert torch.equal(emb, torch.stack([s["embedding"] for s in samples]))
    assert [lab for b in got for lab in b["label"]] == [s["label"] for s in samples]
    # `_pos` is each batch's first position; the batch's samples follow it.
    assert [p for b in got for p in range(b["_pos"], b["_pos"] + len(b["idx"]))] == list(range(N))
    assert all(isinstance(b["_shard"], int) and b["_nshards"] == 1 for b in got)
    # mark_consumed on batches (as a training loop calls it) gives the same
    # state as iterating in the main process.
    marked = DreamDBDataset("small", backend=small.backend, seed=4, batches=16)
    marked.set_epoch(1)
    for b in DataLoader(marked, batch_size=None, num_workers=2):
        marked.mark_consumed(b)
    assert marked.state_dict()["shards"] == 2
    assert sum(marked.state_dict()["consumed"].values()) == N
    # Resume after two batches.
    again = DreamDBDataset("small", backend=small.backend, seed=4, batches=16)
    again.set_epoch(1)
    it = iter(again)
    head = [next(it), next(it)]
    resumed = DreamDBDataset("small", backend=small.backend, batches=16)
    resumed.load_state_dict(again.state_dict())
    tail = torch.cat([b["idx"] for b in resumed]).tolist()
    assert torch.cat([b["idx"] for b in head]).tolist() + tail == [int(s["idx"]) for s in samples]
    # Workers: every record once.
    two = DreamDBDataset("small", backend=small.backend, seed=4, batches=8)
    seen = torch.cat([b["idx"] for b in DataLoader(two, batch_size=None, num_workers=2)]).tolist()
    assert sorted(seen) == list(range(N))
    with pytest.raises(ValueError):
        DreamDBDataset("small", backend=small.backend, batches=0)
    # `anchors=False`: the same batches without the `_anchor` tensor, and
    # positions still resume exactly.
    assert all("_anchor" in b for b in got)
    bare = DreamDBDataset("small", backend=small.backend, seed=4, batches=16, anchors=False)
    bare.set_epoch(1)
    bare_got = list(DataLoader(bare, batch_size=None, num_workers=2))
    assert all("_anchor" not in b for b in bare_got)
    assert sorted(torch.cat([b["idx"] for b in bare_got]).tolist()) == list(range(N))
    first = DreamDBDataset("small", backend=small.backend, seed=4, batches=16, anchors=False)
    first.set_epoch(1)
    it = iter(first)
    head = [next(it)]
    rest = DreamDBDataset("small", backend=small.backend, batches=16, anchors=False)
    rest.load_state_dict(first.state_dict())
    tail = torch.cat([b["idx"] for b in rest]).tolist()
    assert head[0]["idx"].tolist() + tail == [int(s["idx"]) for s in samples]
