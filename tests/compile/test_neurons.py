"""The registry of neuron families that reference, plan, quantisation, engine and Lava all read."""

import nir
import numpy as np
import pytest

from factories import Custom
from spikesmith.compile import neurons
from spikesmith.compile.graph import ResetRule
from spikesmith.errors import UnsupportedNodeError


def test_every_nir_neuron_type_is_registered_once():
    assert set(neurons.FAMILIES) == {nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI, nir.I, nir.Threshold}
    assert set(neurons.SPIKING_TYPES) == {nir.LIF, nir.CubaLIF, nir.IF, nir.Threshold}
    with pytest.raises(UnsupportedNodeError, match="node 'x': Custom is not a neuron type"):
        neurons.family(Custom(size=2), "x")


def test_the_reference_runs_every_registered_family():
    from spikesmith.targets.reference import supported_types

    assert {t.__name__ for t in neurons.FAMILIES} <= set(supported_types())


@pytest.mark.parametrize("node_type,expected", [
    (nir.LIF, (False, False)), (nir.IF, (False, False)), (nir.CubaLIF, (False, True)),
    (nir.LI, (False, False)), (nir.Threshold, (False, False)),
])
def test_a_delayed_reset_to_a_value_only_delays_a_synaptic_neuron(node_type, expected):
    assert neurons.FAMILIES[node_type].reset(ResetRule(mode="value", timing="delayed")) == expected


def test_subtraction_applies_to_neurons_with_a_membrane_only():
    rule = ResetRule(mode="subtract", timing="immediate")
    assert [neurons.FAMILIES[t].reset(rule)[0] for t in (nir.LIF, nir.CubaLIF, nir.IF, nir.Threshold, nir.I)] == \
        [True, True, True, False, False]


def test_cubalif_in_lava_form_matches_the_discretised_equations():
    node = nir.CubaLIF(tau_syn=np.array([4e-3]), tau_mem=np.array([2e-3]), r=np.array([2.0]), v_leak=np.array([0.3]),
                       v_threshold=np.array([1.5]), v_reset=np.array([0.1]), w_in=np.array([3.0]))
    p = neurons.family(node, "n").lif_parameters(node, "n", (1,), 1e-3)
    # I += dt/tau_syn (w_in x - I); v += dt/tau_mem (v_leak - v + r I), normalised by (v_th - v_reset)
    assert (p.du[0], p.dv[0]) == (0.25, 0.5)
    assert p.gain[0] == pytest.approx(2.0 / 1.4 * 0.5 * 0.25 * 3.0)
    assert p.bias[0] == pytest.approx(0.5 * (0.3 - 0.1) / 1.4)
    assert (p.scale[0], p.offset[0]) == (pytest.approx(1.4), 0.1)
