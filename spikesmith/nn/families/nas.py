"""The MSE-NAS cell network (family ``nas``): neuron populations wired by sign-constrained convolutions.

The spec is a :class:`Wiring`: populations and connections as plain data (the search,
:mod:`spikesmith.evolve.nas`, derives it from a genome through the motif library; the spec holds
the result, so a model file rebuilds without the library):

- a stem population (conv on the analog input), then per cell one population per motif depth
  (the groups of one depth are channel blocks of one population), then a readout population;
- one forward connection (a conv) per (source population, destination population) pair, its
  weight masked to the motif's edges (a 3x3 edge inside a 5x5 connection is zero outside the
  centre) and sign-constrained per source channel (Dale's principle);
- one recurrent connection per population that has feedback edges (one step of delay);
- relay populations where a forward edge skips depths (spike copies; see :class:`~spikesmith.nn.layers.Relay`);
- reduction stages: a population at ``level`` l holds ``ceil(H / 2**l) x ceil(W / 2**l)`` neurons per
  channel; a forward connection from level a to level b has stride ``2**(b - a)`` (same padding, so
  an odd kernel maps ``n`` to ``ceil(n / stride)`` positions), as in a DARTS-like skeleton's
  reduction cells.

Each population's forward convolutions are summed, batch-normalised (scale kept positive so signs
survive folding) and drive LIF neurons; the readout average-pools the readout source's output
block and feeds a masked linear layer into LIF neurons.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import nn

from spikesmith.errors import InputError
from spikesmith.nn.families._shape import check_shape
from spikesmith.nn.layers import MaskedLinear, PopulationNorm, Relay, SignedConv
from spikesmith.nn.network import INPUT, Network
from spikesmith.nn.neurons import NeuronParams, Neurons
from spikesmith.nn.registry import Family, register
from spikesmith.seeding import generator as make_generator

READOUT = "readout"


@dataclass(frozen=True, kw_only=True)
class Population:
    """A neuron population: ``channels`` x H x W neurons in channel blocks ``(label, sign, start, stop)``."""

    name: str
    channels: int
    depth: int
    kind: str = "lif"  # "lif" | "relay"
    blocks: tuple[tuple[str, int, int, int], ...] = ()
    source: str | None = None  # relay: the population it copies
    level: int = 0  # reductions ahead of it: spatial size ceil(H / 2**level) x ceil(W / 2**level)

    def signs(self) -> np.ndarray:
        """Sign of every channel's outgoing weights (+1, -1; 0 = unconstrained)."""
        s = np.zeros(self.channels, dtype=np.int64)
        for _, sign, a, b in self.blocks:
            s[a:b] = sign
        return s


@dataclass(frozen=True, kw_only=True)
class Connection:
    """A conv from ``src`` to ``dst`` (kernel ``kernel``, same padding); ``blocks`` are the allowed
    weight blocks ``(out_start, out_stop, in_start, in_stop, k)`` with their own kernel size ``k``."""

    name: str
    src: str
    dst: str
    kernel: int
    blocks: tuple[tuple[int, int, int, int, int], ...]
    feedback: bool = False
    relay: bool = False
    stride: int = 1


