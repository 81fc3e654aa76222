"""The seed document's quickstart (shared/seeds/004) as written, with the
MinIO URL replaced by a local directory (the default kind of backend) and
`clip_embed`/`jpeg_bytes` by small stand-ins."""

from __future__ import annotations

import numpy as np

import dreamdb_dataset as vd


def clip_embed(text: str) -> np.ndarray:
    rng = np.random.default_rng(abs(hash(text)) % (2**32))
    return rng.standard_normal(512).astype(np.float32)


def test_seed_quickstart_runs_as_written(backend: str) -> None:
    jpeg_bytes = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"
    clip_vec = clip_embed("a tabby cat")

    # Define a schema with image + CLIP embedding + label (chainable)
    schema = (vd.Schema()
              .add_image("image", mime="jpeg")
              .add_embedding("embedding", dim=512, algorithm="dreamdb.ivf-cosine", rerank=True)
              .add_scalar_categorical("label"))

    ds = vd.Dataset.create("imagenet-1k", schema, backend=backend)

    # Append a batch of samples (one dict per row, keyed by field name)
    ds.append_many([
        {"image": jpeg_bytes, "embedding": clip_vec, "label": "tabby cat"},
    ] + [
        {"image": jpeg_bytes, "embedding": clip_embed(f"img {i}"), "label": f"class {i % 7}"}
        for i in range(63)
    ])

    # Snapshot the dataset at a point in time (for reproducible training)
    v = ds.snapshot("baseline-2026-05-18")

    # Query: top-K nearest neighbors via spatial indexing
    hits = ds.iter_vector(field="embedding", query=clip_embed("a tabby cat"), top_k=10)
    first = next(iter(hits))
    assert len(first["_time_anchors"]) == 10

    # Sharded parallel ingest across N workers, then merge back
    for n in range(3):
        w = ds.branch(f"worker-{n}")
        w.append_many([{"image": jpeg_bytes, "embedding": clip_embed(f"w{n}-{i}"), "label": "w"} for i in range(4)])
    ds.merge_many(["worker-0", "worker-1", "worker-2"])
    assert ds.records() == 64 + 12

    # GDPR-style deletion (read-side suppression)
    anchor = int(first["_time_anchors"][0])
    ds.delete(anchors=[anchor], reason="gdpr")
    assert ds.get(anchor) is None

    # Time-travel: open any prior snapshot
    old = vd.Dataset.open_at(v, backend=backend)
    assert old.records() == 64
    assert old.get(anchor) is not None


def test_seed_hello_world(backend: str) -> None:
    s = vd.Schema().add_embedding("v", dim=32, algorithm="dreamdb.lsh-cosine")
    ds = vd.Dataset.create("hello", s, backend=backend)

    samples = [{"v": np.random.randn(32).astype(np.float32)} for _ in range(1000)]
    ds.append_many(samples)

    q = np.random.randn(32).astype(np.float32).tolist()
    batches = ds.iter_vector(field="v", query=q, top_k=5)
    anchors = []
    for batch in batches:
        for anchor in batch["_time_anchors"]:
            anchors.append(anchor)
    assert len(anchors) == 5
