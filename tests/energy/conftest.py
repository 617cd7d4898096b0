"""Tiny NIR graphs and traces for the energy tests.

Traces are built from fixed, seeded arrays: the node outputs a simulator would have
recorded. Synapse-node outputs are computed with ``compile.ops`` so the traces are
self-consistent, but the counts under test only read the inputs of each node.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from spikesmith.compile.graph import flatten
from spikesmith.compile.ops import LINEAR_OPS
from spikesmith.targets.trace import Trace


def _make_trace(graph: nir.NIRGraph, given: dict[str, np.ndarray], *, dt: float = 1e-3) -> Trace:
    """A Trace with ``given`` node outputs; stateless nodes not given are computed from their inputs."""
    fg = flatten(graph)
    act: dict[str, np.ndarray] = {}
    for name in fg.order:
        if name in given:
            act[name] = np.asarray(given[name], dtype=np.float32)
            continue
        node = fg.nodes[name]
        preds = fg.predecessors(name, back=False)
        x = sum(act[p] for p in preds)
        T, B = x.shape[:2]
        op = LINEAR_OPS[type(node)]
        with torch.no_grad():
            y = op(node, torch.from_numpy(np.asarray(x, np.float32).reshape(T * B, *x.shape[2:])), name)
        act[name] = y.numpy().reshape(T, B, *y.shape[1:])
    return Trace(
        target="test", dt=dt, input=act[fg.inputs[0]], output=act[fg.outputs[0]], activity=act
    )


def _lif(shape) -> nir.LIF:
    """A LIF node of ``shape`` with unit parameters."""
    ones = np.ones(shape, dtype=np.float32)
    return nir.LIF(tau=ones * 2e-3, r=ones, v_leak=ones * 0, v_threshold=ones)


@pytest.fixture
def make_trace():
    """The :func:`_make_trace` factory."""
    return _make_trace


@pytest.fixture
def lif():
    """The :func:`_lif` factory."""
    return _lif


@pytest.fixture
def spikes_rng() -> np.random.Generator:
    return np.random.default_rng(1234)
