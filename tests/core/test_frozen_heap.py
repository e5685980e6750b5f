"""FrozenHeap: a run freezes the objects that exist before it fans out (full garbage-collector
passes then skip them) and the outermost run unfreezes, leaving a process's own freeze alone."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from compare.deployments_file import local_deployments
from compare.runner import run
from compare.runner.frozen_heap import FrozenHeap


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_nested_runs_unfreeze_once_at_the_outermost_exit() -> None:
    with FrozenHeap() as outer:
        assert gc.get_freeze_count() > 0
        with FrozenHeap():
            pass
        assert gc.get_freeze_count() > 0  # the inner run does not undo the outer's freeze
        made_since = [[] for _ in range(100)]
        before = gc.get_freeze_count()
        outer.refreeze()
        assert gc.get_freeze_count() >= before + len(made_since)
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_its_own_objects_keeps_them_frozen() -> None:
    gc.freeze()
    mine = gc.get_freeze_count()
    with FrozenHeap():
        pass
    assert gc.get_freeze_count() >= mine > 0


def test_a_run_is_frozen_while_it_fans_out_and_not_after(sim_endpoint, monkeypatch) -> None:
    seen: list[int] = []
    refreeze = FrozenHeap.refreeze

    def spy(self: FrozenHeap) -> None:
        refreeze(self)
        seen.append(gc.get_freeze_count())

    monkeypatch.setattr(FrozenHeap, "refreeze", spy)
    deps = local_deployments(sim_endpoint, names=["sim-fast"])
    res = run(["one", "two", "three"], deps, progress=False, max_tokens=4)
    assert (res.frame["status"] == "ok").all()
    assert len(seen) == 1 and seen[0] > 1000  # modules, clients: everything made before
    assert gc.get_freeze_count() == 0
