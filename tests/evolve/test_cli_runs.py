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


def cli(*args):
    return subprocess.run([sys.executable, "-m", "spikesmith", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


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
