"""Synaptic-operation, MAC, neuron-update and spike counts against hand-computed values."""

from __future__ import annotations


import nir
import numpy as np
import pytest

from factories import Custom
from spikesmith.energy import count_ops
from spikesmith.errors import InputError, UnsupportedNodeError


def dense_graph(lif, weight: np.ndarray) -> nir.NIRGraph:
    n_out, n_in = weight.shape
    return nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([n_in])}),
            "fc": nir.Affine(weight=weight, bias=np.ones(n_out, dtype=np.float32)),
            "lif": lif((n_out,)),
            "output": nir.Output({"output": np.array([n_out])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )


def test_dense_sops_count_each_spike_times_existing_fanout(make_trace, lif):
    w = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    w[0, 1] = 0.0  # a missing synapse: input 1 reaches only 2 of 3 outputs
    g = dense_graph(lif, w)
    x = np.array([[[1, 1, 0, 0]], [[0, 1, 0, 1]]], dtype=np.float32)  # (T=2, B=1, 4)
    spikes = np.array([[[1, 0, 0]], [[1, 1, 0]]], dtype=np.float32)
    counts = count_ops(g, make_trace(g, {"input": x, "lif": spikes}))
    fc = counts.layer("fc")
    # fan-out per input: 3, 2, 3, 3 -> step 0: 3 + 2; step 1: 2 + 3
    assert fc.synops_per_step == (5, 5)
    assert fc.synops == 10 and fc.macs == 0 and fc.binary_input
    assert fc.synapses == 11
    assert fc.input_events == 4
    neuron = counts.layer("lif")
    assert neuron.neuron_updates == 3 * 2 * 1
    assert neuron.spikes == 3 and neuron.spikes_per_step == (1, 2)
    assert neuron.firing_rate == pytest.approx(3 / 6)
    assert counts.activation_sparsity == pytest.approx(0.5)
    assert counts.synops == 10 and counts.neuron_updates == 6 and counts.spikes == 3


def test_analog_input_counts_macs_every_step(make_trace, lif):
    w = np.ones((2, 3), dtype=np.float32)
    w[1, 2] = 0.0
    g = dense_graph(lif, w)
    x = np.array([[[0.5, -1.2, 0.0]], [[0.0, 0.0, 2.5]], [[0.3, 0.3, 0.3]]], dtype=np.float32)
    counts = count_ops(g, make_trace(g, {"input": x, "lif": np.zeros((3, 1, 2))}))
    fc = counts.layer("fc")
    assert not fc.binary_input
    # fan-out: 2, 2, 1 -> step0: 2+2, step1: 1, step2: 2+2+1
    assert fc.macs_per_step == (4, 1, 5)
    assert fc.macs == 10 and fc.synops == 0
    assert counts.firing_rate == 0.0


def conv_graph(lif, weight: np.ndarray, *, stride: int, padding: int, hw: int, groups: int = 1) -> nir.NIRGraph:
    c_out, c_in_g = weight.shape[:2]
    c_in = c_in_g * groups
    conv = nir.Conv2d(
        input_shape=(hw, hw), weight=weight, stride=stride, padding=padding, dilation=1,
        groups=groups, bias=np.zeros(c_out, dtype=np.float32),
    )
    out_shape = tuple(int(v) for v in conv.output_type["output"])
    return nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([c_in, hw, hw])}),
            "conv": conv,
            "lif": lif(out_shape),
            "output": nir.Output({"output": np.array(out_shape)}),
        },
        edges=[("input", "conv"), ("conv", "lif"), ("lif", "output")],
        type_check=groups == 1,  # nir's Conv2d input type ignores groups
    )


