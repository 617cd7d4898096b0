"""Structural view of a NIR graph that every target and the energy model share.

:func:`flatten` inlines nested ``NIRGraph`` nodes (inner names become ``"outer.inner"``,
inner Input/Output nodes become pass-through nodes), orders the nodes topologically from
the graph inputs and marks the edges that close cycles ("back edges"). A back edge carries
its source's output of the *previous* time step; that is how spikesmith gives recurrent
NIR graphs a well-defined discrete-time meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np

from spikesmith.compile.neurons import NEURON_TYPES, SPIKING_TYPES  # noqa: F401  (the registry's, re-exported)
from spikesmith.errors import GraphError

#: graph metadata keys spikesmith writes and reads back
META_DT = "spikesmith.dt"
META_RESET = "spikesmith.reset"  # "value" (to v_reset, NIR's reset) | "subtract"
META_RESET_TIMING = "spikesmith.reset_timing"  # "immediate" (NIR's) | "delayed" (snnTorch's)
META_VERSION = "spikesmith.version"
DEFAULT_DT = 1e-3

PASS_TYPES: tuple[type, ...] = (nir.Input, nir.Output, nir.ir.graph.Identity)


@dataclass(frozen=True)
class FlatGraph:
    """A NIR graph without nested subgraphs, in topological order.

    Attributes:
        nodes: node name -> node, in topological order (back edges ignored).
        edges: every (source, destination) edge.
        back_edges: the edges that close a cycle; they deliver the previous step's value.
        inputs: names of the graph's Input nodes, outputs: names of its Output nodes.
        metadata: the top-level graph's metadata.
    """

    nodes: dict[str, nir.NIRNode]
    edges: list[tuple[str, str]]
    back_edges: frozenset[tuple[str, str]]
    inputs: list[str]
    outputs: list[str]
    metadata: dict = field(default_factory=dict)

    @property
    def order(self) -> list[str]:
        """Node names in evaluation order."""
        return list(self.nodes)

    def predecessors(self, name: str, *, back: bool | None = None) -> list[str]:
        """Sources of edges into ``name``; ``back`` selects only back (True) or forward (False) edges."""
        out = []
        for src, dst in self.edges:
            if dst != name:
                continue
            is_back = (src, dst) in self.back_edges
            if back is None or back == is_back:
                out.append(src)
        return out

    def successors(self, name: str) -> list[str]:
        """Destinations of edges out of ``name``."""
        return [dst for src, dst in self.edges if src == name]

    def output_shape(self, name: str) -> tuple[int, ...]:
        """Output shape of node ``name`` (without time and batch)."""
        return node_output_shape(self.nodes[name], name)

    def input_shape(self, name: str) -> tuple[int, ...]:
        """Input shape of node ``name`` (without time and batch)."""
        return node_input_shape(self.nodes[name], name)


def _shape(value, name: str, what: str) -> tuple[int, ...]:
    if value is None:
        raise GraphError(f"node '{name}': {what} shape is unknown; give the graph's Input a shape")
    arr = np.asarray(value)
    if arr.size == 0 or arr.dtype == object or np.any(arr < 0):
        raise GraphError(f"node '{name}': {what} shape {value!r} is not a list of sizes")
    return tuple(int(v) for v in arr.reshape(-1))


def node_output_shape(node: nir.NIRNode, name: str) -> tuple[int, ...]:
    """The node's output shape from its NIR output type."""
    types = getattr(node, "output_type", None) or {}
    if len(types) != 1:
        raise GraphError(f"node '{name}': expected one output port, found {sorted(types)}")
    return _shape(next(iter(types.values())), name, "output")


def node_input_shape(node: nir.NIRNode, name: str) -> tuple[int, ...]:
    """The node's input shape from its NIR input type."""
    types = getattr(node, "input_type", None) or {}
    if len(types) != 1:
        raise GraphError(f"node '{name}': expected one input port, found {sorted(types)}")
    shape = _shape(next(iter(types.values())), name, "input")
    if isinstance(node, (nir.Conv1d, nir.Conv2d)) and int(node.groups) > 1:
        # nir 1.0 derives a convolution's input channels from weight.shape[1], ignoring groups
        shape = (int(np.asarray(node.weight).shape[1]) * int(node.groups), *shape[1:])
    return shape


