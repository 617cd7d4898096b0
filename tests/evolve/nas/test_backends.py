"""Backends: one seeded evaluation mapped in-process, on a process pool, and on real Dask and Ray
clusters started on this machine (bound to loopback) and attached by address; lost workers."""

from __future__ import annotations

import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from spikesmith.data.probe import ProbeRef
from spikesmith.errors import InputError
from spikesmith.evolve.nas import backends
from spikesmith.evolve.nas.backends import NasContextRef, make_backend, resolve_context
from spikesmith.evolve.nas.space import NasSpace

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
SPACE = NasSpace(cells=2)
REF = NasContextRef(space=SPACE, probe=ProbeRef(name="digits", seed=1, steps=3, batch_size=24), channels=6,
                    seed=5, variant="label", all_variants=True)


def _genomes(n=8, seed=11):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        g = SPACE.sample(rng)
        if g not in out:
            out.append(g)
    return out


def _clean(results):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in results]


@pytest.fixture(scope="module")
def reference():
    genomes = _genomes()
    with make_backend("local", REF) as be:
        return genomes, _clean(be.map(genomes))


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


def test_ref_is_small_and_built_once_per_process():
    ctx = resolve_context(REF)
    assert resolve_context(REF) is ctx and ctx.batches is REF.probe.load()
    assert ctx.batches[0][0].shape == (3, 24, 1, 8, 8)
    assert len(pickle.dumps(REF)) < 4096 < len(pickle.dumps(ctx))


def test_local_and_process_pool_agree(reference):
    genomes, expected = reference
    with make_backend("process", REF, workers=2) as be:
        assert _clean(be.map(genomes)) == expected
    # a plain EvalContext (shipped whole) gives the same numbers as its ref
    with make_backend("local", resolve_context(REF)) as be:
        assert _clean(be.map(genomes[:3])) == expected[:3]


def test_process_pool_survives_a_worker_killed_mid_map(reference):
    genomes, expected = reference
    killed = []
    with make_backend("process", REF, workers=2) as be:
        def kill_one(done):
            if not killed:
                assert done < len(genomes)  # mid-map
                pid = next(iter(be.pool._processes))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        assert _clean(be.map(genomes, on_done=kill_one)) == expected
        assert killed
        assert _clean(be.map(genomes[:2])) == expected[:2]  # the rebuilt pool keeps working


@pytest.mark.parametrize("name, cluster, match", [
    ("dask", "ray://127.0.0.1:10001", "is a ray address"),
    ("ray", "tcp://127.0.0.1:8786", "is a dask address"),
    ("local", "tcp://127.0.0.1:8786", "is a dask address"),
    ("dask", "127.0.0.1:8786", "neither a Dask scheduler"),
    ("dask", "", "expected an address"),
    ("spark", None, "unknown backend"),
])
def test_bad_backend_or_cluster_is_an_input_error(name, cluster, match):
    with pytest.raises(InputError, match=match):
        make_backend(name, REF, cluster=cluster)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_workers_is_an_input_error(workers):
    with pytest.raises(InputError, match="workers"):
        make_backend("process", REF, workers=workers)


def test_unreachable_dask_scheduler_is_an_input_error():
    with pytest.raises(InputError, match="no Dask scheduler answered"):
        make_backend("dask", REF, cluster="tcp://127.0.0.1:9", timeout=2)


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
        import json

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


@pytest.mark.slow  # ~70 s on the shared 2-core box: worker start-up and first imports dominate
def test_external_dask_cluster_gives_the_in_process_result_even_when_a_worker_dies(reference, dask_cluster):
    genomes, expected = reference
    address, worker_groups = dask_cluster
    with make_backend("dask", REF, cluster=address) as be:
        assert be.cluster is None  # attached, not started
        assert _clean(be.map(genomes)) == expected
        killed = []

        def kill_busy_worker(done):
            if killed:
                return
            processing = be.client.processing()
            pids = be.client.run(os.getpid)
            busy = max(processing, key=lambda w: len(processing[w]))
            assert processing[busy], "no worker had a task in flight"
            pgid = os.getpgid(pids[busy])
            assert pgid in worker_groups
            os.killpg(pgid, signal.SIGKILL)
            killed.append(busy)

        second = list(reversed(genomes))  # new task keys; the order differs from the first map
        assert _clean(be.map(second, on_done=kill_busy_worker)) == expected[::-1]
        assert killed and len(be.client.scheduler_info()["workers"]) == 1


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


@pytest.mark.slow
def test_external_ray_cluster_gives_the_in_process_result(reference, ray_head, monkeypatch):
    genomes, expected = reference
    monkeypatch.setenv("RAY_ADDRESS", ray_head)  # "auto" resolves to this head, not another on the machine
    with make_backend("ray", REF, cluster="auto") as be:
        assert be.owns
        import ray

        assert ray.get_runtime_context().gcs_address == ray_head
        assert _clean(be.map(genomes)) == expected
    assert not ray.is_initialized()
