"""Every numeric option of every command (the evolve commands have their own sweep in tests/evolve): a
bad value is one line on stderr, exit 2, no traceback, and nothing is written, because options are
checked before any work."""

from __future__ import annotations

import numpy as np
import pytest

from factories import ff_graph, spikes
from spikesmith import io
from spikesmith.cli import main

HUGE = "99999999999999999999999"
COUNT = ["0", "-1", "abc", "nan", "inf", HUGE]     # a positive count (epochs, steps, samples, sizes)
SEED = ["-1", "abc", "nan", "1.5", HUGE]           # 0 is a seed
SECONDS = ["0", "-1", "abc", "nan", "inf", "-inf"]  # a positive time
FRACTION = ["-1", "abc", "nan", "inf", "1.5"]       # a number in [0, 1]

# (command prefix with {g}/{x}/{o} placeholders, option, bad values)
CASES = [
    (["train", "-o", "{o}"], "--epochs", COUNT),
    (["train", "-o", "{o}"], "--steps", COUNT),
    (["train", "-o", "{o}"], "--batch-size", COUNT),
    (["train", "-o", "{o}"], "--seed", SEED),
    (["train", "-o", "{o}"], "--genes", ["c1=abc", "foo=1", "c1=0", "c1=-4", "c1=12,c2=32,hidden=0,tau_steps=0",
                                         "c1=12,c2=32,hidden=0,tau_steps=2,v_th=nan", "c1", ""]),
    (["compile", "{g}", "--to", "nir", "-o", "{o}.nir"], "--dt", SECONDS),
    (["compile", "{g}", "--to", "lava", "-o", "{o}"], "--dt", SECONDS),
    (["compile", "{g}", "--to", "lava", "-o", "{o}"], "--verify", ["0", "-1", "abc", "nan", "inf", HUGE]),
    (["compile", "{g}", "--to", "lava", "-o", "{o}"], "--lava-samples", COUNT),
    (["compile", "{g}", "--to", "lava", "-o", "{o}"], "--batch-size", COUNT),
    (["compile", "{g}", "--to", "lava", "-o", "{o}"], "--steps", COUNT),
    (["compile", "{g}", "--to", "lava", "-o", "{o}"], "--tolerance", FRACTION),
    (["run", "{g}", "--input", "{x}", "-o", "{o}.npy"], "--dt", SECONDS),
    (["run", "{g}", "--input", "{x}", "-o", "{o}.npy"], "--batch-size", COUNT),
    (["run", "{g}", "--target", "loihi", "--input", "{x}", "-o", "{o}.npy"], "--batch-size", COUNT),
    (["energy-report", "{g}", "--input", "{x}", "-o", "{o}"], "--dt", SECONDS),
    (["energy-report", "{g}", "--data", "digits", "-o", "{o}"], "--samples", COUNT),
    (["energy-report", "{g}", "--data", "digits", "-o", "{o}"], "--steps", COUNT),
    (["demo", "-o", "{o}"], "--epochs", COUNT),
    (["demo", "-o", "{o}"], "--steps", COUNT),
    (["demo", "-o", "{o}"], "--seed", SEED),
    (["demo", "-o", "{o}"], "--lava-samples", COUNT),
]
SWEEP = [(args, opt, v) for args, opt, values in CASES for v in values]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    g = ff_graph(seed=1)
    g.metadata = {"spikesmith.dt": 1e-3}
    io.write_nir(d / "g.nir", g)
    io.save_array(d / "x.npy", spikes((5, 2, 6), 0.5, seed=4))
    return {"g": d / "g.nir", "x": d / "x.npy"}


def test_the_sweep_covers_every_command():
    assert {args[0] for args, _, _ in CASES} == {"train", "compile", "run", "energy-report", "demo"}
    assert len(SWEEP) >= 120


@pytest.mark.parametrize("args,option,value", SWEEP, ids=[f"{a[0]}{'-' + a[3] if a[0] == 'compile' else ''}"
                                                           f"{option}={v or 'empty'}" for a, option, v in SWEEP])
def test_bad_option_is_one_line_exit_2_and_nothing_written(files, tmp_path, capsys, monkeypatch, args, option, value):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(o=tmp_path / "out", **files) for a in args] + [f"{option}={value}"]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "internal error" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, not even the output directory


def test_a_good_value_of_the_same_options_passes_the_checks(files, tmp_path):
    """The sweep's commands are otherwise valid: with sane values they run (here the cheapest, run)."""
    assert main(["run", str(files["g"]), "--input", str(files["x"]), "-o", str(tmp_path / "y.npy"), "--dt", "1e-3",
                 "--batch-size", "2"]) == 0
    assert np.load(tmp_path / "y.npy").shape == (5, 2, 3)
