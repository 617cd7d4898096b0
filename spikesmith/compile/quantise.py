"""Loihi fixed-point quantisation of a deployment plan: a frozen :class:`QuantisedPlan`.

The integer semantics are those of Lava's bit-accurate LIF and Dense models (``lava.proc.lif``,
``lava.proc.dense``), which the fixed-point engine (:mod:`spikesmith.targets.loihi`) and the Lava
target (:mod:`spikesmith.targets.lava`) both execute:

    a   = wrap32( sum_j w_ij s_j  shifted by weight_exp )     (per synapse; summed into the neuron in 32 bits)
    u  <- wrap24( round0(u * (4096 - (du + 1)) / 4096) + wrap32(a << 6) )
    v  <- clip24( round0(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp) )
    spike if v > (vth << 6); then v <- 0 (or v <- v - (vth << 6) for reset by subtraction;
    a delayed reset acts after the next step's integration instead)

with 12-bit ``du``/``dv`` registers (:mod:`spikesmith.compile.units`), 24-bit ``u``/``v`` (round0:
a shift of the magnitude, i.e. rounding toward zero; ``u`` wraps once by 2**24 when it leaves
(-2**23, 2**23], ``v`` saturates at +-(2**23 - 1)), a 13-bit signed bias mantissa with a 3-bit
exponent, a 17-bit threshold mantissa shifted left by 6, and 8-bit weight mantissas with one
exponent per connection in -8..7 (a left shift for a positive exponent, an arithmetic right
shift for a negative one). A convolution is a synapse with shared weights and the same
arithmetic. Graded messages (the input, a non-spiking population's voltage) are summed in 32
bits before the shift, as Lava's Dense sums graded input.

Mapping: a population's normalised state (threshold 1) is held in ``S = vth << 6`` integer
units. A weight ``W`` (normalised, gain folded in) becomes the mantissa of ``m = W * vth /
in_scale`` (``in_scale``: integer units of one unit of the source's message) with the exponent
chosen as Lava's ``lava.utils.weightutils`` chooses it: for mixed-sign weights, scale =
min(127/max, 128/|min|), ``weight_exp = -(floor(log2 scale) + 1)``, mantissas even (8-bit with
sign); for single-sign weights, scale = 255/max|w|, ``weight_exp = -floor(log2 scale)``. The
threshold mantissa is the largest power of two up to ``QuantConfig.max_vth_mant`` for which the
state peaks given (``peaks``: the largest |u| or |v| of a floating-point run, in thresholds) stay
within half the 24-bit range (``HEADROOM_TARGET``), the weights' exponents within -8..7 and the
biases within their 13-bit mantissa; graphs that cannot fit are rejected naming the node and the
limit. Graded input is sent as ``round(x * 2**input_frac_bits)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Iterator, Mapping

import numpy as np

from spikesmith.compile import units
from spikesmith.compile.plan import BIAS_SOURCE, Connection, Plan, Readout
from spikesmith.errors import GraphError, InputError

UV_LIMIT = 1 << (units.STATE_BITS - 1)  # |u|, |v| < 2**23
DEFAULT_VTH_MANT = 1 << 10
ACC_LIMIT = 2.0**30  # a synapse's 32-bit accumulator, with 2x headroom
HEADROOM_TARGET = 2.0  # state scale chosen so the given peaks reach at most half the 24-bit range
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -8, 7
BIAS_MANT_MAX = (1 << 12) - 1  # 13-bit signed mantissa
BIAS_EXP_MAX = 7


@dataclass(frozen=True, kw_only=True)
class QuantConfig:
    """Quantisation choices."""

    max_vth_mant: int = DEFAULT_VTH_MANT  # largest threshold mantissa (a power of two); the state scale is vth << 6
    # graded input x is sent as round(x * 2**input_frac_bits); None: 0 for integer (spike) input, else 7
    input_frac_bits: int | None = None

    def __post_init__(self) -> None:
        m = self.max_vth_mant
        if m < 1 or m > units.MAX_THRESHOLD_MANTISSA or m & (m - 1):
            raise InputError(f"max_vth_mant must be a power of two within Loihi's 17-bit threshold mantissa "
                             f"(1..{units.MAX_THRESHOLD_MANTISSA}), got {m}")
        if self.input_frac_bits is not None and not 0 <= self.input_frac_bits <= 16:
            raise InputError(f"input_frac_bits must be in 0..16, got {self.input_frac_bits}")


@dataclass(frozen=True, kw_only=True)
class LayerQuant:
    """What quantisation did to one population (report row)."""

    name: str
    vth_mant: int
    du_reg: int
    dv_reg: int
    tau_syn_requested_s: float | None
    tau_syn_realised_s: float | None
    tau_mem_requested_s: float | None
    tau_mem_realised_s: float | None
    weight_exp: dict[str, int] = field(default_factory=dict)
    weight_rel_error: dict[str, float] = field(default_factory=dict)
    bias_rel_error: float = 0.0
    u_headroom: float | None = None  # 2**23 / max|u| of a fixed-point run (None: no run, or u stayed 0)
    v_headroom: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True, eq=False)
class QuantisedPopulation:
    """A population's Loihi registers: per-neuron arrays in NIR flat order."""

    name: str
    vth_mant: int
    du: np.ndarray  # 12-bit current decay registers
    dv: np.ndarray  # 12-bit voltage decay registers
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    msg_shift: int = 0  # a non-spiking population sends v >> msg_shift

    @property
    def scale(self) -> int:
        """Integer units per threshold (S = vth << 6)."""
        return units.state_scale(self.vth_mant)

    @property
    def threshold(self) -> int:
        """The effective threshold vth << 6 that v is compared with."""
        return units.state_scale(self.vth_mant)

    @property
    def bias(self) -> np.ndarray:
        """The effective bias added to v every step."""
        return self.bias_mant << self.bias_exp


