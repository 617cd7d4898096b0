"""Quantisation to Loihi's integer formats, without Lava: a frozen QuantisedPlan; every limit named when broken."""

import dataclasses

import numpy as np
import pytest

from deploy_graphs import pooled_conv_graph
from factories import ff_graph, spikes
from spikesmith.compile.graph import flatten
from spikesmith.compile.plan import build_plan
from spikesmith.compile.quantise import QuantConfig, quantise, weight_mantissa
from spikesmith.errors import GraphError, InputError
from spikesmith.targets import loihi


def plan_of(g, dt=1e-3):
    return build_plan(flatten(g), dt)


def test_weight_mantissa_follows_lavas_exponent_rule():
    # mixed signs: scale = min(127/0.5, 128/0.25) = 254 -> floor(log2) + 1 = 8 -> exponent -8, even mantissas
    w, e = weight_mantissa(np.array([0.5, -0.25, 0.1]))
    assert e == -8
    assert w.tolist() == [128, -64, 26]
    assert np.all(w % 2 == 0)
    # one sign: scale = 255/3 -> floor(log2 85) = 6 -> exponent -6
    w, e = weight_mantissa(np.array([3.0, 1.0, 0.0]))
    assert (e, w.tolist()) == (-6, [192, 64, 0])


@pytest.mark.parametrize("graph", [ff_graph(seed=3, neuron="CubaLIF"), pooled_conv_graph(seed=1)])
def test_quantised_plan_is_frozen_and_within_loihi_formats(graph):
    plan = plan_of(graph)
    q = quantise(plan, QuantConfig())
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.input_scale = 2.0
    assert not any(k.startswith("q_") for k in vars(plan))  # the float plan is untouched
    assert len(q.connections) == len(plan.connections)
    for c, s in q.pairs():
        assert -8 <= s.exp <= 7 and s.weight.shape == c.weight.shape
        mixed = c.weight.min() < 0 < c.weight.max()
        assert np.all(np.abs(s.weight) <= 255) and (not mixed or np.all(s.weight % 2 == 0))
        # the mantissas realise the weights within one mantissa step of the largest
        real = s.weight * 2.0**s.exp * s.in_scale / q.populations[c.dst].vth_mant
        assert np.abs(real - c.weight).max() <= np.abs(c.weight).max() / 64
    for p in q.populations.values():
        assert 1 <= p.vth_mant < 2**17 and np.all(np.abs(p.bias_mant) < 2**12) and np.all(p.bias_exp <= 7)


def test_quantisation_report_states_realised_time_constants():
    g = ff_graph(seed=3, neuron="CubaLIF")
    row = loihi.prepare(plan_of(g), spikes((20, 3, 6), 0.5, seed=1)).report[0]
    # tau_syn 3 ms at dt 1 ms: du = 1/3 -> register round(4096/3) - 1 = 1364, realised 4096/1365 ms
    assert row.du_reg == 1364
    assert row.tau_syn_realised_s == pytest.approx(1e-3 * 4096 / 1365)
    assert row.dv_reg == 2048 and row.tau_mem_realised_s == pytest.approx(2e-3)
    assert 0 <= row.weight_rel_error["in"] < 0.01


def test_state_scale_is_lowered_where_the_data_would_saturate_24_bits():
    g = ff_graph(seed=3, neuron="IF")
    g.nodes["fc1"].weight = -np.abs(g.nodes["fc1"].weight) * 40.0  # v of n1 integrates far below zero
    x = spikes((40, 2, 6), 0.5, seed=1)
    sized = loihi.simulate(g, x, dt=1e-3)
    row = sized.meta["quantisation"][0]
    assert row["vth_mant"] < QuantConfig().max_vth_mant and row["v_headroom"] >= 2.0
    assert quantise(plan_of(g)).populations["n1"].vth_mant == QuantConfig().max_vth_mant  # no data: no cap


def test_weights_beyond_the_exponent_range_are_refused_naming_the_node():
    g = ff_graph(seed=3)
    g.nodes["fc1"].weight = g.nodes["fc1"].weight * 1e6
    with pytest.raises(GraphError, match="node 'n1': incoming weights from 'in' reach .* exponent -8..7 holds"):
        quantise(plan_of(g), integer_input=True)  # spikes in: one input unit is one integer unit


def test_a_threshold_beyond_17_bits_is_refused_naming_the_node():
    g = ff_graph(seed=3)
    g.nodes["fc2"].weight = g.nodes["fc2"].weight * 1e-9
    with pytest.raises(GraphError, match="node 'n2': its threshold is .* beyond Loihi's 17 bits"):
        quantise(plan_of(g))


def test_a_state_that_overflows_24_bits_is_refused_naming_the_node():
    g = ff_graph(seed=3)
    with pytest.raises(GraphError, match="node 'n1': its state reaches 3e\\+05 times its threshold.*24-bit"):
        quantise(plan_of(g), peaks={"n1": 3e5, "n2": 1.0})


def test_bad_quantisation_settings_are_user_errors():
    for bad in (dict(max_vth_mant=3), dict(max_vth_mant=2**17), dict(input_frac_bits=20)):
        with pytest.raises(InputError):
            QuantConfig(**bad)
