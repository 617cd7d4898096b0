"""Run a NIR graph on Lava (floating or fixed point) and return a Trace."""

from __future__ import annotations

import time
from typing import Callable

import nir
import numpy as np

from spikesmith.compile.graph import FlatGraph, flatten
from spikesmith.compile.plan import Plan, build_plan
from spikesmith.compile.quantise import QuantConfig, QuantisedPlan
from spikesmith.errors import GraphError
from spikesmith.targets.lava.network import LavaNetwork
from spikesmith.targets.trace import Trace


def simulate(
    graph: nir.NIRGraph | FlatGraph,
    x: np.ndarray,
    *,
    dt: float,
    fixed_point: bool = False,
    record: bool = True,
    record_state: bool = False,
    quant: QuantConfig | None = None,
    plan: Plan | QuantisedPlan | None = None,
    reset=None,
    batch_size: int | None = None,
    on_progress: Callable[[str, dict], None] | None = None,
) -> Trace:
    """Simulate ``graph`` on Lava for input ``x`` (T, B, *input_shape); returns the :class:`Trace`.

    ``fixed_point`` runs Lava's bit-accurate models on the plan quantised for ``x`` exactly as the
    fixed-point engine quantises it (:func:`spikesmith.targets.loihi.prepare`, ``quant``), unless
    ``plan`` is already a QuantisedPlan; ``trace.meta["quantisation"]`` holds the per-layer report.
    ``plan``: a plan already built for this graph, so callers that run several targets build it once.
    ``batch_size``: samples simulated side by side as copies of the network (the rest run in
    groups back to back). ``record_state`` adds every population's u and v to ``trace.states``.
    ``reset``: the neurons' ResetRule (default: the graph's stored rule, else NIR's).
    """
    from spikesmith.targets.loihi import _check_input, prepare, to_trace

    t0 = time.perf_counter()
    flat = graph if isinstance(graph, FlatGraph) else flatten(graph)
    x = np.asarray(x, dtype=np.float64)
    _check_input(flat, x)
    if plan is None:
        plan = build_plan(flat, dt, reset)
    if isinstance(plan, QuantisedPlan) and not fixed_point:
        raise GraphError("a floating-point Lava run needs a float plan, not a QuantisedPlan")
    if fixed_point and not isinstance(plan, QuantisedPlan):
        plan = prepare(plan, x, quant, batch_size=batch_size)
    net = LavaNetwork(plan, record=record, record_state=record_state)
    outputs, states, info = net.run(x, batch_size=batch_size, on_progress=on_progress)
    float_plan = plan.plan if fixed_point else plan
    meta = {**info}
    if fixed_point:
        meta["quantisation"] = [r.to_dict() for r in plan.report]
    total = time.perf_counter() - t0
    return to_trace("lava-fixed" if fixed_point else "lava-float", flat, float_plan, x,
                    {"activity": outputs, "states": states}, dt=dt, record=record, seconds=info["run_seconds"],
                    compile_seconds=total - info["run_seconds"], meta=meta)
