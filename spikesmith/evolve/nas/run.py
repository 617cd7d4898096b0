"""MSE-NAS search driver: NSGA-II (pymoo) over the multi-scale genome, checkpointed every generation.

The search uses pymoo's ask/tell interface: the algorithm proposes genomes, a backend evaluates
them (training-free, :mod:`~spikesmith.evolve.nas.problem`), the objectives
``(-RDM score, synaptic operations, parameters)`` go back. After every generation the state that
decides the rest of the run (population genomes, objectives, ranks, crowding distances, the
algorithm's ``numpy.random.Generator`` state, counters, history, every evaluation so far) is written
atomically to ``checkpoint.json``; ``resume`` rebuilds the algorithm from it, so a run killed at
any moment loses at most the generation in progress and a resumed seeded run ends where the
uninterrupted one does. No pickle: the checkpoint is plain JSON.

Files in ``out_dir``: ``checkpoint.json``, ``generations.jsonl`` (one row per generation),
``pareto.json`` and ``pareto.png`` (the final non-dominated front), ``evaluations.jsonl``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from spikesmith import io
from spikesmith.errors import InputError
from spikesmith.evolve.nas.backends import BACKENDS, make_backend
from spikesmith.evolve.nas.problem import METRICS, VARIANTS, EvalContext, objectives
from spikesmith.evolve.nas.space import NasSpace

CHECKPOINT_FORMAT = "spikesmith.nas-checkpoint/1"
SCHEMA_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class NasConfig:
    """Search settings (defaults: spec section 3 operators, sized for the embedded digits on 2 cores)."""

    data: str = "digits"
    generations: int = 10
    population: int = 20
    offspring: int | None = None  # None: = population
    seed: int = 0
    steps: int = 6
    cells: int = 3
    channels: int = 16
    fitness_batch: int = 64
    fitness_batches: int = 1
    metric: str = "hamming"
    variant: str = "free"  # measured: label-free Hamming ranks trained accuracy best (docs/nas.md)
    crossover_prob: float = 0.9
    mutation_eta: float = 3.0
    backend: str = "local"
    workers: int = 2

    def __post_init__(self) -> None:
        if self.generations < 0:
            raise InputError(f"generations must be >= 0, got {self.generations}")
        if self.population < 2:
            raise InputError(f"population must be >= 2, got {self.population}")
        if self.offspring is not None and self.offspring < 1:
            raise InputError(f"offspring must be >= 1, got {self.offspring}")
        if self.steps < 1 or self.cells < 1 or self.channels < 1:
            raise InputError("steps, cells and channels must be >= 1")
        if self.fitness_batch < 4 or self.fitness_batches < 1:
            raise InputError("fitness_batch must be >= 4 and fitness_batches >= 1")
        if self.metric not in METRICS or self.variant not in VARIANTS:
            raise InputError(f"metric must be one of {METRICS} and variant one of {VARIANTS}")
        if not 0 <= self.crossover_prob <= 1 or self.mutation_eta <= 0:
            raise InputError("crossover_prob must be in [0, 1] and mutation_eta positive")
        if self.backend not in BACKENDS:
            raise InputError(f"unknown backend {self.backend!r} (expected one of {', '.join(BACKENDS)})")
        if self.workers < 1:
            raise InputError(f"workers must be >= 1, got {self.workers}")

    def space(self) -> NasSpace:
        return NasSpace(cells=self.cells)

    def search_key(self) -> dict:
        """The settings a resumed run must share with the checkpoint (backend and workers may change)."""
        d = asdict(self)
        d.pop("backend")
        d.pop("workers")
        return d


@dataclass(frozen=True, kw_only=True)
class NasCandidate:
    """One evaluated genome on the front."""

    genome: tuple[int, ...]
    arch: dict
    score: float
    synops: float
    params: int
    degenerate: bool = False


@dataclass(frozen=True, kw_only=True)
class NasResult:
    """Outcome of :func:`run_nas`: the Pareto front (best RDM score first) and the history."""

    best: NasCandidate
    front: tuple[NasCandidate, ...]
    history: list[dict] = field(default_factory=list)
    evaluated: int = 0
    seconds: float = 0.0
    config: NasConfig = field(default_factory=NasConfig)
    out_dir: str | None = None


def _fitness_batches(cfg: NasConfig) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    from spikesmith.data import make_loaders

    train, _, _ = make_loaders(cfg.data, batch_size=cfg.fitness_batch, steps=cfg.steps, seed=cfg.seed)
    out = []
    for x, y in train:
        out.append((np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)))
        if len(out) == cfg.fitness_batches:
            break
    return tuple(out)


def _algorithm(cfg: NasConfig, space: NasSpace):
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.repair import Repair
    from pymoo.operators.crossover.pntx import TwoPointCrossover
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    class Canonical(Repair):
        """Integer rounding, then the space's structural repair (input counts, unused genes)."""

        def _do(self, problem, X, **kwargs):
            X = np.clip(np.around(np.asarray(X, dtype=np.float64)), problem.xl, problem.xu).astype(int)
            return np.array([space.repair(row) for row in X], dtype=int)

    n = space.n_genes
    return NSGA2(
        pop_size=cfg.population,
        n_offsprings=cfg.offspring or cfg.population,
        sampling=IntegerRandomSampling(),
        crossover=TwoPointCrossover(prob=cfg.crossover_prob, vtype=float, repair=RoundingRepair()),
        mutation=PM(prob=1.0, prob_var=1.0 / n, eta=cfg.mutation_eta, vtype=float, repair=RoundingRepair()),
        repair=Canonical(),
        eliminate_duplicates=True,
    )


