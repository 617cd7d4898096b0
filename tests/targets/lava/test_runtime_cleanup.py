"""Lava runtimes are always stopped: runs in a row, some failing on purpose, leave no processes behind."""

import time

import psutil
import pytest

from factories import ff_graph, spikes
from spikesmith.compile.graph import flatten
from spikesmith.compile.plan import build_plan
from spikesmith.errors import SpikesmithError
from spikesmith.targets.lava.network import LavaNetwork


def _lava_child(p: psutil.Process) -> bool:
    try:
        # multiprocessing's resource tracker is one per interpreter and lives as long as it does
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE and \
            "resource_tracker" not in " ".join(p.cmdline())
    except psutil.NoSuchProcess:
        return False


def children_after(timeout=10.0):
    me = psutil.Process()
    deadline = time.time() + timeout
    while time.time() < deadline:
        alive = [c for c in me.children(recursive=True) if _lava_child(c)]
        if not alive:
            return []
        time.sleep(0.2)
    return alive


def run_many(n, tmp_path):
    plan = build_plan(flatten(ff_graph(seed=2)), 1e-3)
    x = spikes((5, 2, 6), 0.5, seed=0)
    failures = 0
    for i in range(n):
        net = LavaNetwork(plan, record=False)
        if i % 3 == 1:
            # recordings cannot be written: the run fails inside Lava's own processes
            with pytest.raises(SpikesmithError):
                net.run(x, recording_dir=str(tmp_path / "missing" / "dir"))
            failures += 1
        else:
            out, _, _ = net.run(x)
            assert out["n2"].shape == (5, 2, 3)
    return failures


def test_runs_with_failures_leave_no_processes(tmp_path):
    assert run_many(9, tmp_path) == 3
    assert children_after() == []


@pytest.mark.slow
def test_hundred_runs_leave_no_processes(tmp_path):
    assert run_many(100, tmp_path) == 33
    assert children_after() == []
