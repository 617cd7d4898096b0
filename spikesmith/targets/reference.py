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
from spikesmith.compile import neurons
from spikesmith.compile.units import check_time_constants
from spikesmith.errors import GraphError, InputError, UnsupportedNodeError
from spikesmith.compile.ops import LINEAR_OPS, as_tensor, delay_steps
from spikesmith.targets.trace import Trace, concat

State = dict


def _p(node, field: str, shape, dtype, device, default=None) -> torch.Tensor:
    value = getattr(node, field, None)
    if value is None:
        value = default
    return as_tensor(np.broadcast_to(np.asarray(value, dtype=np.float64), shape), dtype=dtype, device=device)


class _Neuron:
    """One neuron population: parameters as tensors and a step function, built from its family."""

    def __init__(self, node: nir.NIRNode, name: str, shape, dtype, device, reset: ResetRule = ResetRule(),
                 dt: float = 1e-3):
        fam = neurons.family(node, name)
        self.family, self.name = fam, name
        check_time_constants(node, name, dt)
        kw = dict(shape=shape, dtype=dtype, device=device)
        self.r = _p(node, "r", default=1.0, **kw)
        self.subtract, self.delayed = fam.reset(reset)
        self.own_reset = self.subtract or self.delayed
        if self.own_reset:
            # Norse integrates (threshold at infinity: no spike, no reset); the reset rule is applied here
            self.v_th = _p(node, fam.threshold, **kw)
            self.v_reset = _p(node, "v_reset", default=0.0, **kw)
            if self.subtract and bool(torch.any(self.v_reset != 0)):
                raise GraphError(f"node '{name}': reset by subtraction needs v_reset = 0 (it subtracts v_threshold)")
        if fam.stateless:
            self.threshold = _p(node, fam.threshold, **kw)
        elif fam.spiking:
            v_th = _p(node, fam.threshold, **kw)
            v_th = torch.full_like(v_th, float("inf")) if self.own_reset else v_th
            v_reset = _p(node, "v_reset", default=0.0, **kw)
            if fam.membrane_tau:
                self.mem = LIFBoxParameters(tau_mem_inv=1.0 / _p(node, fam.membrane_tau, **kw),
                                            v_leak=_p(node, "v_leak", **kw), v_th=v_th, v_reset=v_reset)
            else:
                self.mem = IAFParameters(v_th=v_th, v_reset=v_reset)
        elif fam.membrane_tau:
            self.mem = LIBoxParameters(tau_mem_inv=1.0 / _p(node, fam.membrane_tau, **kw), v_leak=_p(node, "v_leak", **kw))
        if fam.current_tau:
            self.syn = LIBoxParameters(tau_mem_inv=1.0 / _p(node, fam.current_tau, **kw),
                                       v_leak=torch.zeros(shape, dtype=dtype, device=device))
            self.w_in = _p(node, "w_in", default=1.0, **kw)

    def step(self, x: torch.Tensor, state: State, dt: float) -> torch.Tensor:
        fam = self.family
        if fam.current_tau:
            i = state.get("i", torch.zeros_like(x))
            i, _ = li_box_feed_forward_step(self.w_in * x, LIBoxState(v=i), self.syn, dt)
            state["i"] = i
            x = i
        if fam.stateless:
            return (x > self.threshold).to(x.dtype)
        v = state.get("v", torch.zeros_like(x))
        if fam.spiking:
            if fam.membrane_tau:
                z, s = lif_box_feed_forward_step(self.r * x, LIFBoxFeedForwardState(v=v), self.mem, dt)
            else:
                z, s = iaf_feed_forward_step(self.r * x, IAFFeedForwardState(v=v), self.mem, dt)
            if self.own_reset:
                return self._reset(s.v, state)
            state["v"] = s.v
            return z
        if fam.membrane_tau:
            v, _ = li_box_feed_forward_step(self.r * x, LIBoxState(v=v), self.mem, dt)
        else:  # the non-spiking integrator
            v = v + self.r * x
        state["v"] = v
        return v

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


def supported_types() -> list[str]:
    """Names of the NIR node types the reference simulator runs."""
    names = {t.__name__ for t in LINEAR_OPS} | {t.__name__ for t in neurons.NEURON_TYPES} | {"Delay", "NIRGraph"}
    return sorted(names)


def check_supported(flat: FlatGraph) -> None:
    """Raise :class:`UnsupportedNodeError` naming the first node the simulator cannot run."""
    for name, node in flat.nodes.items():
        if type(node) not in LINEAR_OPS and not neurons.is_neuron(node) and type(node) is not nir.Delay:
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
    batch_size: int | None = None,
) -> Trace:
    """Simulate ``graph`` on input ``x`` shaped (T, B, *input_shape); returns the :class:`Trace`.

    ``reset``: the neurons' reset rule; by default the one stored in the graph's metadata, else NIR's.
    ``batch_size``: samples simulated at once (the batch runs in chunks of that many).
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
    if batch_size is not None:
        if int(batch_size) < 1:
            raise InputError(f"--batch-size must be a positive number of samples, got {batch_size}")
        if x_np.shape[1] > batch_size:
            return concat([simulate(flat, x_np[:, s:s + batch_size], dt=dt, dtype=dtype, device=device, record=record,
                                    on_step=on_step, reset=reset) for s in range(0, x_np.shape[1], batch_size)])
    t0 = time.perf_counter()
    xt = torch.as_tensor(x_np, dtype=dtype, device=device)
    steps, batch = xt.shape[:2]
    cells: dict[str, _Neuron] = {}
    delays: dict[str, np.ndarray] = {}  # per element, in steps
    for name, node in flat.nodes.items():
        if neurons.is_neuron(node):
            cells[name] = _Neuron(node, name, flat.output_shape(name), dtype, device, reset, dt)
        elif type(node) is nir.Delay:
            delays[name] = delay_steps(node, name, dt, flat.output_shape(name))
    fwd = {n: flat.predecessors(n, back=False) for n in flat.nodes}
    back = {n: flat.predecessors(n, back=True) for n in flat.nodes}
    states: dict[str, State] = {n: {} for n in cells}
    buffers: dict[str, list[torch.Tensor]] = {n: [] for n in delays}
    rec: dict[str, list[torch.Tensor]] = {n: [] for n in flat.nodes}

    def zeros(name: str) -> torch.Tensor:
        return torch.zeros(batch, *flat.output_shape(name), dtype=dtype, device=device)

    # Before the first step every neuron outputs zero; stateless nodes output their response
    # to that (their biases). This is what a back edge delivers at t = 0.
    prev: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, node in flat.nodes.items():
            if name in cells or name in delays or name in flat.inputs:
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
                if name in cells:
                    out = cells[name].step(h, states[name], dt)
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
