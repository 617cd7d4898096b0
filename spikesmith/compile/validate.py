"""Validation pass: a NIR graph either runs, or the first defect is named in one line."""

from __future__ import annotations

import nir
import numpy as np

from spikesmith.compile.graph import FlatGraph, flatten, graph_dt, graph_reset
from spikesmith.errors import GraphError, UnsupportedNodeError

_ARRAY_FIELDS = ("weight", "bias", "scale", "tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset",
                 "w_in", "threshold", "delay")


def validate(graph: nir.NIRGraph | FlatGraph, *, supported: set[str] | None = None) -> FlatGraph:
    """Check structure, parameters and shapes; returns the flattened graph.

    Raises :class:`GraphError` naming the node, field or edge: unreadable spikesmith metadata
    (time step, reset rule), dangling nodes, NaN/inf
    parameters, non-positive time constants, unsupported node types (when ``supported``
    names the types a target runs), and shape mismatches along an edge.
    """
    flat = graph if isinstance(graph, FlatGraph) else flatten(graph)
    graph_dt(flat)  # the time step and reset rule spikesmith stores must read back
    graph_reset(flat)
    for name, node in flat.nodes.items():
        kind = type(node).__name__
        if supported is not None and kind not in supported:
            raise UnsupportedNodeError(
                f"node '{name}': type {kind} is not supported (supported: {', '.join(sorted(supported))})")
        for field in _ARRAY_FIELDS:
            value = getattr(node, field, None)
            if value is None or isinstance(value, str):
                continue
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise GraphError(f"node '{name}': field '{field}' is not numeric") from None
            if not np.all(np.isfinite(arr)):
                raise GraphError(f"node '{name}': field '{field}' contains NaN or inf")
            if field.startswith("tau") and np.any(arr <= 0):
                raise GraphError(f"node '{name}': field '{field}' must be positive (seconds), got {arr.min():g}")
    for src, dst in flat.edges:
        a, b = flat.nodes[src], flat.nodes[dst]
        try:
            out_shape = flat.output_shape(src)
            in_shape = flat.input_shape(dst)
        except GraphError:
            continue  # shapes not declared: the simulators check them when data flows
        if int(np.prod(out_shape)) != int(np.prod(in_shape)) or (
            len(out_shape) == len(in_shape) and out_shape != in_shape
        ):
            raise GraphError(
                f"edge '{src}' -> '{dst}': shape mismatch, {type(a).__name__} '{src}' outputs {out_shape} "
                f"but {type(b).__name__} '{dst}' expects {in_shape}"
            )
    return flat
