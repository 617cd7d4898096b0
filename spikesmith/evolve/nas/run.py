"""MSE-NAS on the evolution driver: NSGA-II (pymoo) over the multi-scale genome, three objectives.

The driver (:mod:`spikesmith.evolve.driver`) asks NSGA-II for genomes, this problem has a backend
evaluate them training-free (:mod:`~spikesmith.evolve.nas.problem`) and returns the objectives
``(-RDM score, synaptic operations, parameters)``; the driver checkpoints every generation.

Files in ``out_dir`` besides the driver's (checkpoint.pt, generations.jsonl, generations.png):
``pareto.json`` and ``pareto.png`` (the final non-dominated front), ``evaluations.jsonl`` (every
evaluation) and ``model.pt`` (the front's best-scoring network, untrained, with the weights it was
scored with).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from spikesmith import io
from spikesmith.errors import InputError
from spikesmith.evolve.driver import EvolutionProblem, EvolveConfig, evolve, register
from spikesmith.evolve.nas.problem import METRICS, VARIANTS, EvalContext, network_seed, objectives
from spikesmith.evolve.nas.space import NasSpace

SCHEMA_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class NasOptions:
    """Options of ``evolve nas`` (defaults: spec section 3 operators, sized for the digits on 2 cores)."""

    offspring: int | None = None  # None: = population
    cells: int = 3
    channels: int = 16
    fitness_batch: int = 64
    fitness_batches: int = 1
    metric: str = "hamming"
    variant: str = "free"  # measured: the only variant ranking accuracy positively on every seed (docs/nas.md)
    crossover_prob: float = 0.9
    mutation_eta: float = 3.0
    # a pymoo constraint (not a penalty): networks with fewer non-empty cells are infeasible, so the
    # front cannot collapse to empty (identity) cells, which minimise SOPs and parameters for free
    min_cells: int = 1
    device: str | None = None  # where candidates are scored; None: CUDA when available
    loihi_cores: bool = False  # a fourth objective: the Loihi 2 cores of the compile fit report

    def __post_init__(self) -> None:
        from spikesmith import options

        options.optional_integer("--offspring", self.offspring, low=1, high=10_000)
        options.integer("--cells", self.cells, low=1, high=64)
        options.integer("--min-cells", self.min_cells, low=0, high=self.cells)
        options.integer("--channels", self.channels, low=1, high=4096)
        options.integer("--fitness-batch", self.fitness_batch, low=4, high=65_536)
        options.integer("--fitness-batches", self.fitness_batches, low=1, high=10_000)
        if self.metric not in METRICS:
            raise InputError(f"--metric: expected one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.variant not in VARIANTS:
            raise InputError(f"--variant: expected one of {', '.join(VARIANTS)}, got {self.variant!r}")
        options.number("--crossover-prob", self.crossover_prob, low=0.0, high=1.0)
        options.number("--mutation-eta", self.mutation_eta, low=0.0, low_open=True, high=1e6)
        options.torch_device("--device", self.device)  # cuda where there is none: refused before any work


@dataclass(frozen=True, kw_only=True)
class NasCandidate:
    """One evaluated genome on the front."""

    genome: tuple[int, ...]
    arch: dict
    score: float
    synops: float
    params: int
    degenerate: bool = False
    cores: int | None = None  # Loihi 2 cores, with the fourth objective


@dataclass(frozen=True, kw_only=True)
class NasResult:
    """Outcome of an MSE-NAS search: the Pareto front (best RDM score first) and the history."""

    best: NasCandidate
    front: tuple[NasCandidate, ...]
    history: list[dict] = field(default_factory=list)
    evaluated: int = 0
    seconds: float = 0.0
    config: dict = field(default_factory=dict)  # data, steps, seed and the NasOptions fields
    out_dir: str | None = None


def nonempty_cells(space: NasSpace, genome) -> int:
    """Return how many cells of ``genome`` have a motif other than ``empty``."""
    return sum(c.motif != "empty" for c in space.decode(genome).cells)


def front_composition(front) -> dict:
    """Return the front's make-up: each member's cell motifs (front order) and the motif counts over it."""
    members = [[c["motif"] for c in m.arch["cells"]] for m in front]
    counts: dict[str, int] = {}
    for cells in members:
        for name in cells:
            counts[name] = counts.get(name, 0) + 1
    return {"members": members, "motifs": dict(sorted(counts.items())),
            "empty_networks": sum(all(n == "empty" for n in cells) for cells in members)}


def _key(genome) -> str:
    return ",".join(str(int(v)) for v in genome)


@register("nas")
class MseNas(EvolutionProblem):
    """MSE-NAS: minimise (-RDM score, synaptic operations per sample, parameters) with NSGA-II."""

    objectives = ("rdm_score", "synops", "params")
    maximised = (True, False, False)
    options_type = NasOptions

    def __init__(self, cfg: EvolveConfig):
        super().__init__(cfg)
        self.opts: NasOptions = self.cfg.options
        self.space = NasSpace(cells=self.opts.cells)
        if self.opts.loihi_cores:
            self.objectives, self.maximised = self.objectives + ("loihi_cores",), self.maximised + (False,)

    def prepare(self) -> None:
        from spikesmith.data.probe import ProbeRef
        from spikesmith.evolve.nas.backends import NasContextRef, resolve_context

        # workers get the fitness batches by (dataset, seed, steps, batch size), never a pickled copy
        probe = ProbeRef(name=self.cfg.data, seed=self.cfg.seed, steps=self.cfg.steps,
                         batch_size=self.opts.fitness_batch, batches=self.opts.fitness_batches)
        self.ref = NasContextRef(space=self.space, probe=probe, channels=self.opts.channels, seed=self.cfg.seed,
                                 metric=self.opts.metric, variant=self.opts.variant, device=self.opts.device,
                                 loihi_cores=self.opts.loihi_cores)
        self.ctx: EvalContext = resolve_context(self.ref)

    def open_backend(self):
        from spikesmith.evolve.nas.backends import make_backend

        self.backend = make_backend(self.cfg.backend, self.ref, workers=self.cfg.workers, cluster=self.cfg.cluster)
        return self.backend

    def pymoo_problem(self):
        from pymoo.core.problem import Problem

        n = self.space.n_genes
        return Problem(n_var=n, n_obj=len(self.objectives), n_ieq_constr=1, xl=np.zeros(n),
                       xu=self.space.upper_bounds.astype(float), vtype=int)

    def constraints(self, X) -> np.ndarray:
        """G = min_cells - (non-empty cells) per genome: feasible (<= 0) with at least ``min_cells`` cells
        whose motif is not ``empty``."""
        return np.array([[self.opts.min_cells - nonempty_cells(self.space, row)] for row in np.asarray(X).astype(int)],
                        dtype=np.float64)

    def algorithm(self):
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.repair import Repair
        from pymoo.operators.crossover.pntx import TwoPointCrossover
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.operators.sampling.rnd import IntegerRandomSampling

        space = self.space

        class Canonical(Repair):
            """Integer rounding, then the space's structural repair (input counts, unused genes)."""

            def _do(self, problem, X, **kwargs):
                X = np.clip(np.around(np.asarray(X, dtype=np.float64)), problem.xl, problem.xu).astype(int)
                return np.array([space.repair(row) for row in X], dtype=int)

        o = self.opts
        return NSGA2(
            pop_size=self.cfg.population,
            n_offsprings=o.offspring or self.cfg.population,
            sampling=IntegerRandomSampling(),
            crossover=TwoPointCrossover(prob=o.crossover_prob, vtype=float, repair=RoundingRepair()),
            mutation=PM(prob=1.0, prob_var=1.0 / space.n_genes, eta=o.mutation_eta, vtype=float,
                        repair=RoundingRepair()),
            repair=Canonical(),
            eliminate_duplicates=True,
        )

    def evaluate(self, X, generation):
        todo = [tuple(int(v) for v in row) for row in np.asarray(X).astype(int)]
        new = list(dict.fromkeys(g for g in todo if _key(g) not in self.cache))
        for g, r in zip(new, self.backend.map(new)):
            self.cache[_key(g)] = r | {"generation": generation}
        self._degenerate = int(sum(self.cache[_key(g)]["degenerate"] for g in todo))
        return np.array([objectives(self.cache[_key(g)], cores=self.opts.loihi_cores) for g in todo]), None

    def front(self, pop) -> list[NasCandidate]:
        """Feasible rank-0 members of ``pop``, best RDM score first (fewer SOPs, then parameters break
        ties); when no member is feasible, the least violating ones."""
        out = []
        cv = np.asarray(self.constraints(pop.get("X"))).max(axis=1).clip(min=0)
        ranks = pop.get("rank")
        keep = [(c == 0 and r == 0) for c, r in zip(cv, ranks)] if (cv == 0).any() else list(cv == cv.min())
        for row, k in zip(pop.get("X").astype(int), keep):
            if not k:
                continue
            g = tuple(int(v) for v in row)
            e = self.cache[_key(g)]
            out.append(NasCandidate(genome=g, arch=self.space.decode(g).to_dict(), score=e["score"],
                                    synops=e["synops"], params=e["params"], degenerate=e["degenerate"],
                                    cores=e.get("cores")))
        out.sort(key=lambda c: (-c.score if not c.degenerate else 2.0, c.synops, c.params, c.genome))
        return out

    def record(self, algorithm, generation):
        front = self.front(algorithm.pop)
        scores = np.array([self.cache[_key(row)]["score"] for row in algorithm.pop.get("X").astype(int)])
        return {"best_score": float(scores.max()), "mean_score": float(scores.mean()), "front_size": len(front),
                "best_genome": list(front[0].genome), "front_min_synops": float(min(c.synops for c in front)),
                "front_min_params": int(min(c.params for c in front)), "degenerate": self._degenerate,
                "front_motifs": front_composition(front)["motifs"]} | (
                    {"front_min_cores": int(min(c.cores for c in front))} if self.opts.loihi_cores else {})

    def config_dict(self) -> dict:
        """What train_best needs to rebuild a front member: data, steps, seed and the options."""
        return {"data": self.cfg.data, "steps": self.cfg.steps, "seed": self.cfg.seed,
                "population": self.cfg.population, "generations": self.cfg.generations} | asdict(self.opts)

    def finish(self, algorithm, history, out: Path | None, seconds: float) -> NasResult:
        front = self.front(algorithm.pop)
        result = NasResult(best=front[0], front=tuple(front), history=history, evaluated=len(self.cache),
                           seconds=seconds, config=self.config_dict(), out_dir=str(out) if out else None)
        if out is not None:
            from spikesmith.evolve.nas.network import wire
            from spikesmith.nn import build, save_model

            io.write_jsonl(out / "evaluations.jsonl", list(self.cache.values()))
            io.write_json(out / "pareto.json", {
                "schema_version": SCHEMA_VERSION, "config": self.config_dict(),
                "space": {"cells": self.space.cells, "genes": self.space.names},
                "objectives": ["-" + self.objectives[0], *self.objectives[1:]],
                "front": [asdict(c) | {"genome": list(c.genome)} for c in front],
                "best": asdict(front[0]) | {"genome": list(front[0].genome)},
                "constraint": f"non-empty cells >= {self.opts.min_cells}", "composition": front_composition(front),
                "evaluated": len(self.cache), "search_seconds": seconds,
            })
            plot_front(front, out / "pareto.png")
            best = front[0]
            wiring = wire(self.space.decode(best.genome), space=self.space, channels=self.opts.channels,
                          input_shape=self.ctx.input_shape, num_classes=self.ctx.num_classes)
            from spikesmith.data.probe import probe_encoding

            save_model(out / "model.pt", build(wiring, seed=network_seed(self.cfg.seed, best.genome)), wiring,
                       steps=self.cfg.steps, data=self.cfg.data, encoding=probe_encoding(self.ref.probe),
                       meta={"genome": list(best.genome), "arch": best.arch, "rdm_score": best.score,
                             "trained": False})
        return result


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


