"""Export a trained :class:`~spikesmith.nn.SNN` to a NIR graph (torch -> NIR).

Batch norm is folded into the preceding convolution or linear layer. Neuron time
constants are written in seconds (NIR's continuous-time convention) and the time step
the network was trained with is stored in the graph metadata (``spikesmith.dt``).
Layers that generate their weights (e.g. GEE layers) export their materialised dense
weights; their compact encodings go into the node's metadata.
"""

from __future__ import annotations

import nir
import norse.torch as norse
import numpy as np
import torch
from torch import nn

from spikesmith.compile.graph import META_DT, META_RESET, META_RESET_TIMING, META_VERSION
from spikesmith.compile.passes import fold_batch_norm
from spikesmith.errors import GraphError


def _np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64)


def _full(value, shape) -> np.ndarray:
    return np.broadcast_to(_np(value), shape).astype(np.float64).copy()


def _weights(layer: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    w, b = layer.weight, layer.bias
    w = _np(w)
    b = np.zeros(w.shape[0]) if b is None else _np(b)
    return w, b


def _neuron_node(cell: nn.Module, shape: tuple[int, ...], name: str) -> nir.NIRNode:
    p = cell.p
    if isinstance(cell, norse.LIFBoxCell):
        return nir.LIF(
            tau=_full(1.0 / _np(p.tau_mem_inv), shape),
            r=np.ones(shape),
            v_leak=_full(p.v_leak, shape),
            v_threshold=_full(p.v_th, shape),
            v_reset=_full(p.v_reset, shape),
        )
    if isinstance(cell, norse.IAFCell):
        return nir.IF(r=np.ones(shape), v_threshold=_full(p.v_th, shape), v_reset=_full(p.v_reset, shape))
    if isinstance(cell, norse.LIBoxCell):
        return nir.LI(tau=_full(1.0 / _np(p.tau_mem_inv), shape), r=np.ones(shape), v_leak=_full(p.v_leak, shape))
    raise GraphError(
        f"layer '{name}': {type(cell).__name__} has no exact NIR form in spikesmith's export "
        "(supported neurons: LIFBoxCell -> LIF, IAFCell -> IF, LIBoxCell -> LI)"
    )


def _pair(v) -> np.ndarray:
    return np.array(v if isinstance(v, (tuple, list)) else (v, v), dtype=np.int64)


def export_snn(model, *, dt: float | None = None, name: str = "spikesmith") -> nir.NIRGraph:
    """The NIR graph of a sequential SNN (``model.layers``, ``model.input_shape``).

    Raises :class:`GraphError` naming the layer that has no NIR form.
    """
    from spikesmith.nn import is_neuron

    layers = fold_batch_norm(list(model.layers))
    dt = float(dt if dt is not None else getattr(model, "dt", 1e-3))
    shape = tuple(int(s) for s in model.input_shape)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(shape)})}
    order = ["input"]
    with torch.no_grad():
        probe = torch.zeros(1, *shape)
        for i, layer in enumerate(layers):
            kind = type(layer).__name__.lower()
            key = f"{i}_{kind}"
            if is_neuron(layer):
                node = _neuron_node(layer, shape, key)
            elif isinstance(layer, nn.Conv2d):
                w, b = _weights(layer)
                node = nir.Conv2d(
                    input_shape=np.array(shape[1:]), weight=w, bias=b,
                    stride=_pair(layer.stride), padding=_pair(layer.padding),
                    dilation=_pair(layer.dilation), groups=int(layer.groups),
                )
            elif isinstance(layer, nn.Linear):
                w, b = _weights(layer)
                node = nir.Affine(weight=w, bias=b)
            elif isinstance(layer, nn.AvgPool2d):
                node = nir.AvgPool2d(kernel_size=_pair(layer.kernel_size),
                                     stride=_pair(layer.stride or layer.kernel_size),
                                     padding=_pair(layer.padding))
            elif isinstance(layer, nn.Flatten):
                if layer.start_dim != 1 or layer.end_dim != -1:
                    raise GraphError(f"layer '{key}': only Flatten(start_dim=1, end_dim=-1) is exported")
                node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
            elif isinstance(layer, (nn.Identity, nn.Dropout)):
                probe = layer(probe)
                continue
            else:
                raise GraphError(f"layer '{key}': {type(layer).__name__} has no NIR export")
            meta = getattr(layer, "nir_meta", None)
            if meta:
                node.metadata = {k: (_np(v) if isinstance(v, torch.Tensor) else v) for k, v in meta.items()}
            if not is_neuron(layer):
                probe = layer(probe)
            new_shape = tuple(probe.shape[1:])
            if isinstance(node, (nir.AvgPool2d,)):
                node.input_type = {"input": np.array(shape)}
                node.output_type = {"output": np.array(new_shape)}
            shape = new_shape
            nodes[key] = node
            order.append(key)
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    order.append("output")
    edges = list(zip(order[:-1], order[1:]))
    metadata = {META_DT: dt, META_RESET: "value", META_RESET_TIMING: "immediate", META_VERSION: 1, "spikesmith.name": name}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)
