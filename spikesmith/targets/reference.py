"""The Norse reference simulator: runs any supported NIR graph with Norse's neuron steps.

Discretisation is documented in :mod:`spikesmith.compile.units`. Nodes are evaluated in
topological order at every time step; a back edge (cycle) delivers its source's output
of the previous step (before the first step: neurons output zero, stateless nodes their
response to that, i.e. their biases). Arithmetic is float64 by default so that targets can be compared
spike for spike.
"""

from __future__ import annotations

import time
from typing import Callable

import nir
import numpy as np
import torch
from norse.torch.functional.iaf import IAFFeedForwardState, IAFParameters, iaf_feed_forward_step
from norse.torch.functional.leaky_integrator_box import LIBoxParameters, LIBoxState, li_box_feed_forward_step
from norse.torch.functional.lif_box import LIFBoxFeedForwardState, LIFBoxParameters, lif_box_feed_forward_step

from spikesmith.compile.graph import FlatGraph, ResetRule, flatten, graph_reset
from spikesmith.compile.units import check_time_constants, effective_reset
from spikesmith.errors import GraphError, UnsupportedNodeError
from spikesmith.compile.ops import LINEAR_OPS, as_tensor, delay_steps
from spikesmith.targets.trace import Trace

State = dict


def _p(node, field: str, shape, dtype, device, default=None) -> torch.Tensor:
    value = getattr(node, field, None)
    if value is None:
        value = default
    return as_tensor(np.broadcast_to(np.asarray(value, dtype=np.float64), shape), dtype=dtype, device=device)


class _Neuron:
    """One neuron population: parameters as tensors and a step function."""

    def __init__(self, node: nir.NIRNode, name: str, shape, dtype, device, reset: ResetRule = ResetRule(),
                 dt: float = 1e-3):
        self.node, self.name = node, name
        check_time_constants(node, name, dt)
        kw = dict(shape=shape, dtype=dtype, device=device)
        self.r = _p(node, "r", default=1.0, **kw)
        t = type(node)
        self.subtract, self.delayed = effective_reset(t.__name__, reset)
        self.own_reset = (self.subtract or self.delayed) and t in (nir.LIF, nir.CubaLIF, nir.IF)
        if self.own_reset:
            # Norse integrates (threshold at infinity: no spike, no reset); the reset rule is applied here
            self.v_th = _p(node, "v_threshold", **kw)
            self.v_reset = _p(node, "v_reset", default=0.0, **kw)
            if self.subtract and bool(torch.any(self.v_reset != 0)):
                raise GraphError(f"node '{name}': reset by subtraction needs v_reset = 0 (it subtracts v_threshold)")
        v_th_norse = (lambda th: torch.full_like(th, float("inf"))) if self.own_reset else (lambda th: th)
        if t in (nir.LIF, nir.CubaLIF):
            tau = _p(node, "tau" if t is nir.LIF else "tau_mem", **kw)
            self.mem = LIFBoxParameters(
                tau_mem_inv=1.0 / tau, v_leak=_p(node, "v_leak", **kw),
                v_th=v_th_norse(_p(node, "v_threshold", **kw)), v_reset=_p(node, "v_reset", default=0.0, **kw),
            )
        elif t in (nir.LI, nir.CubaLI):
            tau = _p(node, "tau" if t is nir.LI else "tau_mem", **kw)
            self.mem = LIBoxParameters(tau_mem_inv=1.0 / tau, v_leak=_p(node, "v_leak", **kw))
        elif t is nir.IF:
            self.mem = IAFParameters(v_th=v_th_norse(_p(node, "v_threshold", **kw)),
                                     v_reset=_p(node, "v_reset", default=0.0, **kw))
        elif t is nir.Threshold:
            self.threshold = _p(node, "threshold", **kw)
        if t in (nir.CubaLIF, nir.CubaLI):
            self.syn = LIBoxParameters(tau_mem_inv=1.0 / _p(node, "tau_syn", **kw), v_leak=torch.zeros(shape, dtype=dtype, device=device))
            self.w_in = _p(node, "w_in", default=1.0, **kw)

    def step(self, x: torch.Tensor, state: State, dt: float) -> torch.Tensor:
        t = type(self.node)
        if t in (nir.CubaLIF, nir.CubaLI):
            i = state.get("i", torch.zeros_like(x))
            i, _ = li_box_feed_forward_step(self.w_in * x, LIBoxState(v=i), self.syn, dt)
            state["i"] = i
            x = i
        if t is nir.Threshold:
            return (x > self.threshold).to(x.dtype)
        v = state.get("v", torch.zeros_like(x))
        if t in (nir.LIF, nir.CubaLIF):
            z, s = lif_box_feed_forward_step(self.r * x, LIFBoxFeedForwardState(v=v), self.mem, dt)
        elif t is nir.IF:
            z, s = iaf_feed_forward_step(self.r * x, IAFFeedForwardState(v=v), self.mem, dt)
        if t in (nir.LIF, nir.CubaLIF, nir.IF):
            if self.own_reset:
                z = self._reset(s.v, state)
            else:
                state["v"] = s.v
            return z
        if t in (nir.LI, nir.CubaLI):
            v, _ = li_box_feed_forward_step(self.r * x, LIBoxState(v=v), self.mem, dt)
            state["v"] = v
            return v
        if t is nir.I:
            state["v"] = v + self.r * x
            return state["v"]
        raise UnsupportedNodeError(f"node '{self.name}': {t.__name__} has no neuron model")

    def _reset(self, v: torch.Tensor, state: State) -> torch.Tensor:
        """Threshold and reset the integrated membrane ``v`` under this neuron's reset rule."""
        if self.delayed:  # the reset decided by the previous step's spike acts now
            pending = state.get("pending")
            if pending is not None:
                v = v - pending * self.v_th if self.subtract else torch.where(pending > 0, self.v_reset, v)
        z = (v > self.v_th).to(v.dtype)
        if self.delayed:
            state["pending"] = z
        else:
            v = v - z * self.v_th if self.subtract else torch.where(z > 0, self.v_reset, v)
        state["v"] = v
        return z


