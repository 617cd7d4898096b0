"""Conv-SNN search on the driver: (mu + lambda) evolution over :data:`CONV_SPACE`, scored training-free.

A random initial population, then per generation binary tournament selection (the population is
kept sorted, so the lower index wins), mutation of one gene on average, and survival of the best
``population`` distinct genomes (higher RDM score first, fewer parameters break ties). A candidate's
initial weights depend only on (search seed, genome), so a seeded search is reproducible on every
backend (:func:`evaluate_conv` maps over ``spikesmith.evolve.nas.backends``; workers load the fitness
batch themselves from a :class:`ConvContextRef`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spikesmith.errors import InputError
from spikesmith.evolve.driver import EvolutionProblem, EvolveConfig, register
from spikesmith.evolve.genome import CONV_SPACE, SearchSpace
from spikesmith.evolve.nas.backends import ContextRef
from spikesmith.seeding import entropy_seed

METRICS = ("hamming", "pearson")


@dataclass(frozen=True, kw_only=True)
class ConvOptions:
    """Options of ``evolve search``: fitness batch size, RDM metric, input encoding."""

    samples: int = 256  # samples in the fitness batch
    metric: str = "hamming"
    encoding: str | None = None  # None: the dataset's default

    def __post_init__(self) -> None:
        from spikesmith import options

        options.integer("--samples", self.samples, low=4, high=65_536)
        if self.metric not in METRICS:
            raise InputError(f"--metric: expected one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.encoding not in (None, "rate", "direct"):
            raise InputError(f"--encoding: expected rate or direct, got {self.encoding!r}")


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One evaluated genome."""

    genome: tuple[int, ...]
    values: dict[str, Any]
    score: float
    degenerate: bool
    parameters: int
    seed: int  # the seed the network's initial weights were built from


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    """Outcome of a conv-SNN search: the best candidate and the per-generation history."""

    best: Candidate
    history: list[dict] = field(default_factory=list)
    evaluated: int = 0
    seconds: float = 0.0
    out_dir: str | None = None


def _key(genome) -> str:
    return ",".join(str(int(v)) for v in genome)


_BUILD_LOCK = threading.Lock()  # the conv family seeds torch's global RNG while building: one build at a time


@dataclass(frozen=True, kw_only=True)
class ConvContext:
    """What evaluating a genome needs: the fitness batch x (T, B, C, H, W), labels y (B,), sizes, seed."""

    x: Any
    y: Any
    input_shape: tuple[int, ...]
    num_classes: int
    encoding: str
    seed: int
    metric: str


@dataclass(frozen=True, kw_only=True)
class ConvContextRef(ContextRef):
    """A :class:`ConvContext` named by (dataset, seed, steps, samples, encoding): a backend's workers load
    the batch themselves (see ``spikesmith.evolve.nas.backends.resolve_context``)."""

    data: str
    seed: int
    steps: int
    samples: int
    encoding: str | None
    metric: str

    def build(self) -> ConvContext:
        import torch

        from spikesmith.data import make_loaders

        train, _, info = make_loaders(self.data, batch_size=self.samples, steps=self.steps, seed=self.seed,
                                      encoding=self.encoding)
        x, y = next(iter(train))
        return ConvContext(x=torch.as_tensor(x), y=torch.as_tensor(y), input_shape=tuple(info.input_shape),
                           num_classes=int(info.num_classes), encoding=info.encoding, seed=self.seed,
                           metric=self.metric)


def evaluate_conv(genome, ctx: ConvContext) -> dict:
    """Training-free score of one conv genome: a JSON-able dict (genome, score, degenerate, params, seed).

    A pure function of (genome, context): the initial weights come from (search seed, genome).
    """
    from spikesmith.evolve.fitness import network_fitness
    from spikesmith.evolve.genome import build_conv_snn

    genome = tuple(int(v) for v in genome)
    values = CONV_SPACE.decode(genome)
    net_seed = entropy_seed(ctx.seed, genome)
    with _BUILD_LOCK:
        model = build_conv_snn(values, input_shape=ctx.input_shape, num_classes=ctx.num_classes, seed=net_seed)
    model.train()  # batch norm uses batch statistics, as during training
    fit = network_fitness(model, ctx.x, ctx.y, metric=ctx.metric)
    return {"genome": list(genome), "score": float(fit.score), "degenerate": bool(fit.degenerate),
            "params": int(model.num_parameters()), "seed": int(net_seed)}


