"""The ANN twin of a NIR graph: ONNX export, onnxruntime agreement, node map, MAC counts."""

from __future__ import annotations

import json

import nir
import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from factories import Custom
from spikesmith.energy import count_onnx_macs
from spikesmith.errors import GraphError, UnsupportedNodeError
from spikesmith.targets.onnx import META_NODE_MAP, META_NOTES, ann_twin, export_ann_twin




def _ones(shape):
    return np.ones(shape, dtype=np.float32)


def conv_net(rng) -> tuple[nir.NIRGraph, dict]:
    w1 = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    b1 = rng.normal(size=4).astype(np.float32)
    w2 = rng.normal(size=(5, 16)).astype(np.float32)
    b2 = rng.normal(size=5).astype(np.float32)
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([2, 6, 6])}),
            "conv": nir.Conv2d(input_shape=(6, 6), weight=w1, stride=2, padding=1, dilation=1, groups=1, bias=b1),
            "lif": nir.LIF(tau=_ones((4, 3, 3)), r=_ones((4, 3, 3)), v_leak=0 * _ones((4, 3, 3)),
                           v_threshold=_ones((4, 3, 3))),
            "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]), padding=np.array([0, 0])),
            "flat": nir.Flatten(input_type={"input": np.array([4, 2, 2])}, start_dim=0),
            "fc": nir.Affine(weight=w2, bias=b2),
            "thr": nir.Threshold(threshold=_ones(5)),
            "output": nir.Output({"output": np.array([5])}),
        },
        edges=[("input", "conv"), ("conv", "lif"), ("lif", "pool"), ("pool", "flat"), ("flat", "fc"),
               ("fc", "thr"), ("thr", "output")],
        type_check=False,
    )
    return g, {"w1": w1, "b1": b1, "w2": w2, "b2": b2}


def reference_ann(x: torch.Tensor, p: dict) -> torch.Tensor:
    """The same ANN written by hand with torch.nn.functional."""
    h = F.relu(F.conv2d(x, torch.from_numpy(p["w1"]), torch.from_numpy(p["b1"]), stride=2, padding=1))
    h = F.avg_pool2d(h, 2, stride=1).flatten(1)
    return F.relu(F.linear(h, torch.from_numpy(p["w2"]), torch.from_numpy(p["b2"])))


def test_twin_matches_hand_written_ann_in_onnxruntime(tmp_path):
    import onnxruntime as ort

    g, p = conv_net(np.random.default_rng(7))
    path = export_ann_twin(g, tmp_path / "twin.onnx")
    assert path.is_file()
    x = torch.from_numpy(np.random.default_rng(8).random((4, 2, 6, 6), dtype=np.float32))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, reference_ann(x, p).numpy(), rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(ann_twin(g)(x).numpy(), got, rtol=1e-5, atol=1e-5)


def test_twin_node_map_and_mac_counts(tmp_path):
    g, _ = conv_net(np.random.default_rng(1))
    path = export_ann_twin(g, tmp_path / "twin.onnx")
    meta = {m.key: m.value for m in onnx.load(str(path)).metadata_props}
    node_map = json.loads(meta[META_NODE_MAP])
    counts = count_onnx_macs(path)
    macs_by_nir = {}
    for n in counts.nodes:
        if n.macs:
            macs_by_nir[node_map[n.name]] = macs_by_nir.get(node_map[n.name], 0) + n.macs
    # conv: 4*3*3 outputs * 2*3*3 taps; fc: 5 * 16
    assert macs_by_nir == {"conv": 36 * 18, "fc": 80}
    assert json.loads(meta[META_NOTES]) == []


def test_recurrent_edge_dropped_with_note(tmp_path):
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([3])}),
            "fc": nir.Linear(weight=np.eye(3, dtype=np.float32)),
            "lif": nir.IF(r=_ones(3), v_threshold=_ones(3)),
            "rec": nir.Linear(weight=_ones((3, 3))),
            "output": nir.Output({"output": np.array([3])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "fc"), ("lif", "output")],
    )
    path = export_ann_twin(g, tmp_path / "rec.onnx")
    meta = {m.key: m.value for m in onnx.load(str(path)).metadata_props}
    assert json.loads(meta[META_NOTES]) == ["recurrent edges dropped in the ANN twin: rec->fc"]
    x = torch.tensor([[1.0, -2.0, 3.0]])
    with torch.no_grad():
        assert ann_twin(g)(x).tolist() == [[1.0, 0.0, 3.0]]


def test_input_shape_override_and_errors(tmp_path):
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([3])}),
            "fc": nir.Linear(weight=_ones((2, 3))),
            "output": nir.Output({"output": np.array([2])}),
        },
        edges=[("input", "fc"), ("fc", "output")],
    )
    export_ann_twin(g, tmp_path / "a.onnx", input_shape=(3,))
    with pytest.raises(GraphError, match="input_shape"):
        export_ann_twin(g, tmp_path / "b.onnx", input_shape=(0,))
    bad = nir.NIRGraph(
        nodes={
            "input": nir.Input({"input": np.array([3])}),
            "custom": Custom(size=3),
            "output": nir.Output({"output": np.array([3])}),
        },
        edges=[("input", "custom"), ("custom", "output")],
        type_check=False,
    )
    with pytest.raises(UnsupportedNodeError, match="'custom'.*Custom"):
        export_ann_twin(bad, tmp_path / "c.onnx")
    assert not (tmp_path / "c.onnx").exists()
