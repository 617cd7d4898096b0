"""The one torch -> NIR exporter: any :class:`~spikesmith.nn.Network` of any registered family.

The network's node list is copied, its generated weights materialised and its norms folded
(:mod:`spikesmith.compile.passes`); then every node maps to NIR through :data:`EXPORTERS`, a table
keyed on the layer type (one function per type, as Norse's own NIR export does):

- ``Neurons`` -> ``LIF`` / ``IF`` / ``LI`` (time constants in seconds, NIR's continuous-time
  convention); a recurrent weight source becomes a conv/affine node on a cycle ``pop -> w -> pop``,
  which every target runs as a back edge with one step of delay;
- ``nn.Conv2d`` -> ``Conv2d``, ``nn.Linear`` -> ``Affine``, ``nn.AvgPool2d`` -> ``AvgPool2d``,
  ``nn.Flatten`` -> ``Flatten``; ``nn.Identity``/``nn.Dropout`` vanish;
- ``Relay`` -> an identity 1x1 ``Conv2d`` into a spike-copying ``LIF`` (tau = dt, threshold 0.5).

A node with several inputs becomes several edges into one NIR node (NIR sums them), so residual
sums need no node of their own. Layers that generate their weights (GEE) export the materialised
weight with their compact encodings in the node's metadata. The graph's metadata stores dt, the
reset rule, the input encoding and the network family.
"""

from __future__ import annotations

import copy
from typing import Callable

import nir
import norse.torch as norse
import numpy as np
import torch
from torch import nn

from spikesmith.compile.graph import META_DT, META_RESET, META_RESET_TIMING, META_VERSION, ResetRule
from spikesmith.compile.passes import fold_norms, materialise
from spikesmith.compile.units import norse_tau_inv_to_tau
from spikesmith.errors import GraphError

META_ENCODING = "spikesmith.encoding"
META_FAMILY = "spikesmith.family"


def _np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64)


def _full(value, shape) -> np.ndarray:
    return np.broadcast_to(_np(value), shape).astype(np.float64).copy()


def _pair(v) -> np.ndarray:
    return np.array(v if isinstance(v, (tuple, list)) else (v, v), dtype=np.int64)


def _weight_bias(layer: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    w = _np(layer.weight)
    b = np.zeros(w.shape[0]) if layer.bias is None else _np(layer.bias)
    return w, b


def neuron_node(cell: nn.Module, shape: tuple[int, ...], name: str) -> nir.NIRNode:
    """The NIR neuron node of a Norse cell over ``shape``."""
    p = cell.p
    if isinstance(cell, norse.LIFBoxCell):
        return nir.LIF(tau=_full(norse_tau_inv_to_tau(_np(p.tau_mem_inv)), shape), r=np.ones(shape),
                       v_leak=_full(p.v_leak, shape), v_threshold=_full(p.v_th, shape),
                       v_reset=_full(p.v_reset, shape))
    if isinstance(cell, norse.IAFCell):
        return nir.IF(r=np.ones(shape), v_threshold=_full(p.v_th, shape), v_reset=_full(p.v_reset, shape))
    if isinstance(cell, norse.LIBoxCell):
        return nir.LI(tau=_full(norse_tau_inv_to_tau(_np(p.tau_mem_inv)), shape), r=np.ones(shape),
                      v_leak=_full(p.v_leak, shape))
    raise GraphError(f"node '{name}': {type(cell).__name__} has no exact NIR form in spikesmith's export "
                     "(supported neurons: LIFBoxCell -> LIF, IAFCell -> IF, LIBoxCell -> LI)")


def _weight_node(layer: nn.Module, in_shape: tuple[int, ...], name: str) -> nir.NIRNode:
    layer = materialise(layer)
    if isinstance(layer, nn.Conv2d):
        w, b = _weight_bias(layer)
        node = nir.Conv2d(input_shape=np.array(in_shape[1:]), weight=w, bias=b, stride=_pair(layer.stride),
                          padding=_pair(layer.padding), dilation=_pair(layer.dilation), groups=int(layer.groups))
    elif isinstance(layer, nn.Linear):
        w, b = _weight_bias(layer)
        node = nir.Affine(weight=w, bias=b)
    else:
        raise GraphError(f"node '{name}': {type(layer).__name__} is not a convolution or linear layer")
    meta = getattr(layer, "nir_meta", None)
    if meta:
        node.metadata = {k: (_np(v) if isinstance(v, torch.Tensor) else v) for k, v in meta.items()}
    return node


# An exporter returns the NIR nodes of one network node: [(suffix, node)], chained in order; the
# first receives the node's inputs and the last is what its readers see ("" keeps the node's name).
Exporter = Callable[[nn.Module, tuple[int, ...], tuple[int, ...], str, float], list[tuple[str, nir.NIRNode]]]


def _neurons(layer, in_shape, out_shape, name, dt):
    return [("", neuron_node(layer.cell, out_shape, name))]


def _conv_or_linear(layer, in_shape, out_shape, name, dt):
    return [("", _weight_node(layer, in_shape, name))]


def _avg_pool(layer, in_shape, out_shape, name, dt):
    node = nir.AvgPool2d(kernel_size=_pair(layer.kernel_size), stride=_pair(layer.stride or layer.kernel_size),
                         padding=_pair(layer.padding))
    node.input_type = {"input": np.array(in_shape)}
    node.output_type = {"output": np.array(out_shape)}
    return [("", node)]


def _flatten(layer, in_shape, out_shape, name, dt):
    if layer.start_dim != 1 or layer.end_dim != -1:
        raise GraphError(f"node '{name}': only Flatten(start_dim=1, end_dim=-1) is exported")
    return [("", nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1))]


