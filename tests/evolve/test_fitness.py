"""The RDM fitness's shared pass: every variant from one Gram matrix per layer equals the per-variant path."""

import pytest
import torch

from spikesmith.evolve.fitness import WORST, fitness_from_spikes, fitness_variants

PAIRS = [(v, m) for v in ("label", "free") for m in ("hamming", "pearson")]


def _layers(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (12,), generator=g)
    proto = torch.rand(4, 30, generator=g)
    clean = (torch.rand(5, 12, 30, generator=g) < proto[labels]).float()
    other = (torch.rand(5, 12, 2, 3, 3, generator=g) < 0.3).float()
    silent = torch.zeros(5, 12, 7)
    return [clean, other, silent], labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shared_pass_equals_each_variant_alone(seed):
    layers, labels = _layers(seed)
    shared = fitness_variants(layers, labels, PAIRS)
    for v, m in PAIRS:
        alone = fitness_from_spikes(layers, labels if v == "label" else None, metric=m)
        got = shared[(v, m)]
        assert got.degenerate is alone.degenerate is False
        assert got.score == pytest.approx(alone.score, rel=1e-9, abs=1e-12), (v, m)
        assert got.firing_rates == alone.firing_rates and got.spike_count == alone.spike_count
        assert (got.variant, got.metric) == (v, m)


def test_shared_pass_degenerate_and_bad_metric():
    labels = torch.arange(4)
    out = fitness_variants([torch.zeros(3, 4, 10)], labels, PAIRS)
    assert all(f.score == WORST and f.degenerate for f in out.values())
    layers, labels = _layers(0)
    with pytest.raises(ValueError, match="metric"):
        fitness_variants(layers, labels, [("free", "cosine")])
    with pytest.raises(ValueError, match="labels"):
        fitness_variants(layers, None, [("label", "hamming")])
