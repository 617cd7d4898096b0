"""The one evolution driver: pymoo's ask/tell over a registered problem, checkpointed every generation.

A problem (:class:`EvolutionProblem`) owns its genome, its pymoo algorithm and operators, its
evaluation and its outputs; the driver owns the generation loop, the checkpoint, the per-generation
metrics (``generations.jsonl`` and ``generations.png``) and progress. Problems register themselves
by name (``search``, ``nas``, ``gee``); :func:`problem_class` imports the module of a name on purpose.

Generation 0 evaluates the initial population; generations 1..n evaluate offspring. After every
generation the checkpoint ``checkpoint.pt`` (written atomically; tensors, numbers and strings only,
loaded with ``weights_only=True``) holds the population (genomes, objectives and the survival's
per-individual attributes), the problem's fitness cache, the algorithm's ``numpy`` generator state,
counters, the history and the composed config with its hash. A run killed at any moment and resumed
loses at most the generation in progress and, seeded, ends as the uninterrupted run does. Resuming
with other settings is an :class:`~spikesmith.errors.InputError` naming the differing fields.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import math
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from spikesmith import io, options
from spikesmith.errors import InputError

CHECKPOINT = "checkpoint.pt"
GENERATIONS = "generations.jsonl"
PLOT = "generations.png"
CHECKPOINT_FORMAT = "spikesmith.evolve-checkpoint/1"
BACKENDS = ("local", "process", "dask", "ray")
MAX_POPULATION = 10_000
MAX_GENERATIONS = 10_000
MAX_WORKERS = 1_024

#: problem name -> module that registers it (imported on purpose, never by scanning)
PROBLEM_MODULES = {
    "search": "spikesmith.evolve.conv_search",
    "nas": "spikesmith.evolve.nas.run",
    "gee": "spikesmith.evolve.gee.spatiotemporal",
}
_REGISTRY: dict[str, type] = {}


def register(name: str):
    """Class decorator: register an :class:`EvolutionProblem` under ``name``."""

    def deco(cls):
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def problem_class(name: str) -> type:
    """The problem class registered as ``name``; InputError listing the known ones otherwise."""
    if name not in PROBLEM_MODULES:
        raise InputError(f"unknown evolution problem {name!r} (expected one of {', '.join(PROBLEM_MODULES)})")
    importlib.import_module(PROBLEM_MODULES[name])
    return _REGISTRY[name]


# ----------------------------------------------------------------------------- the composed config


@dataclass(frozen=True, kw_only=True)
class EvolveConfig:
    """Settings shared by every problem, composed with the problem's own ``options`` dataclass.

    ``backend``, ``cluster`` and ``workers`` say where candidates are evaluated; they may change
    between a run and its resume. Everything else is part of the checkpoint's config hash.
    """

    population: int = 8
    generations: int = 3
    seed: int = 0
    data: str = "digits"
    steps: int = 8
    backend: str = "local"
    cluster: str | None = None  # tcp://host:port (Dask) or ray://... / auto (Ray): attach instead of starting
    workers: int = 2
    options: Any = None  # the problem's options (a frozen dataclass validated on construction)

    def __post_init__(self) -> None:
        options.integer("--population", self.population, low=1, high=MAX_POPULATION)
        options.integer("--generations", self.generations, low=0, high=MAX_GENERATIONS)
        options.seed("--seed", self.seed)
        options.integer("--steps", self.steps, low=1, high=options.MAX_STEPS)
        options.integer("--workers", self.workers, low=1, high=MAX_WORKERS)
        if not isinstance(self.data, str) or not self.data:
            raise InputError(f"--data: expected a dataset name, got {self.data!r}")
        if self.backend not in BACKENDS:
            raise InputError(f"--backend: expected one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.cluster is not None:
            if self.backend not in ("dask", "ray"):
                raise InputError(f"--cluster: needs --backend dask or ray, got --backend {self.backend}")
            if not isinstance(self.cluster, str) or not self.cluster.strip():
                raise InputError(f"--cluster: expected an address, got {self.cluster!r}")

    def search_key(self) -> dict:
        """The settings a resumed run must share with its checkpoint, flat (``options.x`` for options)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)
             if f.name not in ("backend", "cluster", "workers", "options")}
        if self.options is not None:
            opts = self.options.to_dict() if hasattr(self.options, "to_dict") else asdict(self.options)
            d |= {f"options.{k}": v for k, v in opts.items()}
        return json.loads(json.dumps(d, default=str, sort_keys=True))

    def config_hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`search_key`."""
        return hashlib.sha256(json.dumps(self.search_key(), sort_keys=True).encode()).hexdigest()


def config_difference(saved: dict, now: dict) -> list[str]:
    """``field (saved -> now)`` for each setting that differs."""
    return [f"{k} ({saved.get(k)!r} -> {now.get(k)!r})" for k in sorted(set(saved) | set(now))
            if saved.get(k) != now.get(k)]


# ----------------------------------------------------------------------------- problems


class EvolutionProblem:
    """A search problem on the driver. Subclasses register with :func:`register` and set
    ``objectives`` (names of the minimised objectives) and ``maximised`` (objectives shown negated,
    e.g. an RDM score minimised as ``-score``)."""

    name = "base"
    objectives: tuple[str, ...] = ()
    maximised: tuple[bool, ...] = ()
    min_population = 2
    options_type: type | None = None  # the problem's options dataclass: its default when cfg has none

    def __init__(self, cfg: EvolveConfig):
        if self.options_type is not None:
            if cfg.options is None:
                cfg = replace(cfg, options=self.options_type())
            if not isinstance(cfg.options, self.options_type):
                raise InputError(f"evolve {self.name}: expected {self.options_type.__name__}, "
                                 f"got {type(cfg.options).__name__}")
        if cfg.population < self.min_population:
            raise InputError(f"--population: expected an integer in {self.min_population}..{MAX_POPULATION:,}, "
                             f"got {cfg.population!r}")
        self.cfg = cfg
        self.cache: dict[str, dict] = {}  # genome key -> evaluation record (JSON-able)

    # -- set-up
    def prepare(self) -> None:
        """Load what evaluation needs (data); called once per process before the first generation."""

    def pymoo_problem(self):
        raise NotImplementedError

    def algorithm(self):
        raise NotImplementedError

    def open_backend(self):
        """Context manager around the generations (a worker pool, a cluster client)."""
        return contextlib.nullcontext()

    # -- per generation
    def evaluate(self, X: np.ndarray, generation: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Objectives F (n, n_obj) of the genomes ``X`` (n, n_var) and, for Lamarckian problems, the
        genomes to write back (None: unchanged)."""
        raise NotImplementedError

    def constraints(self, X: np.ndarray) -> np.ndarray | None:
        """Inequality constraints G (n, n_ieq_constr) of the genomes ``X``, feasible where G <= 0 (a pure
        function of the genomes, so a resumed run recomputes it); None: unconstrained."""
        return None

    def record(self, algorithm, generation: int) -> dict:
        """Problem-specific fields of the generation's metrics row."""
        return {}

    # -- end
    def finish(self, algorithm, history: list[dict], out: Path | None, seconds: float):
        """Write the problem's outputs (``model.pt`` among them) and return its result."""
        raise NotImplementedError


