"""Unit conversions round-trip (compile/units.py is the one place they live)."""

import numpy as np
import pytest

from spikesmith.compile import units
from spikesmith.errors import GraphError

RNG = np.random.default_rng(0)


def test_time_constant_and_decay_round_trip():
    dt = 10.0 ** RNG.uniform(-5, -2, 200)
    tau = dt * RNG.uniform(1.0, 500.0, 200)
    np.testing.assert_allclose(units.decay_to_tau(units.decay(tau, dt), dt), tau, rtol=1e-12)
    np.testing.assert_allclose(units.decay(units.decay_to_tau(dt / tau, dt), dt), dt / tau, rtol=1e-12)
    assert np.isinf(units.decay_to_tau(0.0, 1e-3))


def test_norse_inverse_time_constant_round_trips():
    tau = 10.0 ** RNG.uniform(-5, 0, 100)
    np.testing.assert_allclose(units.norse_tau_inv_to_tau(units.tau_to_norse_tau_inv(tau)), tau, rtol=1e-14)


def test_tau_equal_to_dt_in_float32_is_a_unit_decay():
    assert units.decay(np.float32(1e-4), 1e-4) == 1.0  # float32 rounding puts dt/tau a hair above 1
    assert units.decay(2e-3, 1e-3) == 0.5


@pytest.mark.parametrize("to_reg,from_reg", [
    (units.voltage_decay_register, units.voltage_decay_realised),
    (units.current_decay_register, units.current_decay_realised),
])
def test_every_decay_register_round_trips_and_rounds_to_the_nearest(to_reg, from_reg):
    regs = np.arange(units.DECAY_UNITY)
    np.testing.assert_array_equal(to_reg(from_reg(regs)), regs)
    d = RNG.uniform(1.0 / units.DECAY_UNITY, 1.0, 1000)
    assert np.all(np.abs(from_reg(to_reg(d)) - d) <= 0.5 / units.DECAY_UNITY + 1e-15)
    assert np.all((to_reg(d) >= 0) & (to_reg(d) < units.DECAY_UNITY))


def test_a_current_that_decays_completely_and_an_integrator_are_expressible():
    assert units.current_decay_realised(units.current_decay_register(1.0)) == 1.0  # u holds only this step
    assert units.voltage_decay_realised(units.voltage_decay_register(0.0)) == 0.0  # IF: v never leaks


def test_state_scale_keeps_the_largest_threshold_within_24_bits():
    assert units.state_scale(1) == 1 << units.STATE_SHIFT
    assert units.state_scale(units.MAX_THRESHOLD_MANTISSA) < 1 << (units.STATE_BITS - 1)


def test_time_constant_shorter_than_dt_is_rejected_by_name():
    with pytest.raises(GraphError, match="node 'n': tau_mem = 0.0005 s is shorter than dt"):
        units.check_time_constant("n", "tau_mem", np.array([5e-4, 2e-3]), 1e-3)
