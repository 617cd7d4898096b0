"""Spatio-temporal dynamical evolution of GEE networks (spec section 2), a problem on the driver.

Each individual is an initial wiring rule (the network's X blocks, G and the rest of its state,
flattened to one float vector); the driver (:mod:`spikesmith.evolve.driver`) runs the generations.
Evaluating an individual trains it briefly with :func:`spikesmith.train.fit` (the one training loop)
and the spatio-temporal regularisers passed in as its ``extra_loss``:

    loss = CE - lambda_S(t) * H(G) + s * lambda_T(t) * D(X, X_start)

where H(G) is the entropy of |G| normalised to a distribution, divided by its maximum log(g*g), D
the change of each encoding since the start of the generation relative to its scale there, averaged
over the encodings (:func:`temporal_difference`), t the fraction of generations done and s the
configurable sign (default -1: reward change early). Its fitness is
-(held-out CE - lambda_S H + s lambda_T D); each term's share of the gradient, of the fitness and of
its spread over the population is recorded per generation (:func:`signal_shares`). Breeding
(tournament selection, crossover swapping whole rows of every X block and blending G, Gaussian
mutation of X and G, elitism) is a pymoo mating built on the pure kernels below; survival is
generational. Inheritance is Lamarckian by default (the trained values are written back into the
genomes; the best is trained ``final_epochs`` more epochs) or Baldwinian (the genomes stay the
untrained initial rules, a trained copy gives the fitness; the best rules are trained to the end).

Evaluation runs wherever ``--backend`` says: each individual is one task (:func:`train_individual`)
mapped by the shared backends of :mod:`spikesmith.evolve.nas.backends`, whose workers build a
:class:`GeeTrainer` (data, model, codec) once per process from a :class:`GeeContextRef`. On the CPU
every individual trains on one torch thread, so every backend gives the in-process numbers.

Randomness: initial networks and training order from ``SeedSequence(seed, spawn_key=(purpose, ...))``,
breeding from the driver's checkpointed generator, so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikesmith import io
from spikesmith.errors import InputError
from spikesmith.evolve.driver import EvolutionProblem, EvolveConfig, register, run
from spikesmith.evolve.nas.backends import ContextRef
from spikesmith.evolve.gee.schedules import LinearDecay, Schedule, schedule_to_dict
from spikesmith.nn.gee import is_encoded
from spikesmith.seeding import derive
from spikesmith.train import TrainConfig, logits_of

PLOT = "evolution.png"
MODEL = "model.pt"
RESULT = "result.json"

_INIT, _TRAIN = 0, 1  # SeedSequence spawn-key purposes (breeding draws from the driver's generator)


# ----------------------------------------------------------------------------- regularisers


def spatial_entropy(g: torch.Tensor) -> torch.Tensor:
    """Return H(G) in nats: the entropy of |G| normalised to sum to 1 (max log(g*g))."""
    a = g.abs().flatten()
    p = a / a.sum().clamp_min(1e-12)
    return -(p * torch.log(p.clamp_min(1e-12))).sum()


def normalised_entropy(g: torch.Tensor) -> torch.Tensor:
    """Return H(G) / log(g*g), in 0..1: the spatial term, independent of the number of genes."""
    n = g.numel()
    return spatial_entropy(g) / math.log(n) if n > 1 else torch.zeros((), device=g.device)


def temporal_difference(current: list[torch.Tensor], previous: list[torch.Tensor]) -> torch.Tensor:
    """Return D: the mean over encodings (X_pre, X_post of every layer) of each one's mean squared change
    relative to its mean square at the start, mean((X - X0)^2) / mean(X0^2) (dimensionless).

    Per layer and relative to the start, D does not shrink as the network grows and is 1 when every
    encoding has moved by its own scale; its gradient is 0 where X = X0 (the start of a generation).
    """
    if len(current) != len(previous):
        raise InputError(f"temporal_difference: {len(current)} encodings vs {len(previous)} previous")
    if not current:
        return torch.zeros(())
    terms = []
    for c, p in zip(current, previous):
        p = p.to(c.device)
        scale = (p.detach() ** 2).mean().clamp_min(1e-12)
        terms.append(((c - p) ** 2).mean() / scale)
    return torch.stack(terms).mean()


def encoding_tensors(model: nn.Module) -> list[torch.Tensor]:
    """Return every encoding (X_pre, X_post of each encoded layer), in module order."""
    out = []
    for m in model.modules():
        if is_encoded(m):
            out += [m.x_pre, m.x_post]
    return out


def encoding_keys(model: nn.Module) -> list[str]:
    """Return the state_dict keys of every encoding (X blocks), in module order."""
    return [f"{name}.{x}" for name, m in model.named_modules() if is_encoded(m) for x in ("x_pre", "x_post")]


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True, kw_only=True)
class GeeData:
    """In-memory time-first data: x_* (T, N, *input_shape) float32, y_* (N,) int64; val held out of train."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    encoding: str | None = None  # the input encoding of the loaders the data came from

    def __post_init__(self) -> None:
        for split in ("train", "val", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, torch.Tensor) or x.dim() < 3:
                raise InputError(f"GeeData.x_{split}: expected a tensor (T, N, ...), got {getattr(x, 'shape', x)!r}")
            if not isinstance(y, torch.Tensor) or y.dim() != 1 or x.shape[1] != y.shape[0]:
                raise InputError(f"GeeData.y_{split}: expected labels (N,) matching x_{split} (T, N, ...), "
                                 f"got {tuple(getattr(y, 'shape', ()))} for {tuple(x.shape)}")
            if y.numel() == 0:
                raise InputError(f"GeeData.{split}: empty split")
        if self.x_train.shape[2:] != self.x_val.shape[2:] or self.x_train.shape[2:] != self.x_test.shape[2:]:
            raise InputError("GeeData: train, val and test samples differ in shape")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Return one step's input shape."""
        return tuple(self.x_train.shape[2:])

    def to(self, device) -> "GeeData":
        """Return a copy with every tensor on ``device``."""
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return GeeData(**moved)