# ----------------------------------------------------------------------------- the loop


def run(problem: EvolutionProblem, *, out_dir: str | Path | None = None, resume: bool = False,
        on_progress: Callable[[dict], None] | None = None):
    """Run ``problem`` for ``cfg.generations`` generations after the initial one; returns its result.

    With ``out_dir``: checkpoint.pt and generations.jsonl after every generation, generations.png and
    the problem's files at the end; ``resume`` continues from the checkpoint there.
    ``on_progress`` receives each generation's metrics row.
    """
    cfg = problem.cfg
    out = Path(out_dir) if out_dir is not None else None
    ckpt = out / CHECKPOINT if out is not None else None
    pproblem = problem.pymoo_problem()
    algorithm = problem.algorithm()
    algorithm.setup(pproblem, termination=("n_gen", 10**9), seed=cfg.seed)
    history: list[dict] = []
    start, elapsed = 0, 0.0
    if ckpt is not None and ckpt.is_file():
        if not resume:
            raise InputError(f"{ckpt} exists: pass --resume to continue it, or choose another output directory")
        state = io.load_checkpoint(ckpt)
        if state.get("format") != CHECKPOINT_FORMAT or state.get("problem") != problem.name:
            raise InputError(f"{ckpt}: not a checkpoint of 'evolve {problem.name}' "
                             f"(found {state.get('problem')!r}, format {state.get('format')!r})")
        if state["config_hash"] != cfg.config_hash():
            diff = config_difference(json.loads(state["config"]), cfg.search_key())
            raise InputError(f"{ckpt}: the checkpoint was made with other settings: {', '.join(diff)}")
        _restore(algorithm, pproblem, state, problem)
        problem.cache.clear()  # in place: operators may hold the dict
        problem.cache.update(json.loads(state["cache"]))
        history = json.loads(state["history"])
        start, elapsed = int(state["generation"]) + 1, float(state["seconds"])
        io.write_jsonl(out / GENERATIONS, history)  # rows of the generation in progress are redone
    problem.prepare()
    t_run = time.perf_counter()
    with problem.open_backend():
        for gen in range(start, cfg.generations + 1):
            g0 = time.perf_counter()
            pop = algorithm.ask()
            before = len(problem.cache)
            F, X_new = problem.evaluate(pop.get("X"), gen)
            if X_new is not None:
                pop.set("X", X_new)
            _set_objectives(pproblem, pop, np.asarray(F, dtype=np.float64), problem.constraints(pop.get("X")))
            algorithm.tell(infills=pop)
            now = elapsed + time.perf_counter() - t_run
            done = gen + 1
            row = {"generation": gen, "generations": cfg.generations,
                   "objectives": _objective_summary(problem, algorithm.pop.get("F")),
                   "evaluated": len(problem.cache), "new": len(problem.cache) - before,
                   "seconds": time.perf_counter() - g0, "elapsed": now,
                   "eta": now / done * (cfg.generations + 1 - done)}
            row |= problem.record(algorithm, gen)
            history.append(row)
            if out is not None:
                _save(ckpt, problem, algorithm, gen, history, now)
                io.append_jsonl(out / GENERATIONS, row)
            if on_progress:
                on_progress(row)
    result = problem.finish(algorithm, history, out, elapsed + time.perf_counter() - t_run)
    if out is not None and history:
        plot_generations(history, out / PLOT, title=f"evolve {problem.name}")
    return result


