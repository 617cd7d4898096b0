"""Neuron layers: LIF parameters, and the one module that steps neurons through time.

Every network family uses :class:`Neurons`: a Norse cell (the LIF step) with an optional
recurrent weight source, run over time-first drive ``(T, B, ...)`` by :meth:`Neurons.run`, the
project's one time loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import norse.torch as norse
import torch
from torch import nn

from norse.torch.functional.reset import reset_value

from spikesmith.errors import InputError

DT = 1e-3  # seconds per step; Norse's default and the dt written into exported graphs


@dataclass(frozen=True, kw_only=True)
class NeuronParams:
    """LIF neuron parameters in step units: ``tau_steps`` = tau_mem / dt."""

    tau_steps: float = 2.0
    v_th: float = 1.0
    v_reset: float = 0.0
    v_leak: float = 0.0

    def __post_init__(self) -> None:
        for name in ("tau_steps", "v_th", "v_reset", "v_leak"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
                raise InputError(f"neuron {name}: expected a finite number, got {v!r}")
        if not self.tau_steps >= 1.0:
            raise InputError(f"neuron tau_steps: must be >= 1 (forward-Euler stability), got {self.tau_steps}")
        if not self.v_th > self.v_reset:
            raise InputError(f"neuron v_th ({self.v_th}) must exceed v_reset ({self.v_reset})")

    def to_dict(self) -> dict:
        return {"tau_steps": float(self.tau_steps), "v_th": float(self.v_th), "v_reset": float(self.v_reset),
                "v_leak": float(self.v_leak)}

    @classmethod
    def from_dict(cls, d: dict) -> "NeuronParams":
        return cls(**{k: float(v) for k, v in dict(d).items()})

    def cell(self, dt: float = DT) -> norse.LIFBoxCell:
        """A Norse ``LIFBoxCell`` (exports to NIR ``LIF``) with these parameters."""
        p = norse.LIFBoxParameters(
            tau_mem_inv=torch.as_tensor(1.0 / (self.tau_steps * dt)),
            v_th=torch.as_tensor(self.v_th),
            v_reset=torch.as_tensor(self.v_reset),
            v_leak=torch.as_tensor(self.v_leak),
        )
        return norse.LIFBoxCell(p, dt=dt)


class LIFSequence(torch.autograd.Function):
    """A LIF population over a whole sequence, Norse's ``LIFBoxCell`` without its per-step graph.

    Forward, per step t from ``v = v_leak`` (the same floating-point operations as Norse, so the
    same spikes)::

        u_t = v + a (x_t + v_leak - v)        a = dt / tau_mem
        z_t = H(u_t - v_th)
        v   = (1 - z_t) u_t + z_t v_reset

    Backward (BPTT by hand, SuperSpike surrogate ``dz/du = 1 / (|u - v_th| + 1)^2`` as Norse's)::

        g_u = g_v (1 - z_t) + (g_z + g_v (v_reset - u_t)) dz/du
        g_x = a g_u,   g_v <- (1 - a) g_u

    Saves only ``u`` (T, B, ...): Norse's autograd graph keeps several tensors per step. State
    updates are in place and no graph is built per step, so the Python cost is a few calls per step.
    """

    @staticmethod
    def forward(ctx, drive, a, v_leak, v_th, v_reset, compiled=False):
        """Spikes (T, B, ...) for ``drive``; ``v_leak`` None means 0 (one operation fewer per step);
        ``compiled``: run :func:`_lif_forward` / :func:`_lif_backward` through ``torch.compile``."""
        ctx.compiled = compiled
        if compiled:
            leak = torch.zeros_like(v_th) if v_leak is None else v_leak
            z, us = _compiled("forward")(drive, a, leak, v_th, v_reset)
            ctx.save_for_backward(us, a, v_th, v_reset)
            return z
        steps = drive.shape[0]
        z = torch.empty_like(drive)
        us = torch.empty_like(drive) if drive.requires_grad else None
        v = torch.zeros_like(drive[0]) if v_leak is None else v_leak.expand_as(drive[0]).clone()
        u = torch.empty_like(drive[0])
        for t in range(steps):
            ut = us[t] if us is not None else u
            if v_leak is not None:
                torch.add(drive[t], v_leak, out=ut)
                ut.sub_(v)
            else:
                torch.sub(drive[t], v, out=ut)
            torch.addcmul(v, ut, a, out=ut)  # v + (x - v) a, rounded as Norse's mul then add
            spikes = torch.gt(ut, v_th)
            z[t].copy_(spikes)
            torch.where(spikes, v_reset, ut, out=v)
        if us is not None:
            ctx.save_for_backward(us, a, v_th, v_reset)
        return z

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_z):
        us, a, v_th, v_reset = ctx.saved_tensors
        if ctx.compiled:
            return _compiled("backward")(grad_z, us, a, v_th, v_reset), None, None, None, None, None
        grad_x = torch.empty_like(us)
        keep = 1 - a
        gv = None
        d = torch.empty_like(us[0])
        for t in range(us.shape[0] - 1, -1, -1):
            u = us[t]
            torch.sub(u, v_th, out=d)
            d.abs_().add_(1)  # dz/du = 1 / d^2
            gu = grad_x[t]
            if gv is None:
                torch.div(grad_z[t], d, out=gu).div_(d)
            else:
                # (g_z + g_v (v_reset - u)) dz/du + g_v where no spike
                torch.sub(v_reset, u, out=gu)
                torch.addcmul(grad_z[t], gu, gv, out=gu)
                gu.div_(d).div_(d)
                gu.add_(gv.masked_fill_(torch.gt(u, v_th), 0))
            gv = torch.mul(gu, keep) if t else None
            gu.mul_(a)
        return grad_x, None, None, None, None, None


def _lif_forward(drive, a, v_leak, v_th, v_reset):
    """(spikes, potentials before reset), both (T, B, ...): :class:`LIFSequence`'s forward written
    functionally, for ``torch.compile`` to fuse each step into one loop."""
    v = torch.zeros_like(drive[0]) + v_leak
    zs, us = [], []
    for t in range(drive.shape[0]):
        u = v + (drive[t] + v_leak - v) * a
        spikes = u > v_th
        zs.append(spikes.to(drive.dtype))
        us.append(u)
        v = torch.where(spikes, v_reset, u)
    return torch.stack(zs), torch.stack(us)


def _lif_backward(grad_z, us, a, v_th, v_reset):
    """The drive's gradient (T, B, ...): :class:`LIFSequence`'s backward written functionally."""
    gv = torch.zeros_like(us[0])
    grads = []
    for t in range(us.shape[0] - 1, -1, -1):
        u = us[t]
        d = (u - v_th).abs() + 1
        gu = (grad_z[t] + gv * (v_reset - u)) / d / d + torch.where(u > v_th, 0.0, gv)
        grads.append(gu * a)
        gv = gu * (1 - a)
    return torch.stack(grads[::-1])


_COMPILED: dict[str, object] = {}


def _compiled(which: str):
    """The ``torch.compile`` of :func:`_lif_forward` or :func:`_lif_backward`, made on first use."""
    if which not in _COMPILED:
        _COMPILED[which] = torch.compile({"forward": _lif_forward, "backward": _lif_backward}[which],
                                         dynamic=False, fullgraph=True)
    return _COMPILED[which]


NEURON_CELLS = (norse.LIFBoxCell, norse.IAFCell, norse.LIBoxCell)


class Neurons(nn.Module):
    """A population of neurons: a Norse cell, optionally with a recurrent weight source.

    ``run(drive)`` steps through ``drive`` (T, B, ...); with ``recurrent`` the input of step t is
    ``drive[t] + recurrent(z[t-1])`` (one step of delay, as a NIR back edge).
    """

    def __init__(self, cell: nn.Module, recurrent: nn.Module | None = None):
        super().__init__()
        if not isinstance(cell, NEURON_CELLS):
            raise InputError(f"Neurons: {type(cell).__name__} is not a supported Norse cell "
                             f"({', '.join(c.__name__ for c in NEURON_CELLS)})")
        self.cell = cell
        self.recurrent = recurrent

    def run(self, drive: torch.Tensor, *, fused: bool | None = None, compiled: bool = False) -> torch.Tensor:
        """Output (T, B, ...) of the neurons for ``drive`` (T, B, ...), from a zero state.

        A feed-forward LIF population runs the fused whole-sequence update (:class:`LIFSequence`);
        ``fused=False`` (or a recurrent source, or another cell) steps the Norse cell, the reference.
        ``compiled``: the fused update's loops through ``torch.compile`` (one compilation per shape).
        """
        if fused is None:
            fused = self.fusable
        if fused:
            if not self.fusable:
                raise InputError(f"Neurons: no fused update for {type(self.cell).__name__}"
                                 f"{' with a recurrent source' if self.recurrent is not None else ''}")
            p = self.cell.p
            a = (self.cell.dt * p.tau_mem_inv).to(drive.device, drive.dtype)  # as Norse rounds dt / tau
            leak = p.v_leak.to(drive.device, drive.dtype) if bool(p.v_leak.detach().cpu() != 0) else None
            return LIFSequence.apply(drive, a, leak, p.v_th.to(drive.device, drive.dtype),
                                     p.v_reset.to(drive.device, drive.dtype), bool(compiled))
        state = None
        zs = []
        for t in range(drive.shape[0]):
            d = drive[t]
            if self.recurrent is not None and zs:
                d = d + self.recurrent(zs[-1])
            z, state = self.cell(d, state)
            zs.append(z)
        return torch.stack(zs)

    @property
    def fusable(self) -> bool:
        """True when :meth:`run` can use the fused update: a feed-forward LIFBoxCell with Norse's
        default threshold (SuperSpike surrogate) and reset to a value."""
        cell = self.cell
        return (self.recurrent is None and type(cell) is norse.LIFBoxCell and cell.p.method == "super"
                and cell.p.reset_method is reset_value)

    def forward(self, drive: torch.Tensor) -> torch.Tensor:
        return self.run(drive)


def is_neuron(module: nn.Module) -> bool:
    """True for a stateful layer stepped through time (:class:`Neurons` or a bare Norse cell)."""
    return isinstance(module, (Neurons,) + NEURON_CELLS)