@dataclass(frozen=True, kw_only=True, eq=False)
class QuantisedSynapse:
    """A connection's 8-bit mantissas (the connection's layout) and exponent."""

    weight: np.ndarray
    exp: int
    in_scale: float  # integer units of one unit of the source's message

    def shift(self, acc):
        """``acc`` shifted by the exponent (numpy or torch integers), as Lava's Dense shifts."""
        return acc << self.exp if self.exp > 0 else acc >> -self.exp


@dataclass(frozen=True, kw_only=True, eq=False)
class QuantisedPlan:
    """A plan with Loihi integer parameters: the input of both fixed-point targets."""

    plan: Plan
    config: QuantConfig
    input_scale: float  # graded input x is sent as round(x * input_scale)
    populations: Mapping[str, QuantisedPopulation]
    connections: tuple[QuantisedSynapse, ...]  # aligned with plan.connections
    bias_connections: tuple[QuantisedSynapse, ...]  # aligned with plan.bias_connections
    readout_connections: tuple[QuantisedSynapse, ...]  # aligned with plan.readout_connections
    readout_scale: int  # integer units per unit of a readout connection's output, before the << 6
    report: tuple[LayerQuant, ...] = ()

    def pairs(self) -> Iterator[tuple[Connection, QuantisedSynapse]]:
        """Every connection of the plan (bias and readout connections included) with its quantisation."""
        p = self.plan
        yield from zip(p.connections, self.connections)
        yield from zip(p.bias_connections, self.bias_connections)
        yield from zip(p.readout_connections, self.readout_connections)

    def volts(self, name: str, v) -> np.ndarray:
        """Integer voltages ``v`` (..., N) of population ``name`` in NIR units."""
        pop = self.plan.populations[name]
        return np.asarray(v, dtype=np.float64) / self.populations[name].scale * pop.scale + pop.offset

    def readout_values(self, r: Readout, a) -> np.ndarray:
        """Integer synaptic sums ``a`` (..., N) of readout ``r`` in NIR units."""
        return np.asarray(a, dtype=np.float64) * (1 << units.STATE_SHIFT) / self.readout_scale + r.bias

    def with_headroom(self, peaks: Mapping[str, tuple[float, float]]) -> "QuantisedPlan":
        """This plan with the report's headroom (2**23 / peak) from integer peaks {name: (max|u|, max|v|)}."""
        rows = []
        for row in self.report:
            pu, pv = peaks.get(row.name, (0.0, 0.0))
            rows.append(dataclasses.replace(row, u_headroom=UV_LIMIT / pu if pu > 0 else None,
                                            v_headroom=UV_LIMIT / pv if pv > 0 else None))
        return dataclasses.replace(self, report=tuple(rows))


def _pow2_floor(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(x)))) if x >= 1 else 0


def _exponent(m: np.ndarray) -> tuple[int, bool]:
    """(exponent Lava's utilities give mantissas of ``m``, mixed signs), before any range clamp."""
    mx, mn = float(m.max(initial=0.0)), float(m.min(initial=0.0))
    if mx == mn == 0:
        return 0, False
    mixed = mn < 0 < mx
    if mixed:
        bits = int(math.floor(math.log2(min(127.0 / mx, 128.0 / -mn)))) + 1
    else:
        bits = int(math.floor(math.log2(255.0 / max(abs(mx), abs(mn)))))
    return -bits, mixed


