"""The RDM fitness: the shared pass (every variant from one Gram matrix per layer) equals the per-variant
path; the label-aware Kendall tau-b equals scipy's."""

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from spikesmith.evolve.fitness import (CORRELATIONS, WORST, fitness_from_spikes, fitness_variants, kendall_binary,
                                       rdm_score)

PAIRS = [(v, m) for v in CORRELATIONS for m in ("hamming", "pearson")]


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
        alone = fitness_from_spikes(layers, None if CORRELATIONS[v] is None else labels, metric=m,
                                    correlation=CORRELATIONS[v] or "spearman")
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
    with pytest.raises(ValueError, match="variant"):
        fitness_variants(layers, labels, [("pearson", "hamming")])


@pytest.mark.parametrize("seed", range(6))
def test_kendall_tau_b_equals_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    values = rng.integers(0, 1 + int(rng.integers(1, 12)), n).astype(float)  # many ties
    if seed % 2:
        values = values + rng.normal(size=n)  # no ties
    target = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(float)
    expected = kendalltau(values, target).statistic
    got = kendall_binary(torch.tensor(values), torch.tensor(target))
    assert got == pytest.approx(expected, abs=1e-12)


def test_kendall_of_constant_input_is_zero_and_label_score_orders_class_structure():
    assert kendall_binary(torch.ones(10), torch.tensor([0.0, 1.0] * 5)) == 0.0
    assert kendall_binary(torch.arange(10.0), torch.ones(10)) == 0.0
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    same = (labels[:, None] == labels[None, :]).float()
    good = 1.0 - same + 0.05 * torch.rand(6, 6, generator=torch.Generator().manual_seed(0))
    bad = torch.rand(6, 6, generator=torch.Generator().manual_seed(1))
    # perfect separation: the tau-b bound for 3 same-class and 12 other pairs, n0 n1 / sqrt(P (P - ties)) = 0.585
    assert rdm_score(good, labels, correlation="kendall") == pytest.approx(36 / (105 * 36) ** 0.5)
    assert rdm_score(bad, labels, correlation="kendall") < 0.3
    with pytest.raises(ValueError, match="correlation"):
        rdm_score(good, labels, correlation="tau")
