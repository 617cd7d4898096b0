"""spikesmith's NIR in other frameworks, through each framework's own NIR importer.

Every model is exported by spikesmith, written with ``nir``, read by the framework's importer and
run on the same seeded spikes as spikesmith's reference simulator; spikes are compared node by
node. Three ways to hand over a graph: the canonical file with the importer's defaults ("nir"),
the canonical file with our dt passed by hand ("nir+dt", where the importer takes a dt), and the
file written by ``compile --for FRAMEWORK`` ("for"). Each cell of :data:`EXPECTED` states the
outcome: agreement 1.0, a measured difference, the precise known failure of the framework's
importer (so a fix shows up here), or spikesmith's refusal to write what would run differently.
"""

from __future__ import annotations

import os
from functools import lru_cache

import nir
import numpy as np
import pytest

from factories import spikes
from interop_frameworks import FRAMEWORKS, Dropped, run_norse, run_spikingjelly, version
from interop_models import MODELS
from spikesmith import api, io
from spikesmith.compile.conventions import for_framework
from spikesmith.compile.graph import flatten
from spikesmith.errors import GraphError

SPIKING = (nir.LIF, nir.CubaLIF, nir.IF)
#: when set, the rows measured below are written to this JSON file (benchmarks/interop_table.py renders them)
RESULTS_ENV = "SPIKESMITH_INTEROP_RESULTS"
STEPS = 8
BATCH = 2

AGREE = ("agree",)
DIFFERS = ("differs",)


def fails(exc: type, text: str) -> tuple:
    return ("fails", exc, text)


def refused(text: str) -> tuple:
    return ("refused", text)


_SINABS_ARRAYS = fails(ValueError, "truth value of an array with more than one element is ambiguous")
_SINABS_NEURON = refused("multi-spike neuron that resets by subtraction")

#: (model, framework, mode) -> expected outcome; "for" cells not listed agree
EXPECTED: dict[tuple[str, str, str], tuple] = {
    # Norse: dt = 1e-3 s by default; no AvgPool2d mapping (the pool is dropped, shapes then clash)
    ("demo", "norse", "nir"): AGREE, ("demo", "norse", "nir+dt"): AGREE,
    ("pooled", "norse", "nir"): fails(Dropped, "drops 2 (AvgPool2d)"),
    ("pooled", "norse", "nir+dt"): fails(Dropped, "drops 2 (AvgPool2d)"),
    ("recurrent", "norse", "nir"): DIFFERS, ("recurrent", "norse", "nir+dt"): AGREE,
    ("synaptic", "norse", "nir"): AGREE, ("synaptic", "norse", "nir+dt"): AGREE,
    ("if", "norse", "nir"): AGREE, ("if", "norse", "nir+dt"): AGREE,
    # snnTorch: dt = 1e-4 s built in, CubaLIF only in its own exporter's form, recurrent graphs break in nirtorch
    ("demo", "snntorch", "nir"): DIFFERS, ("pooled", "snntorch", "nir"): DIFFERS,
    ("recurrent", "snntorch", "nir"): fails(AssertionError, "r not supported in CubaLIF"),
    ("recurrent", "snntorch", "for"): fails(AttributeError, "'GraphModule' object has no attribute 'items'"),
    ("synaptic", "snntorch", "nir"): fails(AssertionError, "r not supported in CubaLIF"),
    ("if", "snntorch", "nir"): fails(TypeError, "must be Tensor, not tuple"),
    ("if", "snntorch", "for"): refused("makes IF a Leaky neuron with beta = 0.9"),
    # SpikingJelly: dt = 1e-4 s by default, CubaLIF only with r = tau_mem/dt and w_in = tau_syn/dt
    ("demo", "spikingjelly", "nir"): DIFFERS, ("demo", "spikingjelly", "nir+dt"): AGREE,
    ("pooled", "spikingjelly", "nir"): DIFFERS, ("pooled", "spikingjelly", "nir+dt"): AGREE,
    ("recurrent", "spikingjelly", "nir"): fails(ValueError, "nir.CubaLIF.r must equal tau_mem / dt"),
    ("recurrent", "spikingjelly", "nir+dt"): fails(ValueError, "nir.CubaLIF.r must equal tau_mem / dt"),
    ("synaptic", "spikingjelly", "nir"): fails(ValueError, "nir.CubaLIF.r must equal tau_mem / dt"),
    ("synaptic", "spikingjelly", "nir+dt"): fails(ValueError, "nir.CubaLIF.r must equal tau_mem / dt"),
    ("if", "spikingjelly", "nir"): fails(ValueError, "nir.IF.r must equal 1 / dt"),
    ("if", "spikingjelly", "nir+dt"): fails(ValueError, "nir.IF.r must equal 1 / dt"),
    ("if", "spikingjelly", "for"): refused("needs IF r = 1/dt"),
    # Sinabs: per-neuron parameter arrays break its LIF import; CubaLIF unmapped; multi-spike neurons
    ("demo", "sinabs", "nir"): _SINABS_ARRAYS, ("demo", "sinabs", "for"): _SINABS_NEURON,
    ("pooled", "sinabs", "nir"): _SINABS_ARRAYS, ("pooled", "sinabs", "for"): _SINABS_NEURON,
    ("recurrent", "sinabs", "nir"): fails(Dropped, "lif1 (CubaLIF)"), ("recurrent", "sinabs", "for"): refused("Sinabs' NIR import has no CubaLIF"),
    ("synaptic", "sinabs", "nir"): fails(KeyError, "cuba1"), ("synaptic", "sinabs", "for"): refused("has no CubaLIF"),
    ("if", "sinabs", "nir"): DIFFERS, ("if", "sinabs", "for"): _SINABS_NEURON,
}
#: importers that take a dt argument
WITH_DT = {"norse": run_norse, "spikingjelly": run_spikingjelly}