def test_conv_sops_exact_at_borders_with_stride_and_padding(make_trace, lif):
    # 3x3 kernel, stride 2, padding 1 on 4x4 -> 2x2 outputs. Along one axis the input rows
    # are reached by 1, 2, 1, 1 output rows; the fan-out of (iy, ix) is f[iy] * f[ix] per channel.
    w = np.ones((2, 1, 3, 3), dtype=np.float32)
    w[1, 0, 0, 0] = 0.0  # channel 1 lacks tap (0, 0): input (1, 1) loses its synapse to output (1, 1)
    g = conv_graph(lif, w, stride=2, padding=1, hw=4)
    x = np.zeros((2, 1, 1, 4, 4), dtype=np.float32)
    x[0, 0, 0, 1, 1] = 1  # 4 (ch0) + 3 (ch1)
    x[0, 0, 0, 0, 3] = 1  # 1 + 1
    x[1, 0, 0, 2, 1] = 1  # 2 + 2
    t = make_trace(g, {"input": x, "lif": np.zeros((2, 1, 2, 2, 2))})
    conv = count_ops(g, t).layer("conv")
    assert conv.synops_per_step == (9, 4)
    assert conv.synops == 13
    # all synapses: per channel (2 + 3)^2 = 25 valid (output, tap) pairs; channel 1 loses one
    assert conv.synapses == 25 + 24


def test_grouped_conv_fanout_stays_in_group(make_trace, lif):
    w = np.ones((4, 1, 1, 1), dtype=np.float32)  # depthwise-like: 2 groups, 2 outputs per group
    g = conv_graph(lif, w, stride=1, padding=0, hw=2, groups=2)
    x = np.zeros((1, 1, 2, 2, 2), dtype=np.float32)
    x[0, 0, 0, 0, 0] = 1
    x[0, 0, 1, 1, 1] = 1
    conv = count_ops(g, make_trace(g, {"input": x, "lif": np.zeros((1, 1, 4, 2, 2))})).layer("conv")
    assert conv.synops == 2 + 2
    assert conv.synapses == 4 * 4


@pytest.mark.parametrize("kind", [nir.SumPool2d, nir.AvgPool2d])
def test_pooling_fanout_with_overlapping_windows(kind, make_trace, lif):
    pool = kind(kernel_size=np.array([3, 3]), stride=np.array([1, 1]), padding=np.array([0, 0]))
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([1, 4, 4])}),
            "lif": lif((1, 4, 4)),
            "pool": pool,
            "out_lif": lif((1, 2, 2)),
            "output": nir.Output({"output": np.array([1, 2, 2])}),
        },
        edges=[("input", "lif"), ("lif", "pool"), ("pool", "out_lif"), ("out_lif", "output")],
        type_check=False,
    )
    s = np.zeros((1, 2, 1, 4, 4), dtype=np.float32)
    s[0, 0, 0, 0, 0] = 1  # 1 * 1 windows
    s[0, 0, 0, 1, 2] = 1  # 2 * 2
    s[0, 1, 0, 3, 1] = 1  # 1 * 2 (second sample)
    x = np.full((1, 2, 1, 4, 4), 0.7, dtype=np.float32)
    t = make_trace(g, {"input": x, "lif": s, "out_lif": np.zeros((1, 2, 1, 2, 2))})
    counts = count_ops(g, t)
    pool_counts = counts.layer("pool")
    assert pool_counts.synops == 1 + 4 + 2
    assert pool_counts.synapses == 4 * 9
    assert counts.layer("lif").spikes == 3
    assert counts.layer("lif").neuron_updates == 16 * 2


