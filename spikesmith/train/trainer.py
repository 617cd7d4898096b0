"""Surrogate-gradient BPTT training of time-first SNNs, on CUDA when available.

AdamW with linear warm-up then cosine decay, cross-entropy with label smoothing on the
output spike counts, gradient clipping, bf16 autocast on CUDA, per-epoch checkpoints
(tensors only, loaded with ``weights_only=True``) and resume, metrics as JSONL and a
loss/accuracy plot.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Protocol

import torch
import torch.nn.functional as F

from spikesmith import io

Batches = Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Training hyper-parameters."""

    epochs: int = 20
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    logit_scale: float = 1.0  # logits = scale * spike counts
    amp: bool = True  # bf16 autocast, CUDA only
    device: str | None = None  # None: CUDA if available else CPU
    seed: int = 0

    def __post_init__(self) -> None:
        from spikesmith import options

        options.integer("epochs", self.epochs, low=1, high=options.MAX_EPOCHS)
        options.number("lr", self.lr, low=0.0, low_open=True, high=10.0)
        options.number("weight_decay", self.weight_decay, low=0.0, high=10.0)
        options.number("warmup_epochs", self.warmup_epochs, low=0.0, high=options.MAX_EPOCHS)
        options.number("label_smoothing", self.label_smoothing, low=0.0, high=1.0, high_open=True)
        options.number("grad_clip", self.grad_clip, low=0.0)
        options.number("logit_scale", self.logit_scale, low=0.0, low_open=True)
        options.seed("seed", self.seed)

    def resolve_device(self) -> torch.device:
        """The device to train on (an InputError when it names CUDA and there is none)."""
        from spikesmith import options

        return options.torch_device("device", self.device)


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """What :func:`fit` returns."""

    test_accuracy: float
    train_accuracy: float
    epochs: int
    seconds: float
    device: str
    history: list[dict] = field(default_factory=list)


def logits_of(output: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Class scores from output spikes (T, B, C): scaled spike counts (B, C)."""
    return scale * output.float().sum(0)


class Collective(Protocol):
    """How :func:`fit` trains as one of several processes (see ``spikesmith.train.distributed``)."""

    is_writer: bool  # only this process writes checkpoints, metrics and the plot

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to run training steps through (e.g. DistributedDataParallel(model))."""

    def all_sum(self, values: list[float]) -> list[float]:
        """Each value summed over all processes."""


def _lr_lambda(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    warm = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    total = max(warm + 1, cfg.epochs * steps_per_epoch)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))

    return f


@torch.no_grad()
def _count_correct(model: torch.nn.Module, batches: Iterable, device: torch.device | str | None) -> tuple[int, int]:
    device = torch.device(device) if device else next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = total = 0
    for x, y in batches:
        out = model(x.to(device))
        correct += int((logits_of(out).argmax(1).cpu() == y).sum())
        total += len(y)
    model.train(was_training)
    return correct, total


def evaluate(model: torch.nn.Module, batches: Iterable, *, device: torch.device | str | None = None) -> float:
    """Accuracy (0..1) of ``model`` on ``batches`` of (x (T,B,...), y (B,))."""
    correct, total = _count_correct(model, batches, device)
    return correct / max(total, 1)


def fit(
    model: torch.nn.Module,
    train_batches: Batches,
    test_batches: Callable[[], Iterable],
    cfg: TrainConfig,
    *,
    out_dir: str | Path | None = None,
    resume: bool = False,
    extra_loss: Callable[[torch.nn.Module, int], torch.Tensor] | None = None,
    on_progress: Callable[[dict], None] | None = None,
    collective: Collective | None = None,
) -> TrainResult:
    """Train ``model`` and return its accuracies.

    ``train_batches(epoch)`` yields the epoch's (x, y) batches (its order should depend
    only on the epoch, so a resumed run sees the same data); ``test_batches()`` yields
    the held-out batches. With ``out_dir``, writes ``checkpoint.pt`` after every epoch,
    ``metrics.jsonl`` and ``training.png``; ``resume`` continues from the checkpoint.
    With ``collective`` (data-parallel training), steps run through ``collective.wrap(model)``,
    loss, accuracies and throughput are summed over processes and only its writer writes files.
    """
    device = cfg.resolve_device()
    model.to(device)
    net = collective.wrap(model) if collective is not None else model
    writer = collective is None or collective.is_writer

    def accuracy(batches: Iterable) -> float:
        correct, total = _count_correct(model, batches, device)
        if collective is not None:
            correct, total = collective.all_sum([correct, total])
        return correct / max(total, 1)

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, sum(1 for _ in train_batches(0)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg, steps_per_epoch))
    out = Path(out_dir) if out_dir else None
    ckpt = out / "checkpoint.pt" if out else None
    metrics_path = out / "metrics.jsonl" if out else None
    start_epoch, history = 0, []
    if resume and ckpt is not None and ckpt.is_file():
        state = io.load_checkpoint(ckpt, map_location=device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"])
        history = io.read_jsonl(metrics_path)[:start_epoch]
    use_amp = cfg.amp and device.type == "cuda"
    t0 = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        e0 = time.perf_counter()
        loss_sum = correct = seen = 0
        for x, y in train_batches(epoch):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits = logits_of(net(x), cfg.logit_scale)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
                if extra_loss is not None:
                    loss = loss + extra_loss(model, epoch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        train_time = time.perf_counter() - e0
        if collective is not None:
            loss_sum, correct, seen = collective.all_sum([loss_sum, correct, seen])
        test_acc = accuracy(test_batches())
        row = {
            "epoch": epoch + 1, "loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1),
            "test_accuracy": test_acc, "lr": sched.get_last_lr()[0],
            "samples_per_s": seen / max(train_time, 1e-9), "seconds": time.perf_counter() - e0,
        }
        history.append(row)
        if out is not None and writer:
            io.save_checkpoint(ckpt, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                                      "scheduler": sched.state_dict(), "epoch": epoch + 1,
                                      "config": asdict(cfg)})
            io.write_jsonl(metrics_path, history)
        if on_progress:
            on_progress({**row, "epochs": cfg.epochs})
    if out is not None and writer and history:
        plot_history(history, out / "training.png")
    last = history[-1] if history else {"test_accuracy": accuracy(test_batches()),
                                        "train_accuracy": float("nan")}
    return TrainResult(test_accuracy=last["test_accuracy"], train_accuracy=last["train_accuracy"],
                       epochs=cfg.epochs, seconds=time.perf_counter() - t0, device=str(device),
                       history=history)


def plot_history(history: list[dict], path: str | Path) -> Path:
    """Plot loss and accuracies per epoch to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(epochs, [h["loss"] for h in history], marker="o")
    a.set(xlabel="epoch", ylabel="training loss", title="loss")
    b.plot(epochs, [h["train_accuracy"] for h in history], marker="o", label="train")
    b.plot(epochs, [h["test_accuracy"] for h in history], marker="s", label="test")
    b.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    b.legend()
    try:
        return io.save_figure(path, fig)
    finally:
        plt.close(fig)
