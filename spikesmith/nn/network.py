"""The one network module: a DAG of named layers over time-first tensors, and its time loop.

A :class:`Network` is a list of nodes ``(name, layer, inputs)`` in evaluation order. A node's
input is the sum of its inputs' outputs (NIR's semantics of several edges into one node);
``"input"`` names the network input. Stateless layers (conv, linear, batch norm, pooling,
flatten, ...) run on all time steps at once (time merged into the batch) or, for convolutions,
in chunks of time steps, as the :class:`Schedule` says; :class:`Neurons` step through time
(fused update, or Norse's cell in the reference schedule). Input ``(T, B, *input_shape)``, output
``(T, B, *output_shape)``. Every schedule computes the same function (per-sample layers do not
care how the batch is cut; batch norm always sees all T x B samples).

Every network family (:mod:`spikesmith.nn.families`) builds one of these, so one exporter
(:mod:`spikesmith.compile.export`) and one loader (:mod:`spikesmith.io`) serve them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from spikesmith.errors import InputError
from spikesmith.nn.neurons import DT, Neurons, is_neuron

INPUT = "input"

# Largest input + output of one convolution call on CPU in the auto schedule (see :func:`auto_schedule`).
CPU_CONV_BYTES = 8 * 2**20


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """How :meth:`Network.forward` runs the time axis.

    ``conv_steps``: time steps per call of an ``nn.Conv2d`` (None: all T at once, time merged into
    the batch; 1: one step per call). ``conv_bytes`` (when ``conv_steps`` is None): as many steps per
    call as keep the call's input plus output within this many bytes (at least one step).
    ``fused``: feed-forward LIF populations use the fused whole-sequence update
    (:class:`~spikesmith.nn.neurons.LIFSequence`) rather than stepping Norse's cell.
    ``channels_last``: convolutions see channels-last memory. ``compiled``: the fused update runs
    through ``torch.compile`` (opt-in: it compiles once per layer shape, which takes tens of seconds
    on a small CPU, and needs a C++ compiler there).
    """

    conv_steps: int | None = None
    conv_bytes: int | None = None
    fused: bool = True
    channels_last: bool = False
    compiled: bool = False

    def __post_init__(self) -> None:
        if self.conv_steps is not None and (isinstance(self.conv_steps, bool) or not isinstance(self.conv_steps, int)
                                            or self.conv_steps < 1):
            raise InputError(f"schedule conv_steps: expected a positive integer or None, got {self.conv_steps!r}")
        if self.conv_bytes is not None and (isinstance(self.conv_bytes, bool) or not isinstance(self.conv_bytes, int)
                                            or self.conv_bytes < 1):
            raise InputError(f"schedule conv_bytes: expected a positive integer or None, got {self.conv_bytes!r}")


REFERENCE = Schedule(conv_steps=None, fused=False)  # the schedule every other one is checked against


def auto_schedule(x: torch.Tensor) -> Schedule:
    """The schedule :meth:`Network.forward` uses for input ``x`` (T, B, ...) when none is given.

    The rule (measured by ``benchmarks/train_throughput.py --schedules``, docs/training.md): on
    CPU a convolution over all T x B samples at once streams activations far larger than the
    caches and runs up to ~1.5x slower per sample than calls whose input plus output stay within a
    few MiB, while small images gain nothing from being cut; so each CPU convolution takes as many
    time steps per call as fit in ``CPU_CONV_BYTES``. On CUDA one large call keeps the GPU busy:
    all steps at once. Neurons always use the fused update.
    """
    if x.device.type == "cpu":
        return Schedule(conv_bytes=CPU_CONV_BYTES)
    return Schedule()


class Network(nn.Module):
    """A spiking network: nodes ``(name, layer, inputs)`` in evaluation order.

    Args:
        nodes: ``(name, module, input names)``; names are unique, inputs name earlier nodes or
            ``"input"``. Names must not contain '.' (they are state-dict keys under ``layers``).
        input_shape: one sample's shape without time and batch, e.g. ``(1, 8, 8)``.
        output: the node whose output the network returns (default: the last).
        dt: time step in seconds the neurons were built with.
        gene: a module shared by several layers (GEE's gene-interaction matrix), owned here once.
    """

    def __init__(self, nodes: Iterable[tuple[str, nn.Module, tuple[str, ...]]], *, input_shape: tuple[int, ...],
                 output: str | None = None, dt: float = DT, gene: nn.Module | None = None):
        super().__init__()
        self.layers = nn.ModuleDict()
        self.graph: list[tuple[str, tuple[str, ...]]] = []
        for name, module, inputs in nodes:
            if name == INPUT or name in self.layers or "." in name or hasattr(self.layers, name):
                raise InputError(f"network node '{name}': names must be unique, not '{INPUT}', without '.', and "
                                 "not a ModuleDict attribute")
            inputs = tuple(inputs)
            missing = [i for i in inputs if i != INPUT and i not in self.layers]
            if not inputs or missing:
                raise InputError(f"network node '{name}': inputs {list(inputs)} must name earlier nodes or '{INPUT}'")
            self.layers[name] = module
            self.graph.append((name, inputs))
        if not self.graph:
            raise InputError("network: no nodes")
        self.output = output or self.graph[-1][0]
        if self.output not in self.layers:
            raise InputError(f"network output '{self.output}' is not a node")
        self.input_shape = tuple(int(s) for s in input_shape)
        self.dt = float(dt)
        self.gene = gene

    @classmethod
    def sequential(cls, layers: list[nn.Module], *, input_shape: tuple[int, ...], dt: float = DT,
                   gene: nn.Module | None = None) -> "Network":
        """A chain: node ``i`` (named ``"i"``) feeds node ``i + 1``."""
        nodes = [(str(i), layer, (str(i - 1) if i else INPUT,)) for i, layer in enumerate(layers)]
        return cls(nodes, input_shape=input_shape, dt=dt, gene=gene)

    def consumers(self) -> dict[str, list[str]]:
        """Node name (or ``"input"``) -> the nodes that read it."""
        out: dict[str, list[str]] = {INPUT: []}
        for name, inputs in self.graph:
            out.setdefault(name, [])
            for i in inputs:
                out[i].append(name)
        return out

    def forward(self, x: torch.Tensor, *, record: bool = False, schedule: Schedule | None = None):
        """Output (T, B, *out) for ``x`` (T, B, *input_shape); with ``record`` also a dict
        neuron node name -> its output (T, B, ...), in evaluation order. ``schedule``: how to
        run the time axis (default: :func:`auto_schedule`); every schedule gives the same result."""
        if x.dim() != 2 + len(self.input_shape) or tuple(x.shape[2:]) != self.input_shape:
            raise InputError(f"expected input (T, B, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}")
        steps, batch = x.shape[:2]
        plan = schedule or auto_schedule(x)
        values: dict[str, torch.Tensor] = {INPUT: x}
        recorded: dict[str, torch.Tensor] = {}
        for name, inputs in self.graph:
            h = values[inputs[0]]
            for i in inputs[1:]:
                h = h + values[i]
            layer = self.layers[name]
            if isinstance(layer, Neurons):
                h = layer.run(h, fused=plan.fused and layer.fusable, compiled=plan.compiled)
                if record:
                    recorded[name] = h
            elif isinstance(layer, nn.Conv2d):
                h = _conv(layer, h, plan)
            else:
                y = layer(h.reshape(steps * batch, *h.shape[2:]))
                h = y.reshape(steps, batch, *y.shape[1:])
            values[name] = h
        out = values[self.output]
        return (out, recorded) if record else out

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one output sample (without time and batch)."""
        with torch.no_grad():
            p = next(self.parameters(), None)
            device = p.device if p is not None else "cpu"
            was = self.training
            self.eval()
            y = self.forward(torch.zeros(1, 1, *self.input_shape, device=device))
            self.train(was)
        return tuple(y.shape[2:])

    def neuron_nodes(self) -> list[str]:
        """Names of the neuron nodes, in evaluation order."""
        return [name for name, _ in self.graph if is_neuron(self.layers[name])]

    def num_parameters(self) -> int:
        """Trainable parameters that exist: a layer with ``num_parameters()`` (masked or encoded
        weights) counts itself; the shared ``gene`` counts once."""
        return sum(_count(child) for child in self.children())


def _conv(layer: nn.Conv2d, h: torch.Tensor, plan: Schedule) -> torch.Tensor:
    """``layer`` over ``h`` (T, B, C, H, W), in calls of as many time steps as ``plan`` says."""
    steps, batch = h.shape[:2]
    per_call = plan.conv_steps
    if per_call is None and plan.conv_bytes is not None:
        c, rows, cols = h.shape[2:]
        out = layer.out_channels * (rows // layer.stride[0]) * (cols // layer.stride[1])
        per_call = max(1, plan.conv_bytes // max(1, batch * (c * rows * cols + out) * h.element_size()))
    chunks = h.split(per_call) if per_call and per_call < steps else (h,)
    ys = []
    for c in chunks:
        c = c.reshape(c.shape[0] * batch, *c.shape[2:])
        if plan.channels_last:
            c = c.contiguous(memory_format=torch.channels_last)
        ys.append(layer(c).contiguous())
    y = ys[0] if len(ys) == 1 else torch.cat(ys)
    return y.reshape(steps, batch, *y.shape[1:])


def _count(module: nn.Module) -> int:
    own = getattr(module, "num_parameters", None)
    if callable(own):
        return int(own())
    return (sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
            + sum(_count(child) for child in module.children()))
