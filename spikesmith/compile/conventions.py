"""Exporter conventions: recognise other frameworks' NIR, and write NIR that their importers run alike.

Reading: :func:`snntorch_export_dt` recognises graphs written by snnTorch's exporter (below).
Writing: :func:`for_framework` rewrites a canonical spikesmith graph (continuous-time parameters,
its dt in the metadata) so that a framework's own NIR importer, with the time step and reset
it assumes, reproduces spikesmith's dynamics (see "Writing for a framework" below).

snnTorch's exporter (``snntorch.export_to_nir``) writes its discrete-time neurons
(``mem <- beta*mem + syn``, ``syn <- alpha*syn + x``) as NIR neurons at a fixed dt of
1e-4 s: ``tau_mem = dt/(1-beta)``, ``r = tau_mem/dt``, ``tau_syn = dt/(1-alpha)``,
``w_in = tau_syn/dt``, ``v_leak = 0``, ``v_reset = 0``. Discretised at that dt, forward
Euler gives back snnTorch's update exactly. The identities ``tau_mem/r = tau_syn/w_in = dt``
are a fingerprint: a graph whose every LIF/CubaLIF node satisfies them at dt = 1e-4 s was
written that way, and that dt is the one to run it at. snnTorch's neurons also reset one
step late (see :mod:`spikesmith.compile.units`); the graph cannot say whether they reset
to zero or by subtraction.

Writing for a framework
-----------------------
No importer reads ``spikesmith.dt``: each assumes its own time step (snnTorch 1e-4 s, fixed;
SpikingJelly 1e-4 s unless told; Norse 1e-3 s unless told) and takes parameter forms of its own.
The rewrite uses two exact identities of spikesmith's forward-Euler neurons
(:mod:`spikesmith.compile.units`):

- a time constant keeps its meaning in steps: ``tau' = dt_consumer * (tau / dt)`` keeps the decay
  per step ``dt/tau``;
- the membrane (and synaptic current) may be measured in any per-neuron unit: with ``v = k*u``,
  a LIF ``v <- v + dt/tau*(v_leak - v + r*x)`` is the LIF with ``r' = r/k``,
  ``v_leak' = v_leak/k``, ``v_threshold' = v_threshold/k``, ``v_reset' = v_reset/k``; a CubaLIF
  also takes ``I = p*J``: ``w_in' = w_in/p``, ``r' = r*p/k``. The spikes are the same.

"unit" form sets ``r = w_in = 1`` (Norse's importer ignores ``r``; SpikingJelly's LIF); "per_step"
form sets ``r = tau_mem/dt``, ``w_in = tau_syn/dt`` (snnTorch's importer and SpikingJelly's CubaLIF:
``syn <- alpha*syn + x``, ``mem <- beta*mem + syn``), exactly what snnTorch's exporter writes.
Norse's importer has no AvgPool2d; an average pool becomes a SumPool2d whose ``1/kernel`` factor
moves into the node it feeds. What a framework cannot run alike (a reset rule it lacks, a node
type it does not map, parameters it needs uniform) is refused with a :class:`GraphError` naming
the node and field, never written. docs/interop.md lists what each framework gets.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import nir
import numpy as np

from spikesmith.compile.graph import (
    META_DT, META_RESET, META_RESET_TIMING, FlatGraph, ResetRule, flatten,
)
from spikesmith.compile.neurons import FAMILIES as NEURON_FAMILIES
from spikesmith.errors import GraphError, InputError

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


# ---------------------------------------------------------------- writing for a framework

META_FOR = "spikesmith.for"  # graph metadata: the framework a graph was rewritten for

_NEURONS = (nir.LIF, nir.CubaLIF, nir.IF)  # the neurons whose parameters the rewrite moves
_LINEAR = (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d)


@dataclass(frozen=True, kw_only=True)
class Consumer:
    """How one framework's own NIR importer reads a graph.

    ``dt``: the time step it assumes (seconds). ``maps``: node types it imports as spikesmith runs
    them. ``forms``: neuron type -> "unit" (r = w_in = 1) or "per_step" (r = tau_mem/dt,
    w_in = tau_syn/dt). ``zero``: neuron fields it ignores or requires to be 0. ``uniform``: fields
    it needs equal across a node (it reads one scalar). ``refuse``: node type -> why it would run
    differently. ``min_steps``: neuron type -> (least tau/dt, strict). ``equal``: neuron type -> pairs of fields it
    needs equal. ``avgpool_as_sumpool``: it maps SumPool2d but not AvgPool2d. ``hint``: how to load the file.
    """

    name: str
    dt: float | None
    maps: tuple[type, ...]
    forms: dict = field(default_factory=dict)
    zero: dict = field(default_factory=dict)
    uniform: tuple[str, ...] = ()
    min_steps: dict = field(default_factory=dict)
    equal: dict = field(default_factory=dict)
    refuse: dict = field(default_factory=dict)
    avgpool_as_sumpool: bool = False
    ungrouped_only: bool = False
    hint: str = ""


_SINABS_WHY = ("Sinabs' NIR import makes it a multi-spike neuron that resets by subtraction (several spikes in "
               "one step); spikesmith's neurons fire at most once per step and reset to v_reset")

CONSUMERS: dict[str, Consumer] = {
    "norse": Consumer(
        name="Norse", dt=1e-3,
        maps=(nir.Affine, nir.Linear, nir.Conv2d, nir.Flatten, nir.SumPool2d, nir.LIF, nir.CubaLIF, nir.IF),
        forms={nir.LIF: "unit", nir.CubaLIF: "unit", nir.IF: "unit"},
        # its importer passes no v_reset (Norse's default is 0) and leaks a CubaLIF's current towards v_leak
        zero={nir.LIF: ("v_reset",), nir.IF: ("v_reset",), nir.CubaLIF: ("v_reset", "v_leak")},
        avgpool_as_sumpool=True,
        hint="norse.torch.from_nir(nir.read(PATH)) at its default dt = 1e-3 s, one sample at a time "
             "(its Flatten keeps NIR's start_dim = 0, which would flatten the batch)",
    ),
    "snntorch": Consumer(
        name="snnTorch", dt=SNNTORCH_DT,
        maps=(nir.Affine, nir.Linear, nir.Conv2d, nir.Flatten, nir.AvgPool2d, nir.LIF, nir.CubaLIF),
        forms={nir.LIF: "per_step", nir.CubaLIF: "per_step"},
        zero={nir.LIF: ("v_leak", "v_reset"), nir.CubaLIF: ("v_leak", "v_reset")},
        uniform=("v_threshold",),
        refuse={nir.IF: "snnTorch's NIR import makes IF a Leaky neuron with beta = 0.9 that resets by subtraction"},
        hint="snntorch.import_nir.import_from_nir(nir.read(PATH)) (dt = 1e-4 s is built in), one sample at a "
             "time (its Flatten keeps NIR's start_dim = 0), snntorch.utils.reset(net) between samples",
    ),
    "spikingjelly": Consumer(
        name="SpikingJelly", dt=1e-4,
        maps=(nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d, nir.AvgPool2d, nir.Flatten, nir.LIF, nir.CubaLIF),
        forms={nir.LIF: "unit", nir.CubaLIF: "per_step"},
        zero={nir.CubaLIF: ("v_leak",)},
        uniform=("tau", "tau_syn", "tau_mem", "r", "w_in", "v_leak", "v_threshold", "v_reset"),
        refuse={nir.IF: "SpikingJelly's NIR import needs IF r = 1/dt and adds x per step, where spikesmith adds r*x"},
        min_steps={nir.LIF: (1.0, True), nir.CubaLIF: (1.0, False)},
        equal={nir.LIF: (("v_leak", "v_reset"),)},
        ungrouped_only=True,
        hint="spikingjelly.activation_based.nir_exchange.import_from_nir(PATH) at its default dt = 1e-4 s; "
             "carry the returned state from step to step",
    ),
    "sinabs": Consumer(
        name="Sinabs", dt=None,
        maps=(nir.Affine, nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.Flatten),
        refuse={nir.LIF: _SINABS_WHY, nir.IF: _SINABS_WHY + " (its IF also clips v at -v_threshold)",
                nir.CubaLIF: "Sinabs' NIR import has no CubaLIF",
                nir.LI: "Sinabs' NIR import ignores LI's r and integrates x unscaled (tau in steps, exponential decay)"},
        hint="sinabs.nir.from_nir(nir.read(PATH), batch_size=B)",
    ),
}
FRAMEWORKS: tuple[str, ...] = tuple(sorted(CONSUMERS))


def consumer(framework: str) -> Consumer:
    """The :class:`Consumer` called ``framework``; InputError listing the known ones otherwise."""
    try:
        return CONSUMERS[framework]
    except (KeyError, TypeError):
        raise InputError(f"--for {framework!r}: unknown framework (known: {', '.join(FRAMEWORKS)})") from None


def _arr(node, field: str) -> np.ndarray:
    return np.asarray(getattr(node, field), dtype=np.float64)


def _unsupported(c: Consumer, name: str, node) -> GraphError:
    t = type(node)
    why = c.refuse.get(t) or (f"{c.name}'s NIR import has no mapping for {t.__name__} "
                              f"(it maps {', '.join(sorted(m.__name__ for m in c.maps))})")
    return GraphError(f"--for {c.name.lower()}: node '{name}' ({t.__name__}): {why}, so it would run differently there")


def _scale_input(node, s: float, where: str, c: Consumer, src: str) -> None:
    """Multiply what ``node`` makes of its input by ``s`` (weights, not biases; or the neuron's input gain)."""
    if isinstance(node, _LINEAR):
        node.weight = np.asarray(node.weight, dtype=np.float64) * s
    elif isinstance(node, (nir.LIF, nir.IF)):
        node.r = _arr(node, "r") * s
    elif isinstance(node, nir.CubaLIF):
        node.w_in = _arr(node, "w_in") * s
    else:
        raise GraphError(f"--for {c.name.lower()}: node '{src}' (AvgPool2d) feeds '{where}' ({type(node).__name__}): "
                         f"{c.name} has no average pooling, and its 1/kernel factor cannot move into a "
                         f"{type(node).__name__}")


def _avgpools_to_sumpools(nodes: dict, edges: list, c: Consumer) -> None:
    """Replace each AvgPool2d by a SumPool2d and move its 1/kernel factor into the node it feeds."""
    for name, node in list(nodes.items()):
        if not isinstance(node, nir.AvgPool2d):
            continue
        if np.any(np.asarray(node.padding) != 0):
            raise GraphError(f"--for {c.name.lower()}: node '{name}' (AvgPool2d): padding {node.padding} cannot be "
                             f"expressed ({c.name}'s sum pooling ignores padding)")
        succ = [d for s, d in edges if s == name]
        for d in succ:
            if [s for s, dd in edges if dd == d] != [name] or d not in nodes:
                raise GraphError(f"--for {c.name.lower()}: node '{name}' (AvgPool2d) feeds '{d}', which has other "
                                 "inputs: its 1/kernel factor cannot move there")
            _scale_input(nodes[d], 1.0 / float(np.prod(np.asarray(node.kernel_size))), d, c, name)
        pool = nir.SumPool2d(kernel_size=np.asarray(node.kernel_size), stride=np.asarray(node.stride),
                             padding=np.asarray(node.padding))
        pool.input_type, pool.output_type = node.input_type, node.output_type
        nodes[name] = pool


def _rewrite_neuron(node, name: str, c: Consumer, dt: float) -> None:
    """Rewrite one neuron in place for consumer ``c``: time constants for its dt, gains in its form."""
    t = type(node)
    where = f"--for {c.name.lower()}: node '{name}' ({t.__name__})"
    for field in c.zero.get(t, ()):
        if np.any(_arr(node, field) != 0):
            raise GraphError(f"{where}: {field} must be 0 for {c.name}'s NIR import (it has {_arr(node, field).max():g})")
    form = c.forms[t]
    q = c.dt / dt  # seconds at the consumer's dt per second at ours: same decay per step
    if t is nir.LIF:
        a = dt / _arr(node, "tau")
        k = _arr(node, "r") * (a if form == "per_step" else 1.0)
        node.tau = _arr(node, "tau") * q
        node.r = node.tau / c.dt if form == "per_step" else np.ones_like(k)
    elif t is nir.CubaLIF:
        a_syn, a_mem = dt / _arr(node, "tau_syn"), dt / _arr(node, "tau_mem")
        p = _arr(node, "w_in") * (a_syn if form == "per_step" else 1.0)
        k = _arr(node, "r") * p * (a_mem if form == "per_step" else 1.0)
        node.tau_syn, node.tau_mem = _arr(node, "tau_syn") * q, _arr(node, "tau_mem") * q
        node.w_in = node.tau_syn / c.dt if form == "per_step" else np.ones_like(p)
        node.r = node.tau_mem / c.dt if form == "per_step" else np.ones_like(k)
    else:  # IF: per step, independent of dt
        k = _arr(node, "r")
        node.r = np.ones_like(k)
    if np.any(k <= 0) or not np.all(np.isfinite(k)):
        raise GraphError(f"{where}: its input gain must be positive and finite to be rescaled")
    for field in ("v_threshold", "v_reset", "v_leak"):
        if hasattr(node, field):
            setattr(node, field, _arr(node, field) / k)
    if t in c.min_steps:
        least, strict = c.min_steps[t]
        for field in ("tau", "tau_syn", "tau_mem"):
            if hasattr(node, field):
                steps = _arr(node, field) / c.dt
                if np.any(steps <= least) if strict else np.any(steps < least * (1 - 1e-9)):
                    raise GraphError(f"{where}: {field} is {steps.min():g} steps; {c.name}'s NIR import needs "
                                     f"{'more than' if strict else 'at least'} {least:g}")
    for a, b in c.equal.get(t, ()):
        if np.any(_arr(node, a) != _arr(node, b)):
            raise GraphError(f"{where}: {c.name}'s NIR import needs {a} = {b}")
    for field in c.uniform:
        if hasattr(node, field) and np.ptp(_arr(node, field)) != 0:
            raise GraphError(f"{where}: {c.name}'s NIR import needs one {field} for the whole node; "
                             f"it ranges {_arr(node, field).min():g} .. {_arr(node, field).max():g}")


def _rewrite(graph: nir.NIRGraph, c: Consumer, dt: float) -> nir.NIRGraph:
    nodes = {k: copy.deepcopy(v) for k, v in graph.nodes.items()}
    edges = list(graph.edges)
    if c.avgpool_as_sumpool:
        _avgpools_to_sumpools(nodes, edges, c)
    for name, node in nodes.items():
        if isinstance(node, nir.NIRGraph):
            nodes[name] = _rewrite(node, c, dt)
            continue
        if isinstance(node, (nir.Input, nir.Output)):
            continue
        if type(node) not in c.maps:
            raise _unsupported(c, name, node)
        if c.ungrouped_only and isinstance(node, (nir.Conv1d, nir.Conv2d)) and int(node.groups) != 1:
            raise GraphError(f"--for {c.name.lower()}: node '{name}' ({type(node).__name__}): {c.name}'s NIR "
                             f"import has no grouped convolution (groups = {int(node.groups)})")
        if type(node) in _NEURONS:
            _rewrite_neuron(node, name, c, dt)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(graph.metadata or {}), type_check=False)


