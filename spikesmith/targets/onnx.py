"""The ANN twin of a NIR graph, exported to ONNX: the baseline the energy report compares with.

The twin keeps every stateless node (weights, convolutions, pooling, flatten) exactly as
:mod:`spikesmith.compile.ops` computes it and replaces every neuron node (LIF, CubaLIF, IF,
LI, CubaLI, I, Threshold) by a ReLU: the same architecture as a conventional ANN, run once
on one time step's input ``(B, *input_shape)``. Recurrent (back) edges are dropped.

ONNX node names keep the NIR node they came from (``/<module>/<Op>``); the map is stored in
the model's ``metadata_props`` under ``spikesmith.node_map`` (JSON: ONNX node -> NIR node),
next to ``spikesmith.notes``.
"""

from __future__ import annotations

import io as _io
import json
import logging
import os
import re
import warnings
from pathlib import Path

import nir
import numpy as np
import torch

from spikesmith.compile.graph import NEURON_TYPES, FlatGraph, flatten
from spikesmith.errors import DependencyError, GraphError, UnsupportedNodeError
from spikesmith.io import write_bytes
from spikesmith.compile.ops import LINEAR_OPS

log = logging.getLogger(__name__)

META_NODE_MAP = "spikesmith.node_map"
META_NOTES = "spikesmith.notes"
OPSET = 17


class _NodeModule(torch.nn.Module):
    """One NIR node of the twin: its stateless op, or ReLU for a neuron node."""

    def __init__(self, node: nir.NIRNode, name: str):
        super().__init__()
        self.node = node
        self.nir_name = name
        self.is_neuron = isinstance(node, NEURON_TYPES)
        # a single time step has no past: a Delay passes its input through
        self.is_delay = isinstance(node, nir.Delay)
        if not (self.is_neuron or self.is_delay) and type(node) not in LINEAR_OPS:
            supported = sorted(t.__name__ for t in (*LINEAR_OPS, *NEURON_TYPES, nir.Delay))
            raise UnsupportedNodeError(
                f"node '{name}': the ANN twin cannot translate {type(node).__name__} "
                f"(supported: {', '.join(supported)})"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_neuron:
            return torch.relu(x)
        if self.is_delay:
            return x
        return LINEAR_OPS[type(self.node)](self.node, x, self.nir_name)


class AnnTwin(torch.nn.Module):
    """The ANN twin of a flattened NIR graph as a torch module: ``(B, *input_shape) -> (B, *output_shape)``."""

    def __init__(self, fg: FlatGraph):
        super().__init__()
        if len(fg.inputs) != 1 or len(fg.outputs) != 1:
            raise GraphError(
                f"the ANN twin needs one Input and one Output node, found inputs {fg.inputs} and outputs {fg.outputs}"
            )
        self.order = list(fg.order)
        self.preds = {n: fg.predecessors(n, back=False) for n in self.order}
        self.input_name, self.output_name = fg.inputs[0], fg.outputs[0]
        self.module_names: dict[str, str] = {}
        used: set[str] = set()
        for i, name in enumerate(self.order):
            safe = re.sub(r"[^0-9A-Za-z_]", "_", name) or f"node{i}"
            if safe in used or hasattr(self, safe) or safe[0].isdigit():
                safe = f"n{i}_{safe}"
            used.add(safe)
            self.module_names[name] = safe
            self.add_module(safe, _NodeModule(fg.nodes[name], name))
        self.dropped_edges = sorted(fg.back_edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: dict[str, torch.Tensor] = {}
        for name in self.order:
            if name == self.input_name:
                inp = x
            else:
                srcs = self.preds[name]
                inp = out[srcs[0]]
                for s in srcs[1:]:
                    inp = inp + out[s]
            out[name] = getattr(self, self.module_names[name])(inp)
        return out[self.output_name]


def ann_twin(graph: nir.NIRGraph | FlatGraph) -> AnnTwin:
    """The ANN twin of ``graph`` as a torch module (neurons -> ReLU, back edges dropped)."""
    fg = graph if isinstance(graph, FlatGraph) else flatten(graph)
    return AnnTwin(fg).eval()


def _input_shape(fg: FlatGraph, input_shape) -> tuple[int, ...]:
    if input_shape is not None:
        shape = tuple(int(v) for v in input_shape)
        if not shape or any(v <= 0 for v in shape):
            raise GraphError(f"input_shape {input_shape!r} must be positive sizes (without the batch)")
        return shape
    return fg.output_shape(fg.inputs[0])


def export_ann_twin(
    graph: nir.NIRGraph | FlatGraph,
    path: str | os.PathLike,
    *,
    input_shape: tuple[int, ...] | None = None,
    check: bool = True,
    seed: int = 0,
) -> Path:
    """Write the ANN twin of ``graph`` as an ONNX file for one time step; returns the path.

    The model takes ``input`` shaped ``(B, *input_shape)`` (dynamic B; ``input_shape``
    defaults to the graph's Input shape) and returns ``output``. With ``check`` the file is
    loaded into onnxruntime and run on a seeded random batch; the result must match the
    torch twin (relative tolerance 1e-4), otherwise :class:`GraphError` is raised.
    Uses torch's TorchScript exporter (``dynamo=False``), which needs no onnxscript.
    """
    fg = graph if isinstance(graph, FlatGraph) else flatten(graph)
    shape = _input_shape(fg, input_shape)
    twin = AnnTwin(fg).eval()
    notes = []
    if twin.dropped_edges:
        notes.append(
            "recurrent edges dropped in the ANN twin: "
            + ", ".join(f"{s}->{d}" for s, d in twin.dropped_edges)
        )
        log.warning(notes[-1])
    delays = [n for n, node in fg.nodes.items() if isinstance(node, nir.Delay)]
    if delays:
        notes.append(f"Delay node(s) {delays} pass their input through in the one-step ANN twin")
    example = torch.zeros((1, *shape), dtype=torch.float32)
    buf = _io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # the legacy exporter warns that it is legacy, and the tracer about constant weights
        warnings.simplefilter("ignore")
        torch.onnx.export(
            twin, (example,), buf, dynamo=False, opset_version=OPSET,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            do_constant_folding=True,
        )
    import onnx

    model = onnx.load_from_string(buf.getvalue())
    by_module = {m: n for n, m in twin.module_names.items()}
    node_map = {}
    for node in model.graph.node:
        parts = node.name.split("/")
        if len(parts) > 2 and parts[1] in by_module:
            node_map[node.name] = by_module[parts[1]]
    for key, value in ((META_NODE_MAP, json.dumps(node_map)), (META_NOTES, json.dumps(notes))):
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    data = model.SerializeToString()
    if check:
        _check_onnxruntime(twin, data, shape, seed=seed, where=str(path))
    return write_bytes(path, data)


def _check_onnxruntime(twin: AnnTwin, data: bytes, shape: tuple[int, ...], *, seed: int, where: str) -> None:
    """Run the ONNX bytes in onnxruntime and compare with the torch twin on a seeded batch."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise DependencyError("checking the ANN twin needs onnxruntime (pip install onnxruntime)") from None
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((3, *shape), generator=gen, dtype=torch.float32)
    with torch.no_grad():
        expected = twin(x).numpy()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    got = sess.run(["output"], {"input": x.numpy()})[0]
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-4, atol=1e-5):
        err = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("nan")
        raise GraphError(
            f"{where}: the ONNX twin disagrees with the torch twin (shapes {got.shape} vs {expected.shape}, "
            f"max abs difference {err:.3g})"
        )