@lru_cache(maxsize=None)
def _model(name: str, tmp: str):
    """(path of the canonical file, graph as read back, input, reference trace) of model ``name``."""
    graph, shape = MODELS[name]()
    path = io.write_nir(f"{tmp}/{name}.nir", graph)
    graph = api.load_graph(path)
    x = spikes((STEPS, BATCH, *shape), 0.4, seed=1)
    dt = graph.metadata["spikesmith.dt"]
    return path, graph, x, api.simulate(graph, x, target="norse", dt=dt)


@pytest.fixture(scope="module")
def interop_results():
    rows: list[dict] = []
    yield rows
    path = os.environ.get(RESULTS_ENV)
    if path and rows:
        io.write_json(path, {"kind": "spikesmith.interop_results", "schema_version": 1,
                             "rows": sorted(rows, key=lambda r: (r["framework"], r["model"], r["mode"]))})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("interop"))


def _spiking(graph) -> dict[str, str]:
    return {n: type(v).__name__ for n, v in flatten(graph).nodes.items() if isinstance(v, SPIKING)}


def agreement(ref, recorded: dict, graph) -> dict[str, float]:
    """Fraction of equal spikes per spiking node type (over every node of that type the import exposes)."""
    equal: dict[str, list] = {}
    for name, kind in _spiking(graph).items():
        if name in recorded:
            assert recorded[name].shape == ref.activity[name].shape, name
            equal.setdefault(kind, []).append((recorded[name] == ref.activity[name]).reshape(-1))
    return {kind: float(np.concatenate(v).mean()) for kind, v in equal.items()}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_fire_in_every_spiking_layer(name, model_dir):
    """Agreement of silent layers would prove nothing: every spiking node fires, and not always."""
    _, graph, _, ref = _model(name, model_dir)
    for node in _spiking(graph):
        assert 0.02 < ref.activity[node].mean() < 0.6, node


CASES = [(m, f, mode) for m in sorted(MODELS) for f in FRAMEWORKS for mode in ("nir", "nir+dt", "for")
         if mode != "nir+dt" or f in WITH_DT]


