"""Seeded searches of all three problems (`evolve search|nas|gee`) on an external Dask cluster and an
external Ray head, attached by address with `--cluster`, end as the in-process run does: the same
per-generation metrics and the same model weights. The clusters are real (tests/evolve/conftest.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from spikesmith import io
from test_cli_runs import TINY

pytestmark = pytest.mark.slow  # each starts a cluster and runs the three commands twice

TIMING = ("seconds", "elapsed", "eta")


def _evolve(command: str, out, *extra, env=None) -> dict:
    r = subprocess.run([sys.executable, "-m", "spikesmith", "evolve", command, *TINY[command], "--seed", "3",
                        *extra, "-o", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [{k: v for k, v in row.items() if k not in TIMING} for row in io.read_jsonl(out / "generations.jsonl")]
    from spikesmith.nn import load_model

    model, _ = load_model(out / "model.pt")
    return {"rows": rows, "state": {k: v.clone() for k, v in model.state_dict().items()}}


def _same(a: dict, b: dict) -> bool:
    return a["rows"] == b["rows"] and a["state"].keys() == b["state"].keys() and all(
        torch.equal(a["state"][k], b["state"][k]) for k in a["state"])


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("local")
    return {c: _evolve(c, base / c) for c in TINY}


def test_three_problems_on_an_external_dask_cluster(tmp_path, local_runs, dask_cluster):
    address, _ = dask_cluster
    for command in TINY:
        got = _evolve(command, tmp_path / command, "--backend", "dask", "--cluster", address)
        assert _same(got, local_runs[command]), command


def test_three_problems_on_an_external_ray_head(tmp_path, local_runs, ray_head):
    import os

    env = os.environ | {"RAY_ADDRESS": ray_head}  # "auto" resolves to this head, not another on the machine
    for command in TINY:
        got = _evolve(command, tmp_path / command, "--backend", "ray", "--cluster", "auto", env=env)
        assert _same(got, local_runs[command]), command