def run_nas(*, data: str = "digits", generations: int = 10, population: int = 20, seed: int = 0,
            out_dir: str | Path | None = None, resume: bool = False, backend: str = "local",
            cluster: str | None = None, steps: int = 6, workers: int = 2,
            on_progress: Callable[[dict], None] | None = None, **options) -> NasResult:
    """Run the MSE-NAS search on the driver; returns the Pareto front and history.

    ``options`` are :class:`NasOptions` fields (cells, channels, offspring, fitness_batch,
    fitness_batches, metric, variant, crossover_prob, mutation_eta).
    """
    cfg = EvolveConfig(data=data, generations=generations, population=population, seed=seed, steps=steps,
                       backend=backend, cluster=cluster, workers=workers, options=NasOptions(**options))
    return evolve("nas", cfg, out_dir=out_dir, resume=resume, on_progress=on_progress)


# ---------------------------------------------------------------- after the search

def _load_front(result_or_dir) -> tuple[list[NasCandidate], dict]:
    if isinstance(result_or_dir, NasResult):
        return list(result_or_dir.front), dict(result_or_dir.config)
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
    unknown = sorted(set(targets) - {"norse", "lava", "loihi"})
    if unknown:
        raise InputError(f"unknown target(s) {unknown} (expected norse, lava or loihi)")
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
