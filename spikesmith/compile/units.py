"""All unit conversion between Norse, NIR and Lava in one place.

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
``--reset`` / ``--reset-timing`` or stored in the graph metadata):

- reset by subtraction: v <- v - v_threshold instead of v <- v_reset (needs v_reset = 0);
- delayed reset (snnTorch's neurons): the spike of step t is decided on the unreset membrane and
  the reset acts on step t+1. For a CubaLIF (snnTorch's Synaptic) step t+1 integrates as usual and
  then v <- v_reset (so the neuron cannot fire at t+1 and the input of t+1 reaches only the
  current I), or v <- v - v_threshold (it fires at t+1 if v is still above threshold). For a LIF or IF (snnTorch's Leaky) a delayed reset to a value
  clears v *before* step t+1 integrates, which gives the same spikes as the immediate reset, so
  it is run as immediate; a delayed subtraction acts after step t+1 integrates, for every type.

Lava's LIF computes u <- u*(1-du) + a_in; v <- v*(1-dv) + u + bias; spike when v > vth,
then v <- 0. Matching the two: du = dt/tau_syn (1 for a LIF without synaptic state),
dv = dt/tau_mem (0 for IF), input weights multiplied by :func:`input_gain`, and the
constant drive (v_leak, biases) as Lava's bias. Norse's ``tau_mem_inv`` is 1/tau.
"""

from __future__ import annotations

import numpy as np

from spikesmith.errors import GraphError


def norse_tau_inv_to_tau(tau_mem_inv) -> np.ndarray:
    """NIR time constant tau (s) from Norse's inverse time constant (1/s)."""
    return 1.0 / np.asarray(tau_mem_inv, dtype=np.float64)


def tau_to_norse_tau_inv(tau) -> np.ndarray:
    """Norse's inverse time constant (1/s) from a NIR tau (s)."""
    return 1.0 / np.asarray(tau, dtype=np.float64)


def decay(tau, dt: float) -> np.ndarray:
    """Forward-Euler decay factor per step, dt/tau (Lava's du/dv in floating point)."""
    return dt / np.asarray(tau, dtype=np.float64)


def decay_to_tau(d, dt: float) -> np.ndarray:
    """The time constant (s) that a per-step decay ``d`` realises at ``dt``."""
    return dt / np.asarray(d, dtype=np.float64)


def lava_decay_12bit(d) -> np.ndarray:
    """Loihi's 12-bit decay register value for a decay fraction d in [0, 1] (4096 = 1.0)."""
    return np.clip(np.round(np.asarray(d, dtype=np.float64) * 4096.0), 0, 4095).astype(np.int64)


def lava_decay_from_12bit(du) -> np.ndarray:
    """Decay fraction realised by a 12-bit Loihi decay register value."""
    return np.asarray(du, dtype=np.float64) / 4096.0


def effective_reset(node_type: str, rule) -> tuple[bool, bool]:
    """(subtract, delayed) for a neuron of NIR type ``node_type`` under a ResetRule ``rule``."""
    if node_type not in ("LIF", "CubaLIF", "IF"):
        return False, False  # Threshold is stateless; LI, CubaLI and I never fire
    subtract = rule.mode == "subtract"
    delayed = rule.timing == "delayed"
    if delayed and not subtract and node_type in ("LIF", "IF"):
        delayed = False  # snnTorch's Leaky clears v before integrating: same spikes as immediate
    return subtract, delayed


def check_time_constant(name: str, field_name: str, tau, dt: float) -> None:
    """Reject a time constant shorter than ``dt``: forward Euler (dt/tau > 1) overshoots and diverges."""
    tau = np.asarray(tau, dtype=np.float64)
    if np.any(dt / tau > 1.0 + 1e-6):  # tau = dt stored in float32 is tau = dt
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

