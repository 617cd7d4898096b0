"""MACs and FLOPs of an ONNX model, node by node, after ONNX shape inference.

Conventions (the usual dense-ANN ones, so the baseline is what an ANN accelerator does):

* Conv: ``MACs = N * C_out * prod(out_spatial) * (C_in / groups) * prod(kernel)``; taps that
  fall on padding are counted (a dense engine multiplies them); bias adds are FLOPs.
* ConvTranspose: ``MACs = N * C_in * prod(in_spatial) * (C_out / groups) * prod(kernel)``.
* Gemm: ``MACs = M * K * N``; the C term adds ``M * N`` FLOPs. MatMul: ``prod(out) * K``.
* Pooling: one FLOP per window element per output (MaxPool, AveragePool, LpPool);
  global pooling one FLOP per input element.
* Element-wise ops: one FLOP per output element (per extra input for variadic ones);
  BatchNormalization 2, Softmax/LogSoftmax 3 per element.
* Data movement (Reshape, Flatten, Transpose, Concat, ...) costs nothing.

Symbolic dimensions (a dynamic batch) are set to 1 before shape inference, so figures
of a model exported with a dynamic batch are per sample.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikesmith.errors import DependencyError, InputError

#: one FLOP per output element
ELEMENTWISE_OPS = frozenset({
    "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu",
    "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign", "Mish", "Exp", "Log",
    "Sqrt", "Reciprocal", "Neg", "Abs", "Pow", "Erf", "Clip", "Sign", "Floor", "Ceil", "Round",
    "ThresholdedRelu", "Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual", "Where",
    "Not", "And", "Or", "Xor", "Sin", "Cos",
})
#: one FLOP per output element per extra input
VARIADIC_OPS = frozenset({"Sum", "Max", "Min", "Mean"})
#: FLOPs per output element
WEIGHTED_ELEMENTWISE = {"BatchNormalization": 2, "Softmax": 3, "LogSoftmax": 3, "InstanceNormalization": 4,
                        "LayerNormalization": 5}
#: data movement and bookkeeping
FREE_OPS = frozenset({
    "Reshape", "Flatten", "Transpose", "Identity", "Squeeze", "Unsqueeze", "Concat", "Shape",
    "Gather", "Constant", "ConstantOfShape", "Cast", "Slice", "Dropout", "Pad", "Split",
    "Expand", "Size", "Range", "Tile", "DepthToSpace", "SpaceToDepth", "CastLike",
})
POOL_OPS = frozenset({"MaxPool", "AveragePool", "LpPool"})
GLOBAL_POOL_OPS = frozenset({"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"})
MAC_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


@dataclass(frozen=True, kw_only=True)
class OnnxNodeCount:
    """MACs and FLOPs of one ONNX node.

    Attributes:
        name: the node's name (or ``"<op_type>_<index>"`` when it has none).
        op_type: ONNX operator.  macs: multiply-accumulates.  flops: other arithmetic ops.
        output_shape: shape of the node's first output after inference.
    """

    name: str
    op_type: str
    macs: int
    flops: int
    output_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.macs < 0 or self.flops < 0:
            raise ValueError(f"ONNX node '{self.name}': negative count")

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {"name": self.name, "op_type": self.op_type, "macs": self.macs, "flops": self.flops,
                "output_shape": list(self.output_shape)}


@dataclass(frozen=True, kw_only=True)
class OnnxCounts:
    """MACs and FLOPs of a whole ONNX model for one forward pass.

    Attributes:
        source: file the model came from (or ``"<model>"``).
        nodes: per-node counts in graph order.
        batch: batch size the counts are for (symbolic batch dimensions count as 1).
        metadata: the model's ``metadata_props`` (e.g. spikesmith's NIR node map).
    """

    source: str
    nodes: tuple[OnnxNodeCount, ...]
    batch: int = 1
    metadata: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError(f"{self.source}: batch must be >= 1")

    @property
    def macs(self) -> int:
        """Total MACs of one forward pass of ``batch`` samples."""
        return sum(n.macs for n in self.nodes)

    @property
    def flops(self) -> int:
        """Total element-wise FLOPs of one forward pass of ``batch`` samples."""
        return sum(n.flops for n in self.nodes)

    def to_dict(self) -> dict:
        """JSON-ready form with totals and per-sample figures."""
        return {
            "source": self.source,
            "batch": self.batch,
            "macs": self.macs,
            "flops": self.flops,
            "macs_per_sample": self.macs / self.batch,
            "flops_per_sample": self.flops / self.batch,
            "nodes": [n.to_dict() for n in self.nodes],
        }


def _load(model) -> tuple[object, str]:
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a core dependency
        raise DependencyError("counting ONNX MACs needs the 'onnx' package (pip install onnx)") from None
    if isinstance(model, onnx.ModelProto):
        return model, "<model>"
    path = Path(os.fspath(model))
    if not path.is_file():
        raise InputError(f"{path}: ONNX file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (expected an ONNX model)")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and others for corrupt files
        raise InputError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    if not proto.graph.node:
        raise InputError(f"{path}: the ONNX model has no nodes (expected an ANN to count)")
    return proto, str(path)


def _fix_symbolic_dims(model, where: str) -> tuple[object, int]:
    """A copy of ``model`` whose symbolic input dimensions are 1; returns it and the batch size."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    initializers = {t.name for t in m.graph.initializer}
    batch = None
    for inp in m.graph.input:
        if inp.name in initializers:
            continue
        if not inp.type.HasField("tensor_type") or not inp.type.tensor_type.HasField("shape"):
            raise InputError(f"{where}: graph input '{inp.name}' has no shape; export the model with input shapes")
        dims = inp.type.tensor_type.shape.dim
        for i, d in enumerate(dims):
            if not d.HasField("dim_value"):
                d.Clear()
                d.dim_value = 1
        if dims and batch is None:
            batch = int(dims[0].dim_value)
    return m, batch or 1


