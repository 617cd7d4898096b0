"""Factories for small MSE-NAS networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikesmith.nn import Network
from spikesmith.evolve.nas.space import NasSpace


def genome_with(space: NasSpace, motifs: list[str], *, feedback: int = 1, kernels: int = 1) -> tuple[int, ...]:
    """A canonical genome whose cells use ``motifs`` (feedback and kernel gene indices as given)."""
    at = {n: i for i, n in enumerate(space.names)}
    names = [m.name for m in space.library]
    g = np.zeros(space.n_genes, dtype=int)
    for c, m in enumerate(motifs, start=1):
        g[at[f"c{c}.motif"]] = names.index(m)
        g[at[f"c{c}.feedback"]] = feedback
        for e in range(space.max_edges):
            g[at[f"c{c}.k{e}"]] = kernels
    return space.repair(g)


def calibrate(model: Network, x: torch.Tensor, *, readout_gain: float = 8.0) -> Network:
    """Running batch-norm statistics = those of ``x``, a readout strong enough to spike; eval mode."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(x)
        model.layers["readout_fc"].raw.mul_(readout_gain)
    return model.eval()


@pytest.fixture
def digits_batch():
    from spikesmith.data import make_loaders

    train, _, _ = make_loaders("digits", batch_size=24, steps=4, seed=0)
    x, y = next(iter(train))
    return x, y
