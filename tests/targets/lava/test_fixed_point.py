"""Loihi fixed point: quantisation figures, bit-exact emulation of Lava, verified compilation."""

import numpy as np
import pytest

from factories import ff_graph, spikes
from spikesmith.compile.graph import flatten
from spikesmith.compile.plan import build_plan
from spikesmith.compile.quantise import QuantConfig, emulate, quantise, weight_mantissa
from spikesmith.targets.lava import simulate as lava
from spikesmith.targets.reference import simulate as reference


def test_weight_mantissa_follows_lavas_exponent_rule():
    # mixed signs: scale = min(127/0.5, 128/0.25) = 254 -> floor(log2) + 1 = 8 -> exponent -8, even mantissas
    w, e = weight_mantissa(np.array([0.5, -0.25, 0.1]))
    assert e == -8
    assert w.tolist() == [128, -64, 26]
    assert np.all(w % 2 == 0)
    # one sign: scale = 255/3 -> floor(log2 85) = 6 -> exponent -6
    w, e = weight_mantissa(np.array([3.0, 1.0, 0.0]))
    assert (e, w.tolist()) == (-6, [192, 64, 0])


@pytest.mark.parametrize("neuron", ["LIF", "CubaLIF", "IF"])
def test_lava_fixed_point_equals_the_emulator_bit_for_bit(neuron):
    g = ff_graph(seed=3, neuron=neuron)
    x = spikes((20, 3, 6), 0.5, seed=1)
    lf = lava(g, x, dt=1e-3, fixed_point=True)
    plan, _ = quantise(build_plan(flatten(g), 1e-3), QuantConfig(), x)
    em = emulate(plan, x, fixed=True)
    for name in em:
        np.testing.assert_array_equal(lf.activity[name].reshape(em[name]["s"].shape), em[name]["s"], err_msg=name)
    assert lf.activity["n1"].mean() > 0.02


@pytest.mark.parametrize("mode,timing", [("subtract", "immediate"), ("value", "delayed"), ("subtract", "delayed")])
def test_fixed_point_reset_rules_and_per_neuron_decays_equal_the_emulator(mode, timing):
    from spikesmith.compile.graph import ResetRule

    g = ff_graph(seed=3, neuron="CubaLIF")
    g.nodes["n1"].tau_mem = np.linspace(1.5e-3, 5e-3, 8)
    g.nodes["n1"].tau_syn = np.linspace(4e-3, 1.2e-3, 8)
    rule = ResetRule(mode=mode, timing=timing)
    x = spikes((20, 3, 6), 0.5, seed=1)
    lf = lava(g, x, dt=1e-3, fixed_point=True, reset=rule)
    plan, report = quantise(build_plan(flatten(g), 1e-3, rule), QuantConfig(), x)
    em = emulate(plan, x, fixed=True)
    for name in em:
        np.testing.assert_array_equal(lf.activity[name].reshape(em[name]["s"].shape), em[name]["s"], err_msg=name)
    assert lf.activity["n1"].mean() > 0.02
    # the report names the neuron whose decay register moved its time constant most
    assert 1.2e-3 <= report[0].tau_syn_requested_s <= 4e-3


def test_float_emulator_matches_reference():
    g = ff_graph(seed=5, neuron="CubaLIF")
    x = spikes((20, 2, 6), 0.5, seed=2)
    em = emulate(build_plan(flatten(g), 1e-3), x, fixed=False)
    ref = reference(g, x, dt=1e-3)
    for name in em:
        np.testing.assert_array_equal(ref.activity[name].reshape(em[name]["s"].shape), em[name]["s"])


def test_quantisation_report_states_realised_time_constants_and_headroom():
    g = ff_graph(seed=3, neuron="CubaLIF")
    x = spikes((20, 3, 6), 0.5, seed=1)
    _, report = quantise(build_plan(flatten(g), 1e-3), QuantConfig(), x)
    row = report[0]
    # tau_syn 3 ms at dt 1 ms: du = 1/3 -> register round(4096/3) - 1 = 1364, realised 4096/1365 ms
    assert row.du_reg == 1364
    assert row.tau_syn_realised_s == pytest.approx(1e-3 * 4096 / 1365)
    assert row.dv_reg == 2048 and row.tau_mem_realised_s == pytest.approx(2e-3)
    assert row.u_headroom > 1 and row.v_headroom > 1
    assert 0 <= row.weight_rel_error["in"] < 0.01


def test_verify_passes_float_and_reports_fixed():
    from spikesmith.targets.verify import verify

    g = ff_graph(seed=3, neuron="LIF")
    v = verify(g, spikes((20, 4, 6), 0.5, seed=1), dt=1e-3, fixed_point=True, fixed_tolerance=0.5)
    assert v.float_ok and v.comparisons[0].identical and v.comparisons[0].first_divergence is None
    assert v.fixed_ok is True
    assert v.resources["neurons"] == 11 and v.resources["cores"] == 2
    assert set(v.max_membrane_deviation) == {"n1", "n2"}


def test_state_scale_is_lowered_where_the_data_would_saturate_24_bits():
    g = ff_graph(seed=3, neuron="IF")
    g.nodes["fc1"].weight = -np.abs(g.nodes["fc1"].weight) * 40.0  # v of n1 integrates far below zero
    x = spikes((40, 2, 6), 0.5, seed=1)
    _, report = quantise(build_plan(flatten(g), 1e-3), QuantConfig(), x)
    n1 = report[0]
    assert n1.vth_mant < QuantConfig().max_vth_mant
    assert n1.v_headroom >= 2.0
    _, fixed_scale = quantise(build_plan(flatten(g), 1e-3), QuantConfig(), None)  # no data: no cap
    assert fixed_scale[0].vth_mant == QuantConfig().max_vth_mant


def test_real_valued_outputs_agree_within_the_stated_tolerance():
    """A linear readout's values cannot be equal in fixed point; they agree within 2% of their peak."""
    import nir

    from spikesmith.targets.verify import FIXED_VALUE_TOLERANCE, compare, verify

    g = ff_graph(seed=3, neuron="LIF")
    nodes = dict(g.nodes)
    nodes.pop("n2")
    nodes["out"] = nir.Output(output_type={"output": np.array([3])})
    edges = [e for e in g.edges if "n2" not in e] + [("fc2", "out")]
    readout = nir.NIRGraph(nodes=nodes, edges=edges)
    v = verify(readout, spikes((20, 4, 6), 0.5, seed=1), dt=1e-3, fixed_point=True)
    assert v.float_ok and v.comparisons[0].value_tolerance == 0
    assert v.comparisons[1].value_tolerance == FIXED_VALUE_TOLERANCE and v.comparisons[1].output > 0.9
    assert v.fixed_ok
    # the tolerance is relative to the first trace's peak; spikes are never given any slack
    from spikesmith.targets.trace import Trace

    a = Trace(target="a", dt=1e-3, input=np.zeros((1, 1, 1)), output=np.array([[[10.0, 0.0]]]),
              activity={"s": np.array([[[1.0, 0.0]]])}, seconds=0.0)
    b = Trace(target="b", dt=1e-3, input=np.zeros((1, 1, 1)), output=np.array([[[10.15, 0.3]]]),
              activity={"s": np.array([[[0.0, 0.0]]])}, seconds=0.0)
    c = compare(a, b, ["s"], "out", FIXED_VALUE_TOLERANCE)
    assert c.output == 0.5 and c.per_node["s"] == 0.5
