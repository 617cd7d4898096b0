"""Backend-neutral deployment plan: neuron populations and the linear connections between them.

:func:`build_plan` runs named passes over a flattened NIR graph:

1. :func:`plan_populations`: every neuron node becomes a :class:`Population` in Lava's LIF form,
   normalised to threshold 1 and reset 0 (``v' = (v - v_reset) / (v_threshold - v_reset)``), as
   its family in :mod:`spikesmith.compile.neurons` says.
2. :func:`plan_connections`: every path of stateless nodes (Affine, Linear, Conv, pooling, Scale,
   Flatten, identities, Delay) from one population to another becomes a connection. A path that
   is a chain of convolutions, pooling and per-channel scales is composed into **one
   convolution** (:func:`spikesmith.compile.ops.compose`; an identity edge is a depthwise 1x1
   convolution); anything else becomes a dense matrix computed by pushing a basis through the
   path (exact: the path is linear), which is allowed only while it is small
   (:data:`MAX_DENSE_ENTRIES`). The constant part (biases) is the zero-input response.
3. :func:`fold_gains`: each population's input gain is multiplied into its incoming weights (per
   output channel for convolutions) and its constant drive becomes the neurons' bias (or, for a
   synaptic current, a connection from a constant-one source).
4. :func:`plan_readouts`: how each graph output is read: a population, or connections from one.
5. :func:`assign_lags`: on Lava every connection process adds one step of latency. A
   population's *lag* is how many steps its Lava output trails the reference: the largest lag of
   its inputs plus one. A connection that arrives earlier than the others into the same
   population waits ``lag_delay`` steps in its synapse (a synaptic delay), so paths of unequal
   depth (residual shortcuts) stay exact. A back edge carries one step of delay by definition; a
   NIR Delay node becomes the connection's ``delay`` (one connection per distinct delay): both are
   part of the graph's meaning, unlike ``lag_delay``, which only Lava needs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping

import nir
import numpy as np
import torch

from spikesmith.compile import neurons
from spikesmith.compile.graph import FlatGraph, ResetRule, graph_reset
from spikesmith.compile.neurons import NeuronFamily
from spikesmith.compile.ops import (LINEAR_OPS, PASS_THROUGH, ConvGeometry, ConvSpec, as_conv, compose, conv_view,
                                    delay_steps, identity_conv)
from spikesmith.errors import GraphError, UnsupportedNodeError

MAX_DENSE_ENTRIES = 1 << 25  # largest dense matrix a connection may use (256 MiB of float64)
MAX_PATHS = 16  # paths between two populations composed one by one; more are composed as one dense matrix
BIAS_SOURCE = "__ones__"  # the constant-one source of bias connections


@dataclass(frozen=True, kw_only=True, eq=False)
class Population:
    """A group of neurons of one family (or the graph input, family None) in Lava's normalised LIF form.

    Arrays are per neuron in NIR flat order: ``u <- u (1 - du) + input``, ``v <- v (1 - dv) + u +
    bias``, fire when ``v > 1`` (spiking families); the voltage in NIR units is ``v * scale + offset``.
    """

    name: str
    shape: tuple[int, ...]  # NIR shape (without time and batch)
    family: NeuronFamily | None = None
    du: np.ndarray | None = None
    dv: np.ndarray | None = None
    bias: np.ndarray | None = None
    scale: np.ndarray | None = None
    offset: np.ndarray | None = None
    gain: np.ndarray | None = None  # multiplier of incoming weights (already folded into the connections)
    subtract: bool = False  # reset by subtraction (v -= 1) instead of to 0
    delayed: bool = False  # the reset acts one step after the spike (snnTorch)
    lag: int = 0

    @property
    def is_input(self) -> bool:
        return self.family is None

    @property
    def spiking(self) -> bool:
        """Emits spikes (0/1); the input and non-spiking families send real values."""
        return self.family is not None and self.family.spiking

    @property
    def node_type(self) -> str:
        return "Input" if self.family is None else self.family.name

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True, kw_only=True, eq=False)
class Connection:
    """A linear map from one population's output into another's input (or into a graph output).

    ``weight``: a dense (dst_size, src_size) matrix in NIR flat order, or, with ``conv`` set, a
    convolution kernel (C_out, C_in / groups, kH, kW) read through that geometry.
    """

    src: str
    dst: str
    weight: np.ndarray
    conv: ConvGeometry | None = None
    recurrent: bool = False  # the path contains a back edge (one step of delay)
    graded: bool = False  # the source sends real values (the input, or a non-spiking population's v)
    nodes: tuple[str, ...] = ()  # the NIR nodes composed into this connection
    delay: int = 0  # synaptic delay in steps from NIR Delay nodes, on top of any back edge
    lag_delay: int = 0  # extra steps on Lava only, so that this input arrives with the others

    @property
    def kind(self) -> str:
        return "dense" if self.conv is None else "conv"

    @property
    def history(self) -> int:
        """Steps into the past this connection reads (in the graph's own time)."""
        return self.delay + int(self.recurrent)

    @property
    def lava_delay(self) -> int:
        """Steps a Lava synapse holds a message beyond its one step of latency."""
        return self.delay + self.lag_delay

    def apply(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """This connection on flat sources ``x`` (N, src_size) -> (N, dst_size), with ``weight`` as a tensor."""
        if self.conv is None:
            return x @ weight.T
        return self.conv.apply_flat(x, weight)

    def dense(self) -> np.ndarray:
        """The (dst_size, src_size) matrix (a convolution expanded: small layers only)."""
        return self.weight if self.conv is None else self.conv.matrix(self.weight)


@dataclass(frozen=True, kw_only=True, eq=False)
class Readout:
    """How a graph Output is obtained: directly from a population, or through connections from one."""

    output: str
    population: str | None = None
    connections: tuple[Connection, ...] = ()
    bias: np.ndarray | None = None
    shape: tuple[int, ...] = ()
    lag: int = 0

    @property
    def source(self) -> str:
        return self.population if self.population is not None else self.connections[0].src


@dataclass(frozen=True, kw_only=True, eq=False)
class Plan:
    """Populations (topological order, the input first), connections and readouts of a graph at ``dt``."""

    dt: float
    populations: Mapping[str, Population]
    connections: tuple[Connection, ...]
    readouts: tuple[Readout, ...]
    input: str
    bias_connections: tuple[Connection, ...] = ()  # from the constant-one source BIAS_SOURCE
    reset: ResetRule = field(default_factory=ResetRule)

    @property
    def neurons(self) -> list[Population]:
        """The populations other than the input, in topological order."""
        return [p for p in self.populations.values() if not p.is_input]

    @property
    def readout_connections(self) -> tuple[Connection, ...]:
        """The connections that feed graph outputs (not populations)."""
        return tuple(c for r in self.readouts for c in r.connections)

    def incoming(self, name: str) -> list[Connection]:
        """Connections (bias connections included) into population ``name``."""
        return [c for c in self.connections + self.bias_connections if c.dst == name]

    @property
    def max_lag(self) -> int:
        lags = [p.lag for p in self.populations.values()] + [r.lag for r in self.readouts]
        return max(lags, default=0)


# ---------------------------------------------------------------- pass 1: populations

def plan_populations(flat: FlatGraph, dt: float, reset: ResetRule) -> dict[str, Population]:
    """The graph input and one population per neuron node, in topological order."""
    if len(flat.inputs) != 1:
        raise GraphError(f"graph has {len(flat.inputs)} Input nodes {flat.inputs}; one is supported")
    inp = flat.inputs[0]
    pops = {inp: Population(name=inp, shape=flat.output_shape(inp))}
    for name, node in flat.nodes.items():
        if neurons.is_neuron(node):
            fam = neurons.family(node, name)
            shape = flat.output_shape(name)
            p = fam.lif_parameters(node, name, shape, dt)
            subtract, delayed = fam.reset(reset)
            if subtract and np.any(p.offset != 0):
                raise GraphError(f"node '{name}': reset by subtraction needs v_reset = 0 (it subtracts v_threshold)")
            pops[name] = Population(name=name, shape=shape, family=fam, du=p.du, dv=p.dv, bias=p.bias,
                                    scale=p.scale, offset=p.offset, gain=p.gain, subtract=subtract, delayed=delayed)
        elif type(node) not in LINEAR_OPS and not isinstance(node, nir.Delay):
            supported = {t.__name__ for t in LINEAR_OPS} | {t.__name__ for t in neurons.NEURON_TYPES} | {"Delay"}
            raise UnsupportedNodeError(f"node '{name}': type {type(node).__name__} cannot be lowered to Lava "
                                       f"(supported: {', '.join(sorted(supported))})")
    return pops


# ---------------------------------------------------------------- pass 2: connections

class _Wiring:
    """The stateless regions between populations, and exact evaluation of their linear maps."""

    def __init__(self, flat: FlatGraph, pops: Mapping[str, Population], dt: float):
        self.flat, self.pops = flat, pops
        self.delays = {name: delay_steps(node, name, dt, flat.output_shape(name))
                       for name, node in flat.nodes.items() if isinstance(node, nir.Delay)}
        self.pred = {n: [(p, 0) for p in flat.predecessors(n, back=False)] +
                        [(p, 1) for p in flat.predecessors(n, back=True)] for n in flat.nodes}

    def region(self, end: str) -> tuple[list[str], list[str]]:
        """(stateless nodes between ``end`` and the populations feeding it, those populations), in graph order."""
        nodes, srcs, stack = set(), set(), [p for p, _ in self.pred[end]]
        while stack:
            n = stack.pop()
            if n in self.pops:
                srcs.add(n)
            elif n not in nodes:
                nodes.add(n)
                stack.extend(p for p, _ in self.pred[n])
        order = self.flat.order
        return [n for n in order if n in nodes], sorted(srcs, key=order.index)

    def paths(self, src: str, end: str, nodes: set[str]) -> list[tuple[tuple[str, ...], int]] | None:
        """Every path (its stateless nodes from ``src`` to ``end``, its number of back edges); None if
        there are more than MAX_PATHS."""
        found: list[tuple[tuple[str, ...], int]] = []

        def walk(n: str, suffix: tuple[str, ...], backs: int) -> bool:
            for p, back in self.pred[n]:
                if p == src:
                    found.append((suffix, backs + back))
                elif p in nodes:
                    if p in suffix:
                        raise GraphError(f"node '{p}': a cycle of stateless nodes ({', '.join(suffix)}) has no "
                                         "neuron to hold its state")
                    if not walk(p, (p,) + suffix, backs + back):
                        return False
                if len(found) > MAX_PATHS:
                    return False
            return True

        return found if walk(end, (), 0) else None

    def zeros(self, name: str, batch: int) -> torch.Tensor:
        return torch.zeros(batch, *self.pops[name].shape, dtype=torch.float64)

    def evaluate(self, end: str, nodes: list[str], inject: dict[str, torch.Tensor], batch: int,
                 passing: int | None = None) -> torch.Tensor:
        """Value arriving at ``end`` when populations output ``inject`` (others zero).

        Delay nodes pass their input through, only the elements delayed by ``passing`` steps when given.
        """
        vals: dict[str, torch.Tensor] = {}

        def incoming(n: str) -> torch.Tensor:
            parts = [inject.get(p, self.zeros(p, batch)) if p in self.pops else vals[p] for p, _ in self.pred[n]]
            h = parts[0]
            for q in parts[1:]:
                if q.shape != h.shape:
                    raise GraphError(f"node '{n}': inputs of shapes {tuple(h.shape[1:])} and {tuple(q.shape[1:])} "
                                     "cannot be summed")
                h = h + q
            return h

        with torch.no_grad():
            for n in nodes:
                h = incoming(n)
                if n in self.delays:
                    if passing is not None:
                        h = h * torch.as_tensor(self.delays[n] == passing, dtype=h.dtype).reshape(h.shape[1:])
                    vals[n] = h
                else:
                    vals[n] = LINEAR_OPS[type(self.flat.nodes[n])](self.flat.nodes[n], h, n)
            return incoming(end)

    def along(self, path: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
        """The linear part of the chain ``path`` applied to ``x`` (N, *src_shape) (its biases removed)."""
        with torch.no_grad():
            h, z = x, torch.zeros_like(x[:1])
            for n in path:
                node = self.flat.nodes[n]
                op = LINEAR_OPS[type(node)]
                h, z = op(node, h, n), op(node, z, n)
            return h - z

    def path_matrix(self, src: str, end: str, path: tuple[str, ...], size: int) -> np.ndarray:
        """The dense (size, src_size) matrix of a path, by pushing a basis through it in chunks."""
        n_src = self.pops[src].size
        _check_dense(src, end, size, n_src)
        cols = []
        for start in range(0, n_src, 1024):
            n = min(1024, n_src - start)
            eye = torch.zeros(n, n_src, dtype=torch.float64)
            eye[torch.arange(n), start + torch.arange(n)] = 1.0
            cols.append(self.along(path, eye.reshape(n, *self.pops[src].shape)).reshape(n, -1).numpy())
        return np.concatenate(cols, axis=0).T.copy()


def _check_dense(src: str, end: str, rows: int, cols: int) -> None:
    if rows * cols > MAX_DENSE_ENTRIES:
        raise GraphError(f"connection '{src}' -> '{end}': not expressible as a convolution, and its dense matrix "
                         f"({rows} x {cols}) exceeds {MAX_DENSE_ENTRIES:,} entries")


def _conv_of_path(wiring: _Wiring, src: str, path: tuple[str, ...], out_shape: tuple[int, ...]) -> ConvSpec | None:
    """The path from ``src`` as one convolution (exactness checked on random input), or None."""
    view = conv_view(wiring.pops[src].shape)
    if view is None:
        return None
    spec = identity_conv(view)
    rest = list(path)
    while rest:
        n = rest.pop(0)
        node = wiring.flat.nodes[n]
        if isinstance(node, nir.Flatten) and as_conv(node, n, spec.geometry.out_shape) is None:
            # flattening a feature map is free when nothing but pass-through nodes follows
            if all(isinstance(wiring.flat.nodes[m], PASS_THROUGH) for m in rest):
                break
            return None
        op = as_conv(node, n, spec.geometry.out_shape)
        if op is None:
            return None
        spec = op if _is_identity(spec) else (spec if _is_identity(op) else compose(spec, op))
        if spec is None:
            return None
    if spec.geometry.out_size != int(np.prod(out_shape)) or (len(out_shape) == 3 and
                                                             spec.geometry.out_shape != tuple(out_shape)):
        return None
    # the composition must equal the path: compare on random inputs (a different linear map differs there)
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.standard_normal((2, *wiring.pops[src].shape)))
    want = wiring.along(path, x).reshape(2, -1)
    got = spec.apply(x.reshape(2, *view)).reshape(2, -1)
    if not torch.allclose(got, want, rtol=0, atol=1e-9 * max(1.0, float(want.abs().max()))):
        return None
    return spec


def _is_identity(spec: ConvSpec) -> bool:
    g = spec.geometry
    return (spec.depthwise and spec.weight.shape[2:] == (1, 1) and g.stride == (1, 1) and g.padding == (0, 0)
            and g.in_shape == g.out_shape and bool(np.all(spec.weight == 1.0)))


def _path_connection(wiring: _Wiring, src: str, end: str, path: tuple[str, ...], backs: int,
                     out_shape: tuple[int, ...]) -> Connection:
    pop = wiring.pops[src]
    spec = _conv_of_path(wiring, src, path, out_shape)
    common = dict(src=src, dst=end, recurrent=backs == 1, graded=not pop.spiking, nodes=path)
    if spec is not None and not spec.matrix_like:
        return Connection(weight=spec.weight, conv=spec.geometry, **common)
    if spec is not None:
        return Connection(weight=spec.weight[:, :, 0, 0].copy(), **common)
    size = int(np.prod(out_shape))
    return Connection(weight=wiring.path_matrix(src, end, path, size), **common)


def _merge(conns: list[Connection]) -> list[Connection]:
    """Sum connections that differ only in their weights (parallel paths between two populations)."""
    out: list[Connection] = []
    for c in conns:
        for i, d in enumerate(out):
            if (d.src, d.dst, d.recurrent, d.delay, d.conv) == (c.src, c.dst, c.recurrent, c.delay, c.conv) and \
                    d.weight.shape == c.weight.shape:
                out[i] = dataclasses.replace(d, weight=d.weight + c.weight, nodes=tuple(dict.fromkeys(d.nodes + c.nodes)))
                break
        else:
            out.append(c)
    return out


def _delayed_connections(wiring: _Wiring, src: str, end: str, nodes: list[str], backs: set[int],
                         out_shape: tuple[int, ...], offset: np.ndarray) -> list[Connection]:
    """Dense connections from ``src`` through a region with Delay nodes: one per distinct delay."""
    pops, delays = wiring.pops, wiring.delays
    chain = [n for n in nodes if src in _ancestors(n, wiring)]
    on_path = [n for n in chain if n in delays]
    if len(on_path) > 1:
        raise GraphError(f"node '{end}': the paths from '{src}' pass {len(on_path)} Delay nodes "
                         f"({', '.join(on_path)}); spikesmith lowers one Delay per connection")
    if len(backs) != 1:
        raise GraphError(f"node '{end}': paths from '{src}' through Delay '{on_path[0]}' carry {sorted(backs)} back "
                         "edges; spikesmith needs them to carry the same delay")
    n_src = pops[src].size
    _check_dense(src, end, int(np.prod(out_shape)), n_src)
    eye = torch.eye(n_src, dtype=torch.float64).reshape(n_src, *pops[src].shape)

    def through(passing: int) -> np.ndarray:
        resp = wiring.evaluate(end, nodes, {src: eye}, n_src, passing=passing).reshape(n_src, -1).numpy()
        return resp.T - offset[:, None]

    common = dict(src=src, dst=end, recurrent=backs == {1}, graded=not pops[src].spiking, nodes=tuple(chain))
    conns = []
    direct = through(-1)  # paths that avoid the Delay node
    for d in np.unique(delays[on_path[0]]):  # one synapse process per distinct delay
        w = through(int(d)) - direct + (direct if d == 0 else 0)
        if np.any(w != 0) or d == 0:
            conns.append(Connection(weight=w.copy(), delay=int(d), **common))
    if 0 not in delays[on_path[0]] and np.any(direct != 0):
        conns.append(Connection(weight=direct.copy(), **common))
    return conns


def _ancestors(n: str, wiring: _Wiring) -> set[str]:
    seen, stack = set(), [n]
    while stack:
        m = stack.pop()
        for p, _ in wiring.pred[m]:
            if p not in seen:
                seen.add(p)
                if p not in wiring.pops:
                    stack.append(p)
    return seen


def connections_into(wiring: _Wiring, end: str, out_shape: tuple[int, ...]) -> tuple[list[Connection], np.ndarray]:
    """(the connections into population or output ``end``, its constant input (flat)) before gains."""
    nodes, srcs = wiring.region(end)
    zero = wiring.evaluate(end, nodes, {}, 1)
    if tuple(zero.shape[1:]) != tuple(out_shape):
        raise GraphError(f"node '{end}': receives shape {tuple(zero.shape[1:])}, expects {tuple(out_shape)}")
    offset = zero.reshape(-1).numpy().copy()
    region_delays = [n for n in nodes if n in wiring.delays]
    if region_delays and not torch.equal(zero, wiring.evaluate(end, nodes, {}, 1, passing=0)):
        raise GraphError(f"node '{end}': a constant (bias) passes through Delay "
                         f"{', '.join(repr(n) for n in region_delays)}; Lava adds constants without delay")
    conns: list[Connection] = []
    inside = set(nodes)
    for s in srcs:
        paths = wiring.paths(s, end, inside)
        backs = {b for _, b in paths} if paths is not None else set()
        if paths is not None and max(backs) > 1:
            raise GraphError(f"node '{end}': a path from '{s}' carries {max(backs)} back edges; spikesmith needs "
                             "every path between two populations to carry at most one (one step of delay)")
        if paths is None or any(n in wiring.delays for p, _ in paths for n in p):
            if paths is None:
                backs = _back_edge_counts(wiring, nodes, s, end)
            conns += _delayed_connections(wiring, s, end, nodes, backs, out_shape, offset)
            continue
        conns += _merge([_path_connection(wiring, s, end, p, b, out_shape) for p, b in paths])
    return conns, offset


def _back_edge_counts(wiring: _Wiring, nodes: list[str], src: str, end: str) -> set[int]:
    """Numbers of back edges on the paths from ``src`` to ``end`` through ``nodes`` (topological order)."""
    inside, counts = set(nodes), {}

    def into(n: str) -> set[int]:
        c: set[int] = set()
        for p, back in wiring.pred[n]:
            if p == src:
                c |= {back}
            elif p in inside:
                c |= {k + back for k in counts.get(p, set())}
        return c

    for n in nodes:
        counts[n] = into(n)
    backs = into(end)
    if len(backs) != 1 or max(backs) > 1:
        raise GraphError(f"node '{end}': paths from '{src}' carry {sorted(backs)} back edges; spikesmith needs every "
                         "path between two populations to carry the same delay (0 or 1 step)")
    return backs


def plan_connections(wiring: _Wiring) -> dict[str, tuple[list[Connection], np.ndarray]]:
    """For every population: its incoming connections and constant input, before gains."""
    return {name: connections_into(wiring, name, pop.shape) for name, pop in wiring.pops.items() if not pop.is_input}


# ---------------------------------------------------------------- pass 3: gains

def _with_gain(c: Connection, gain: np.ndarray) -> Connection:
    """``c`` with the destination's per-neuron input gain multiplied into its weights."""
    if c.conv is None:
        return dataclasses.replace(c, weight=c.weight * gain[:, None])
    per_channel = gain.reshape(c.conv.out_shape[0], -1)
    if np.all(per_channel == per_channel[:, :1]):
        return dataclasses.replace(c, weight=c.weight * per_channel[:, 0].reshape(-1, 1, 1, 1))
    # gains that vary inside a feature map do not fit a shared kernel
    _check_dense(c.src, c.dst, c.conv.out_size, c.conv.in_size)
    return dataclasses.replace(c, weight=c.conv.matrix(c.weight) * gain[:, None], conv=None)


def fold_gains(pops: dict[str, Population], linked: Mapping[str, tuple[list[Connection], np.ndarray]]
               ) -> tuple[dict[str, Population], list[Connection], list[Connection]]:
    """Gains into weights, constant inputs into biases: (populations, connections, bias connections)."""
    out, conns, bias_conns = dict(pops), [], []
    for name, (incoming, offset) in linked.items():
        pop = pops[name]
        conns += [_with_gain(c, pop.gain) for c in incoming]
        drive = offset * pop.gain
        if np.any(pop.du < 1.0) and np.any(drive != 0):
            # a constant input into a synaptic current must pass through the current (du < 1)
            bias_conns.append(Connection(src=BIAS_SOURCE, dst=name, weight=drive[:, None].copy(), graded=True))
        else:
            out[name] = dataclasses.replace(pop, bias=pop.bias + drive)
    return out, conns, bias_conns


# ---------------------------------------------------------------- pass 4: readouts

def plan_readouts(wiring: _Wiring) -> list[Readout]:
    """One readout per graph Output."""
    readouts = []
    for out in wiring.flat.outputs:
        preds = [p for p, _ in wiring.pred[out]]
        if len(preds) == 1 and preds[0] in wiring.pops and not wiring.pops[preds[0]].is_input:
            readouts.append(Readout(output=out, population=preds[0], shape=wiring.pops[preds[0]].shape))
            continue
        shape = wiring.flat.output_shape(out)
        conns, offset = connections_into(wiring, out, shape)
        srcs = {c.src for c in conns}
        if len(srcs) != 1:
            raise GraphError(f"output '{out}' must be fed by exactly one population, found {len(srcs)}")
        if any(c.recurrent for c in conns):
            raise GraphError(f"output '{out}' is read through a back edge; read the population instead")
        readouts.append(Readout(output=out, connections=tuple(conns), bias=offset, shape=shape))
    return readouts


# ---------------------------------------------------------------- pass 5: lags

def assign_lags(pops: dict[str, Population], conns: list[Connection], readouts: list[Readout]
                ) -> tuple[dict[str, Population], list[Connection], list[Readout]]:
    """Lags of populations and readouts, and the synaptic delays that align unequal paths on Lava."""
    incoming: dict[str, list[Connection]] = {}
    for c in conns:
        incoming.setdefault(c.dst, []).append(c)
    lags: dict[str, int] = {}
    for name, pop in pops.items():  # topological order
        if pop.is_input:
            lags[name] = 0
            continue
        fwd = [c for c in incoming.get(name, []) if not c.recurrent]
        if not fwd:
            raise GraphError(f"node '{name}': no feed-forward input reaches it")
        lags[name] = max(lags[c.src] + 1 for c in fwd)
    aligned = []
    for c in conns:
        extra = lags[c.dst] - lags[c.src] - (0 if c.recurrent else 1)
        if extra < 0:
            raise GraphError(f"recurrent connection '{c.src}' -> '{c.dst}' feeds back from a population {-extra} "
                             f"synapse stage(s) deeper on Lava (lags {lags[c.src]} and {lags[c.dst]}); only feedback "
                             "into the same or a deeper stage is exact")
        aligned.append(dataclasses.replace(c, lag_delay=extra))
    out = {n: dataclasses.replace(p, lag=lags[n]) for n, p in pops.items()}
    reads = [dataclasses.replace(r, lag=lags[r.source] + (0 if r.population is not None else 1)) for r in readouts]
    return out, aligned, reads


def build_plan(flat: FlatGraph, dt: float, reset: ResetRule | None = None) -> Plan:
    """Plan the populations and connections of ``flat`` at time step ``dt`` (seconds).

    ``reset``: the neurons' reset rule; by default the graph's stored one, else NIR's.
    """
    reset = reset or graph_reset(flat) or ResetRule()
    pops = plan_populations(flat, dt, reset)
    wiring = _Wiring(flat, pops, dt)
    pops, conns, bias_conns = fold_gains(pops, plan_connections(wiring))
    pops, conns, readouts = assign_lags(pops, conns, plan_readouts(wiring))
    return Plan(dt=dt, populations=pops, connections=tuple(conns), readouts=tuple(readouts),
                input=flat.inputs[0], bias_connections=tuple(bias_conns), reset=reset)
