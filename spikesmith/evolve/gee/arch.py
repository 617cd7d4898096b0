"""GEE versions of standard SNN architectures, each buildable encoded or dense.

Every builder takes ``genes`` and ``encoded``: with ``encoded=False`` the same architecture is
built with ordinary dense weights (the reference for the parameter report and the baseline run).
Sequential architectures are :class:`spikesmith.nn.SNN` instances; the ResNets are
:class:`SpikingResNet`. Both carry the shared :class:`GeneInteraction` as ``model.gene`` (None
when dense) and run time-first input (T, B, *input_shape) -> output spikes (T, B, num_classes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from spikesmith.errors import InputError
from spikesmith.evolve.gee.layers import GeneInteraction, make_conv2d, make_linear
from spikesmith.nn import DT, SNN, NeuronParams, is_neuron

DEFAULT_NEURON = NeuronParams(tau_steps=2.0, v_th=0.5)


@dataclass(frozen=True, kw_only=True)
class ArchSpec:
    """What an architecture expects: one step's input shape and the number of classes."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    description: str


class _Ctx:
    """Construction context: the shared G (or None), the init generator and the neuron parameters."""

    def __init__(self, genes: int, encoded: bool, seed: int, neuron: NeuronParams):
        self.generator = torch.Generator().manual_seed(int(seed))
        self.gene = GeneInteraction(genes, generator=self.generator) if encoded else None
        self.neuron = neuron

    def conv(self, c_in, c_out, k, stride=1, padding=None, bias=False) -> nn.Module:
        pad = k // 2 if padding is None else padding
        return make_conv2d(c_in, c_out, k, gene=self.gene, stride=stride, padding=pad, bias=bias,
                           generator=self.generator)

    def linear(self, n_in, n_out, bias=True) -> nn.Module:
        return make_linear(n_in, n_out, gene=self.gene, bias=bias, generator=self.generator)

    def cell(self) -> nn.Module:
        return self.neuron.cell(DT)


