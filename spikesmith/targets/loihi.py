"""The fixed-point engine (target ``loihi``): a quantised plan run in batched torch, CPU or CUDA.

It executes a :class:`~spikesmith.compile.quantise.QuantisedPlan` with the integer semantics of
Lava's bit-accurate LIF and Dense models (see :mod:`spikesmith.compile.quantise`): 12-bit decays
with rounding toward zero, the 32-bit synaptic sums and the 6-bit shift of the input, the one
24-bit wrap of ``u`` (counted per population), the saturation of ``v``, the threshold shift,
weight exponents, message shifts of non-spiking populations, recurrence (one step) and synaptic
delays. It is "Lava fixed_pt compatible": equal bit for bit, spikes and u/v, to
``spikesmith.targets.lava`` in fixed point (tested), not a claim about Loihi silicon.

Unlike Lava it has no per-connection latency: every population is computed at the reference's
own time step (the plan's ``lag_delay`` only exists for Lava). Convolutions stay convolutions;
synaptic sums are computed in floating point where every partial sum is an integer below 2**24
(float32) or 2**53 (float64), so they are exact, and in int64 otherwise (CPU).

The same engine runs a float :class:`~spikesmith.compile.plan.Plan` with Lava's floating-point
LIF arithmetic; quantisation uses that run's state peaks to choose each population's scale
(:func:`prepare`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Mapping

import nir
import numpy as np
import torch
import torch.nn.functional as F

from spikesmith.compile import units
from spikesmith.compile.graph import FlatGraph, ResetRule, flatten
from spikesmith.compile.ops import fill_stateless
from spikesmith.compile.plan import BIAS_SOURCE, Connection, Plan, build_plan
from spikesmith.compile.quantise import QuantConfig, QuantisedPlan, QuantisedSynapse, quantise
from spikesmith.errors import GraphError, InputError
from spikesmith.targets.trace import Trace

Progress = Callable[[str, dict], None]
UV = 1 << (units.STATE_BITS - 1)  # 2**23
DEFAULT_BATCH = 256


def _wrap32(x: torch.Tensor) -> torch.Tensor:
    """Two's-complement 32-bit wrap of int64 values (what Lava's int32 ports and arithmetic do)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


