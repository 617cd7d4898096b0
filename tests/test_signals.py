"""Clean shutdown: SIGTERM in the middle of a run that started Lava's processes or a worker pool ends the
command with exit 143 and one line, and leaves no process of its process group running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factories import ff_graph, spikes
from spikesmith import io


def group_members(pgid: int) -> list[int]:
    """PIDs of the live (not zombie) processes whose process group is ``pgid``."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(d.name))
    return pids


def terminate_when(cmd: list[str], ready, *, cwd: Path, timeout: float = 240.0):
    """Start ``cmd`` in its own process group, send SIGTERM to its main process once ``ready(pgid)`` holds,
    and return (exit code, stderr, processes of the group still alive 5 s after it exited)."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready(proc.pid):
            if proc.poll() is not None:
                pytest.fail(f"the command ended before it could be interrupted: {proc.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the command never reached the state to interrupt")
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        left = group_members(proc.pid)
        end = time.monotonic() + 5
        while left and time.monotonic() < end:
            time.sleep(0.2)
            left = group_members(proc.pid)
        return proc.returncode, err, left
    finally:
        for pid in group_members(proc.pid):  # never leave anything behind, whatever the test found
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def spikesmith(*args) -> list[str]:
    return [sys.executable, "-m", "spikesmith", *map(str, args)]


def test_sigterm_during_a_lava_run_stops_every_lava_process(tmp_path):
    g = ff_graph(seed=1)
    g.metadata = {"spikesmith.dt": 1e-3}
    io.write_nir(tmp_path / "g.nir", g)
    io.save_array(tmp_path / "x.npy", spikes((200_000, 1, 6), 0.5, seed=2))  # minutes of Lava steps
    # Lava's runtime starts one process per Lava process of the network (and a resource tracker)
    rc, err, left = terminate_when(spikesmith("run", "g.nir", "--target", "lava", "--input", "x.npy", "-o", "y.npy"),
                                   lambda pgid: len(group_members(pgid)) >= 4, cwd=tmp_path)
    assert rc == 143, err
    assert err.strip().splitlines()[-1] == "interrupted by SIGTERM"
    assert "Traceback" not in err
    assert left == []
    assert not (tmp_path / "y.npy").exists()


def test_sigterm_during_a_process_pool_search_stops_every_worker(tmp_path):
    rc, err, left = terminate_when(
        spikesmith("evolve", "nas", "--population", "6", "--generations", "200", "--backend", "process",
                   "--workers", "2", "--seed", "0", "-o", "nas"),
        lambda pgid: len(group_members(pgid)) >= 3 and (tmp_path / "nas").exists(), cwd=tmp_path)
    assert rc == 143, err
    assert err.strip().splitlines()[-1] == "interrupted by SIGTERM"
    assert "Traceback" not in err
    assert left == []