def load_gee_data(name: str, *, steps: int, seed: int, val_fraction: float = 0.2) -> GeeData:
    """Return dataset ``name`` from :func:`spikesmith.data.make_loaders`, gathered into tensors, with a
    seeded ``val_fraction`` of the training samples held out for fitness."""
    from spikesmith.data import make_loaders

    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"val_fraction: expected a fraction strictly between 0 and 1, got {val_fraction!r}")
    loaders = make_loaders(name, batch_size=256, steps=steps, seed=seed)

    def gather(loader):
        xs, ys = zip(*[(x, y) for x, y in loader])
        return torch.cat(xs, 1).float(), torch.cat(ys).long()

    x_tr, y_tr = gather(loaders.train)
    x_te, y_te = gather(loaders.test)
    gen = torch.Generator().manual_seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))
    perm = torch.randperm(y_tr.numel(), generator=gen)
    n_val = max(1, int(round(val_fraction * y_tr.numel())))
    val, train = perm[:n_val], perm[n_val:]
    return GeeData(name=name, x_train=x_tr[:, train], y_train=y_tr[train], x_val=x_tr[:, val], y_val=y_tr[val],
                   x_test=x_te, y_test=y_te, num_classes=int(loaders.info.num_classes),
                   encoding=loaders.info.encoding)


# ----------------------------------------------------------------------------- configuration


INHERITANCE = ("baldwinian", "lamarckian")


@dataclass(frozen=True, kw_only=True)
class SteOptions:
    """Options of ``evolve gee`` (composed into :class:`~spikesmith.evolve.driver.EvolveConfig`); the
    per-individual training hyper-parameters are a :class:`~spikesmith.train.TrainConfig` (its
    ``epochs`` and ``seed`` are set per call)."""

    arch: str = "digits"
    genes: int = 16
    encoded: bool = True  # False: the same architecture with dense weights (the baseline)
    device: str | None = None  # None: CUDA when available
    epochs_per_generation: int = 1
    final_epochs: int = 8
    max_batches: int | None = None  # per epoch; None = one full pass
    batch_size: int = 64
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, lr=3e-3, warmup_epochs=0.0))
    tournament: int = 3
    elite: int = 1
    crossover_rate: float = 0.9
    mutation_sigma: float = 0.05  # relative to each tensor's standard deviation
    # defaults measured on digits, g=16 (docs/gee.md): each term's gradient on X, G is about a fifth of
    # cross-entropy's at generation 0; H stays on for the run, D decays to 0 over the first 35%
    lambda_s: Schedule = field(default_factory=lambda: LinearDecay(start=0.5, until=1.0))
    lambda_t: Schedule = field(default_factory=lambda: LinearDecay(start=5.0, until=0.35))
    sign: float = -1.0
    # measured (docs/gee.md): Lamarckian ended more accurate on every seed at equal generations
    inheritance: str = "lamarckian"  # or "baldwinian": children inherit their parents' untrained rules

    def __post_init__(self) -> None:
        from spikesmith import options

        options.integer("--genes", self.genes, low=1, high=4096)
        options.integer("--epochs-per-generation", self.epochs_per_generation, low=1, high=options.MAX_EPOCHS)
        options.integer("--final-epochs", self.final_epochs, low=0, high=options.MAX_EPOCHS)
        options.optional_integer("--max-batches", self.max_batches, low=1, high=options.MAX_SAMPLES)
        options.integer("--batch-size", self.batch_size, low=1, high=65_536)
        options.integer("--tournament", self.tournament, low=1, high=10_000)
        options.integer("--elite", self.elite, low=0, high=10_000)
        options.number("--crossover-rate", self.crossover_rate, low=0.0, high=1.0)
        options.number("--mutation-sigma", self.mutation_sigma, low=0.0, high=100.0)
        if not isinstance(self.train, TrainConfig):
            raise InputError(f"SteOptions.train: expected a TrainConfig, got {type(self.train).__name__}")
        if self.sign not in (-1.0, 0.0, 1.0):
            raise InputError(f"--sign: expected -1, 0 or +1, got {self.sign!r}")
        if self.inheritance not in INHERITANCE:
            raise InputError(f"--inheritance: expected one of {', '.join(INHERITANCE)}, got {self.inheritance!r}")
        from spikesmith.nn.families.gee import ARCH_NAMES

        if self.arch not in ARCH_NAMES:
            raise InputError(f"--arch: expected one of {', '.join(ARCH_NAMES)}, got {self.arch!r}")
        options.torch_device("--device", self.device)  # cuda where there is none: refused before any work

    def to_dict(self) -> dict:
        """Return the options as a JSON-ready dict."""
        d = asdict(self)
        d["lambda_s"], d["lambda_t"] = schedule_to_dict(self.lambda_s), schedule_to_dict(self.lambda_t)
        return d


