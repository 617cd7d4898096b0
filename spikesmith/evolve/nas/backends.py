"""Parallel evaluation of genomes behind one interface: in-process, a local process pool, or Dask.

Every backend maps :func:`~spikesmith.evolve.nas.problem.evaluate_genome` over a list of
genomes with the same :class:`EvalContext` and returns the results in the genomes' order;
evaluation depends only on (genome, context), so every backend gives identical results.
Workers run torch with one thread each (the machine's cores are the workers).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import multiprocessing as mp
from typing import Callable, Sequence

from spikesmith.errors import InputError
from spikesmith.evolve.nas.problem import EvalContext, evaluate_genome

BACKENDS = ("local", "process", "dask")

_WORKER_CTX: EvalContext | None = None


def _init_worker(ctx: EvalContext) -> None:
    import torch

    global _WORKER_CTX
    _WORKER_CTX = ctx
    torch.set_num_threads(1)


def _eval_in_worker(genome) -> dict:
    if _WORKER_CTX is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker has no evaluation context")
    return evaluate_genome(genome, _WORKER_CTX)


class Backend:
    """Evaluates genomes; use as a context manager (``close`` frees workers)."""

    name = "base"

    def map(self, genomes: Sequence, on_done: Callable[[int], None] | None = None) -> list[dict]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalBackend(Backend):
    """Evaluates in this process, one genome after another."""

    name = "local"

    def __init__(self, ctx: EvalContext):
        self.ctx = ctx

    def map(self, genomes, on_done=None):
        out = []
        for g in genomes:
            out.append(evaluate_genome(g, self.ctx))
            if on_done:
                on_done(len(out))
        return out


class ProcessBackend(Backend):
    """A local ``concurrent.futures`` process pool (``spawn`` by default: safe with torch threads)."""

    name = "process"

    def __init__(self, ctx: EvalContext, *, workers: int = 2, start_method: str = "spawn"):
        self.pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(start_method),
                                           initializer=_init_worker, initargs=(ctx,))

    def map(self, genomes, on_done=None):
        futures = [self.pool.submit(_eval_in_worker, tuple(int(v) for v in g)) for g in genomes]
        done = 0
        for _ in cf.as_completed(futures):
            done += 1
            if on_done:
                on_done(done)
        return [f.result() for f in futures]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _dask_eval(genome, ctx: EvalContext, client_pid: int) -> dict:
    if os.getpid() != client_pid:  # a worker process of its own: one torch thread per worker
        import torch

        torch.set_num_threads(1)
    return evaluate_genome(genome, ctx)


class DaskBackend(Backend):
    """Dask distributed: a scheduler ``address``, or a LocalCluster of ``workers`` (threads or processes)."""

    name = "dask"

    def __init__(self, ctx: EvalContext, *, workers: int = 2, address: str | None = None, processes: bool = False):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a dependency here
            raise InputError(f"backend 'dask' needs dask[distributed] ({exc})") from None
        self.cluster = None
        if address:
            self.client = Client(address)
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                                        silence_logs=logging.ERROR,
                                        dashboard_address=None)
            self.client = Client(self.cluster)
        self.ctx = self.client.scatter(ctx, broadcast=True)

    def map(self, genomes, on_done=None):
        from dask.distributed import as_completed

        futures = self.client.map(_dask_eval, [tuple(int(v) for v in g) for g in genomes], ctx=self.ctx,
                                  client_pid=os.getpid(), pure=False)
        done = 0
        for _ in as_completed(futures):
            done += 1
            if on_done:
                on_done(done)
        return self.client.gather(futures)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_backend(name: str, ctx: EvalContext, *, workers: int = 2, **options) -> Backend:
    """The backend called ``name`` ('local', 'process' or 'dask') for ``ctx``."""
    if name == "local":
        return LocalBackend(ctx)
    if name == "process":
        return ProcessBackend(ctx, workers=workers, **options)
    if name == "dask":
        return DaskBackend(ctx, workers=workers, **options)
    raise InputError(f"unknown backend {name!r} (expected one of {', '.join(BACKENDS)})")