@dataclass(eq=False)
class _Synapse:
    conn: Connection
    weight: torch.Tensor  # transposed for dense (src, dst); the kernel for conv
    q: QuantisedSynapse | None
    dtype: torch.dtype  # of the sum: float32/float64 (exact) or int64
    bound: float = 0.0  # largest |output| (fixed point, after the exponent shift, before any wrap)
    wrap_sum: bool = False  # a graded sum can leave 32 bits before the shift
    wrap_out: bool = False  # the shifted sum can leave 32 bits (the int32 port wraps it)

    pool: int = 1  # the kernel is constant on pool x pool blocks: sum-pool first, then a smaller conv
    small: torch.Tensor | None = None

    def apply(self, msg: torch.Tensor) -> torch.Tensor:
        x = msg.to(self.dtype)
        g = self.conn.conv
        if g is None:
            return x @ self.weight
        if self.pool == 1:
            return g.apply_flat(x, self.weight)
        k = self.pool
        img = F.avg_pool2d(x.reshape(x.shape[0], *g.in_shape), k) * (k * k)  # sums of integers: exact
        pad = (g.padding[0] // k, g.padding[1] // k)
        return F.conv2d(img, self.small, padding=pad, groups=g.groups).reshape(x.shape[0], -1)


def _block(weight: np.ndarray, g) -> int:
    """The block size k when a conv of stride k is sum-pooling by k then a stride-1 conv (its kernel
    constant on k x k blocks, padding and input size multiples of k), else 1."""
    k = g.stride[0]
    if k < 2 or g.stride != (k, k) or g.dilation != (1, 1) or weight.shape[2] % k or weight.shape[3] % k or \
            g.padding[0] % k or g.padding[1] % k or g.in_shape[1] % k or g.in_shape[2] % k:
        return 1
    co, ci, kh, kw = weight.shape
    blocks = weight.reshape(co, ci, kh // k, k, kw // k, k)
    return k if np.array_equal(blocks, np.broadcast_to(blocks[:, :, :, :1, :, :1], blocks.shape)) else 1


class Engine:
    """Runs a QuantisedPlan (integer, Lava's bit-accurate models) or a Plan (float, Lava's float models)."""

    def __init__(self, plan: Plan | QuantisedPlan, *, device: str | torch.device = "cpu"):
        self.fixed = isinstance(plan, QuantisedPlan)
        self.qplan = plan if self.fixed else None
        self.plan: Plan = plan.plan if self.fixed else plan
        self.device = torch.device(device)
        q = {id(c): s for c, s in self.qplan.pairs()} if self.fixed else {}
        self._q = q
        self.pops = self.plan.neurons
        dev = self.device
        self.params: dict[str, dict[str, torch.Tensor | int | bool]] = {}
        for pop in self.pops:
            if self.fixed:
                qp = self.qplan.populations[pop.name]
                du_fac = units.DECAY_UNITY - (qp.du + 1)
                dv_fac = units.DECAY_UNITY - qp.dv
                self.params[pop.name] = dict(
                    du=torch.as_tensor(du_fac, dtype=torch.int64, device=dev), dv=torch.as_tensor(dv_fac, dtype=torch.int64, device=dev),
                    u_kept=bool(np.any(du_fac != 0)), v_decays=bool(np.any(dv_fac != units.DECAY_UNITY)),
                    bias=torch.as_tensor(qp.bias, dtype=torch.int64, device=dev), thr=qp.threshold, shift=qp.msg_shift,
                    biased=bool(np.any(qp.bias != 0)))
            else:
                self.params[pop.name] = dict(
                    du=torch.as_tensor(1.0 - pop.du, device=dev), dv=torch.as_tensor(1.0 - pop.dv, device=dev),
                    bias=torch.as_tensor(pop.bias, device=dev), thr=1.0)
        self.incoming: dict[str, list[Connection]] = {p.name: self.plan.incoming(p.name) for p in self.pops}

    # ------------------------------------------------------------------ set-up per run

    def _message_bound(self, src: str, x_max: float) -> float:
        if src == BIAS_SOURCE:
            return 1.0
        if src == self.plan.input:
            return x_max
        pop = self.plan.populations[src]
        if pop.spiking:
            return 1.0
        return float((UV - 1) >> self.qplan.populations[src].msg_shift)

    def _synapses(self, x_max: float) -> dict[int, _Synapse]:
        """Weights as tensors, in the cheapest dtype in which every synaptic sum is exact."""
        out = {}
        conns = list(self.plan.connections) + list(self.plan.bias_connections) + list(self.plan.readout_connections)
        for c in conns:
            qs = self._q.get(id(c))
            if qs is None:
                dtype, w = torch.float64, c.weight
            else:
                w = qs.weight
                a = np.abs(w).reshape(w.shape[0], -1)
                bound = float(a.sum(axis=1).max(initial=0.0)) * self._message_bound(c.src, x_max)
                dtype = torch.float32 if bound < 2**24 else torch.float64 if bound < 2**53 else torch.int64
                if dtype is torch.int64 and self.device.type != "cpu":
                    raise GraphError(f"connection '{c.src}' -> '{c.dst}': synaptic sums up to {bound:.3g} are not exact "
                                     "in floating point and need the CPU")
            t = torch.as_tensor(np.asarray(w), dtype=dtype, device=self.device)
            syn = _Synapse(conn=c, weight=t.T.contiguous() if c.conv is None else t, q=qs, dtype=dtype)
            if c.conv is not None and dtype is not torch.int64:
                syn.pool = k = _block(np.asarray(w), c.conv)
                if k > 1:
                    syn.small = t[:, :, ::k, ::k].contiguous()
            if qs is not None:
                syn.wrap_sum = c.graded and bound >= 2**31
                syn.bound = min(bound, 2.0**31) * 2.0**qs.exp
                syn.wrap_out = syn.bound >= 2**31
            out[id(c)] = syn
        return out

    def _fast(self, syn: dict[int, _Synapse]) -> dict[str, bool]:
        """Per population: whether its synaptic input A (<< 6) stays within 2**24, so that no 32-bit wrap
        can happen (then |u| <= 2**23 + A and |v| < 2**25 by induction) and the wraps can be skipped."""
        out = {}
        for pop in self.pops:
            total = sum(min(syn[id(c)].bound, 2.0**31) for c in self.incoming[pop.name])
            out[pop.name] = not any(syn[id(c)].wrap_out for c in self.incoming[pop.name]) and \
                total * (1 << units.STATE_SHIFT) <= 2**24
        return out

    # ------------------------------------------------------------------ the time loop

    def run(self, x: np.ndarray, *, record: bool = True, record_state: bool = False,
            batch_size: int | None = None, on_progress: Progress | None = None) -> dict:
        """Run ``x`` (T, B, *input_shape) in chunks of ``batch_size`` samples.

        Returns {"activity": {population or output: (T, B, *shape)}, "states": {population:
        {"u", "v": (T, B, N)}} (integers in fixed point, thresholds in float), "wraps",
        "saturations": {population: count}, "peaks": {population: (max|u|, max|v|)}}.
        ``record``: every population (else only those the graph outputs read).
        """
        steps, batch = x.shape[:2]
        batch_size = _batch_size(batch_size, batch)
        x = np.asarray(x).reshape(steps, batch, -1)
        scale = self.qplan.input_scale if self.fixed else 1.0
        syn = self._synapses(float(np.abs(x).max(initial=0.0)) * scale + 0.5)
        wanted = [p.name for p in self.pops] if record else [r.population for r in self.plan.readouts if r.population]
        chunks: list[dict] = []
        totals = {k: {p.name: 0 for p in self.pops} for k in ("wraps", "saturations")}
        peaks = {p.name: (0.0, 0.0) for p in self.pops}
        for start in range(0, batch, batch_size):
            xb = torch.as_tensor(np.ascontiguousarray(x[:, start:start + batch_size]), device=self.device)
            xb = torch.round(xb.to(torch.float64) * scale) if self.fixed else xb.to(torch.float64)
            part = self._run_chunk(xb, syn, set(wanted), record_state, self._fast(syn) if self.fixed else {})
            chunks.append(part)
            for k in ("wraps", "saturations"):
                for name, n in part[k].items():
                    totals[k][name] += n
            for name, (pu, pv) in part["peaks"].items():
                peaks[name] = (max(peaks[name][0], pu), max(peaks[name][1], pv))
            if on_progress is not None:
                on_progress("loihi" if self.fixed else "engine-float", {"done": min(start + batch_size, batch), "total": batch})
        cat = {key: np.concatenate([c["activity"][key] for c in chunks], axis=1) for key in chunks[0]["activity"]}
        states = {name: {k: np.concatenate([c["states"][name][k] for c in chunks], axis=1) for k in ("u", "v")}
                  for name in chunks[0]["states"]}
        return {"activity": cat, "states": states, "peaks": peaks, **totals}

    def _run_chunk(self, x: torch.Tensor, syn: dict[int, _Synapse], wanted: set[str], record_state: bool,
                   fast: Mapping[str, bool]) -> dict:
        steps, batch = x.shape[:2]
        dev, fixed, plan = self.device, self.fixed, self.plan
        idt = torch.int64 if fixed else torch.float64
        state = {p.name: {"u": torch.zeros(batch, p.size, dtype=idt, device=dev),
                          "v": torch.zeros(batch, p.size, dtype=idt, device=dev),
                          "pending": torch.zeros(batch, p.size, dtype=torch.bool, device=dev)} for p in self.pops}
        reach = max([c.history for c in plan.connections + plan.readout_connections], default=0)
        hist: dict[str, list[torch.Tensor]] = {n: [] for n in plan.populations}
        rec = {n: [] for n in wanted}
        srec = {n: {"u": [], "v": []} for n in (state if record_state else ())}
        reads = {r.output: [] for r in plan.readouts if r.connections}
        wraps = {p.name: 0 for p in self.pops}
        sats = {p.name: 0 for p in self.pops}
        peak_u = {p.name: 0.0 for p in self.pops}
        peak_v = {p.name: 0.0 for p in self.pops}
        ones = torch.ones(batch, 1, dtype=idt, device=dev)

        def message(src: str, back: int, cur: dict) -> torch.Tensor:
            if src == BIAS_SOURCE:
                return ones
            if back == 0:
                return cur[src]
            h = hist[src]
            if len(h) >= back:
                return h[-back]
            return torch.zeros(batch, plan.populations[src].size, dtype=cur[plan.input].dtype, device=dev)

        def drive(conns: list[Connection], cur: dict) -> torch.Tensor | None:
            total = None
            for c in conns:
                s = syn[id(c)]
                acc = s.apply(message(c.src, c.history, cur))
                if fixed:
                    acc = acc.to(torch.int64)  # exact: an integer in floating point
                    if s.wrap_sum:  # Lava's Dense sums graded messages in int32 before the shift
                        acc = _wrap32(acc)
                    if s.q.exp:
                        acc = s.q.shift(acc)
                    if s.wrap_out:  # sent on an int32 port
                        acc = _wrap32(acc)
                total = acc if total is None else total + acc
            return total

        def extent(t: torch.Tensor) -> tuple[float, float]:
            lo, hi = torch.aminmax(t)
            return float(lo), float(hi)

        for t in range(steps):
            cur: dict[str, torch.Tensor] = {plan.input: x[t] if not fixed else x[t].to(torch.int64)}
            for pop in self.pops:
                name, p, st = pop.name, self.params[pop.name], state[pop.name]
                a = drive(self.incoming[name], cur)
                if a is None:
                    a = torch.zeros(batch, pop.size, dtype=idt, device=dev)
                if fixed:
                    quick = fast[name]
                    act = a << units.STATE_SHIFT if quick else _wrap32(_wrap32(a) << units.STATE_SHIFT)
                    u = act + torch.div(st["u"] * p["du"], units.DECAY_UNITY, rounding_mode="trunc") \
                        if p["u_kept"] else act
                    if not quick:
                        u = _wrap32(u)
                    lo, hi = extent(u)
                    if hi > UV or lo <= -UV:  # Lava wraps once by 2**24
                        over, under = u > UV, u <= -UV
                        wraps[name] += int(over.sum()) + int(under.sum())
                        u = torch.where(over, u - 2 * UV, torch.where(under, u + 2 * UV, u))
                        lo, hi = extent(u)
                    peak_u[name] = max(peak_u[name], -lo, hi)
                    v = torch.div(st["v"] * p["dv"], units.DECAY_UNITY, rounding_mode="trunc") if p["v_decays"] \
                        else st["v"]
                    v = v + u + p["bias"] if p["biased"] else v + u
                    if not quick:
                        v = _wrap32(v)
                    lo, hi = extent(v)
                    if hi > UV - 1 or lo < -(UV - 1):  # v saturates
                        sats[name] += int((v.abs() > UV - 1).sum())
                        v = v.clamp(-(UV - 1), UV - 1)
                else:
                    u = st["u"] * p["du"] + a
                    v = st["v"] * p["dv"] + u + p["bias"]
                    lo, hi = extent(u)
                    peak_u[name] = max(peak_u[name], -lo, hi)
                    lo, hi = extent(v)
                peak_v[name] = max(peak_v[name], -lo, hi)
                if pop.spiking:
                    thr = p["thr"]
                    if pop.delayed:
                        v = torch.where(st["pending"], v - thr if pop.subtract else torch.zeros_like(v), v)
                    s = v > thr
                    if pop.delayed:
                        st["pending"] = s
                    else:
                        v = torch.where(s, v - thr, v) if pop.subtract else v.masked_fill(s, 0)
                    cur[name] = s if fixed else s.to(idt)  # a synapse turns spikes into its own dtype
                    out = s
                else:
                    cur[name] = v >> p["shift"] if fixed else v
                    out = v
                st["u"], st["v"] = u, v
                if name in rec:
                    rec[name].append(out)
                if name in srec:
                    srec[name]["u"].append(u)
                    srec[name]["v"].append(v)
            for r in plan.readouts:
                if r.connections:
                    reads[r.output].append(drive(list(r.connections), cur))
            if reach:
                for n, h in hist.items():
                    if n in cur:
                        h.append(cur[n])
                        if len(h) > reach:
                            h.pop(0)
        activity = {}
        for name, series in rec.items():
            pop = plan.populations[name]
            data = torch.stack(series).cpu().numpy()  # (T, B, N)
            if pop.spiking:
                data = data.astype(np.float64)
            elif fixed:
                data = self.qplan.volts(name, data)
            else:
                data = data * pop.scale + pop.offset
            activity[name] = data.reshape(steps, batch, *pop.shape)
        for r in plan.readouts:
            if r.connections:
                a = torch.stack(reads[r.output]).cpu().numpy()
                vals = self.qplan.readout_values(r, a) if fixed else a + r.bias
                activity[r.output] = vals.reshape(steps, batch, *r.shape)
        states = {n: {k: torch.stack(v).cpu().numpy() for k, v in d.items()} for n, d in srec.items()}
        peaks = {n: (peak_u[n], peak_v[n]) for n in peak_u}
        return {"activity": activity, "states": states, "wraps": wraps, "saturations": sats, "peaks": peaks}


def _batch_size(batch_size: int | None, batch: int) -> int:
    if batch_size is None:
        return max(1, min(batch, DEFAULT_BATCH))
    if int(batch_size) < 1:
        raise InputError(f"--batch-size must be a positive number of samples, got {batch_size}")
    return int(batch_size)


def calibrate(plan: Plan, x: np.ndarray, *, batch_size: int | None = None, device="cpu",
              on_progress: Progress | None = None) -> dict[str, float]:
    """Per population, the largest |u| or |v| (in thresholds) of a floating-point run of ``x``."""
    res = Engine(plan, device=device).run(x, record=False, batch_size=batch_size, on_progress=on_progress)
    return {n: max(pu, pv) for n, (pu, pv) in res["peaks"].items()}


def prepare(plan: Plan, x: np.ndarray, cfg: QuantConfig | None = None, *, batch_size: int | None = None,
            device="cpu", on_progress: Progress | None = None) -> QuantisedPlan:
    """Quantise ``plan`` for running ``x`` (T, B, ...): the state scales from a float run of ``x``.

    Both fixed-point targets (this engine and Lava's bit-accurate models) use it, so the same
    input quantises the same way on both.
    """
    x = np.asarray(x, dtype=np.float64)
    integer = bool(np.all(x == np.round(x)) and np.abs(x).max(initial=0) < 2**15)
    peaks = calibrate(plan, x, batch_size=batch_size, device=device, on_progress=on_progress)
    return quantise(plan, cfg or QuantConfig(), peaks=peaks, integer_input=integer)


def simulate(
    graph: nir.NIRGraph | FlatGraph,
    x: np.ndarray,
    *,
    dt: float,
    reset: ResetRule | None = None,
    quant: QuantConfig | None = None,
    plan: Plan | QuantisedPlan | None = None,
    record: bool = True,
    record_state: bool = False,
    batch_size: int | None = None,
    device: str | torch.device = "cpu",
    on_progress: Progress | None = None,
) -> Trace:
    """Run ``graph`` on the fixed-point engine for input ``x`` (T, B, *input_shape); returns the Trace.

    ``plan``: a QuantisedPlan to run as it is, or a Plan to quantise for ``x`` (:func:`prepare`,
    ``quant``). ``record_state`` adds every population's integer u and v to ``trace.states``.
    ``trace.meta`` holds the quantisation report, u wraps and v saturations per population.
    """
    t0 = time.perf_counter()
    flat = graph if isinstance(graph, FlatGraph) else flatten(graph)
    x = np.asarray(x, dtype=np.float64)
    _check_input(flat, x)
    _batch_size(batch_size, x.shape[1])
    if plan is None:
        plan = build_plan(flat, dt, reset)
    qplan = plan if isinstance(plan, QuantisedPlan) else prepare(plan, x, quant, batch_size=batch_size, device=device)
    t1 = time.perf_counter()
    res = Engine(qplan, device=device).run(x, record=record, record_state=record_state, batch_size=batch_size,
                                           on_progress=on_progress)
    seconds = time.perf_counter() - t1
    qplan = qplan.with_headroom(res["peaks"])
    return to_trace("loihi", flat, qplan.plan, x, res, dt=dt, record=record, seconds=seconds,
                    compile_seconds=t1 - t0, meta={"quantisation": [r.to_dict() for r in qplan.report],
                                                   "wraps": res["wraps"], "saturations": res["saturations"],
                                                   "device": str(device)})


def _check_input(flat: FlatGraph, x: np.ndarray) -> None:
    in_shape = flat.output_shape(flat.inputs[0])
    if x.ndim != 2 + len(in_shape) or tuple(x.shape[2:]) != in_shape:
        raise GraphError(f"input has shape {x.shape}; the graph expects (T, B, {', '.join(map(str, in_shape))})")


def to_trace(target: str, flat: FlatGraph, plan: Plan, x: np.ndarray, res: Mapping, *, dt: float, record: bool,
             seconds: float, compile_seconds: float, meta: dict) -> Trace:
    """The Trace of a run whose per-population (and readout) outputs are ``res["activity"]``."""
    activity: dict[str, np.ndarray] = {flat.inputs[0]: x}
    activity.update(res["activity"])
    if record:
        activity = fill_stateless(flat, activity, dt)
    out_name = flat.outputs[0]
    output = activity[out_name] if out_name in activity else activity[
        next(r.population for r in plan.readouts if r.output == out_name)]
    return Trace(target=target, dt=dt, input=x, output=output, activity=activity, states=res.get("states", {}),
                 seconds=seconds, compile_seconds=compile_seconds,
                 meta={"lags": {n: p.lag for n, p in plan.populations.items()}, "reset": plan.reset.describe(), **meta})


def run_quantised(qplan: QuantisedPlan, x: np.ndarray, *, target: str = "loihi", batch_size: int | None = None,
                  device: str | torch.device = "cpu", on_progress: Progress | None = None) -> Trace:
    """Run a QuantisedPlan on its own (no NIR graph: e.g. a deploy bundle) for ``x`` (T, B, *input_shape).

    ``target``: 'loihi' (this engine) or 'lava' (Lava's bit-accurate models). The trace holds the
    input, the output and the populations the readouts read.
    """
    plan = qplan.plan
    x = np.asarray(x, dtype=np.float64)
    in_shape = plan.populations[plan.input].shape
    if x.ndim != 2 + len(in_shape) or tuple(x.shape[2:]) != tuple(in_shape):
        raise InputError(f"input has shape {x.shape}; the bundle expects (T, B, {', '.join(map(str, in_shape))})")
    _batch_size(batch_size, x.shape[1])
    t0 = time.perf_counter()
    if target == "loihi":
        res = Engine(qplan, device=device).run(x, record=False, batch_size=batch_size, on_progress=on_progress)
        seconds, meta, name = time.perf_counter() - t0, {"wraps": res["wraps"], "saturations": res["saturations"]}, "loihi"
    elif target == "lava":
        from spikesmith.targets.lava.network import LavaNetwork

        outputs, _, info = LavaNetwork(qplan, record=False).run(x, batch_size=batch_size, on_progress=on_progress)
        res, seconds, meta, name = {"activity": outputs}, info["run_seconds"], dict(info), "lava-fixed"
    else:
        raise InputError(f"a deploy bundle runs on the fixed-point targets 'loihi' and 'lava' (--fixed-point), "
                         f"not {target!r}")
    activity = {plan.input: x, **res["activity"]}
    r = plan.readouts[0]
    output = activity[r.output] if r.output in activity else activity[r.population]
    return Trace(target=name, dt=plan.dt, input=x, output=output, activity=activity, states={}, seconds=seconds,
                 compile_seconds=time.perf_counter() - t0 - seconds,
                 meta={"lags": {n: p.lag for n, p in plan.populations.items()}, "reset": plan.reset.describe(), **meta})
