import numpy as np
import pytest
import torch

from spikesmith.errors import InputError
from spikesmith.evolve import CONV_SPACE, EvolveConfig, evolve, network_fitness, spike_rdm
from spikesmith.evolve.conv_search import ConvOptions
from spikesmith.evolve.fitness import WORST, rdm_score


def digits_batch(n=64, steps=4):
    from spikesmith.data import direct, load_digits_split

    split = load_digits_split(seed=0)
    x = torch.as_tensor(direct(split.x_train[:n], steps))
    return x, torch.as_tensor(split.y_train[:n])


def test_hamming_rdm_by_hand():
    s = torch.tensor([[[1, 0, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]]], dtype=torch.float32)
    d = spike_rdm(s)
    assert d[0, 1] == pytest.approx(0.5) and d[0, 2] == pytest.approx(0.5) and d[1, 2] == pytest.approx(1.0)
    assert torch.all(torch.diag(d) == 0)


def test_label_aware_score_prefers_class_structure():
    labels = torch.tensor([0, 0, 1, 1])
    good = torch.tensor([[0, .1, .9, .9], [.1, 0, .9, .9], [.9, .9, 0, .1], [.9, .9, .1, 0]])
    bad = torch.tensor([[0, .9, .1, .9], [.9, 0, .9, .1], [.1, .9, 0, .9], [.9, .1, .9, 0]])
    assert rdm_score(good, labels) > 0.8 > rdm_score(bad, labels)


def test_silent_network_scores_worst():
    from spikesmith.evolve import build_conv_snn

    m = build_conv_snn({"c1": 4, "c2": 4, "hidden": 0, "tau_steps": 2.0, "v_th": 1.0}, input_shape=(1, 8, 8),
                       num_classes=10)
    fit = network_fitness(m, torch.zeros(4, 8, 1, 8, 8), torch.arange(8))
    assert fit.degenerate and fit.score == WORST


def _search(seed, **kw):
    cfg = EvolveConfig(population=4, generations=2, seed=seed, steps=4, options=ConvOptions(samples=64))
    return evolve("search", cfg, **kw)


def test_seeded_search_is_reproducible_and_improves(tmp_path):
    a, b = _search(3, out_dir=tmp_path), _search(3)
    assert a.best.genome == b.best.genome and a.best.score == b.best.score
    assert [h["best"] for h in a.history] == [h["best"] for h in b.history]
    assert a.history[-1]["best"] >= a.history[0]["best"]
    assert not a.best.degenerate
    assert _search(4).history != a.history
    for name in ("checkpoint.pt", "generations.jsonl", "generations.png", "model.pt"):
        assert (tmp_path / name).is_file(), name


def test_population_of_one_is_an_input_error():
    from spikesmith.evolve.conv_search import ConvSearch

    with pytest.raises(InputError, match="--population"):
        ConvSearch(EvolveConfig(population=1))


def test_genome_validation_names_the_gene():
    with pytest.raises(InputError, match="gene 'c2' = 9"):
        CONV_SPACE.decode((0, 9, 0, 0, 0))
    with pytest.raises(InputError, match="has 2 genes.*expects 5"):
        CONV_SPACE.decode((0, 0))
    rng = np.random.default_rng(0)
    g = CONV_SPACE.sample(rng)
    assert CONV_SPACE.mutate(g, rng) != g


def test_backends_give_the_in_process_result():
    def summary(backend):
        cfg = EvolveConfig(population=4, generations=1, seed=3, steps=2, backend=backend, workers=2,
                           options=ConvOptions(samples=32))
        r = evolve("search", cfg)
        return r.best.genome, r.best.score, [h["objectives"] for h in r.history]

    assert summary("process") == summary("local")
