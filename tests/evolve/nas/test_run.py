import pytest

from spikesmith import io
from spikesmith.errors import InputError
from spikesmith.evolve.nas.run import run_nas

TINY = dict(generations=3, population=6, seed=3, steps=2, cells=2, channels=4, fitness_batch=16)


def _strip(history):
    return [{k: v for k, v in row.items() if k not in ("seconds", "elapsed", "eta")} for row in history]


def _summary(result):
    return [c.genome for c in result.front], _strip(result.history)


def test_search_writes_front_history_and_plot(tmp_path):
    rows = []
    r = run_nas(out_dir=tmp_path, on_progress=rows.append, **TINY)
    assert [row["generation"] for row in rows] == [0, 1, 2, 3]
    assert r.evaluated >= TINY["population"] and r.best == r.front[0]
    assert r.best.score == max(c.score for c in r.front)
    pareto = io.read_json(tmp_path / "pareto.json")
    assert [tuple(c["genome"]) for c in pareto["front"]] == [c.genome for c in r.front]
    assert (tmp_path / "pareto.png").stat().st_size > 1000
    assert (tmp_path / "generations.png").stat().st_size > 1000
    evals = io.read_jsonl(tmp_path / "evaluations.jsonl")
    assert len(evals) == r.evaluated == len({tuple(e["genome"]) for e in evals})
    from spikesmith.nn import load_model

    _, mf = load_model(tmp_path / "model.pt")
    assert mf.family == "nas" and mf.meta["genome"] == list(r.best.genome)
    assert _strip(io.read_jsonl(tmp_path / "generations.jsonl")) == _strip(r.history)
    # no member of the front dominates another
    for a in r.front:
        for b in r.front:
            fa, fb = (-a.score, a.synops, a.params), (-b.score, b.synops, b.params)
            assert not (all(x <= y for x, y in zip(fa, fb)) and fa != fb)


def test_seeded_search_is_reproducible_and_seed_matters():
    a, b = run_nas(**TINY), run_nas(**TINY)
    assert _summary(a) == _summary(b)
    c = run_nas(**(TINY | {"seed": 4}))
    assert _summary(c) != _summary(a)


def test_backends_give_identical_results():
    local = _summary(run_nas(backend="local", **TINY))
    assert _summary(run_nas(backend="dask", workers=2, **TINY)) == local
    assert _summary(run_nas(backend="process", workers=2, **TINY)) == local


def test_resume_after_an_interruption_ends_where_the_uninterrupted_run_does(tmp_path):
    full = run_nas(out_dir=tmp_path / "full", **TINY)

    class Stop(Exception):
        pass

    def stop_after_one(row):
        if row["generation"] == 1:
            raise Stop

    with pytest.raises(Stop):
        run_nas(out_dir=tmp_path / "cut", on_progress=stop_after_one, **TINY)
    with pytest.raises(InputError, match="resume"):
        run_nas(out_dir=tmp_path / "cut", **TINY)
    with pytest.raises(InputError, match="other settings"):
        run_nas(out_dir=tmp_path / "cut", resume=True, **(TINY | {"channels": 5}))
    resumed = run_nas(out_dir=tmp_path / "cut", resume=True, **TINY)
    assert _summary(resumed) == _summary(full)
    assert _strip(io.read_jsonl(tmp_path / "cut" / "generations.jsonl")) == _strip(full.history)


@pytest.mark.slow
def test_train_best_trains_exports_and_deploys(tmp_path):
    run_nas(out_dir=tmp_path, **TINY)
    from spikesmith import api

    rows = api.train_nas_best(tmp_path, epochs=2, deploy_samples=4, out_dir=tmp_path / "trained")
    (row,) = rows
    assert set(row["accuracy"]) == {"torch", "norse", "lava", "loihi"}
    assert row["agreement"]["norse"] == 1.0
    model, mf = api.load_model(tmp_path / "trained" / "best0" / "model.pt")
    assert mf.family == "nas" and mf.meta["genome"] == row["genome"]
    assert (tmp_path / "trained" / "best0" / "model.nir").is_file()