def test_multiple_predecessors_are_summed_and_back_edges_delayed(make_trace, lif):
    w_in = np.eye(2, dtype=np.float32)
    w_rec = np.array([[0.0, 1.0], [1.0, 1.0]], dtype=np.float32)  # fan-out: neuron 0 -> 1, neuron 1 -> 2
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([2])}),
            "fc": nir.Linear(weight=w_in),
            "lif": lif((2,)),
            "rec": nir.Linear(weight=w_rec),
            "output": nir.Output({"output": np.array([2])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")],
    )
    spikes = np.array([[[1, 1]], [[0, 1]], [[1, 0]]], dtype=np.float32)  # last step's spikes are never delivered
    x = np.ones((3, 1, 2), dtype=np.float32)
    t = make_trace(g, {"input": x, "lif": spikes, "rec": np.zeros((3, 1, 2))})
    counts = count_ops(g, t)
    rec = counts.layer("rec")
    # rec is fed by lif at the same step (forward edge lif -> rec); lif -> rec is not the back edge
    assert counts.back_edges == (("rec", "lif"),)
    assert rec.synops_per_step == (3, 2, 1)
    assert counts.layer("fc").synops_per_step == (2, 2, 2)


def test_back_edge_into_a_synapse_node_delivers_previous_step(make_trace, lif):
    eye = np.eye(2, dtype=np.float32)
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([2])}),
            "fc": nir.Linear(weight=eye),
            "lif": lif((2,)),
            "rec": nir.Affine(weight=eye, bias=np.array([0.0, 0.5], dtype=np.float32)),
            "output": nir.Output({"output": np.array([2])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "fc"), ("lif", "output")],
    )
    x = np.array([[[1, 0]], [[0, 0]], [[0, 1]]], dtype=np.float32)
    rec = np.array([[[1, 0]], [[0, 2]], [[5, 5]]], dtype=np.float32)
    t = make_trace(g, {"input": x, "lif": np.zeros((3, 1, 2)), "rec": rec})
    counts = count_ops(g, t)
    assert counts.back_edges == (("rec", "fc"),)
    fc = counts.layer("fc")
    # fc sees input(t) + rec(t-1); before the first step rec outputs its bias [0, 0.5]
    # (the reference simulator's convention): [1, 0.5], [1, 0], [0, 3]: graded, so MACs
    assert not fc.binary_input
    assert fc.macs_per_step == (2, 1, 1)


def test_missing_activity_names_the_node(make_trace, lif):
    g = dense_graph(lif, np.ones((2, 2), dtype=np.float32))
    t = make_trace(g, {"input": np.ones((1, 1, 2)), "lif": np.zeros((1, 1, 2))})
    del t.activity["lif"]
    with pytest.raises(InputError, match="'lif'"):
        count_ops(g, t)




def test_unknown_node_type_is_named(make_trace, lif):
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([2])}),
            "custom": Custom(size=2),
            "output": nir.Output({"output": np.array([2])}),
        },
        edges=[("input", "custom"), ("custom", "output")],
        type_check=False,
    )
    act = {"input": np.ones((1, 1, 2)), "custom": np.ones((1, 1, 2)), "output": np.ones((1, 1, 2))}
    from spikesmith.targets.trace import Trace

    t = Trace(target="test", dt=1e-3, input=act["input"], output=act["output"], activity=act)
    with pytest.raises(UnsupportedNodeError, match="'custom'.*Custom"):
        count_ops(g, t)


def test_random_spikes_match_dense_reference(spikes_rng, make_trace, lif):
    """SOPs of a conv layer equal the brute-force sum over events of per-pixel fan-out."""
    w = spikes_rng.normal(size=(3, 2, 3, 3)).astype(np.float32)
    w[w < -0.8] = 0.0
    g = conv_graph(lif, w, stride=2, padding=1, hw=7)
    x = (spikes_rng.random((4, 3, 2, 7, 7)) < 0.2).astype(np.float32)
    out_shape = g.nodes["lif"].output_type["output"]
    t = make_trace(g, {"input": x, "lif": np.zeros((4, 3, *out_shape))})
    counts = count_ops(g, t)
    conv = counts.layer("conv")
    # brute force: for every output (co, oy, ox) and tap, check which input it reads
    fan = np.zeros((2, 7, 7), dtype=np.int64)
    oh = ow = (7 + 2 - 3) // 2 + 1
    for co in range(3):
        for ci in range(2):
            for oy in range(oh):
                for ox in range(ow):
                    for ky in range(3):
                        for kx in range(3):
                            iy, ix = 2 * oy - 1 + ky, 2 * ox - 1 + kx
                            if 0 <= iy < 7 and 0 <= ix < 7 and w[co, ci, ky, kx] != 0:
                                fan[ci, iy, ix] += 1
    expected = int((x * fan).sum())
    assert conv.synops == expected
    assert conv.synapses == int(fan.sum())
    assert counts.to_dict()["per_sample"]["synops"] == pytest.approx(expected / 3)
