"""The searched conv SNN (family ``conv``): two conv stages, an optional hidden layer, a spiking readout.

Layout: Conv3x3(pad 1, stride 1) -> BN -> LIF with ``c1`` channels, Conv3x3(pad 1, stride 2) -> BN
-> LIF with ``c2`` channels; Flatten; optional Linear(``hidden``) -> LIF; Linear(classes) -> LIF.
Output: spikes (T, B, num_classes). Downsampling by stride rather than pooling keeps every layer
after the first driven by binary spikes (accumulates, not MACs, on neuromorphic hardware).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from spikesmith.errors import InputError
from spikesmith.nn.families._shape import check_shape
from spikesmith.nn.network import Network
from spikesmith.nn.neurons import NeuronParams, Neurons
from spikesmith.nn.registry import Family, register
from spikesmith.seeding import seeded_torch

GENES = ("c1", "c2", "hidden", "tau_steps", "v_th")


@dataclass(frozen=True, kw_only=True)
class ConvSpec:
    """Genes of the conv SNN and the data shape it runs on."""

    c1: int
    c2: int
    hidden: int = 0
    tau_steps: float = 2.0
    v_th: float = 1.0
    input_shape: tuple[int, ...]
    num_classes: int
    batch_norm: bool = True

    def __post_init__(self) -> None:
        shape, _ = check_shape("conv spec", self.input_shape, self.num_classes, dims=3)
        object.__setattr__(self, "input_shape", shape)
        for name, low in (("c1", 1), ("c2", 1), ("hidden", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low or v > 4096:
                raise InputError(f"conv spec.{name}: expected an integer in {low}..4096, got {v!r}")
        for name in ("tau_steps", "v_th"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InputError(f"conv spec.{name}: expected a finite number, got {v!r}")
        NeuronParams(tau_steps=float(self.tau_steps), v_th=float(self.v_th))  # checks ranges

    @classmethod
    def from_values(cls, values: dict, *, input_shape, num_classes: int) -> "ConvSpec":
        """The spec of gene ``values`` (c1, c2, hidden, tau_steps, v_th) on data of ``input_shape``."""
        unknown = sorted(set(values) - set(GENES))
        if unknown:
            raise InputError(f"genes: unknown gene(s) {unknown} (known: {', '.join(GENES)})")
        missing = [g for g in ("c1", "c2") if g not in values]
        if missing:
            raise InputError(f"genes: missing gene(s) {missing}")
        return cls(**values, input_shape=tuple(input_shape), num_classes=int(num_classes))

    @classmethod
    def from_dict(cls, d: dict) -> "ConvSpec":
        return cls(**{**d, "input_shape": tuple(d["input_shape"])})

    def to_dict(self) -> dict:
        return {"c1": self.c1, "c2": self.c2, "hidden": self.hidden, "tau_steps": self.tau_steps,
                "v_th": self.v_th, "input_shape": list(self.input_shape), "num_classes": self.num_classes,
                "batch_norm": self.batch_norm}

    @property
    def values(self) -> dict:
        """The gene values."""
        return {g: getattr(self, g) for g in GENES}


def build(spec: ConvSpec, *, seed: int | None = None, dt: float) -> Network:
    """The conv SNN of ``spec``; initial weights from torch's RNG forked and seeded with ``seed``."""
    with seeded_torch(seed):
        neuron = NeuronParams(tau_steps=float(spec.tau_steps), v_th=float(spec.v_th))
        layers: list[nn.Module] = []
        c_in, h, w = spec.input_shape
        for c_out, stride in ((spec.c1, 1), (spec.c2, 2)):
            stride = stride if min(h, w) >= 2 * stride else 1
            layers.append(nn.Conv2d(c_in, c_out, 3, padding=1, stride=stride, bias=not spec.batch_norm))
            if spec.batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(Neurons(neuron.cell(dt)))
            h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
            c_in = c_out
        layers.append(nn.Flatten())
        features = c_in * h * w
        if spec.hidden:
            layers += [nn.Linear(features, spec.hidden), Neurons(neuron.cell(dt))]
            features = spec.hidden
        layers += [nn.Linear(features, spec.num_classes), Neurons(neuron.cell(dt))]
    return Network.sequential(layers, input_shape=spec.input_shape, dt=dt)


def parse_values(text: str) -> dict:
    """Gene values from ``name=value,...`` (integers or decimal numbers); InputError naming a bad pair."""
    values = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--genes: expected name=value pairs, got {pair!r}")
        try:
            value = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                raise InputError(f"--genes: {name.strip()}={raw!r} is not a number") from None
        values[name.strip()] = value
    return values


FAMILY = register(Family(name="conv", spec_type=ConvSpec, build=build,
                         description="searched conv SNN: two conv-BN-LIF stages, optional hidden layer, LIF readout"))
