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

    def run(self, drive: torch.Tensor) -> torch.Tensor:
        """Output (T, B, ...) of the neurons for ``drive`` (T, B, ...), from a zero state."""
        state = None
        zs = []
        for t in range(drive.shape[0]):
            d = drive[t]
            if self.recurrent is not None and zs:
                d = d + self.recurrent(zs[-1])
            z, state = self.cell(d, state)
            zs.append(z)
        return torch.stack(zs)

    def forward(self, drive: torch.Tensor) -> torch.Tensor:
        return self.run(drive)


def is_neuron(module: nn.Module) -> bool:
    """True for a stateful layer stepped through time (:class:`Neurons` or a bare Norse cell)."""
    return isinstance(module, (Neurons,) + NEURON_CELLS)
