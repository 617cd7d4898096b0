"""ONNX MAC/FLOP counts for hand-built models against hand-computed values."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from spikesmith.energy import count_onnx_macs
from spikesmith.errors import InputError


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return m


def _init(name, shape):
    return numpy_helper.from_array(np.ones(shape, dtype=np.float32), name)


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_conv_with_groups_dilation_stride_padding(tmp_path):
    # x (1, 4, 9, 9); W (6, 2, 3, 3), group 2, stride 2, pad 1, dilation 2
    # out spatial = floor((9 + 2 - 2*(3-1) - 1) / 2) + 1 = 4 -> out (1, 6, 4, 4)
    node = helper.make_node("Conv", ["x", "W", "b"], ["y"], name="conv", group=2, strides=[2, 2],
                            pads=[1, 1, 1, 1], dilations=[2, 2], kernel_shape=[3, 3])
    m = _model([node], [_vi("x", [1, 4, 9, 9])], [_vi("y", None)], [_init("W", (6, 2, 3, 3)), _init("b", (6,))])
    path = tmp_path / "conv.onnx"
    onnx.save(m, path)
    counts = count_onnx_macs(path)
    (conv,) = counts.nodes
    assert conv.output_shape == (1, 6, 4, 4)
    assert conv.macs == 6 * 4 * 4 * 2 * 9  # outputs * (C_in / group) * k*k
    assert conv.flops == 6 * 4 * 4  # bias adds
    assert counts.macs == 1728 and counts.batch == 1


def test_gemm_matmul_pool_and_elementwise_with_dynamic_batch():
    nodes = [
        helper.make_node("MaxPool", ["x"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "W1", "b1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "W2"], ["o"], name="fc2"),
        helper.make_node("Add", ["o", "o"], ["s"], name="add"),
        helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
    ]
    m = _model(
        nodes, [_vi("x", ["batch", 3, 8, 8])], [_vi("s", None), _vi("g", None)],
        [_init("W1", (10, 48)), _init("b1", (10,)), _init("W2", (10, 5))],
    )
    counts = count_onnx_macs(m)
    by = {n.name: n for n in counts.nodes}
    assert counts.batch == 1  # the symbolic batch counts as one sample
    assert by["pool"].flops == 3 * 4 * 4 * 4 and by["pool"].macs == 0
    assert by["flat"].macs == by["flat"].flops == 0
    assert by["fc1"].macs == 48 * 10 and by["fc1"].flops == 10
    assert by["relu"].flops == 10
    assert by["fc2"].macs == 10 * 5
    assert by["add"].flops == 5
    assert by["gap"].flops == 3 * 8 * 8
    assert counts.macs == 530
    assert counts.flops == 192 + 10 + 10 + 5 + 192


def test_fixed_batch_is_reported_and_averaged():
    node = helper.make_node("Gemm", ["x", "W"], ["y"], name="fc", transB=1)
    m = _model([node], [_vi("x", [4, 6])], [_vi("y", None)], [_init("W", (3, 6))])
    counts = count_onnx_macs(m)
    assert counts.batch == 4 and counts.macs == 4 * 18
    assert counts.to_dict()["macs_per_sample"] == 18


def test_unsupported_operator_names_file_and_node(tmp_path):
    node = helper.make_node("Einsum", ["x", "x"], ["y"], name="weird", equation="ij,ij->ij")
    m = _model([node], [_vi("x", [2, 2])], [_vi("y", None)])
    path = tmp_path / "weird.onnx"
    onnx.save(m, path)
    with pytest.raises(InputError, match=r"weird\.onnx.*'weird'.*Einsum"):
        count_onnx_macs(path)


def test_shapeless_node_is_an_error_naming_it():
    # a Reshape whose target shape is a graph input: shape inference cannot resolve it
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
        helper.make_node("Gemm", ["r", "W"], ["y"], name="fc_after_reshape", transB=1),
    ]
    m = _model(
        nodes, [_vi("x", [2, 6]), helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [_vi("y", None)], [_init("W", (3, 6))],
    )
    with pytest.raises(InputError, match="'fc_after_reshape'.*unknown"):
        count_onnx_macs(m)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        count_onnx_macs(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(InputError, match="bad.onnx"):
        count_onnx_macs(bad)
