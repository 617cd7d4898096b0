import numpy as np
import pytest

from spikesmith.errors import InputError
from spikesmith.evolve.nas.motifs import Motif, MotifEdge, extend_library
from spikesmith.evolve.nas.space import Architecture, NasSpace


def test_genome_layout_covers_three_scales():
    sp = NasSpace(cells=4)
    names = sp.names
    assert "c1.motif" in names and "c1.feedback" in names and "c1.k0" in names
    assert "c3.from0" in names and "c4.from2" in names and "c1.from0" not in names
    assert sp.n_genes == len(sp.upper_bounds)


def test_repair_clamps_macro_inputs_between_two_and_four():
    sp = NasSpace(cells=5)
    at = {n: i for i, n in enumerate(sp.names)}
    g = np.zeros(sp.n_genes, dtype=int)
    for j in range(4):
        g[at[f"c5.from{j}"]] = 1  # five inputs with cell 4
    arch = sp.decode(g)
    assert arch.cells[4].inputs == (1, 2, 3, 4)  # the oldest dropped
    assert arch.cells[2].inputs == (1, 2)  # no macro bit set: the nearest added
    assert arch.cells[0].inputs == (0,)  # only the stem exists
    assert all(2 <= len(c.inputs) <= 4 for c in arch.cells[1:])
    with pytest.raises(InputError, match="not canonical"):
        sp.decode(g, strict=True)
    fixed = sp.repair(g)
    assert sp.decode(fixed, strict=True) == arch and sp.repair(fixed) == fixed


def test_decode_is_deterministic_and_round_trips_through_dict():
    sp = NasSpace(cells=3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = sp.sample(rng)
        a = sp.decode(g)
        assert a == sp.decode(list(g))
        assert Architecture.from_dict(a.to_dict()) == a
        for cell in a.cells:
            assert len(cell.kernels) == len(sp.motif(cell.motif).forward_edges)


def test_out_of_range_and_wrong_length_genomes_are_rejected():
    sp = NasSpace(cells=2)
    with pytest.raises(InputError, match="genes"):
        sp.decode([0, 0])
    g = [0] * sp.n_genes
    g[0] = 99
    with pytest.raises(InputError, match="c1.motif"):
        sp.decode(g)


def test_space_uses_an_extended_library():
    extra = Motif(name="chain3", groups=("E", "E", "E"), edges=(MotifEdge(src=0, dst=1), MotifEdge(src=1, dst=2)))
    sp = NasSpace(cells=1, library=extend_library(extra))
    g = [0] * sp.n_genes
    g[0] = len(sp.library) - 1
    assert sp.decode(g).cells[0].motif == "chain3"
