"""From an MSE-NAS architecture to its network: :func:`wire` resolves the motifs into populations and
connections (a :class:`~spikesmith.nn.families.nas.Wiring`, the ``nas`` family's spec), which
:mod:`spikesmith.nn` builds into a network.

- a stem population (conv on the analog input), then per cell one population per motif depth
  (the groups of one depth are channel blocks of one population), then a readout population;
- one forward connection per (source population, destination population) pair, masked to the
  motif's edges and sign-constrained per source channel (Dale's principle);
- one recurrent connection per population that has feedback edges (a self-loop, one step of delay);
- relay populations where a forward edge skips depths, so every forward path into a population
  crosses the same number of connections (what Lava needs);
- reduction cells (``space.reduction_cells``): from a reduction cell on, populations lie one level
  down (half the resolution, rounded up) with ``space.channel_growth`` times the channels per group;
  a cell's input connections from finer cells have stride ``s = 2**(level difference)`` and kernel
  ``max(macro_kernel, s + 1)`` (the smallest odd kernel >= s), so every input position reaches the
  coarser population.
"""

from __future__ import annotations

from spikesmith.errors import InputError
from spikesmith.evolve.nas.motifs import Motif
from spikesmith.evolve.nas.space import Architecture, NasSpace
from spikesmith.nn import DT, NeuronParams, build
from spikesmith.nn.families.nas import INPUT, READOUT, Connection, Population, Wiring, node_key
from spikesmith.nn.network import Network

__all__ = ["INPUT", "READOUT", "Connection", "Population", "Wiring", "build_nas_net", "node_key", "wire"]


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
    reductions = space.reduction_cells(input_shape[1:])
    level_of = [0] + [sum(1 for r in reductions if r <= c) for c in range(1, space.cells + 1)]
    base_channels = channels
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
        level = level_of[c]
        channels = base_channels * space.channel_growth ** level
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
                                    blocks=tuple(blocks), level=level)
        entry = place[0][0]
        for j in cell.inputs:
            src, a, b = outputs[j]
            stride = 2 ** (level - pops[src].level)
            k = macro_kernel if stride == 1 else max(macro_kernel, stride + 1)
            conns.append(Connection(name=f"c{c}.from{j}", src=src, dst=entry, kernel=k,
                                    blocks=((0, channels, a, b, k),), stride=stride))
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
                                        blocks=p.blocks, source=base, level=p.level)
                out.append(Connection(name=f"{name}.copy", src=src, dst=name, kernel=1,
                                      blocks=tuple((i, i + 1, i, i + 1, 1) for i in range(p.channels)),
                                      relay=True))
            src = name
        out.append(Connection(name=c.name, src=src, dst=c.dst, kernel=c.kernel, blocks=c.blocks,
                              feedback=c.feedback, stride=c.stride))
    return out


def build_nas_net(genome_or_arch, *, space: NasSpace, channels: int = 16, input_shape=(1, 8, 8),
                  num_classes: int = 10, dt: float = DT, seed: int | None = None) -> Network:
    """The untrained network of a genome (ints) or an Architecture; initial weights drawn from
    a ``torch.Generator`` seeded with ``seed`` (None: torch's global RNG)."""
    arch = genome_or_arch if isinstance(genome_or_arch, Architecture) else space.decode(genome_or_arch)
    return build(wire(arch, space=space, channels=channels, input_shape=input_shape, num_classes=num_classes),
                 seed=seed, dt=dt)
