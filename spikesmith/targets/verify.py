"""Verified compilation: run the same inputs through the reference and Lava, compare spike for spike."""

from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np

from spikesmith.compile.graph import flatten
from spikesmith.targets.trace import Trace


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Agreement of two traces: per node, at the output, and the first divergence."""

    a: str
    b: str
    per_node: dict[str, float]
    output: float
    identical: bool
    first_divergence: dict | None = None
    value_tolerance: float = 0.0  # real values compared within this fraction of their peak (0: exactly)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


FIXED_VALUE_TOLERANCE = 0.02  # real values (voltages, linear readouts) agree within 2% of the node's peak


def _agree(x: np.ndarray, y: np.ndarray, value_tolerance: float) -> np.ndarray:
    """Entry-wise agreement: spikes exactly; real values to rounding, or within ``value_tolerance`` of
    the node's peak |value| (fixed point cannot reproduce a real value, only approximate it)."""
    binary = np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all()
    if binary or value_tolerance == 0:
        return np.isclose(x, y, rtol=1e-9, atol=1e-9)
    peak = max(float(np.abs(x).max(initial=0.0)), 1e-12)
    return np.abs(x - y) <= value_tolerance * peak + 1e-9


def compare(a: Trace, b: Trace, order: list[str], output: str, value_tolerance: float = 0.0) -> Comparison:
    """Agreement between traces ``a`` and ``b`` over the nodes in ``order`` (spikes for neuron nodes).

    ``value_tolerance``: for real-valued nodes, the fraction of ``a``'s peak |value| within which
    two values agree (0: equal to rounding, as floating-point targets must be).
    """
    per_node, first = {}, None
    for name in order:
        if name not in a.activity or name not in b.activity:
            continue
        x, y = a.activity[name], b.activity[name]
        same = _agree(x, y, value_tolerance)
        per_node[name] = float(same.mean())
        if not same.all():
            t = int(np.argwhere(~same)[:, 0].min())
            if first is None or t < first["time_step"]:
                first = {"node": name, "time_step": t,
                         "samples": sorted({int(i) for i in np.argwhere(~same[t])[:, 0]})[:10]}
    out = float(_agree(a.output, b.output, value_tolerance).mean())
    return Comparison(a=a.target, b=b.target, per_node=per_node, output=out,
                      identical=all(v == 1.0 for v in per_node.values()) and out == 1.0, first_divergence=first,
                      value_tolerance=value_tolerance)


@dataclass(frozen=True, kw_only=True)
class Verification:
    """Result of :func:`verify`."""

    samples: int
    steps: int
    dt: float
    reset: str
    comparisons: list[Comparison]
    fixed_point: bool
    fixed_tolerance: float
    float_ok: bool
    fixed_ok: bool | None
    quantisation: list[dict] = field(default_factory=list)
    max_membrane_deviation: dict[str, float] = field(default_factory=dict)
    resources: dict = field(default_factory=dict)
    seconds_per_sample: dict[str, float] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.float_ok and (self.fixed_ok is not False)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["comparisons"] = [c.to_dict() for c in self.comparisons]
        d["ok"] = self.ok
        d["schema_version"] = 1
        return d


def verify(graph: nir.NIRGraph, x: np.ndarray, *, dt: float, fixed_point: bool = False,
           fixed_tolerance: float = 0.9, labels: np.ndarray | None = None, reset=None) -> Verification:
    """Run ``x`` (T, B, ...) through the Norse reference, Lava float and (optionally) Lava fixed point.

    Floating point must be spike-identical to the reference. Fixed point passes when its output
    agrees with floating point on at least ``fixed_tolerance`` of (time step, sample, neuron)
    entries: spikes exactly, real-valued outputs (voltages, linear readouts) within
    ``FIXED_VALUE_TOLERANCE`` of the output's peak |value|. ``reset``: the neurons' ResetRule (default: the graph's stored rule, else NIR's).
    """
    from spikesmith.compile.plan import build_plan
    from spikesmith.compile.quantise import QuantConfig, quantise
    from spikesmith.compile.resources import estimate
    from spikesmith.targets.lava import simulate as lava
    from spikesmith.targets.reference import simulate as reference

    flat = flatten(graph)
    plan = build_plan(flat, dt, reset)
    ref = reference(flat, x, dt=dt, reset=plan.reset)
    lv = lava(flat, x, dt=dt, plan=plan)
    from spikesmith.compile.graph import NEURON_TYPES

    # compare what the hardware produces: neuron populations and the graph's output
    nodes = [n for n, node in flat.nodes.items() if isinstance(node, NEURON_TYPES)] + flat.outputs
    comps = [compare(ref, lv, nodes, flat.outputs[0])]
    fixed_ok = None
    quant, deviation = [], {}
    per_sample = {"norse": ref.per_sample_seconds(), "lava-float": lv.per_sample_seconds()}
    traces = {"norse": ref, "lava-float": lv}
    if fixed_point:
        qplan, qreport = quantise(plan, QuantConfig(), x)
        lf = lava(flat, x, dt=dt, fixed_point=True, plan=qplan)
        traces["lava-fixed"] = lf
        comps.append(compare(lv, lf, nodes, flat.outputs[0], FIXED_VALUE_TOLERANCE))
        comps.append(compare(ref, lf, nodes, flat.outputs[0], FIXED_VALUE_TOLERANCE))
        fixed_ok = comps[1].output >= fixed_tolerance
        quant = [r.to_dict() for r in qreport]
        per_sample["lava-fixed"] = lf.per_sample_seconds()
        fl, fx = qplan.q_emulated["float"], qplan.q_emulated["fixed"]  # quantise emulated x both ways
        # the emulator reproduces Lava's fixed-point spikes exactly; its membranes give the deviation
        deviation = {n: float(np.abs(fl[n]["v"] - fx[n]["v"]).max(initial=0.0)) for n in fl}
    accuracy = {}
    if labels is not None:
        accuracy = {k: float((t.output.sum(0).argmax(-1) == labels).mean()) for k, t in traces.items()}
    return Verification(samples=int(x.shape[1]), steps=int(x.shape[0]), dt=dt, reset=plan.reset.describe(),
                        comparisons=comps,
                        fixed_point=fixed_point, fixed_tolerance=fixed_tolerance, float_ok=comps[0].identical,
                        fixed_ok=fixed_ok, quantisation=quant, max_membrane_deviation=deviation,
                        resources=estimate(plan), seconds_per_sample=per_sample, accuracy=accuracy)
