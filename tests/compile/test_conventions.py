"""compile --for FRAMEWORK: the NIR -> NIR rewrite for other frameworks' importers, and its refusals.

Whether the frameworks then run our spikes is tests/interop's job; here: the rewrite is exact in
spikesmith's own semantics, leaves the canonical path alone, and refuses what it cannot express.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest

from factories import ff_graph, spikes
from spikesmith import api, io
from spikesmith.cli import main
from spikesmith.compile.conventions import FRAMEWORKS, META_FOR, for_framework
from spikesmith.compile.graph import ResetRule
from spikesmith.errors import GraphError, InputError

DT = 1e-3


def _graph(neuron="LIF", **overrides):
    g = ff_graph(seed=3, neuron=neuron)
    for name in ("n1", "n2"):
        for field, value in overrides.items():
            setattr(g.nodes[name], field, np.broadcast_to(value, np.shape(g.nodes[name].v_threshold)).copy())
    return g


@pytest.mark.parametrize("framework", ["norse", "snntorch", "spikingjelly"])
@pytest.mark.parametrize("neuron,overrides", [("LIF", {}), ("LIF", {"r": 1.7}), ("CubaLIF", {}),
                                              ("CubaLIF", {"r": 0.8, "w_in": 1.3})])
def test_rewrite_keeps_the_spikes_in_spikesmith_itself(framework, neuron, overrides):
    g = _graph(neuron, **overrides)
    x = spikes((30, 4, 6), 0.5, seed=2) * 1.5
    ref = api.simulate(g, x, dt=DT, target="norse")
    out = for_framework(g, framework, dt=DT)
    assert out.metadata[META_FOR] == framework and out.metadata["spikesmith.reset"] == "value"
    got = api.simulate(out, x, dt=out.metadata["spikesmith.dt"], target="norse")
    assert ref.activity["n1"].any() and ref.output.any()
    np.testing.assert_array_equal(got.activity["n1"], ref.activity["n1"])
    np.testing.assert_array_equal(got.output, ref.output)
    assert g.nodes["n1"] is not out.nodes["n1"] and np.all(g.nodes["n1"].r == overrides.get("r", 1.0))  # pure


def test_forms_are_what_each_importer_reads():
    lif, cuba = _graph("LIF", r=2.0), _graph("CubaLIF", w_in=0.5)
    # snnTorch: its own exporter's form at dt = 1e-4 s (r = tau/dt, w_in = tau_syn/dt): no threshold rescaling
    s = for_framework(lif, "snntorch", dt=DT).nodes["n1"]
    assert s.r * 1e-4 / s.tau == pytest.approx(1.0) and s.tau[0] == pytest.approx(2e-3 * 1e-4 / DT)
    c = for_framework(cuba, "spikingjelly", dt=DT).nodes["n1"]
    assert c.w_in * 1e-4 / c.tau_syn == pytest.approx(1.0) and c.r * 1e-4 / c.tau_mem == pytest.approx(1.0)
    # Norse ignores r: unit gains, the threshold carries the scale
    n = for_framework(lif, "norse", dt=2e-3).nodes["n1"]
    assert np.all(n.r == 1.0) and n.v_threshold[0] == pytest.approx(0.8 / 2.0) and n.tau[0] == pytest.approx(1e-3)


def test_avgpool_becomes_a_sumpool_for_norse():
    g = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([1, 4, 4])}),
        "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([1, 2, 2])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=np.arange(8.0).reshape(2, 4), bias=np.ones(2)),
        "out": nir.Output(output_type={"output": np.array([2])})},
        edges=[("in", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "out")], type_check=False)
    g.nodes["pool"].input_type = {"input": np.array([1, 4, 4])}
    g.nodes["pool"].output_type = {"output": np.array([1, 2, 2])}
    with pytest.raises(GraphError, match="'pool' \\(AvgPool2d\\) feeds 'flat' \\(Flatten\\).*cannot move"):
        for_framework(g, "norse", dt=DT)
    g.edges = [("in", "pool"), ("pool", "fc0"), ("fc0", "flat"), ("flat", "fc"), ("fc", "out")]
    g.nodes["fc0"] = nir.Conv2d(input_shape=np.array([2, 2]), weight=np.full((1, 1, 1, 1), 2.0), bias=np.zeros(1),
                                stride=np.array([1, 1]), padding=np.array([0, 0]), dilation=np.array([1, 1]), groups=1)
    out = for_framework(g, "norse", dt=DT)
    assert isinstance(out.nodes["pool"], nir.SumPool2d) and out.nodes["fc0"].weight.item() == 0.5
    x = np.random.default_rng(0).random((3, 2, 1, 4, 4))
    a = api.simulate(g, x, dt=DT, target="norse").output
    b = api.simulate(out, x, dt=DT, target="norse").output
    assert np.abs(a - b).max() <= 1e-12 * np.abs(a).max()


@pytest.mark.parametrize("framework", ["norse", "snntorch", "spikingjelly"])
@pytest.mark.parametrize("rule", [ResetRule(mode="subtract"), ResetRule(mode="subtract", timing="delayed")])
def test_a_reset_rule_the_importers_lack_is_refused(framework, rule):
    with pytest.raises(GraphError, match=f"--for {framework}: node 'n1' \\(LIF\\) runs with reset by subtraction"):
        for_framework(_graph(), framework, dt=DT, reset=rule)
    # a delayed reset to a value is the immediate one for a LIF (units.effective_reset), not for a CubaLIF
    for_framework(_graph(), framework, dt=DT, reset=ResetRule(timing="delayed"))
    with pytest.raises(GraphError, match="reset to v_reset, delayed"):
        for_framework(_graph("CubaLIF"), framework, dt=DT, reset=ResetRule(timing="delayed"))


def test_what_an_importer_would_run_differently_is_refused():
    with pytest.raises(GraphError, match="'n1' \\(LIF\\): v_leak must be 0 for snnTorch"):
        for_framework(_graph(v_leak=0.1), "snntorch", dt=DT)
    with pytest.raises(GraphError, match="'n1' \\(LIF\\): v_reset must be 0 for Norse"):
        for_framework(_graph(v_reset=-0.2), "norse", dt=DT)
    uneven = _graph()
    uneven.nodes["n1"].v_threshold = np.linspace(0.5, 1.0, 8)
    with pytest.raises(GraphError, match="one v_threshold for the whole node; it ranges 0.5 .. 1"):
        for_framework(uneven, "spikingjelly", dt=DT)
    with pytest.raises(GraphError, match="tau is 1 steps; SpikingJelly's NIR import needs more than 1"):
        for_framework(_graph(tau=DT), "spikingjelly", dt=DT)
    with pytest.raises(GraphError, match="'n1' \\(IF\\): snnTorch's NIR import makes IF a Leaky"):
        for_framework(_graph("IF"), "snntorch", dt=DT)
    with pytest.raises(GraphError, match="'n1' \\(LIF\\): Sinabs' NIR import makes it a multi-spike neuron"):
        for_framework(_graph(), "sinabs", dt=DT)
    g = _graph()
    g.nodes["fc1"] = nir.Scale(scale=np.ones(6))
    with pytest.raises(GraphError, match="'fc1' \\(Scale\\): Norse's NIR import has no mapping for Scale \\(it maps "):
        for_framework(g, "norse", dt=DT)


def test_unknown_framework_is_one_line_listing_the_known_ones(tmp_path, capsys):
    with pytest.raises(InputError, match="unknown framework \\(known: norse, sinabs, snntorch, spikingjelly\\)"):
        for_framework(_graph(), "pytorch", dt=DT)
    io.write_nir(tmp_path / "g.nir", _graph())
    assert main(["compile", str(tmp_path / "g.nir"), "--to", "nir", "--for", "pytorch", "-o", str(tmp_path / "o.nir")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(f in err for f in FRAMEWORKS) and "--for 'pytorch'" in err
    assert not (tmp_path / "o.nir").exists()
    assert main(["compile", str(tmp_path / "g.nir"), "--to", "lava", "--for", "norse", "-o", str(tmp_path / "v")]) == 2
    assert "use it with --to nir" in capsys.readouterr().err


def test_cli_writes_for_a_framework_and_stays_canonical_without_for(tmp_path, capsys):
    g = _graph()
    g.metadata = {"spikesmith.dt": 5e-4}
    io.write_nir(tmp_path / "g.nir", g)
    assert main(["compile", str(tmp_path / "g.nir"), "--to", "nir", "-o", str(tmp_path / "plain.nir")]) == 0
    plain = nir.read(str(tmp_path / "plain.nir"))
    assert META_FOR not in plain.metadata and plain.metadata["spikesmith.dt"] == 5e-4
    np.testing.assert_array_equal(plain.nodes["n1"].tau, g.nodes["n1"].tau)
    capsys.readouterr()
    assert main(["compile", str(tmp_path / "g.nir"), "--to", "nir", "--for", "spikingjelly",
                 "-o", str(tmp_path / "sj.nir")]) == 0
    assert "written for SpikingJelly's NIR import" in capsys.readouterr().err
    sj = nir.read(str(tmp_path / "sj.nir"))
    assert sj.metadata[META_FOR] == "spikingjelly" and sj.metadata["spikesmith.dt"] == 1e-4
    np.testing.assert_allclose(sj.nodes["n1"].tau / 1e-4, g.nodes["n1"].tau / 5e-4, rtol=1e-12)
    with pytest.raises(GraphError, match="'n1' \\(LIF\\) runs with reset by subtraction"):
        api.compile_model(tmp_path / "g.nir", out=tmp_path / "x.nir", for_framework="norse", reset="subtract")
    assert main(["compile", str(tmp_path / "g.nir"), "--to", "nir", "--for", "norse", "--reset", "subtract",
                 "-o", str(tmp_path / "x.nir")]) == 2
