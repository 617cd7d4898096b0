"""STE: regularisers, schedules, genetic operators, the evolution run and its determinism."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from spikesmith import io
from spikesmith.errors import InputError
from spikesmith.evolve import EvolveConfig
from spikesmith.evolve.gee import Constant, CosineDecay, GeeSte, LinearDecay, SteOptions, run_gee_evolution
from spikesmith.nn.families.gee import build_network
from spikesmith.evolve.gee.spatiotemporal import (
    breed, crossover, encoding_keys, mutate, normalised_entropy, signal_shares, spatial_entropy, temporal_difference,
    tournament_select,
)

TINY = dict(arch="digits", genes=4, steps=2, seed=7)


def tiny_cfg(**kw) -> SteOptions:
    base = dict(batch_size=16, tournament=2, elite=1, max_batches=3)
    return SteOptions(**{**base, **kw})


def test_spatial_entropy_bounds():
    assert float(spatial_entropy(torch.ones(4, 4))) == pytest.approx(math.log(16))
    assert float(spatial_entropy(-torch.ones(4, 4))) == pytest.approx(math.log(16))  # |G|
    one_hot = torch.zeros(4, 4)
    one_hot[1, 2] = 3.0
    assert float(spatial_entropy(one_hot)) == pytest.approx(0.0, abs=1e-6)
    g = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
    assert 0 < float(spatial_entropy(g)) < math.log(64)


def test_temporal_difference_is_per_layer_relative_change():
    a, b = torch.full((2, 3), 0.5), torch.ones(400, 3)
    assert float(temporal_difference([a, b], [a, b])) == 0.0
    # a small layer moved by its own scale counts as much as a large one would: (1 + 0) / 2
    assert float(temporal_difference([a + 0.5, b], [a, b])) == pytest.approx(0.5)
    assert float(temporal_difference([a, 3 * b], [a, b])) == pytest.approx(2.0)  # (0 + 4) / 2
    with pytest.raises(InputError):
        temporal_difference([a], [a, b])


def test_normalised_entropy_is_a_fraction_of_its_maximum():
    assert float(normalised_entropy(torch.ones(4, 4))) == pytest.approx(1.0)
    assert float(normalised_entropy(torch.ones(16, 16))) == pytest.approx(1.0)
    one_hot = torch.zeros(4, 4)
    one_hot[0, 0] = 1.0
    assert float(normalised_entropy(one_hot)) == pytest.approx(0.0, abs=1e-6)


def test_schedules_decay_to_zero_after_thirty_percent():
    lin, cos = LinearDecay(start=2.0), CosineDecay(start=2.0)
    assert lin(0.0) == cos(0.0) == 2.0
    assert lin(0.15) == pytest.approx(1.0) and cos(0.15) == pytest.approx(1.0)
    assert lin(0.3) == cos(0.3) == lin(0.9) == 0.0
    assert Constant(value=0.5)(0.99) == 0.5
    with pytest.raises(InputError):
        LinearDecay(start=-1.0)
    with pytest.raises(InputError):
        LinearDecay(start=1.0, until=0.0)


def _states(n=4, seed=0):
    return [build_network("digits", genes=4, seed=seed + i).state_dict() for i in range(n)]


def test_crossover_swaps_whole_rows_and_blends_g():
    model = build_network("digits", genes=4, seed=0)
    keys = encoding_keys(model)
    a, b = _states(2)
    child = crossover(a, b, x_keys=keys, g_key="gene.g", rng=np.random.default_rng(1))
    from_b = 0
    for k in keys:
        for r in range(a[k].shape[0]):
            row = child[k][r]
            assert torch.equal(row, a[k][r]) or torch.equal(row, b[k][r])
            from_b += torch.equal(row, b[k][r]) and not torch.equal(row, a[k][r])
    assert 0 < from_b < sum(a[k].shape[0] for k in keys)
    # G lies on the segment between the parents: one alpha for every entry
    alpha = (child["gene.g"] - b["gene.g"]) / (a["gene.g"] - b["gene.g"])
    assert float(alpha.std()) < 1e-4 and 0 <= float(alpha.mean()) <= 1
    other = [k for k in a if k not in keys and k != "gene.g"]
    assert all(torch.equal(child[k], a[k]) for k in other)


def test_mutation_touches_only_x_and_g():
    a = _states(1)[0]
    keys = encoding_keys(build_network("digits", genes=4)) + ["gene.g"]
    m = mutate(a, keys=keys, sigma=0.1, rng=np.random.default_rng(0))
    for k in a:
        assert torch.equal(m[k], a[k]) == (k not in keys)


def test_breed_keeps_elites_and_tournament_prefers_fitter():
    pop = _states(4)
    keys = encoding_keys(build_network("digits", genes=4))
    fitness = np.array([-3.0, -1.0, -2.0, -4.0])
    nxt = breed(pop, fitness, tiny_cfg(elite=2), x_keys=keys, g_key="gene.g",
                rng=np.random.default_rng(0))
    assert len(nxt) == 4
    assert all(torch.equal(nxt[0][k], pop[1][k]) for k in pop[1])
    assert all(torch.equal(nxt[1][k], pop[2][k]) for k in pop[2])
    rng = np.random.default_rng(0)
    wins = [tournament_select(fitness, 4, rng) for _ in range(5)]
    assert wins == [1] * 5


def test_run_is_deterministic_and_writes_metrics_and_plot(tiny_data, tmp_path):
    cfg = tiny_cfg(max_batches=None)
    events = []
    r1 = run_gee_evolution(data=tiny_data, population=3, generations=1, final_epochs=1, config=cfg,
                           out_dir=tmp_path / "a", device="cpu", on_progress=events.append, **TINY)
    r2 = run_gee_evolution(data=tiny_data, population=3, generations=1, final_epochs=1, config=cfg,
                           device="cpu", **TINY)
    assert r1.final_fitness == r2.final_fitness and r1.test_accuracy == r2.test_accuracy
    keys = ("best_fitness", "mean_fitness", "entropy", "difference", "train_loss", "mean_val_accuracy")
    assert [[h[k] for k in keys] for h in r1.history] == [[h[k] for k in keys] for h in r2.history]
    # it learns (not a silent network): the final held-out CE (both weights are 0 at t = 1) beats generation 0's
    assert -r1.final_fitness < r1.history[0]["val_loss"]
    rows = io.read_jsonl(tmp_path / "a" / "generations.jsonl")
    assert [r["generation"] for r in rows] == [0, 1] == [e["generation"] for e in events]
    for key in ("best_fitness", "mean_fitness", "entropy", "difference", "val_accuracy", "elapsed", "objectives"):
        assert all(key in r for r in rows)
    assert rows[0]["best_fitness"] >= rows[0]["mean_fitness"]
    assert rows[0]["objectives"]["fitness"]["best"] == rows[0]["best_fitness"]
    assert rows[0]["lambda_t"] > 0 and rows[1]["lambda_t"] == 0  # decayed by t = 0.5
    assert rows[1]["lambda_s"] > 0  # the spatial term stays on
    for row in rows:  # each term's share of the gradient, the fitness and its spread, summing to 1
        for kind in ("gradient", "value", "spread"):
            sh = row["shares"][kind]
            assert set(sh) == {"ce", "entropy", "difference"} and all(0 <= v <= 1 for v in sh.values())
            assert sum(sh.values()) == pytest.approx(1.0)
    g0 = rows[0]["shares"]["gradient"]
    assert min(g0.values()) > 0.01  # every term acts on the wiring rules (shares depend on g: g=4 here)
    assert rows[1]["shares"]["gradient"]["difference"] == 0.0  # lambda_t is 0 there
    for png in ("evolution.png", "generations.png"):
        assert (tmp_path / "a" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    assert ckpt["generation"] == 1 and ckpt["X"].shape[0] == 3
    from spikesmith.nn import load_model

    model, mf = load_model(tmp_path / "a" / "model.pt")
    assert mf.family == "gee" and mf.spec["arch"] == "digits" and model.gene is not None
    assert json.loads((tmp_path / "a" / "result.json").read_text())["final_fitness"] == r1.final_fitness
    assert r1.params < r1.dense_params and r1.encoded
    # a different seed changes the outcome
    r3 = run_gee_evolution(data=tiny_data, population=3, generations=1, final_epochs=1, config=cfg,
                           device="cpu", **{**TINY, "seed": 8})
    assert r3.final_fitness != r1.final_fitness


def test_process_pool_gives_the_in_process_result(tiny_data):
    # the individuals train in worker processes (one torch thread each) from the GeeData shipped once
    kw = dict(data=tiny_data, population=3, generations=1, final_epochs=1, config=tiny_cfg(), device="cpu", **TINY)
    local = run_gee_evolution(**kw)
    pool = run_gee_evolution(backend="process", workers=2, **kw)

    def strip(history):
        return [{k: v for k, v in h.items() if k not in ("seconds", "elapsed", "eta")} for h in history]

    assert strip(pool.history) == strip(local.history)
    assert (pool.final_fitness, pool.test_accuracy) == (local.final_fitness, local.test_accuracy)
    assert local.history[1]["best_fitness"] != local.history[0]["best_fitness"]  # it did evolve


def test_individuals_are_trained_by_fit_with_the_regularisers_as_extra_loss(tiny_data, monkeypatch):
    import spikesmith.train as train

    calls = []
    real = train.fit

    def spy(*args, **kw):
        calls.append(kw.get("extra_loss"))
        return real(*args, **kw)

    monkeypatch.setattr(train, "fit", spy)
    run_gee_evolution(data=tiny_data, population=2, generations=0, final_epochs=0, config=tiny_cfg(elite=0),
                      device="cpu", **TINY)
    assert len(calls) == 2 and all(callable(c) for c in calls)
    calls.clear()  # Baldwinian: then the best's untrained rules are trained to the end
    run_gee_evolution(data=tiny_data, population=2, generations=0, final_epochs=0,
                      config=tiny_cfg(elite=0, inheritance="baldwinian"), device="cpu", **TINY)
    assert len(calls) == 3


def test_fitness_is_negated_regularised_held_out_loss(tiny_data):
    cfg = tiny_cfg(lambda_s=Constant(value=0.5), lambda_t=Constant(value=3.0), sign=1.0)
    r = run_gee_evolution(data=tiny_data, population=2, generations=0, final_epochs=0, config=cfg, device="cpu",
                          **TINY)
    h = r.history[0]
    val_loss = -h["best_fitness"] + 0.5 * h["entropy"] - 3.0 * h["difference"]
    assert h["difference"] > 0 and h["entropy"] > 0
    assert 0 < val_loss < 5  # a plausible cross-entropy over 10 classes


def test_dense_baseline_and_existing_run_guard(tiny_data, tmp_path):
    r = run_gee_evolution(data=tiny_data, population=1, generations=0, final_epochs=1, encoded=False,
                          config=tiny_cfg(), out_dir=tmp_path, device="cpu", **TINY)
    assert not r.encoded and r.params == r.dense_params and r.compression == 0.0
    assert len(r.history) == 1 and r.history[0]["entropy"] == 0.0
    with pytest.raises(InputError, match="resume"):
        run_gee_evolution(data=tiny_data, population=1, generations=0, final_epochs=1, encoded=False,
                          config=tiny_cfg(), out_dir=tmp_path, device="cpu", **TINY)
    with pytest.raises(InputError, match="other settings: options.final_epochs"):
        run_gee_evolution(data=tiny_data, population=1, generations=0, final_epochs=3, encoded=False,
                          config=tiny_cfg(), out_dir=tmp_path, device="cpu", resume=True, **TINY)


def test_config_validation_names_the_field():
    with pytest.raises(InputError, match="--population"):
        EvolveConfig(population=0)
    with pytest.raises(InputError, match="elite"):
        GeeSte(EvolveConfig(population=2, options=SteOptions(elite=2)))
    with pytest.raises(InputError, match="sign"):
        SteOptions(sign=0.5)
    with pytest.raises(InputError, match="--crossover-rate"):
        SteOptions(crossover_rate=float("nan"))


def test_signal_shares_sum_to_one_and_follow_the_weights():
    sc = [{"val_loss": 2.0 + 0.1 * i, "entropy": 0.9 + 0.01 * i, "difference": 0.02 * i, "grad_ce": 1.0,
           "grad_entropy": 0.5, "grad_difference": 0.5} for i in range(4)]
    sh = signal_shares(sc, lam_s=1.0, lam_t=1.0)
    assert sh["gradient"] == {"ce": 0.5, "entropy": 0.25, "difference": 0.25}
    for kind in sh:
        assert sum(sh[kind].values()) == pytest.approx(1.0)
    # spread: CE varies by 0.1 a step, lam H by 0.01, lam D by 0.02
    assert sh["spread"]["ce"] == pytest.approx(0.1 / 0.13) and sh["spread"]["difference"] == pytest.approx(0.02 / 0.13)
    off = signal_shares(sc, lam_s=0.0, lam_t=0.0)
    assert off["value"]["entropy"] == off["value"]["difference"] == off["spread"]["difference"] == 0.0


def _starting_states(tiny_data, monkeypatch, seed=TINY["seed"], **cfg_kw):
    """Run 2 generations; return {generation: [the state each individual's training started from]} and
    the trained states of generation 0."""
    from spikesmith.evolve.gee.spatiotemporal import GeeTrainer as Problem

    starts, trained = {}, {}
    real = Problem.train

    def spy(self, state, *, purpose, **kw):
        out = real(self, state, purpose=purpose, **kw)
        starts.setdefault(purpose[0], []).append({k: v.clone() for k, v in state.items()})
        trained.setdefault(purpose[0], []).append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        return out

    monkeypatch.setattr(Problem, "train", spy)
    run_gee_evolution(data=tiny_data, population=3, generations=1, final_epochs=0,
                      config=tiny_cfg(max_batches=1, **cfg_kw), device="cpu", **{**TINY, "seed": seed})
    monkeypatch.undo()
    return starts, trained


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_baldwinian_children_start_from_untrained_parent_rules(tiny_data, monkeypatch, seed):
    # no crossover, no mutation: every child is a copy of one parent's genome
    kw = dict(crossover_rate=0.0, mutation_sigma=0.0, elite=1)
    starts, trained = _starting_states(tiny_data, monkeypatch, seed=seed, inheritance="baldwinian", **kw)
    initial, gen0_trained = starts[0], trained[0]
    assert not any(_same(t, i) for t in gen0_trained for i in initial)  # training did change them
    for child in starts[1]:  # Baldwinian: the parents' untrained rules
        assert any(_same(child, i) for i in initial)
    starts, trained = _starting_states(tiny_data, monkeypatch, seed=seed, inheritance="lamarckian", **kw)
    for child in starts[1]:  # Lamarckian: the parents' trained values
        assert any(_same(child, t) for t in trained[0]) and not any(_same(child, i) for i in starts[0])


def test_baldwinian_crossover_rows_come_from_untrained_parents(tiny_data, monkeypatch):
    starts, _ = _starting_states(tiny_data, monkeypatch, crossover_rate=1.0, mutation_sigma=0.0, elite=0,
                                 inheritance="baldwinian")
    keys = encoding_keys(build_network("digits", genes=TINY["genes"], seed=0))
    for child in starts[1]:
        for k in keys:
            for r in range(child[k].shape[0]):
                assert any(torch.equal(child[k][r], i[k][r]) for i in starts[0]), (k, r)


def test_inheritance_option_is_validated():
    with pytest.raises(InputError, match="--inheritance: expected one of baldwinian, lamarckian"):
        SteOptions(inheritance="darwinian")
