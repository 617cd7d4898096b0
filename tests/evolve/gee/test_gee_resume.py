"""A GEE-STE run killed with SIGKILL mid-run resumes to the same result as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch

from spikesmith import io

REPO = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path[:0] = [{repo!r}, {here!r}]
    import torch
    torch.set_num_threads(1)
    from gee_data import synthetic_data
    from spikesmith.evolve.gee import SteConfig, run_gee_evolution

    def progress(event):
        if event["event"] == "individual":
            print("IND", event["stage"], event["individual"], flush=True)

    r = run_gee_evolution(data=synthetic_data(), arch="digits", genes=4, seed=11, population=3, generations=3,
                          final_epochs=2, config=SteConfig(batch_size=16, tournament=2), out_dir=sys.argv[1],
                          resume=sys.argv[2] == "1", device="cpu", on_progress=progress)
    print("RESULT", json.dumps({{"fitness": r.final_fitness, "test": r.test_accuracy,
                                "best": [h["best_fitness"] for h in r.history],
                                "entropy": [h["entropy"] for h in r.history]}}), flush=True)
""")


def _popen(script: Path, out: Path, resume: bool) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, str(script), str(out), "1" if resume else "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _result(proc: subprocess.Popen) -> tuple[dict, list[str]]:
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr[-2000:]
    line = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):]), [ln for ln in stdout.splitlines() if ln.startswith("IND ")]


def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(repo=str(REPO), here=str(HERE)))
    full = _popen(script, tmp_path / "full", resume=False)

    killed_dir = tmp_path / "killed"
    proc = _popen(script, killed_dir, resume=False)
    deadline = time.monotonic() + 240
    killed = False
    for line in proc.stdout:  # kill inside generation 2, after its first individual trained
        if line.strip() == "IND 1 1":
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        assert time.monotonic() < deadline
    proc.wait(timeout=60)
    proc.stdout.close()
    proc.stderr.close()
    assert killed and proc.returncode == -signal.SIGKILL
    state = torch.load(killed_dir / "checkpoint.pt", weights_only=True)
    assert state["stage"] == 1  # the first generation's checkpoint survived, nothing later
    assert not (killed_dir / "result.json").exists()
    assert len(io.read_jsonl(killed_dir / "metrics.jsonl")) == 1

    resumed, trained = _result(_popen(script, killed_dir, resume=True))
    reference, trained_full = _result(full)
    assert resumed == reference
    assert trained[0] == "IND 1 0" and trained == trained_full[3:]  # continued, did not start over
    assert len(resumed["best"]) == 5
    rows = io.read_jsonl(killed_dir / "metrics.jsonl")
    ref_rows = io.read_jsonl(tmp_path / "full" / "metrics.jsonl")
    strip = lambda rs: [{k: v for k, v in r.items() if "seconds" not in k} for r in rs]  # noqa: E731
    assert strip(rows) == strip(ref_rows)
