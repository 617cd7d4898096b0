"""Parallel evaluation behind one interface: in-process, a local process pool, Dask or Ray.

A backend maps a task function ``fn(item, ctx) -> result`` (by default MSE-NAS's
:func:`~spikesmith.evolve.nas.problem.evaluate_genome`) over a list of items with one context and
returns the results in the items' order. Evaluation depends only on (item, context), so every
backend, in any order and after any retry, gives identical results.

The context is either the object itself or a small :class:`ContextRef` (e.g. :class:`NasContextRef`,
which names its dataset by name and seed): a worker builds a ref's context on first use and keeps it
(:func:`resolve_context`), so a cluster receives a few bytes per task, never a pickled dataset.

``cluster`` attaches to a running cluster instead of starting one: ``tcp://host:port`` is a Dask
scheduler, ``ray://host:port`` or ``auto`` a Ray cluster (``auto`` honours ``RAY_ADDRESS``). Its
workers must be able to import spikesmith. A worker that dies mid-map has its items run again
elsewhere: Dask's scheduler and Ray's task retries do it for those two, the process backend
rebuilds its pool and resubmits what did not finish. Worker processes run torch with one thread
(the machine's cores are the workers).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing as mp
import os
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from spikesmith.errors import InputError
from spikesmith.evolve.nas.problem import EvalContext, evaluate_genome

BACKENDS = ("local", "process", "dask", "ray")
RETRIES = 3  # times a lost item is run again before the map fails

_WORKER_CTX: EvalContext | None = None
_BUILT: dict = {}  # ContextRef -> built context, per worker process


class ContextRef:
    """A picklable, hashable description of a task context that a worker builds itself (:meth:`build`)."""

    def build(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class NasContextRef(ContextRef):
    """An MSE-NAS :class:`EvalContext` whose fitness batches are named by ``probe`` (a
    :class:`spikesmith.data.probe.ProbeRef`), loaded in the worker rather than shipped."""

    space: Any
    probe: Any
    channels: int = 16
    num_classes: int = 10
    seed: int = 0
    metric: str = "hamming"
    variant: str = "label"
    all_variants: bool = False
    device: str | None = None
    loihi_cores: bool = False

    def build(self) -> EvalContext:
        return EvalContext(space=self.space, batches=self.probe.load(), channels=self.channels,
                           num_classes=self.num_classes, seed=self.seed, metric=self.metric,
                           variant=self.variant, all_variants=self.all_variants, device=self.device,
                           loihi_cores=self.loihi_cores)


def resolve_context(ctx):
    """Return the context a task runs with: ``ctx`` itself, or a ContextRef's built context (built once per process)."""
    if not isinstance(ctx, ContextRef):
        return ctx
    built = _BUILT.get(ctx)
    if built is None:
        if len(_BUILT) >= 4:  # a long-lived worker serves a few searches; keep the newest
            _BUILT.pop(next(iter(_BUILT)))
        built = _BUILT[ctx] = ctx.build()
    return built


def _worker_threads(client_pid: int | None) -> None:
    if client_pid is not None and os.getpid() != client_pid:
        import torch

        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)


def run_task(fn: Callable, item, ctx, client_pid: int | None = None):
    """Run one task where it lands: ``fn(item, resolve_context(ctx))`` with one torch thread in a worker process."""
    _worker_threads(client_pid)
    return fn(item, resolve_context(ctx))


def _plain(item):
    """Integer genomes (numpy rows included) as tuples of Python ints; anything else unchanged."""
    import numpy as np

    if isinstance(item, (tuple, list, np.ndarray)) and all(isinstance(v, (int, np.integer)) for v in item):
        return tuple(int(v) for v in item)
    return item


def _init_worker(ctx) -> None:
    import torch

    global _WORKER_CTX
    _WORKER_CTX = resolve_context(ctx)
    torch.set_num_threads(1)


def _eval_in_worker(genome, fn: Callable = evaluate_genome):
    if _WORKER_CTX is None:  # pragma: no cover - the initializer always runs first
        raise RuntimeError("worker has no evaluation context")
    return fn(genome, _WORKER_CTX)


class Backend:
    """Evaluates items; use as a context manager (``close`` frees workers, never an attached cluster)."""

    name = "base"

    def map(self, genomes: Sequence, on_done: Callable[[int], None] | None = None) -> list:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalBackend(Backend):
    """Evaluates in this process, one item after another."""

    name = "local"

    def __init__(self, ctx, *, fn: Callable = evaluate_genome):
        self.ctx = ctx
        self.fn = fn

    def map(self, genomes, on_done=None):
        ctx = resolve_context(self.ctx)
        out = []
        for g in genomes:
            out.append(self.fn(_plain(g), ctx))
            if on_done:
                on_done(len(out))
        return out


