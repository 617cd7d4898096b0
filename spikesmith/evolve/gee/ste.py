"""STE: spatio-temporal dynamical evolution of GEE networks (spec section 2).

Inner loop: surrogate-gradient training of the encodings X and the shared G with

    loss = CE - lambda_S(t) * H(G) + s * lambda_T(t) * D(X, X_start)

where H(G) is the entropy (nats) of |G| normalised to a distribution, D the mean squared change of
all encodings since the start of the generation (epoch), t the fraction of generations done and s
the configurable sign (default -1: reward change early). Outer loop: a population of initial wiring
rules (networks seeded differently: X and G) is trained briefly each generation, scored by
fitness = -(held-out CE - lambda_S H(G) + s lambda_T D), and bred (tournament selection, crossover
swapping whole rows of every X block and blending G, Gaussian mutation of X and G, elitism). The
population is Lamarckian: trained encodings are inherited. The best individual of the last
generation is then trained to the end (``final_epochs`` more epochs).

Every stage (generation or final epoch) ends with an atomic checkpoint of tensors, numbers and
strings (``torch.load(weights_only=True)``); randomness is drawn from ``SeedSequence(seed,
spawn_key=(purpose, stage, individual))`` so a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikesmith import io
from spikesmith.errors import InputError
from spikesmith.nn.gee import is_encoded
from spikesmith.evolve.gee.schedules import LinearDecay, Schedule, schedule_to_dict
from spikesmith.seeding import derive
from spikesmith.train import logits_of

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
PLOT = "evolution.png"
MODEL = "model.pt"
RESULT = "result.json"

_INIT, _TRAIN, _BREED = 0, 1, 2  # SeedSequence spawn-key purposes


# ----------------------------------------------------------------------------- regularisers


def spatial_entropy(g: torch.Tensor) -> torch.Tensor:
    """Return H(G) in nats: the entropy of |G| normalised to sum to 1 (max log(g*g))."""
    a = g.abs().flatten()
    p = a / a.sum().clamp_min(1e-12)
    return -(p * torch.log(p.clamp_min(1e-12))).sum()


def temporal_difference(current: list[torch.Tensor], previous: list[torch.Tensor]) -> torch.Tensor:
    """Return D: the mean squared change over every encoding entry, current vs previous (same shapes)."""
    if len(current) != len(previous):
        raise InputError(f"temporal_difference: {len(current)} encodings vs {len(previous)} previous")
    if not current:
        return torch.zeros(())
    total = sum(((c - p.to(c.device)) ** 2).sum() for c, p in zip(current, previous))
    return total / sum(c.numel() for c in current)


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


@dataclass(frozen=True, kw_only=True)
class SteConfig:
    """STE hyper-parameters. ``generations=0`` trains one network for ``final_epochs`` (plain training)."""

    population: int = 8
    generations: int = 8
    epochs_per_generation: int = 1
    final_epochs: int = 8
    max_batches: int | None = None  # per epoch; None = one full pass
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    tournament: int = 3
    elite: int = 1
    crossover_rate: float = 0.9
    mutation_sigma: float = 0.05  # relative to each tensor's standard deviation
    lambda_s: Schedule = field(default_factory=lambda: LinearDecay(start=0.05, until=0.3))
    lambda_t: Schedule = field(default_factory=lambda: LinearDecay(start=10.0, until=0.3))
    sign: float = -1.0

    def __post_init__(self) -> None:
        ints = {"population": 1, "generations": 0, "epochs_per_generation": 1, "final_epochs": 0,
                "batch_size": 1, "tournament": 1, "elite": 0}
        for name, low in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise InputError(f"SteConfig.{name}: expected an integer >= {low}, got {v!r}")
        if self.max_batches is not None and (not isinstance(self.max_batches, int) or self.max_batches < 1):
            raise InputError(f"SteConfig.max_batches: expected None or an integer >= 1, got {self.max_batches!r}")
        if self.elite >= self.population and self.generations > 1:
            raise InputError(f"SteConfig.elite: expected fewer elites ({self.elite}) than individuals "
                             f"({self.population})")
        for name in ("lr", "mutation_sigma", "weight_decay", "grad_clip"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (name == "lr" and v == 0):
                raise InputError(f"SteConfig.{name}: expected a finite non-negative number, got {v!r}")
        if not 0.0 <= self.crossover_rate <= 1.0:
            raise InputError(f"SteConfig.crossover_rate: expected a probability, got {self.crossover_rate!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise InputError(f"SteConfig.label_smoothing: expected [0, 1), got {self.label_smoothing!r}")
        if self.sign not in (-1.0, 0.0, 1.0):
            raise InputError(f"SteConfig.sign: expected -1, 0 or +1, got {self.sign!r}")
        if self.generations + self.final_epochs == 0:
            raise InputError("SteConfig: generations and final_epochs are both 0; nothing to train")

    def to_dict(self) -> dict:
        """Return the configuration as a JSON-ready dict."""
        d = asdict(self)
        d["lambda_s"], d["lambda_t"] = schedule_to_dict(self.lambda_s), schedule_to_dict(self.lambda_t)
        return d

    def progress(self, stage: int) -> float:
        """Return t, the fraction of generations done at ``stage`` (1.0 from the final phase on)."""
        return stage / self.generations if stage < self.generations else 1.0


# ----------------------------------------------------------------------------- training and scoring


def regulariser(model: nn.Module, previous: list[torch.Tensor], *, lam_s: float, lam_t: float,
                sign: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (penalty, H(G), D(X)) with penalty = -lam_s * H(G) + sign * lam_t * D(X, previous)."""
    gene = getattr(model, "gene", None)
    dev = next(model.parameters()).device
    h = spatial_entropy(gene.g) if gene is not None else torch.zeros((), device=dev)
    d = temporal_difference(encoding_tensors(model), previous).to(dev)
    return -lam_s * h + sign * lam_t * d, h, d


