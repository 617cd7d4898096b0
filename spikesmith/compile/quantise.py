"""Loihi fixed-point quantisation of a deployment plan, and a bit-exact emulator of it.

Loihi's LIF (as Lava's bit-accurate models compute it):

    u <- wrap24( round0(u * (4096 - (du + 1)) / 4096) + (a_in << 6) )
    v <- clip24( round0(v * (4096 - dv) / 4096) + u + (bias_mant << bias_exp) )
    spike if v > (vth << 6); then v <- 0 (or v <- v - (vth << 6) for reset by subtraction;
    a delayed reset acts after the next step's integration instead)

with 12-bit ``du``/``dv`` registers (the current decay register has a +1 offset), 24-bit
``u``/``v`` (round0 = shift of the magnitude, i.e. rounding toward zero), 13-bit signed
bias mantissa with a 3-bit exponent, and a 17-bit threshold mantissa shifted left by 6.
Synapses carry 8-bit weight mantissas with a per-connection exponent:
``a = (sum_j w_ij s_j) << weight_exp`` (right shift for a negative exponent).

Mapping: a population's normalised state (threshold 1) is scaled by ``S = 64 * vth``
integer units. A weight ``W`` (normalised, gain folded in) becomes the mantissa of
``m = W * S / 64 / input_scale`` with the exponent chosen as Lava's own
``lava.utils.weightutils`` does: for mixed-sign weights, scale = min(127/max, 128/|min|),
``weight_exp = -(floor(log2 scale) + 1)``, mantissas even (8-bit with sign); for
single-sign weights, scale = 255/max|w|, ``weight_exp = -floor(log2 scale)``. Lava's fixed-
point Conv applies no exponent, so a population fed by a Conv takes the largest threshold
mantissa (a power of two) for which the conv weights fit with exponent 0. When the data to be
run is given, each population's threshold mantissa is also capped so that the largest |u| or |v|
of the floating-point run stays within half the 24-bit range (``HEADROOM_TARGET``): a state that
would saturate gets a coarser scale instead. Graded input (the first layer of direct encoding)
is sent as ``round(x * 2**input_bits_frac)``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from spikesmith.compile.plan import Connection, Plan, dense_weight
from spikesmith.errors import GraphError

UV_LIMIT = 2**23
DEFAULT_VTH_MANT = 2**10
ACC_LIMIT = 2.0**30  # a synapse's 32-bit accumulator, with 2x headroom
HEADROOM_TARGET = 2.0  # state scale chosen so the verification data peaks at most at half the 24-bit range


@dataclass(frozen=True, kw_only=True)
class QuantConfig:
    """Quantisation choices."""

    max_vth_mant: int = DEFAULT_VTH_MANT  # state scale S = 64 * vth (power of two)
    # graded input x is sent as round(x * 2**input_frac_bits); None: 0 for integer (spike) input, else 7
    input_frac_bits: int | None = None

    def __post_init__(self) -> None:
        if self.max_vth_mant < 1 or self.max_vth_mant >= 2**17 or self.max_vth_mant & (self.max_vth_mant - 1):
            raise ValueError("max_vth_mant must be a power of two below 2**17")
        if self.input_frac_bits is not None and not 0 <= self.input_frac_bits <= 16:
            raise ValueError("input_frac_bits must be in 0..16")


@dataclass(kw_only=True)
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
    u_headroom: float | None = None  # 2**23 / max|u| seen on the verification data
    v_headroom: float | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _pow2_floor(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(x)))) if x >= 1 else 0


def weight_mantissa(m: np.ndarray, *, allow_exp: bool = True) -> tuple[np.ndarray, int]:
    """(8-bit mantissas, exponent) with ``mantissa * 2**exp`` ~= ``m``, chosen as Lava's utilities choose them."""
    m = np.asarray(m, dtype=np.float64)
    mx, mn = float(m.max(initial=0.0)), float(m.min(initial=0.0))
    if mx == mn == 0:
        return np.zeros(m.shape, dtype=np.int64), 0
    mixed = mn < 0 < mx
    if mixed:
        scale = min(127.0 / mx, 128.0 / -mn)
        bits = int(math.floor(math.log2(scale))) + 1
    else:
        scale = 255.0 / max(abs(mx), abs(mn))
        bits = int(math.floor(math.log2(scale)))
    if not allow_exp:
        bits = 0
    if mixed:
        w = 2 * np.round(m * 2.0**bits / 2.0)
        w = np.clip(w, -256, 254)
    else:
        w = np.clip(np.round(m * 2.0**bits), -255, 255)
    return w.astype(np.int64), -bits