def _shapes(model, where: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> static shape, for every tensor shape inference could resolve."""
    import onnx
    from onnx import numpy_helper

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise InputError(f"{where}: ONNX shape inference failed ({type(exc).__name__}: {exc})") from None
    shapes: dict[str, tuple[int, ...]] = {}
    g = inferred.graph
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or not tt.HasField("shape"):
            continue
        dims = tt.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = tuple(int(d.dim_value) for d in dims)
    for init in g.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
    for node in g.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    shapes[node.output[0]] = tuple(numpy_helper.to_array(attr.t).shape)
    return shapes


def _attr(node, name: str, default):
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _count_node(node, name: str, shape, where: str) -> tuple[int, int]:
    """(MACs, FLOPs) of one node; ``shape(tensor_name)`` returns its static shape."""
    op = node.op_type
    if op in FREE_OPS:
        return 0, 0
    out = shape(node.output[0])
    n_out = int(np.prod(out)) if out else 1
    if op == "Conv":
        w = shape(node.input[1])  # (C_out, C_in / group, *k): each output reads w[1] * prod(k) inputs
        macs = n_out * w[1] * int(np.prod(w[2:]))
        flops = n_out if len(node.input) > 2 and node.input[2] else 0
        return macs, flops
    if op == "ConvTranspose":
        x = shape(node.input[0])
        w = shape(node.input[1])  # (C_in, C_out / group, *k)
        macs = int(np.prod(x)) * w[1] * int(np.prod(w[2:]))
        flops = n_out if len(node.input) > 2 and node.input[2] else 0
        return macs, flops
    if op == "Gemm":
        a = shape(node.input[0])
        k = a[0] if int(_attr(node, "transA", 0)) else a[-1]
        macs = n_out * k
        flops = n_out if len(node.input) > 2 and node.input[2] else 0
        return macs, flops
    if op == "MatMul":
        a = shape(node.input[0])
        return n_out * a[-1], 0
    if op in POOL_OPS:
        kernel = _attr(node, "kernel_shape", None)
        if kernel is None:
            raise InputError(f"{where}: node '{name}' ({op}) has no kernel_shape")
        return 0, n_out * int(np.prod(kernel))
    if op in GLOBAL_POOL_OPS:
        return 0, int(np.prod(shape(node.input[0])))
    if op in ELEMENTWISE_OPS:
        return 0, n_out
    if op in VARIADIC_OPS:
        return 0, n_out * max(len([i for i in node.input if i]) - 1, 1)
    if op in WEIGHTED_ELEMENTWISE:
        return 0, n_out * WEIGHTED_ELEMENTWISE[op]
    if op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"):
        return 0, int(np.prod(shape(node.input[0])))
    supported = sorted(MAC_OPS | POOL_OPS | GLOBAL_POOL_OPS | ELEMENTWISE_OPS | VARIADIC_OPS
                       | set(WEIGHTED_ELEMENTWISE) | FREE_OPS)
    raise InputError(
        f"{where}: node '{name}' has operator {op}, which the MAC counter does not know "
        f"(supported: {', '.join(supported)})"
    )


def count_onnx_macs(model: str | os.PathLike | object) -> OnnxCounts:
    """Count MACs and FLOPs of every node of an ONNX model (path or ``onnx.ModelProto``).

    Raises :class:`InputError` naming the file and node for an unsupported operator or a
    node whose input/output shapes shape inference could not resolve.
    """
    proto, where = _load(model)
    fixed, batch = _fix_symbolic_dims(proto, where)
    shapes = _shapes(fixed, where)
    counts = []
    for i, node in enumerate(fixed.graph.node):
        name = node.name or f"{node.op_type}_{i}"

        def shape(tensor: str, _node=node, _name=name) -> tuple[int, ...]:
            s = shapes.get(tensor)
            if s is None:
                raise InputError(
                    f"{where}: node '{_name}' ({_node.op_type}): shape of tensor '{tensor}' is unknown "
                    "after ONNX shape inference; export the model with static input shapes"
                )
            return s

        macs, flops = _count_node(node, name, shape, where)
        out_shape = shapes.get(node.output[0], ()) if node.output else ()
        counts.append(OnnxNodeCount(name=name, op_type=node.op_type, macs=int(macs), flops=int(flops),
                                    output_shape=tuple(out_shape)))
    meta = tuple((p.key, p.value) for p in proto.metadata_props)
    return OnnxCounts(source=where, nodes=tuple(counts), batch=batch, metadata=meta)
