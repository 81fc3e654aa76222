"""A Hypothesis state machine of snapshot/branch/merge/delete against a
Python model: per branch, the set of appended record ids and the set of
deleted ones (live = appended − deleted); merges union both; tags freeze a
branch's live set."""

from __future__ import annotations

import shutil
import tempfile
from typing import Dict, FrozenSet, Set, Tuple

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

import dreamdb_dataset as vd

DIM = 4


def rows(ids: range) -> list:
    rng = np.random.default_rng(ids.start)
    return [{"v": rng.standard_normal(DIM).astype(np.float32) + 0.1, "id": i} for i in ids]


class VersionControl(RuleBasedStateMachine):
    branches = Bundle("branches")

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="dreamdb-model-")
        schema = vd.Schema().add_embedding("v", dim=DIM, algorithm="ivf", k=2).add_scalar_int("id")
        main = vd.Dataset.create("model", schema, backend=self.dir)
        self.handles: Dict[str, vd.Dataset] = {"main": main}
        self.next_id = 0
        self.anchor: Dict[int, int] = {}
        # The index is trained by the first append; every branch starts after it.
        self.model: Dict[str, Tuple[Set[int], Set[int]]] = {"main": (set(), set())}
        self._append("main", 8)
        self.tags: Dict[str, Tuple[str, FrozenSet[int]]] = {}
        self.n_branches = 0

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _append(self, branch: str, n: int) -> None:
        ids = range(self.next_id, self.next_id + n)
        self.next_id += n
        r = self.handles[branch].append_many(rows(ids))
        for i, a in zip(ids, r.anchors.tolist()):
            self.anchor[i] = a
        self.model[branch][0].update(ids)

    def live(self, branch: str) -> Set[int]:
        appended, deleted = self.model[branch]
        return appended - deleted

    @rule(target=branches)
    def start(self) -> str:
        return "main"

    @rule(branch=branches, n=st.integers(1, 5))
    def append(self, branch: str, n: int) -> None:
        self._append(branch, n)

    @rule(target=branches, source=branches)
    def branch(self, source: str) -> str:
        self.n_branches += 1
        name = f"b{self.n_branches}"
        self.handles[name] = self.handles[source].branch(name)
        a, d = self.model[source]
        self.model[name] = (set(a), set(d))
        return name

    @rule(into=branches, other=branches)
    def merge(self, into: str, other: str) -> None:
        if into == other:
            return
        self.handles[into].merge(other)
        a, d = self.model[into]
        oa, od = self.model[other]
        self.model[into] = (a | oa, d | od)

    @rule(branch=branches, data=st.data())
    def delete(self, branch: str, data: st.DataObject) -> None:
        live = sorted(self.live(branch))
        if not live:
            return
        victims = data.draw(st.lists(st.sampled_from(live), min_size=1, max_size=3, unique=True))
        n = self.handles[branch].delete([self.anchor[i] for i in victims], reason="model")
        assert n == len(victims)
        self.model[branch][1].update(victims)

    @rule(branch=branches)
    def snapshot(self, branch: str) -> None:
        label = f"t{len(self.tags)}"
        v = self.handles[branch].snapshot(label)
        self.tags[label] = (v.manifest, frozenset(self.live(branch)))

    @rule(branch=branches, data=st.data())
    def delete_unknown_anchor_is_refused(self, branch: str, data: st.DataObject) -> None:
        before = self.handles[branch].manifest_hash()
        try:
            self.handles[branch].delete([10**15 + data.draw(st.integers(0, 1000))], reason="x")
        except vd.InvalidInputError as e:
            assert e.kind == "invalid-input"
        else:
            raise AssertionError("deleting an unknown anchor must fail")
        assert self.handles[branch].manifest_hash() == before

    @invariant()
    def branches_match_the_model(self) -> None:
        for name, ds in self.handles.items():
            live = self.live(name)
            assert ds.records() == len(live), name
            t = ds.to_table(["id"])
            got = set() if t is None else set(t.column("id").to_pylist())
            assert got == live, (name, sorted(got ^ live))

    @precondition(lambda self: bool(self.tags))
    @invariant()
    def tags_are_frozen(self) -> None:
        for label, (manifest, live) in self.tags.items():
            old = vd.Dataset.open_at(label, backend=self.dir, name="model")
            assert old.manifest_hash() == manifest
            t = old.to_table(["id"])
            assert (set() if t is None else set(t.column("id").to_pylist())) == live


VersionControl.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=8,
    deadline=None,
    database=None,  # no .hypothesis directory in the repository
    suppress_health_check=[HealthCheck.too_slow],
)
TestVersionControl = VersionControl.TestCase
