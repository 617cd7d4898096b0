"""Front-door functions the CLI calls: :func:`run_gee_evolution` and :func:`gee_params_table`."""

from __future__ import annotations

from spikesmith.evolve.gee.report import compression_table
from spikesmith.evolve.gee.spatiotemporal import run_gee_evolution

__all__ = ["gee_params_table", "run_gee_evolution"]


def gee_params_table(arch: str, genes: list[int] | tuple[int, ...]) -> str:
    """Return the text table of dense/encoded parameters and compression of ``arch`` for each g."""
    return compression_table(arch, list(genes))