def _lif(cell: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Return the spikes (T, B, ...) of a Norse cell stepped through h (T, B, ...)."""
    state = None
    zs = []
    for t in range(h.shape[0]):
        z, state = cell(h[t], state)
        zs.append(z)
    return torch.stack(zs)


def _merged(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Return a stateless layer applied to all steps of h (T, B, ...) at once."""
    steps, batch = h.shape[:2]
    y = layer(h.reshape(steps * batch, *h.shape[2:]))
    return y.reshape(steps, batch, *y.shape[1:])


class BasicBlock(nn.Module):
    """Spiking residual block: conv-BN-LIF-conv-BN, plus shortcut, then LIF (time-first)."""

    def __init__(self, ctx: _Ctx, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = ctx.conv(c_in, c_out, 3, stride=stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.lif1 = ctx.cell()
        self.conv2 = ctx.conv(c_out, c_out, 3)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = (nn.Sequential(ctx.conv(c_in, c_out, 1, stride=stride, padding=0), nn.BatchNorm2d(c_out))
                         if stride != 1 or c_in != c_out else nn.Identity())
        self.lif2 = ctx.cell()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Return the block's output spikes (T, B, C_out, H', W') for h (T, B, C_in, H, W)."""
        steps, batch = h.shape[:2]
        flat = h.reshape(steps * batch, *h.shape[2:])
        y = self.bn1(self.conv1(flat))
        y = _lif(self.lif1, y.reshape(steps, batch, *y.shape[1:]))
        y = self.bn2(self.conv2(y.reshape(steps * batch, *y.shape[2:])))
        y = y + self.shortcut(flat)
        return _lif(self.lif2, y.reshape(steps, batch, *y.shape[1:]))


class SpikingResNet(nn.Module):
    """A CIFAR-shaped spiking ResNet on time-first input (T, B, 3, 32, 32) -> spikes (T, B, classes)."""

    def __init__(self, ctx: _Ctx, *, stem: int, stages: list[tuple[int, int, int]], head: list[int],
                 input_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.dt = DT
        self.gene = ctx.gene
        self.stem = nn.Sequential(ctx.conv(input_shape[0], stem, 3), nn.BatchNorm2d(stem))
        self.stem_lif = ctx.cell()
        blocks = []
        c = stem
        for width, count, stride in stages:
            for i in range(count):
                blocks.append(BasicBlock(ctx, c, width, stride if i == 0 else 1))
                c = width
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        layers: list[nn.Module] = []
        for width in head:
            layers += [ctx.linear(c, width), ctx.cell()]
            c = width
        layers += [ctx.linear(c, num_classes), ctx.cell()]
        self.head = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return output spikes (T, B, num_classes) for x (T, B, *input_shape)."""
        if x.dim() != 2 + len(self.input_shape):
            raise InputError(f"input: expected (T, B, *{self.input_shape}), got {tuple(x.shape)}")
        h = _lif(self.stem_lif, _merged(self.stem, x))
        for block in self.blocks:
            h = block(h)
        h = _merged(self.pool, h).flatten(2)
        for layer in self.head:
            h = _lif(layer, h) if is_neuron(layer) else _merged(layer, h)
        return h


def _sequential(ctx: _Ctx, layers: list[nn.Module], input_shape) -> SNN:
    model = SNN(layers, input_shape=input_shape, dt=DT)
    model.gene = ctx.gene  # registered beside ``layers``: SNN.forward never calls it
    return model


def build_digits(ctx: _Ctx, num_classes: int = 10, input_shape=(1, 8, 8)) -> SNN:
    """Return the small digits conv SNN: 16-32-64 channels, two 2x2 average pools, linear readout."""
    c, h, w = input_shape
    layers = [
        ctx.conv(c, 16, 3), nn.BatchNorm2d(16), ctx.cell(),
        ctx.conv(16, 32, 3), nn.BatchNorm2d(32), ctx.cell(), nn.AvgPool2d(2),
        ctx.conv(32, 64, 3), nn.BatchNorm2d(64), ctx.cell(), nn.AvgPool2d(2),
        nn.Flatten(), ctx.linear(64 * (h // 4) * (w // 4), num_classes), ctx.cell(),
    ]
    return _sequential(ctx, layers, input_shape)


VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def build_vgg(ctx: _Ctx, num_classes: int = 10, input_shape=(3, 32, 32)) -> SNN:
    """Return a VGG-11-style SNN (conv-BN-LIF, 2x2 average pools) with a linear readout."""
    layers: list[nn.Module] = []
    c = input_shape[0]
    size = input_shape[1]
    for item in VGG11:
        if item == "M":
            layers.append(nn.AvgPool2d(2))
            size //= 2
        else:
            layers += [ctx.conv(c, item, 3), nn.BatchNorm2d(item), ctx.cell()]
            c = item
    layers += [nn.Flatten(), ctx.linear(c * size * size, num_classes), ctx.cell()]
    return _sequential(ctx, layers, input_shape)


def build_resnet18(ctx: _Ctx, num_classes: int = 10, input_shape=(3, 32, 32)) -> SpikingResNet:
    """Return the CIFAR ResNet-18 (3x3 stem of 64, stages 64/128/256/512 x 2 blocks) as an SNN."""
    return SpikingResNet(ctx, stem=64, stages=[(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)], head=[],
                         input_shape=input_shape, num_classes=num_classes)


def build_resnet19(ctx: _Ctx, num_classes: int = 10, input_shape=(3, 32, 32)) -> SpikingResNet:
    """Return ResNet-19 as in tdBN SNN papers (stem 128; stages 128x3, 256x3, 512x2; FC 256; FC classes)."""
    return SpikingResNet(ctx, stem=128, stages=[(128, 3, 1), (256, 3, 2), (512, 2, 2)], head=[256],
                         input_shape=input_shape, num_classes=num_classes)


ARCHS: dict[str, tuple[ArchSpec, Callable]] = {
    "digits": (ArchSpec(name="digits", input_shape=(1, 8, 8), num_classes=10,
                        description="small conv SNN for the 8x8 digits"), build_digits),
    "vgg11": (ArchSpec(name="vgg11", input_shape=(3, 32, 32), num_classes=10,
                       description="VGG-11-style conv SNN"), build_vgg),
    "resnet18": (ArchSpec(name="resnet18", input_shape=(3, 32, 32), num_classes=10,
                          description="CIFAR ResNet-18 SNN"), build_resnet18),
    "resnet19": (ArchSpec(name="resnet19", input_shape=(3, 32, 32), num_classes=10,
                          description="ResNet-19 SNN (tdBN papers)"), build_resnet19),
}
ARCH_NAMES = tuple(ARCHS)


def arch_spec(arch: str) -> ArchSpec:
    """Return the ArchSpec of ``arch``, or raise InputError listing the known names."""
    if arch not in ARCHS:
        raise InputError(f"arch: unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
    return ARCHS[arch][0]


def build_network(arch: str, *, genes: int, encoded: bool = True, seed: int = 0,
                  num_classes: int | None = None, input_shape: tuple[int, ...] | None = None,
                  neuron: NeuronParams = DEFAULT_NEURON) -> nn.Module:
    """Return architecture ``arch`` built encoded (one shared G of ``genes`` genes, dense fallback
    where encoding does not pay) or dense, initialised from ``seed`` alone."""
    spec = arch_spec(arch)
    if isinstance(genes, bool) or not isinstance(genes, int) or genes < 1:
        raise InputError(f"genes: expected a positive integer, got {genes!r}")
    ctx = _Ctx(genes, encoded, seed, neuron)
    return ARCHS[arch][1](ctx, num_classes=num_classes or spec.num_classes,
                          input_shape=tuple(input_shape or spec.input_shape))