def _relay(layer, in_shape, out_shape, name, dt):
    c = in_shape[0]
    copy_conv = nir.Conv2d(input_shape=np.array(in_shape[1:]), weight=np.eye(c).reshape(c, c, 1, 1),
                           bias=np.zeros(c), stride=_pair(1), padding=_pair(0), dilation=_pair(1), groups=1)
    # tau = dt: v = input exactly; a copied spike (1) crosses threshold 0.5, silence does not
    lif = nir.LIF(tau=np.full(in_shape, dt), r=np.ones(in_shape), v_leak=np.zeros(in_shape),
                  v_threshold=np.full(in_shape, 0.5), v_reset=np.zeros(in_shape))
    lif.metadata = {"spikesmith.kind": "relay"}
    return [("_copy", copy_conv), ("", lif)]


def _exporters() -> dict[type, Exporter]:
    from spikesmith.nn.layers import Relay
    from spikesmith.nn.neurons import Neurons

    return {Neurons: _neurons, nn.Conv2d: _conv_or_linear, nn.Linear: _conv_or_linear, nn.AvgPool2d: _avg_pool,
            nn.Flatten: _flatten, Relay: _relay}


PASS_THROUGH = (nn.Identity, nn.Dropout)


def _exporter(layer: nn.Module, name: str) -> Exporter:
    table = _exporters()
    for cls in type(layer).__mro__:
        if cls in table:
            return table[cls]
    if isinstance(getattr(type(layer), "weight", None), property):  # a generated weight: materialised
        return _conv_or_linear
    known = sorted({c.__name__ for c in table} | {"GeneConv2d", "GeneLinear", "SignedConv", "MaskedLinear"})
    raise GraphError(f"node '{name}': {type(layer).__name__} has no NIR export (exported layers: {', '.join(known)})")


def _shapes(nodes, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Output shape (without time and batch) of every node, from a zero probe in eval mode."""
    from spikesmith.nn.neurons import Neurons

    shapes = {"input": tuple(input_shape)}
    values = {"input": torch.zeros(1, *input_shape, dtype=torch.float64)}
    with torch.no_grad():
        for name, layer, inputs in nodes:
            h = sum(values[i] for i in inputs[1:]) + values[inputs[0]] if len(inputs) > 1 else values[inputs[0]]
            if isinstance(layer, Neurons):
                y = torch.zeros_like(h)
            else:
                y = layer.double().eval()(h)
            values[name] = y
            shapes[name] = tuple(y.shape[1:])
    return shapes


def export_network(model, *, dt: float | None = None, encoding: str | None = None, reset: ResetRule | None = None,
                   family: str | None = None, name: str = "spikesmith") -> nir.NIRGraph:
    """The NIR graph of a :class:`~spikesmith.nn.Network` in eval mode (running batch-norm statistics).

    ``dt`` defaults to the network's; ``encoding`` (the data's input encoding), ``reset`` (default
    NIR's) and ``family`` go into the graph metadata. Raises :class:`GraphError` naming a node that
    has no NIR form.
    """
    from spikesmith.nn.neurons import Neurons

    dt = float(dt if dt is not None else getattr(model, "dt", 1e-3))
    reset = reset or ResetRule()
    src = [(name_, model.layers[name_], inputs) for name_, inputs in model.graph]
    nodes = fold_norms([(n, materialise(m), i) for n, m, i in copy.deepcopy(src)])
    shapes = _shapes(nodes, model.input_shape)
    nir_nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(model.input_shape)})}
    edges: list[tuple[str, str]] = []
    exit_of: dict[str, str] = {"input": "input"}  # network node -> the NIR node its readers connect to
    with torch.no_grad():
        for node_name, layer, inputs in nodes:
            sources = [exit_of[i] for i in inputs]
            if isinstance(layer, PASS_THROUGH):
                if len(sources) != 1:
                    raise GraphError(f"node '{node_name}': {type(layer).__name__} with several inputs has no NIR form")
                exit_of[node_name] = sources[0]
                continue
            in_shape = shapes[inputs[0]]
            parts = _exporter(layer, node_name)(layer, in_shape, shapes[node_name], node_name, dt)
            chain = []
            for suffix, nir_node in parts:
                key = node_name + suffix
                nir_nodes[key] = nir_node
                chain.append(key)
            edges += [(s, chain[0]) for s in sources]
            edges += list(zip(chain[:-1], chain[1:]))
            exit_of[node_name] = chain[-1]
            if isinstance(layer, Neurons) and layer.recurrent is not None:
                rec = f"{node_name}_rec"
                nir_nodes[rec] = _weight_node(layer.recurrent, shapes[node_name], rec)
                nir_nodes[rec].metadata = {**(nir_nodes[rec].metadata or {}), "spikesmith.feedback": True}
                edges += [(chain[-1], rec), (rec, chain[-1])]
    out_shape = shapes[model.output]
    nir_nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
    edges.append((exit_of[model.output], "output"))
    metadata = {META_DT: dt, META_RESET: reset.mode, META_RESET_TIMING: reset.timing, META_VERSION: 1,
                "spikesmith.name": name}
    if encoding:
        metadata[META_ENCODING] = str(encoding)
    if family:
        metadata[META_FAMILY] = str(family)
    return nir.NIRGraph(nodes=nir_nodes, edges=edges, metadata=metadata)