@pytest.mark.slow  # starts a Dask scheduler and two workers
def test_cli_search_on_an_external_dask_cluster_gives_the_local_result(tmp_path, dask_cluster):
    import subprocess
    import sys

    address, _ = dask_cluster
    args = ["--population", "4", "--generations", "1", "--seed", "3", "--steps", "2", "--cells", "2",
            "--channels", "4", "--fitness-batch", "16"]
    fronts = []
    for name, extra in (("local", []), ("dask", ["--backend", "dask", "--cluster", address])):
        r = subprocess.run([sys.executable, "-m", "spikesmith", "evolve", "nas", *args, *extra, "-o", tmp_path / name],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        fronts.append(io.read_json(tmp_path / name / "pareto.json")["front"])
    assert fronts[0] == fronts[1]


def test_min_cells_constraint_keeps_empty_networks_off_the_front(tmp_path):
    from spikesmith.evolve.nas.run import front_composition

    def empty(c):
        return all(cell["motif"] == "empty" for cell in c.arch["cells"])

    free = run_nas(min_cells=0, **TINY)  # unconstrained, this seeded search keeps an all-empty network
    assert any(empty(c) for c in free.front) and front_composition(free.front)["empty_networks"] >= 1
    r = run_nas(out_dir=tmp_path, **TINY)  # default: the pymoo constraint non-empty cells >= 1
    assert r.front and not any(empty(c) for c in r.front)
    pareto = io.read_json(tmp_path / "pareto.json")
    assert pareto["constraint"] == "non-empty cells >= 1"
    comp = pareto["composition"]
    assert comp["empty_networks"] == 0 and comp["members"] == [[x["motif"] for x in c.arch["cells"]] for c in r.front]
    assert sum(comp["motifs"].values()) == TINY["cells"] * len(r.front)
    assert r.history[-1]["front_motifs"] == comp["motifs"]
    both = run_nas(min_cells=2, **TINY)
    assert all(cell["motif"] != "empty" for c in both.front for cell in c.arch["cells"])
    with pytest.raises(InputError, match="--min-cells"):
        run_nas(min_cells=3, **TINY)


def test_loihi_cores_objective_matches_the_compile_fit_report(tmp_path):
    # the user's path: `evolve nas --loihi-cores -o D`, then `compile D/model.pt --to lava` reports the
    # same core count for the best network as the search used as its fourth objective
    import re
    import subprocess
    import sys

    out = tmp_path / "nas"
    args = ["--population", "6", "--generations", "1", "--seed", "3", "--steps", "2", "--cells", "2",
            "--channels", "4", "--fitness-batch", "16", "--loihi-cores"]
    r = subprocess.run([sys.executable, "-m", "spikesmith", "evolve", "nas", *args, "-o", out], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "loihi_cores best" in r.stderr
    pareto = io.read_json(out / "pareto.json")
    assert pareto["objectives"][-1] == "loihi_cores" and all(c["cores"] >= 1 for c in pareto["front"])
    rows = io.read_jsonl(out / "generations.jsonl")
    assert rows[-1]["front_min_cores"] == min(c["cores"] for c in pareto["front"])
    c = subprocess.run([sys.executable, "-m", "spikesmith", "compile", out / "model.pt", "--to", "lava", "--verify", "2",
                        "-o", tmp_path / "lava"], capture_output=True, text=True, timeout=600)
    assert c.returncode == 0, c.stderr[-2000:]
    total = re.search(r"^total\s.*?(\d+)\s+\(\d+ Loihi 2 chip", c.stdout + c.stderr, re.M)
    assert total, (c.stdout + c.stderr)[-2000:]
    assert int(total.group(1)) == pareto["best"]["cores"]
