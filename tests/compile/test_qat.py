"""Quantisation-aware fine-tuning on the plan: for every registered model family, a training step moves
the weights, the snapped plan lies exactly on the chip grid, and its fixed-point run reproduces its
float twin; the forward pass is the float engine's on the grid."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spikesmith import api
from spikesmith.compile.graph import flatten
from spikesmith.compile.plan import build_plan
from spikesmith.compile.qat import PlanNetwork, grid
from spikesmith.nn import build
from spikesmith.targets.calibration import calibrate
from spikesmith.targets.loihi import Engine

CASES = {
    "conv": lambda: __import__("spikesmith.nn.families.conv", fromlist=["ConvSpec"]).ConvSpec(
        c1=4, c2=6, hidden=8, tau_steps=2.0, v_th=0.5, input_shape=(1, 8, 8), num_classes=5),
    "gee": lambda: __import__("spikesmith.nn.families.gee", fromlist=["GeeSpec"]).GeeSpec(arch="digits", genes=8,
                                                                                            width=1.0),
    "nas": lambda: __import__("nas_spec_helper").nas_spec(),
}


@pytest.fixture
def nas_helper(monkeypatch, tmp_path):
    (tmp_path / "nas_spec_helper.py").write_text(
        "import numpy as np\n"
        "def nas_spec():\n"
        "    from spikesmith.evolve.nas import NasSpace, wire\n"
        "    space = NasSpace(cells=2)\n"
        "    genome = np.zeros(space.n_genes, dtype=int)\n"
        "    return wire(space.decode(space.repair(genome)), space=space, channels=3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_every_registered_family_has_a_case():
    from spikesmith.nn import registered_families

    assert set(CASES) == set(registered_families())


@pytest.mark.parametrize("family", sorted(CASES))
def test_qat_step_snaps_to_the_grid_and_fixed_point_reproduces_the_float_twin(family, nas_helper):
    model = build(CASES[family](), seed=0)
    graph = api.export_model(model, dt=1e-3)
    flat = flatten(graph)
    in_shape = flat.output_shape(flat.inputs[0])
    rng = np.random.default_rng(0)
    x = (rng.random((6, 8, *in_shape)) < 0.4).astype(np.float64)
    qplan, _ = calibrate(build_plan(flat, 1e-3), x, source="test", search=False)
    net = PlanNetwork(qplan, dtype=torch.float64)
    before = [w.detach().clone() for w in net.weights]
    # the forward pass is the float engine's on the grid: the same spikes as Engine on the snapped plan
    snapped0 = net.snapped_plan()
    out = net(torch.as_tensor(x)).detach().numpy()
    ref = Engine(snapped0).run(x, record=True)["activity"]
    r = qplan.plan.readouts[0]
    expect = ref[r.population] if r.population else ref[r.output]
    assert np.mean(np.isclose(out, expect, atol=1e-9)) >= 0.999
    # one training step moves the weights (straight-through gradients reach them through the rounding)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    y = torch.as_tensor(rng.integers(0, out.shape[-1], 8))
    loss = F.cross_entropy(net(torch.as_tensor(x)).sum(0), y)
    loss.backward()
    assert any(w.grad is not None and torch.any(w.grad != 0) for w in net.weights)
    opt.step()
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, net.weights))
    # the snapped plan is exactly on the grid: quantising it again loses nothing
    snapped = net.snapped_plan()
    q2, _ = calibrate(snapped, x, source="test", search=False)
    for row in q2.report:
        assert max(row.weight_rel_error.values(), default=0.0) < 1e-12, row
    fx = Engine(q2).run(x, record=True)["activity"]
    fl = Engine(snapped).run(x, record=True)["activity"]
    for pop in snapped.neurons:
        if pop.spiking:
            assert np.mean(fx[pop.name] == fl[pop.name]) >= 0.999, pop.name


def test_grid_matches_quantise_mantissas():
    from spikesmith.compile.quantise import weight_mantissa

    w = np.random.default_rng(1).normal(0, 0.3, (7, 5))
    for k in (1.0, 64.0, 1024.0):
        mant, e = weight_mantissa(w * k)
        np.testing.assert_allclose(grid(torch.as_tensor(w), k).numpy(), mant * 2.0 ** e / k, rtol=0, atol=1e-15)
