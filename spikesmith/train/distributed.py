"""Data-parallel training over several processes with torch's DistributedDataParallel.

Launch one process per GPU (or per CPU worker) with torch's own launcher::

    torchrun --nproc_per_node=2 -m spikesmith.train.distributed --data digits -o runs/ddp

Each process joins the group torchrun describes in its environment (NCCL on CUDA, gloo on
CPU), trains a replica, and DDP averages the gradients after every backward pass. Every
global batch of the single-process run is cut into ``world_size`` equal contiguous chunks and
rank ``r`` trains on chunk ``r``: with equal chunks the average of the ranks' mean-loss
gradients is the gradient of the whole batch's mean loss, so N ranks at batch b/N take the
same optimiser steps as one process at batch b (exactly in real arithmetic; up to float
summation order in practice) as long as nothing couples samples inside a batch. Batch norm in
training mode does (each rank normalises by its own chunk's statistics) unless
``sync_batch_norm`` (CUDA only) is set. A batch whose size is not a multiple of the world size
loses its last ``size % world_size`` samples. Losses, accuracies and sample counts are summed
over ranks; only rank 0 writes checkpoints, metrics, the plot and the model file.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import torch
import torch.distributed as dist

from spikesmith.errors import InputError
from spikesmith.train.trainer import Batches, TrainConfig, TrainResult, fit


def chunk(batch, rank: int, world_size: int):
    """Rank ``rank``'s contiguous share of ``batch`` (a sequence or a tensor along its first axis):
    ``len(batch) // world_size`` items; the remainder is dropped so every rank gets the same number."""
    n = len(batch) // world_size
    return batch[rank * n:(rank + 1) * n]


def shard_batches(batches: Callable[..., Iterable], rank: int, world_size: int) -> Callable[..., Iterator]:
    """Wrap a batch source (``batches(*args)`` yielding (x (T, B, ...), y (B,))) so it yields this
    rank's chunk of every batch: x (T, B // world_size, ...). Batches smaller than the world size
    are skipped (every rank skips the same ones, so the ranks stay in step)."""

    def sharded(*args) -> Iterator:
        for x, y in batches(*args):
            if len(y) >= world_size:
                yield chunk(x.transpose(0, 1), rank, world_size).transpose(0, 1), chunk(y, rank, world_size)

    return sharded


class _RankBatchSampler:
    """This rank's chunk of every index batch a DataLoader's batch sampler yields."""

    def __init__(self, batch_sampler, rank: int, world_size: int):
        self.batch_sampler, self.rank, self.world_size = batch_sampler, rank, world_size

    def __iter__(self):
        for indices in self.batch_sampler:
            if len(indices) >= self.world_size:
                yield chunk(list(indices), self.rank, self.world_size)

    def __len__(self) -> int:
        return len(self.batch_sampler)


def shard_loader(loader, rank: int, world_size: int):
    """A DataLoader over ``loader``'s dataset yielding this rank's chunk of each of its batches.

    The chunking acts on the index batches, so a rank loads and collates only its own samples;
    the global batch order is still ``loader``'s (reseeding its generator reseeds this one's).
    """
    from torch.utils.data import DataLoader

    # the same generator: each iterator draws its worker seed from it before the sampler draws the
    # permutation, so sharing it keeps the sequence of draws (and the batch order) the single process's
    return DataLoader(loader.dataset, batch_sampler=_RankBatchSampler(loader.batch_sampler, rank, world_size),
                      collate_fn=loader.collate_fn, num_workers=loader.num_workers, generator=loader.generator)


class DDPCollective:
    """The :class:`spikesmith.train.trainer.Collective` of an initialised ``torch.distributed`` group."""

    def __init__(self, device: torch.device):
        self.device = device
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.is_writer = self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def all_sum(self, values: list[float]) -> list[float]:
        # NCCL reduces only CUDA tensors; float64 keeps sample counts exact
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()


def _sync_batch_norm(model: torch.nn.Module) -> dict[str, type]:
    """Swap batch norms for SyncBatchNorm in place (same parameters); returns name -> original class."""
    from torch.nn.modules.batchnorm import _BatchNorm

    originals = {name: type(m) for name, m in model.named_modules() if isinstance(m, _BatchNorm)}
    for name, cls in originals.items():
        parent, _, leaf = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        setattr(owner, leaf, torch.nn.SyncBatchNorm.convert_sync_batchnorm(getattr(owner, leaf)))
    return originals


def _restore_batch_norm(model: torch.nn.Module, originals: dict[str, type]) -> None:
    for name, cls in originals.items():
        parent, _, leaf = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        sync = getattr(owner, leaf)
        bn = cls(sync.num_features, eps=sync.eps, momentum=sync.momentum, affine=sync.affine,
                 track_running_stats=sync.track_running_stats).to(next(sync.buffers()).device)
        bn.load_state_dict(sync.state_dict())
        bn.train(sync.training)
        setattr(owner, leaf, bn)


