"""Backends: one seeded evaluation mapped in-process, on a process pool, and on real Dask and Ray
clusters started on this machine (bound to loopback) and attached by address; lost workers."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess

import numpy as np
import pytest

from spikesmith.data.probe import ProbeRef
from spikesmith.errors import InputError
from spikesmith.evolve.nas.backends import NasContextRef, make_backend, resolve_context
from spikesmith.evolve.nas.space import NasSpace

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


@pytest.mark.slow
def test_external_ray_cluster_gives_the_in_process_result_even_when_a_worker_dies(reference, ray_head, monkeypatch):
    genomes, expected = reference
    monkeypatch.setenv("RAY_ADDRESS", ray_head)  # "auto" resolves to this head, not another on the machine
    with make_backend("ray", REF, cluster="auto") as be:
        assert be.owns
        import ray

        assert ray.get_runtime_context().gcs_address == ray_head
        assert _clean(be.map(genomes)) == expected
        killed = []

        def kill_busy_worker(done):
            # a Ray worker running a task titles itself ray::run_task; kill one mid-task (Ray retries it)
            if killed:
                return
            ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
            busy = [int(line.split()[0]) for line in ps.splitlines() if "ray::run_task" in line]
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])

        second = list(reversed(genomes))
        assert _clean(be.map(second, on_done=kill_busy_worker)) == expected[::-1]
        assert killed, "no Ray worker was seen running a task"
    assert not ray.is_initialized()
