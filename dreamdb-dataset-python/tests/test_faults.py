"""The Python binding under faults (issue 11).

- Crashes: a Python process appending through the binding is SIGKILLed at
  random points, several times; after each kill the dataset opens from a
  new handle, every batch the child reported as acknowledged is there
  exactly once, no batch is half visible, and each acknowledged batch's
  first vector finds itself.
- Corruption: flipping or truncating the bytes of a stored segment makes
  the reads that touch it raise ``IntegrityError`` (kind ``integrity``,
  naming the object); the reads never crash the interpreter and never
  return data that was not written.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Set

import numpy as np
import pytest

import dreamdb_dataset as vd

ROWS = 48
DIM = 16
BLOB = 2048

# The child: appends batch after batch and prints "ACK i" once
# append_many(i) has returned (the batch is then acknowledged).
CHILD = r"""
import sys
import numpy as np
import dreamdb_dataset as vd

sys.path.insert(0, sys.argv[3])
from test_faults import batch

ds = vd.Dataset.open("crash", backend=sys.argv[1])
i = int(sys.argv[2])
while True:
    ds.append_many(batch(i))
    print(f"ACK {i}", flush=True)
    i += 1
"""


def schema() -> vd.Schema:
    return (
        vd.Schema()
        .add_embedding("embedding", dim=DIM, algorithm="ivf", k=8, bits=1)
        .add_blob("payload")
        .add_scalar_int("idx")
    )


def vectors(i: int) -> np.ndarray:
    rng = np.random.default_rng(1_000 + i)
    return rng.standard_normal((ROWS, DIM)).astype(np.float32)


def payload(i: int, r: int) -> bytes:
    return bytes([(i * 31 + r * 7 + j) % 251 for j in range(BLOB)])


def batch(i: int) -> Dict[str, Any]:
    """Batch ``i``: ROWS records with idx ``i * ROWS + r``."""
    return {
        "embedding": vectors(i),
        "payload": [payload(i, r) for r in range(ROWS)],
        "idx": np.arange(i * ROWS, (i + 1) * ROWS, dtype=np.int64),
    }


def idx_column(ds: vd.Dataset) -> List[int]:
    out: List[int] = []
    for b in ds.iter_arrow_batches(batch_size=4096, fields=["idx"]):
        out.extend(b.column("idx").to_pylist())
    return out


def test_sigkilled_python_writer_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    backend = str(tmp_path / "store")
    ds = vd.Dataset.create("crash", schema(), backend=backend)
    ds.append_many(batch(0))
    acked: Set[int] = {0}
    rng = random.Random(int(os.environ.get("DREAMDB_SEED", "20261124")))
    kills = int(os.environ.get("DREAMDB_PY_KILLS", "5"))
    next_batch = 1
    landed_unacked = 0
    for k in range(kills):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, backend, str(next_batch), str(Path(__file__).parent)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Let it import and append for a while, then kill it mid-flight.
        time.sleep(rng.uniform(1.0, 2.5))
        assert child.poll() is None, f"kill {k}: the child died by itself:\n{child.stderr.read() if child.stderr else ''}"
        os.kill(child.pid, signal.SIGKILL)
        out, err = child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL, err
        these = [int(line.split()[1]) for line in out.splitlines() if line.startswith("ACK ")]
        assert these, f"kill {k}: the child acknowledged nothing before the kill:\n{err}"
        acked.update(these)
        tried = max(these) + 1  # the batch in flight when the kill came

        fresh = vd.Dataset.open("crash", backend=backend)
        idx = idx_column(fresh)
        assert len(idx) == len(set(idx)), f"kill {k}: a record is there twice"
        present = {v // ROWS for v in idx}
        for b in present:
            # All or nothing: a visible batch is whole.
            assert sum(1 for v in idx if v // ROWS == b) == ROWS, f"kill {k}: batch {b} half visible"
        assert acked <= present, f"kill {k}: acknowledged batches lost: {sorted(acked - present)}"
        assert present <= acked | {tried}, f"kill {k}: batches never appended: {sorted(present - acked - {tried})}"
        if tried in present:
            landed_unacked += 1
            acked.add(tried)
        assert fresh.records() == len(acked) * ROWS
        for b in sorted(these)[:: max(1, len(these) // 4)]:
            hits = fresh.query("embedding", vectors(b)[0], top_k=5, nprobe=8, refine_factor=16, fields=["idx"])
            assert hits[0]["idx"] == b * ROWS, f"kill {k}: batch {b}'s first vector is not found"
        rec = fresh.get(int(hits[0].anchor))
        assert rec is not None and rec["payload"] == payload(b, 0)
        next_batch = tried + 1
    print(f"python writer: {kills} SIGKILLs survived, {len(acked)} batches whole, {landed_unacked} landed unacknowledged (whole)")


def segment_files(root: Path) -> List[Path]:
    """Every stored object file bigger than 1 KiB (segments: buckets, vector
    storage, blob segments), largest first."""
    files = [p for p in root.rglob("*") if p.is_file() and "refs" not in p.parts and p.stat().st_size > 1024]
    return sorted(files, key=lambda p: -p.stat().st_size)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_segments_raise_integrity_errors_never_wrong_data(tmp_path: Path, damage: str) -> None:
    backend = tmp_path / "store"
    ds = vd.Dataset.create("bad", schema(), backend=str(backend))
    for i in range(3):
        ds.append_many(batch(i))
    expected = {i * ROWS + r: payload(i, r) for i in range(3) for r in range(ROWS)}
    files = segment_files(backend)
    assert len(files) >= 6, files
    noticed = 0
    for target in files:
        original = target.read_bytes()
        damaged = bytearray(original)
        if damage == "flip":
            damaged[len(damaged) * 3 // 4] ^= 0x10
        else:
            del damaged[len(damaged) // 2:]
        target.write_bytes(bytes(damaged))
        try:
            fresh = vd.Dataset.open("bad", backend=str(backend))
            try:
                seen = 0
                for b in fresh.iter_arrow_batches(batch_size=4096, fields=["idx", "payload", "embedding"]):
                    for i, p, e in zip(b.column("idx").to_pylist(), b.column("payload").to_pylist(),
                                       b.column("embedding").to_pylist()):
                        assert p == expected[i], f"{target.name}: wrong payload for idx {i}"
                        np.testing.assert_array_equal(np.asarray(e, np.float32), vectors(i // ROWS)[i % ROWS])
                        seen += 1
                assert seen == len(expected)
                hits = fresh.query("embedding", vectors(1)[3], top_k=ROWS * 3, nprobe=8, refine_factor=4, fields=["idx"])
                clean = ds.query("embedding", vectors(1)[3], top_k=ROWS * 3, nprobe=8, refine_factor=4, fields=["idx"])
                assert [(h["idx"], h.distance) for h in hits] == [(h["idx"], h.distance) for h in clean], target.name
            except vd.IntegrityError as e:
                assert e.kind == "integrity"
                assert target.name[:12] in str(e), f"the error does not name {target.name}: {e}"
                noticed += 1
        finally:
            target.write_bytes(original)
    print(f"python reads, {damage}: {len(files)} damaged segments, {noticed} raised IntegrityError, none gave wrong data")
    assert noticed >= len(files) // 2, f"only {noticed} of {len(files)} damaged segments were noticed"
