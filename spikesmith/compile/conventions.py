"""Recognise the parameter conventions of graphs exported by other frameworks.

snnTorch's exporter (``snntorch.export_to_nir``) writes its discrete-time neurons
(``mem <- beta*mem + syn``, ``syn <- alpha*syn + x``) as NIR neurons at a fixed dt of
1e-4 s: ``tau_mem = dt/(1-beta)``, ``r = tau_mem/dt``, ``tau_syn = dt/(1-alpha)``,
``w_in = tau_syn/dt``, ``v_leak = 0``, ``v_reset = 0``. Discretised at that dt, forward
Euler gives back snnTorch's update exactly. The identities ``tau_mem/r = tau_syn/w_in = dt``
are a fingerprint: a graph whose every LIF/CubaLIF node satisfies them at dt = 1e-4 s was
written that way, and that dt is the one to run it at. snnTorch's neurons also reset one
step late (see :mod:`spikesmith.compile.units`); the graph cannot say whether they reset
to zero or by subtraction.
"""

from __future__ import annotations

import nir
import numpy as np

from spikesmith.compile.graph import META_DT, FlatGraph, flatten

_RTOL = 1e-5  # snnTorch stores float32 parameters
SNNTORCH_DT = 1e-4  # the time step snnTorch's exporter writes every neuron at


def _ratio(a, b) -> np.ndarray | None:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.size == 0 or b.size == 0 or np.any(b == 0):
        return None
    return a / b


def snntorch_export_dt(graph: nir.NIRGraph | FlatGraph) -> float | None:
    """snnTorch's export dt (1e-4 s) when every neuron of ``graph`` follows its exporter, else None.

    Graphs that spikesmith wrote (they carry ``spikesmith.dt``) are never matched.
    """
    flat = graph if isinstance(graph, FlatGraph) else flatten(graph)
    if META_DT in (flat.metadata or {}):
        return None
    dts = []
    for node in flat.nodes.values():
        if isinstance(node, nir.LIF):
            ratios = [_ratio(node.tau, node.r)]
            gains = [node.r]
        elif isinstance(node, nir.CubaLIF):
            ratios = [_ratio(node.tau_mem, node.r), _ratio(node.tau_syn, node.w_in)]
            gains = [node.r, node.w_in]
        elif isinstance(node, (nir.IF, nir.LI, nir.CubaLI, nir.I, nir.Threshold)):
            return None  # snnTorch exports none of these
        else:
            continue
        for field in ("v_leak", "v_reset"):
            if np.any(np.asarray(getattr(node, field), dtype=np.float64) != 0):
                return None
        # r = 1/(1-beta) and w_in = 1/(1-alpha) are at least 1 for any decay in [0, 1)
        if any(np.any(np.asarray(g, dtype=np.float64) < 1.0 - _RTOL) for g in gains):
            return None
        for r in ratios:
            if r is None:
                return None
            dts.append(r)
    if not dts:
        return None
    allv = np.concatenate(dts)
    if not np.allclose(allv, SNNTORCH_DT, rtol=_RTOL, atol=0):
        return None
    return SNNTORCH_DT
