"""Calibration: the fixed-point scales of a plan chosen once, at compile time, from a calibration split.

:func:`calibrate` runs the calibration inputs through the float plan (the fixed-point engine's
float mode, Lava's float LIF arithmetic) and quantises it (:func:`spikesmith.compile.quantise.quantise`):
the state peaks of that run cap each population's state scale so that the data keeps headroom in
24 bits. Then, population by population in topological order, it tries the threshold mantissas
(state scales) that fit, from the largest down, each with the scales already chosen upstream, and
keeps the one whose spikes on the calibration split disagree least with the float plan's spikes
of the same population (ties: the larger mantissa). The weight exponents follow from the threshold
mantissa (Lava's rule, :func:`~spikesmith.compile.quantise.weight_mantissa`). The inputs that
chose the scales are recorded (:class:`Calibration`) and never the verification data, so the
deployed numbers do not depend on which samples were verified.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from spikesmith.compile.plan import BIAS_SOURCE, Plan
from spikesmith.compile.quantise import QuantConfig, QuantisedPlan, quantise
from spikesmith.errors import GraphError
from spikesmith.targets.loihi import Engine, calibrate as float_peaks

SEARCH_DEPTH = 4  # threshold mantissas tried per population: the largest that fits and 3 halvings


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """Where the scales came from and what they achieved on the calibration split."""

    source: str  # e.g. "digits train split, samples 0..255" or "Bernoulli(0.2) spikes, seed 1"
    samples: int
    steps: int
    input_sha256: str  # of the calibration inputs (float64 bytes): the same data gives the same scales
    searched: bool
    bias_corrected: list[str] = field(default_factory=list)  # populations whose bias absorbs the rounding's mean error
    vth_mant: dict[str, int] = field(default_factory=dict)
    disagreement: dict[str, float] = field(default_factory=dict)  # spikes vs float, per population, chosen scales
    disagreement_default: dict[str, float] = field(default_factory=dict)  # with the largest mantissas that fit
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)  # {population: {vth_mant: disagreement}}

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _integer(x: np.ndarray) -> bool:
    return bool(np.all(x == np.round(x)) and np.abs(x).max(initial=0) < 2**15)


def disagreement(qplan: QuantisedPlan, x: np.ndarray, reference: dict, *, batch_size: int | None = None
                 ) -> dict[str, float]:
    """Per spiking population, the fraction of (step, sample, neuron) entries whose fixed-point spike
    differs from ``reference`` (the float run's activity); real-valued populations: the mean
    |difference| relative to the float peak."""
    act = Engine(qplan).run(x, record=True, batch_size=batch_size)["activity"]
    out = {}
    for pop in qplan.plan.neurons:
        a, b = act[pop.name], reference[pop.name]
        if pop.spiking:
            out[pop.name] = float(np.mean(a != b))
        else:
            out[pop.name] = float(np.mean(np.abs(a - b)) / max(float(np.abs(b).max(initial=0.0)), 1e-12))
    return out


def _mean_messages(plan: Plan, x: np.ndarray, ref: dict) -> dict[str, np.ndarray]:
    """Per source (the input, spiking populations, the constant-one source): its mean message per step."""
    out = {plan.input: x.reshape(x.shape[0] * x.shape[1], -1).mean(axis=0), BIAS_SOURCE: np.ones(1)}
    for pop in plan.neurons:
        if pop.spiking:
            a = ref[pop.name]
            out[pop.name] = a.reshape(a.shape[0] * a.shape[1], -1).mean(axis=0)
    return out


def _corrected(plan: Plan, qplan: QuantisedPlan, name: str, rates: dict[str, np.ndarray]) -> Plan | None:
    """``plan`` with population ``name``'s bias lowered by the mean input error its rounded weights add
    (``sum_j (W_q - W)_ij rate_j``, divided by du: what it adds to v in the steady state), or None
    when a source sends real values whose mean is not a rate."""
    pairs = [(c, q) for c, q in qplan.pairs() if c.dst == name]
    if not pairs or any(c.src not in rates for c, _ in pairs):
        return None
    vth = qplan.populations[name].vth_mant
    delta = np.zeros(plan.populations[name].size)
    with torch.no_grad():
        for c, q in pairs:
            err = q.weight * 2.0 ** q.exp * q.in_scale / vth - c.weight
            r = torch.as_tensor(rates[c.src], dtype=torch.float64).reshape(1, -1)
            delta += c.apply(r, torch.as_tensor(err, dtype=torch.float64)).reshape(-1).numpy()
    pop = plan.populations[name]
    pops = dict(plan.populations)
    pops[name] = dataclasses.replace(pop, bias=pop.bias - delta / pop.du)
    return dataclasses.replace(plan, populations=pops)


def calibrate(plan: Plan, x: np.ndarray, *, source: str, cfg: QuantConfig = QuantConfig(), search: bool = True,
              batch_size: int | None = None) -> tuple[QuantisedPlan, Calibration]:
    """(the quantised plan, its calibration record) with scales chosen on calibration inputs ``x`` (T, B, ...)."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    integer = _integer(x)
    peaks = float_peaks(plan, x, batch_size=batch_size)
    base = quantise(plan, cfg, peaks=peaks, integer_input=integer)
    ref = Engine(plan).run(x, record=True, batch_size=batch_size)["activity"]
    default = disagreement(base, x, ref, batch_size=batch_size)
    chosen = {n: q.vth_mant for n, q in base.populations.items()}
    candidates: dict[str, dict[str, float]] = {}
    qplan, best_err = base, dict(default)
    if search:
        for pop in plan.neurons:
            name, top = pop.name, chosen[pop.name]
            tried = {str(top): best_err[name]}
            for k in range(1, SEARCH_DEPTH):
                cand = top >> k
                if cand < 1:
                    break
                try:
                    q = quantise(plan, cfg, peaks=peaks, integer_input=integer, vth_caps={**chosen, name: cand})
                except GraphError:  # a scale that cannot hold the weights is no candidate
                    continue
                if q.populations[name].vth_mant != cand:
                    continue
                err = disagreement(q, x, ref, batch_size=batch_size)
                tried[str(cand)] = err[name]
                if err[name] < best_err[name]:
                    qplan, best_err, chosen = q, err, {**chosen, name: cand}
            candidates[name] = tried
    corrected: list[str] = []
    if search:  # bias correction: the mean error the weight rounding adds to each neuron, taken out of its bias
        rates = _mean_messages(plan, x, ref)
        for pop in plan.neurons:
            name = pop.name
            fixed = _corrected(plan, qplan, name, rates)
            if fixed is None:
                continue
            try:
                q = quantise(fixed, cfg, peaks=peaks, integer_input=integer, vth_caps=chosen)
            except GraphError:
                continue
            err = disagreement(q, x, ref, batch_size=batch_size)
            candidates.setdefault(name, {})["bias-corrected"] = err[name]
            if err[name] < best_err[name]:
                plan, qplan, best_err = fixed, q, err
                corrected.append(name)
    digest = hashlib.sha256(x.tobytes()).hexdigest()
    record = Calibration(source=source, samples=int(x.shape[1]), steps=int(x.shape[0]), input_sha256=digest,
                         searched=search, bias_corrected=corrected, vth_mant={n: q.vth_mant for n, q in qplan.populations.items()},
                         disagreement=best_err, disagreement_default=default, candidates=candidates)
    return qplan, record
