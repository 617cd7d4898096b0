"""Every numeric option of `evolve search|nas|gee`, given an invalid number, is one line on stderr and exit 2,
before any work: no traceback and nothing written to -o. Runs the real command line (spikesmith.cli.main)."""

from __future__ import annotations

import pytest

from spikesmith.cli import main

HUGE = "9" * 30
BAD = ("0", "-1", "abc", "nan", "inf", HUGE)

COMMON = ("--population", "--generations", "--seed", "--workers", "--steps")
NUMERIC = {
    "search": COMMON + ("--samples",),
    "nas": COMMON + ("--offspring", "--cells", "--min-cells", "--channels", "--fitness-batch", "--fitness-batches",
                     "--crossover-prob", "--mutation-eta", "--train", "--deploy-samples"),
    "gee": COMMON + ("--genes", "--epochs-per-generation", "--final-epochs", "--max-batches", "--batch-size", "--lr",
                     "--tournament", "--elite", "--crossover-rate", "--mutation-sigma", "--sign"),
}
# values of BAD that are valid settings of an option (a seed of 0, no generations after the initial one, ...)
VALID = {"--seed": {"0"}, "--min-cells": {"0"}, "--generations": {"0"}, "--train": {"0"}, "--final-epochs": {"0"}, "--elite": {"0"},
         "--crossover-prob": {"0"}, "--crossover-rate": {"0"}, "--mutation-sigma": {"0"}, "--sign": {"0", "-1"}}

CASES = [(cmd, opt, v) for cmd, opts in NUMERIC.items() for opt in opts for v in BAD if v not in VALID.get(opt, ())]


def _run(capsys, *args) -> tuple[int, list[str]]:
    rc = main(["evolve", *map(str, args)])
    err = capsys.readouterr().err
    return rc, err.strip().splitlines()


@pytest.mark.parametrize(("command", "option", "value"), CASES, ids=[f"{c}{o}={v[:5]}" for c, o, v in CASES])
def test_invalid_number_is_one_line_and_exit_2(tmp_path, capsys, command, option, value):
    out = tmp_path / "out"
    rc, lines = _run(capsys, command, option, value, "-o", out)
    assert rc == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert option in lines[0] and "Traceback" not in lines[0] and "internal error" not in lines[0]
    assert not out.exists()


def test_every_numeric_option_is_swept():
    """The sweep lists every int/float option each command declares (a new option must join it)."""
    import typing

    import typer.main

    from spikesmith import cli

    group = typer.main.get_command(cli.evolve_app)
    for name, func in (("search", cli.evolve_search), ("nas", cli.evolve_nas), ("gee", cli.evolve_gee)):
        hints = typing.get_type_hints(func)
        declared = {next(o for o in p.opts if o.startswith("--")) for p in group.commands[name].params
                    if {int, float} & {hints[p.name], *typing.get_args(hints[p.name])}}
        declared |= {"--genes"} if name == "gee" else set()  # a comma list parsed as integers
        assert declared == set(NUMERIC[name]), name


def test_population_of_one_and_other_shared_checks(tmp_path, capsys):
    out = tmp_path / "o"
    assert _run(capsys, "search", "--population", "1", "-o", out) == (
        2, ["error: --population: expected an integer in 2..10,000, got 1"])
    rc, lines = _run(capsys, "nas", "--cluster", "tcp://127.0.0.1:8786", "-o", out)
    assert rc == 2 and lines == ["error: --cluster: needs --backend dask or ray, got --backend local"]
    rc, lines = _run(capsys, "gee", "--backend", "nowhere", "-o", out)
    assert rc == 2 and len(lines) == 1 and "--backend" in lines[0]
    rc, lines = _run(capsys, "search", "--data", "nowhere", "-o", out)
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: --data: unknown dataset 'nowhere'")
    assert not out.exists()


def test_bad_inheritance_is_one_line_and_exit_2(tmp_path, capsys):
    out = tmp_path / "o"
    rc, lines = _run(capsys, "gee", "--inheritance", "darwinian", "-o", out)
    assert rc == 2 and lines == ["error: --inheritance: expected one of baldwinian, lamarckian, got 'darwinian'"]
    assert not out.exists()


@pytest.mark.parametrize("command", ["nas", "gee"])
def test_bad_or_missing_device_is_one_line_and_exit_2(tmp_path, capsys, command):
    import torch

    out = tmp_path / "o"
    rc, lines = _run(capsys, command, "--device", "tpu", "-o", out)
    assert rc == 2 and lines == ["error: --device: expected cpu or cuda, got 'tpu'"]
    if not torch.cuda.is_available():  # on a machine without CUDA, asking for it is refused before any work
        rc, lines = _run(capsys, command, "--device", "cuda", "-o", out)
        assert rc == 2 and lines == ["error: --device cuda: no CUDA device is available here (use cpu)"]
    assert not out.exists()
