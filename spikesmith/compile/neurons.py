"""The neuron families: one registry, keyed on the NIR node type, that every stage reads.

A :class:`NeuronFamily` says what a NIR neuron node is in spikesmith's discretisation
(:mod:`spikesmith.compile.units`): whether it fires, whether it has a synaptic current, which
fields hold its time constants and threshold, and which reset rules it honours. The Norse
reference builds its step from these flags, the plan normalises the node into Lava's LIF form
with :meth:`NeuronFamily.lif_parameters`, and quantisation, the fixed-point engine and the Lava
lowering read the family a population carries. Adding a family is one entry in :data:`FAMILIES`.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from spikesmith.compile import units
from spikesmith.errors import GraphError, UnsupportedNodeError


@dataclass(frozen=True, kw_only=True)
class LIFParameters:
    """A neuron node in Lava's LIF form, per neuron in NIR flat order, normalised to threshold 1, reset 0.

    ``u <- u (1 - du) + gain * x``, ``v <- v (1 - dv) + u + bias``; the voltage in NIR units is
    ``v * scale + offset``.
    """

    du: np.ndarray
    dv: np.ndarray
    gain: np.ndarray
    bias: np.ndarray
    scale: np.ndarray  # v_threshold - v_reset (1 for non-spiking families)
    offset: np.ndarray  # v_reset


@dataclass(frozen=True, kw_only=True)
class NeuronFamily:
    """How one NIR neuron type behaves (see :mod:`spikesmith.compile.units` for the equations)."""

    node_type: type
    spiking: bool  # emits spikes; otherwise its output (and what it sends on) is its voltage
    membrane_tau: str | None = None  # field of the membrane time constant; None: no leak (IF, I, Threshold)
    current_tau: str | None = None  # field of the synaptic current's time constant (CubaLIF, CubaLI)
    threshold: str | None = None  # field of the firing threshold
    stateless: bool = False  # Threshold: fires on this step's input alone
    # a delayed reset to a value clears v before the next step integrates: same spikes as immediate
    delayed_value_reset_is_immediate: bool = False

    @property
    def name(self) -> str:
        return self.node_type.__name__

    @property
    def resets(self) -> bool:
        """Whether the reset rule applies (a spiking neuron with a membrane)."""
        return self.spiking and not self.stateless

    def reset(self, rule) -> tuple[bool, bool]:
        """(subtract, delayed) for a :class:`~spikesmith.compile.graph.ResetRule` ``rule``."""
        if not self.resets:
            return False, False
        subtract = rule.mode == "subtract"
        delayed = rule.timing == "delayed" and (subtract or not self.delayed_value_reset_is_immediate)
        return subtract, delayed

    def lif_parameters(self, node, name: str, shape: tuple[int, ...], dt: float) -> LIFParameters:
        """This node's parameters in Lava's LIF form at time step ``dt`` (raises GraphError naming ``name``)."""
        n = int(np.prod(shape))

        def per(field_name: str, default=None) -> np.ndarray:
            v = getattr(node, field_name, None)
            v = default if v is None else v
            if v is None:
                raise GraphError(f"node '{name}': field '{field_name}' is missing")
            return np.broadcast_to(np.asarray(v, dtype=np.float64), shape).reshape(-1).copy()

        for f in ("tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in", "threshold"):
            v = getattr(node, f, None)
            if v is not None and not isinstance(v, str) and not np.all(np.isfinite(np.asarray(v, dtype=np.float64))):
                raise GraphError(f"node '{name}': field '{f}' contains NaN or inf")
        units.check_time_constants(node, name, dt)
        r = per("r", 1.0)
        if self.stateless:
            scale, offset = per(self.threshold), np.zeros(n)
            if np.any(scale <= 0):
                raise GraphError(f"node '{name}': Threshold must be positive for Lava (got {scale.min():g})")
        elif self.spiking:
            offset = per("v_reset", 0.0)
            scale = per(self.threshold) - offset
            if np.any(scale <= 0):
                raise GraphError(f"node '{name}': v_threshold must exceed v_reset for every neuron")
        else:
            scale, offset = np.ones(n), np.zeros(n)
        gain, bias = r / scale, np.zeros(n)
        du, dv = np.ones(n), np.zeros(n)
        if self.stateless:  # v = this step's input: no memory
            dv, gain = np.ones(n), 1.0 / scale
        if self.membrane_tau is not None:
            dv = units.decay(per(self.membrane_tau), dt)
            gain = gain * dv
            bias = dv * (per("v_leak", 0.0) - offset) / scale
        if self.current_tau is not None:
            du = units.decay(per(self.current_tau), dt)
            gain = gain * du * per("w_in", 1.0)
        if not (np.all((0 <= dv) & (dv <= 1)) and np.all((0 < du) & (du <= 1))):
            raise GraphError(
                f"node '{name}': time constants give decays du={du.min():g}..{du.max():g}, "
                f"dv={dv.min():g}..{dv.max():g} per step at dt={dt:g} s; forward Euler needs 0 < dt/tau <= 1 "
                "(use a smaller --dt)")
        return LIFParameters(du=du, dv=dv, gain=gain, bias=bias, scale=scale, offset=offset)


FAMILIES: dict[type, NeuronFamily] = {f.node_type: f for f in (
    NeuronFamily(node_type=nir.LIF, spiking=True, membrane_tau="tau", threshold="v_threshold",
                 delayed_value_reset_is_immediate=True),
    NeuronFamily(node_type=nir.CubaLIF, spiking=True, membrane_tau="tau_mem", current_tau="tau_syn",
                 threshold="v_threshold"),
    NeuronFamily(node_type=nir.IF, spiking=True, threshold="v_threshold", delayed_value_reset_is_immediate=True),
    NeuronFamily(node_type=nir.Threshold, spiking=True, threshold="threshold", stateless=True),
    NeuronFamily(node_type=nir.LI, spiking=False, membrane_tau="tau"),
    NeuronFamily(node_type=nir.CubaLI, spiking=False, membrane_tau="tau_mem", current_tau="tau_syn"),
    NeuronFamily(node_type=nir.I, spiking=False),
)}

NEURON_TYPES: tuple[type, ...] = tuple(FAMILIES)
SPIKING_TYPES: tuple[type, ...] = tuple(t for t, f in FAMILIES.items() if f.spiking)


def is_neuron(node) -> bool:
    """Whether ``node`` is a NIR neuron node of a registered family."""
    return type(node) in FAMILIES


def family(node, name: str) -> NeuronFamily:
    """The family of the neuron node ``node`` (raises UnsupportedNodeError naming ``name``)."""
    fam = FAMILIES.get(type(node))
    if fam is None:
        raise UnsupportedNodeError(
            f"node '{name}': {type(node).__name__} is not a neuron type spikesmith runs "
            f"(neuron types: {', '.join(sorted(t.__name__ for t in FAMILIES))})")
    return fam
