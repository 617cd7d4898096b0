"""The deployment plan, without Lava: conv-shaped chains become one convolution, identity edges and
residual shortcuts lower, paths of unequal depth are aligned, and dense matrices stay small."""

import dataclasses

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deploy_graphs import conv, demo_graph, lif, pooled_conv_graph, residual_graph
from factories import ff_graph
from spikesmith.compile import plan as plan_module
from spikesmith.compile.graph import flatten
from spikesmith.compile.plan import build_plan
from spikesmith.errors import GraphError


def plan_of(g, dt=1e-3):
    return build_plan(flatten(g), dt)


def into(plan, dst):
    return {c.src: c for c in plan.connections if c.dst == dst}


def close(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert np.abs(a - b).max() <= 1e-12 * max(1.0, np.abs(b).max())


def test_avg_pooling_then_conv_is_one_strided_convolution():
    g = pooled_conv_graph(seed=1, hw=12)
    plan = plan_of(g)
    c = into(plan, "l2")["l1"]
    assert c.kind == "conv" and c.conv.stride == (2, 2) and c.conv.padding == (2, 2) and c.weight.shape[2:] == (6, 6)
    k = g.nodes["c2"].weight
    gain = plan.populations["l2"].gain.reshape(k.shape[0], -1)[:, 0]
    close(c.weight, np.repeat(np.repeat(k, 2, axis=2), 2, axis=3) / 4 * gain[:, None, None, None])
    # the connection equals pooling then convolving, on random spikes, independently computed
    s = torch.as_tensor((np.random.default_rng(0).random((3, 6, 12, 12)) < 0.3).astype(np.float64))
    want = F.conv2d(F.avg_pool2d(s, 2), torch.as_tensor(k), padding=1).reshape(3, -1) * torch.as_tensor(
        plan.populations["l2"].gain)
    close(c.apply(s.reshape(3, -1), torch.as_tensor(c.weight)), want)


def test_pooling_flatten_affine_is_a_small_dense_matrix_and_the_convs_stay_convs():
    plan = plan_of(pooled_conv_graph(seed=1))
    kinds = {(c.src, c.dst): c.kind for c in plan.connections}
    assert kinds == {("in", "l1"): "conv", ("l1", "l2"): "conv", ("l2", "l3"): "dense"}
    assert into(plan, "l3")["l2"].weight.shape == (5, 8 * 6 * 6)


@pytest.mark.parametrize("shortcut", ["identity", "conv1x1"])
def test_residual_shortcut_lowers_as_a_convolution_delayed_to_meet_the_long_path(shortcut):
    g = residual_graph(shortcut, seed=2)
    plan = plan_of(g)
    lags = {n: p.lag for n, p in plan.populations.items()}
    assert (lags["a"], lags["b"], lags["c"]) == (1, 2, 3)
    short, long = into(plan, "c")["a"], into(plan, "c")["b"]
    assert (short.kind, long.kind) == ("conv", "conv")
    assert (short.lag_delay, long.lag_delay, short.delay) == (1, 0, 0)  # a Lava-only delay: the graph is unchanged
    gain = plan.populations["c"].gain.reshape(6, -1)[:, 0]
    if shortcut == "identity":  # an edge without a weight node: a depthwise 1x1 identity
        assert short.conv.groups == 6 and short.weight.shape == (6, 1, 1, 1)
        close(short.weight[:, 0, 0, 0], gain)
    else:
        close(short.weight, g.nodes["short"].weight * gain[:, None, None, None])


def test_identity_edge_between_flat_populations_is_diagonal():
    n = 5
    nodes = {"in": nir.Input(input_type={"input": np.array([3])}), "fc": nir.Linear(weight=np.ones((n, 3))),
             "a": lif(n), "b": lif(n, threshold=0.3), "out": nir.Output(output_type={"output": np.array([n])})}
    plan = plan_of(nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "a"), ("a", "b"), ("b", "out")]))
    c = into(plan, "b")["a"]
    assert c.kind == "conv" and c.conv.in_shape == (n, 1, 1) and c.conv.groups == n
    close(c.dense(), np.diag(plan.populations["b"].gain))


def vgg_like(hw: int = 32, width: int = 16) -> nir.NIRGraph:
    """A reduced-width VGG: 3 x 32 x 32 -> conv -> LIF -> conv -> LIF -> avgpool -> conv -> LIF -> avgpool
    -> conv -> LIF -> avgpool -> flatten -> linear -> LIF."""
    rng = np.random.default_rng(0)
    pool = lambda: nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))  # noqa: E731
    c1, c2, c3 = width, 2 * width, 4 * width
    q = hw // 8
    nodes = {"in": nir.Input(input_type={"input": np.array([3, hw, hw])}),
             "k1": conv(rng, 3, c1, hw), "n1": lif((c1, hw, hw)), "k2": conv(rng, c1, c1, hw), "n2": lif((c1, hw, hw)),
             "p2": pool(), "k3": conv(rng, c1, c2, hw // 2), "n3": lif((c2, hw // 2, hw // 2)), "p3": pool(),
             "k4": conv(rng, c2, c3, hw // 4), "n4": lif((c3, hw // 4, hw // 4)), "p4": pool(),
             "fl": nir.Flatten(input_type={"input": np.array([c3, q, q])}, start_dim=0),
             "fc": nir.Linear(weight=rng.normal(0, 0.1, (10, c3 * q * q))), "n5": lif(10),
             "out": nir.Output(output_type={"output": np.array([10])})}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=False)


def test_a_vgg_shaped_graph_has_no_dense_matrix_of_a_conv_layer():
    plan = plan_of(vgg_like(width=16))
    for c in plan.connections:
        if len(plan.populations[c.dst].shape) == 3:
            assert c.kind == "conv", (c.src, c.dst)
    # the one dense matrix is the classifier (pooling and flatten composed into it)
    assert [(c.src, c.dst) for c in plan.connections if c.kind == "dense"] == [("n4", "n5")]


def test_a_dense_matrix_beyond_the_limit_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(plan_module, "MAX_DENSE_ENTRIES", 1000)
    with pytest.raises(GraphError, match="connection '3_lifboxcell' -> '6_lifboxcell'.*10 x 512.*exceeds 1,000"):
        plan_of(demo_graph())


def test_the_plan_is_frozen_data():
    plan = plan_of(ff_graph(seed=1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.dt = 2e-3
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.populations["n1"].lag = 3
    assert not any(k.startswith("q_") for k in vars(plan)) and isinstance(plan.connections, tuple)


def test_feedback_from_a_deeper_population_is_refused_on_lava():
    rng = np.random.default_rng(0)
    nodes = {"in": nir.Input(input_type={"input": np.array([3])}), "f1": nir.Linear(weight=rng.normal(0, 1, (4, 3))),
             "a": lif(4), "f2": nir.Linear(weight=rng.normal(0, 1, (4, 4))), "b": lif(4),
             "back": nir.Linear(weight=rng.normal(0, 1, (4, 4))), "out": nir.Output(output_type={"output": np.array([4])})}
    edges = [("in", "f1"), ("f1", "a"), ("a", "f2"), ("f2", "b"), ("b", "back"), ("back", "a"), ("b", "out")]
    with pytest.raises(GraphError, match="recurrent connection 'b' -> 'a'.*1 synapse stage"):
        plan_of(nir.NIRGraph(nodes=nodes, edges=edges))