NEURON_NODES = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI, nir.I, nir.Threshold)


def supported_types() -> list[str]:
    """Names of the NIR node types the reference simulator runs."""
    names = {t.__name__ for t in LINEAR_OPS} | {t.__name__ for t in NEURON_NODES} | {"Delay", "NIRGraph"}
    return sorted(names)


def check_supported(flat: FlatGraph) -> None:
    """Raise :class:`UnsupportedNodeError` naming the first node the simulator cannot run."""
    for name, node in flat.nodes.items():
        if type(node) not in LINEAR_OPS and type(node) not in NEURON_NODES and type(node) is not nir.Delay:
            raise UnsupportedNodeError(
                f"node '{name}': type {type(node).__name__} is not supported (supported: {', '.join(supported_types())})"
            )


def simulate(
    graph: nir.NIRGraph | FlatGraph,
    x: np.ndarray | torch.Tensor,
    *,
    dt: float,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    record: bool = True,
    on_step: Callable[[int, int], None] | None = None,
    reset: ResetRule | None = None,
) -> Trace:
    """Simulate ``graph`` on input ``x`` shaped (T, B, *input_shape); returns the :class:`Trace`.

    ``reset``: the neurons' reset rule; by default the one stored in the graph's metadata, else NIR's.
    """
    flat = graph if isinstance(graph, FlatGraph) else flatten(graph)
    reset = reset or graph_reset(flat) or ResetRule()
    check_supported(flat)
    if len(flat.inputs) != 1:
        raise GraphError(f"graph has {len(flat.inputs)} Input nodes {flat.inputs}; spikesmith runs graphs with one input")
    x_np = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    in_shape = flat.output_shape(flat.inputs[0])
    if x_np.ndim != 2 + len(in_shape) or tuple(x_np.shape[2:]) != in_shape:
        raise GraphError(f"input has shape {x_np.shape}; the graph expects (T, B, {', '.join(map(str, in_shape))})")
    t0 = time.perf_counter()
    xt = torch.as_tensor(x_np, dtype=dtype, device=device)
    steps, batch = xt.shape[:2]
    neurons: dict[str, _Neuron] = {}
    delays: dict[str, np.ndarray] = {}  # per element, in steps
    for name, node in flat.nodes.items():
        if type(node) in NEURON_NODES:
            neurons[name] = _Neuron(node, name, flat.output_shape(name), dtype, device, reset, dt)
        elif type(node) is nir.Delay:
            delays[name] = delay_steps(node, name, dt, flat.output_shape(name))
    fwd = {n: flat.predecessors(n, back=False) for n in flat.nodes}
    back = {n: flat.predecessors(n, back=True) for n in flat.nodes}
    states: dict[str, State] = {n: {} for n in neurons}
    buffers: dict[str, list[torch.Tensor]] = {n: [] for n in delays}
    rec: dict[str, list[torch.Tensor]] = {n: [] for n in flat.nodes}

    def zeros(name: str) -> torch.Tensor:
        return torch.zeros(batch, *flat.output_shape(name), dtype=dtype, device=device)

    # Before the first step every neuron outputs zero; stateless nodes output their response
    # to that (their biases). This is what a back edge delivers at t = 0.
    prev: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, node in flat.nodes.items():
            if name in neurons or name in delays or name in flat.inputs:
                prev[name] = zeros(name)
            else:
                parts = [prev[p] for p in fwd[name]] + [zeros(p) for p in back[name]]
                h = parts[0]
                for q in parts[1:]:
                    h = h + q
                prev[name] = LINEAR_OPS[type(node)](node, h, name)
    with torch.no_grad():
        for t in range(steps):
            cur: dict[str, torch.Tensor] = {}
            for name, node in flat.nodes.items():
                if name in flat.inputs:
                    cur[name] = xt[t]
                    rec[name].append(xt[t])
                    continue
                parts = [cur[p] for p in fwd[name]]
                parts += [prev[p] for p in back[name]]
                if not parts:
                    raise GraphError(f"node '{name}' has no input")
                h = parts[0]
                for p in parts[1:]:
                    if p.shape != h.shape:
                        raise GraphError(f"node '{name}': inputs of shapes {tuple(h.shape[1:])} and {tuple(p.shape[1:])} cannot be summed")
                    h = h + p
                if name in neurons:
                    out = neurons[name].step(h, states[name], dt)
                elif name in delays:
                    buffers[name].append(h.reshape(batch, -1))
                    steps_d = delays[name]
                    kmax = int(steps_d.max(initial=0))
                    out = torch.zeros_like(buffers[name][-1])
                    for k in np.unique(steps_d):
                        if len(buffers[name]) > k:
                            cols = torch.as_tensor(steps_d == k, device=out.device)
                            out[:, cols] = buffers[name][-1 - int(k)][:, cols]
                    out = out.reshape(h.shape)
                    if len(buffers[name]) > kmax + 1:
                        buffers[name].pop(0)
                else:
                    out = LINEAR_OPS[type(node)](node, h, name)
                cur[name] = out
                if record or name in flat.outputs:
                    rec[name].append(out)
            prev = cur
            if on_step:
                on_step(t + 1, steps)
    seconds = time.perf_counter() - t0
    activity = {n: torch.stack(v).cpu().numpy() for n, v in rec.items() if v}
    out_name = flat.outputs[0]
    return Trace(target="norse", dt=dt, input=x_np, output=activity[out_name], activity=activity,
                 seconds=seconds, meta={"dtype": str(dtype).replace("torch.", ""), "reset": reset.describe()})