def _problem(space: NasSpace):
    from pymoo.core.problem import Problem

    return Problem(n_var=space.n_genes, n_obj=3, xl=np.zeros(space.n_genes), xu=space.upper_bounds.astype(float),
                   vtype=int)


def _set_objectives(problem, pop, F: np.ndarray) -> None:
    from pymoo.core.evaluator import Evaluator
    from pymoo.problems.static import StaticProblem

    Evaluator().eval(StaticProblem(problem, F=F), pop)


def _encode_crowding(c: np.ndarray) -> list:
    return [None if not np.isfinite(v) else float(v) for v in c]


def _decode_crowding(c: list) -> np.ndarray:
    return np.array([np.inf if v is None else float(v) for v in c], dtype=np.float64)


def _front(space: NasSpace, pop, cache: dict) -> list[NasCandidate]:
    X = pop.get("X").astype(int)
    rank = pop.get("rank")
    out = []
    for row, r in zip(X, rank):
        if r != 0:
            continue
        g = tuple(int(v) for v in row)
        e = cache[g]
        out.append(NasCandidate(genome=g, arch=space.decode(g).to_dict(), score=e["score"], synops=e["synops"],
                                params=e["params"], degenerate=e["degenerate"]))
    # best RDM score first; fewer synaptic operations, then parameters break ties
    out.sort(key=lambda c: (-c.score if not c.degenerate else 2.0, c.synops, c.params, c.genome))
    return out


