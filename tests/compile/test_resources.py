"""The Loihi 2 fit report: every limit sourced, the PilotNet LIF mapping within 25% of its published
74 cores, and networks that cannot be placed named with the limit they break (exit 2 on deploy)."""

import nir
import numpy as np
import pytest

from deploy_graphs import demo_graph, lif
from spikesmith import io
from spikesmith.cli import main
from spikesmith.compile.graph import flatten
from spikesmith.compile.plan import build_plan
from spikesmith.compile.resources import LIMITS, PUBLISHED, check_fits, estimate, render, render_limits
from spikesmith.errors import GraphError


def _conv(rng, c_in, c_out, hw, stride, padding=(0, 0)):
    return nir.Conv2d(input_shape=hw, weight=rng.normal(0, 0.3, (c_out, c_in, 3, 3)), stride=stride,
                      padding=padding, dilation=1, groups=1, bias=np.zeros(c_out))


def pilotnet_graph(seed: int = 0) -> nir.NIRGraph:
    """lava-dl's PilotNet LIF as its netx table lists it (NIR (C, H, W) order): input (3, 66, 200), five
    3x3 convolutions to 24, 36, 48, 64, 64 channels, dense 100, 50, 10, 1."""
    rng = np.random.default_rng(seed)
    nodes = {"input": nir.Input(input_type={"input": np.array([3, 66, 200])})}
    layers = [(3, 24, (66, 200), (2, 2), (0, 0), (24, 32, 99)), (24, 36, (32, 99), (2, 2), (0, 0), (36, 15, 49)),
              (36, 48, (15, 49), (2, 2), (0, 0), (48, 7, 24)), (48, 64, (7, 24), (2, 1), (1, 0), (64, 4, 22)),
              (64, 64, (4, 22), (1, 1), (0, 0), (64, 2, 20))]
    edges, prev = [], "input"
    for i, (ci, co, hw, s, p, out) in enumerate(layers):
        nodes[f"conv{i}"] = _conv(rng, ci, co, hw, s, p)
        nodes[f"lif{i}"] = lif(out)
        edges += [(prev, f"conv{i}"), (f"conv{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["flat"] = nir.Flatten(input_type={"input": np.array([64, 2, 20])}, start_dim=0)
    edges.append((prev, "flat"))
    prev, width = "flat", 2560
    for j, n in enumerate((100, 50, 10, 1)):
        nodes[f"fc{j}"] = nir.Affine(weight=rng.normal(0, 0.1, (n, width)), bias=np.zeros(n))
        nodes[f"lif_fc{j}"] = lif(n)
        edges += [(prev, f"fc{j}"), (f"fc{j}", f"lif_fc{j}")]
        prev, width = f"lif_fc{j}", n
    nodes["output"] = nir.Output(output_type={"output": np.array([1])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.fixture(scope="module")
def pilotnet():
    return estimate(build_plan(flatten(pilotnet_graph()), 1e-3), include_input=True)


def test_pilotnet_lands_within_25_percent_of_its_published_core_count(pilotnet):
    published = PUBLISHED["pilotnet_lif"]["cores"]
    assert abs(pilotnet["cores"] - published) <= 0.25 * published, render(pilotnet)
    rows = {r["population"]: r for r in pilotnet["populations"]}
    # the published per-core distribution, layer by layer (input 13, conv 25 13 3 3 2, dense 100 on 12)
    assert [rows[n]["cores"] for n in ("input", "lif0", "lif1", "lif2", "lif3", "lif4")] == [13, 25, 13, 3, 3, 2]
    assert rows["input"]["neurons_per_core"] == 3168 and rows["lif0"]["neurons_per_core"] == 3072
    assert abs(rows["lif_fc0"]["cores"] - 12) <= 3
    assert pilotnet["fits"] and pilotnet["chips"] == 1


def test_every_limit_names_its_source():
    for lim in LIMITS.values():
        assert lim.source and lim.kind in ("published", "calibrated", "assumption") and lim.value > 0
    table = render_limits()
    assert "NUM_VIRTUAL_CORES_L3" in table and "12000" in table.replace(",", "")


def test_the_old_even_split_no_longer_calls_a_wide_layer_cheap():
    # 10 neurons each reading 20,000 inputs: 200,000 8-bit synapses. An even split of the brief's
    # 120M synapses over 128 cores (937,500 per core) put them on one core; one neuron's synapses
    # alone exceed a core's synaptic memory here (and its inputs a core's axons).
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([20_000])}),
                            "fc": nir.Affine(weight=np.full((10, 20_000), 0.01), bias=np.zeros(10)),
                            "lif": lif(10), "output": nir.Output(output_type={"output": np.array([10])})},
                     edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False)
    est = estimate(build_plan(flatten(g), 1e-3))
    assert not est["fits"] and "'lif'" in est["problems"][0] and "input axons" in est["problems"][0]
    with pytest.raises(GraphError, match="does not fit Loihi 2: population 'lif'"):
        check_fits(est)


def test_a_network_that_does_not_fit_is_refused_on_deploy_exit_2(tmp_path, capsys):
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([5000])}),
                            "fc": nir.Affine(weight=np.random.default_rng(0).normal(0, 0.05, (4, 5000)),
                                             bias=np.zeros(4)),
                            "wide": lif(4), "output": nir.Output(output_type={"output": np.array([4])})},
                     edges=[("input", "fc"), ("fc", "wide"), ("wide", "output")], type_check=False)
    g.metadata = {"spikesmith.dt": 1e-3}
    io.write_nir(tmp_path / "wide.nir", g)
    assert main([str(a) for a in ("compile", tmp_path / "wide.nir", "--to", "lava", "--verify", 2,
                                  "-o", tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'wide'" in err and "input axons" in err, err
    assert not (tmp_path / "b").exists()


def test_the_demo_shaped_net_fits_on_a_few_cores():
    est = estimate(build_plan(flatten(demo_graph()), 1e-3))
    assert est["fits"] and 3 <= est["cores"] <= 8
    assert [r["encoding"] for r in est["populations"]] == ["conv-shared", "conv-shared", "dense"]
