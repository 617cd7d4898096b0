"""One checkpoint rule for every evolution problem: a run killed with SIGKILL after generation k's
checkpoint (k drawn per problem), then resumed, ends bit-identical to an uninterrupted run and redoes no finished generation."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from spikesmith import io

REPO = Path(__file__).resolve().parents[2]
GEE_TESTS = Path(__file__).resolve().parent / "gee"

SCRIPT = textwrap.dedent("""
    import hashlib, json, sys, time
    sys.path[:0] = [{repo!r}, {gee!r}]
    import torch
    torch.set_num_threads(1)
    from spikesmith.evolve import driver
    from spikesmith.evolve.driver import EvolveConfig

    name, out, resume, delay, k = sys.argv[1], sys.argv[2], sys.argv[3] == "1", float(sys.argv[4]), int(sys.argv[5])
    if name == "search":
        from spikesmith.evolve.conv_search import ConvOptions, ConvSearch
        problem = ConvSearch(EvolveConfig(population=4, generations=3, seed=5, steps=2,
                                          options=ConvOptions(samples=32)))
    elif name == "nas":
        from spikesmith.evolve.nas.run import MseNas, NasOptions
        problem = MseNas(EvolveConfig(population=6, generations=3, seed=3, steps=2,
                                      options=NasOptions(cells=2, channels=4, fitness_batch=16)))
    else:
        from gee_data import synthetic_data
        from spikesmith.evolve.gee import GeeSte, SteOptions
        data = synthetic_data(n_train=48, n_val=16, n_test=16, steps=2)
        problem = GeeSte(EvolveConfig(population=2, generations=3, seed=11, steps=2, data=data.name,
                                      options=SteOptions(arch="digits", genes=4, batch_size=16, max_batches=1,
                                                         final_epochs=1, tournament=2, device="cpu")), data=data)

    def progress(row):
        print("GEN", row["generation"], flush=True)
        if row["generation"] >= k:  # a window for the test's kill after generation k's checkpoint
            time.sleep(delay)

    r = driver.run(problem, out_dir=out, resume=resume, on_progress=progress)
    state = torch.load(out + "/model.pt", weights_only=True)["state_dict"]
    digest = hashlib.sha256(b"".join(state[k].numpy().tobytes() for k in sorted(state))).hexdigest()
    timing = ("seconds", "elapsed", "eta")
    history = [{{k: v for k, v in row.items() if k not in timing}} for row in r.history]
    if name == "search":
        final = [list(r.best.genome), r.best.score]
    elif name == "nas":
        final = [list(c.genome) for c in r.front]
    else:
        final = [r.final_fitness, r.test_accuracy, r.val_accuracy]
    print("RESULT", json.dumps({{"final": final, "history": history, "weights": digest}}), flush=True)
""")


def _popen(script: Path, name: str, out: Path, *, resume: bool, delay: float, k: int = 0) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, str(script), name, str(out), "1" if resume else "0", str(delay), str(k)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def _finish(proc: subprocess.Popen) -> tuple[dict, list[int]]:
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    lines = stdout.splitlines()
    result = json.loads([ln for ln in lines if ln.startswith("RESULT ")][-1][len("RESULT "):])
    return result, [int(ln.split()[1]) for ln in lines if ln.startswith("GEN ")]


@pytest.mark.parametrize("name", ["search", "nas", "gee"])
def test_sigkill_after_a_checkpoint_then_resume_matches_the_uninterrupted_run(tmp_path, name):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(repo=str(REPO), gee=str(GEE_TESTS)))
    k = random.Random(f"{name}-kill").randrange(3)  # search 1, nas 2, gee 0: kill once generation k has its checkpoint
    out = tmp_path / "killed"
    proc = _popen(script, name, out, resume=False, delay=30.0, k=k)  # sleeps from generation k on: the kill lands
    try:
        for line in proc.stdout:  # "GEN i" is printed after generation i's checkpoint was written
            if line.strip() == f"GEN {k}":
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    state = io.load_checkpoint(out / "checkpoint.pt")
    assert state["generation"] == k and state["problem"] == name
    assert [r["generation"] for r in io.read_jsonl(out / "generations.jsonl")] == list(range(k + 1))
    assert not (out / "model.pt").exists()

    full = _popen(script, name, tmp_path / "full", resume=False, delay=0.0)
    resumed, gens = _finish(_popen(script, name, out, resume=True, delay=0.0))
    reference, all_gens = _finish(full)
    assert gens == all_gens[k + 1:] == list(range(k + 1, 4))  # continued after k, redid nothing finished
    assert resumed == reference  # final result, history and the model's weights, bit for bit
    strip = lambda rows: [{x: v for x, v in r.items() if x not in ("seconds", "elapsed", "eta")} for r in rows]  # noqa: E731
    assert strip(io.read_jsonl(out / "generations.jsonl")) == strip(io.read_jsonl(tmp_path / "full" / "generations.jsonl"))


def test_resuming_with_other_settings_names_the_differing_fields(tmp_path):
    from spikesmith.errors import InputError
    from spikesmith.evolve import EvolveConfig, evolve
    from spikesmith.evolve.conv_search import ConvOptions

    cfg = EvolveConfig(population=2, generations=0, seed=1, steps=2, options=ConvOptions(samples=16))
    evolve("search", cfg, out_dir=tmp_path)
    with pytest.raises(InputError, match=r"other settings: options\.samples \(16 -> 32\), seed \(1 -> 2\)$"):
        evolve("search", EvolveConfig(population=2, generations=0, seed=2, steps=2,
                                      options=ConvOptions(samples=32)), out_dir=tmp_path, resume=True)
    with pytest.raises(InputError, match="not a checkpoint of 'evolve nas'"):
        from spikesmith.evolve.nas.run import run_nas

        run_nas(out_dir=tmp_path, resume=True, population=2, generations=0)
    # the backend may change between a run and its resume
    assert EvolveConfig(backend="process", workers=3).config_hash() == EvolveConfig().config_hash()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["config_hash"] == cfg.config_hash()
