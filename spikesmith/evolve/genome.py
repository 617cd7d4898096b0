"""Integer genomes over a declared search space, and their decoding to Norse phenotypes.

A :class:`SearchSpace` is an ordered set of named genes, each a tuple of allowed values.
A genome is a tuple of integer indices, one per gene; :meth:`SearchSpace.decode` turns
it into a dict of values and :func:`build_conv_snn` turns those into a network (the ``conv`` family).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from spikesmith.errors import InputError


@dataclass(frozen=True, kw_only=True)
class Gene:
    """A named gene: the genome stores an index into ``choices``."""

    name: str
    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError(f"gene '{self.name}' has no choices")


@dataclass(frozen=True, kw_only=True)
class SearchSpace:
    """An ordered collection of genes."""

    genes: tuple[Gene, ...]

    @property
    def names(self) -> list[str]:
        return [g.name for g in self.genes]

    @property
    def upper_bounds(self) -> np.ndarray:
        """Largest allowed index per gene."""
        return np.array([len(g.choices) - 1 for g in self.genes], dtype=np.int64)

    def size(self) -> int:
        """Number of distinct genomes."""
        return int(np.prod([len(g.choices) for g in self.genes], dtype=np.float64))

    def validate(self, genome) -> tuple[int, ...]:
        """The genome as a tuple of ints; raises InputError naming the bad gene."""
        values = tuple(int(v) for v in genome)
        if len(values) != len(self.genes):
            raise InputError(f"genome has {len(values)} genes, the search space expects {len(self.genes)} ({self.names})")
        for gene, v in zip(self.genes, values):
            if not 0 <= v < len(gene.choices):
                raise InputError(f"gene '{gene.name}' = {v} is out of range 0..{len(gene.choices) - 1}")
        return values

    def decode(self, genome) -> dict[str, Any]:
        """Gene name -> chosen value."""
        values = self.validate(genome)
        return {g.name: g.choices[v] for g, v in zip(self.genes, values)}

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        """A uniformly random genome."""
        return tuple(int(rng.integers(0, len(g.choices))) for g in self.genes)

    def mutate(self, genome, rng: np.random.Generator, *, rate: float | None = None) -> tuple[int, ...]:
        """Resample each gene with probability ``rate`` (default 1/n_genes, at least one gene changes)."""
        values = list(self.validate(genome))
        p = rate if rate is not None else 1.0 / len(values)
        flip = rng.random(len(values)) < p
        if not flip.any():
            flip[rng.integers(0, len(values))] = True
        for i in np.flatnonzero(flip):
            n = len(self.genes[i].choices)
            if n > 1:
                values[i] = int((values[i] + rng.integers(1, n)) % n)
        return tuple(values)


#: the slice's conv-SNN search space: two conv stages, an optional hidden layer, neuron constants
CONV_SPACE = SearchSpace(
    genes=(
        Gene(name="c1", choices=(8, 12, 16, 24)),
        Gene(name="c2", choices=(16, 24, 32, 48)),
        Gene(name="hidden", choices=(0, 64, 128)),
        Gene(name="tau_steps", choices=(2.0, 3.0, 5.0)),
        Gene(name="v_th", choices=(0.5, 1.0)),
    )
)


def build_conv_snn(values: dict[str, Any], *, input_shape: tuple[int, ...], num_classes: int,
                   seed: int | None = None):
    """The conv SNN (family ``conv``, :mod:`spikesmith.nn.families.conv`) of gene ``values``."""
    from spikesmith.nn import build
    from spikesmith.nn.families.conv import ConvSpec

    return build(ConvSpec.from_values(values, input_shape=input_shape, num_classes=num_classes), seed=seed)
