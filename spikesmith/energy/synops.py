"""Operation counts of one simulation: synaptic operations, analog MACs, neuron updates, spikes.

Pure functions of a NIR graph and a :class:`~spikesmith.targets.trace.Trace`. Nothing
here knows how the graph was made, so a third-party NIR graph is counted the same way.

Definitions (see ``docs/energy.md``):

* A *synapse node* is a stateless NIR node that carries weights: Affine, Linear, Conv1d,
  Conv2d, SumPool2d, AvgPool2d, Scale. Its input at step t is the sum of its
  predecessors' outputs at step t (a back edge delivers the source's output of step t-1).
* Synaptic operations (SOPs, accumulates): for every nonzero input event, one accumulate
  per outgoing synapse that exists. Counted exactly by running a 0/1 copy of the node
  (nonzero weight -> 1, bias dropped, AvgPool -> SumPool) on the 0/1 mask of the input and
  summing the outputs, so conv borders, stride, padding, dilation, groups and zero weights
  all come out right.
* Analog MACs: the same count when the node's input is not binary (direct encoding, or a
  graded value such as a sum-pooled spike count): a multiply-accumulate per nonzero input
  per existing synapse, at every time step.
* Neuron updates: one per neuron per time step for every neuron node (LIF, CubaLIF, IF,
  LI, CubaLI, I, Threshold).
* Spikes: nonzero outputs of spiking nodes (LIF, CubaLIF, IF, Threshold).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np
import torch

from spikesmith.compile.graph import NEURON_TYPES, PASS_TYPES, SPIKING_TYPES, FlatGraph, flatten
from spikesmith.errors import GraphError, InputError, UnsupportedNodeError
from spikesmith.compile.ops import LINEAR_OPS
from spikesmith.targets.trace import Trace

#: stateless nodes that carry synapses (and cost operations)
SYNAPSE_TYPES: tuple[type, ...] = (
    nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d, nir.Scale,
)
#: stateless nodes that only move data (cost nothing)
FREE_TYPES: tuple[type, ...] = (*PASS_TYPES, nir.Flatten, nir.Delay)

# elements processed per chunk when running the 0/1 copy of a layer (bounds memory)
_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True, kw_only=True)
class LayerCounts:
    """Counts of one node of the flattened graph, summed over all time steps and samples.

    Attributes:
        name: node name in the flattened graph (``"outer.inner"`` inside subgraphs).
        node_type: NIR class name, e.g. ``"Conv2d"``.
        kind: ``"synapse"`` (stateless weighted node) or ``"neuron"``.
        inputs: names of the nodes whose outputs feed this one.
        synapses: existing synapses (input-output pairs with nonzero weight) of a synapse
            node for one sample; 0 for neuron nodes.
        binary_input: True when every input value was 0 or 1 (then ops are SOPs).
        spike_driven: True when the node's input traces back to a spiking node (its
            operation count scales with firing rates), False when only the graph input drives it.
        input_events: nonzero input values, all steps and samples.
        synops: synaptic operations (accumulates) driven by binary input.
        macs: analog multiply-accumulates driven by non-binary input.
        synops_per_step, macs_per_step: the same per time step, summed over the batch.
        neurons: neurons in a neuron node (product of its shape); 0 for synapse nodes.
        neuron_updates: ``neurons * T * B``.
        spiking: True for LIF, CubaLIF, IF and Threshold nodes.
        spikes: nonzero outputs of a spiking node, all steps and samples.
        spikes_per_step: spikes per time step summed over the batch.
        firing_rate: spikes per neuron per time step (dimensionless, 0..1); None if not spiking.
        activation_sparsity: fraction of this neuron node's outputs that are exactly 0.
    """

    name: str
    node_type: str
    kind: str
    inputs: tuple[str, ...] = ()
    synapses: int = 0
    binary_input: bool = True
    spike_driven: bool = False
    input_events: int = 0
    synops: int = 0
    macs: int = 0
    synops_per_step: tuple[int, ...] = ()
    macs_per_step: tuple[int, ...] = ()
    neurons: int = 0
    neuron_updates: int = 0
    spiking: bool = False
    spikes: int = 0
    spikes_per_step: tuple[int, ...] = ()
    firing_rate: float | None = None
    activation_sparsity: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("synapse", "neuron"):
            raise ValueError(f"LayerCounts '{self.name}': kind must be 'synapse' or 'neuron', got {self.kind!r}")
        for fname in ("synapses", "input_events", "synops", "macs", "neurons", "neuron_updates", "spikes"):
            if getattr(self, fname) < 0:
                raise ValueError(f"LayerCounts '{self.name}': {fname} must be >= 0")
        if self.firing_rate is not None and not 0.0 <= self.firing_rate <= 1.0:
            raise ValueError(f"LayerCounts '{self.name}': firing_rate {self.firing_rate} outside [0, 1]")

    def to_dict(self) -> dict:
        """All fields as JSON-ready Python values."""
        d = dict(self.__dict__)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d


@dataclass(frozen=True, kw_only=True)
class OpCounts:
    """Operation counts of a whole simulation (T steps, B samples).

    Totals sum over all steps and samples; ``*_per_sample`` divide by B, which is
    NeuroBench's convention (it averages over samples).

    Attributes:
        steps: T.  batch: B.  dt: time step in seconds.
        layers: one :class:`LayerCounts` per synapse or neuron node, in graph order.
        back_edges: recurrent edges (delivering the previous step's output).
    """

    steps: int
    batch: int
    dt: float
    layers: tuple[LayerCounts, ...]
    back_edges: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1:
            raise ValueError(f"OpCounts: steps and batch must be >= 1, got T={self.steps}, B={self.batch}")
        if not self.dt > 0:
            raise ValueError(f"OpCounts: dt must be positive, got {self.dt}")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ValueError(f"OpCounts: duplicate layer names in {names}")

    def layer(self, name: str) -> LayerCounts:
        """The counts of node ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no counted layer named '{name}' (layers: {[x.name for x in self.layers]})")

    @property
    def synops(self) -> int:
        """Synaptic operations (accumulates), all steps and samples."""
        return sum(x.synops for x in self.layers)

    @property
    def macs(self) -> int:
        """Analog MACs (non-binary synapse inputs), all steps and samples."""
        return sum(x.macs for x in self.layers)

    @property
    def neuron_updates(self) -> int:
        """Neuron updates, all steps and samples."""
        return sum(x.neuron_updates for x in self.layers)

    @property
    def spikes(self) -> int:
        """Spikes emitted by spiking nodes, all steps and samples."""
        return sum(x.spikes for x in self.layers)

    @property
    def spiking_neurons(self) -> int:
        """Neurons in spiking nodes (one sample)."""
        return sum(x.neurons for x in self.layers if x.spiking)

    @property
    def firing_rate(self) -> float | None:
        """Mean spikes per spiking neuron per step over all spiking nodes; None without any."""
        n = self.spiking_neurons
        return None if n == 0 else self.spikes / (n * self.steps * self.batch)

    @property
    def activation_sparsity(self) -> float | None:
        """Fraction of zero outputs over all spiking nodes (NeuroBench's ActivationSparsity)."""
        rate = self.firing_rate
        return None if rate is None else 1.0 - rate

    def per_sample(self, value: float) -> float:
        """``value / B``."""
        return value / self.batch

    def synops_per_step(self) -> np.ndarray:
        """Synaptic operations per time step (summed over the batch), shape ``(T,)``."""
        return _sum_steps(self.layers, "synops_per_step", self.steps)

    def spikes_per_step(self) -> np.ndarray:
        """Spikes per time step (summed over the batch), shape ``(T,)``."""
        return _sum_steps(self.layers, "spikes_per_step", self.steps)

    def to_dict(self) -> dict:
        """Totals, per-sample figures and per-layer counts as JSON-ready values."""
        B = self.batch
        return {
            "steps": self.steps,
            "batch": B,
            "dt": self.dt,
            "totals": {
                "synops": self.synops,
                "macs": self.macs,
                "neuron_updates": self.neuron_updates,
                "spikes": self.spikes,
            },
            "per_sample": {
                "synops": self.synops / B,
                "macs": self.macs / B,
                "neuron_updates": self.neuron_updates / B,
                "spikes": self.spikes / B,
            },
            "firing_rate": self.firing_rate,
            "activation_sparsity": self.activation_sparsity,
            "synops_per_step": self.synops_per_step().tolist(),
            "spikes_per_step": self.spikes_per_step().tolist(),
            "back_edges": [list(e) for e in self.back_edges],
            "notes": list(self.notes),
            "layers": [x.to_dict() for x in self.layers],
        }


def _sum_steps(layers, attr: str, steps: int) -> np.ndarray:
    total = np.zeros(steps, dtype=np.int64)
    for layer in layers:
        values = getattr(layer, attr)
        if values:
            total += np.asarray(values, dtype=np.int64)
    return total


def binarised(node: nir.NIRNode, name: str) -> nir.NIRNode:
    """The 0/1 copy of synapse node ``node``: nonzero weights -> 1, bias dropped, AvgPool -> SumPool."""
    def ones_where(w) -> np.ndarray:
        return (np.asarray(w) != 0).astype(np.float32)

    if isinstance(node, (nir.Affine, nir.Linear)):
        return nir.Linear(weight=ones_where(node.weight))
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        w = ones_where(node.weight)
        return type(node)(
            input_shape=node.input_shape, weight=w, stride=node.stride, padding=node.padding,
            dilation=node.dilation, groups=node.groups, bias=np.zeros(w.shape[0], dtype=np.float32),
        )
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        # AvgPool's 1/k^2 is a (nonzero) weight: the window's synapses all exist
        return nir.SumPool2d(kernel_size=node.kernel_size, stride=node.stride, padding=node.padding)
    if isinstance(node, nir.Scale):
        return nir.Scale(scale=ones_where(node.scale))
    raise UnsupportedNodeError(
        f"node '{name}': {type(node).__name__} is not a synapse node "
        f"(expected one of {[t.__name__ for t in SYNAPSE_TYPES]})"
    )


def fanout_sums(node01: nir.NIRNode, mask: np.ndarray, name: str, in_shape: tuple[int, ...]) -> np.ndarray:
    """Per-row sum of the 0/1 layer applied to ``mask`` (N, *in_shape): synapses reached, shape (N,)."""
    op = LINEAR_OPS[type(node01)]
    n = mask.shape[0]
    per_row = max(int(np.prod(in_shape)), 1)
    chunk = max(1, _CHUNK_ELEMENTS // per_row)
    out = np.empty(n, dtype=np.int64)
    with torch.no_grad():
        for start in range(0, n, chunk):
            x = torch.from_numpy(np.ascontiguousarray(mask[start:start + chunk], dtype=np.float32))
            y = op(node01, x.reshape(x.shape[0], *in_shape), name)
            # each output element is an integer <= fan-in, exact in float32; sum in float64
            out[start:start + chunk] = np.rint(y.reshape(y.shape[0], -1).double().sum(1).numpy()).astype(np.int64)
    return out


def _activity(trace: Trace, fg: FlatGraph, name: str) -> np.ndarray:
    """Output of node ``name`` as recorded in the trace, shape (T, B, *shape)."""
    arr = trace.activity.get(name)
    if arr is None and name in fg.inputs:
        arr = trace.input
    if arr is None:
        raise InputError(
            f"trace has no activity for node '{name}' (recorded nodes: {sorted(trace.activity)}); "
            "the energy model needs every node's output"
        )
    arr = np.asarray(arr)
    if arr.ndim < 2 or arr.shape[:2] != (trace.steps, trace.batch):
        raise InputError(
            f"trace activity of node '{name}' has shape {arr.shape}; expected (T, B, ...) with "
            f"T={trace.steps}, B={trace.batch}"
        )
    return arr


def zero_state_outputs(fg: FlatGraph) -> dict[str, np.ndarray]:
    """Each node's output before the first step, shape (*shape): what a back edge delivers at t = 0.

    Neurons, delays and inputs output zero; stateless nodes their response to that (their biases),
    the convention of :mod:`spikesmith.targets.reference`.
    """
    prev: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for name, node in fg.nodes.items():
            shape = fg.output_shape(name)
            if isinstance(node, NEURON_TYPES) or isinstance(node, nir.Delay) or name in fg.inputs:
                prev[name] = np.zeros(shape)
                continue
            parts = [prev[p] for p in fg.predecessors(name, back=False)]
            parts += [np.zeros(fg.output_shape(p)) for p in fg.predecessors(name, back=True)]
            h = parts[0]
            for q in parts[1:]:
                h = h + q
            x = torch.from_numpy(np.asarray(h, dtype=np.float64)[None])
            prev[name] = LINEAR_OPS[type(node)](node, x, name).numpy().reshape(shape)
    return prev


def _synapse_input(trace: Trace, fg: FlatGraph, name: str, in_shape: tuple[int, ...],
                   initial: dict[str, np.ndarray]) -> np.ndarray:
    """Input of synapse node ``name``: summed predecessor outputs, back edges delayed one step."""
    T, B = trace.steps, trace.batch
    size = int(np.prod(in_shape))
    total = None
    for src in fg.predecessors(name):
        a = _activity(trace, fg, src)
        if int(np.prod(a.shape[2:])) != size:
            raise GraphError(
                f"node '{name}': input from '{src}' has shape {a.shape[2:]}, expected {in_shape}"
            )
        a = a.reshape(T, B, size).astype(np.float64, copy=False)
        if (src, name) in fg.back_edges:
            first = np.broadcast_to(np.asarray(initial[src], dtype=np.float64).reshape(1, 1, size), (1, B, size))
            a = np.concatenate([first, a[:-1]], axis=0)
        total = a if total is None else total + a
    if total is None:
        raise GraphError(f"node '{name}': synapse node has no input edge")
    return total.reshape(T, B, *in_shape)


def _synapse_in_shape(fg: FlatGraph, name: str) -> tuple[int, ...]:
    node = fg.nodes[name]
    if isinstance(node, (nir.Conv1d, nir.Conv2d)) and node.input_shape is not None:
        # nir's own input_type ignores groups (it takes C_in from weight.shape[1])
        c_in = int(np.asarray(node.weight).shape[1]) * int(node.groups)
        return (c_in, *(int(v) for v in np.asarray(node.input_shape).reshape(-1)))
    types = getattr(node, "input_type", None) or {}
    if len(types) == 1 and next(iter(types.values())) is not None:
        try:
            return fg.input_shape(name)
        except GraphError:
            pass
    # Scale/pool nodes may carry no input type: take the (single) predecessor's shape
    preds = fg.predecessors(name, back=False) or fg.predecessors(name)
    if not preds:
        raise GraphError(f"node '{name}': no input edge to take the input shape from")
    return fg.output_shape(preds[0])


def spike_driven_nodes(fg: FlatGraph) -> set[str]:
    """Nodes whose output depends on some spiking node's spikes (fixpoint over all edges)."""
    driven = {n for n, node in fg.nodes.items() if isinstance(node, SPIKING_TYPES)}
    changed = True
    while changed:
        changed = False
        for src, dst in fg.edges:
            if src in driven and dst not in driven:
                driven.add(dst)
                changed = True
    return driven


def _count_synapse(trace: Trace, fg: FlatGraph, name: str, driven: bool,
                   initial: dict[str, np.ndarray]) -> LayerCounts:
    node = fg.nodes[name]
    T, B = trace.steps, trace.batch
    in_shape = _synapse_in_shape(fg, name)
    x = _synapse_input(trace, fg, name, in_shape, initial)
    nonzero = x != 0
    binary = bool(np.all(~nonzero | (x == 1)))
    node01 = binarised(node, name)
    per_row = fanout_sums(node01, nonzero.reshape(T * B, *in_shape), name, in_shape)
    per_step = per_row.reshape(T, B).sum(1)
    synapses = int(fanout_sums(node01, np.ones((1, *in_shape), dtype=np.float32), name, in_shape)[0])
    ops = tuple(int(v) for v in per_step)
    zeros = (0,) * T
    return LayerCounts(
        name=name,
        node_type=type(node).__name__,
        kind="synapse",
        inputs=tuple(fg.predecessors(name)),
        synapses=synapses,
        binary_input=binary,
        spike_driven=driven,
        input_events=int(nonzero.sum()),
        synops=sum(ops) if binary else 0,
        macs=0 if binary else sum(ops),
        synops_per_step=ops if binary else zeros,
        macs_per_step=zeros if binary else ops,
    )


def _count_neuron(trace: Trace, fg: FlatGraph, name: str) -> LayerCounts:
    node = fg.nodes[name]
    T, B = trace.steps, trace.batch
    shape = fg.output_shape(name)
    n = int(np.prod(shape))
    out = _activity(trace, fg, name)
    if int(np.prod(out.shape[2:])) != n:
        raise InputError(f"trace activity of node '{name}' has shape {out.shape[2:]}, expected {shape}")
    nz = out.reshape(T, B, n) != 0
    spiking = isinstance(node, SPIKING_TYPES)
    per_step = tuple(int(v) for v in nz.sum(axis=(1, 2))) if spiking else ()
    spikes = sum(per_step)
    return LayerCounts(
        name=name,
        node_type=type(node).__name__,
        kind="neuron",
        inputs=tuple(fg.predecessors(name)),
        neurons=n,
        neuron_updates=n * T * B,
        spiking=spiking,
        spikes=spikes,
        spikes_per_step=per_step,
        firing_rate=spikes / (n * T * B) if spiking else None,
        activation_sparsity=1.0 - float(nz.mean()),
    )


def count_ops(graph: nir.NIRGraph | FlatGraph, trace: Trace) -> OpCounts:
    """Count SOPs, analog MACs, neuron updates and spikes of ``trace`` on ``graph``.

    ``trace.activity`` must hold every node's output ``(T, B, *shape)`` (an Input node may
    fall back to ``trace.input``). Raises :class:`UnsupportedNodeError` for a node type the
    energy model does not know, naming the node and the supported types.
    """
    fg = graph if isinstance(graph, FlatGraph) else flatten(graph)
    layers: list[LayerCounts] = []
    notes: list[str] = []
    driven = spike_driven_nodes(fg)
    initial = zero_state_outputs(fg) if fg.back_edges else {}
    for name, node in fg.nodes.items():
        if isinstance(node, SYNAPSE_TYPES):
            is_driven = any(p in driven for p in fg.predecessors(name))
            layers.append(_count_synapse(trace, fg, name, is_driven, initial))
        elif isinstance(node, NEURON_TYPES):
            layers.append(_count_neuron(trace, fg, name))
        elif isinstance(node, FREE_TYPES):
            continue
        else:
            supported = [t.__name__ for t in SYNAPSE_TYPES + NEURON_TYPES + FREE_TYPES]
            raise UnsupportedNodeError(
                f"node '{name}': the energy model cannot count {type(node).__name__} nodes "
                f"(supported: {', '.join(supported)})"
            )
    for layer in layers:
        if layer.kind == "synapse" and not layer.binary_input:
            notes.append(
                f"'{layer.name}' receives non-binary input: its {layer.macs} operations are counted as MACs"
            )
    if fg.back_edges:
        notes.append(
            "recurrent edges " + ", ".join(f"{s}->{d}" for s, d in sorted(fg.back_edges))
            + " deliver the previous step's output (before the first step: the source's zero-state "
            "output); their ops are counted with that delay"
        )
    return OpCounts(
        steps=trace.steps,
        batch=trace.batch,
        dt=float(trace.dt),
        layers=tuple(layers),
        back_edges=tuple(sorted(fg.back_edges)),
        notes=tuple(notes),
    )
