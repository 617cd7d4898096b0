"""The models of the interop tests: spikesmith graphs of each kind a framework may be handed.

Each builder returns a canonical spikesmith NIR graph (time constants in seconds, dt and reset
in the metadata) and the shape of one input sample. Weights are seeded; the scales are chosen so
that every spiking layer fires on the tests' inputs (checked by a test, so agreement is not the
agreement of silent networks).
"""

from __future__ import annotations

import nir
import numpy as np
import torch
from torch import nn

from spikesmith import api
from spikesmith.nn import build
from spikesmith.nn.families.conv import ConvSpec

DEMO_SPEC = ConvSpec(c1=12, c2=32, hidden=0, tau_steps=2.0, v_th=0.5, input_shape=(1, 8, 8), num_classes=10)


def _meta(dt: float) -> dict:
    return {"spikesmith.dt": dt, "spikesmith.reset": "value", "spikesmith.reset_timing": "immediate"}


def demo_model(seed: int = 0):
    """The demo's conv SNN (conv-BN-LIF x2, linear readout LIF) with seeded untrained weights, in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    model = build(DEMO_SPEC)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / p[0].numel()) ** 0.5 * 1.5)
    return model.eval()


def demo(seed: int = 0) -> tuple[nir.NIRGraph, tuple[int, ...]]:
    """The demo model's graph, dt = 1e-3 s."""
    return api.export_model(demo_model(seed), dt=1e-3), DEMO_SPEC.input_shape


def pooled(seed: int = 0) -> tuple[nir.NIRGraph, tuple[int, ...]]:
    """Conv-LIF, 2x2 average pooling, conv-LIF, linear readout LIF (tau = 3 steps), dt = 1e-3 s."""
    from spikesmith.nn import Network, NeuronParams, Neurons

    gen = torch.Generator().manual_seed(seed)
    n = NeuronParams(tau_steps=3.0, v_th=0.4)
    layers = [nn.Conv2d(1, 6, 3, padding=1), Neurons(n.cell()), nn.AvgPool2d(2), nn.Conv2d(6, 8, 3, padding=1),
              Neurons(n.cell()), nn.Flatten(), nn.Linear(8 * 4 * 4, 10), Neurons(n.cell())]
    with torch.no_grad():
        for layer in layers:
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * 3.0 / layer.weight[0].numel() ** 0.5)
                layer.bias.zero_()
    return api.export_model(Network.sequential(layers, input_shape=(1, 8, 8)).eval(), dt=1e-3), (1, 8, 8)


def _dense(rng, n_out: int, n_in: int, scale: float) -> nir.Affine:
    return nir.Affine(weight=rng.normal(0, scale / n_in ** 0.5, (n_out, n_in)), bias=rng.normal(0, 0.05, n_out))


def _cuba(n: int, dt: float, tau_syn_steps: float, tau_mem_steps: float, v_th: float) -> nir.CubaLIF:
    return nir.CubaLIF(tau_syn=np.full(n, tau_syn_steps * dt), tau_mem=np.full(n, tau_mem_steps * dt), r=np.ones(n),
                       w_in=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, v_th), v_reset=np.zeros(n))


def _lif(n: int, dt: float, tau_steps: float, v_th: float) -> nir.LIF:
    return nir.LIF(tau=np.full(n, tau_steps * dt), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, v_th),
                   v_reset=np.zeros(n))


def recurrent(seed: int = 0, dt: float = 5e-4) -> tuple[nir.NIRGraph, tuple[int, ...]]:
    """Affine -> CubaLIF with an all-to-all recurrent Affine (a cycle) -> Affine -> LIF, dt = 0.5 ms
    (not Norse's default, so that its importer's own dt shows)."""
    rng = np.random.default_rng(seed)
    n_in, n_h, n_out = 6, 16, 4
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "fc1": _dense(rng, n_h, n_in, 4.0), "lif1": _cuba(n_h, dt, 2.0, 4.0, 0.3),
             "w_rec": nir.Affine(weight=rng.normal(0, 0.6 / n_h ** 0.5, (n_h, n_h)), bias=np.zeros(n_h)),
             "fc2": _dense(rng, n_out, n_h, 4.0), "lif2": _lif(n_out, dt, 3.0, 0.3),
             "output": nir.Output(output_type={"output": np.array([n_out])})}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "w_rec"), ("w_rec", "lif1"), ("lif1", "fc2"),
             ("fc2", "lif2"), ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=_meta(dt)), (n_in,)


def synaptic(seed: int = 0, dt: float = 1e-3) -> tuple[nir.NIRGraph, tuple[int, ...]]:
    """Feed-forward Affine -> CubaLIF -> Affine -> CubaLIF, dt = 1e-3 s."""
    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type={"input": np.array([8])}),
             "fc1": _dense(rng, 12, 8, 4.0), "cuba1": _cuba(12, dt, 2.0, 3.0, 0.3),
             "fc2": _dense(rng, 5, 12, 4.0), "cuba2": _cuba(5, dt, 2.0, 3.0, 0.3),
             "output": nir.Output(output_type={"output": np.array([5])})}
    edges = [("input", "fc1"), ("fc1", "cuba1"), ("cuba1", "fc2"), ("fc2", "cuba2"), ("cuba2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=_meta(dt)), (8,)


def integrate_and_fire(seed: int = 0, dt: float = 1e-3) -> tuple[nir.NIRGraph, tuple[int, ...]]:
    """Affine -> IF -> Affine -> IF (no leak), dt = 1e-3 s."""
    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type={"input": np.array([8])}),
             "fc1": _dense(rng, 10, 8, 2.0),
             "if1": nir.IF(r=np.ones(10), v_threshold=np.full(10, 1.0), v_reset=np.zeros(10)),
             "fc2": _dense(rng, 4, 10, 2.0),
             "if2": nir.IF(r=np.ones(4), v_threshold=np.full(4, 1.0), v_reset=np.zeros(4)),
             "output": nir.Output(output_type={"output": np.array([4])})}
    edges = [("input", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "if2"), ("if2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=_meta(dt)), (8,)


MODELS = {"demo": demo, "pooled": pooled, "recurrent": recurrent, "synaptic": synaptic, "if": integrate_and_fire}