def graph_dt(graph: nir.NIRGraph) -> float | None:
    """The time step spikesmith stored in the graph's metadata, or None."""
    meta = getattr(graph, "metadata", None) or {}
    value = meta.get(META_DT)
    if value is None:
        return None
    try:
        dt = float(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        raise GraphError(f"graph metadata '{META_DT}' = {value!r} is not a number") from None
    if not np.isfinite(dt) or dt <= 0:
        raise GraphError(f"graph metadata '{META_DT}' = {dt} must be a positive number of seconds")
    return dt


RESET_MODES = ("value", "subtract")
RESET_TIMINGS = ("immediate", "delayed")


@dataclass(frozen=True)
class ResetRule:
    """What a spiking neuron does after it fires.

    ``mode``: "value" sets v to v_reset (the only reset NIR expresses); "subtract" lowers v by
    v_threshold (reset by subtraction, e.g. snnTorch's default; NIR cannot carry it; needs v_reset = 0).
    ``timing``: "immediate" applies the reset in the step of the spike (NIR, Norse, Lava);
    "delayed" applies it one step later, as snnTorch's neurons do (the reset decided from
    step t's membrane acts on step t+1's update). See :mod:`spikesmith.compile.units`.
    """

    mode: str = "value"
    timing: str = "immediate"

    def __post_init__(self) -> None:
        if self.mode not in RESET_MODES:
            raise GraphError(f"reset mode {self.mode!r} is not one of {', '.join(RESET_MODES)}")
        if self.timing not in RESET_TIMINGS:
            raise GraphError(f"reset timing {self.timing!r} is not one of {', '.join(RESET_TIMINGS)}")

    def describe(self) -> str:
        what = "to v_reset" if self.mode == "value" else "by subtraction"
        return f"reset {what}, {self.timing}"


def _meta_str(meta: dict, key: str) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        raise GraphError(f"graph metadata '{key}' = {value!r} is not a string")
    return value


def graph_reset(graph) -> ResetRule | None:
    """The reset rule stored in a graph's (or flat graph's) metadata, or None when it stores none.

    Raises GraphError naming the metadata field when a stored value is not understood.
    """
    meta = getattr(graph, "metadata", None) or {}
    mode, timing = _meta_str(meta, META_RESET), _meta_str(meta, META_RESET_TIMING)
    if mode is None and timing is None:
        return None
    if mode is not None and mode not in RESET_MODES:
        raise GraphError(f"graph metadata '{META_RESET}' = {mode!r}: expected one of {', '.join(RESET_MODES)}")
    if timing is not None and timing not in RESET_TIMINGS:
        raise GraphError(
            f"graph metadata '{META_RESET_TIMING}' = {timing!r}: expected one of {', '.join(RESET_TIMINGS)}")
    return ResetRule(mode=mode or "value", timing=timing or "immediate")


def _inline(graph: nir.NIRGraph, prefix: str, nodes: dict, edges: list) -> tuple[list[str], list[str]]:
    """Add ``graph``'s nodes (prefixed) to ``nodes``/``edges``; returns its input/output names."""
    ins: list[str] = []
    outs: list[str] = []
    entry: dict[str, list[str]] = {}
    exit_: dict[str, list[str]] = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_in, sub_out = _inline(node, full + ".", nodes, edges)
            entry[name], exit_[name] = sub_in, sub_out
        else:
            nodes[full] = node
            entry[name] = exit_[name] = [full]
            if isinstance(node, nir.Input):
                ins.append(full)
            elif isinstance(node, nir.Output):
                outs.append(full)
    for src, dst in graph.edges:
        srcs = _resolve(src, exit_, prefix, nodes, graph)
        dsts = _resolve(dst, entry, prefix, nodes, graph)
        edges.extend((s, d) for s in srcs for d in dsts)
    return ins, outs


def _resolve(ref: str, table: dict[str, list[str]], prefix: str, nodes: dict, graph) -> list[str]:
    if ref in table:
        return table[ref]
    # "sub.port" references a node inside a nested graph directly
    full = prefix + ref
    if full in nodes:
        return [full]
    raise GraphError(f"edge endpoint '{ref}' names no node of the graph (nodes: {sorted(graph.nodes)})")


def flatten(graph: nir.NIRGraph) -> FlatGraph:
    """Flatten nested subgraphs, sort topologically and find back edges.

    Raises :class:`GraphError` for edges to unknown nodes, a graph without Input or
    Output nodes, and nodes that no Input reaches (dangling nodes).
    """
    if not isinstance(graph, nir.NIRGraph):
        raise GraphError(f"expected a nir.NIRGraph, got {type(graph).__name__}")
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    inputs, outputs = _inline(graph, "", nodes, edges)
    # inner Input/Output nodes of subgraphs are pass-through nodes, not graph ports
    inputs = [n for n in inputs if "." not in n]
    outputs = [n for n in outputs if "." not in n]
    if not inputs:
        raise GraphError("graph has no Input node")
    if not outputs:
        raise GraphError("graph has no Output node")
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for s, d in edges:
        succ[s].append(d)

    # iterative DFS from the inputs: post-order gives a topological order, grey targets are back edges
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(nodes, WHITE)
    back: set[tuple[str, str]] = set()
    post: list[str] = []
    for root in inputs:
        if colour[root] != WHITE:
            continue
        colour[root] = GREY
        stack = [(root, iter(succ[root]))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = BLACK
                post.append(node)
                stack.pop()
            elif colour[nxt] == GREY:
                back.add((node, nxt))
            elif colour[nxt] == WHITE:
                colour[nxt] = GREY
                stack.append((nxt, iter(succ[nxt])))
    unreached = [n for n, c in colour.items() if c == WHITE]
    if unreached:
        raise GraphError(
            f"dangling node(s) {unreached}: no path from the graph's Input node(s) {inputs} reaches them"
        )
    order = list(reversed(post))
    # a node that reaches no output is dangling too
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for s, d in edges:
        pred[d].append(s)
    seen = set(outputs)
    frontier = list(outputs)
    while frontier:
        n = frontier.pop()
        for p in pred[n]:
            if p not in seen:
                seen.add(p)
                frontier.append(p)
    dead = [n for n in order if n not in seen]
    if dead:
        raise GraphError(f"dangling node(s) {dead}: they reach no Output node {outputs}")
    return FlatGraph(
        nodes={n: nodes[n] for n in order},
        edges=edges,
        back_edges=frozenset(back),
        inputs=inputs,
        outputs=outputs,
        metadata=dict(getattr(graph, "metadata", None) or {}),
    )
