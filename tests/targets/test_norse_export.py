"""Graphs exported by Norse (``norse.torch.to_nir``) run on both targets and reproduce Norse.

Norse 1.1.0's exporter writes ``tau = dt / tau_mem_inv``; called with ``dt=1.0`` it writes the
NIR time constant ``1 / tau_mem_inv`` (docs/deploy.md). Graphs exported with its default
dt carry time constants dt times too short: they are rejected with a message that says so.
"""

from __future__ import annotations

import nir
import norse.torch as norse
import numpy as np
import pytest
import torch

from factories import spikes
from spikesmith import api
from spikesmith.errors import GraphError
from spikesmith.targets.lava import simulate as lava
from spikesmith.targets.reference import simulate as reference

DT = 1e-3


def _layer(n_in: int, n_out: int, seed: int) -> torch.nn.Linear:
    torch.manual_seed(seed)
    fc = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        fc.weight.mul_(2.5)
    return fc


def _cell(kind: str, n: int):
    full = lambda v: torch.full((n,), float(v))  # noqa: E731
    if kind == "LIFBoxCell":  # per-neuron time constants
        return norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.linspace(150.0, 400.0, n),
                                                       v_th=full(0.4), v_leak=full(0.0)), dt=DT)
    if kind == "IAFCell":
        return norse.IAFCell(norse.IAFParameters(v_th=full(0.6), v_reset=full(0.0)), dt=DT)
    if kind == "LIFCell":
        return norse.LIFCell(norse.LIFParameters(tau_mem_inv=full(200.0), tau_syn_inv=full(300.0), v_th=full(0.3),
                                                 v_leak=full(0.0), v_reset=full(0.0)), dt=DT)
    raise ValueError(kind)


def _model(kind: str):
    return norse.SequentialState(_layer(6, 10, 0), _cell(kind, 10), _layer(10, 4, 1), _cell(kind, 4))


def _export(model, tmp_path, dt: float) -> nir.NIRGraph:
    graph = norse.to_nir(model, torch.zeros(6), dt=dt)  # sample without batch: nir's type check needs it
    nir.write(str(tmp_path / "norse.nir"), graph)
    return api.load_graph(tmp_path / "norse.nir")


def _run_norse(model, x: np.ndarray) -> np.ndarray:
    model = model.double()
    state, out = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            z, state = model(torch.as_tensor(x[t]), state)
            out.append(z.numpy().copy())
    return np.stack(out)


@pytest.mark.parametrize("kind", ["LIFBoxCell", "IAFCell"])
def test_norse_export_reproduces_norse_on_both_targets(kind, tmp_path):
    model = _model(kind)
    graph = _export(model, tmp_path, dt=1.0)
    x = spikes((40, 4, 6), 0.4, seed=3)
    expected = _run_norse(model, x)
    assert expected.mean() > 0.02
    ref = reference(graph, x, dt=DT)
    np.testing.assert_array_equal(ref.output, expected)
    lv = lava(graph, x, dt=DT)
    np.testing.assert_array_equal(lv.output, expected)


def test_norse_lifcell_export_runs_identically_on_both_targets(tmp_path):
    """LIFCell -> CubaLIF. Norse's LIFCell feeds the current of the previous step into v and adds its input
    to the current unscaled, which NIR's CubaLIF (w_in = 1) does not express: both targets agree with each
    other, not with Norse (docs/deploy.md)."""
    graph = _export(_model("LIFCell"), tmp_path, dt=1.0)
    assert type(graph.nodes["1"]).__name__ == "CubaLIF"
    x = spikes((40, 3, 6), 0.5, seed=3) * 3.0
    ref = reference(graph, x, dt=DT)
    lv = lava(graph, x, dt=DT)
    assert ref.activity["1"].mean() > 0.02
    np.testing.assert_array_equal(lv.activity["1"], ref.activity["1"])
    np.testing.assert_array_equal(lv.output, ref.output)


def test_norse_export_at_its_default_dt_is_rejected_clearly(tmp_path):
    graph = _export(_model("LIFBoxCell"), tmp_path, dt=1e-3)  # writes tau = 1e-3 / tau_mem_inv
    x = spikes((5, 1, 6))
    for run in (reference, lava):
        with pytest.raises(GraphError, match=r"node '1'.*tau.*shorter than dt.*to_nir"):
            run(graph, x, dt=DT)
