"""NIR Delay nodes lower to Lava's DelayDense: spike-identical in floating point, bit-exact fixed point."""

import nir
import numpy as np
import pytest

from factories import ff_graph, recurrent_front, spikes
from deploy_graphs import assert_fixed_identical
from spikesmith.compile.graph import flatten
from spikesmith.errors import GraphError
from spikesmith.targets.lava import simulate as lava
from test_lowering import assert_identical


def delayed_ff(neuron: str) -> nir.NIRGraph:
    """ff_graph with per-channel input delays (0-3 steps) and a uniform 2-step delay between layers."""
    g = ff_graph(seed=3, neuron=neuron)
    g.nodes["fc2"].weight = g.nodes["fc2"].weight * 2.0
    nodes = dict(g.nodes)
    nodes["d_in"] = nir.Delay(delay=np.array([0, 1, 2, 3, 1, 2], dtype=float) * 1e-3)
    nodes["d_hid"] = nir.Delay(delay=np.full(8, 2e-3))
    edges = [e for e in g.edges if e not in [("in", "fc1"), ("n1", "fc2")]]
    edges += [("in", "d_in"), ("d_in", "fc1"), ("n1", "d_hid"), ("d_hid", "fc2")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def delayed_recurrent() -> nir.NIRGraph:
    """A CubaLIF whose recurrent synapses carry a 3-step delay, read out through a delayed Affine."""
    n = 5
    rng = np.random.default_rng(4)
    nodes = {
        **recurrent_front(rng, n),
        "d_rec": nir.Delay(delay=np.full(n, 3e-3)),
        "rec": nir.Linear(weight=rng.normal(0, 0.8, (n, n))),
        "d_out": nir.Delay(delay=np.full(n, 1e-3)),
        "ro": nir.Linear(weight=rng.normal(0, 1, (2, n))),
        "out": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [("in", "fc"), ("fc", "lif"), ("lif", "d_rec"), ("d_rec", "rec"), ("rec", "lif"),
             ("lif", "d_out"), ("d_out", "ro"), ("ro", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


@pytest.mark.parametrize("neuron", ["LIF", "CubaLIF"])
def test_per_channel_and_layer_delays_are_spike_identical(neuron):
    g = delayed_ff(neuron)
    ref, lv = assert_identical(g, spikes((25, 3, 6), 0.5, seed=1) * 2.0)
    assert ref.activity["n1"].mean() > 0.05 and ref.activity["n2"].mean() > 0.02
    undelayed = ff_graph(seed=3, neuron=neuron)
    undelayed.nodes["fc2"].weight = undelayed.nodes["fc2"].weight * 2.0
    from spikesmith.targets.reference import simulate as reference

    plain = reference(undelayed, spikes((25, 3, 6), 0.5, seed=1) * 2.0, dt=1e-3)
    assert not np.array_equal(plain.activity["n2"], ref.activity["n2"])  # the delays do something


def test_delayed_recurrence_and_delayed_readout_are_identical():
    g = delayed_recurrent()
    ref, lv = assert_identical(g, spikes((30, 4, 3), 0.4, seed=2))
    assert ref.activity["lif"].mean() > 0.05
    assert lv.meta["lava_steps"] == 30 + 2  # four copies side by side, nothing recompiled or padded
    x = spikes((30, 4, 3), 0.4, seed=2)
    grouped = lava(g, x, dt=1e-3, batch_size=1)  # one copy: the samples run back to back
    assert grouped.meta["lava_steps"] == 4 * 30 + 2
    for name, a in lv.activity.items():
        np.testing.assert_allclose(grouped.activity[name], a, rtol=1e-12, atol=1e-12, err_msg=name)


def test_fixed_point_delays_are_bit_exact_on_the_engine():
    for g in (delayed_ff("CubaLIF"), delayed_recurrent()):
        x = spikes((20, 3, *flatten(g).output_shape(flatten(g).inputs[0])), 0.5, seed=1)
        assert_fixed_identical(g, x, batch_size=2)  # two groups back to back: delayed spikes are cleared


def test_delay_defects_are_named():
    g = ff_graph(seed=3)
    nodes = dict(g.nodes)
    nodes["d"] = nir.Delay(delay=np.full(8, 2e-3))
    edges = [e for e in g.edges if e != ("fc1", "n1")] + [("fc1", "d"), ("d", "n1")]
    with pytest.raises(GraphError, match="node 'n1': a constant \\(bias\\) passes through Delay 'd'"):
        lava(nir.NIRGraph(nodes=nodes, edges=edges), spikes((5, 1, 6)), dt=1e-3)
    nodes["d"] = nir.Delay(delay=np.full(8, 1.5e-3))
    with pytest.raises(GraphError, match="node 'd': Delay must be non-negative multiples of dt"):
        lava(nir.NIRGraph(nodes=nodes, edges=edges), spikes((5, 1, 6)), dt=1e-3)
    long = delayed_ff("LIF")
    long.nodes["d_hid"].delay = np.full(8, 70e-3)
    with pytest.raises(GraphError, match="delay of 70 steps exceeds Loihi 2's 63"):
        lava(long, spikes((5, 1, 6)), dt=1e-3, fixed_point=True)


def test_short_samples_with_a_wide_spread_of_lags():
    """Buffers are cleared in time order even when a later sample's pause comes before an earlier one's."""
    rng = np.random.default_rng(0)
    n = 5

    def lif():
        return nir.LIF(tau=np.full(n, 2e-3), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5),
                       v_reset=np.zeros(n))

    nodes = {"in": nir.Input(input_type={"input": np.array([3])}),
             "fc": nir.Linear(weight=rng.normal(1.5, 1, (n, 3))), "l1": lif(),
             "d1": nir.Delay(delay=np.full(n, 1e-3))}
    edges = [("in", "fc"), ("fc", "l1"), ("l1", "d1")]
    prev = "d1"
    for i in range(2, 6):  # l2 .. l5 at lags 2 .. 5, a second delay before l5
        if i == 5:
            nodes["d4"] = nir.Delay(delay=np.full(n, 1e-3))
            edges.append((prev, "d4"))
            prev = "d4"
        nodes[f"f{i}"] = nir.Linear(weight=rng.normal(1, 1, (n, n)))
        nodes[f"l{i}"] = lif()
        edges += [(prev, f"f{i}"), (f"f{i}", f"l{i}")]
        prev = f"l{i}"
    nodes["out"] = nir.Output(output_type={"output": np.array([n])})
    edges.append(("l5", "out"))
    g = nir.NIRGraph(nodes=nodes, edges=edges)
    ref, lv = assert_identical(g, spikes((2, 4, 3), 0.6, seed=1))  # 2 steps per sample, lags 1..5
    assert lv.meta["lags"]["l5"] == 5 and ref.activity["l4"].mean() > 0.2


def test_zero_delay_lets_a_bias_through():
    g = ff_graph(seed=3)
    nodes = dict(g.nodes)
    nodes["d"] = nir.Delay(delay=np.zeros(8))
    edges = [e for e in g.edges if e != ("fc1", "n1")] + [("fc1", "d"), ("d", "n1")]
    assert_identical(nir.NIRGraph(nodes=nodes, edges=edges), spikes((10, 2, 6), 0.5, seed=1) * 2.0)
