"""The same verbs against a real S3-compatible server (Ceph radosgw started
by scripts/test). Fails, does not skip, when DREAMDB_TEST_S3_URL is unset."""

from __future__ import annotations

import multiprocessing as mp
import uuid

import numpy as np
from torch.utils.data import DataLoader

import dreamdb_dataset as vd
from dreamdb_dataset.torch import DreamDBDataset
from conftest import make_rows, s3_url, small_schema


def test_s3_append_query_iterate_version_and_load() -> None:
    backend = f"{s3_url()}/py-{uuid.uuid4().hex[:12]}"
    ds = vd.Dataset.create("s3-small", small_schema(), backend=backend)
    for a in range(3):
        ds.append_many(make_rows(20, seed=a, start=20 * a))
    v = ds.snapshot("v1")
    rows = make_rows(20, seed=1, start=20)
    res = ds.query("embedding", rows[4]["embedding"], top_k=3, nprobe=4, fields=["idx"])
    assert res[0]["idx"] == 24
    t = ds.to_table(["idx"])
    assert sorted(t.column("idx").to_pylist()) == list(range(60))
    ds.delete([int(res[0].anchor)], reason="gdpr")
    assert ds.records() == 59
    assert vd.Dataset.open_at(v).records() == 60
    # Forked DataLoader workers each open their own S3 connections.
    data = DreamDBDataset("s3-small", backend=backend, seed=2)
    loader = DataLoader(data, batch_size=8, num_workers=2, multiprocessing_context=mp.get_context("fork"))
    seen = [i for b in loader for i in b["idx"].tolist()]
    assert sorted(seen) == sorted(set(range(60)) - {24})
    assert np.uint64(len(seen)) == 59