@pytest.mark.parametrize("model,framework,mode", CASES, ids=["-".join(c) for c in CASES])
def test_framework_runs_spikesmith_nir(model, framework, mode, model_dir, interop_results, tmp_path):
    dist, run = FRAMEWORKS[framework]
    if version(dist) is None:
        pytest.skip(f"{dist} is not installed (pip install -e '.[interop]')")
    path, graph, x, ref = _model(model, model_dir)
    dt = graph.metadata["spikesmith.dt"]
    expected = EXPECTED.get((model, framework, mode), AGREE if mode == "for" else None)
    assert expected is not None, f"no expectation for {(model, framework, mode)}"
    row = {"model": model, "framework": framework, "version": version(dist), "mode": mode,
           "node_types": sorted({type(n).__name__ for n in flatten(graph).nodes.values()}
                                - {"Input", "Output"}),
           "loads": False, "agreement": {}, "error": None}
    try:
        if mode == "for":
            try:
                target = for_framework(graph, framework, dt=dt)
            except GraphError as exc:
                row["error"] = f"refused by spikesmith: {exc}"
                interop_results.append(row)
                assert expected[0] == "refused", f"spikesmith refused: {exc}"
                assert expected[1] in str(exc)
                return
            assert expected[0] != "refused", "spikesmith wrote a file it was expected to refuse"
            path = io.write_nir(tmp_path / f"{model}-{framework}.nir", target)
        try:
            recorded = WITH_DT[framework](path, x, dt=dt) if mode == "nir+dt" else run(path, x)
        except Exception as exc:  # the framework's own failure, compared with the known one below
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            assert expected[0] == "fails", f"{framework} failed: {row['error']}"
            assert isinstance(exc, expected[1]) and expected[2] in str(exc), row["error"]
            interop_results.append(row)
            return
        row["loads"] = True
        assert expected[0] != "fails", f"{framework} no longer fails with {expected[1].__name__}: {expected[2]!r}"
        row["agreement"] = agree = agreement(ref, recorded, graph)
        interop_results.append(row)
        assert set(recorded) >= set(_spiking(graph)), f"no output recorded for {set(_spiking(graph)) - set(recorded)}"
        if expected == AGREE:
            assert all(v == 1.0 for v in agree.values()), agree
        else:
            assert expected == DIFFERS, expected
            assert min(agree.values()) < 1.0, agree
    except BaseException:
        if row not in interop_results:
            interop_results.append(row)
        raise


def test_snntorch_reproduces_spikes_from_a_compile_for_snntorch_file(tmp_path):
    """The acceptance case end to end: ``spikesmith compile model.pt --to nir --for snntorch``, then
    snnTorch's own importer: its spikes equal ours in every layer (and the canonical file's do not)."""
    from interop_frameworks import run_snntorch
    from interop_models import DEMO_SPEC, demo_model
    from spikesmith.nn import save_model
    from spikesmith.cli import main

    if version("snntorch") is None:
        pytest.skip("snntorch is not installed (pip install -e '.[interop]')")
    model = demo_model(seed=4)
    save_model(tmp_path / "model.pt", model, DEMO_SPEC, dt=1e-3)
    assert main(["compile", str(tmp_path / "model.pt"), "--to", "nir", "-o", str(tmp_path / "model.nir")]) == 0
    assert main(["compile", str(tmp_path / "model.pt"), "--to", "nir", "--for", "snntorch",
                 "-o", str(tmp_path / "snntorch.nir")]) == 0
    graph = api.load_graph(tmp_path / "model.nir")
    x = spikes((STEPS, BATCH, *DEMO_SPEC.input_shape), 0.4, seed=3)
    ref = api.simulate(graph, x, target="norse", dt=1e-3)
    got = run_snntorch(tmp_path / "snntorch.nir", x)
    layers = _spiking(graph)
    assert len(layers) == 3 and all(ref.activity[n].any() for n in layers)
    for node in layers:
        np.testing.assert_array_equal(got[node], ref.activity[node], err_msg=node)
    plain = run_snntorch(tmp_path / "model.nir", x)
    assert any((plain[n] != ref.activity[n]).any() for n in layers)


def test_spikesmith_runs_its_for_files_alike(model_dir):
    """A file written for a framework stores that framework's dt: spikesmith itself runs it spike for spike
    as the canonical graph (the rewrite is exact, not tuned to one importer)."""
    for name in sorted(MODELS):
        _, graph, x, ref = _model(name, model_dir)
        for framework in ("norse", "snntorch", "spikingjelly"):
            try:
                target = for_framework(graph, framework, dt=graph.metadata["spikesmith.dt"])
            except GraphError:
                continue
            got = api.simulate(target, x, target="norse", dt=target.metadata["spikesmith.dt"])
            for node in _spiking(graph):
                np.testing.assert_array_equal(got.activity[node], ref.activity[node], err_msg=f"{name} {framework} {node}")
