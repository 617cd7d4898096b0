"""Backend-neutral deployment plan: neuron populations and the linear connections between them.

Every chain of stateless NIR nodes (Affine, Linear, Conv, pooling, Flatten, Scale, ...)
between two populations is composed into one connection. A connection is a single
``conv`` when the chain is exactly one Conv2d (optionally followed by Flatten), else a
``dense`` matrix computed by pushing a basis through the chain (exact: the chain is
linear). Neuron parameters are normalised so every population has threshold 1 and
reset 0 (v' = (v - v_reset) / (v_th - v_reset)), and folded into Lava's LIF form
(see :mod:`spikesmith.compile.units`): per-neuron du, dv and bias, input gains already
multiplied into the weights, and the reset rule (subtraction, delayed reset).

Timing: each connection process adds one step of latency on Lava (synapses deliver at
the next step); a back edge carries one step of delay by definition. A NIR Delay node on
the path becomes the connection's synaptic delay (one connection per distinct delay); it
is part of the graph's meaning, so it does not change lags. A population's
*lag* is how many steps its Lava output trails the reference; inputs of a population
must arrive with one lag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np
import torch

from spikesmith.compile.graph import FlatGraph, ResetRule, graph_reset
from spikesmith.compile.units import check_time_constants, effective_reset
from spikesmith.errors import GraphError, UnsupportedNodeError
from spikesmith.compile.ops import LINEAR_OPS, conv_padding, delay_steps

SPIKING = (nir.LIF, nir.CubaLIF, nir.IF, nir.Threshold)
NON_SPIKING = (nir.LI, nir.CubaLI, nir.I)
POPULATION_TYPES = SPIKING + NON_SPIKING


@dataclass(kw_only=True)
class Population:
    """A group of neurons (or the input) with Lava LIF parameters in normalised units."""

    name: str
    kind: str  # "input" | "lif"
    node_type: str
    shape: tuple[int, ...]  # NIR shape (without time and batch)
    du: np.ndarray | None = None  # per neuron, NIR flat order (Lava's du: dt/tau_syn, 1 without a current)
    dv: np.ndarray | None = None  # per neuron (dt/tau_mem, 0 for IF)
    vth: float = 1.0  # normalised; inf for non-spiking populations
    bias: np.ndarray | None = None  # per neuron, NIR flat order, added to v each step
    scale: np.ndarray | None = None  # v_th - v_reset per neuron (to map v' back to volts)
    offset: np.ndarray | None = None  # v_reset per neuron
    gain: np.ndarray | None = None  # per neuron multiplier for incoming weights
    spiking: bool = True
    subtract: bool = False  # reset by subtraction (v' -= 1) instead of to 0
    delayed: bool = False  # the reset acts one step after the spike (snnTorch)
    lag: int = 0

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(kw_only=True)
class Connection:
    """A linear map from one population's output into another's input (or a graph output)."""

    src: str
    dst: str
    kind: str  # "dense" | "conv"
    weight: np.ndarray  # dense: (dst_size, src_size) NIR flat order; conv: (C_out, C_in, kH, kW)
    recurrent: bool = False  # the path contains a back edge
    graded: bool = False  # the source sends real values (the input, or a non-spiking population's v), not spikes
    conv: dict = field(default_factory=dict)  # stride, padding, dilation, groups, in/out shapes
    nodes: tuple[str, ...] = ()  # the NIR nodes composed into this connection
    delay: int = 0  # synaptic delay in steps (a NIR Delay node on the path), on top of any back edge


@dataclass(kw_only=True)
class Readout:
    """How a graph Output is obtained: directly from a population, or through a connection."""

    output: str
    population: str | None = None
    connection: Connection | None = None
    bias: np.ndarray | None = None
    shape: tuple[int, ...] = ()
    lag: int = 0


@dataclass(kw_only=True)
class Plan:
    """Populations, connections and readouts of a graph, at time step ``dt``."""

    dt: float
    populations: dict[str, Population]
    connections: list[Connection]
    readouts: list[Readout]
    input: str
    bias_connections: list[Connection] = field(default_factory=list)  # from a constant-1 source
    reset: ResetRule = field(default_factory=ResetRule)

    @property
    def readout_connections(self) -> list[Connection]:
        """The connections that feed graph outputs (not populations)."""
        return [r.connection for r in self.readouts if r.connection is not None]

    @property
    def max_lag(self) -> int:
        lags = [p.lag for p in self.populations.values()] + [r.lag for r in self.readouts]
        return max(lags, default=0)


def _unit_decay(d: np.ndarray) -> np.ndarray:
    """Decays a hair above 1 (tau = dt stored in float32, e.g. snnTorch's beta = 0) are 1."""
    return np.where((d > 1.0) & (d <= 1.0 + 1e-6), 1.0, d)


def _finite(node, name: str) -> None:
    for f in ("tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in", "threshold",
              "weight", "bias", "scale"):
        v = getattr(node, f, None)
        if v is None or isinstance(v, str):
            continue
        arr = np.asarray(v, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise GraphError(f"node '{name}': field '{f}' contains NaN or inf")


def _population(name: str, node, shape: tuple[int, ...], dt: float, reset: ResetRule = ResetRule()) -> Population:
    """Lava LIF parameters for a NIR neuron node, normalised to threshold 1 / reset 0."""
    _finite(node, name)
    n = int(np.prod(shape))

    def per(field_name, default=None):
        v = getattr(node, field_name, None)
        v = default if v is None else v
        return np.broadcast_to(np.asarray(v, dtype=np.float64), shape).reshape(-1).copy()

    t = type(node)
    r = per("r", 1.0)
    v_reset = per("v_reset", 0.0)
    if t in (nir.LIF, nir.CubaLIF, nir.IF):
        scale = per("v_threshold") - v_reset
        if np.any(scale <= 0):
            raise GraphError(f"node '{name}': v_threshold must exceed v_reset for every neuron")
    elif t is nir.Threshold:
        scale, v_reset = per("threshold"), np.zeros(n)
        if np.any(scale <= 0):
            raise GraphError(f"node '{name}': Threshold must be positive for Lava (got {scale.min():g})")
    else:
        scale, v_reset = np.ones(n), np.zeros(n)
    du, dv = np.ones(n), np.zeros(n)
    gain = r / scale
    const = np.zeros(n)
    check_time_constants(node, name, dt)
    if t in (nir.LIF, nir.LI):
        dv = dt / per("tau")
        gain = gain * dv
        const = dv * (per("v_leak", 0.0) - v_reset) / scale
    elif t in (nir.CubaLIF, nir.CubaLI):
        dv = dt / per("tau_mem")
        du = dt / per("tau_syn")
        gain = gain * dv * du * per("w_in", 1.0)
        const = dv * (per("v_leak", 0.0) - v_reset) / scale
    elif t is nir.Threshold:
        dv, gain = np.ones(n), 1.0 / scale
    # IF and I: dv = 0, du = 1, gain r/scale
    du, dv = _unit_decay(du), _unit_decay(dv)
    if not (np.all((0 <= dv) & (dv <= 1)) and np.all((0 < du) & (du <= 1))):
        raise GraphError(
            f"node '{name}': time constants give decays du={du.min():g}..{du.max():g}, dv={dv.min():g}..{dv.max():g} "
            f"per step at dt={dt:g} s; forward Euler needs 0 < dt/tau <= 1 (use a smaller --dt)"
        )
    spiking = t in SPIKING
    subtract, delayed = effective_reset(t.__name__, reset)
    if subtract and np.any(v_reset != 0):
        raise GraphError(f"node '{name}': reset by subtraction needs v_reset = 0 (it subtracts v_threshold)")
    return Population(name=name, kind="lif", node_type=t.__name__, shape=shape, du=du, dv=dv,
                      vth=1.0 if spiking else float("inf"), bias=const, scale=scale, offset=v_reset,
                      gain=gain, spiking=spiking, subtract=subtract, delayed=delayed)


def build_plan(flat: FlatGraph, dt: float, reset: ResetRule | None = None) -> Plan:
    """Plan the populations and connections of ``flat`` at time step ``dt`` (seconds).

    ``reset``: the neurons' reset rule; by default the graph's stored one, else NIR's.
    """
    reset = reset or graph_reset(flat) or ResetRule()
    if len(flat.inputs) != 1:
        raise GraphError(f"graph has {len(flat.inputs)} Input nodes {flat.inputs}; one is supported")
    pops: dict[str, Population] = {}
    inp = flat.inputs[0]
    pops[inp] = Population(name=inp, kind="input", node_type="Input", shape=flat.output_shape(inp))
    for name, node in flat.nodes.items():
        if isinstance(node, POPULATION_TYPES):
            pops[name] = _population(name, node, flat.output_shape(name), dt, reset)
        elif type(node) not in LINEAR_OPS and not isinstance(node, nir.Delay):
            raise UnsupportedNodeError(
                f"node '{name}': type {type(node).__name__} cannot be lowered to Lava (supported: "
                f"{', '.join(sorted({t.__name__ for t in LINEAR_OPS} | {t.__name__ for t in POPULATION_TYPES} | {'Delay'}))})"
            )
    delays = {name: delay_steps(node, name, dt, flat.output_shape(name))
              for name, node in flat.nodes.items() if isinstance(node, nir.Delay)}
    # the linear region feeding each population / output: walk back through stateless nodes
    pred_f = {n: flat.predecessors(n, back=False) for n in flat.nodes}
    pred_b = {n: flat.predecessors(n, back=True) for n in flat.nodes}

    def region(end: str) -> tuple[list[str], set[str]]:
        """Stateless nodes between ``end`` and the populations feeding it, and those populations."""
        nodes, srcs, stack = set(), set(), list(pred_f[end] + pred_b[end])
        while stack:
            n = stack.pop()
            if n in pops:
                srcs.add(n)
            elif n not in nodes:
                nodes.add(n)
                stack.extend(pred_f[n] + pred_b[n])
        return [n for n in flat.order if n in nodes], srcs

    def evaluate(end: str, nodes: list[str], inject: dict[str, torch.Tensor], batch: int, passing: int | None = None):
        """Value arriving at ``end`` when populations output ``inject`` (others zero).

        Delay nodes pass their input through, only the elements delayed by ``passing`` steps when given.
        """
        vals: dict[str, torch.Tensor] = {}

        def value_of(p: str) -> torch.Tensor:
            if p in pops:
                return inject.get(p, torch.zeros(batch, *pops[p].shape, dtype=torch.float64))
            return vals[p]

        def incoming(n: str) -> torch.Tensor:
            parts = [value_of(p) for p in pred_f[n] + pred_b[n]]
            h = parts[0]
            for q in parts[1:]:
                if q.shape != h.shape:
                    raise GraphError(f"node '{n}': inputs of shapes {tuple(h.shape[1:])} and {tuple(q.shape[1:])} cannot be summed")
                h = h + q
            return h

        for n in nodes:
            if n in delays:
                h = incoming(n)
                if passing is not None:
                    keep = torch.as_tensor(delays[n] == passing, dtype=h.dtype).reshape(h.shape[1:])
                    h = h * keep
                vals[n] = h
            else:
                vals[n] = LINEAR_OPS[type(flat.nodes[n])](flat.nodes[n], incoming(n), n)
        return incoming(end)

    def back_edges_on_paths(nodes: list[str], src: str, end: str) -> set[int]:
        """Numbers of back edges on the paths from ``src`` to ``end`` through ``nodes``."""
        inside = set(nodes)
        counts: dict[str, set[int]] = {}

        def into(n: str) -> set[int]:
            c: set[int] = set()
            for p, extra in [(p, 0) for p in pred_f[n]] + [(p, 1) for p in pred_b[n]]:
                if p == src:
                    c |= {extra}
                elif p in inside:
                    c |= {k + extra for k in counts.get(p, set())}
            return c

        for n in nodes:  # topological order
            counts[n] = into(n)
        return into(end)

    def connections_into(end: str, out_shape: tuple[int, ...]):
        nodes, srcs = region(end)
        with torch.no_grad():
            zero = evaluate(end, nodes, {}, 1)
            if tuple(zero.shape[1:]) != tuple(out_shape):
                raise GraphError(f"node '{end}': receives shape {tuple(zero.shape[1:])}, expects {tuple(out_shape)}")
            offset = zero.reshape(-1).numpy().copy()
            region_delays = [n for n in nodes if n in delays]
            if region_delays and not torch.equal(zero, evaluate(end, nodes, {}, 1, passing=0)):
                raise GraphError(f"node '{end}': a constant (bias) passes through Delay "
                                 f"{', '.join(repr(n) for n in region_delays)}; Lava adds constants without delay")
            conns = []
            for s in sorted(srcs, key=flat.order.index):
                graded = pops[s].kind == "input" or not pops[s].spiking  # real values, not spikes
                backs = back_edges_on_paths(nodes, s, end)
                if len(backs) != 1 or max(backs) > 1:
                    raise GraphError(
                        f"node '{end}': paths from '{s}' carry {sorted(backs)} back edges; "
                        "spikesmith needs every path between two populations to carry the same delay (0 or 1 step)"
                    )
                chain = [n for n in nodes if s in _ancestors(n, pred_f, pred_b, pops)]
                kind, conv = "dense", {}
                singles = [n for n in chain if not isinstance(flat.nodes[n], (nir.Flatten, nir.Input, nir.Output))]
                node0 = flat.nodes[singles[0]] if len(singles) == 1 else None
                # a conv synapse has no weight exponent in fixed point: graded voltages need a dense one
                if isinstance(node0, nir.Conv2d) and len(srcs) == 1 and len(pops[s].shape) == 3 and pops[s].spiking:
                    c = node0
                    kind = "conv"
                    conv = dict(stride=tuple(np.broadcast_to(np.asarray(c.stride).reshape(-1), 2).tolist()),
                                padding=tuple(conv_padding(c, singles[0], 2)),
                                dilation=tuple(np.broadcast_to(np.asarray(c.dilation).reshape(-1), 2).tolist()),
                                groups=int(c.groups), in_shape=pops[s].shape,
                                out_shape=tuple(flat.output_shape(singles[0])))
                    weight = np.asarray(c.weight, dtype=np.float64)
                else:
                    n_src = pops[s].size
                    eye = torch.eye(n_src, dtype=torch.float64).reshape(n_src, *pops[s].shape)
                    resp = evaluate(end, nodes, {s: eye}, n_src).reshape(n_src, -1).numpy() - offset[None, :]
                    weight = resp.T.copy()
                on_path = [n for n in chain if n in delays]
                if on_path:
                    if len(on_path) > 1:
                        raise GraphError(f"node '{end}': the paths from '{s}' pass {len(on_path)} Delay nodes "
                                         f"({', '.join(on_path)}); spikesmith lowers one Delay per connection")
                    n_src = pops[s].size
                    eye = torch.eye(n_src, dtype=torch.float64).reshape(n_src, *pops[s].shape)
                    def through(passing: int) -> np.ndarray:
                        resp = evaluate(end, nodes, {s: eye}, n_src, passing=passing).reshape(n_src, -1).numpy()
                        return resp.T - offset[:, None]

                    direct = through(-1)  # paths that avoid the Delay node
                    for d in np.unique(delays[on_path[0]]):  # one synapse process per distinct delay
                        w = through(int(d)) - direct + (direct if d == 0 else 0)
                        if np.any(w != 0) or d == 0:
                            conns.append(Connection(src=s, dst=end, kind="dense", weight=w.copy(),
                                                    recurrent=max(backs) == 1, graded=graded,
                                                    nodes=tuple(chain), delay=int(d)))
                    if 0 not in delays[on_path[0]] and np.any(direct != 0):
                        conns.append(Connection(src=s, dst=end, kind="dense", weight=direct.copy(),
                                                recurrent=max(backs) == 1, graded=graded,
                                                nodes=tuple(chain)))
                    continue
                conns.append(Connection(src=s, dst=end, kind=kind, weight=weight, recurrent=max(backs) == 1,
                                        graded=graded, conv=conv, nodes=tuple(chain)))
        return conns, offset

    connections: list[Connection] = []
    bias_conns: list[Connection] = []
    for name, pop in pops.items():
        if pop.kind == "input":
            continue
        conns, offset = connections_into(name, pop.shape)
        for c in conns:
            if c.kind == "dense":
                c.weight = c.weight * pop.gain[:, None]
            elif np.allclose(pop.gain, pop.gain[0]):
                c.weight = c.weight * pop.gain[0]
            else:  # per-neuron gains do not fit a shared kernel: use the equivalent dense matrix
                dense = _as_dense(c, pops)
                c.kind, c.conv, c.weight = "dense", {}, dense.weight * pop.gain[:, None]
        drive = offset * pop.gain
        if np.any(pop.du < 1.0) and np.any(drive != 0):
            # a constant input into a synaptic current must pass through the current (du < 1)
            bias_conns.append(Connection(src="__ones__", dst=name, kind="dense", weight=drive[:, None].copy(),
                                         graded=True))
        else:
            pop.bias = pop.bias + drive
        connections.extend(conns)

    readouts = []
    for out in flat.outputs:
        preds = pred_f[out] + pred_b[out]
        if len(preds) == 1 and preds[0] in pops and pops[preds[0]].kind != "input":
            readouts.append(Readout(output=out, population=preds[0], shape=pops[preds[0]].shape))
            continue
        conns, offset = connections_into(out, flat.output_shape(out))
        if len({c.src for c in conns}) != 1:
            raise GraphError(f"output '{out}' must be fed by exactly one population, found {len({c.src for c in conns})}")
        if len(conns) != 1:
            raise GraphError(f"output '{out}' is fed through {len(conns)} different delays; Lava reads an output "
                             "through one synapse")
        if conns[0].kind == "conv":
            conns[0] = _as_dense(conns[0], pops)
        readouts.append(Readout(output=out, connection=conns[0], bias=offset, shape=flat.output_shape(out)))

    _assign_lags(pops, connections, readouts)
    return Plan(dt=dt, populations=pops, connections=connections, readouts=readouts, input=inp,
                bias_connections=bias_conns, reset=reset)


def _ancestors(n: str, pred_f, pred_b, pops) -> set[str]:
    seen, stack = set(), [n]
    while stack:
        m = stack.pop()
        for p in pred_f[m] + pred_b[m]:
            if p not in seen:
                seen.add(p)
                if p not in pops:
                    stack.append(p)
    return seen


def conv_matrix(weight, conv: dict, src_shape: tuple[int, ...]) -> np.ndarray:
    """The (dst, src) matrix, NIR flat order, of a convolution with ``weight`` and geometry ``conv``."""
    import torch.nn.functional as F

    n = int(np.prod(src_shape))
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *src_shape)
    y = F.conv2d(eye, torch.as_tensor(np.asarray(weight, dtype=np.float64)), stride=conv["stride"],
                 padding=conv["padding"], dilation=conv["dilation"], groups=conv["groups"])
    return y.reshape(n, -1).numpy().T.copy()


def dense_weight(c: Connection, plan: Plan, *, quantised: bool = False) -> np.ndarray:
    """Connection ``c`` as a dense (dst, src) matrix: its float weights, or its integer mantissas."""
    w = c.q_weight if quantised else c.weight
    if c.kind == "dense":
        return w
    m = conv_matrix(w, c.conv, plan.populations[c.src].shape)
    return np.round(m).astype(np.int64) if quantised else m


def _as_dense(c: Connection, pops) -> Connection:
    """The dense equivalent of a conv connection."""
    return Connection(src=c.src, dst=c.dst, kind="dense", weight=conv_matrix(c.weight, c.conv, pops[c.src].shape),
                      recurrent=c.recurrent, graded=c.graded, nodes=c.nodes)


def _assign_lags(pops: dict[str, Population], conns: list[Connection], readouts: list[Readout]) -> None:
    """Give every population the lag of its forward inputs (+1 per connection process)."""
    incoming: dict[str, list[Connection]] = {}
    for c in conns:
        incoming.setdefault(c.dst, []).append(c)
    for name, pop in pops.items():  # pops are in topological order
        if pop.kind == "input":
            pop.lag = 0
            continue
        fwd = [c for c in incoming.get(name, []) if not c.recurrent]
        if not fwd:
            raise GraphError(f"node '{name}': no feed-forward input reaches it")
        lags = {pops[c.src].lag + 1 for c in fwd}
        if len(lags) != 1:
            detail = ", ".join(f"'{c.src}' (lag {pops[c.src].lag + 1})" for c in fwd)
            raise GraphError(
                f"node '{name}': its inputs arrive with different latencies on Lava ({detail}); "
                "paths of unequal depth into one population need synaptic delays"
            )
        pop.lag = lags.pop()
    for c in conns:
        if c.recurrent and pops[c.src].lag != pops[c.dst].lag:
            raise GraphError(
                f"recurrent connection '{c.src}' -> '{c.dst}' spans populations of lags "
                f"{pops[c.src].lag} and {pops[c.dst].lag}; only same-lag feedback is exact on Lava"
            )
    for r in readouts:
        r.lag = pops[r.population].lag if r.population else pops[r.connection.src].lag + 1