@dataclass(frozen=True, kw_only=True)
class Wiring:
    """Populations in evaluation order, connections, and where the readout reads from (the ``nas`` spec)."""

    input_shape: tuple[int, int, int]
    num_classes: int
    populations: tuple[Population, ...]
    connections: tuple[Connection, ...]
    readout_src: str
    readout_block: tuple[int, int]
    neuron: NeuronParams = field(default_factory=lambda: NeuronParams(tau_steps=2.0, v_th=0.5))

    def __post_init__(self) -> None:
        shape, _ = check_shape("nas spec", self.input_shape, self.num_classes, dims=3)
        object.__setattr__(self, "input_shape", shape)
        names = [p.name for p in self.populations]
        if len(set(names)) != len(names) or INPUT in names:
            raise InputError(f"nas spec.populations: names must be unique and not '{INPUT}', got {names}")
        for c in self.connections:
            for end in (c.src, c.dst):
                if end != INPUT and end not in names:
                    raise InputError(f"nas spec.connections: '{c.name}' joins unknown population '{end}'")
        if self.readout_src not in names:
            raise InputError(f"nas spec.readout_src: '{self.readout_src}' is not a population")
        for p in self.populations:
            if not 0 <= p.level <= 16:
                raise InputError(f"nas spec.populations: '{p.name}' has level {p.level}, expected 0..16")
        for c in self.connections:
            want = 1 if c.feedback else 2 ** (self.level(c.dst) - self.level(c.src))
            if c.stride != want or c.stride < 1:
                raise InputError(f"nas spec.connections: '{c.name}' joins level {self.level(c.src)} to level "
                                 f"{self.level(c.dst)} and needs stride {want}, got {c.stride}")
            if c.kernel < 1 or c.kernel % 2 == 0:
                raise InputError(f"nas spec.connections: '{c.name}' has kernel {c.kernel}, expected an odd size")

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def into(self, name: str, *, feedback: bool) -> list[Connection]:
        """Connections into ``name`` (forward or recurrent)."""
        return [c for c in self.connections if c.dst == name and c.feedback == feedback]

    def level(self, name: str) -> int:
        """Reductions between the input and population ``name`` (the input is level 0)."""
        return 0 if name == INPUT else self.population(name).level

    def spatial(self, name: str) -> tuple[int, int]:
        """(H, W) of population ``name``: each reduction halves, rounding up."""
        _, h, w = self.input_shape
        f = 2 ** self.level(name)
        return -(-h // f), -(-w // f)

    def channels(self, name: str) -> int:
        return self.input_shape[0] if name == INPUT else self.population(name).channels

    def signs(self, name: str) -> np.ndarray:
        return np.zeros(self.input_shape[0], dtype=np.int64) if name == INPUT else self.population(name).signs()

    def mask(self, conn: Connection) -> np.ndarray:
        """(C_out, C_in, K, K) 0/1 mask of the weights that exist."""
        m = np.zeros((self.channels(conn.dst), self.channels(conn.src), conn.kernel, conn.kernel))
        for o0, o1, i0, i1, k in conn.blocks:
            pad = (conn.kernel - k) // 2
            m[o0:o1, i0:i1, pad:pad + k, pad:pad + k] = 1
        return m

    @property
    def depth(self) -> int:
        """Number of connection stages from the input to the readout."""
        return max(p.depth for p in self.populations) + 1

    @property
    def pool(self) -> int:
        """The readout's average-pooling window (2 when the readout source is at least 2x2)."""
        h, w = self.spatial(self.readout_src)
        return 2 if h >= 2 and w >= 2 else 1

    def to_dict(self) -> dict:
        return {
            "input_shape": list(self.input_shape), "num_classes": self.num_classes,
            "populations": [{"name": p.name, "channels": p.channels, "depth": p.depth, "kind": p.kind,
                             "blocks": [list(b) for b in p.blocks], "source": p.source, "level": p.level}
                            for p in self.populations],
            "connections": [{"name": c.name, "src": c.src, "dst": c.dst, "kernel": c.kernel,
                             "blocks": [list(b) for b in c.blocks], "feedback": c.feedback, "relay": c.relay,
                             "stride": c.stride}
                            for c in self.connections],
            "readout_src": self.readout_src, "readout_block": list(self.readout_block),
            "neuron": self.neuron.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Wiring":
        pops = tuple(Population(name=str(p["name"]), channels=int(p["channels"]), depth=int(p["depth"]),
                                kind=str(p["kind"]), blocks=tuple((str(b[0]), int(b[1]), int(b[2]), int(b[3]))
                                                                  for b in p["blocks"]),
                                source=p.get("source"), level=int(p.get("level", 0))) for p in d["populations"])
        conns = tuple(Connection(name=str(c["name"]), src=str(c["src"]), dst=str(c["dst"]), kernel=int(c["kernel"]),
                                 blocks=tuple(tuple(int(v) for v in b) for b in c["blocks"]),
                                 feedback=bool(c["feedback"]), relay=bool(c["relay"]),
                                 stride=int(c.get("stride", 1))) for c in d["connections"])
        return cls(input_shape=tuple(d["input_shape"]), num_classes=int(d["num_classes"]), populations=pops,
                   connections=conns, readout_src=str(d["readout_src"]),
                   readout_block=tuple(int(v) for v in d["readout_block"]),
                   neuron=NeuronParams.from_dict(d["neuron"]))


def node_key(name: str) -> str:
    """The network node name of a population or connection (node names may not contain '.')."""
    return name.replace(".", "_").replace(">", "_to_").replace("@", "_at")


def readout_mask(wiring: Wiring) -> np.ndarray:
    """(classes, features) 0/1 mask of the readout: only the readout block's pooled channels."""
    h, w = wiring.spatial(wiring.readout_src)
    pool = wiring.pool
    src = wiring.population(wiring.readout_src)
    per_channel = (h // pool) * (w // pool)
    a, b = wiring.readout_block
    m = np.zeros((wiring.num_classes, src.channels * per_channel))
    m[:, a * per_channel:b * per_channel] = 1
    return m


def build(wiring: Wiring, *, seed: int | None = None, dt: float, feedback_scale: float = 0.5) -> Network:
    """The network of ``wiring``; initial weights from a ``torch.Generator`` seeded with ``seed``
    (None: torch's global RNG)."""
    generator = make_generator(seed)
    convs: dict[str, nn.Module] = {}
    for c in wiring.connections:
        if not c.relay:
            convs[c.name] = SignedConv(wiring.mask(c), wiring.signs(c.src),
                                       init_scale=feedback_scale if c.feedback else 1.0, stride=c.stride,
                                       generator=generator)
    nodes: list[tuple[str, nn.Module, tuple[str, ...]]] = []
    for p in wiring.populations:
        if p.kind == "relay":
            (c,) = wiring.into(p.name, feedback=False)
            nodes.append((node_key(p.name), Relay(), (node_key(c.src) if c.src != INPUT else INPUT,)))
            continue
        fwd = []
        for c in wiring.into(p.name, feedback=False):
            key = node_key(c.name)
            nodes.append((key, convs[c.name], (node_key(c.src) if c.src != INPUT else INPUT,)))
            fwd.append(key)
        norm = node_key(p.name) + "_norm"
        nodes.append((norm, PopulationNorm(p.channels), tuple(fwd)))
        rec = wiring.into(p.name, feedback=True)
        nodes.append((node_key(p.name), Neurons(wiring.neuron.cell(dt), convs[rec[0].name] if rec else None), (norm,)))
    nodes.append(("readout_pool", nn.AvgPool2d(wiring.pool) if wiring.pool > 1 else nn.Identity(),
                  (node_key(wiring.readout_src),)))
    nodes.append(("readout_flatten", nn.Flatten(), ("readout_pool",)))
    nodes.append(("readout_fc", MaskedLinear(readout_mask(wiring), generator=generator), ("readout_flatten",)))
    nodes.append((READOUT, Neurons(wiring.neuron.cell(dt)), ("readout_fc",)))
    return Network(nodes, input_shape=wiring.input_shape, dt=dt)


FAMILY = register(Family(name="nas", spec_type=Wiring, build=build,
                         description="MSE-NAS cell network: motif populations, signed masked convs, pooled readout"))