# ----------------------------------------------------------------------------- training and scoring


def regulariser(model: nn.Module, previous: list[torch.Tensor], *, lam_s: float, lam_t: float,
                sign: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (penalty, H, D) with penalty = -lam_s * H + sign * lam_t * D, H = H(G) / log(g*g) and D
    the per-layer relative change of the encodings since ``previous`` (see :func:`temporal_difference`)."""
    gene = getattr(model, "gene", None)
    dev = next(model.parameters()).device
    h = normalised_entropy(gene.g) if gene is not None else torch.zeros((), device=dev)
    d = temporal_difference(encoding_tensors(model), previous).to(dev)
    return -lam_s * h + sign * lam_t * d, h, d


TERMS = ("ce", "entropy", "difference")


def gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor, previous: list[torch.Tensor], *,
                   lam_s: float, lam_t: float, sign: float, label_smoothing: float = 0.1) -> dict:
    """Return the L2 norm of the gradient of each weighted loss term (CE on the batch x (T, B, ...), y
    (B,); lam_s H; lam_t D) with respect to the wiring rules (every X block and G), as {term: norm}."""
    params = encoding_tensors(model) + ([model.gene.g] if getattr(model, "gene", None) is not None else [])
    if not params:
        return {k: 0.0 for k in TERMS}
    was = model.training
    model.eval()
    try:
        ce = F.cross_entropy(logits_of(model(x)).float(), y, label_smoothing=label_smoothing)
        _, h, d = regulariser(model, previous, lam_s=lam_s, lam_t=lam_t, sign=sign)
        out = {}
        for name, term in (("ce", ce), ("entropy", lam_s * h), ("difference", lam_t * d)):
            if not term.requires_grad:
                out[name] = 0.0
                continue
            grads = torch.autograd.grad(term, params, allow_unused=True)
            out[name] = math.sqrt(sum(float((g.float() ** 2).sum()) for g in grads if g is not None))
    finally:
        model.train(was)
    return out


def shares(values: dict) -> dict:
    """Return {term: value / sum of values} for non-negative values (all 0 when the sum is 0)."""
    total = sum(values.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in values.items()}


@torch.no_grad()
def evaluate_split(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 256,
                   label_smoothing: float = 0.1) -> tuple[float, float]:
    """Return (mean cross-entropy, accuracy 0..1) of ``model`` on x (T, N, ...), y (N,)."""
    model.eval()
    ce, correct = 0.0, 0
    for i in range(0, y.numel(), batch_size):
        logits = logits_of(model(x[:, i:i + batch_size])).float()
        yb = y[i:i + batch_size]
        ce += float(F.cross_entropy(logits, yb, label_smoothing=label_smoothing, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    return ce / y.numel(), correct / y.numel()


def score(model: nn.Module, data: GeeData, *, previous: list[torch.Tensor], lam_s: float, lam_t: float,
          sign: float, label_smoothing: float = 0.1, grad_batch: int = 64) -> dict:
    """Return the fitness dict {fitness, val_loss, val_accuracy, entropy, difference, grad_*} on held-out
    data; grad_* are :func:`gradient_norms` on the first ``grad_batch`` held-out samples."""
    ce, acc = evaluate_split(model, data.x_val, data.y_val, label_smoothing=label_smoothing)
    with torch.no_grad():
        penalty, h, d = regulariser(model, previous, lam_s=lam_s, lam_t=lam_t, sign=sign)
    fitness = -(ce + float(penalty))
    if not math.isfinite(fitness):
        fitness = -math.inf
    grads = gradient_norms(model, data.x_val[:, :grad_batch], data.y_val[:grad_batch], previous, lam_s=lam_s,
                           lam_t=lam_t, sign=sign, label_smoothing=label_smoothing)
    return {"fitness": fitness, "val_loss": ce, "val_accuracy": acc, "entropy": float(h), "difference": float(d),
            **{f"grad_{k}": v for k, v in grads.items()}}


def signal_shares(scores: list[dict], *, lam_s: float, lam_t: float) -> dict:
    """Return each term's share of a generation's signal, from the individuals' :func:`score` dicts.

    ``gradient``: of the summed gradient norms on the wiring rules (mean over individuals);
    ``value``: of |CE|, |lam_s H|, |lam_t D| in the fitness (mean over individuals);
    ``spread``: of the standard deviations of CE, lam_s H, lam_t D across the population, i.e. of
    what tells individuals apart in selection. Each sums to 1 (or is all 0).
    """
    ce = np.array([s["val_loss"] for s in scores])
    h = lam_s * np.array([s["entropy"] for s in scores])
    d = lam_t * np.array([s["difference"] for s in scores])
    return {"gradient": shares({k: float(np.mean([s[f"grad_{k}"] for s in scores])) for k in TERMS}),
            "value": shares({"ce": float(np.abs(ce).mean()), "entropy": float(np.abs(h).mean()),
                             "difference": float(np.abs(d).mean())}),
            "spread": shares({"ce": float(ce.std()), "entropy": float(h.std()), "difference": float(d.std())})}


# ----------------------------------------------------------------------------- genetic operators (pure)


def tournament_select(fitness: np.ndarray, k: int, rng: np.random.Generator) -> int:
    """Return the index of the fittest of ``k`` individuals drawn without replacement."""
    k = min(k, len(fitness))
    picks = rng.choice(len(fitness), size=k, replace=False)
    return int(picks[np.argmax(fitness[picks])])


def crossover(a: dict, b: dict, *, x_keys: list[str], g_key: str | None, rng: np.random.Generator) -> dict:
    """Return a child state_dict: parent ``a``'s tensors, with each row (neuron) of every X block taken
    from ``b`` with probability 1/2, and G = alpha * G_a + (1 - alpha) * G_b, alpha ~ U(0, 1)."""
    child = {k: v.clone() for k, v in a.items()}
    for k in x_keys:
        rows = torch.from_numpy(rng.random(a[k].shape[0]) < 0.5)
        child[k][rows] = b[k][rows]
    if g_key is not None:
        alpha = float(rng.random())
        child[g_key] = alpha * a[g_key] + (1.0 - alpha) * b[g_key]
    return child


def mutate(state: dict, *, keys: list[str], sigma: float, rng: np.random.Generator) -> dict:
    """Return ``state`` with Gaussian noise N(0, (sigma * std(tensor))^2) added to each tensor in ``keys``."""
    out = dict(state)
    for k in keys:
        t = state[k]
        noise = torch.from_numpy(rng.standard_normal(tuple(t.shape)).astype(np.float32))
        out[k] = t + float(sigma) * float(t.float().std()) * noise
    return out


def breed(population: list[dict], fitness: np.ndarray, cfg: SteOptions, *, x_keys: list[str],
          g_key: str | None, rng: np.random.Generator) -> list[dict]:
    """Return the next population: the ``cfg.elite`` fittest unchanged, the rest bred from tournaments."""
    order = np.argsort(-fitness, kind="stable")
    nxt = [{k: v.clone() for k, v in population[i].items()} for i in order[:cfg.elite]]
    keys = x_keys + ([g_key] if g_key is not None else [])
    while len(nxt) < len(population):
        i = tournament_select(fitness, cfg.tournament, rng)
        if rng.random() < cfg.crossover_rate and len(population) > 1:
            j = tournament_select(fitness, cfg.tournament, rng)
            a, b = (i, j) if fitness[i] >= fitness[j] else (j, i)
            child = crossover(population[a], population[b], x_keys=x_keys, g_key=g_key, rng=rng)
        else:
            child = {k: v.clone() for k, v in population[i].items()}
        nxt.append(mutate(child, keys=keys, sigma=cfg.mutation_sigma, rng=rng))
    return nxt


# ----------------------------------------------------------------------------- the run


@dataclass(frozen=True, kw_only=True)
class GeeResult:
    """What a GEE-STE (or plain) run returns."""

    arch: str
    genes: int
    encoded: bool
    final_fitness: float
    val_accuracy: float
    test_accuracy: float
    params: int  # trainable parameters of the final network
    dense_params: int  # the same architecture with dense weights
    compression: float
    generations: int
    population: int
    seconds: float
    device: str
    out_dir: str | None
    history: tuple[dict, ...] = ()

    def summary(self) -> dict:
        """Return the result without the history, JSON-ready."""
        d = asdict(self)
        d.pop("history")
        return d


class _StateCodec:
    """A network's state dict <-> one float64 vector (the genome pymoo sees); exact for float32 tensors."""

    def __init__(self, template: dict):
        self.keys = list(template)
        self.shapes = [tuple(template[k].shape) for k in self.keys]
        self.dtypes = [template[k].dtype for k in self.keys]
        self.sizes = [int(template[k].numel()) for k in self.keys]

    def flatten(self, state: dict) -> np.ndarray:
        return np.concatenate([state[k].detach().cpu().reshape(-1).double().numpy() for k in self.keys])

    def unflatten(self, vec: np.ndarray) -> dict:
        out, i = {}, 0
        for k, shape, dtype, n in zip(self.keys, self.shapes, self.dtypes, self.sizes):
            out[k] = torch.from_numpy(np.array(vec[i:i + n])).reshape(shape).to(dtype)
            i += n
        return out


class GeeTrainer:
    """What evaluating a GEE individual needs, in one process: the data on the device, the network's
    spec, one model to load genomes into, and the genome codec. Built once per process, in the
    search's own process and in every backend worker (see :class:`GeeContextRef`)."""

    def __init__(self, data: GeeData, opts: SteOptions, *, seed: int):
        from spikesmith import options
        from spikesmith.nn import build
        from spikesmith.nn.families.gee import GeeSpec

        self.opts, self.seed = opts, int(seed)
        self.device = options.torch_device("--device", opts.device)
        try:
            self.spec = GeeSpec(arch=opts.arch, genes=opts.genes, encoded=bool(opts.encoded),
                                num_classes=data.num_classes, input_shape=data.input_shape)
        except InputError as exc:
            raise InputError(f"data {data.name!r}: {exc}") from None
        self.data = data.to(self.device)
        self.model = build(self.spec, seed=derive(self.seed, _INIT, 0)).to(self.device)
        self.codec = _StateCodec(self.model.state_dict())
        self.x_keys = encoding_keys(self.model)
        self.g_key = "gene.g" if getattr(self.model, "gene", None) is not None else None

    def _batches(self, *purpose: int):
        """``train_batches(epoch)`` for :func:`fit`: a seeded order per (purpose, epoch), at most max_batches."""
        data, o = self.data, self.opts
        n = data.y_train.numel()

        def train_batches(epoch: int):
            gen = torch.Generator().manual_seed(derive(self.seed, _TRAIN, *purpose, epoch))
            perm = torch.randperm(n, generator=gen).to(data.x_train.device)
            chunks = [perm[i:i + o.batch_size] for i in range(0, n, o.batch_size)]
            if o.max_batches is not None:
                chunks = chunks[:o.max_batches]
            return ((data.x_train[:, idx], data.y_train[idx]) for idx in chunks)

        return train_batches

    def train(self, state: dict, *, epochs: int, lr: float, lam_s: float, lam_t: float, purpose: tuple) -> dict:
        """Load ``state``, train it with :func:`fit` (regularisers as ``extra_loss``), return its scores."""
        from spikesmith.train import fit

        self.model.load_state_dict(state)
        previous = [x.detach().clone() for x in encoding_tensors(self.model)]
        sign = self.opts.sign

        def extra_loss(model, epoch):
            return regulariser(model, previous, lam_s=lam_s, lam_t=lam_t, sign=sign)[0]

        cfg = replace(self.opts.train, epochs=epochs, lr=lr, seed=self.seed, device=str(self.device))
        # held-out scoring is the fitness below: fit's per-epoch test pass gets no batches
        result = fit(self.model, self._batches(*purpose), lambda: (), cfg,
                     extra_loss=extra_loss if (lam_s or lam_t) else None)
        s = score(self.model, self.data, previous=previous, lam_s=lam_s, lam_t=lam_t, sign=sign,
                  label_smoothing=cfg.label_smoothing)
        return s | {"train_loss": float(result.history[-1]["loss"]) if result.history else math.nan}


@dataclass(frozen=True, kw_only=True)
class GeeContextRef(ContextRef):
    """A :class:`GeeTrainer` named by (dataset, steps, seed, options): a backend's workers load the data
    themselves (a few bytes per task, never a pickled dataset)."""

    data: str
    steps: int
    seed: int
    opts: SteOptions

    def build(self) -> GeeTrainer:
        return GeeTrainer(load_gee_data(self.data, steps=self.steps, seed=self.seed), self.opts, seed=self.seed)


@dataclass(frozen=True, kw_only=True, eq=False)
class GeeDataRef(ContextRef):
    """A :class:`GeeTrainer` over data held in memory (a :class:`GeeData` given to the API): shipped once
    to each worker (process initialiser, Dask scatter, Ray object store)."""

    data: GeeData
    seed: int
    opts: SteOptions

    def build(self) -> GeeTrainer:
        return GeeTrainer(self.data, self.opts, seed=self.seed)


@contextlib.contextmanager
def cpu_threads(device: torch.device, n: int = 1):
    """Run the block with ``n`` torch threads when ``device`` is the CPU (restored after): a reduction split
    over another number of threads rounds differently, so GEE training is pinned to one thread wherever
    it runs (in-process, in any backend's worker, on any machine) and gives the same numbers."""
    threads = torch.get_num_threads()
    if device.type == "cpu" and threads != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def train_individual(task: dict, trainer: GeeTrainer) -> dict:
    """Evaluate one individual where a backend runs it: train the genome ``task["x"]`` for
    ``task["epochs"]`` with the generation's ``lr``, ``lam_s``, ``lam_t`` and score it. Returns
    ``{"score": ..., "x": the trained genome or None}`` (``task["keep"]``: Lamarckian write-back).
    A pure function of (task, trainer settings): every backend gives the same numbers (one CPU
    thread per individual, :func:`cpu_threads`; the backends' workers are the parallelism)."""
    with cpu_threads(trainer.device):
        s = trainer.train(trainer.codec.unflatten(task["x"]), epochs=task["epochs"], lr=task["lr"],
                          lam_s=task["lam_s"], lam_t=task["lam_t"], purpose=tuple(task["purpose"]))
        return {"score": s, "x": trainer.codec.flatten(trainer.model.state_dict()) if task["keep"] else None}


@register("gee")
class GeeSte(EvolutionProblem):
    """GEE-STE: maximise the regularised held-out fitness of briefly trained initial wiring rules."""

    objectives = ("fitness",)
    maximised = (True,)
    min_population = 1
    options_type = SteOptions

    def __init__(self, cfg: EvolveConfig, *, data: GeeData | None = None):
        super().__init__(cfg)
        cfg = self.cfg
        o = cfg.options
        if o.elite >= cfg.population and cfg.generations > 0:
            raise InputError(f"--elite: expected fewer elites ({o.elite}) than individuals ({cfg.population})")
        if data is not None and data.name != cfg.data:
            raise InputError(f"data: the GeeData is {data.name!r} but the config names {cfg.data!r}")
        self.opts: SteOptions = o
        # workers build the trainer from this: the dataset by name, or (API) the GeeData itself
        self.ref = (GeeDataRef(data=data.to("cpu"), seed=cfg.seed, opts=o) if data is not None else
                    GeeContextRef(data=cfg.data, steps=cfg.steps, seed=cfg.seed, opts=o))
        self._scores: list[dict] = []

    # -- set-up: this process's trainer (the local backend shares it; it gives the final training)
    def _ensure_spec(self) -> None:
        if not hasattr(self, "trainer"):  # the genome length is needed before prepare (pymoo set-up)
            from spikesmith.evolve.nas.backends import resolve_context

            self.trainer: GeeTrainer = resolve_context(self.ref)
            t = self.trainer
            self.spec, self.codec, self.device, self.data, self.model = t.spec, t.codec, t.device, t.data, t.model
            self.x_keys, self.g_key = t.x_keys, t.g_key

    def prepare(self) -> None:
        self._ensure_spec()

    def open_backend(self):
        from spikesmith.evolve.nas.backends import make_backend

        self.backend = make_backend(self.cfg.backend, self.ref, workers=self.cfg.workers, cluster=self.cfg.cluster,
                                    fn=train_individual)
        return self.backend

    def pymoo_problem(self):
        from pymoo.core.problem import Problem

        self._ensure_spec()
        return Problem(n_var=sum(self.codec.sizes), n_obj=1, xl=None, xu=None, vtype=float)

    def algorithm(self):
        from pymoo.algorithms.soo.nonconvex.ga import GA
        from pymoo.core.infill import InfillCriterion
        from pymoo.core.population import Population
        from pymoo.core.sampling import Sampling
        from pymoo.core.survival import Survival

        from spikesmith.nn import build

        self._ensure_spec()
        prob = self

        class InitialRules(Sampling):
            """Networks built from seeds (seed, init, i): the initial wiring rules."""

            def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
                return np.stack([prob.codec.flatten(build(prob.spec, seed=derive(prob.cfg.seed, _INIT, i)).state_dict())
                                 for i in range(n_samples)])

        class Breed(InfillCriterion):
            """The elites unchanged, the rest from tournaments, row crossover and mutation (:func:`breed`)."""

            def _do(self, problem, pop, n_offsprings, random_state=None, **kwargs):
                states = [prob.codec.unflatten(x) for x in pop.get("X")]
                fitness = -pop.get("F")[:, 0]
                children = breed(states, fitness, prob.opts, x_keys=prob.x_keys, g_key=prob.g_key, rng=random_state)
                return Population.new("X", np.stack([prob.codec.flatten(c) for c in children[:n_offsprings]]))

        class Generational(Survival):
            """The offspring replace their parents."""

            def __init__(self):
                super().__init__(filter_infeasible=False)

            def _do(self, problem, pop, n_survive=None, **kwargs):
                return pop[len(pop) - n_survive:]

        return GA(pop_size=self.cfg.population, n_offsprings=self.cfg.population, sampling=InitialRules(),
                  mating=Breed(), survival=Generational(), eliminate_duplicates=False)

    # -- evaluation: train with the one fit, score on held-out data
    def progress(self, generation: int) -> float:
        """t, the fraction of generations done (generation 0 is the first of generations + 1)."""
        return generation / (self.cfg.generations + 1)

    def lr_at(self, generation: int) -> float:
        """The learning rate of a generation: Lamarckian lineages keep training, so it decays on a cosine
        over the generations and the final epochs; Baldwinian individuals each train from their
        untrained rules, at the configured rate."""
        if self.opts.inheritance == "baldwinian":
            return self.opts.train.lr
        total = self.cfg.generations + 1 + self.opts.final_epochs
        return self.opts.train.lr * 0.5 * (1.0 + math.cos(math.pi * generation / total))

    def train(self, state: dict, **kwargs) -> dict:
        """Train ``state`` in this process (see :meth:`GeeTrainer.train`), on one CPU thread like every individual."""
        with cpu_threads(self.device):
            return self.trainer.train(state, **kwargs)

    def evaluate(self, X, generation):
        t = self.progress(generation)
        lam_s, lam_t, lr = self.opts.lambda_s(t), self.opts.lambda_t(t), self.lr_at(generation)
        lamarckian = self.opts.inheritance == "lamarckian"
        tasks = [{"x": np.asarray(x, dtype=np.float64), "epochs": self.opts.epochs_per_generation, "lr": lr,
                  "lam_s": lam_s, "lam_t": lam_t, "purpose": (generation, i), "keep": lamarckian}
                 for i, x in enumerate(np.asarray(X))]
        results = self.backend.map(tasks)
        self._scores = [r["score"] for r in results]
        for i, s in enumerate(self._scores):
            self.cache[f"{generation}.{i}"] = s | {"generation": generation, "individual": i}
        self._lams = (lam_s, lam_t, lr)
        # Lamarckian: the trained values are inherited; Baldwinian: the genomes stay the untrained
        # rules, only their fitness comes from training
        trained = np.stack([r["x"] for r in results]) if lamarckian else None
        return np.array([[-s["fitness"]] for s in self._scores]), trained

    def record(self, algorithm, generation):
        sc = self._scores
        fit = np.array([s["fitness"] for s in sc])
        b = int(np.argmax(fit))
        lam_s, lam_t, lr = self._lams
        return {"best_fitness": float(fit[b]), "mean_fitness": float(fit.mean()), "entropy": sc[b]["entropy"],
                "difference": sc[b]["difference"], "mean_difference": float(np.mean([s["difference"] for s in sc])),
                "val_accuracy": sc[b]["val_accuracy"], "val_loss": sc[b]["val_loss"],
                "mean_val_accuracy": float(np.mean([s["val_accuracy"] for s in sc])),
                "train_loss": sc[b]["train_loss"], "lambda_s": lam_s, "lambda_t": lam_t, "lr": lr,
                "shares": signal_shares(sc, lam_s=lam_s, lam_t=lam_t)}

    # -- the end: train the best to the end, test, write the model
    def finish(self, algorithm, history, out: Path | None, seconds: float) -> GeeResult:
        from spikesmith.evolve.gee.report import report_of

        t0 = time.perf_counter()
        F = algorithm.pop.get("F")[:, 0]
        best = int(np.argmin(F))
        state = self.codec.unflatten(algorithm.pop.get("X")[best])
        final = {"fitness": float(-F[best])}
        o = self.opts
        # Baldwinian genomes are untrained rules: the best is trained from them for its generation's
        # epochs plus the final ones; a Lamarckian genome already holds its trained values
        epochs = o.final_epochs + (o.epochs_per_generation if o.inheritance == "baldwinian" else 0)
        if epochs:
            g = self.cfg.generations + 1
            t = 1.0
            final = self.train(state, epochs=epochs, lr=self.lr_at(g), lam_s=o.lambda_s(t),
                               lam_t=o.lambda_t(t), purpose=(g, 0))
        else:
            self.model.load_state_dict(state)
            with cpu_threads(self.device):
                final |= {"val_accuracy": evaluate_split(self.model, self.data.x_val, self.data.y_val,
                                                         label_smoothing=o.train.label_smoothing)[1]}
        model = self.model
        with cpu_threads(self.device):
            _, test_acc = evaluate_split(model, self.data.x_test, self.data.y_test,
                                         label_smoothing=o.train.label_smoothing)
        report = report_of(model, arch=o.arch, genes=o.genes)
        result = GeeResult(arch=o.arch, genes=o.genes, encoded=self.g_key is not None,
                           final_fitness=float(final["fitness"]), val_accuracy=float(final["val_accuracy"]),
                           test_accuracy=float(test_acc), params=report.encoded_total,
                           dense_params=report.dense_total, compression=report.compression,
                           generations=self.cfg.generations, population=self.cfg.population,
                           seconds=seconds + time.perf_counter() - t0, device=str(self.device),
                           out_dir=str(out) if out is not None else None, history=tuple(history))
        if out is not None:
            from spikesmith.nn import save_model

            save_model(out / MODEL, model.cpu(), self.spec, steps=int(self.data.x_train.shape[0]),
                       data=self.data.name, encoding=self.data.encoding,
                       meta={"test_accuracy": float(test_acc), "generations": self.cfg.generations})
            model.to(self.device)
            io.write_json(out / RESULT, {"schema_version": io.SCHEMA_VERSION, **result.summary()})
            if history:
                plot_history(history, out / PLOT)
        return result


def run_gee_evolution(*, data: str | GeeData = "digits", arch: str = "digits", genes: int = 16,
                      population: int = 8, generations: int = 8, final_epochs: int = 8, steps: int = 4,
                      seed: int = 0, out_dir: str | Path | None = None, resume: bool = False,
                      device: str | None = None, encoded: bool = True, config: SteOptions | None = None,
                      backend: str = "local", workers: int = 2, cluster: str | None = None,
                      on_progress: Callable[[dict], None] | None = None) -> GeeResult:
    """Return the GeeResult of a GEE-STE run of ``arch`` on ``data`` (a dataset name or a GeeData).

    ``arch``, ``genes``, ``final_epochs``, ``device`` and ``encoded`` override the same fields of
    ``config``. ``generations=0`` trains the initial population once (``population=1``: plain
    training for ``epochs_per_generation + final_epochs`` epochs); with ``encoded=False`` the same
    architecture is built with dense weights (the baseline). ``steps`` is T (ignored for a GeeData).
    ``backend``, ``workers`` and ``cluster`` say where individuals train (``spikesmith.evolve.nas.backends``).
    """
    if not isinstance(data, (str, GeeData)):
        raise InputError(f"data: expected a dataset name or a GeeData, got {type(data).__name__}")
    opts = replace(config or SteOptions(), arch=arch, genes=genes, final_epochs=final_epochs, device=device,
                   encoded=bool(encoded))
    name = data if isinstance(data, str) else data.name
    if isinstance(data, GeeData):
        steps = int(data.x_train.shape[0])
    cfg = EvolveConfig(population=population, generations=generations, seed=seed, data=name, steps=steps,
                       backend=backend, workers=workers, cluster=cluster, options=opts)
    problem = GeeSte(cfg, data=data if isinstance(data, GeeData) else None)
    return run(problem, out_dir=out_dir, resume=resume, on_progress=on_progress)


def plot_history(history: list[dict], path: str | Path) -> Path:
    """Write a PNG of best/mean fitness, accuracy, H(G), D(X) and each term's share of the gradient and
    of the fitness spread per generation; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [h["generation"] for h in history]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6))
    a, b, e, c, d, f = axes.ravel()
    a.plot(x, [h["best_fitness"] for h in history], marker="o", label="best")
    a.plot(x, [h["mean_fitness"] for h in history], marker=".", label="mean")
    a.set(xlabel="generation", ylabel="fitness", title="fitness")
    a.legend()
    b.plot(x, [h["val_accuracy"] for h in history], marker="o", label="best")
    b.plot(x, [h["mean_val_accuracy"] for h in history], marker=".", label="mean")
    b.set(xlabel="generation", ylabel="held-out accuracy", title="accuracy", ylim=(0, 1))
    b.legend()
    c.plot(x, [h["entropy"] for h in history], marker="o")
    c.set(xlabel="generation", ylabel="H(G) / log(g*g)", title="spatial entropy")
    d.plot(x, [h["difference"] for h in history], marker="o", label="best")
    d.plot(x, [h["mean_difference"] for h in history], marker=".", label="mean")
    d.set(xlabel="generation", ylabel="D(X)", title="temporal difference", yscale="symlog", )
    d.legend()
    for ax, kind in ((e, "gradient"), (f, "spread")):
        for term, style in zip(TERMS, ("o-", "s--", "^:")):
            ax.plot(x, [h.get("shares", {}).get(kind, {}).get(term, math.nan) for h in history], style, label=term)
        ax.set(xlabel="generation", ylabel="share", ylim=(0, 1),
               title="share of the gradient on X, G" if kind == "gradient" else "share of the fitness spread")
        ax.legend()
    fig.tight_layout()
    try:
        return io.save_figure(path, fig)
    finally:
        plt.close(fig)
