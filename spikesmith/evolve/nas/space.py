"""The MSE-NAS integer genome: micro, meso and macro genes, repair, and decoding to an architecture.

Genome layout, per cell ``c = 1..cells`` (cell 0 is the stem, a conv-LIF layer on the input):

- ``c{c}.motif``: index into the motif library (meso scale);
- ``c{c}.feedback``: the feedback operation: 0 = off (feedback edges dropped), else the kernel
  size ``feedback_kernels[i - 1]`` of every feedback edge (micro scale);
- ``c{c}.k{e}``: kernel size of the motif's forward edge ``e`` (micro scale; genes beyond the
  motif's edge count are unused);
- ``c{c}.from{j}`` for ``j = 0..c-2``: 1 when cell ``j`` feeds cell ``c`` (macro scale). Cell
  ``c - 1`` always feeds cell ``c``.

:meth:`NasSpace.repair` makes a genome canonical: a cell with at least two earlier cells gets at
least two inputs (the nearest is added), at most ``max_inputs`` (the oldest are dropped), and
unused genes are set to 0, so genomes that decode to the same network are equal.

The space also fixes the skeleton's reduction cells (not genes): ``reductions`` lists the cells
that halve the resolution and multiply the channels by ``channel_growth`` (2, as in the DARTS-like
skeleton; 1 keeps them); None picks them from the input (see :meth:`NasSpace.reduction_cells`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from spikesmith.errors import InputError
from spikesmith.evolve.genome import Gene
from spikesmith.evolve.nas.motifs import LIBRARY, Motif


@dataclass(frozen=True, kw_only=True)
class CellSpec:
    """One decoded cell: its motif, kernel per forward edge, feedback kernel (None = off), input cells."""

    motif: str
    kernels: tuple[int, ...]
    feedback: int | None
    inputs: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class Architecture:
    """A decoded genome: the cells of the network (the stem is cell 0 and not listed)."""

    cells: tuple[CellSpec, ...]

    def to_dict(self) -> dict:
        """JSON-able form (see :meth:`from_dict`)."""
        return {"cells": [asdict(c) | {"kernels": list(c.kernels), "inputs": list(c.inputs)} for c in self.cells]}

    @classmethod
    def from_dict(cls, d: dict) -> "Architecture":
        """Inverse of :meth:`to_dict`."""
        try:
            cells = tuple(CellSpec(motif=str(c["motif"]), kernels=tuple(int(k) for k in c["kernels"]),
                                   feedback=None if c["feedback"] is None else int(c["feedback"]),
                                   inputs=tuple(int(i) for i in c["inputs"])) for c in d["cells"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"architecture: malformed description ({exc})") from None
        return cls(cells=cells)


@dataclass(frozen=True, kw_only=True)
class NasSpace:
    """The multi-scale search space: ``cells`` cells over a motif library."""

    cells: int = 3
    library: tuple[Motif, ...] = LIBRARY
    kernels: tuple[int, ...] = (3, 5)
    feedback_kernels: tuple[int, ...] = (1, 3)
    min_inputs: int = 2
    max_inputs: int = 4
    reductions: tuple[int, ...] | None = None
    channel_growth: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.cells <= 16:
            raise InputError(f"NAS space: cells must be in 1..16, got {self.cells}")
        if self.reductions is not None:
            try:
                red = tuple(int(c) for c in self.reductions)
            except (TypeError, ValueError):
                raise InputError(f"NAS space: reductions must be cell numbers, got {self.reductions!r}") from None
            if any(not 1 <= c <= self.cells for c in red) or list(red) != sorted(set(red)):
                raise InputError(f"NAS space: reductions must be increasing cell numbers in 1..{self.cells}, "
                                 f"got {list(red)}")
            object.__setattr__(self, "reductions", red)
        if isinstance(self.channel_growth, bool) or self.channel_growth not in (1, 2, 3, 4):
            raise InputError(f"NAS space: channel_growth must be 1..4, got {self.channel_growth!r}")
        if not self.library:
            raise InputError("NAS space: the motif library is empty")
        names = [m.name for m in self.library]
        if len(set(names)) != len(names):
            raise InputError(f"NAS space: motif names repeat in {names}")
        if not self.kernels or any(k < 1 or k % 2 == 0 for k in self.kernels + self.feedback_kernels):
            raise InputError("NAS space: kernel sizes must be odd and positive")
        if not 1 <= self.min_inputs <= self.max_inputs:
            raise InputError(f"NAS space: need 1 <= min_inputs <= max_inputs, got {self.min_inputs}, {self.max_inputs}")

    def reduction_cells(self, input_hw: tuple[int, int]) -> tuple[int, ...]:
        """The cells that halve the resolution (and double the channels) for an input of ``input_hw``.

        ``reductions`` when set; otherwise the DARTS-like skeleton's positions, cells
        ``cells // 3 + 1`` and ``2 * cells // 3 + 1`` (cells 3 and 5 of 6), for inputs of at least
        16x16, and none below (the 8x8 digits keep their full resolution).
        """
        if self.reductions is not None:
            return self.reductions
        if min(input_hw) < 16:
            return ()
        return tuple(sorted({self.cells // 3 + 1, 2 * self.cells // 3 + 1}))

    @property
    def max_edges(self) -> int:
        """Kernel genes per cell: the most forward edges any motif has."""
        return max(1, max(len(m.forward_edges) for m in self.library))

    @property
    def genes(self) -> tuple[Gene, ...]:
        out: list[Gene] = []
        for c in range(1, self.cells + 1):
            out.append(Gene(name=f"c{c}.motif", choices=tuple(m.name for m in self.library)))
            out.append(Gene(name=f"c{c}.feedback", choices=(None,) + tuple(self.feedback_kernels)))
            out += [Gene(name=f"c{c}.k{e}", choices=tuple(self.kernels)) for e in range(self.max_edges)]
            out += [Gene(name=f"c{c}.from{j}", choices=(0, 1)) for j in range(c - 1)]
        return tuple(out)

    @property
    def names(self) -> list[str]:
        return [g.name for g in self.genes]

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    @property
    def upper_bounds(self) -> np.ndarray:
        """Largest allowed value per gene."""
        return np.array([len(g.choices) - 1 for g in self.genes], dtype=np.int64)

    def validate(self, genome) -> tuple[int, ...]:
        """The genome as ints; raises InputError naming a wrong length or an out-of-range gene."""
        try:
            values = tuple(int(v) for v in np.asarray(genome).reshape(-1))
        except (TypeError, ValueError):
            raise InputError(f"genome {genome!r} is not a sequence of integers") from None
        genes = self.genes
        if len(values) != len(genes):
            raise InputError(f"genome has {len(values)} genes; this space ({self.cells} cells) expects {len(genes)}")
        for g, v in zip(genes, values):
            if not 0 <= v < len(g.choices):
                raise InputError(f"gene '{g.name}' = {v} is out of range 0..{len(g.choices) - 1}")
        return values

    def _index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def repair(self, genome) -> tuple[int, ...]:
        """The canonical genome decoding to the same network (input counts clamped, unused genes 0)."""
        g = list(self.validate(genome))
        at = self._index()
        for c in range(1, self.cells + 1):
            motif = self.library[g[at[f"c{c}.motif"]]]
            for e in range(len(motif.forward_edges), self.max_edges):
                g[at[f"c{c}.k{e}"]] = 0
            if not motif.feedback_edges:
                g[at[f"c{c}.feedback"]] = 0
            chosen = [j for j in range(c - 1) if g[at[f"c{c}.from{j}"]]]
            # cell c-1 always feeds cell c; count it against the limits
            need = min(self.min_inputs, c) - 1
            for j in range(c - 2, -1, -1):  # add the nearest missing ones
                if len(chosen) >= need:
                    break
                if j not in chosen:
                    chosen.append(j)
            chosen = sorted(chosen)[-(self.max_inputs - 1):] if self.max_inputs > 1 else []
            for j in range(c - 1):
                g[at[f"c{c}.from{j}"]] = int(j in chosen)
        return tuple(g)

    def is_canonical(self, genome) -> bool:
        """True when :meth:`repair` leaves the genome unchanged."""
        return self.repair(genome) == self.validate(genome)

    def decode(self, genome, *, strict: bool = False) -> Architecture:
        """The architecture of a genome (repaired first; ``strict`` raises InputError instead)."""
        values = self.validate(genome)
        fixed = self.repair(values)
        if strict and fixed != values:
            diff = [n for n, a, b in zip(self.names, values, fixed) if a != b]
            raise InputError(f"genome is not canonical: gene(s) {diff} violate the input limits or are unused")
        at = self._index()
        cells = []
        for c in range(1, self.cells + 1):
            motif = self.library[fixed[at[f"c{c}.motif"]]]
            kernels = tuple(self.kernels[fixed[at[f"c{c}.k{e}"]]] for e in range(len(motif.forward_edges)))
            fb = fixed[at[f"c{c}.feedback"]]
            inputs = tuple(j for j in range(c - 1) if fixed[at[f"c{c}.from{j}"]]) + (c - 1,)
            cells.append(CellSpec(motif=motif.name, kernels=kernels,
                                  feedback=self.feedback_kernels[fb - 1] if fb else None, inputs=inputs))
        return Architecture(cells=tuple(cells))

    def motif(self, name: str) -> Motif:
        """The library motif called ``name``."""
        for m in self.library:
            if m.name == name:
                return m
        raise InputError(f"motif '{name}' is not in the library ({', '.join(m.name for m in self.library)})")

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """A uniformly random canonical genome."""
        return self.repair([int(rng.integers(0, u + 1)) for u in self.upper_bounds])
