"""Shared fixtures: a fresh local-directory backend per test, small
deterministic data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

# Hypothesis keeps a cache directory; keep it out of the repository.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "dreamdb-hypothesis"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import dreamdb_dataset as vd  # noqa: E402

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
REPO = PACKAGE.parent


@pytest.fixture
def backend(tmp_path: Path) -> str:
    """A fresh local directory backend (a plain path: the default kind)."""
    d = tmp_path / "store"
    d.mkdir()
    return str(d)


def unit_vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def make_rows(n: int, dim: int = 8, seed: int = 0, start: int = 0) -> List[Dict[str, Any]]:
    vecs = unit_vectors(n, dim, seed)
    return [
        {
            "embedding": vecs[i],
            "label": ["cat", "dog", "bird"][(start + i) % 3],
            "idx": start + i,
            "score": float(start + i) / 10.0,
        }
        for i in range(n)
    ]


def small_schema(dim: int = 8, bits: Optional[int] = 1) -> vd.Schema:
    return (
        vd.Schema()
        .add_embedding("embedding", dim=dim, algorithm="ivf", k=4, bits=bits)
        .add_scalar_categorical("label")
        .add_scalar_int("idx")
        .add_scalar_float("score")
    )


@pytest.fixture
def small(backend: str) -> vd.Dataset:
    """A dataset of 4 appends × 25 records (idx 0..99)."""
    ds = vd.Dataset.create("small", small_schema(), backend=backend)
    for a in range(4):
        ds.append_many(make_rows(25, seed=a, start=25 * a))
    return ds


def s3_url() -> str:
    url = os.environ.get("DREAMDB_TEST_S3_URL", "")
    if not url:
        pytest.fail(
            "DREAMDB_TEST_S3_URL is not set: this test needs a real S3 server. Run "
            "`scripts/s3-server start` and `eval \"$(scripts/s3-server env)\"` first "
            "(scripts/test does both)."
        )
    return url.rstrip("/")
