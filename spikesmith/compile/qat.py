"""Quantisation-aware fine-tuning of a deployment plan: a torch module whose forward pass is the chip's.

:class:`PlanNetwork` runs a calibrated :class:`~spikesmith.compile.quantise.QuantisedPlan`'s plan in
torch with what the fixed-point targets do to it:

- every connection's weights rounded to the chip grid in the forward pass: ``W * vth / in_scale`` as
  8-bit mantissas with the exponent Lava's rule picks (:func:`~spikesmith.compile.quantise.weight_mantissa`),
  straight-through in the backward pass;
- the decays the 12-bit du/dv registers realise, the biases the 13-bit mantissas realise, graded
  input rounded as it is sent (``round(x * input_scale)``);
- spikes with a surrogate gradient, the plan's reset rule, recurrence and synaptic delays.

It works on any plan, so on every model family (nn/ registry) and on third-party NIR graphs alike:
fine-tuning acts on the deployed network, not on the module that was exported. After training,
:meth:`PlanNetwork.snapped_plan` is the plan whose weights lie exactly on the grid, with the
realised decays and biases: quantising it again (the same threshold mantissas, or any power-of-two
multiple of them) gives the trained integers, so the deployed network is the one that was trained.
The training loop is :func:`spikesmith.train.fit` (the one loop); this module only defines the net.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from spikesmith.compile import units
from spikesmith.compile.plan import Plan
from spikesmith.compile.quantise import WEIGHT_EXP_MIN, QuantisedPlan

SURROGATE_SLOPE = 10.0  # SuperSpike: d spike / d v = 1 / (1 + slope |v - 1|)**2


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad / (1.0 + SURROGATE_SLOPE * v.abs()) ** 2


def _exponent(m: torch.Tensor) -> tuple[int, bool]:
    """Lava's weight exponent for values ``m`` (as quantise's ``_exponent``), clamped to -8 from below."""
    mx, mn = float(m.max().clamp(min=0)), float(m.min().clamp(max=0))
    if mx == mn == 0:
        return 0, False
    mixed = mn < 0 < mx
    if mixed:
        e = -(int(np.floor(np.log2(min(127.0 / mx, 128.0 / -mn)))) + 1)
    else:
        e = -int(np.floor(np.log2(255.0 / max(abs(mx), abs(mn)))))
    return max(e, WEIGHT_EXP_MIN), mixed


def grid(w: torch.Tensor, k: float) -> torch.Tensor:
    """``w`` rounded to the chip grid of a connection with ``k = vth / in_scale`` (no gradient)."""
    with torch.no_grad():
        m = w * k
        e, mixed = _exponent(m)
        q = m * 2.0 ** -e
        mant = (2 * torch.round(q / 2)).clamp(-256, 254) if mixed else torch.round(q).clamp(-255, 255)
        return mant * 2.0 ** e / k


def fake_quant(w: torch.Tensor, k: float) -> torch.Tensor:
    """``w`` on the grid in the forward pass, the identity in the backward pass (straight-through)."""
    return w + (grid(w, k) - w).detach()


class PlanNetwork(torch.nn.Module):
    """The plan of ``qplan`` as a trainable torch network on the chip's grid; forward (T, B, *in) -> (T, B, C)."""

    def __init__(self, qplan: QuantisedPlan, *, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.qplan, plan = qplan, qplan.plan
        self.plan = plan
        self.dtype_ = dtype
        conns = list(plan.connections) + list(plan.readout_connections)
        qs = list(qplan.connections) + list(qplan.readout_connections)
        readout_vth = qplan.readout_scale >> units.STATE_SHIFT
        self.conns = conns
        self.k = []
        self.weights = torch.nn.ParameterList()
        for c, q in zip(conns, qs):
            vth = qplan.populations[c.dst].vth_mant if c.dst in qplan.populations else readout_vth
            self.k.append(vth / q.in_scale)
            self.weights.append(torch.nn.Parameter(torch.as_tensor(np.asarray(c.weight), dtype=dtype)))
        self.bias_conns = [(c, torch.as_tensor(q.weight * 2.0 ** q.exp * q.in_scale /
                                               qplan.populations[c.dst].vth_mant, dtype=dtype))
                           for c, q in zip(plan.bias_connections, qplan.bias_connections)]
        self.pop_params = {}
        for pop in plan.neurons:
            qp = qplan.populations[pop.name]
            self.pop_params[pop.name] = dict(
                du=torch.as_tensor(units.current_decay_realised(qp.du), dtype=dtype),
                dv=torch.as_tensor(units.voltage_decay_realised(qp.dv), dtype=dtype),
                bias=torch.as_tensor(qp.bias / qp.scale, dtype=dtype))
        self.reach = max([c.history for c in conns], default=0)

    def _weights(self) -> list[torch.Tensor]:
        return [fake_quant(w, k) for w, k in zip(self.weights, self.k)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plan, dt = self.plan, self.dtype_
        dev = self.weights[0].device if len(self.weights) else x.device
        steps, batch = x.shape[:2]
        scale = self.qplan.input_scale
        x = torch.round(x.reshape(steps, batch, -1).to(dev, torch.float64) * scale).to(dt) / scale
        weights = self._weights()
        by_dst: dict[str, list[int]] = {}
        for i, c in enumerate(self.conns):
            by_dst.setdefault(c.dst, []).append(i)
        params = {n: {k: v.to(dev) for k, v in p.items()} for n, p in self.pop_params.items()}
        state = {p.name: {"u": torch.zeros(batch, p.size, dtype=dt, device=dev),
                          "v": torch.zeros(batch, p.size, dtype=dt, device=dev),
                          "pending": torch.zeros(batch, p.size, dtype=dt, device=dev)} for p in plan.neurons}
        hist: dict[str, list[torch.Tensor]] = {n: [] for n in plan.populations}
        ones = torch.ones(batch, 1, dtype=dt, device=dev)
        readout = plan.readouts[0]
        outs = []

        def message(src: str, back: int, cur: dict) -> torch.Tensor:
            if back == 0:
                return cur[src]
            h = hist[src]
            return h[-back] if len(h) >= back else torch.zeros(batch, plan.populations[src].size, dtype=dt, device=dev)

        for t in range(steps):
            cur = {plan.input: x[t]}
            for pop in plan.neurons:
                name, p, st = pop.name, params[pop.name], state[pop.name]
                a = torch.zeros(batch, pop.size, dtype=dt, device=dev)
                for i in by_dst.get(name, []):
                    c = self.conns[i]
                    a = a + c.apply(message(c.src, c.history, cur), weights[i])
                for c, w in self.bias_conns:
                    if c.dst == name:
                        a = a + ones @ w.to(dev).T
                u = st["u"] * (1 - p["du"]) + a
                v = st["v"] * (1 - p["dv"]) + u + p["bias"]
                if pop.spiking:
                    if pop.delayed:
                        v = v - st["pending"] * (1.0 if pop.subtract else v)
                    s = _Spike.apply(v - 1.0)
                    if pop.delayed:
                        st["pending"] = s
                    else:
                        v = v - s if pop.subtract else v * (1 - s)
                    cur[name] = s
                else:
                    cur[name] = v
                st["u"], st["v"] = u, v
            if readout.population is not None:
                outs.append(cur[readout.population])
            else:
                r = sum(c.apply(message(c.src, c.history, cur), weights[self.conns.index(c)])
                        for c in readout.connections)
                outs.append(r + torch.as_tensor(readout.bias, dtype=dt, device=dev))
            if self.reach:
                for n, h in hist.items():
                    if n in cur:
                        h.append(cur[n])
                        if len(h) > self.reach:
                            h.pop(0)
        return torch.stack(outs).reshape(steps, batch, *readout.shape)

    def snapped_plan(self) -> Plan:
        """The plan with the trained weights exactly on the grid (float64) and the realised decays and biases."""
        plan = self.plan
        snapped = {}
        for c, w, k in zip(self.conns, self.weights, self.k):
            snapped[id(c)] = dataclasses.replace(c, weight=grid(w.detach().to(torch.float64), k).cpu().numpy())
        pops = dict(plan.populations)
        for pop in plan.neurons:
            qp = self.qplan.populations[pop.name]
            pops[pop.name] = dataclasses.replace(pop, du=units.current_decay_realised(qp.du),
                                                 dv=units.voltage_decay_realised(qp.dv), bias=qp.bias / qp.scale)
        readouts = tuple(dataclasses.replace(r, connections=tuple(snapped[id(c)] for c in r.connections))
                         for r in plan.readouts)
        bias_conns = tuple(dataclasses.replace(c, weight=w.to(torch.float64).numpy().copy())
                           for c, w in self.bias_conns)
        return dataclasses.replace(plan, populations=pops, connections=tuple(snapped[id(c)] for c in plan.connections),
                                   readouts=readouts, bias_connections=bias_conns)

