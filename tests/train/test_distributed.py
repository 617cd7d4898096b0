"""Data-parallel training: 2 gloo ranks at batch b/2 take the same steps as 1 process at batch b.

Why the comparison is exact in theory: each rank's loss is the mean over its half of the global
batch; DDP averages the two gradients, which is the gradient of the mean over the whole batch.
Clipping and AdamW then see identical gradients. The network has no batch norm (the only layer
that couples samples within a batch), so only float summation order differs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from spikesmith import io
from spikesmith.errors import InputError
from spikesmith.train import TrainConfig, fit
from spikesmith.train.distributed import chunk, fit_distributed, shard_batches, shard_loader

ROOT = Path(__file__).resolve().parents[2]
BATCH, STEPS, N = 32, 4, 128


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batches():
    from spikesmith.data import direct, load_digits_split

    s = load_digits_split(seed=0)
    x = torch.as_tensor(direct(s.x_train[:N], STEPS))  # (T, N, 1, 8, 8)
    y = torch.as_tensor(s.y_train[:N])
    xt, yt = torch.as_tensor(direct(s.x_test[:64], STEPS)), torch.as_tensor(s.y_test[:64])

    def train(epoch):
        order = torch.randperm(N, generator=torch.Generator().manual_seed(epoch))
        for i in range(0, N, BATCH):
            j = order[i:i + BATCH]
            yield x[:, j], y[j]

    def test():
        yield xt, yt

    return train, test


def model():
    from spikesmith.nn import build
    from spikesmith.nn.families.conv import ConvSpec

    m = build(ConvSpec(c1=4, c2=8, hidden=16, tau_steps=2.0, v_th=0.5, input_shape=(1, 8, 8), num_classes=10,
                       batch_norm=False), seed=0)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(3.0)  # without batch norm the default init leaves the later layers silent
    return m


CFG = TrainConfig(epochs=2, lr=1e-2, device="cpu")


def _rank(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        train, test = batches()
        m = model()
        result = fit_distributed(m, train, test, CFG, out_dir=Path(out) / f"rank{rank}")
        torch.save({"state": m.state_dict(), "history": result.history}, Path(out) / f"result{rank}.pt")
        dist.barrier()  # gloo aborts a rank whose peer tears down first
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_match_one_process(tmp_path):
    mp.spawn(_rank, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    train, test = batches()
    single = model()
    torch.set_num_threads(1)
    ref = fit(single, train, test, CFG)

    assert sorted(p.name for p in (tmp_path / "rank0").iterdir()) == ["checkpoint.pt", "metrics.jsonl",
                                                                     "training.png"]
    assert not (tmp_path / "rank1").exists()  # only rank 0 writes
    for rank in (0, 1):
        got = torch.load(tmp_path / f"result{rank}.pt", weights_only=True)
        for name, p in single.state_dict().items():
            torch.testing.assert_close(got["state"][name], p, rtol=1e-4, atol=1e-5, msg=name)
        for mine, theirs in zip(got["history"], ref.history, strict=True):
            # summed over both ranks: same loss, accuracy and sample count as the single process
            assert mine["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
            assert mine["train_accuracy"] == theirs["train_accuracy"]
            assert mine["test_accuracy"] == theirs["test_accuracy"]
    assert got["history"][-1]["loss"] < got["history"][0]["loss"]
    rows = io.read_jsonl(tmp_path / "rank0" / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]


def test_chunks_are_equal_disjoint_and_cover_the_batch():
    train, _ = batches()
    x, y = next(iter(train(0)))
    halves = [next(iter(shard_batches(train, r, 2)(0))) for r in range(2)]
    assert [tuple(h[0].shape) for h in halves] == [(STEPS, BATCH // 2, 1, 8, 8)] * 2
    torch.testing.assert_close(torch.cat([h[0] for h in halves], dim=1), x)
    assert torch.equal(torch.cat([h[1] for h in halves]), y)
    assert [chunk(list(range(7)), r, 3) for r in range(3)] == [[0, 1], [2, 3], [4, 5]]  # remainder dropped
    # a batch smaller than the world size is skipped on every rank
    assert list(shard_batches(lambda: [(x[:, :1], y[:1])], 1, 2)()) == []


def test_loader_shards_index_batches_like_tensor_batches():
    from spikesmith.data import make_loaders

    train, _, _ = make_loaders("digits", batch_size=16, steps=2, seed=3)
    shards = [shard_loader(train, r, 2) for r in range(2)]
    train.generator.manual_seed(5)
    x, y = next(iter(train))
    for r, s in enumerate(shards):
        train.generator.manual_seed(5)
        xs, ys = next(iter(s))
        assert torch.equal(ys, chunk(y, r, 2))
        assert torch.equal(xs, chunk(x.transpose(0, 1), r, 2).transpose(0, 1))


def test_fit_distributed_needs_a_process_group():
    train, test = batches()
    with pytest.raises(InputError, match="torchrun"):
        fit_distributed(model(), train, test, CFG)


def test_torchrun_entry_point_trains_digits(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", "-m", "spikesmith.train.distributed", "--data", "digits",
           "--epochs", "1", "--steps", "4", "--batch-size", "64", "--genes", "c1=4,c2=8,hidden=0,tau_steps=2,v_th=0.5",
           "-o", str(tmp_path)]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["loss"] < 2.3 and rows[0]["test_accuracy"] > 0.12  # chance: 0.1
    assert "on 2 processes" in done.stderr and "test accuracy" in done.stdout
    from spikesmith.nn import load_model

    m, mf = load_model(tmp_path / "model.pt")
    assert mf.family == "conv" and mf.spec["c1"] == 4 and not m.training
