"""Energy of counted operations under a profile: pure functions, all figures per inference (per sample).

SNN energy of one inference (joules)::

    E_snn = (SOPs * E_ac + MACs * E_mac + updates * E_neuron_update + spikes * E_spike) / B
            + GEE_MACs * E_mac

ANN baseline energy of one inference::

    E_ann = steps_ann * (MACs_onnx * E_mac + FLOPs_onnx * E_flop) / batch_onnx

Break-even firing rate r* (spikes per neuron per step): with every spiking neuron firing
independently with probability r per step, a synapse layer driven by spiking neurons does
``r * T * synapses`` operations, so ``E_snn(r) = E_fixed + r * E_slope`` and
``r* = (E_ann - E_fixed) / E_slope``. Below r* the SNN costs less than the ANN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from spikesmith.energy.macs import OnnxCounts
from spikesmith.energy.profiles import Profile
from spikesmith.energy.synops import LayerCounts, OpCounts

_UNMAPPED = "(not mapped to a NIR node)"


@dataclass(frozen=True, kw_only=True)
class EnergyBreakdown:
    """SNN energy of one inference in joules, by kind of operation (profile named)."""

    profile: str
    synaptic: float
    analog_macs: float
    neuron_updates: float
    spikes: float
    gee: float = 0.0

    def __post_init__(self) -> None:
        for name in ("synaptic", "analog_macs", "neuron_updates", "spikes", "gee"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"EnergyBreakdown.{name} must be a finite energy >= 0, got {v}")

    @property
    def total(self) -> float:
        """Sum of all parts, joules per inference."""
        return self.synaptic + self.analog_macs + self.neuron_updates + self.spikes + self.gee

    def to_dict(self) -> dict:
        """JSON-ready form, joules per inference."""
        return {"profile": self.profile, "synaptic_j": self.synaptic, "analog_macs_j": self.analog_macs,
                "neuron_updates_j": self.neuron_updates, "spikes_j": self.spikes, "gee_j": self.gee,
                "total_j": self.total}


@dataclass(frozen=True, kw_only=True)
class LayerEnergy:
    """Energy of one NIR node per inference: SNN (SNN profile) and ANN twin (ANN profile), joules."""

    name: str
    node_type: str
    snn: float
    ann: float | None

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"name": self.name, "node_type": self.node_type, "snn_j": self.snn, "ann_j": self.ann}


def layer_energy_snn(layer: LayerCounts, profile: Profile, batch: int) -> float:
    """Energy of one counted layer per inference under ``profile`` (joules)."""
    e = (layer.synops * profile.joules("ac") + layer.macs * profile.joules("mac")
         + layer.neuron_updates * profile.joules("neuron_update") + layer.spikes * profile.joules("spike"))
    return e / batch


def snn_energy(counts: OpCounts, profile: Profile, *, gee_macs: int = 0) -> EnergyBreakdown:
    """SNN energy of one inference from ``counts`` under ``profile``; GEE MACs paid once."""
    B = counts.batch
    return EnergyBreakdown(
        profile=profile.name,
        synaptic=counts.synops * profile.joules("ac") / B,
        analog_macs=counts.macs * profile.joules("mac") / B,
        neuron_updates=counts.neuron_updates * profile.joules("neuron_update") / B,
        spikes=counts.spikes * profile.joules("spike") / B,
        gee=gee_macs * profile.joules("mac"),
    )


def ann_energy(onnx_counts: OnnxCounts, profile: Profile, *, steps: int = 1) -> float:
    """ANN energy of one inference (``steps`` forward passes of one sample), joules."""
    per_pass = onnx_counts.macs * profile.joules("mac") + onnx_counts.flops * profile.joules("flop")
    return steps * per_pass / onnx_counts.batch


def ann_energy_by_node(onnx_counts: OnnxCounts, profile: Profile, node_map: dict[str, str],
                       *, steps: int = 1) -> dict[str, float]:
    """ANN energy per inference grouped by the NIR node each ONNX node came from (joules)."""
    out: dict[str, float] = {}
    for n in onnx_counts.nodes:
        key = node_map.get(n.name, _UNMAPPED)
        e = steps * (n.macs * profile.joules("mac") + n.flops * profile.joules("flop")) / onnx_counts.batch
        out[key] = out.get(key, 0.0) + e
    return out


def break_even_rate(counts: OpCounts, profile: Profile, e_ann: float, *, gee_macs: int = 0) -> dict:
    """The firing rate at which the SNN would cost as much as the ANN (uniform-rate model).

    Returns a dict: ``rate`` (r*, spikes per neuron per step, may lie outside [0, 1] or be
    None when no layer is spike-driven), ``e_fixed_j`` and ``e_slope_j`` (joules per
    inference at r = 0 and per unit rate), ``observed_rate`` and ``verdict`` (a sentence).
    """
    T, B = counts.steps, counts.batch
    e_fixed = gee_macs * profile.joules("mac") + counts.neuron_updates * profile.joules("neuron_update") / B
    e_slope = T * counts.spiking_neurons * profile.joules("spike")
    for layer in counts.layers:
        if layer.kind != "synapse":
            continue
        if layer.spike_driven:
            cost = profile.joules("ac") if layer.binary_input else profile.joules("mac")
            e_slope += T * layer.synapses * cost
        else:
            e_fixed += (layer.synops * profile.joules("ac") + layer.macs * profile.joules("mac")) / B
    observed = counts.firing_rate
    if e_slope <= 0:
        rate, verdict = None, "no spike-driven layer: the SNN's energy does not depend on its firing rate"
    else:
        rate = (e_ann - e_fixed) / e_slope
        if rate <= 0:
            verdict = "the SNN costs more than the ANN even if no neuron ever fires"
        elif rate >= 1:
            verdict = "the SNN costs less than the ANN at every firing rate up to one spike per neuron per step"
        else:
            verdict = (f"the SNN saves energy while the mean firing rate stays below {rate:.4g} "
                       "spikes per neuron per step")
            if observed is not None:
                verdict += f" (observed {observed:.4g})"
    return {"rate": rate, "e_fixed_j": e_fixed, "e_slope_j": e_slope, "observed_rate": observed,
            "verdict": verdict, "model": "uniform independent firing rate r for every spiking neuron; "
                                          "layers fed only by the graph input stay as observed"}
