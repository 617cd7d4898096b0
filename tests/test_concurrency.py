"""Two commands, one output directory: the second is refused in one line naming the lock and the first's
PID, and the first finishes intact. Outputs of real commands get the umask's permissions."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factories import ff_graph, spikes
from spikesmith import io


def spikesmith(*args, **kw):
    return subprocess.run([sys.executable, "-m", "spikesmith", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kw)


def wait_for_lock(proc: subprocess.Popen, out: Path) -> Path:
    """The lock file of directory ``out`` once the running ``proc`` has taken it (fails if it never does)."""
    lock = out / io.LOCK_NAME
    deadline = time.monotonic() + 120
    while not lock.exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, f"{out} was never locked"
        time.sleep(0.1)
    return lock


def test_a_second_command_into_a_directory_in_use_is_refused_and_the_first_finishes(tmp_path):
    first = subprocess.Popen([sys.executable, "-m", "spikesmith", "train", "--epochs", "2", "--steps", "4",
                              "--seed", "3", "-o", "t"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        lock = wait_for_lock(first, tmp_path / "t")
        second = spikesmith("train", "--epochs", "1", "--steps", "4", "-o", "t", cwd=tmp_path)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and f"PID {first.pid}" in lines[0], second.stderr
        assert io.LOCK_NAME in lines[0] or "in use" in lines[0]
        out, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert "after 2 epochs" in out
    from spikesmith.io import read_model_file

    assert read_model_file(tmp_path / "t" / "model.pt").family == "conv"
    assert not lock.exists()


def test_outputs_of_commands_get_the_umask_permissions(tmp_path):
    g = ff_graph(seed=1)
    g.metadata = {"spikesmith.dt": 1e-3}
    io.write_nir(tmp_path / "g.nir", g)
    io.save_array(tmp_path / "x.npy", spikes((6, 2, 6), 0.5, seed=4))

    def umask(mask):
        return lambda: os.umask(mask)

    for mask, mode in ((0o022, 0o644), (0o077, 0o600)):
        d = tmp_path / f"m{mask:o}"
        for args in (["run", "g.nir", "--input", "x.npy", "-o", d / "y.npy"],
                     ["compile", "g.nir", "--to", "nir", "-o", d / "g2.nir"],
                     ["compile", "g.nir", "--to", "lava", "--verify", "2", "-o", d / "lava"]):
            r = subprocess.run([sys.executable, "-m", "spikesmith", *map(str, args)], cwd=tmp_path,
                               capture_output=True, text=True, preexec_fn=umask(mask), timeout=600)
            assert r.returncode == 0, r.stderr
        files = [p for p in d.rglob("*") if p.is_file()]
        assert len(files) >= 4
        assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(mode)}


@pytest.mark.slow
def test_a_demo_output_under_umask_022_is_world_readable(tmp_path):
    r = subprocess.run([sys.executable, "-m", "spikesmith", "demo", "--epochs", "1", "--lava-samples", "4", "-o", "d"],
                       cwd=tmp_path, capture_output=True, text=True, preexec_fn=lambda: os.umask(0o022), timeout=1200)
    assert r.returncode == 0, r.stderr
    files = [p for p in (tmp_path / "d").rglob("*") if p.is_file()]
    assert {"model.pt", "model.nir", "report.html"} <= {p.name for p in files}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(0o644)}


def test_a_second_search_into_a_search_directory_in_use_is_refused(tmp_path):
    first = subprocess.Popen([sys.executable, "-m", "spikesmith", "evolve", "nas", "--population", "4", "--generations",
                              "500", "-o", "n"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lock(first, tmp_path / "n")
        second = spikesmith("evolve", "nas", "--population", "4", "--generations", "1", "-o", "n", cwd=tmp_path)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"PID {first.pid}" in lines[0], second.stderr
        assert first.poll() is None  # the first search goes on
    finally:
        first.kill()
        first.wait()
