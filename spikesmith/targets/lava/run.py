"""Run a NIR graph on Lava (floating or fixed point) and return a Trace."""

from __future__ import annotations

import time

import nir
import numpy as np

from spikesmith.compile.graph import FlatGraph, flatten
from spikesmith.compile.plan import build_plan
from spikesmith.errors import GraphError
from spikesmith.targets.lava.network import LavaNetwork
from spikesmith.compile.ops import fill_stateless
from spikesmith.targets.trace import Trace


def simulate(
    graph: nir.NIRGraph | FlatGraph,
    x: np.ndarray,
    *,
    dt: float,
    fixed_point: bool = False,
    record: bool = True,
    quant=None,
    plan=None,
    reset=None,
) -> Trace:
    """Simulate ``graph`` on Lava for input ``x`` (T, B, *input_shape); returns the :class:`Trace`.

    ``fixed_point`` quantises the plan to Loihi's integer formats (``quant``: a QuantConfig)
    and runs Lava's bit-accurate models; ``trace.meta["quantisation"]`` holds the per-layer report.
    ``plan``: a plan already built for this graph (already quantised for ``fixed_point``), so
    callers that run several targets build and quantise it once.
    ``reset``: the neurons' ResetRule (default: the graph's stored rule, else NIR's).
    """
    t0 = time.perf_counter()
    flat = graph if isinstance(graph, FlatGraph) else flatten(graph)
    x = np.asarray(x, dtype=np.float64)
    in_shape = flat.output_shape(flat.inputs[0])
    if x.ndim != 2 + len(in_shape) or tuple(x.shape[2:]) != in_shape:
        raise GraphError(f"input has shape {x.shape}; the graph expects (T, B, {', '.join(map(str, in_shape))})")
    qreport = None
    if plan is None:
        plan = build_plan(flat, dt, reset)
    elif fixed_point and not hasattr(plan, "q_input_scale"):
        raise GraphError("a fixed-point run needs a quantised plan (spikesmith.compile.quantise)")
    if fixed_point and not hasattr(plan, "q_input_scale"):
        from spikesmith.compile.quantise import QuantConfig, quantise

        plan, qreport = quantise(plan, quant or QuantConfig(), x)
    net = LavaNetwork(plan, fixed_point=fixed_point, record=record)
    outputs, info = net.run(x)
    activity: dict[str, np.ndarray] = {flat.inputs[0]: x}
    for name, pop in plan.populations.items():
        if name in outputs:
            activity[name] = outputs[name]
    for r in plan.readouts:
        key = "__readout__" + r.output
        if key in outputs:
            activity[r.output] = outputs[key]
    if record:
        activity = fill_stateless(flat, activity, dt)
    out_name = flat.outputs[0]
    output = activity[out_name] if out_name in activity else activity[
        next(r.population for r in plan.readouts if r.output == out_name)]
    total = time.perf_counter() - t0
    return Trace(
        target="lava-fixed" if fixed_point else "lava-float", dt=dt, input=x, output=output,
        activity=activity, seconds=info["run_seconds"], compile_seconds=total - info["run_seconds"],
        meta={"lags": {n: p.lag for n, p in plan.populations.items()}, "reset": plan.reset.describe(), **info,
              **({"quantisation": [r.to_dict() for r in qreport]} if qreport else {})},
    )
