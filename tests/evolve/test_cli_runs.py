"""`evolve search|nas|gee` run as a user runs them: progress lines, generations.jsonl and its plot, and a
model.pt that `spikesmith compile` takes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spikesmith import io

TINY = {
    "search": ["--population", "2", "--generations", "1", "--samples", "16", "--steps", "2"],
    "nas": ["--population", "4", "--generations", "1", "--cells", "2", "--channels", "4", "--fitness-batch", "16",
            "--steps", "2"],
    "gee": ["--population", "2", "--generations", "1", "--genes", "4", "--max-batches", "2", "--final-epochs", "1",
            "--steps", "2", "--device", "cpu"],
}


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "spikesmith", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.mark.parametrize("command", ["search", "nas", pytest.param("gee", marks=pytest.mark.slow)])
def test_evolve_command_writes_metrics_plot_and_a_compilable_model(tmp_path, command):
    out = tmp_path / command
    r = cli("evolve", command, *TINY[command], "--seed", "1", "-o", out)
    assert r.returncode == 0, r.stderr[-2000:]
    progress = [ln for ln in r.stderr.splitlines() if " evolve " in ln]
    assert [ln.split("generation ")[1].split(":")[0] for ln in progress] == ["0/1", "1/1"]
    assert all("best" in ln and "mean" in ln and "ETA" in ln for ln in progress)
    assert "event=" not in r.stderr
    rows = io.read_jsonl(out / "generations.jsonl")
    assert [row["generation"] for row in rows] == [0, 1] and all(row["objectives"] for row in rows)
    assert (out / "generations.png").read_bytes()[:4] == b"\x89PNG"
    c = cli("compile", out / "model.pt", "-o", out / "model.nir")
    assert c.returncode == 0, c.stderr[-2000:]
    assert io.read_nir(out / "model.nir").nodes


def _write_seed_dataset(root, data: str) -> tuple[int, ...]:
    """Files of a seed experiment's dataset in its own on-disk format; returns one step's input shape."""
    import numpy as np

    from data.cifar_files import write_cifar10
    from data.event_files import random_events, write_dvsgesture_npy

    rng = np.random.default_rng(5)
    if data == "cifar10":
        write_cifar10(root, rng, per_batch=4, n_test=6)
        return (3, 32, 32)
    for folder, users in (("ibmGestureTrain", (1, 2)), ("ibmGestureTest", (3,))):
        for user in users:
            for label in range(11):
                x, y, t, p = random_events(rng, 400, 128, 128, 2, 20_000)
                write_dvsgesture_npy(root / "DVSGesture" / folder / f"user{user:02d}_led" / f"{label}.npy", x, y, t, p)
    return (2, 128, 128)


@pytest.mark.parametrize("data", ["cifar10", "dvsgesture"])
def test_evolve_nas_runs_on_the_seed_experiments_datasets(tmp_path, data):
    # the user's path for the seeds' data: files in the dataset's own format where SPIKESMITH_DATA_DIR
    # points, `evolve nas --data NAME` (reduction cells by default), then `compile OUT/model.pt`
    import os

    shape = _write_seed_dataset(tmp_path / "data", data)
    env = os.environ | {"SPIKESMITH_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "nas"
    r = cli("evolve", "nas", *TINY["nas"], "--data", data, "--seed", "2", "-o", out, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    from spikesmith.nn import load_model

    _, mf = load_model(out / "model.pt")
    assert tuple(mf.spec["input_shape"]) == shape and mf.data == data
    c = cli("compile", out / "model.pt", "-o", out / "model.nir", env=env)
    assert c.returncode == 0, c.stderr[-2000:]
    assert io.read_nir(out / "model.nir").nodes
