"""Front-door functions the CLI calls: :func:`run_gee_evolution` and :func:`gee_params_table`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from spikesmith.errors import InputError
from spikesmith.nn import build as build_net
from spikesmith.nn.families.gee import GeeSpec
from spikesmith.evolve.gee.report import compression_table
from spikesmith.evolve.gee.ste import GeeData, GeeResult, SteConfig, evolve, load_gee_data


def run_gee_evolution(*, data: str | GeeData = "digits", arch: str = "digits", genes: int = 16,
                      population: int = 8, generations: int = 8, final_epochs: int = 8, steps: int = 4,
                      seed: int = 0, out_dir: str | Path | None = None, resume: bool = False,
                      device: str | None = None, encoded: bool = True, config: SteConfig | None = None,
                      on_progress: Callable[[dict], None] | None = None) -> GeeResult:
    """Return the GeeResult of a GEE-STE run of ``arch`` on ``data`` (a dataset name or a GeeData).

    ``population``, ``generations`` and ``final_epochs`` override the same fields of ``config``;
    ``generations=0`` trains a single network plainly for ``final_epochs`` epochs, and with
    ``encoded=False`` the same architecture is built with dense weights (the baseline).
    ``steps`` is T, the time steps per sample (ignored when ``data`` is a GeeData).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed: expected a non-negative integer, got {seed!r}")
    cfg = replace(config or SteConfig(), population=population, generations=generations,
                  final_epochs=final_epochs)
    if isinstance(data, str):
        data = load_gee_data(data, steps=steps, seed=seed)
    elif not isinstance(data, GeeData):
        raise InputError(f"data: expected a dataset name or a GeeData, got {type(data).__name__}")
    try:
        spec = GeeSpec(arch=arch, genes=genes, encoded=bool(encoded), num_classes=data.num_classes,
                       input_shape=data.input_shape)
    except InputError as exc:
        raise InputError(f"data {data.name!r}: {exc}") from None

    def build(init_seed: int):
        return build_net(spec, seed=init_seed)

    return evolve(build, data, cfg, seed=seed, arch=arch, genes=genes, out_dir=out_dir, resume=resume,
                  device=device, on_progress=on_progress, run_info={"encoded": bool(encoded)}, spec=spec)


def gee_params_table(arch: str, genes: list[int] | tuple[int, ...]) -> str:
    """Return the text table of dense/encoded parameters and compression of ``arch`` for each g."""
    return compression_table(arch, list(genes))
