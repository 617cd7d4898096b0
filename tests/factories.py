"""Factories for tiny NIR graphs used across the tests (importable as `factories`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "nir-corpus"


def ff_graph(seed: int = 0, n_in: int = 6, n_hidden: int = 8, n_out: int = 3, neuron: str = "LIF") -> nir.NIRGraph:
    """Input -> Affine -> neuron -> Affine -> neuron -> Output, seeded weights."""
    rng = np.random.default_rng(seed)

    def pop(n):
        if neuron == "LIF":
            return nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n),
                           v_threshold=np.full(n, 0.8), v_reset=np.zeros(n))
        if neuron == "CubaLIF":
            return nir.CubaLIF(tau_syn=np.full(n, 3e-3), tau_mem=np.full(n, 2e-3), r=np.ones(n),
                               v_leak=np.zeros(n), v_threshold=np.full(n, 0.5), v_reset=np.zeros(n),
                               w_in=np.ones(n))
        if neuron == "IF":
            return nir.IF(r=np.ones(n), v_threshold=np.ones(n), v_reset=np.zeros(n))
        raise ValueError(neuron)

    nodes = {
        "in": nir.Input(input_type={"input": np.array([n_in])}),
        "fc1": nir.Affine(weight=rng.normal(0, 1.0, (n_hidden, n_in)), bias=rng.normal(0, 0.1, n_hidden)),
        "n1": pop(n_hidden),
        "fc2": nir.Affine(weight=rng.normal(0, 1.0, (n_out, n_hidden)), bias=np.zeros(n_out)),
        "n2": pop(n_out),
        "out": nir.Output(output_type={"output": np.array([n_out])}),
    }
    edges = [("in", "fc1"), ("fc1", "n1"), ("n1", "fc2"), ("fc2", "n2"), ("n2", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def recurrent_front(rng: np.random.Generator, n: int = 5) -> dict:
    """Input (3) -> Affine -> CubaLIF (n): the front of the recurrent test graphs (nodes 'in', 'fc', 'lif')."""
    return {
        "in": nir.Input(input_type={"input": np.array([3])}),
        "fc": nir.Affine(weight=rng.normal(0, 2, (n, 3)), bias=rng.normal(0, 0.3, n)),
        "lif": nir.CubaLIF(tau_syn=np.full(n, 3e-3), tau_mem=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n),
                           v_threshold=np.full(n, 0.3), v_reset=np.zeros(n), w_in=np.ones(n)),
    }


def spikes(shape, p=0.3, seed=0) -> np.ndarray:
    """Seeded Bernoulli spike input."""
    return (np.random.default_rng(seed).random(shape) < p).astype(np.float64)




@dataclass(eq=False)
class Custom(nir.NIRNode):
    """A node type from a third-party NIR extension (no target supports it)."""

    size: int

    def __post_init__(self):
        self.input_type = {"input": np.array([self.size])}
        self.output_type = {"output": np.array([self.size])}