def train_epochs(model: nn.Module, data: GeeData, cfg: SteConfig, *, epochs: int, lr: float, lam_s: float,
                 lam_t: float, previous: list[torch.Tensor], generator: torch.Generator) -> float:
    """Train ``model`` in place for ``epochs`` passes; returns the mean regularised training loss."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    device = data.x_train.device
    use_amp = device.type == "cuda"
    model.train()
    n = data.y_train.numel()
    total, count = 0.0, 0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator).to(device)
        batches = [perm[i:i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]
        if cfg.max_batches is not None:
            batches = batches[:cfg.max_batches]
        for idx in batches:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = logits_of(model(data.x_train[:, idx]))
            loss = F.cross_entropy(logits.float(), data.y_train[idx], label_smoothing=cfg.label_smoothing)
            if lam_s or lam_t:
                penalty, _, _ = regulariser(model, previous, lam_s=lam_s, lam_t=lam_t, sign=cfg.sign)
                loss = loss + penalty
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            total += float(loss.detach())
            count += 1
    return total / max(count, 1)


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


def score(model: nn.Module, data: GeeData, cfg: SteConfig, *, previous: list[torch.Tensor], lam_s: float,
          lam_t: float) -> dict:
    """Return the fitness dict {fitness, val_loss, val_accuracy, entropy, difference} on held-out data."""
    ce, acc = evaluate_split(model, data.x_val, data.y_val, label_smoothing=cfg.label_smoothing)
    with torch.no_grad():
        penalty, h, d = regulariser(model, previous, lam_s=lam_s, lam_t=lam_t, sign=cfg.sign)
    fitness = -(ce + float(penalty))
    if not math.isfinite(fitness):
        fitness = -math.inf
    return {"fitness": fitness, "val_loss": ce, "val_accuracy": acc, "entropy": float(h), "difference": float(d)}


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


def breed(population: list[dict], fitness: np.ndarray, cfg: SteConfig, *, x_keys: list[str],
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


def _cpu_state(model: nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _lr_at(cfg: SteConfig, stage: int) -> float:
    total = cfg.generations + cfg.final_epochs
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * stage / total))


def evolve(build: Callable[[int], nn.Module], data: GeeData, cfg: SteConfig, *, seed: int, arch: str,
           genes: int, out_dir: str | Path | None = None, resume: bool = False, device=None,
           on_progress: Callable[[dict], None] | None = None, run_info: dict | None = None,
           spec=None) -> GeeResult:
    """Run STE on networks ``build(init_seed)`` and return the GeeResult of the final network.

    ``out_dir`` receives checkpoint.pt (after every stage), metrics.jsonl, evolution.png, model.pt
    (a model file of ``spec``, the network family spec ``build`` builds) and result.json; ``resume``
    continues from its checkpoint (a finished run is re-scored only).
    """
    from spikesmith.evolve.gee.report import report_of

    device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(out_dir) if out_dir is not None else None
    ckpt = out / CHECKPOINT if out is not None else None
    fingerprint = json.dumps({"arch": arch, "genes": genes, "seed": int(seed), "data": data.name,
                              "config": cfg.to_dict(), **(run_info or {})}, sort_keys=True)
    total = cfg.generations + cfg.final_epochs
    emit = on_progress or (lambda event: None)

    model = build(derive(seed, _INIT, 0)).to(device)
    x_keys = encoding_keys(model)
    g_key = "gene.g" if getattr(model, "gene", None) is not None else None
    data = data.to(device)

    if ckpt is not None and ckpt.is_file() and resume:
        state = io.load_checkpoint(ckpt)
        if state.get("fingerprint") != fingerprint:
            raise InputError(f"{ckpt}: checkpoint was written by a run with different settings; "
                             "use the same arch, genes, seed, data and configuration, or a fresh out_dir")
        start, population = int(state["stage"]), list(state["population"])
        history, wall0 = list(state["history"]), float(state["wall"])
    elif ckpt is not None and ckpt.is_file():
        raise InputError(f"{ckpt}: a run already exists here; pass resume=True to continue it or choose a "
                         "fresh out_dir")
    else:
        n0 = cfg.population if cfg.generations > 0 else 1
        population = [_cpu_state(model)] + [_cpu_state(build(derive(seed, _INIT, i))) for i in range(1, n0)]
        start, history, wall0 = 0, [], 0.0
    t0 = time.perf_counter()
    last_scores: dict = {}

    for stage in range(start, total):
        t = cfg.progress(stage)
        lam_s, lam_t, lr = cfg.lambda_s(t), cfg.lambda_t(t), _lr_at(cfg, stage)
        s0 = time.perf_counter()
        evolving = stage < cfg.generations
        epochs = cfg.epochs_per_generation if evolving else 1
        scores = []
        for i, sd in enumerate(population):
            model.load_state_dict(sd)
            previous = [x.detach().clone() for x in encoding_tensors(model)]
            gen = torch.Generator().manual_seed(derive(seed, _TRAIN, stage, i))
            loss = train_epochs(model, data, cfg, epochs=epochs, lr=lr, lam_s=lam_s, lam_t=lam_t,
                                previous=previous, generator=gen)
            s = {**score(model, data, cfg, previous=previous, lam_s=lam_s, lam_t=lam_t), "train_loss": loss}
            scores.append(s)
            population[i] = _cpu_state(model)
            emit({"event": "individual", "stage": stage, "individual": i, **s})
        fitness = np.array([s["fitness"] for s in scores], dtype=np.float64)
        best = int(np.argmax(fitness))
        row = {"stage": stage + 1, "phase": "evolve" if evolving else "final",
               "generation": min(stage + 1, cfg.generations) if evolving else cfg.generations,
               "best_fitness": float(fitness[best]), "mean_fitness": float(fitness.mean()),
               "entropy": scores[best]["entropy"], "difference": scores[best]["difference"],
               "mean_difference": float(np.mean([s["difference"] for s in scores])),
               "val_accuracy": scores[best]["val_accuracy"],
               "mean_val_accuracy": float(np.mean([s["val_accuracy"] for s in scores])),
               "train_loss": scores[best]["train_loss"], "lambda_s": lam_s, "lambda_t": lam_t, "lr": lr,
               "stage_seconds": time.perf_counter() - s0, "wall_seconds": wall0 + time.perf_counter() - t0}
        history.append(row)
        last_scores = scores[best]
        if evolving and stage < cfg.generations - 1:
            rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(_BREED, stage)))
            population = breed(population, fitness, cfg, x_keys=x_keys, g_key=g_key, rng=rng)
        else:
            population = [population[best]]
        if ckpt is not None:
            io.save_checkpoint(ckpt, {"stage": stage + 1, "population": population, "history": history,
                                      "wall": wall0 + time.perf_counter() - t0, "fingerprint": fingerprint})
            io.write_jsonl(out / METRICS, history)
        emit({"event": "stage", "stages": total, **row})

    model.load_state_dict(population[0])
    if not last_scores:  # resumed a finished run: score the stored network again
        t = cfg.progress(total - 1)
        prev = [x.detach().clone() for x in encoding_tensors(model)]
        last_scores = score(model, data, cfg, previous=prev, lam_s=0.0, lam_t=0.0)
        last_scores["fitness"] = history[-1]["best_fitness"]
    _, test_acc = evaluate_split(model, data.x_test, data.y_test, label_smoothing=cfg.label_smoothing)
    report = report_of(model, arch=arch, genes=genes)
    result = GeeResult(arch=arch, genes=genes, encoded=g_key is not None, final_fitness=float(last_scores["fitness"]),
                       val_accuracy=float(last_scores["val_accuracy"]), test_accuracy=float(test_acc),
                       params=report.encoded_total, dense_params=report.dense_total,
                       compression=report.compression, generations=cfg.generations,
                       population=cfg.population if cfg.generations else 1,
                       seconds=wall0 + time.perf_counter() - t0, device=str(device),
                       out_dir=str(out) if out is not None else None, history=tuple(history))
    if out is not None:
        if spec is not None:
            from spikesmith.nn import save_model

            save_model(out / MODEL, model.cpu(), spec, steps=int(data.x_train.shape[0]), data=data.name,
                       encoding=data.encoding, meta={"test_accuracy": float(test_acc), "generations": cfg.generations})
        io.write_json(out / RESULT, {"schema_version": io.SCHEMA_VERSION, **result.summary()})
        if history:
            plot_history(history, out / PLOT)
    emit({"event": "done", **result.summary()})
    return result


def plot_history(history: list[dict], path: str | Path) -> Path:
    """Write a PNG of best/mean fitness, accuracy, H(G) and D(X) per stage; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [h["stage"] for h in history]
    fig, axes = plt.subplots(2, 2, figsize=(9, 6))
    a, b, c, d = axes.ravel()
    a.plot(x, [h["best_fitness"] for h in history], marker="o", label="best")
    a.plot(x, [h["mean_fitness"] for h in history], marker=".", label="mean")
    a.set(xlabel="stage", ylabel="fitness", title="fitness")
    a.legend()
    b.plot(x, [h["val_accuracy"] for h in history], marker="o", label="best")
    b.plot(x, [h["mean_val_accuracy"] for h in history], marker=".", label="mean")
    b.set(xlabel="stage", ylabel="held-out accuracy", title="accuracy", ylim=(0, 1))
    b.legend()
    c.plot(x, [h["entropy"] for h in history], marker="o")
    c.set(xlabel="stage", ylabel="H(G) [nats]", title="spatial entropy")
    d.plot(x, [h["difference"] for h in history], marker="o", label="best")
    d.plot(x, [h["mean_difference"] for h in history], marker=".", label="mean")
    d.set(xlabel="stage", ylabel="D(X)", title="temporal difference", yscale="symlog", )
    d.legend()
    gens = sum(h["phase"] == "evolve" for h in history)
    for ax in axes.ravel():
        if 0 < gens < len(history):
            ax.axvline(gens + 0.5, color="grey", lw=0.8, ls="--")
    fig.tight_layout()
    try:
        return io.save_figure(path, fig)
    finally:
        plt.close(fig)
