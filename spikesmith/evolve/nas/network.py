"""The phenotype of an MSE-NAS architecture: a non-sequential Norse network with sign-constrained weights.

:func:`wire` turns an :class:`~spikesmith.evolve.nas.space.Architecture` into populations and
connections (:class:`Wiring`), pure data shared by the torch module and the NIR exporter:

- a stem population (conv on the analog input), then per cell one population per motif depth
  (the groups of one depth are channel blocks of one population), then a readout population;
- one forward connection (a conv) per (source population, destination population) pair, its
  weight masked to the motif's edges (a 3x3 edge inside a 5x5 connection is zero outside the
  centre) and sign-constrained per source channel (Dale's principle);
- one recurrent connection per population that has feedback edges (a self-loop, one step of delay);
- relay populations where a forward edge skips depths, so every forward path into a population
  crosses the same number of connections (what Lava needs); a relay copies its source's spikes
  exactly (tau = dt, threshold half a spike).

Within one time step populations run in depth order; each population's forward drive is computed
for all steps at once (time merged into the batch), then batch-normalised (statistics of the
forward drive only, scale kept positive so signs survive folding), then the neurons step through
time adding the recurrent input from the previous step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spikesmith.errors import InputError
from spikesmith.evolve.nas.motifs import Motif
from spikesmith.evolve.nas.space import Architecture, NasSpace
from spikesmith.nn import DT, NeuronParams

INPUT = "input"
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


@dataclass(frozen=True, kw_only=True)
class Wiring:
    """Populations in evaluation order, connections, and where the readout reads from."""

    input_shape: tuple[int, int, int]
    num_classes: int
    populations: tuple[Population, ...]
    connections: tuple[Connection, ...]
    readout_src: str
    readout_block: tuple[int, int]
    neuron: NeuronParams = field(default_factory=lambda: NeuronParams(tau_steps=2.0, v_th=0.5))

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def into(self, name: str, *, feedback: bool) -> list[Connection]:
        """Connections into ``name`` (forward or recurrent)."""
        return [c for c in self.connections if c.dst == name and c.feedback == feedback]

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


def _prune(motif: Motif, feedback_on: bool) -> tuple[list[int], list, list]:
    """Groups that reach the output through the active edges, and those edges."""
    fwd = list(motif.forward_edges)
    fb = list(motif.feedback_edges) if feedback_on else []
    keep = {motif.out}
    changed = True
    while changed:
        changed = False
        for e in fwd + fb:
            if e.dst in keep and e.src not in keep:
                keep.add(e.src)
                changed = True
    keep.add(0)
    groups = sorted(keep)
    fwd = [e for e in fwd if e.src in keep and e.dst in keep]
    fb = [e for e in fb if e.src in keep and e.dst in keep]
    return groups, fwd, fb


def wire(arch: Architecture, *, space: NasSpace, channels: int = 16, input_shape=(1, 8, 8),
         num_classes: int = 10, stem_kernel: int = 3, macro_kernel: int = 1,
         neuron: NeuronParams | None = None) -> Wiring:
    """Populations and connections of ``arch`` (see the module docstring); deterministic."""
    if channels < 1:
        raise InputError(f"channels must be >= 1, got {channels}")
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3:
        raise InputError(f"MSE-NAS networks take (C, H, W) inputs, got input shape {input_shape}")
    if len(arch.cells) != space.cells:
        raise InputError(f"architecture has {len(arch.cells)} cells, the space {space.cells}")
    pops: dict[str, Population] = {}
    conns: list[Connection] = []
    pops["stem"] = Population(name="stem", channels=channels, depth=1, blocks=(("stem", 1, 0, channels),))
    conns.append(Connection(name="stem.conv", src=INPUT, dst="stem", kernel=stem_kernel,
                            blocks=((0, channels, 0, input_shape[0], stem_kernel),)))
    outputs: list[tuple[str, int, int]] = [("stem", 0, channels)]  # per cell: (population, block)
    for c, cell in enumerate(arch.cells, start=1):
        motif = space.motif(cell.motif)
        if len(cell.kernels) != len(motif.forward_edges):
            raise InputError(f"cell {c}: motif '{motif.name}' has {len(motif.forward_edges)} forward edges, "
                             f"got {len(cell.kernels)} kernel sizes")
        bad = [j for j in cell.inputs if not 0 <= j < c]
        if bad or not cell.inputs:
            raise InputError(f"cell {c}: inputs {list(cell.inputs)} must be earlier cells 0..{c - 1}")
        kernel_of = {(e.src, e.dst): k for e, k in zip(motif.forward_edges, cell.kernels)}
        groups, fwd, fb = _prune(motif, cell.feedback is not None)
        sub = Motif(name=motif.name, groups=tuple(motif.groups[g] for g in groups),
                    edges=tuple(type(e)(src=groups.index(e.src), dst=groups.index(e.dst), feedback=e.feedback)
                                for e in fwd + fb), output=groups.index(motif.out))
        local = sub.depths()
        entry_depth = max(pops[outputs[j][0]].depth for j in cell.inputs) + 1
        # channel block of every kept group inside its depth's population
        place: dict[int, tuple[str, int]] = {}
        for d in sorted(set(local)):
            members = [g for g in range(len(groups)) if local[g] == d]
            name = f"c{c}.d{d}"
            blocks = []
            for i, g in enumerate(members):
                place[g] = (name, i * channels)
                blocks.append((f"c{c}.g{groups[g]}{sub.groups[g]}", sub.sign(g), i * channels, (i + 1) * channels))
            pops[name] = Population(name=name, channels=len(members) * channels, depth=entry_depth + d,
                                    blocks=tuple(blocks))
        entry = place[0][0]
        for j in cell.inputs:
            src, a, b = outputs[j]
            conns.append(Connection(name=f"c{c}.from{j}", src=src, dst=entry, kernel=macro_kernel,
                                    blocks=((0, channels, a, b, macro_kernel),)))
        # forward edges grouped by population pair, feedback edges per population
        pairs: dict[tuple[str, str], list] = {}
        for e in fwd:
            (sp, so), (dp, do) = place[groups.index(e.src)], place[groups.index(e.dst)]
            k = kernel_of[(e.src, e.dst)]
            pairs.setdefault((sp, dp), []).append((do, do + channels, so, so + channels, k))
        for (sp, dp), blocks in pairs.items():
            conns.append(Connection(name=f"{sp}>{dp.split('.')[-1]}", src=sp, dst=dp,
                                    kernel=max(b[-1] for b in blocks), blocks=tuple(blocks)))
        loops: dict[str, list] = {}
        for e in fb:
            (sp, so), (dp, do) = place[groups.index(e.src)], place[groups.index(e.dst)]
            loops.setdefault(sp, []).append((do, do + channels, so, so + channels, int(cell.feedback)))
        for p, blocks in loops.items():
            conns.append(Connection(name=f"{p}.fb", src=p, dst=p, kernel=max(b[-1] for b in blocks),
                                    blocks=tuple(blocks), feedback=True))
        op, oo = place[sub.out]
        outputs.append((op, oo, oo + channels))
    conns = _relay(pops, conns)
    order = sorted(pops.values(), key=lambda p: (p.depth, list(pops).index(p.name)))
    src, a, b = outputs[-1]
    return Wiring(input_shape=input_shape, num_classes=int(num_classes), populations=tuple(order),
                  connections=tuple(conns), readout_src=src, readout_block=(a, b),
                  neuron=neuron or NeuronParams(tau_steps=2.0, v_th=0.5))


def _relay(pops: dict[str, Population], conns: list[Connection]) -> list[Connection]:
    """Route forward connections that skip depths through relay populations (shared per source)."""
    out = []
    for c in conns:
        if c.feedback or c.src == INPUT:
            out.append(c)
            continue
        src = c.src
        while pops[c.dst].depth - pops[src].depth > 1:
            d = pops[src].depth + 1
            base = pops[src].source or src
            name = f"{base}@{d}"
            if name not in pops:
                p = pops[src]
                pops[name] = Population(name=name, channels=p.channels, depth=d, kind="relay",
                                        blocks=p.blocks, source=base)
                out.append(Connection(name=f"{name}.copy", src=src, dst=name, kernel=1,
                                      blocks=tuple((i, i + 1, i, i + 1, 1) for i in range(p.channels)),
                                      relay=True))
            src = name
        out.append(Connection(name=c.name, src=src, dst=c.dst, kernel=c.kernel, blocks=c.blocks,
                              feedback=c.feedback))
    return out


class SignedConv(nn.Module):
    """A masked conv whose weights from excitatory channels are >= 0 and from inhibitory ones <= 0.

    weight = |raw| * sign (per input channel) * mask; unconstrained (sign 0) channels use raw.
    """

    def __init__(self, mask: np.ndarray, signs: np.ndarray, *, init_scale: float = 1.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.float32))
        self.register_buffer("sign", torch.as_tensor(signs, dtype=torch.float32).reshape(1, -1, 1, 1))
        fan_in = self.mask.sum(dim=(1, 2, 3)).clamp_min(1.0).reshape(-1, 1, 1, 1)
        bound = init_scale * torch.sqrt(3.0 / fan_in)  # uniform with variance 1/fan_in
        self.raw = nn.Parameter((torch.rand(self.mask.shape, generator=generator) * 2 - 1) * bound)
        self.padding = mask.shape[-1] // 2

    def weight(self) -> torch.Tensor:
        """The effective (C_out, C_in, K, K) weight."""
        w = torch.where(self.sign == 0, self.raw, self.raw.abs() * self.sign)
        return w * self.mask

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return F.conv2d(s, self.weight(), padding=self.padding)

    def num_parameters(self) -> int:
        return int(self.mask.sum())


class PopulationNorm(nn.Module):
    """Batch norm of a population's forward drive with a positive per-channel gain (exp) and a bias."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.log_gain = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.bn(h) * self.log_gain.exp()[:, None, None] + self.bias[:, None, None]

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) with norm(h) = a * h + b per channel, from the running statistics (eval mode)."""
        a = self.log_gain.exp() / torch.sqrt(self.bn.running_var + self.bn.eps)
        return a, self.bias - self.bn.running_mean * a


class NasNet(nn.Module):
    """Time-first torch module of a :class:`Wiring`: input (T, B, C, H, W) -> readout spikes (T, B, classes)."""

    def __init__(self, wiring: Wiring, *, dt: float = DT, feedback_scale: float = 0.5,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.wiring = wiring
        self.dt = float(dt)
        self.input_shape = tuple(wiring.input_shape)
        self.convs = nn.ModuleDict()
        self.norms = nn.ModuleDict()
        for c in wiring.connections:
            if c.relay:
                continue
            self.convs[_key(c.name)] = SignedConv(wiring.mask(c), wiring.signs(c.src),
                                                  init_scale=feedback_scale if c.feedback else 1.0,
                                                  generator=generator)
        for p in wiring.populations:
            if p.kind == "lif":
                self.norms[_key(p.name)] = PopulationNorm(p.channels)
        self.cell = wiring.neuron.cell(dt)
        _, h, w = wiring.input_shape
        self.pool = 2 if h >= 2 and w >= 2 else 1
        a, b = wiring.readout_block
        self.readout = nn.Linear((b - a) * (h // self.pool) * (w // self.pool), wiring.num_classes)
        with torch.no_grad():  # nn.Linear's default range, drawn from ``generator`` (thread-safe, no global RNG)
            bound = 1.0 / np.sqrt(self.readout.in_features)
            self.readout.weight.copy_((torch.rand(self.readout.weight.shape, generator=generator) * 2 - 1) * bound)
            self.readout.bias.copy_((torch.rand(self.readout.bias.shape, generator=generator) * 2 - 1) * bound)

    def conv(self, c: Connection) -> SignedConv:
        return self.convs[_key(c.name)]

    def readout_drive(self, s: torch.Tensor) -> torch.Tensor:
        """Readout input current from the readout source's spikes (N, C, H, W) -> (N, classes)."""
        a, b = self.wiring.readout_block
        h = s[:, a:b]
        if self.pool > 1:
            h = F.avg_pool2d(h, self.pool)
        return self.readout(h.flatten(1))

    def _step(self, drive: torch.Tensor, rec: SignedConv | None) -> torch.Tensor:
        state, zs = None, []
        for t in range(drive.shape[0]):
            d = drive[t]
            if rec is not None and zs:
                d = d + rec(zs[-1])
            z, state = self.cell(d, state)
            zs.append(z)
        return torch.stack(zs)

    def forward(self, x: torch.Tensor, *, record: bool = False):
        """Readout spikes (T, B, classes) for ``x`` (T, B, C, H, W); with ``record`` also a dict
        population name -> spikes (T, B, C, H, W), relays left out, readout included."""
        if x.dim() != 5 or tuple(x.shape[2:]) != self.input_shape:
            raise InputError(f"expected input (T, B, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}")
        steps, batch = x.shape[:2]
        spikes: dict[str, torch.Tensor] = {INPUT: x}
        for p in self.wiring.populations:
            if p.kind == "relay":
                spikes[p.name] = spikes[p.source]
                continue
            drive = None
            for c in self.wiring.into(p.name, feedback=False):
                s = spikes[c.src]
                h = self.conv(c)(s.reshape(steps * batch, *s.shape[2:]))
                drive = h if drive is None else drive + h
            drive = self.norms[_key(p.name)](drive)
            rec = self.wiring.into(p.name, feedback=True)
            spikes[p.name] = self._step(drive.reshape(steps, batch, *drive.shape[1:]),
                                        self.conv(rec[0]) if rec else None)
        s = spikes[self.wiring.readout_src]
        out = self._step(self.readout_drive(s.reshape(steps * batch, *s.shape[2:])).reshape(steps, batch, -1), None)
        if not record:
            return out
        rec_spikes = {p.name: spikes[p.name] for p in self.wiring.populations if p.kind == "lif"}
        rec_spikes[READOUT] = out
        return out, rec_spikes

    def num_parameters(self) -> int:
        """Trainable parameters that exist (masked-out weights not counted)."""
        n = sum(m.num_parameters() for m in self.convs.values())
        n += sum(p.log_gain.numel() + p.bias.numel() for p in self.norms.values())
        return n + sum(p.numel() for p in self.readout.parameters())

    def synaptic_operations(self, spikes: dict[str, torch.Tensor]) -> float:
        """Estimated synaptic operations per sample: spikes of each source x its fan-out (border effects
        ignored), from the recorded spikes of :meth:`forward` (relays count their copies)."""
        total = 0.0
        for c in self.wiring.connections:
            if c.src == INPUT:
                continue  # analog input: multiply-accumulates, not spike-driven
            pop = self.wiring.population(c.src)
            s = spikes[pop.source or c.src]
            per_channel = s.float().sum(dim=(0, 3, 4)).mean(0)  # (C_in,)
            fan_out = torch.as_tensor(self.wiring.mask(c).sum(axis=(0, 2, 3)), dtype=per_channel.dtype)
            total += float(per_channel @ fan_out)
        a, b = self.wiring.readout_block
        s = spikes[self.wiring.readout_src][:, :, a:b]
        total += float(s.float().sum(dim=(0, 2, 3, 4)).mean()) * self.wiring.num_classes
        return total


def _key(name: str) -> str:
    # ModuleDict keys may not contain '.'
    return name.replace(".", "_").replace(">", "_to_").replace("@", "_at")


def build_nas_net(genome_or_arch, *, space: NasSpace, channels: int = 16, input_shape=(1, 8, 8),
                  num_classes: int = 10, dt: float = DT, seed: int | None = None) -> NasNet:
    """The untrained :class:`NasNet` of a genome (ints) or an Architecture; initial weights drawn from
    a ``torch.Generator`` seeded with ``seed`` (None: torch's global RNG)."""
    generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    arch = genome_or_arch if isinstance(genome_or_arch, Architecture) else space.decode(genome_or_arch)
    return NasNet(wire(arch, space=space, channels=channels, input_shape=input_shape, num_classes=num_classes),
                  dt=dt, generator=generator)
