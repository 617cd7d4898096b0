"""A small seeded evolutionary search over a :class:`SearchSpace`, scored training-free.

(mu + lambda) evolution: a random initial population, then per generation binary
tournament selection, mutation, and survival of the best ``population`` genomes. Every
candidate network is built with a seed derived from the search seed, so a seeded search
is reproducible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from spikesmith.evolve.fitness import Fitness, network_fitness
from spikesmith.evolve.genome import CONV_SPACE, SearchSpace, build_conv_snn
from spikesmith.seeding import seeds


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One evaluated genome."""

    genome: tuple[int, ...]
    values: dict[str, Any]
    fitness: Fitness
    parameters: int
    seed: int  # the seed the network's initial weights were built from


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    """Outcome of :func:`search`: the best candidate and the per-generation history."""

    best: Candidate
    history: list[dict] = field(default_factory=list)
    evaluated: int = 0
    seconds: float = 0.0


def search(
    x: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    input_shape: tuple[int, ...],
    num_classes: int,
    space: SearchSpace = CONV_SPACE,
    population: int = 8,
    generations: int = 3,
    seed: int = 0,
    metric: str = "hamming",
    build: Callable[..., torch.nn.Module] = build_conv_snn,
    on_progress: Callable[[dict], None] | None = None,
) -> SearchResult:
    """Evolve genomes of ``space``; fitness = RDM score of the untrained network on ``x`` (T, B, ...).

    ``labels`` selects the label-aware score (None: label-free).
    """
    if population < 2 or generations < 0:
        raise ValueError("population must be >= 2 and generations >= 0")
    start = time.perf_counter()
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    cache: dict[tuple[int, ...], Candidate] = {}

    def evaluate(genome: tuple[int, ...]) -> Candidate:
        if genome not in cache:
            values = space.decode(genome)
            # the network's initial weights depend only on (seed, genome)
            (net_seed,) = seeds(hash((seed,) + genome) & 0x7FFFFFFF, 1)
            model = build(values, input_shape=input_shape, num_classes=num_classes, seed=net_seed)
            model.train()  # batch norm uses batch statistics, as during training
            fit = network_fitness(model, x, labels, metric=metric)
            params = model.num_parameters()
            cache[genome] = Candidate(genome=genome, values=values, fitness=fit, parameters=params, seed=net_seed)
        return cache[genome]

    def key(c: Candidate):
        # higher score first; fewer parameters break ties
        return (-c.fitness.score, c.parameters, c.genome)

    pop = sorted((evaluate(space.sample(rng)) for _ in range(population)), key=key)
    history = []

    def record(gen: int) -> None:
        scores = [c.fitness.score for c in pop]
        row = {"generation": gen, "best": scores[0], "mean": float(np.mean(scores)),
               "best_genome": list(pop[0].genome), "evaluated": len(cache),
               "seconds": time.perf_counter() - start}
        history.append(row)
        if on_progress:
            on_progress(row)

    record(0)
    for gen in range(1, generations + 1):
        children = []
        for _ in range(population):
            a, b = rng.integers(0, len(pop), size=2)
            parent = pop[min(a, b)]  # pop is sorted: the lower index wins the tournament
            children.append(evaluate(space.mutate(parent.genome, rng)))
        merged = {c.genome: c for c in pop + children}
        pop = sorted(merged.values(), key=key)[:population]
        record(gen)
    return SearchResult(best=pop[0], history=history, evaluated=len(cache),
                        seconds=time.perf_counter() - start)