def plot_front(front: list[NasCandidate], path: str | Path, *, title: str = "MSE-NAS Pareto front") -> Path:
    """Scatter of the front: RDM score vs synaptic operations, colour = parameters; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    sc = ax.scatter([c.synops for c in front], [c.score for c in front], c=[c.params for c in front],
                    cmap="viridis", edgecolors="k")
    fig.colorbar(sc, ax=ax, label="parameters")
    ax.set(xlabel="estimated synaptic operations per sample", ylabel="RDM fitness (higher is better)", title=title)
    ax.grid(alpha=0.3)
    try:
        return io.save_figure(path, fig)
    finally:
        plt.close(fig)


def run_nas(
    *,
    data: str = "digits",
    generations: int = 10,
    population: int = 20,
    seed: int = 0,
    out_dir: str | Path | None = None,
    resume: bool = False,
    backend: str = "local",
    steps: int = 6,
    workers: int = 2,
    on_progress: Callable[[dict], None] | None = None,
    **options,
) -> NasResult:
    """Run the MSE-NAS search (NSGA-II on three objectives); returns the Pareto front and history.

    ``options`` are further :class:`NasConfig` fields (cells, channels, offspring, fitness_batch,
    fitness_batches, metric, variant, crossover_prob, mutation_eta). With ``out_dir`` every
    generation is checkpointed; ``resume`` continues from the checkpoint there (same settings
    required). ``on_progress`` receives one dict per generation.
    """
    cfg = NasConfig(data=data, generations=generations, population=population, seed=seed, steps=steps,
                    backend=backend, workers=workers, **options)
    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    ckpt_path = out / "checkpoint.json" if out else None
    space = cfg.space()
    problem = _problem(space)
    algorithm = _algorithm(cfg, space)
    algorithm.setup(problem, termination=("n_gen", 10**9), seed=seed)
    cache: dict[tuple[int, ...], dict] = {}
    history: list[dict] = []
    start_gen = 0
    elapsed = 0.0
    if ckpt_path is not None and ckpt_path.is_file():
        if not resume:
            raise InputError(f"{ckpt_path} exists: pass resume=True (--resume) to continue it, or pick a new directory")
        state = io.read_json(ckpt_path)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise InputError(f"{ckpt_path}: not an MSE-NAS checkpoint (expected format {CHECKPOINT_FORMAT})")
        if state["config"] != cfg.search_key():
            diff = sorted(k for k in cfg.search_key() if state["config"].get(k) != cfg.search_key()[k])
            raise InputError(f"{ckpt_path}: the checkpoint was made with other settings ({', '.join(diff)})")
        _restore(algorithm, problem, state)
        cache = {tuple(e["genome"]): e for e in state["evaluations"]}
        history = state["history"]
        start_gen = int(state["generation"]) + 1
        elapsed = float(state.get("seconds", 0.0))
        # drop rows written after the checkpoint (the generation in progress is redone)
        io.write_jsonl(out / "generations.jsonl", history)
        io.write_jsonl(out / "evaluations.jsonl", [e for e in state["evaluations"]])
    batches = _fitness_batches(cfg)
    ctx = EvalContext(space=space, batches=batches, channels=cfg.channels, seed=seed, metric=cfg.metric,
                      variant=cfg.variant)
    t_run = time.perf_counter()
    with make_backend(cfg.backend, ctx, workers=cfg.workers) as be:
        for gen in range(start_gen, cfg.generations + 1):
            g0 = time.perf_counter()
            pop = algorithm.ask()
            X = pop.get("X").astype(int)
            todo = [tuple(int(v) for v in row) for row in X]
            new = list(dict.fromkeys(g for g in todo if g not in cache))
            for g, r in zip(new, be.map(new)):
                cache[g] = r
            F = np.array([objectives(cache[g]) for g in todo])
            _set_objectives(problem, pop, F)
            algorithm.tell(infills=pop)
            front = _front(space, algorithm.pop, cache)
            scores = np.array([cache[tuple(int(v) for v in row)]["score"] for row in algorithm.pop.get("X")])
            row = {
                "generation": gen, "evaluated": len(cache), "new": len(new),
                "best_score": float(scores.max()), "mean_score": float(scores.mean()),
                "front_size": len(front), "best_genome": list(front[0].genome),
                "front_min_synops": float(min(c.synops for c in front)),
                "front_min_params": int(min(c.params for c in front)),
                "degenerate": int(sum(cache[g]["degenerate"] for g in todo)),
                "seconds": time.perf_counter() - g0,
            }
            history.append(row)
            if out is not None:
                for g in new:
                    cache[g] = cache[g] | {"generation": gen}
                    io.append_jsonl(out / "evaluations.jsonl", cache[g])
                _save(ckpt_path, cfg, algorithm, gen, cache, history, elapsed + time.perf_counter() - t_run)
                io.append_jsonl(out / "generations.jsonl", row)
            if on_progress:
                on_progress(row | {"generations": cfg.generations})
    front = _front(space, algorithm.pop, cache)
    result = NasResult(best=front[0], front=tuple(front), history=history, evaluated=len(cache),
                       seconds=time.perf_counter() - t0, config=cfg, out_dir=str(out) if out else None)
    if out is not None:
        io.write_json(out / "pareto.json", {
            "schema_version": SCHEMA_VERSION, "config": asdict(cfg), "space": {"cells": space.cells,
                                                                              "genes": space.names},
            "objectives": ["-rdm_score", "synops", "params"],
            "front": [asdict(c) | {"genome": list(c.genome)} for c in front],
            "best": asdict(front[0]) | {"genome": list(front[0].genome)},
            "evaluated": len(cache), "search_seconds": elapsed + time.perf_counter() - t_run,
        })
        plot_front(front, out / "pareto.png")
    return result


def _save(path: Path, cfg: NasConfig, algorithm, gen: int, cache: dict, history: list, seconds: float) -> None:
    pop = algorithm.pop
    state = {
        "format": CHECKPOINT_FORMAT, "schema_version": SCHEMA_VERSION, "config": cfg.search_key(),
        "generation": gen, "n_iter": int(algorithm.n_iter), "n_eval": int(algorithm.evaluator.n_eval),
        "rng": algorithm.random_state.bit_generator.state,
        "pop": {"X": pop.get("X").astype(int).tolist(), "F": pop.get("F").tolist(),
                "rank": pop.get("rank").astype(int).tolist(), "crowding": _encode_crowding(pop.get("crowding"))},
        "evaluations": list(cache.values()), "history": history, "seconds": seconds,
    }
    io.write_json(path, state)


def _restore(algorithm, problem, state: dict) -> None:
    """Put the algorithm into the state saved after a generation (see :func:`_save`)."""
    from pymoo.core.population import Population

    p = state["pop"]
    pop = Population.new(X=np.array(p["X"], dtype=int))
    _set_objectives(problem, pop, np.array(p["F"], dtype=np.float64))
    pop.set("rank", np.array(p["rank"], dtype=int), "crowding", _decode_crowding(p["crowding"]))
    algorithm.pop = pop
    algorithm.is_initialized = True
    algorithm.n_iter = int(state["n_iter"])
    algorithm.evaluator.n_eval = int(state["n_eval"])
    algorithm.random_state.bit_generator.state = state["rng"]
    algorithm._set_optimum()


# ---------------------------------------------------------------- after the search

def _load_front(result_or_dir) -> tuple[list[NasCandidate], dict]:
    if isinstance(result_or_dir, NasResult):
        return list(result_or_dir.front), asdict(result_or_dir.config)
    d = io.read_json(Path(result_or_dir) / "pareto.json")
    front = [NasCandidate(genome=tuple(c["genome"]), arch=c["arch"], score=c["score"], synops=c["synops"],
                          params=c["params"], degenerate=c.get("degenerate", False)) for c in d["front"]]
    return front, d["config"]


def train_best(
    result_or_dir,
    *,
    top: int = 1,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-2,
    seed: int = 0,
    targets: tuple[str, ...] = (),
    simulate: Callable[..., Any] | None = None,
    deploy_samples: int | None = None,
    out_dir: str | Path | None = None,
    device: str | None = None,
    on_progress: Callable[[str, dict], None] | None = None,
) -> list[dict]:
    """Train the ``top`` front members with the best RDM scores, export each to NIR and run it on ``targets``.

    ``result_or_dir`` is a :class:`NasResult` or a directory with ``pareto.json``. Returns one dict
    per network: genome, architecture, torch test accuracy, and per target the accuracy on the
    first ``deploy_samples`` test samples (None: all) plus spike agreement with the torch model.
    With ``out_dir`` writes ``best{i}/`` (model.pt, model.nir, training files) and ``deploy.json``.
    The targets run through ``simulate(graph, x, target=..., dt=...)`` (``spikesmith.api.simulate``;
    :func:`spikesmith.api.train_nas_best` passes it), so the search never imports the targets.
    """
    import torch

    from spikesmith.compile.export import export_network
    from spikesmith.data import make_loaders
    from spikesmith.evolve.nas.network import wire
    from spikesmith.nn import build, save_model
    from spikesmith.seeding import epoch_order
    from spikesmith.train import TrainConfig, fit

    front, cfg = _load_front(result_or_dir)
    if top < 1:
        raise InputError(f"top must be >= 1, got {top}")
    unknown = sorted(set(targets) - {"norse", "lava"})
    if unknown:
        raise InputError(f"unknown target(s) {unknown} (expected 'norse' and/or 'lava')")
    if targets and simulate is None:
        raise InputError("deploying to targets needs simulate=spikesmith.api.simulate "
                         "(or call spikesmith.api.train_nas_best)")
    steps, data = int(cfg["steps"]), str(cfg["data"])
    space = NasSpace(cells=int(cfg["cells"]))
    train, test, info = make_loaders(data, batch_size=batch_size, steps=steps, seed=seed)
    out = Path(out_dir) if out_dir is not None else None
    results = []
    for i, cand in enumerate(front[:top]):
        sub = out / f"best{i}" if out else None
        wiring = wire(space.decode(cand.genome), space=space, channels=int(cfg["channels"]),
                      input_shape=info.input_shape, num_classes=info.num_classes)
        model = build(wiring, seed=seed)

        def progress(row, i=i):
            if on_progress:
                on_progress("train", row | {"network": i})

        trained = fit(model, epoch_order(train, seed), lambda: test, TrainConfig(epochs=epochs, lr=lr, seed=seed, device=device),
                      out_dir=sub, on_progress=progress)
        model = model.cpu().eval()
        graph = export_network(model, encoding=info.encoding)
        row = {"network": i, "genome": list(cand.genome), "arch": cand.arch, "rdm_score": cand.score,
               "synops_untrained": cand.synops, "params": cand.params, "test_accuracy": trained.test_accuracy,
               "train_seconds": trained.seconds, "epochs": epochs}
        if sub is not None:
            save_model(sub / "model.pt", model, wiring, steps=steps, data=data, encoding=info.encoding,
                       meta={"genome": list(cand.genome), "arch": cand.arch, "rdm_score": cand.score,
                             "test_accuracy": trained.test_accuracy})
            io.write_nir(sub / "model.nir", graph)
            graph = io.read_nir(sub / "model.nir")  # deploy what was written
        xs, ys = zip(*[(np.asarray(x), np.asarray(y)) for x, y in test])
        x, y = np.concatenate(xs, axis=1).astype(np.float64), np.concatenate(ys)
        if deploy_samples is not None:
            x, y = x[:, :deploy_samples], y[:deploy_samples]
        with torch.no_grad():
            ref_out = model.double()(torch.as_tensor(x)).numpy()
            model.float()
        row["samples"] = int(len(y))
        row["accuracy"] = {"torch": float((ref_out.sum(0).argmax(-1) == y).mean())}
        row["agreement"] = {}
        row["seconds"] = {}
        for target in targets:
            if on_progress:
                on_progress("deploy", {"network": i, "target": target, "samples": int(len(y))})
            t = time.perf_counter()
            trace = simulate(graph, x, target=target, dt=model.dt)
            row["seconds"][target] = time.perf_counter() - t
            row["accuracy"][target] = float((trace.output.sum(0).argmax(-1) == y).mean())
            row["agreement"][target] = float((trace.output == ref_out).mean())
        results.append(row)
        if on_progress:
            on_progress("deployed", row)
    if out is not None:
        io.write_json(out / "deploy.json", {"schema_version": SCHEMA_VERSION, "networks": results})
    return results