def for_framework(graph: nir.NIRGraph, framework: str, *, dt: float, reset: ResetRule = ResetRule()) -> nir.NIRGraph:
    """A copy of ``graph`` that ``framework``'s own NIR importer runs as spikesmith runs ``graph``.

    ``graph`` runs at ``dt`` (seconds) with the reset rule ``reset``. The copy's time constants
    are written for the framework's fixed dt and its neuron gains in the framework's form (module
    docstring); its metadata stores that dt, NIR's reset and ``spikesmith.for``, so spikesmith
    runs the copy alike too. Raises InputError for an unknown framework and GraphError naming
    the node and field for anything the framework would run differently.
    """
    c = consumer(framework)
    for name, node in flatten(graph).nodes.items():
        if type(node) in _NEURONS:
            subtract, delayed = NEURON_FAMILIES[type(node)].reset(reset)
            if subtract or delayed:
                raise GraphError(f"--for {framework}: node '{name}' ({type(node).__name__}) runs with "
                                 f"{reset.describe()}; {c.name}'s NIR import resets to v_reset in the step of the "
                                 "spike, so it would run differently there")
    out = _rewrite(graph, c, dt)
    out.metadata.update({META_DT: float(c.dt if c.dt is not None else dt), META_RESET: "value",
                         META_RESET_TIMING: "immediate", META_FOR: framework})
    return out
