"""Loihi fixed point on Lava: the fixed-point engine equals Lava's bit-accurate models bit for bit;
verified compilation reports the fixed-point figures."""

import numpy as np
import pytest

from deploy_graphs import assert_fixed_identical
from factories import ff_graph, spikes
from spikesmith.compile.graph import ResetRule, flatten
from spikesmith.compile.plan import build_plan
from spikesmith.targets import loihi


@pytest.mark.parametrize("neuron", ["LIF", "CubaLIF", "IF"])
def test_engine_equals_lava_fixed_point_bit_for_bit(neuron):
    g = ff_graph(seed=3, neuron=neuron)
    en, lf = assert_fixed_identical(g, spikes((20, 3, 6), 0.5, seed=1))
    assert lf.activity["n1"].mean() > 0.02


@pytest.mark.parametrize("mode,timing", [("subtract", "immediate"), ("value", "delayed"), ("subtract", "delayed")])
def test_fixed_point_reset_rules_and_per_neuron_decays_are_bit_exact(mode, timing):
    g = ff_graph(seed=3, neuron="CubaLIF")
    g.nodes["n1"].tau_mem = np.linspace(1.5e-3, 5e-3, 8)
    g.nodes["n1"].tau_syn = np.linspace(4e-3, 1.2e-3, 8)
    rule = ResetRule(mode=mode, timing=timing)
    x = spikes((20, 3, 6), 0.5, seed=1)
    en, lf = assert_fixed_identical(g, x, reset=rule)
    assert lf.activity["n1"].mean() > 0.02
    # the report names the neuron whose decay register moved its time constant most
    assert 1.2e-3 <= en.meta["quantisation"][0]["tau_syn_requested_s"] <= 4e-3


def test_verify_passes_float_and_reports_fixed():
    from spikesmith.targets.verify import verify

    g = ff_graph(seed=3, neuron="LIF")
    v = verify(g, spikes((20, 4, 6), 0.5, seed=1), dt=1e-3, fixed_point=True, fixed_tolerance=0.5)
    assert v.float_ok and v.comparisons[0].identical and v.comparisons[0].first_divergence is None
    assert v.fixed_ok is True
    assert (v.comparisons[2].a, v.comparisons[2].b) == ("loihi", "lava-fixed") and v.comparisons[2].identical
    assert v.resources["neurons"] == 11 and v.resources["cores"] == 2
    assert set(v.max_membrane_deviation) == {"n1", "n2"}
    assert v.target_samples == {"norse": 4, "lava-float": 4, "loihi": 4, "lava-fixed": 4}


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
    assert v.fixed_ok and v.comparisons[2].identical  # the readout's integers are equal on both fixed targets
    # the tolerance is relative to the first trace's peak; spikes are never given any slack
    from spikesmith.targets.trace import Trace

    a = Trace(target="a", dt=1e-3, input=np.zeros((1, 1, 1)), output=np.array([[[10.0, 0.0]]]),
              activity={"s": np.array([[[1.0, 0.0]]])}, seconds=0.0)
    b = Trace(target="b", dt=1e-3, input=np.zeros((1, 1, 1)), output=np.array([[[10.15, 0.3]]]),
              activity={"s": np.array([[[0.0, 0.0]]])}, seconds=0.0)
    c = compare(a, b, ["s"], "out", FIXED_VALUE_TOLERANCE)
    assert c.output == 0.5 and c.per_node["s"] == 0.5


def test_u_wraps_in_24_bits_as_lava_wraps_it_and_is_counted():
    """Without data to size the state, a strong input overflows u: both targets wrap it identically."""
    from spikesmith.compile.quantise import QuantConfig, quantise

    g = ff_graph(seed=3, neuron="IF")
    g.nodes["fc1"].weight = np.abs(g.nodes["fc1"].weight) * 500.0  # hundreds of thresholds per input spike
    x = spikes((10, 3, 6), 0.7, seed=2)
    qplan = quantise(build_plan(flatten(g), 1e-3), QuantConfig())  # no peaks: the state is not sized for x
    en, lf = assert_fixed_identical(g, x, plan=qplan)
    wraps = en.meta["wraps"]["n1"]
    assert wraps > 0
    # n1 has no current decay (u is this step's input): u left 24 bits exactly where the float run's
    # input, in the same integer units, exceeds 2**23
    fl = loihi.Engine(qplan.plan).run(x, record=False, record_state=True)["states"]["n1"]["u"]
    assert wraps == int((np.abs(fl * qplan.populations["n1"].scale) > 2**23).sum())
