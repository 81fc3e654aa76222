"""The examples run on small data, the tutorial's Python blocks run (so it
cannot rot), and the examples type-check under `mypy --strict` against the
package's stubs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PACKAGE, REPO

EXAMPLES = REPO / "examples"
TUTORIAL = REPO / "docs" / "tutorial.md"


def run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    # Temporary files (the tutorial's `mkdtemp`) go under the test's own
    # directory, which pytest removes, not into the machine's /tmp.
    env = dict(os.environ, PYTHONUNBUFFERED="1", TMPDIR=str(cwd))
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_linear_probe_runs(tmp_path: Path) -> None:
    out = run([str(EXAMPLES / "linear_probe.py"), "--backend", str(tmp_path), "--records", "400", "--epochs", "60"], tmp_path)
    acc = float(re.search(r"probe accuracy ([0-9.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    assert acc > 0.9, out.stdout


def sweep(tmp_path: Path, bits: int, refine: int = 4) -> list[dict[str, object]]:
    out = run(
        [str(EXAMPLES / "sweep_runner.py"), "--backend", str(tmp_path / f"b{bits}"), "--records", "600",
         "--queries", "5", "--nprobe", "1", "16", "--refine", str(refine), "--bits", str(bits)],
        tmp_path,
    )
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 2
    assert len({r["manifest"] for r in rows}) == 1  # one pinned version for the whole sweep
    return rows


def test_sweep_runner_runs(tmp_path: Path) -> None:
    rows = sweep(tmp_path, bits=0)
    full = [r for r in rows if r["nprobe"] == 16][0]
    assert full["recall_at_k"] == 1.0  # raw codes, every cell probed: exact


def test_sweep_runner_rabitq_rerank_is_exact_at_full_probe(tmp_path: Path) -> None:
    """1-bit codes + exact rerank of k × 10 candidates from the raw rows."""
    rows = sweep(tmp_path, bits=1, refine=10)
    full = [r for r in rows if r["nprobe"] == 16][0]
    assert full["recall_at_k"] >= 0.95


def test_training_recipe_runs_and_resumes(tmp_path: Path) -> None:
    base = [str(EXAMPLES / "training_recipe.py"), "--backend", str(tmp_path), "--records", "512", "--batch-size", "32"]
    full = json.loads(run(base + ["--epochs", "2"], tmp_path).stdout.strip().splitlines()[-1])
    assert full["seen"] == 2 * 512
    first = json.loads(run(base + ["--name", "r2", "--epochs", "1", "--stop-after", "5"], tmp_path).stdout.splitlines()[-1])
    assert first["seen"] == 5 * 32
    rest = json.loads(run(base + ["--name", "r2", "--epochs", "1", "--resume"], tmp_path).stdout.splitlines()[-1])
    assert first["seen"] + rest["seen"] == 512  # no repeat, no gap


def tutorial_code() -> str:
    text = TUTORIAL.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 8, "the tutorial lost its code blocks"
    return "\n\n".join(blocks)


def test_tutorial_code_blocks_run(tmp_path: Path) -> None:
    script = tmp_path / "tutorial.py"
    script.write_text(tutorial_code())
    run([str(script)], tmp_path)


def test_examples_pass_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(PACKAGE / "pyproject.toml"),
         "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
         *(str(p) for p in sorted(EXAMPLES.glob("*.py")))],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_stubs_match_the_module(tmp_path: Path) -> None:
    """stubtest: the `_native.pyi` stubs and the compiled module agree."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "dreamdb_dataset._native", "--ignore-missing-stub"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_operator_recall_check_gates_on_recall(tmp_path: Path) -> None:
    """examples/operator/recall-check.py (the rebuild workflow's gate):
    exit 0 with the measured recall at or above the threshold, 4 above it."""
    import numpy as np

    import dreamdb_dataset as vd

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(8, 24)).astype(np.float32)
    x = (centres[rng.integers(0, 8, 800)] + 0.3 * rng.normal(size=(800, 24))).astype(np.float32)
    schema = vd.Schema().add_embedding("emb", dim=24, algorithm="ivf", k=8)
    ds = vd.Dataset.create("gate", schema, backend=str(tmp_path / "b"))
    ds.append_many({"emb": x})
    np.save(tmp_path / "q.npy", x[:20] + 0.01)
    script = str(EXAMPLES / "operator" / "recall-check.py")
    args = [script, "--backend", str(tmp_path / "b"), "--dataset", "gate", "--field", "emb",
            "--queries", str(tmp_path / "q.npy"), "--nprobe", "8", "--refine", "8", "--json"]
    out = run([*args, "--fail-below", "0.9"], tmp_path)
    report = json.loads(out.stdout)
    assert report["passed"] and report["recall"] >= 0.9, report
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    strict = subprocess.run([sys.executable, *args, "--fail-below", "1.01"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert strict.returncode == 4, strict.stdout + strict.stderr
    assert json.loads(strict.stdout)["passed"] is False
