"""Fixtures of the evolution tests: real Dask and Ray clusters started on this machine (loopback only),
each in its own process group, torn down by PID with no orphans left."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env():
    return os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                         "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}


def _alive(pgid: int) -> list[int]:
    """PIDs of processes still running (not zombies) in process group ``pgid``."""
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat="], capture_output=True, text=True, check=True).stdout
    return [int(p) for p, g, s in (line.split()[:3] for line in out.splitlines()) if int(g) == pgid and "Z" not in s]


def _stop_groups(pgids, grace=15.0) -> list[int]:
    """SIGTERM each process group, SIGKILL what is left after ``grace`` s; return survivors (should be none)."""
    for g in pgids:
        try:
            os.killpg(g, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(g) for g in pgids):
        time.sleep(0.3)
    for g in pgids:
        if _alive(g):
            try:
                os.killpg(g, signal.SIGKILL)
            except ProcessLookupError:
                pass
    time.sleep(1.0)
    return [p for g in pgids for p in _alive(g)]


@pytest.fixture
def dask_cluster(tmp_path):
    """A Dask scheduler and two workers, each its own process group; yields (address, worker pgids)."""
    env = _env()
    sched_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", sched_file], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sched_file.exists(), "the dask scheduler did not start"
        for i in range(2):
            procs.append(subprocess.Popen([BIN / "dask", "worker", "--scheduler-file", sched_file, "--nthreads", "1",
                                           "--nworkers", "1", "--host", "127.0.0.1", "--no-dashboard",
                                           "--name", f"w{i}"], env=env, start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        from dask.distributed import Client

        with Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        yield address, [p.pid for p in procs[1:]]
    finally:
        survivors = _stop_groups([p.pid for p in procs])
        for p in procs:
            p.wait(timeout=10)
        assert survivors == [], f"orphaned dask processes {survivors}"


@pytest.fixture
def ray_head():
    """``ray start --head`` on loopback in its own process group and temp dir; yields the GCS address."""
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: ray's socket paths must fit 107 bytes
    proc = subprocess.Popen([BIN / "ray", "start", "--head", "--node-ip-address", "127.0.0.1", "--port", "0",
                             "--num-cpus", "2", "--temp-dir", temp, "--include-dashboard", "false",
                             "--disable-usage-stats"], env=_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out
        m = re.search(r"ray start --address='([^']+)'", out)
        assert m, out
        yield m.group(1)
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        survivors = _stop_groups([proc.pid], grace=5.0)
        assert survivors == [], f"orphaned ray processes {survivors}"