@register("search")
class ConvSearch(EvolutionProblem):
    """The conv-SNN architecture search (one objective: the RDM score, maximised)."""

    objectives = ("rdm_score",)
    maximised = (True,)
    space: SearchSpace = CONV_SPACE
    options_type = ConvOptions

    def __init__(self, cfg: EvolveConfig):
        super().__init__(cfg)
        self.opts: ConvOptions = self.cfg.options

    def prepare(self) -> None:
        from spikesmith.evolve.nas.backends import resolve_context

        self.ref = ConvContextRef(data=self.cfg.data, seed=self.cfg.seed, steps=self.cfg.steps,
                                  samples=self.opts.samples, encoding=self.opts.encoding, metric=self.opts.metric)
        self.ctx: ConvContext = resolve_context(self.ref)

    def open_backend(self):
        from spikesmith.evolve.nas.backends import make_backend

        self.backend = make_backend(self.cfg.backend, self.ref, workers=self.cfg.workers, cluster=self.cfg.cluster,
                                    fn=evaluate_conv)
        return self.backend

    def pymoo_problem(self):
        from pymoo.core.problem import Problem

        n = len(self.space.genes)
        return Problem(n_var=n, n_obj=1, xl=np.zeros(n), xu=self.space.upper_bounds.astype(float), vtype=int)

    def algorithm(self):
        from pymoo.algorithms.soo.nonconvex.ga import GA
        from pymoo.core.infill import InfillCriterion
        from pymoo.core.population import Population
        from pymoo.core.sampling import Sampling
        from pymoo.core.survival import Survival

        space, prob = self.space, self

        class Uniform(Sampling):
            def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
                return np.array([space.sample(random_state) for _ in range(n_samples)], dtype=float)

        class TournamentMutation(InfillCriterion):
            """Binary tournament on the sorted population, then :meth:`SearchSpace.mutate`."""

            def _do(self, problem, pop, n_offsprings, random_state=None, **kwargs):
                X = pop.get("X").astype(int)
                children = []
                for _ in range(n_offsprings):
                    a, b = random_state.integers(0, len(pop), size=2)
                    children.append(space.mutate(X[min(a, b)], random_state))
                return Population.new("X", np.array(children, dtype=float))

        class Best(Survival):
            """Distinct genomes sorted by (-score, parameters, genome); the first ``n_survive`` survive."""

            def __init__(self):
                super().__init__(filter_infeasible=False)

            def _do(self, problem, pop, n_survive=None, **kwargs):
                X = pop.get("X").astype(int)
                F = pop.get("F")[:, 0]
                idx = list(range(len(pop)))
                if len(pop) > n_survive:  # merged parents + children: keep each genome once
                    seen = {}
                    for i in idx:
                        seen.setdefault(_key(X[i]), i)
                    idx = sorted(seen.values())
                idx.sort(key=lambda i: (F[i], prob.cache[_key(X[i])]["params"], tuple(X[i])))
                return pop[idx[:n_survive]]

        return GA(pop_size=self.cfg.population, n_offsprings=self.cfg.population, sampling=Uniform(),
                  mating=TournamentMutation(), survival=Best(), eliminate_duplicates=False,
                  advance_after_initial_infill=True)

    def evaluate(self, X, generation):
        genomes = [tuple(int(v) for v in row) for row in np.asarray(X).astype(int)]
        new = list(dict.fromkeys(g for g in genomes if _key(g) not in self.cache))
        for g, r in zip(new, self.backend.map(new)):
            self.cache[_key(g)] = r | {"generation": generation}
        return np.array([[-self.cache[_key(g)]["score"]] for g in genomes]), None

    def _candidate(self, genome) -> Candidate:
        e = self.cache[_key(genome)]
        g = tuple(int(v) for v in genome)
        return Candidate(genome=g, values=self.space.decode(g), score=e["score"], degenerate=e["degenerate"],
                         parameters=e["params"], seed=e["seed"])

    def record(self, algorithm, generation):
        best = algorithm.pop.get("X")[0].astype(int)  # the survival keeps the population sorted
        return {"best": self.cache[_key(best)]["score"],
                "mean": float(np.mean([-f for f in algorithm.pop.get("F")[:, 0]])),
                "best_genome": [int(v) for v in best]}

    def finish(self, algorithm, history, out: Path | None, seconds: float) -> SearchResult:
        best = self._candidate(algorithm.pop.get("X")[0].astype(int))
        if out is not None:
            from spikesmith.nn import build, save_model
            from spikesmith.nn.families.conv import ConvSpec

            spec = ConvSpec.from_values(best.values, input_shape=self.ctx.input_shape,
                                        num_classes=self.ctx.num_classes)
            save_model(out / "model.pt", build(spec, seed=best.seed), spec, steps=self.cfg.steps,
                       data=self.cfg.data, encoding=self.ctx.encoding,
                       meta={"genome": list(best.genome), "rdm_score": best.score, "trained": False})
        return SearchResult(best=best, history=history, evaluated=len(self.cache), seconds=seconds,
                            out_dir=str(out) if out is not None else None)

