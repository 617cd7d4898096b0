import numpy as np
import pytest
import torch

from spikesmith.evolve.fitness import WORST, fitness_from_spikes, mean_fitness
from spikesmith.evolve.nas.problem import EvalContext, evaluate_genome, network_seed, objectives
from spikesmith.evolve.nas.space import NasSpace

from conftest import genome_with


def _ctx(digits_batch, **kw):
    x, y = digits_batch
    return EvalContext(space=NasSpace(cells=2), batches=((x.numpy(), y.numpy()),), channels=4, **kw)


def test_label_aware_score_prefers_class_separating_spikes():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    gen = torch.Generator().manual_seed(0)
    proto = (torch.rand(1, 3, 40, generator=gen) > 0.5).float()
    clean = proto[:, labels].repeat(2, 1, 1)  # (T=2, B=6, 40): same class -> same spikes
    noisy = (torch.rand(2, 6, 40, generator=gen) > 0.5).float()
    for metric in ("hamming", "pearson"):
        good = fitness_from_spikes([clean], labels, metric=metric)
        bad = fitness_from_spikes([noisy], labels, metric=metric)
        assert good.score > 0.6 and bad.score < 0.4  # Spearman against a 0/1 target tops out below 1
    assert fitness_from_spikes([noisy]).score > fitness_from_spikes([clean[:, :1].expand(2, 6, 40)]).score


def test_silent_or_saturated_spikes_score_worst():
    labels = torch.tensor([0, 1, 0, 1])
    assert fitness_from_spikes([torch.zeros(3, 4, 10)], labels).score == WORST
    gen = torch.Generator().manual_seed(0)
    half = (torch.rand(3, 4, 10, generator=gen) > 0.5).float()
    assert fitness_from_spikes([torch.ones(3, 4, 10), half], labels).degenerate
    parts = [fitness_from_spikes([half], labels), fitness_from_spikes([torch.zeros(3, 4, 10)], labels)]
    assert mean_fitness(parts).score == WORST


def test_evaluate_genome_is_a_pure_function_of_genome_and_context(digits_batch):
    ctx = _ctx(digits_batch, all_variants=True)
    g = genome_with(ctx.space, ["feedback_inhibition", "ff_inhibition"])
    a, b = evaluate_genome(g, ctx), evaluate_genome(list(g), ctx)
    a.pop("seconds"), b.pop("seconds")
    assert a == b
    assert set(a["scores"]) == {f"{v}.{m}" for v in ("label", "label-kendall", "free") for m in ("hamming", "pearson")}
    assert a["score"] == a["scores"]["label.hamming"] and not a["degenerate"]
    assert a["synops"] > 0 and a["params"] > 0
    f = objectives(a)
    assert f.shape == (3,) and f[0] == -a["score"]
    assert network_seed(0, g) != network_seed(1, g)


def test_bigger_cells_cost_more_synops_and_parameters(digits_batch):
    ctx = _ctx(digits_batch)
    small = evaluate_genome(genome_with(ctx.space, ["empty", "empty"]), ctx)
    big = evaluate_genome(genome_with(ctx.space, ["mixed", "lateral_inhibition"]), ctx)
    assert big["params"] > small["params"] and big["synops"] > small["synops"]


def test_invalid_context_is_rejected():
    from spikesmith.errors import InputError

    with pytest.raises(InputError, match="metric"):
        EvalContext(space=NasSpace(cells=1), batches=((np.zeros((1, 2, 1, 8, 8)), np.zeros(2)),), metric="cosine")