def rank_device(cfg: TrainConfig) -> torch.device:
    """This process's device: ``cfg.device`` if set, else CUDA device LOCAL_RANK when CUDA is available, else CPU."""
    if cfg.device:
        return torch.device(cfg.device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    return torch.device("cpu")


def fit_distributed(model: torch.nn.Module, train_batches: Batches, test_batches: Callable[[], Iterable],
                    cfg: TrainConfig, *, out_dir: str | Path | None = None, resume: bool = False,
                    extra_loss=None, on_progress: Callable[[dict], None] | None = None,
                    sync_batch_norm: bool = False, shard: bool = True) -> TrainResult:
    """Train ``model`` as this rank of the initialised process group; returns the same result on every rank.

    ``train_batches``/``test_batches`` are the single-process sources (every rank must see the
    same batches in the same order); with ``shard`` each rank keeps its chunk of every batch
    (pass ``shard=False`` when they already yield this rank's chunk, e.g. from
    :func:`shard_loader`). ``on_progress`` is called on rank 0 only. The model's parameters are
    broadcast from rank 0 when training starts.
    """
    if not dist.is_initialized():
        raise InputError("fit_distributed: no torch.distributed process group; launch with torchrun "
                         "or call torch.distributed.init_process_group first")
    device = rank_device(cfg)
    if sync_batch_norm and device.type != "cuda":
        raise InputError(f"sync_batch_norm: SyncBatchNorm needs CUDA, but this rank trains on {device}")
    rank, world = dist.get_rank(), dist.get_world_size()
    if shard:
        train_batches = shard_batches(train_batches, rank, world)
        test_batches = shard_batches(test_batches, rank, world)
    cfg = dataclasses.replace(cfg, device=str(device))
    originals = _sync_batch_norm(model) if sync_batch_norm else {}
    try:
        return fit(model, train_batches, test_batches, cfg, out_dir=out_dir, resume=resume, extra_loss=extra_loss,
                   on_progress=on_progress if rank == 0 else None, collective=DDPCollective(device))
    finally:
        _restore_batch_norm(model, originals)


@contextlib.contextmanager
def process_group(backend: str | None = None, *, device: torch.device | None = None):
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR/PORT) and leave it afterwards.

    ``backend`` None picks NCCL when CUDA is available, else gloo.
    """
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise InputError(f"environment: {', '.join(missing)} not set; start with "
                         f"'torchrun --nproc_per_node=N -m spikesmith.train.distributed ...'")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and device is not None and device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend)
    try:
        yield
        dist.barrier()  # no rank tears its connections down while another still uses them
    finally:
        dist.destroy_process_group()


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="torchrun --nproc_per_node=N -m spikesmith.train.distributed",
                                description="Data-parallel training of a conv SNN (one process per GPU).")
    p.add_argument("--data", default="digits", help="dataset name")
    p.add_argument("-o", "--out", type=Path, required=True, help="output directory (written by rank 0)")
    p.add_argument("--genes", default="c1=12,c2=32,hidden=0,tau_steps=2,v_th=0.5",
                   help="architecture genes as name=value pairs")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64, help="global batch, split over the ranks")
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--device", default=None, help="default: cuda:LOCAL_RANK if available, else cpu")
    p.add_argument("--backend", default=None, help="default: nccl on CUDA, gloo on CPU")
    p.add_argument("--sync-bn", action="store_true", help="synchronise batch-norm statistics (CUDA only)")
    p.add_argument("--data-dir", default=None)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``torchrun -m spikesmith.train.distributed``; rank 0 writes model.pt, checkpoint.pt,
    metrics.jsonl and training.png to ``--out``. Returns the exit status."""
    from spikesmith.data import make_loaders
    from spikesmith.errors import SpikesmithError
    from spikesmith.nn import build, save_model
    from spikesmith.nn.families.conv import ConvSpec, parse_values
    from spikesmith.seeding import epoch_order

    args = _parse(argv)
    try:
        cfg = TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed, device=args.device)
        device = rank_device(cfg)
        with process_group(args.backend, device=device):
            rank, world = dist.get_rank(), dist.get_world_size()
            if args.batch_size < world:
                raise InputError(f"--batch-size {args.batch_size} is smaller than the {world} processes")
            train, test, info = make_loaders(args.data, batch_size=args.batch_size, steps=args.steps,
                                             seed=args.seed, data_dir=args.data_dir)
            spec = ConvSpec.from_values(parse_values(args.genes), input_shape=info.input_shape,
                                        num_classes=info.num_classes)
            model = build(spec, seed=args.seed)
            my_train, my_test = shard_loader(train, rank, world), shard_loader(test, rank, world)
            order = epoch_order(train, args.seed)  # as api.train_model: the order depends only on (seed, epoch)

            def epoch_batches(epoch: int):
                order(epoch)  # reseeds train's generator, which my_train shares
                return my_train

            def show(row: dict) -> None:
                print(f"epoch {row['epoch']}/{row['epochs']} loss {row['loss']:.4f} "
                      f"train {row['train_accuracy']:.3f} test {row['test_accuracy']:.3f} "
                      f"{row['samples_per_s']:.0f} samples/s on {world} processes", file=sys.stderr, flush=True)

            result = fit_distributed(model, epoch_batches, lambda: my_test, cfg, out_dir=args.out,
                                     resume=args.resume, on_progress=show, sync_batch_norm=args.sync_bn,
                                     shard=False)
            if rank == 0:
                save_model(args.out / "model.pt", model.cpu().eval(), spec, steps=args.steps, data=args.data,
                           encoding=info.encoding, meta={"test_accuracy": result.test_accuracy, "ranks": world})
                print(f"test accuracy {result.test_accuracy:.4f} after {result.epochs} epochs on {world} x "
                      f"{result.device}; wrote {args.out / 'model.pt'}", flush=True)
    except SpikesmithError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