class ProcessBackend(Backend):
    """A local ``concurrent.futures`` process pool (``spawn`` by default: safe with torch threads).

    A worker that dies breaks the pool; the map then starts a new pool and resubmits the items
    that had not finished (at most :data:`RETRIES` times).
    """

    name = "process"

    def __init__(self, ctx, *, workers: int = 2, start_method: str = "spawn", fn: Callable = evaluate_genome):
        self.ctx, self.workers, self.fn = ctx, int(workers), fn
        self.mp_context = mp.get_context(start_method)
        self.pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=self.mp_context,
                                      initializer=_init_worker, initargs=(self.ctx,))

    def map(self, genomes, on_done=None):
        items = [_plain(g) for g in genomes]
        results: dict[int, Any] = {}
        for attempt in range(RETRIES + 1):
            futures = {self.pool.submit(_eval_in_worker, items[i], self.fn): i
                       for i in range(len(items)) if i not in results}
            try:
                for f in cf.as_completed(futures):
                    results[futures[f]] = f.result()
                    if on_done:
                        on_done(len(results))
                return [results[i] for i in range(len(items))]
            except BrokenProcessPool:
                for f, i in futures.items():  # keep what finished before the pool broke
                    if i not in results and f.done() and not f.cancelled() and f.exception() is None:
                        results[i] = f.result()
                self.pool.shutdown(wait=True, cancel_futures=True)
                if attempt == RETRIES:
                    raise
                logging.getLogger(__name__).warning("a worker process died; rerunning %d item(s) on a new pool",
                                                    len(items) - len(results))
                self.pool = self._new_pool()
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class DaskBackend(Backend):
    """Dask distributed: the scheduler at ``address`` (``tcp://host:port``), or a private LocalCluster
    of ``workers`` (threads, or processes with ``processes=True``). Lost workers' tasks are rescheduled
    by the scheduler."""

    name = "dask"

    def __init__(self, ctx, *, workers: int = 2, address: str | None = None, processes: bool = False,
                 fn: Callable = evaluate_genome, timeout: float = 30.0):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a dependency here
            raise InputError(f"backend 'dask' needs dask[distributed] ({exc})") from None
        self.cluster = None
        self.fn = fn
        if address:
            try:
                self.client = Client(address, timeout=timeout)
            except (OSError, TimeoutError) as exc:
                raise InputError(f"cluster {address!r}: no Dask scheduler answered ({exc})") from None
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                                        silence_logs=logging.ERROR, dashboard_address=None)
            self.client = Client(self.cluster)
        # a ref is a few bytes: send it with each task; a full context is scattered to every worker once
        self.ctx = ctx if isinstance(ctx, ContextRef) else self.client.scatter(ctx, broadcast=True)

    def map(self, genomes, on_done=None):
        from dask.distributed import as_completed

        items = [_plain(g) for g in genomes]
        futures = self.client.map(run_task, [self.fn] * len(items), items, ctx=self.ctx,
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


class RayBackend(Backend):
    """Ray: the cluster at ``address`` (``ray://host:port`` or ``auto``), or a private local one with
    ``workers`` CPUs. Tasks lost with a worker are retried by Ray (:data:`RETRIES` times)."""

    name = "ray"

    def __init__(self, ctx, *, workers: int = 2, address: str | None = None, fn: Callable = evaluate_genome):
        try:
            import ray
        except ImportError as exc:
            raise InputError(f"backend 'ray' needs ray (pip install 'spikesmith[ray]'; {exc})") from None
        self.ray, self.fn = ray, fn
        self.owns = not ray.is_initialized()
        if self.owns:
            kwargs = dict(address=address) if address else dict(num_cpus=int(workers), include_dashboard=False)
            try:
                ray.init(logging_level=logging.ERROR, log_to_driver=False, configure_logging=False, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise InputError(f"cluster {address!r}: could not attach to a Ray cluster ({exc})"
                                 if address else f"backend 'ray': could not start Ray ({exc})") from None
        self.task = ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)(run_task)
        self.ctx = ctx if isinstance(ctx, ContextRef) else ray.put(ctx)

    def map(self, genomes, on_done=None):
        ray = self.ray
        refs = [self.task.remote(self.fn, _plain(g), self.ctx, os.getpid()) for g in genomes]
        pending, done = list(refs), 0
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            done += len(ready)
            if on_done:
                on_done(done)
        return ray.get(refs)

    def close(self) -> None:
        if self.owns and self.ray.is_initialized():
            self.ray.shutdown()


def cluster_kind(address: str) -> str:
    """Return the backend an address names: 'dask' for ``tcp://``, 'ray' for ``ray://`` or ``auto``."""
    if not isinstance(address, str) or not address.strip():
        raise InputError(f"cluster: expected an address (tcp://host:port, ray://host:port or auto), got {address!r}")
    a = address.strip()
    if a.startswith("tcp://"):
        return "dask"
    if a.startswith("ray://") or a == "auto":
        return "ray"
    raise InputError(f"cluster: {address!r} is neither a Dask scheduler (tcp://host:port) nor a Ray cluster "
                     "(ray://host:port or auto)")


def make_backend(name: str, ctx, *, workers: int = 2, cluster: str | None = None,
                 fn: Callable = evaluate_genome, **options) -> Backend:
    """The backend called ``name`` ('local', 'process', 'dask' or 'ray') mapping ``fn`` with ``ctx``.

    ``cluster`` attaches Dask or Ray to a running cluster (see :func:`cluster_kind`); it must match
    ``name``. ``ctx`` is a context or a :class:`ContextRef` the workers build themselves.
    """
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r} (expected one of {', '.join(BACKENDS)})")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers: expected a positive integer, got {workers!r}")
    if cluster is not None:
        kind = cluster_kind(cluster)
        if kind != name:
            raise InputError(f"cluster {cluster!r} is a {kind} address but the backend is {name!r}; "
                             f"use --backend {kind}")
    if name == "local":
        return LocalBackend(ctx, fn=fn)
    if name == "process":
        return ProcessBackend(ctx, workers=workers, fn=fn, **options)
    if name == "dask":
        if cluster is not None:
            options["address"] = cluster
        return DaskBackend(ctx, workers=workers, fn=fn, **options)
    return RayBackend(ctx, workers=workers, address=cluster, fn=fn, **options)
