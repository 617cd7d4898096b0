"""Training-free evaluation of one MSE-NAS genome: RDM fitness, synaptic operations, parameters.

Everything a worker needs is in one picklable :class:`EvalContext`; :func:`evaluate_genome` is a
pure function of (genome, context): the network's initial weights come from a seed derived from
(search seed, genome), so any backend, in any order, gives the same numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from spikesmith.errors import InputError
from spikesmith.evolve.fitness import WORST, fitness_variants, mean_fitness, synaptic_operations
from spikesmith.evolve.nas.network import build_nas_net
from spikesmith.evolve.nas.space import NasSpace
from spikesmith.seeding import entropy_seed

METRICS = ("hamming", "pearson")
VARIANTS = ("label", "label-kendall", "free")  # see fitness.CORRELATIONS


@dataclass(frozen=True, kw_only=True)
class EvalContext:
    """Search space, network size and the fitness batches ``(x (T, B, C, H, W), y (B,))`` as numpy arrays;
    ``device`` is where candidates are scored (None: CUDA when available). The batches are copied to
    the device once per context (:attr:`probe`), not once per candidate."""

    space: NasSpace
    batches: tuple[tuple[np.ndarray, np.ndarray], ...]
    channels: int = 16
    num_classes: int = 10
    seed: int = 0
    metric: str = "hamming"
    variant: str = "label"
    all_variants: bool = False  # also score every (variant, metric) pair from the same pass
    device: str | None = None
    loihi_cores: bool = False  # also count the Loihi 2 cores of the candidate (the compile fit report)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise InputError(f"fitness metric must be one of {METRICS}, got {self.metric!r}")
        if self.variant not in VARIANTS:
            raise InputError(f"fitness variant must be one of {VARIANTS}, got {self.variant!r}")
        if not self.batches:
            raise InputError("fitness needs at least one batch")
        if self.channels < 1:
            raise InputError(f"channels must be >= 1, got {self.channels}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.batches[0][0].shape[2:])

    @cached_property
    def torch_device(self) -> torch.device:
        from spikesmith import options

        return options.torch_device("--device", self.device)

    @cached_property
    def probe(self) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        """The fitness batches as tensors on :attr:`torch_device`, made once (on the CPU, views of the arrays)."""
        dev = self.torch_device
        return tuple((torch.as_tensor(x, dtype=torch.float32).to(dev), torch.as_tensor(y).to(dev))
                     for x, y in self.batches)

    def __getstate__(self) -> dict:  # ship the arrays, not the device tensors
        return {k: v for k, v in self.__dict__.items() if k not in ("probe", "torch_device")}


def network_seed(seed: int, genome) -> int:
    """Seed of a genome's initial weights: depends only on (search seed, genome)."""
    return entropy_seed(seed, genome)


def loihi_cores(model) -> int:
    """Loihi 2 cores the network needs: the fit report ``spikesmith compile --to lava`` prints, from the
    network's NIR graph (export, flatten, deployment plan, :func:`spikesmith.compile.resources.estimate`).
    A network that cannot be placed counts its cores all the same (``estimate`` lists the problems)."""
    from spikesmith.compile.export import export_network
    from spikesmith.compile.graph import flatten
    from spikesmith.compile.plan import build_plan
    from spikesmith.compile.resources import estimate
    from spikesmith.compile.semantics import resolve_semantics

    graph = export_network(model.cpu().eval())
    dt, rule, _ = resolve_semantics(graph)
    return int(estimate(build_plan(flatten(graph), dt, rule))["cores"])


def evaluate_genome(genome, ctx: EvalContext) -> dict:
    """Training-free scores of ``genome``: a JSON-able dict with ``score`` (the chosen variant),
    ``degenerate``, ``synops`` (per sample), ``params``, ``rates`` and, with ``ctx.all_variants``,
    ``scores`` keyed ``"{variant}.{metric}"``. One forward pass per batch, one Gram matrix per layer."""
    t0 = time.perf_counter()
    genome = ctx.space.repair(genome)
    # a private generator, not torch's global RNG: thread backends evaluate concurrently
    model = build_nas_net(genome, space=ctx.space, channels=ctx.channels, input_shape=ctx.input_shape,
                          num_classes=ctx.num_classes, seed=network_seed(ctx.seed, genome)).to(ctx.torch_device)
    model.train()  # batch norm with batch statistics, as at the start of training
    pairs = [(v, m) for v in VARIANTS for m in METRICS] if ctx.all_variants else [(ctx.variant, ctx.metric)]
    parts: dict[tuple[str, str], list] = {p: [] for p in pairs}
    synops = []
    with torch.inference_mode():  # no autograd records; the probe stays on the device between candidates
        for x, y in ctx.probe:
            _, rec = model(x, record=True)
            for pair, fit in fitness_variants(list(rec.values()), y, pairs).items():
                parts[pair].append(fit)
            synops.append(synaptic_operations(model, rec))
    scores = {f"{v}.{m}": mean_fitness(f) for (v, m), f in parts.items()}
    chosen = scores[f"{ctx.variant}.{ctx.metric}"]
    out = {
        "genome": [int(g) for g in genome],
        "score": float(chosen.score),
        "degenerate": bool(chosen.degenerate),
        "synops": float(np.mean(synops)),
        "params": int(model.num_parameters()),
        "rates": [float(r) for r in chosen.firing_rates],
    }
    if ctx.all_variants:
        out["scores"] = {k: float(f.score) for k, f in scores.items()}
    if ctx.loihi_cores:
        out["cores"] = loihi_cores(model)
    out["seconds"] = time.perf_counter() - t0
    return out


def objectives(result: dict, *, cores: bool = False) -> np.ndarray:
    """The minimisation objectives of an evaluation: (-RDM score, synaptic operations, parameters) and,
    with ``cores``, the Loihi 2 cores (:func:`loihi_cores`)."""
    score = result["score"] if not result["degenerate"] else WORST
    f = [-score, result["synops"], float(result["params"])] + ([float(result["cores"])] if cores else [])
    return np.array(f, dtype=np.float64)