def weight_mantissa(m: np.ndarray) -> tuple[np.ndarray, int]:
    """(8-bit mantissas, exponent) with ``mantissa * 2**exp`` ~= ``m``, chosen as Lava's utilities choose them.

    The exponent is raised to -8 when smaller weights would need a smaller one (their mantissas
    then use fewer bits); an exponent above 7 is returned as it is, for the caller to reject.
    """
    m = np.asarray(m, dtype=np.float64)
    e, mixed = _exponent(m)
    e = max(e, WEIGHT_EXP_MIN)
    if mixed:
        w = np.clip(2 * np.round(m * 2.0**-e / 2.0), -256, 254)
    else:
        w = np.clip(np.round(m * 2.0**-e), -255, 255)
    return w.astype(np.int64), e


def _bias(b: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """13-bit signed mantissas and 3-bit exponents for integer biases ``b``."""
    exp = np.zeros(b.shape, dtype=np.int64)
    mant = np.round(b).astype(np.int64)
    for e in range(BIAS_EXP_MAX + 1):
        fits = np.abs(np.round(b / 2**e)) <= BIAS_MANT_MAX
        pick = fits & (exp == 0) & (np.abs(mant) > BIAS_MANT_MAX)
        mant = np.where(pick, np.round(b / 2**e), mant).astype(np.int64)
        exp = np.where(pick, e, exp)
    if np.any(np.abs(mant) > BIAS_MANT_MAX):
        raise GraphError(f"node '{name}': a bias of {np.abs(b).max():.0f} integer units exceeds Loihi's range "
                         f"(13-bit mantissa << {BIAS_EXP_MAX} = {BIAS_MANT_MAX << BIAS_EXP_MAX:,})")
    return mant, exp


def _row_bound(c: Connection) -> float:
    """The largest sum of |8-bit mantissas| into one destination neuron of ``c``."""
    w, _ = weight_mantissa(c.weight)
    w = np.abs(w)
    return float(w.reshape(w.shape[0], -1).sum(axis=1).max(initial=0.0))


def _message_shift(plan: Plan, name: str, peak: float, dst_vth: Mapping[str, int], readout_vth: int) -> int:
    """Right shift of a non-spiking population's voltage before it is sent.

    At least the shift that keeps its synapses' 32-bit sums within 2**30 (2x headroom): the
    largest sum is bounded by the peak message (``peak`` integer units) times the largest row sum
    of 8-bit mantissas. At least the shift that lets its weights be expressed with an exponent of
    -8 or more: a message in the sender's own units (``S`` per threshold) makes a weight ``W`` into a
    receiver of threshold mantissa ``vth`` the tiny ``W vth / S``; each bit of shift doubles it.
    """
    outgoing = [c for c in plan.connections + plan.readout_connections if c.src == name]
    shift = 0
    worst = max((_row_bound(c) for c in outgoing), default=0.0)
    if worst > 0 and peak > 0:
        shift = max(shift, math.ceil(math.log2(peak * worst / ACC_LIMIT)))
    scale = units.state_scale(dst_vth[name])
    for c in outgoing:
        vth = dst_vth.get(c.dst, readout_vth)
        e, _ = _exponent(c.weight * vth / scale)
        shift = max(shift, WEIGHT_EXP_MIN - e)
    return max(0, shift)


def _fit_threshold(name: str, vth: int, cap: int, conns: list[Connection], in_scale: Mapping[str, float],
                   bias: np.ndarray | None) -> int:
    """The threshold mantissa for population ``name``: at most ``vth``, lowered until the incoming
    weights' exponents are at most 7 and the biases fit, raised (up to ``cap``) until no weight
    matrix vanishes at exponent -8."""
    for c in conns:
        top = float(np.abs(c.weight).max(initial=0.0)) / in_scale[c.src]
        if top == 0:
            continue
        while vth > 1 and _exponent(c.weight * vth / in_scale[c.src])[0] > WEIGHT_EXP_MAX:
            vth //= 2
        if _exponent(c.weight * vth / in_scale[c.src])[0] > WEIGHT_EXP_MAX:
            raise GraphError(
                f"node '{name}': incoming weights from '{c.src}' reach {top:.4g} times its threshold; an 8-bit weight "
                f"mantissa with exponent {WEIGHT_EXP_MIN}..{WEIGHT_EXP_MAX} holds at most {255 << WEIGHT_EXP_MAX:,} "
                "thresholds (at the smallest threshold mantissa 1)")
    if bias is not None and np.any(bias != 0):
        limit = (BIAS_MANT_MAX << BIAS_EXP_MAX) / (units.state_scale(1) * float(np.abs(bias).max()))
        fit = _pow2_floor(limit)
        if fit < 1:
            raise GraphError(f"node '{name}': a bias of {np.abs(bias).max():.4g} thresholds per step exceeds Loihi's "
                             f"bias range ({BIAS_MANT_MAX << BIAS_EXP_MAX:,} units) at the smallest threshold mantissa")
        vth = min(vth, fit)
    for c in conns:
        top = float(np.abs(c.weight).max(initial=0.0)) / in_scale[c.src]
        if top == 0 or top * vth * 2.0**-WEIGHT_EXP_MIN >= 0.5:
            continue
        # every weight would round to zero at exponent -8: the threshold must grow
        need = 1 << math.ceil(math.log2(0.5 / (top * 2.0**-WEIGHT_EXP_MIN)))
        if need > units.MAX_THRESHOLD_MANTISSA:
            raise GraphError(
                f"node '{name}': its threshold is {1 / top:.4g} times its largest weight from '{c.src}'; at weight "
                f"exponent {WEIGHT_EXP_MIN} that needs a threshold mantissa of {need:,}, beyond Loihi's 17 bits "
                f"({units.MAX_THRESHOLD_MANTISSA:,})")
        if need > cap:
            raise GraphError(
                f"node '{name}': its weights from '{c.src}' need a threshold mantissa of {need:,} to be represented, "
                f"but its state on the data would then overflow 24 bits (largest fitting mantissa {cap:,})")
        vth = max(vth, need)
    return vth


def quantise(plan: Plan, cfg: QuantConfig = QuantConfig(), *, peaks: Mapping[str, float] | None = None,
             integer_input: bool = False, vth_caps: Mapping[str, int] | None = None) -> QuantisedPlan:
    """The Loihi integer form of ``plan`` (a :class:`QuantisedPlan` with its per-population report).

    ``peaks``: per population, the largest |u| or |v| (in thresholds) of a floating-point run of
    the data to be run; it caps the state scale so that the data keeps 2x headroom in 24 bits.
    ``integer_input``: the input holds integers (spike counts), sent unscaled when the config
    leaves the input's fraction bits open. ``vth_caps``: per population, a largest threshold
    mantissa below the config's (calibration's choice of state scale). Raises GraphError naming the node and the limit when a
    weight, threshold, bias or state cannot fit Loihi's formats.
    """
    peaks = peaks or {}
    frac = cfg.input_frac_bits if cfg.input_frac_bits is not None else (0 if integer_input else 7)
    in_scale: dict[str, float] = {plan.input: float(2**frac), BIAS_SOURCE: 1.0}
    for pop in plan.neurons:
        in_scale[pop.name] = 1.0  # spikes; non-spiking populations' messages are set below
    caps: dict[str, int] = {}
    for pop in plan.neurons:
        name, cap = pop.name, units.MAX_THRESHOLD_MANTISSA
        peak = peaks.get(name, 0.0)
        if peak > 0:
            cap = _pow2_floor(UV_LIMIT / (units.state_scale(1) * peak * HEADROOM_TARGET))
            if cap < 1:
                if units.state_scale(1) * peak >= UV_LIMIT:
                    raise GraphError(
                        f"node '{name}': its state reaches {peak:.4g} times its threshold on the data, beyond Loihi's "
                        f"24-bit state (+-{UV_LIMIT:,} units, i.e. {UV_LIMIT // units.state_scale(1):,} thresholds "
                        "at the smallest threshold mantissa 1)")
                cap = 1
        caps[name] = cap
    vth_caps = vth_caps or {}
    provisional = {n: min(cfg.max_vth_mant, cap, vth_caps.get(n, cap)) for n, cap in caps.items()}
    for pop in plan.neurons:  # until set below (a recurrent edge from a later population reads this guess)
        if not pop.spiking:
            in_scale[pop.name] = float(units.state_scale(provisional[pop.name]))
    vths: dict[str, int] = {}
    shifts: dict[str, int] = {}  # graded message = v >> shift, for non-spiking populations
    for pop in plan.neurons:  # topological order: the sources' message units are known
        name = pop.name
        vth = _fit_threshold(name, provisional[name], caps[name], plan.incoming(name), in_scale, pop.bias)
        vths[name] = vth
        if not pop.spiking:
            peak = peaks.get(name, 0.0)
            shifts[name] = _message_shift(plan, name, units.state_scale(vth) * peak if peak > 0 else UV_LIMIT,
                                          {**provisional, **vths}, cfg.max_vth_mant)
            in_scale[name] = units.state_scale(vth) / 2**shifts[name]
    qpops, report = {}, []
    qconns: dict[int, QuantisedSynapse] = {}
    for pop in plan.neurons:
        name = pop.name
        vth = vths[name]
        row = dict(weight_exp={}, weight_rel_error={})
        for c in plan.incoming(name):
            qconns[id(c)] = _synapse(c, vth, in_scale[c.src], name, row)
        du = units.current_decay_register(pop.du)
        dv = units.voltage_decay_register(pop.dv)
        mant, exp = _bias(pop.bias * units.state_scale(vth), name)
        b = pop.bias * units.state_scale(vth)
        bias_err = float(np.abs(mant * 2.0**exp - b).max(initial=0.0) / max(float(np.abs(b).max(initial=0.0)), 1.0))
        report.append(_row(pop, vth, du, dv, plan.dt, row, bias_err))
        qpops[name] = QuantisedPopulation(name=name, vth_mant=vth, du=du, dv=dv, bias_mant=mant, bias_exp=exp,
                                          msg_shift=shifts.get(name, 0))
    readout_vth = cfg.max_vth_mant
    for c in plan.readout_connections:
        readout_vth = _fit_threshold(f"{c.dst}", readout_vth, readout_vth, [c], in_scale, None)
    for c in plan.readout_connections:
        qconns[id(c)] = _synapse(c, readout_vth, in_scale[c.src], c.dst, dict(weight_exp={}, weight_rel_error={}))
    return QuantisedPlan(plan=plan, config=cfg, input_scale=in_scale[plan.input], populations=qpops,
                         connections=tuple(qconns[id(c)] for c in plan.connections),
                         bias_connections=tuple(qconns[id(c)] for c in plan.bias_connections),
                         readout_connections=tuple(qconns[id(c)] for c in plan.readout_connections),
                         readout_scale=units.state_scale(readout_vth), report=tuple(report))


def _synapse(c: Connection, vth: int, in_scale: float, name: str, row: dict) -> QuantisedSynapse:
    w, e = weight_mantissa(c.weight * vth / in_scale)
    if e > WEIGHT_EXP_MAX:
        raise GraphError(f"node '{name}': incoming weights from '{c.src}' need weight exponent {e}, beyond Loihi's "
                         f"{WEIGHT_EXP_MIN}..{WEIGHT_EXP_MAX}")
    if np.any(c.weight != 0) and not np.any(w != 0):
        raise GraphError(f"node '{name}': every weight from '{c.src}' rounds to zero at weight exponent "
                         f"{WEIGHT_EXP_MIN} (threshold mantissa {vth})")
    realised = w * 2.0**e * in_scale / vth
    key = c.src if not c.delay else f"{c.src}@{c.delay}"
    row["weight_exp"][key] = e
    row["weight_rel_error"][key] = float(np.abs(realised - c.weight).max(initial=0.0) /
                                         (float(np.abs(c.weight).max(initial=0.0)) or 1.0))
    return QuantisedSynapse(weight=w, exp=e, in_scale=in_scale)


def _worst_index(requested: np.ndarray, realised: np.ndarray) -> int:
    """Index of the neuron whose decay register realises its requested decay least exactly."""
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(requested > 0, np.abs(realised / requested - 1.0), np.abs(realised))
    return int(np.argmax(err))


def _row(pop, vth: int, du: np.ndarray, dv: np.ndarray, dt: float, row: dict, bias_err: float) -> LayerQuant:
    du_real, dv_real = units.current_decay_realised(du), units.voltage_decay_realised(dv)
    iu, iv = _worst_index(pop.du, du_real), _worst_index(pop.dv, dv_real)
    syn = mem = (None, None)
    if np.any(pop.du < 1):
        syn = (float(units.decay_to_tau(pop.du[iu], dt)), float(units.decay_to_tau(du_real[iu], dt)))
    if np.any(pop.dv > 0):
        mem = (float(units.decay_to_tau(pop.dv[iv], dt)), float(units.decay_to_tau(dv_real[iv], dt)))
    return LayerQuant(name=pop.name, vth_mant=vth, du_reg=int(du[iu]), dv_reg=int(dv[iv]),
                      tau_syn_requested_s=syn[0], tau_syn_realised_s=syn[1], tau_mem_requested_s=mem[0],
                      tau_mem_realised_s=mem[1], weight_exp=row["weight_exp"], weight_rel_error=row["weight_rel_error"],
                      bias_rel_error=bias_err)
