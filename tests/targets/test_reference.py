import nir
import norse.torch as norse
import numpy as np
import pytest
import torch

from spikesmith.errors import GraphError, UnsupportedNodeError
from spikesmith.targets.reference import simulate
from factories import ff_graph, spikes


def test_lif_matches_norse_module_and_hand_computation():
    # one LIF neuron, dt/tau = 0.5, threshold 1: v <- v + 0.5 (x - v)
    g = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([1])}),
        nir.LIF(tau=np.array([2e-3]), r=np.array([1.0]), v_leak=np.array([0.0]), v_threshold=np.array([1.0]),
                v_reset=np.array([0.0])),
    )
    x = np.full((6, 1, 1), 1.5)
    tr = simulate(g, x, dt=1e-3)
    v, zs = 0.0, []
    for _ in range(6):
        v = v + 0.5 * (1.5 - v)
        z = float(v > 1.0)
        v = 0.0 if z else v
        zs.append(z)
    assert tr.output[:, 0, 0].tolist() == zs
    cell = norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(500.0), v_th=torch.tensor(1.0)), dt=1e-3)
    state, out = None, []
    for t in range(6):
        z, state = cell(torch.tensor([[1.5]]), state)
        out.append(float(z))
    assert out == zs


def test_cubalif_uses_updated_current():
    # dt/tau_syn = 0.25, dt/tau_mem = 0.5: after one input spike I1 = 0.25 * 3 = 0.75 and, when the voltage sees
    # the current of the same step, v1 = 0.5 * 2 * 0.75 = 0.75 > 0.7: a spike at the first step. A simulator that
    # fed the voltage the previous step's current (0) would stay silent at step 0.
    def graph(threshold):
        return nir.NIRGraph.from_list(
            nir.Input(input_type={"input": np.array([1])}),
            nir.CubaLIF(tau_syn=np.array([4e-3]), tau_mem=np.array([2e-3]), r=np.array([2.0]), v_leak=np.array([0.0]),
                        v_threshold=np.array([threshold]), v_reset=np.array([0.0]), w_in=np.array([3.0])),
        )

    x = np.zeros((3, 1, 1))
    x[0] = 1.0
    assert simulate(graph(0.7), x, dt=1e-3).output[:, 0, 0].tolist()[0] == 1.0
    assert simulate(graph(0.8), x, dt=1e-3).output[0, 0, 0] == 0.0  # 0.75 does not cross 0.8
    assert simulate(graph(10.0), x, dt=1e-3).output.sum() == 0


def test_if_integrates_without_leak_and_resets():
    # IF, r = 1, threshold 1, constant input 0.3: v = 0.3, 0.6, 0.9, 1.2 -> spike, reset to 0, and again
    g = nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([1])}),
        nir.IF(r=np.array([1.0]), v_threshold=np.array([1.0]), v_reset=np.array([0.0])),
    )
    out = simulate(g, np.full((12, 1, 1), 0.3), dt=1e-3).output[:, 0, 0]
    assert np.flatnonzero(out).tolist() == [3, 7, 11]
    tr = simulate(ff_graph(neuron="IF"), spikes((20, 3, 6)), dt=1e-3)
    assert set(np.unique(tr.activity["n1"])) <= {0.0, 1.0} and tr.activity["n1"].sum() > 0


def test_input_shape_is_checked():
    with pytest.raises(GraphError, match=r"expects \(T, B, 6\)"):
        simulate(ff_graph(), np.zeros((5, 2, 7)), dt=1e-3)


def test_unsupported_node_is_named():
    class Weird(nir.Scale):
        pass

    g = ff_graph()
    g.nodes["fc2"] = Weird(scale=np.ones(8))
    with pytest.raises(UnsupportedNodeError, match="fc2.*Weird"):
        simulate(g, np.zeros((2, 1, 6)), dt=1e-3)