def _worst_index(requested: np.ndarray, realised: np.ndarray) -> int:
    """Index of the neuron whose decay register realises its requested decay least exactly."""
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(requested > 0, np.abs(realised / requested - 1.0), np.abs(realised))
    return int(np.argmax(err))


def _worst(reg: np.ndarray, requested: np.ndarray, realised: np.ndarray) -> int:
    return int(reg[_worst_index(requested, realised)])


def _bias(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """13-bit signed mantissas and 3-bit exponents for integer biases ``b``."""
    exp = np.zeros(b.shape, dtype=np.int64)
    mant = np.round(b).astype(np.int64)
    for e in range(8):
        fits = np.abs(np.round(b / 2**e)) <= 4095
        pick = fits & (exp == 0) & (np.abs(mant) > 4095)
        mant = np.where(pick, np.round(b / 2**e), mant).astype(np.int64)
        exp = np.where(pick, e, exp)
    if np.any(np.abs(mant) > 4095):
        raise GraphError("a bias exceeds Loihi's range (13-bit mantissa << 7)")
    return mant, exp


def _message_shift(plan: Plan, name: str, peak: float) -> int:
    """Right shift of a non-spiking population's voltage before it is sent, so its synapses' sums fit.

    Lava's fixed-point synapse sums ``mantissa * message`` in 32 bits. The largest sum is bounded
    by the peak message (the state peak, ``peak`` integer units) times the largest row sum of
    8-bit mantissas; the shift keeps that bound within 2**30 (2x headroom).
    """
    worst = 0.0
    for c in plan.connections + plan.readout_connections:
        if c.src == name:
            w, _ = weight_mantissa(dense_weight(c, plan))
            worst = max(worst, float(np.abs(w).sum(axis=1).max(initial=0.0)))
    if worst == 0 or peak <= 0:
        return 0
    return max(0, math.ceil(math.log2(peak * worst / ACC_LIMIT)))


def quantise(plan: Plan, cfg: QuantConfig = QuantConfig(), x: np.ndarray | None = None) -> tuple[Plan, list[LayerQuant]]:
    """A copy of ``plan`` with Loihi integer parameters attached, and the per-population report.

    Sets on every LIF population ``q_vth, q_du, q_dv, q_bias_mant, q_bias_exp`` and on every
    connection ``q_weight, q_exp``; ``plan.q_input_scale`` is the factor applied to graded input.
    ``x`` (T, B, ...), the data to be run, decides the input scale when the config leaves it open,
    caps each population's state scale and gives its state headroom; the float and fixed
    emulations of ``x`` are kept as ``plan.q_emulated``.
    """
    p = copy.deepcopy(plan)
    frac = cfg.input_frac_bits
    if frac is None:
        integer = x is not None and np.all(x == np.round(x)) and np.abs(x).max(initial=0) < 2**15
        frac = 0 if integer else 7
    in_scale = {p.input: float(2**frac), "__ones__": 1.0}
    for name, pop in p.populations.items():
        if pop.kind != "input":
            in_scale[name] = 1.0
    incoming: dict[str, list[Connection]] = {}
    for c in p.connections + p.bias_connections:
        incoming.setdefault(c.dst, []).append(c)
    report = []
    dt = p.dt
    # the floating-point state peaks on the data to be run bound each population's state scale
    peaks = {}
    if x is not None:
        float_states = emulate(plan, x, fixed=False)
        peaks = {n: max(float(np.abs(st["u"]).max(initial=0.0)), float(np.abs(st["v"]).max(initial=0.0)))
                 for n, st in float_states.items()}
    # first the state scale S = 64 * vth of every population (a non-spiking one sends its v in those units)
    vths: dict[str, int] = {}
    shifts: dict[str, int] = {}  # graded message = v >> shift, for non-spiking populations
    for name, pop in p.populations.items():
        if pop.kind == "input":
            continue
        vth = cfg.max_vth_mant
        if peaks.get(name, 0.0) > 0:
            # largest power of two that keeps HEADROOM_TARGET x the observed peak inside 24 bits
            vth = min(vth, max(1, _pow2_floor(UV_LIMIT / (64.0 * peaks[name] * HEADROOM_TARGET))))
        for c in incoming.get(name, []):
            if c.kind == "conv":
                wmax = float(np.abs(c.weight).max(initial=0.0))
                if wmax > 0:
                    # m = W * vth / scale must stay within the 8-bit mantissa with exponent 0
                    limit = 127.0 * in_scale[c.src] / wmax
                    vth = min(vth, _pow2_floor(limit))
        if vth < 1:
            raise GraphError(f"node '{name}': convolution weights are too large for Loihi's 8-bit mantissa "
                             "relative to the threshold")
        vths[name] = vth
        if not pop.spiking:
            shifts[name] = _message_shift(p, name, 64.0 * vth * peaks[name] if name in peaks else UV_LIMIT)
            in_scale[name] = 64.0 * vth / 2**shifts[name]
    for name, pop in p.populations.items():
        if pop.kind == "input":
            continue
        vth = vths[name]
        S = 64.0 * vth
        row = LayerQuant(name=name, vth_mant=vth, du_reg=0, dv_reg=0,
                         tau_syn_requested_s=None, tau_syn_realised_s=None,
                         tau_mem_requested_s=None, tau_mem_realised_s=None)
        for c in incoming.get(name, []):
            m = c.weight * S / 64.0 / in_scale[c.src]
            w, e = weight_mantissa(m, allow_exp=c.kind != "conv")
            c.q_weight, c.q_exp = w, e
            realised = w * 2.0**e * 64.0 * in_scale[c.src] / S
            denom = float(np.abs(c.weight).max(initial=0.0)) or 1.0
            key = c.src if not c.delay else f"{c.src}@{c.delay}"
            row.weight_exp[key] = e
            row.weight_rel_error[key] = float(np.abs(realised - c.weight).max(initial=0.0) / denom)
        du_reg = np.clip(np.round(pop.du * 4096) - 1, 0, 4095).astype(np.int64)
        dv_reg = np.clip(np.round(pop.dv * 4096), 0, 4095).astype(np.int64)
        # per-neuron registers; the report shows the neuron whose time constant moved most
        row.du_reg, row.dv_reg = _worst(du_reg, pop.du, (du_reg + 1) / 4096.0), _worst(dv_reg, pop.dv, dv_reg / 4096.0)
        if np.any(pop.du < 1):
            i = _worst_index(pop.du, (du_reg + 1) / 4096.0)
            row.tau_syn_requested_s, row.tau_syn_realised_s = dt / pop.du[i], dt / ((du_reg[i] + 1) / 4096)
        if np.any(pop.dv > 0):
            i = _worst_index(pop.dv, dv_reg / 4096.0)
            row.tau_mem_requested_s = dt / pop.dv[i] if pop.dv[i] > 0 else float("inf")
            row.tau_mem_realised_s = dt / (dv_reg[i] / 4096) if dv_reg[i] else float("inf")
        b = pop.bias * S
        mant, exp = _bias(b)
        realised_b = mant * 2.0**exp
        row.bias_rel_error = float(np.abs(realised_b - b).max(initial=0.0) / max(float(np.abs(b).max(initial=0.0)), 1.0))
        pop.q_vth, pop.q_du, pop.q_dv, pop.q_bias_mant, pop.q_bias_exp = vth, du_reg, dv_reg, mant, exp
        pop.q_scale = S
        pop.q_msg_shift = shifts.get(name, 0)
        report.append(row)
    for r in p.readouts:
        if r.connection is not None:
            S = 64.0 * cfg.max_vth_mant
            w, e = weight_mantissa(r.connection.weight * S / 64.0 / in_scale[r.connection.src])
            r.connection.q_weight, r.connection.q_exp = w, e
            r.q_scale = S
    p.q_input_scale = in_scale[p.input]
    if x is not None:
        states = emulate(p, x, fixed=True)
        # both emulations of the data, for callers that compare them (verify's membrane deviation)
        p.q_emulated = {"float": float_states, "fixed": states}
        for row in report:
            st = states[row.name]
            S = p.populations[row.name].q_scale
            for key in ("u", "v"):
                peak = float(np.abs(st[key]).max(initial=0.0)) * S
                setattr(row, f"{key}_headroom", UV_LIMIT / peak if peak > 0 else float("inf"))
    return p, report


def emulate(plan: Plan, x: np.ndarray, *, fixed: bool) -> dict[str, dict[str, np.ndarray]]:
    """Run a plan with Lava's LIF arithmetic in numpy, aligned to the reference time axis.

    Returns per population ``{"s": spikes, "u": current, "v": voltage}`` shaped (T, B, N) in
    normalised units (fixed point divided by the state scale S). Connections deliver in the
    same step (the lag alignment that the Lava run does by reading each population at its
    lag); recurrent connections deliver the previous step, delayed ones ``delay`` steps later.
    """
    steps, batch = x.shape[:2]
    flat_x = x.reshape(steps, batch, -1).astype(np.float64)
    if fixed:
        flat_x = np.round(flat_x * plan.q_input_scale)
    out: dict[str, dict[str, np.ndarray]] = {}
    state = {}
    for name, pop in plan.populations.items():
        if pop.kind == "input":
            continue
        n = pop.size
        state[name] = {k: np.zeros((batch, n), dtype=np.int64 if fixed else np.float64) for k in ("u", "v", "s")}
        out[name] = {k: np.zeros((steps, batch, n)) for k in ("u", "v", "s")}
    conns = plan.connections + plan.bias_connections
    # dense (dst, src) matrices once, not at every step
    matrices = {id(c): (dense_weight(c, plan, quantised=True).astype(np.int64) if fixed else dense_weight(c, plan))
                for c in conns}
    # outputs of every source at past steps, for delayed and recurrent connections
    hist: dict[str, list[np.ndarray]] = {n: [] for n in list(state) + [plan.input]}
    reach = max([c.delay + int(c.recurrent) for c in conns], default=0)

    def past(name: str, back: int, like: np.ndarray) -> np.ndarray:
        h = hist[name]
        return h[-back] if len(h) >= back else np.zeros_like(like)

    for t in range(steps):
        cur = {plan.input: flat_x[t], "__ones__": np.ones((batch, 1))}
        for name, pop in plan.populations.items():
            if pop.kind == "input":
                continue
            st = state[name]
            a = np.zeros((batch, pop.size), dtype=np.int64 if fixed else np.float64)
            for c in conns:
                if c.dst != name:
                    continue
                back = c.delay + int(c.recurrent)  # steps into the past this connection reads
                if back == 0:
                    src = cur[c.src]
                else:
                    src = past(c.src, back, np.zeros((batch, plan.populations[c.src].size)))
                if fixed:
                    acc = src.astype(np.int64) @ matrices[id(c)].T
                    a += acc << c.q_exp if c.q_exp >= 0 else acc >> -c.q_exp
                else:
                    a += src @ matrices[id(c)].T
            if fixed:
                du = 4096 - (pop.q_du + 1)
                u = np.sign(st["u"] * du) * (np.abs(st["u"] * du) >> 12) + (a << 6)
                u = np.where(u > UV_LIMIT, u - 2 * UV_LIMIT, u)
                u = np.where(u <= -UV_LIMIT, u + 2 * UV_LIMIT, u)
                dv = 4096 - pop.q_dv
                bias = pop.q_bias_mant * (2 ** pop.q_bias_exp)
                v = np.sign(st["v"] * dv) * (np.abs(st["v"] * dv) >> 12) + u + bias
                v = np.clip(v, -UV_LIMIT + 1, UV_LIMIT - 1)
                vth = pop.q_vth << 6
                s = v > vth
                scale = pop.q_scale
            else:
                u = st["u"] * (1 - pop.du) + a
                v = st["v"] * (1 - pop.dv) + u + pop.bias
                vth = pop.vth
                s = v > vth
                scale = 1.0
            if pop.delayed:  # the reset of the previous step's spikes acts after this step's integration
                v = np.where(st["s"] > 0, v - vth if pop.subtract else 0, v)
                s = v > vth
            if not pop.spiking:  # LI, CubaLI, I: never fire; downstream synapses receive v itself
                s = np.zeros_like(s)
            out[name]["u"][t], out[name]["v"][t] = u / scale, v / scale
            if not pop.delayed:
                v = np.where(s, v - vth, v) if pop.subtract else np.where(s, 0, v)
            st["u"], st["v"], st["s"] = u, v, s
            if pop.spiking:
                cur[name] = s.astype(np.float64)
            else:  # the voltage itself; in fixed point shifted to keep synaptic sums within 32 bits
                cur[name] = v >> pop.q_msg_shift if fixed else v
            out[name]["s"][t] = s
        for n in hist:
            hist[n].append(cur[n])
            if len(hist[n]) > reach:
                hist[n].pop(0)
    return out
