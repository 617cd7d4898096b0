"""Norse phenotypes: sequential spiking networks that run time-first tensors.

A :class:`SNN` is an ordered list of layers. Stateless layers (conv, linear, batch
norm, pooling, flatten) run on all time steps at once (time merged into the batch);
neuron layers (Norse cells) step through time. Input ``(T, B, *input_shape)``,
output ``(T, B, *output_shape)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import norse.torch as norse
import torch
from torch import nn

DT = 1e-3  # seconds per step; Norse's default and the dt written into exported graphs


@dataclass(frozen=True, kw_only=True)
class NeuronParams:
    """LIF neuron parameters in step units: ``tau_steps`` = tau_mem / dt."""

    tau_steps: float = 2.0
    v_th: float = 1.0
    v_reset: float = 0.0
    v_leak: float = 0.0

    def __post_init__(self) -> None:
        if not self.tau_steps >= 1.0:
            raise ValueError(f"tau_steps must be >= 1 (forward-Euler stability), got {self.tau_steps}")
        if not self.v_th > self.v_reset:
            raise ValueError(f"v_th ({self.v_th}) must exceed v_reset ({self.v_reset})")

    def cell(self, dt: float = DT) -> norse.LIFBoxCell:
        """A Norse ``LIFBoxCell`` (exports to NIR ``LIF``) with these parameters."""
        p = norse.LIFBoxParameters(
            tau_mem_inv=torch.as_tensor(1.0 / (self.tau_steps * dt)),
            v_th=torch.as_tensor(self.v_th),
            v_reset=torch.as_tensor(self.v_reset),
            v_leak=torch.as_tensor(self.v_leak),
        )
        return norse.LIFBoxCell(p, dt=dt)


NEURON_CELLS = (norse.LIFBoxCell, norse.LIFCell, norse.IAFCell, norse.LIBoxCell)


def is_neuron(layer: nn.Module) -> bool:
    """True for a Norse neuron cell (stateful, stepped through time)."""
    return isinstance(layer, NEURON_CELLS)


class SNN(nn.Module):
    """A sequential spiking network on time-first input.

    Args:
        layers: stateless torch modules and Norse neuron cells, in order.
        input_shape: shape of one sample without time and batch, e.g. ``(1, 8, 8)``.
        dt: time step in seconds the neuron cells were built with.
    """

    def __init__(self, layers: list[nn.Module], *, input_shape: tuple[int, ...], dt: float = DT):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.dt = float(dt)

    def forward(self, x: torch.Tensor, *, record: bool = False):
        """Run ``x`` (T, B, *input_shape); returns output (T, B, *out) or, with
        ``record``, (output, list of every layer's output)."""
        if x.dim() < 2 + len(self.input_shape):
            raise ValueError(f"expected input (T, B, *{self.input_shape}), got {tuple(x.shape)}")
        steps, batch = x.shape[:2]
        outs = []
        h = x
        for layer in self.layers:
            if is_neuron(layer):
                state = None
                zs = []
                for t in range(steps):
                    z, state = layer(h[t], state)
                    zs.append(z)
                h = torch.stack(zs)
            else:
                y = layer(h.reshape(steps * batch, *h.shape[2:]))
                h = y.reshape(steps, batch, *y.shape[1:])
            if record:
                outs.append(h)
        return (h, outs) if record else h

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one output sample (without time and batch)."""
        with torch.no_grad():
            p = next(self.parameters(), None)
            device = p.device if p is not None else "cpu"
            y = self.forward(torch.zeros(1, 1, *self.input_shape, device=device))
        return tuple(y.shape[2:])

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
