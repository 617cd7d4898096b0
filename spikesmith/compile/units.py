"""All unit conversion between Norse, NIR and Lava/Loihi in one place.

NIR neurons are continuous-time. spikesmith discretises them with forward Euler at a
time step ``dt`` (seconds), exactly as Norse's own NIR import composes its cells:

- LIF:     v <- v + dt/tau * (v_leak - v + r*x)                      (Norse LIFBox)
- CubaLIF: I <- I + dt/tau_syn * (-I + w_in*x);  v <- v + dt/tau_mem * (v_leak - v + r*I)
           (the voltage uses the *updated* current, i.e. no hidden one-step delay)
- LI/CubaLI: as LIF/CubaLIF without spikes; the output is v.
- IF:      v <- v + r*x        (per step, independent of dt: Norse's IAF and Sinabs' IF)
- I:       v <- v + r*x        (the non-spiking integrator, same convention)
- spike when v > v_threshold (strict), then v <- v_reset (reset to a value: the only reset NIR
  can express).

Two reset rules beyond NIR's (:class:`~spikesmith.compile.graph.ResetRule`, chosen with
``--reset`` / ``--reset-timing`` or stored in the graph metadata; which neuron types honour
them is said by :mod:`spikesmith.compile.neurons`):

- reset by subtraction: v <- v - v_threshold instead of v <- v_reset (needs v_reset = 0);
- delayed reset (snnTorch's neurons): the spike of step t is decided on the unreset membrane and
  the reset acts on step t+1. For a CubaLIF (snnTorch's Synaptic) step t+1 integrates as usual and
  then v <- v_reset (so the neuron cannot fire at t+1 and the input of t+1 reaches only the
  current I), or v <- v - v_threshold (it fires at t+1 if v is still above threshold). For a LIF or IF
  (snnTorch's Leaky) a delayed reset to a value clears v *before* step t+1 integrates, which gives the
  same spikes as the immediate reset, so it is run as immediate; a delayed subtraction acts after
  step t+1 integrates, for every type.

Lava's LIF computes u <- u*(1-du) + a_in; v <- v*(1-dv) + u + bias; spike when v > vth,
then v <- 0. Matching the two: du = dt/tau_syn (1 for a LIF without synaptic state),
dv = dt/tau_mem (0 for IF), input weights multiplied by the neuron's input gain, and the
constant drive (v_leak, biases) as Lava's bias, all in units of the threshold
(v' = (v - v_reset) / (v_threshold - v_reset)).

Loihi's fixed point (Lava's bit-accurate models) stores the decays as 12-bit registers
(``4096 - register`` multiplies the state, then a shift right by 12; the current's register has a
+1 offset so that du = 1 is expressible), the threshold as a 17-bit mantissa shifted left by
:data:`STATE_SHIFT` bits, and u, v in 24 bits. A population whose threshold mantissa is ``m``
holds its normalised state in units of ``S = m << STATE_SHIFT`` (:func:`state_scale`).

Norse's ``tau_mem_inv`` is 1/tau.
"""

from __future__ import annotations

import numpy as np

from spikesmith.errors import GraphError

DECAY_BITS = 12  # Loihi's du/dv registers: state *= (4096 - register) >> 12
DECAY_UNITY = 1 << DECAY_BITS
STATE_SHIFT = 6  # threshold mantissa and synaptic input are MSB-aligned by 6 bits
STATE_BITS = 24  # u and v
THRESHOLD_BITS = 17  # threshold mantissa (unsigned)
MAX_THRESHOLD_MANTISSA = (1 << THRESHOLD_BITS) - 1
UNIT_DECAY_TOLERANCE = 1e-6  # tau = dt stored in float32 gives dt/tau a hair above 1


def norse_tau_inv_to_tau(tau_mem_inv) -> np.ndarray:
    """NIR time constant tau (s) from Norse's inverse time constant (1/s)."""
    return 1.0 / np.asarray(tau_mem_inv, dtype=np.float64)


def tau_to_norse_tau_inv(tau) -> np.ndarray:
    """Norse's inverse time constant (1/s) from a NIR tau (s)."""
    return 1.0 / np.asarray(tau, dtype=np.float64)


def decay(tau, dt: float) -> np.ndarray:
    """Forward-Euler decay per step, dt/tau (Lava's du/dv in floating point).

    A decay within :data:`UNIT_DECAY_TOLERANCE` above 1 (tau = dt stored in float32, e.g.
    snnTorch's beta = 0) is exactly 1.
    """
    d = dt / np.asarray(tau, dtype=np.float64)
    return np.where((d > 1.0) & (d <= 1.0 + UNIT_DECAY_TOLERANCE), 1.0, d)


def decay_to_tau(d, dt: float) -> np.ndarray:
    """The time constant (s) that a per-step decay ``d`` realises at ``dt`` (inf for d = 0)."""
    d = np.asarray(d, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(d > 0, dt / np.where(d > 0, d, 1.0), np.inf)


def voltage_decay_register(d) -> np.ndarray:
    """Loihi's 12-bit voltage decay register (dv) for a decay fraction d in [0, 1] (4096 = 1.0)."""
    return np.clip(np.round(np.asarray(d, dtype=np.float64) * DECAY_UNITY), 0, DECAY_UNITY - 1).astype(np.int64)


def current_decay_register(d) -> np.ndarray:
    """Loihi's 12-bit current decay register (du) for a decay fraction d in (0, 1]: it carries a +1
    offset, so that the register 4095 decays the current completely."""
    return np.clip(np.round(np.asarray(d, dtype=np.float64) * DECAY_UNITY) - 1, 0, DECAY_UNITY - 1).astype(np.int64)


def voltage_decay_realised(register) -> np.ndarray:
    """Decay fraction a voltage decay register realises."""
    return np.asarray(register, dtype=np.float64) / DECAY_UNITY


def current_decay_realised(register) -> np.ndarray:
    """Decay fraction a current decay register realises (register + 1) / 4096."""
    return (np.asarray(register, dtype=np.float64) + 1) / DECAY_UNITY


def state_scale(threshold_mantissa: int) -> int:
    """Integer units per normalised unit of state (threshold 1) at a threshold mantissa: m << 6."""
    return int(threshold_mantissa) << STATE_SHIFT


def check_time_constant(name: str, field_name: str, tau, dt: float) -> None:
    """Reject a time constant shorter than ``dt``: forward Euler (dt/tau > 1) overshoots and diverges."""
    tau = np.asarray(tau, dtype=np.float64)
    if np.any(dt / tau > 1.0 + UNIT_DECAY_TOLERANCE):
        raise GraphError(
            f"node '{name}': {field_name} = {tau.min():g} s is shorter than dt = {dt:g} s, where forward Euler is "
            "unstable; use a smaller --dt (if the graph comes from Norse 1.1.0's to_nir, which writes "
            "tau = dt/tau_mem_inv, export it with to_nir(..., dt=1.0) to store the time constant itself)"
        )


def check_time_constants(node, name: str, dt: float) -> None:
    """:func:`check_time_constant` for each time constant a NIR neuron node has (tau, tau_mem, tau_syn)."""
    for field_name in ("tau", "tau_mem", "tau_syn"):
        value = getattr(node, field_name, None)
        if value is not None:
            check_time_constant(name, field_name, value, dt)
