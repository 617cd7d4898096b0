"""Circuit motifs as data: small DAGs of excitatory/inhibitory neuron groups with signed edges.

A :class:`Motif` lists its neuron groups ("E" excitatory, "I" inhibitory) and its edges.
Dale's principle: an edge's sign is its source group's type (E -> weights >= 0, I -> <= 0).
Group 0 is the entry (it receives the cell's inputs); ``output`` is the group other cells
and the readout see. Forward edges act within one time step; feedback edges deliver the
previous step's spikes (one step of delay).

Feedback edges must join groups of equal depth (longest forward path from the entry): the
groups of one depth form one neuron population on export, so every feedback edge becomes
part of that population's own recurrent connection, which every target (Norse reference,
Lava) delays by exactly one step. A feedback edge across depths would need a different
delay on Lava, so :class:`Motif` rejects it.

The library is a plain tuple: extend it with :func:`extend_library` and pass it to the
search space.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikesmith.errors import InputError


@dataclass(frozen=True, kw_only=True)
class MotifEdge:
    """An edge from group ``src`` to group ``dst``; ``feedback`` edges carry one step of delay."""

    src: int
    dst: int
    feedback: bool = False


@dataclass(frozen=True, kw_only=True)
class Motif:
    """A circuit motif: neuron groups (``"E"``/``"I"``), edges, and the output group."""

    name: str
    groups: tuple[str, ...]
    edges: tuple[MotifEdge, ...] = ()
    output: int | None = None  # None: the last group
    description: str = ""

    def __post_init__(self) -> None:
        n = len(self.groups)
        where = f"motif '{self.name}'"
        if n == 0:
            raise InputError(f"{where}: needs at least one group")
        bad = [g for g in self.groups if g not in ("E", "I")]
        if bad:
            raise InputError(f"{where}: group types must be 'E' or 'I', got {bad}")
        if self.groups[0] != "E":
            raise InputError(f"{where}: group 0 (the entry) must be excitatory 'E'")
        out = self.out
        if not 0 <= out < n or self.groups[out] != "E":
            raise InputError(f"{where}: output group {out} must exist and be excitatory 'E'")
        seen = set()
        for e in self.edges:
            if not (0 <= e.src < n and 0 <= e.dst < n):
                raise InputError(f"{where}: edge {e.src}->{e.dst} names a group outside 0..{n - 1}")
            if (e.src, e.dst, e.feedback) in seen:
                raise InputError(f"{where}: edge {e.src}->{e.dst} is listed twice")
            seen.add((e.src, e.dst, e.feedback))
            if not e.feedback and (e.dst == 0 or e.src == e.dst):
                raise InputError(f"{where}: forward edge {e.src}->{e.dst} may not enter the entry group or loop")
        depth = self.depths()  # raises on cycles / unreachable groups
        for e in self.feedback_edges:
            if depth[e.src] != depth[e.dst]:
                raise InputError(
                    f"{where}: feedback edge {e.src}->{e.dst} joins depths {depth[e.src]} and {depth[e.dst]}; "
                    "feedback must stay within one depth (one-step delay on every target)"
                )

    @property
    def out(self) -> int:
        """Index of the output group."""
        return len(self.groups) - 1 if self.output is None else int(self.output)

    @property
    def forward_edges(self) -> tuple[MotifEdge, ...]:
        return tuple(e for e in self.edges if not e.feedback)

    @property
    def feedback_edges(self) -> tuple[MotifEdge, ...]:
        return tuple(e for e in self.edges if e.feedback)

    def depths(self) -> tuple[int, ...]:
        """Longest forward path from group 0 to every group; raises InputError on cycles or unreachable groups."""
        n = len(self.groups)
        depth: list[int | None] = [None] * n
        depth[0] = 0
        fwd = self.forward_edges
        for _ in range(n):  # Bellman-Ford style longest path in a DAG: at most n rounds
            changed = False
            for e in fwd:
                if depth[e.src] is not None and (depth[e.dst] is None or depth[e.dst] < depth[e.src] + 1):
                    depth[e.dst] = depth[e.src] + 1
                    changed = True
            if not changed:
                break
        else:
            raise InputError(f"motif '{self.name}': forward edges contain a cycle")
        missing = [i for i, d in enumerate(depth) if d is None]
        if missing:
            raise InputError(f"motif '{self.name}': group(s) {missing} get no forward input from the entry")
        if max(depth) >= n:
            raise InputError(f"motif '{self.name}': forward edges contain a cycle")
        return tuple(int(d) for d in depth)

    def sign(self, group: int) -> int:
        """+1 for an excitatory group, -1 for an inhibitory one (the sign of its outgoing weights)."""
        return 1 if self.groups[group] == "E" else -1


E = MotifEdge


def _fb(src: int, dst: int) -> MotifEdge:
    return MotifEdge(src=src, dst=dst, feedback=True)


#: the shipped motifs; group 0 is the entry, the output is the last group unless stated
LIBRARY: tuple[Motif, ...] = (
    Motif(name="empty", groups=("E",), description="the entry group alone (identity cell)"),
    Motif(name="ff_excitation", groups=("E", "E"), edges=(E(src=0, dst=1),),
          description="entry excites a second excitatory group"),
    Motif(name="ff_inhibition", groups=("E", "I", "E"),
          edges=(E(src=0, dst=1), E(src=0, dst=2), E(src=1, dst=2)),
          description="entry excites an output group directly and inhibits it through an interneuron group"),
    Motif(name="feedback_inhibition", groups=("E", "E", "I"),
          edges=(E(src=0, dst=1), E(src=0, dst=2), _fb(1, 2), _fb(2, 1)), output=1,
          description="the output group drives an inhibitory group that inhibits it back one step later"),
    Motif(name="lateral_inhibition", groups=("E", "E", "E", "I", "E"),
          edges=(E(src=0, dst=1), E(src=0, dst=2), E(src=0, dst=3), _fb(1, 3), _fb(2, 3), _fb(3, 1), _fb(3, 2),
                 E(src=1, dst=4), E(src=2, dst=4)),
          description="two sibling excitatory groups compete through a shared inhibitory pool; both feed the output"),
    Motif(name="mixed", groups=("E", "E", "I", "E", "I"),
          edges=(E(src=0, dst=1), E(src=0, dst=2), E(src=1, dst=3), E(src=2, dst=3), E(src=1, dst=4),
                 _fb(3, 4), _fb(4, 3)),
          output=3,
          description="feed-forward excitation and inhibition into the output group, plus its feedback inhibition"),
)


def extend_library(*motifs: Motif, base: tuple[Motif, ...] = LIBRARY) -> tuple[Motif, ...]:
    """``base`` followed by ``motifs``; raises InputError on a repeated name."""
    names = [m.name for m in base + motifs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"motif library: name(s) {dup} appear more than once")
    return tuple(base) + tuple(motifs)
