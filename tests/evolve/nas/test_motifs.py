import pytest

from spikesmith.errors import InputError
from spikesmith.evolve.nas.motifs import LIBRARY, Motif, MotifEdge, extend_library

REQUIRED = {"empty", "ff_excitation", "ff_inhibition", "feedback_inhibition", "lateral_inhibition", "mixed"}


def test_library_has_the_required_motifs_with_both_signs():
    names = {m.name for m in LIBRARY}
    assert REQUIRED <= names
    by = {m.name: m for m in LIBRARY}
    assert by["ff_inhibition"].depths() == (0, 1, 2)
    assert by["feedback_inhibition"].feedback_edges and "I" in by["feedback_inhibition"].groups
    assert "I" in by["mixed"].groups and by["mixed"].feedback_edges
    assert by["empty"].edges == ()


def test_sign_follows_the_source_group():
    m = {m.name: m for m in LIBRARY}["ff_inhibition"]
    assert m.sign(0) == 1 and m.sign(1) == -1


@pytest.mark.parametrize("kwargs, message", [
    (dict(groups=("I",)), "entry"),
    (dict(groups=("E", "I")), "output group"),
    (dict(groups=("E", "E"), edges=()), "no forward input"),
    (dict(groups=("E", "E", "E"), edges=(MotifEdge(src=0, dst=1), MotifEdge(src=1, dst=2), MotifEdge(src=2, dst=1))),
     "cycle"),
    (dict(groups=("E", "E", "I"), edges=(MotifEdge(src=0, dst=1), MotifEdge(src=1, dst=2),
                                         MotifEdge(src=2, dst=1, feedback=True)), output=1), "feedback edge 2->1"),
    (dict(groups=("E", "X")), "'E' or 'I'"),
])
def test_invalid_motifs_are_rejected_with_a_reason(kwargs, message):
    with pytest.raises(InputError, match=message):
        Motif(name="bad", **kwargs)


def test_library_is_extendable_and_names_unique():
    extra = Motif(name="chain3", groups=("E", "E", "E"), edges=(MotifEdge(src=0, dst=1), MotifEdge(src=1, dst=2)))
    lib = extend_library(extra)
    assert lib[-1] is extra and len(lib) == len(LIBRARY) + 1
    with pytest.raises(InputError, match="more than once"):
        extend_library(LIBRARY[0])