def _objective_summary(problem: EvolutionProblem, F: np.ndarray) -> dict:
    """Objective name -> {best, mean} over the population, maximised objectives shown un-negated."""
    F = np.asarray(F, dtype=np.float64).reshape(len(F), -1)
    out = {}
    for j, name in enumerate(problem.objectives):
        v = -F[:, j] if problem.maximised[j] else F[:, j]
        fin = v[np.isfinite(v)]
        best = (fin.max() if problem.maximised[j] else fin.min()) if fin.size else math.nan
        out[name] = {"best": float(best), "mean": float(fin.mean()) if fin.size else math.nan}
    return out


def _set_objectives(pproblem, pop, F: np.ndarray, G: np.ndarray | None = None) -> None:
    from pymoo.core.evaluator import Evaluator
    from pymoo.problems.static import StaticProblem

    out = {"F": F} if G is None else {"F": F, "G": np.asarray(G, dtype=np.float64)}
    Evaluator().eval(StaticProblem(pproblem, **out), pop)


_SKIP_ATTRS = {"X", "F", "G", "H", "CV", "FEAS", "feas", "cv", "dF", "dG", "dH", "ddF", "ddG", "ddH", "hF",
               "hG", "hH", "n_gen", "n_iter"}


def _save(path: Path, problem: EvolutionProblem, algorithm, gen: int, history: list, seconds: float) -> None:
    import torch

    pop = algorithm.pop
    attrs = {}
    for key in sorted(pop[0].data):
        vals = pop.get(key)
        if key in _SKIP_ATTRS or vals is None:
            continue
        arr = np.asarray(vals)
        if arr.dtype.kind in "biuf":
            attrs[key] = torch.from_numpy(np.ascontiguousarray(arr))
    cfg = problem.cfg
    io.save_checkpoint(path, {
        "format": CHECKPOINT_FORMAT, "schema_version": io.SCHEMA_VERSION, "problem": problem.name,
        "config": json.dumps(cfg.search_key(), sort_keys=True), "config_hash": cfg.config_hash(),
        "generation": gen, "n_iter": int(algorithm.n_iter), "n_eval": int(algorithm.evaluator.n_eval),
        "rng": json.dumps(algorithm.random_state.bit_generator.state),
        "X": torch.from_numpy(np.ascontiguousarray(pop.get("X"), dtype=np.float64)),
        "F": torch.from_numpy(np.ascontiguousarray(pop.get("F"), dtype=np.float64)),
        "attrs": attrs, "cache": json.dumps(problem.cache), "history": json.dumps(history), "seconds": seconds,
    })


def _restore(algorithm, pproblem, state: dict, problem: EvolutionProblem) -> None:
    """Put ``algorithm`` into the state saved after a generation (see :func:`_save`)."""
    from pymoo.core.population import Population

    pop = Population.new(X=state["X"].numpy())
    _set_objectives(pproblem, pop, state["F"].numpy(), problem.constraints(pop.get("X")))
    for key, val in state["attrs"].items():
        pop.set(key, val.numpy())
    algorithm.pop = pop
    algorithm.is_initialized = True
    algorithm.n_iter = int(state["n_iter"])
    algorithm.evaluator.n_eval = int(state["n_eval"])
    algorithm.random_state.bit_generator.state = json.loads(state["rng"])
    algorithm._set_optimum()


def plot_generations(history: list[dict], path: str | Path, *, title: str = "evolution") -> Path:
    """PNG of best and mean of every objective per generation (one panel each); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(history[0]["objectives"])
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    gens = [h["generation"] for h in history]
    for ax, name in zip(axes[0], names):
        ax.plot(gens, [h["objectives"][name]["best"] for h in history], marker="o", label="best")
        ax.plot(gens, [h["objectives"][name]["mean"] for h in history], marker=".", label="mean")
        ax.set(xlabel="generation", ylabel=name, title=name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    try:
        return io.save_figure(path, fig)
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- front door


def evolve(name: str, cfg: EvolveConfig, *, out_dir: str | Path | None = None, resume: bool = False,
           on_progress: Callable[[dict], None] | None = None):
    """Build problem ``name`` for ``cfg`` and run it (see :func:`run`)."""
    return run(problem_class(name)(cfg), out_dir=out_dir, resume=resume, on_progress=on_progress)


__all__ = ["BACKENDS", "EvolutionProblem", "EvolveConfig", "config_difference", "evolve", "plot_generations",
           "problem_class", "register", "run"]
