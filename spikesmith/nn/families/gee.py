"""GEE networks (family ``gee``): standard SNN architectures whose weights are generated from genes.

Architectures: ``mlp`` and ``digits`` (small nets for the 8x8 digits), ``vgg11``, ``resnet18`` (CIFAR
ResNet-18) and ``resnet19`` (as in tdBN SNN papers). Built ``encoded`` (one shared
:class:`~spikesmith.nn.gee.GeneInteraction` of ``genes`` genes; layers where encoding would not
be smaller stay dense) or dense (the reference for the parameter report and the baseline run).
``width`` scales every channel count (reduced-width variants for tests and small machines).
All are :class:`~spikesmith.nn.network.Network` DAGs: time-first input (T, B, *input_shape) ->
output spikes (T, B, num_classes); residual sums are nodes with two inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from spikesmith.errors import InputError
from spikesmith.nn.families._shape import check_shape
from spikesmith.nn.gee import GeneInteraction, make_conv2d, make_linear
from spikesmith.nn.network import INPUT, Network
from spikesmith.nn.neurons import NeuronParams, Neurons
from spikesmith.nn.registry import Family, register


@dataclass(frozen=True, kw_only=True)
class GeeSpec:
    """A GEE network: architecture, gene count, encoded or dense, width, data shape, neurons."""

    arch: str
    genes: int
    encoded: bool = True
    width: float = 1.0
    input_shape: tuple[int, ...] | None = None  # None: the architecture's default
    num_classes: int = 10
    tau_steps: float = 2.0
    v_th: float = 0.5

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise InputError(f"gee spec.arch: unknown architecture {self.arch!r}; known: {', '.join(ARCHS)}")
        if isinstance(self.genes, bool) or not isinstance(self.genes, int) or not 1 <= self.genes <= 4096:
            raise InputError(f"gee spec.genes: expected an integer in 1..4096, got {self.genes!r}")
        if not isinstance(self.encoded, bool):
            raise InputError(f"gee spec.encoded: expected true or false, got {self.encoded!r}")
        if isinstance(self.width, bool) or not isinstance(self.width, (int, float)) or not 0 < self.width <= 16 \
                or not math.isfinite(self.width):
            raise InputError(f"gee spec.width: expected a number in (0, 16], got {self.width!r}")
        default_shape = ARCHS[self.arch][0]
        shape, _ = check_shape("gee spec", self.input_shape or default_shape, self.num_classes)
        if len(shape) != len(default_shape):
            raise InputError(f"gee spec.input_shape: {self.arch} takes {len(default_shape)}-d samples, got {list(shape)}")
        if len(shape) == 3 and min(shape[1:]) < MIN_SIZE[self.arch]:
            raise InputError(f"gee spec.input_shape: {self.arch} needs images of at least "
                             f"{MIN_SIZE[self.arch]}x{MIN_SIZE[self.arch]}, got {list(shape)}")
        object.__setattr__(self, "input_shape", shape)
        NeuronParams(tau_steps=float(self.tau_steps), v_th=float(self.v_th))

    @classmethod
    def from_dict(cls, d: dict) -> "GeeSpec":
        d = dict(d)
        if d.get("input_shape") is not None:
            d["input_shape"] = tuple(d["input_shape"])
        return cls(**d)

    def to_dict(self) -> dict:
        return {"arch": self.arch, "genes": self.genes, "encoded": self.encoded, "width": self.width,
                "input_shape": list(self.input_shape), "num_classes": self.num_classes,
                "tau_steps": self.tau_steps, "v_th": self.v_th}


class _Builder:
    """Collects nodes; makes encoded or dense layers from one generator and the shared G."""

    def __init__(self, spec: GeeSpec, seed: int, dt: float):
        self.generator = torch.Generator().manual_seed(int(seed) % (2**63))
        self.gene = GeneInteraction(spec.genes, generator=self.generator) if spec.encoded else None
        self.neuron = NeuronParams(tau_steps=float(spec.tau_steps), v_th=float(spec.v_th))
        self.width = float(spec.width)
        self.dt = dt
        self.nodes: list[tuple[str, nn.Module, tuple[str, ...]]] = []

    def ch(self, c: int) -> int:
        return max(1, int(round(c * self.width)))

    def add(self, name: str, module: nn.Module, *inputs: str) -> str:
        self.nodes.append((name, module, inputs))
        return name

    def conv(self, name, src, c_in, c_out, k, stride=1, padding=None) -> str:
        pad = k // 2 if padding is None else padding
        return self.add(name, make_conv2d(c_in, c_out, k, gene=self.gene, stride=stride, padding=pad, bias=False,
                                          generator=self.generator), src)

    def linear(self, name, src, n_in, n_out) -> str:
        return self.add(name, make_linear(n_in, n_out, gene=self.gene, bias=True, generator=self.generator), src)

    def lif(self, name, *srcs) -> str:
        return self.add(name, Neurons(self.neuron.cell(self.dt)), *srcs)

    def conv_bn_lif(self, prefix, src, c_in, c_out, k=3, stride=1) -> str:
        h = self.conv(f"{prefix}_conv", src, c_in, c_out, k, stride)
        h = self.add(f"{prefix}_bn", nn.BatchNorm2d(c_out), h)
        return self.lif(f"{prefix}_lif", h)

    def network(self, spec: GeeSpec) -> Network:
        return Network(self.nodes, input_shape=spec.input_shape, dt=self.dt, gene=self.gene)


def _mlp(b: _Builder, spec: GeeSpec) -> None:
    n_in = math.prod(spec.input_shape)
    h = b.add("flatten", nn.Flatten(), INPUT)
    hidden = b.ch(128)
    h = b.lif("fc1_lif", b.linear("fc1", h, n_in, hidden))
    b.lif("out_lif", b.linear("out", h, hidden, spec.num_classes))


def _digits(b: _Builder, spec: GeeSpec) -> None:
    """16-32-64 channels (times width), two 2x2 average pools, linear readout."""
    c, hh, ww = spec.input_shape
    c1, c2, c3 = b.ch(16), b.ch(32), b.ch(64)
    h = b.conv_bn_lif("l1", INPUT, c, c1)
    h = b.conv_bn_lif("l2", h, c1, c2)
    h = b.add("pool2", nn.AvgPool2d(2), h)
    h = b.conv_bn_lif("l3", h, c2, c3)
    h = b.add("pool3", nn.AvgPool2d(2), h)
    h = b.add("flatten", nn.Flatten(), h)
    b.lif("out_lif", b.linear("out", h, c3 * (hh // 4) * (ww // 4), spec.num_classes))


VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def _vgg11(b: _Builder, spec: GeeSpec) -> None:
    """VGG-11 (conv-BN-LIF, 2x2 average pools), linear readout."""
    c, size = spec.input_shape[0], spec.input_shape[1]
    h, i = INPUT, 0
    for item in VGG11:
        if item == "M":
            h = b.add(f"pool{i}", nn.AvgPool2d(2), h)
            size //= 2
        else:
            i += 1
            h = b.conv_bn_lif(f"l{i}", h, c, b.ch(item))
            c = b.ch(item)
    h = b.add("flatten", nn.Flatten(), h)
    b.lif("out_lif", b.linear("out", h, c * size * size, spec.num_classes))


def _resnet(b: _Builder, spec: GeeSpec, *, stem: int, stages, head) -> None:
    """A CIFAR-shaped spiking ResNet: stem conv-BN-LIF, basic blocks, average pool, FC head."""
    c_in, size = spec.input_shape[0], spec.input_shape[1]
    c = b.ch(stem)
    h = b.conv_bn_lif("stem", INPUT, c_in, c)
    k = 0
    for width, count, stride in stages:
        for j in range(count):
            s = stride if j == 0 else 1
            out = b.ch(width)
            p = f"b{k}"
            y = b.conv_bn_lif(f"{p}_1", h, c, out, 3, s)
            y = b.add(f"{p}_2_bn", nn.BatchNorm2d(out), b.conv(f"{p}_2_conv", y, out, out, 3))
            if s != 1 or c != out:
                sc = b.conv(f"{p}_sc_conv", h, c, out, 1, s, padding=0)
                sc = b.add(f"{p}_sc_bn", nn.BatchNorm2d(out), sc)
            else:
                sc = h  # identity shortcut: the block input's spikes
            h = b.lif(f"{p}_lif", y, sc)
            size = (size - 1) // s + 1
            c, k = out, k + 1
    h = b.add("pool", nn.AvgPool2d(size), h)
    h = b.add("flatten", nn.Flatten(), h)
    for i, width in enumerate(head):
        h = b.lif(f"fc{i}_lif", b.linear(f"fc{i}", h, c, b.ch(width)))
        c = b.ch(width)
    b.lif("out_lif", b.linear("out", h, c, spec.num_classes))


def _resnet18(b: _Builder, spec: GeeSpec) -> None:
    """CIFAR ResNet-18: 3x3 stem of 64, stages 64/128/256/512 x 2 blocks."""
    _resnet(b, spec, stem=64, stages=[(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)], head=[])


def _resnet19(b: _Builder, spec: GeeSpec) -> None:
    """ResNet-19 (tdBN papers): stem 128; stages 128x3, 256x3, 512x2; FC 256; FC classes."""
    _resnet(b, spec, stem=128, stages=[(128, 3, 1), (256, 3, 2), (512, 2, 2)], head=[256])


#: architecture -> (default input shape, builder, description)
ARCHS: dict[str, tuple[tuple[int, ...], Callable, str]] = {
    "mlp": ((1, 8, 8), _mlp, "two-layer MLP SNN (flatten, 128 hidden LIF, LIF readout)"),
    "digits": ((1, 8, 8), _digits, "small conv SNN for the 8x8 digits (16-32-64, two average pools)"),
    "vgg11": ((3, 32, 32), _vgg11, "VGG-11-style conv SNN"),
    "resnet18": ((3, 32, 32), _resnet18, "CIFAR ResNet-18 SNN"),
    "resnet19": ((3, 32, 32), _resnet19, "ResNet-19 SNN (tdBN papers)"),
}
ARCH_NAMES = tuple(ARCHS)
MIN_SIZE = {"mlp": 1, "digits": 4, "vgg11": 32, "resnet18": 8, "resnet19": 4}  # pooling and strides need these


def build(spec: GeeSpec, *, seed: int | None = None, dt: float) -> Network:
    """The network of ``spec``, initialised from ``seed`` alone (0 when None)."""
    b = _Builder(spec, 0 if seed is None else seed, dt)
    ARCHS[spec.arch][1](b, spec)
    return b.network(spec)


FAMILY = register(Family(name="gee", spec_type=GeeSpec, build=build,
                         description="genetically encoded SNNs: mlp, digits, vgg11, resnet18, resnet19 (any width)"))


def build_network(arch: str, *, genes: int, encoded: bool = True, seed: int = 0, width: float = 1.0,
                  num_classes: int = 10, input_shape: tuple[int, ...] | None = None, dt: float | None = None) -> Network:
    """The GEE network of ``arch`` (see :class:`GeeSpec`), initialised from ``seed`` alone."""
    from spikesmith.nn.neurons import DT

    spec = GeeSpec(arch=arch, genes=genes, encoded=encoded, width=width, num_classes=num_classes,
                   input_shape=tuple(input_shape) if input_shape is not None else None)
    return build(spec, seed=seed, dt=DT if dt is None else dt)
