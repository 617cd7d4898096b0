"""Verified compilation at test-set scale: every sample through the reference (and the fixed-point
engine), a sample of them through Lava, spike agreement per population for each pair, accuracy per target.

The data streams through in chunks, so a whole test split never has to be held as traces: per
chunk the reference and the fixed-point engine run, their agreement is counted, and only the
samples that Lava runs are kept for the Lava comparisons.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import nir
import numpy as np

from spikesmith.compile.graph import flatten
from spikesmith.errors import InputError
from spikesmith.targets.trace import Trace, concat, head

Progress = Callable[[str, dict], None]
Batches = Callable[[], Iterable[tuple[np.ndarray, np.ndarray | None]]]
FIXED_VALUE_TOLERANCE = 0.02  # real values (voltages, linear readouts) agree within 2% of the node's peak
DEFAULT_LAVA_SAMPLES = 64  # Lava runs this many samples of a larger split unless told otherwise
DEFAULT_CHUNK = 256


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Agreement of two targets: per node, at the output, and the first divergence, over ``samples`` samples."""

    a: str
    b: str
    per_node: dict[str, float]
    output: float
    identical: bool
    first_divergence: dict | None = None
    value_tolerance: float = 0.0  # real values compared within this fraction of their peak (0: exactly)
    samples: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _agree(x: np.ndarray, y: np.ndarray, value_tolerance: float) -> np.ndarray:
    """Entry-wise agreement: spikes exactly; real values to rounding, or within ``value_tolerance`` of
    the node's peak |value| (fixed point cannot reproduce a real value, only approximate it)."""
    binary = np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all()
    if binary or value_tolerance == 0:
        return np.isclose(x, y, rtol=1e-9, atol=1e-9)
    peak = max(float(np.abs(x).max(initial=0.0)), 1e-12)
    return np.abs(x - y) <= value_tolerance * peak + 1e-9


class _Tally:
    """Agreement of two targets accumulated over chunks of samples."""

    def __init__(self, a: str, b: str, order: list[str], output: str, value_tolerance: float = 0.0):
        self.a, self.b, self.order, self.output, self.tol = a, b, order, output, value_tolerance
        self.same: dict[str, int] = {}
        self.total: dict[str, int] = {}
        self.out_same = self.out_total = self.samples = 0
        self.first: dict | None = None

    def add(self, x: Trace, y: Trace, offset: int = 0) -> None:
        for name in self.order:
            if name not in x.activity or name not in y.activity:
                continue
            same = _agree(x.activity[name], y.activity[name], self.tol)
            self.same[name] = self.same.get(name, 0) + int(same.sum())
            self.total[name] = self.total.get(name, 0) + same.size
            if not same.all():
                t = int(np.argwhere(~same)[:, 0].min())
                if self.first is None or t < self.first["time_step"]:
                    self.first = {"node": name, "time_step": t,
                                  "samples": sorted({offset + int(i) for i in np.argwhere(~same[t])[:, 0]})[:10]}
        out = _agree(x.output, y.output, self.tol)
        self.out_same += int(out.sum())
        self.out_total += out.size
        self.samples += x.batch

    def result(self) -> Comparison:
        per_node = {n: self.same[n] / self.total[n] for n in self.order if self.total.get(n)}
        out = self.out_same / max(self.out_total, 1)
        return Comparison(a=self.a, b=self.b, per_node=per_node, output=out,
                          identical=all(v == 1.0 for v in per_node.values()) and out == 1.0,
                          first_divergence=self.first, value_tolerance=self.tol, samples=self.samples)


def compare(a: Trace, b: Trace, order: list[str], output: str, value_tolerance: float = 0.0) -> Comparison:
    """Agreement between traces ``a`` and ``b`` over the nodes in ``order`` (spikes for neuron nodes).

    ``value_tolerance``: for real-valued nodes, the fraction of ``a``'s peak |value| within which
    two values agree (0: equal to rounding, as floating-point targets must be).
    """
    tally = _Tally(a.target, b.target, order, output, value_tolerance)
    tally.add(a, b)
    return tally.result()


@dataclass(frozen=True, kw_only=True)
class Verification:
    """Result of :func:`verify`."""

    samples: int
    steps: int
    dt: float
    reset: str
    comparisons: list[Comparison]
    fixed_point: bool
    fixed_tolerance: float
    float_ok: bool
    fixed_ok: bool | None
    target_samples: dict[str, int] = field(default_factory=dict)  # samples each target ran
    quantisation: list[dict] = field(default_factory=list)
    max_membrane_deviation: dict[str, float] = field(default_factory=dict)
    wraps: dict[str, int] = field(default_factory=dict)  # 24-bit wraps of u per population (fixed point)
    resources: dict = field(default_factory=dict)
    seconds_per_sample: dict[str, float] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.float_ok and (self.fixed_ok is not False)

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["comparisons"] = [c.to_dict() for c in self.comparisons]
        d["ok"] = self.ok
        d["schema_version"] = 2
        return d


def _chunks(x: np.ndarray, labels: np.ndarray | None, size: int) -> Batches:
    def gen() -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        for s in range(0, x.shape[1], size):
            yield x[:, s:s + size], None if labels is None else labels[s:s + size]
    return gen


def verify(graph: nir.NIRGraph, x: np.ndarray | None = None, *, dt: float, fixed_point: bool = False,
           fixed_tolerance: float = 0.9, labels: np.ndarray | None = None, reset=None,
           batches: Batches | None = None, samples: int | None = None, lava_samples: int | None = None,
           batch_size: int | None = None, qplan=None, reference_plan: bool = False, on_progress: Progress | None = None) -> Verification:
    """Run the inputs through the Norse reference, Lava float and, with ``fixed_point``, the
    fixed-point engine and Lava's bit-accurate models; compare them spike for spike.

    Inputs: ``x`` (T, B, ...) with optional ``labels``, or ``batches``, a function returning an
    iterable of (x, labels) chunks (called once per pass over the data; ``samples`` says how many
    there are, for progress). The reference and the engine run every sample; Lava runs the first
    ``lava_samples`` (default: all up to 64). Floating point must be spike-identical to the
    reference and the engine bit-identical to Lava fixed point; fixed point passes when its output
    agrees with the reference on at least ``fixed_tolerance`` of (time step, sample, neuron)
    entries: spikes exactly, real-valued outputs within ``FIXED_VALUE_TOLERANCE`` of their peak.
    ``reset``: the neurons' ResetRule (default: the graph's stored rule, else NIR's).
    ``qplan``: the QuantisedPlan to verify (calibrated elsewhere, e.g. on a calibration split);
    without it the state scales come from a float run of the verification data itself.
    ``reference_plan``: the reference is the float run of ``qplan``'s own plan (the fixed-point
    engine's float mode, spike-identical to Lava float) instead of the Norse run of ``graph``: for
    a plan fine-tuned on the chip grid, whose float twin is no longer the graph.
    """
    from spikesmith.compile.graph import NEURON_TYPES
    from spikesmith.compile.plan import build_plan
    from spikesmith.compile.quantise import QuantConfig, quantise
    from spikesmith.compile.resources import estimate
    from spikesmith.targets import loihi
    from spikesmith.targets.lava import simulate as lava
    from spikesmith.targets.reference import simulate as reference

    chunk = DEFAULT_CHUNK if batch_size is None else int(batch_size)
    if chunk < 1:
        raise InputError(f"--batch-size must be a positive number of samples, got {batch_size}")
    if batches is None:
        if x is None:
            raise InputError("verify needs inputs: an array x or a source of batches")
        samples = int(x.shape[1])
        batches = _chunks(np.asarray(x, dtype=np.float64), labels, chunk)
    flat = flatten(graph)
    plan = build_plan(flat, dt, reset)
    nodes = [n for n, node in flat.nodes.items() if isinstance(node, NEURON_TYPES)] + flat.outputs
    out = flat.outputs[0]
    total = samples or 0

    def emit(stage: str, done: int, n: int | None = None) -> None:
        if on_progress is not None:
            on_progress("verify", {"stage": stage, "done": done, "total": n or total})

    if qplan is not None and reference_plan:
        plan = qplan.plan
    elif qplan is not None:
        pass  # the float targets run the graph's own plan; the fixed-point ones run qplan (its biases may be calibrated)
    elif fixed_point:  # the state scales come from a float run of all the data, as loihi.prepare does
        peaks: dict[str, float] = {}
        integer, done = True, 0
        for xb, _ in batches():
            xb = np.asarray(xb, dtype=np.float64)
            integer = integer and bool(np.all(xb == np.round(xb)) and np.abs(xb).max(initial=0) < 2**15)
            for n, p in loihi.calibrate(plan, xb, batch_size=chunk).items():
                peaks[n] = max(peaks.get(n, 0.0), p)
            done += xb.shape[1]
            emit("calibrate", done)
        qplan = quantise(plan, QuantConfig(), peaks=peaks, integer_input=integer)
    want_lava = lava_samples if lava_samples is not None else DEFAULT_LAVA_SAMPLES
    if want_lava < 1:
        raise InputError(f"--lava-samples must be at least 1, got {lava_samples}")
    ref_name = "float-plan" if reference_plan else "norse"
    ref_vs_fixed = _Tally(ref_name, "loihi", nodes, out, FIXED_VALUE_TOLERANCE)
    correct = {ref_name: 0, "loihi": 0}
    seconds = {ref_name: 0.0, "loihi": 0.0}
    kept_x, kept_y, kept_ref, kept_fix = [], [], [], []
    n_seen, steps, wraps = 0, 0, {}
    for xb, yb in batches():
        xb = np.asarray(xb, dtype=np.float64)
        steps = xb.shape[0]
        if reference_plan:  # the float twin of the deployed plan (e.g. after fine-tuning on the chip grid)
            t0 = time.perf_counter()
            res = loihi.Engine(plan).run(xb, record=True, batch_size=chunk)
            ref = loihi.to_trace(ref_name, flat, plan, xb, res, dt=dt, record=True, seconds=time.perf_counter() - t0,
                                 compile_seconds=0.0, meta={})
        else:
            ref = reference(flat, xb, dt=dt, reset=plan.reset)
        seconds[ref_name] += ref.seconds
        traces = {ref_name: ref}
        if fixed_point:
            fx = loihi.simulate(flat, xb, dt=dt, plan=qplan, batch_size=chunk)
            seconds["loihi"] += fx.seconds
            ref_vs_fixed.add(ref, fx, n_seen)
            traces["loihi"] = fx
            for n, w in fx.meta["wraps"].items():
                wraps[n] = wraps.get(n, 0) + w
        if yb is not None:
            for k, t in traces.items():
                correct[k] += int((t.output.sum(0).argmax(-1) == np.asarray(yb)).sum())
        take = min(want_lava - sum(k.shape[1] for k in kept_x), xb.shape[1])
        if take > 0:
            kept_x.append(xb[:, :take])
            kept_y.append(None if yb is None else np.asarray(yb)[:take])
            kept_ref.append(head(ref, take))
            if fixed_point:
                kept_fix.append(head(traces["loihi"], take))
        n_seen += xb.shape[1]
        emit(ref_name + "+loihi" if fixed_point else ref_name, n_seen)
    if n_seen == 0:
        raise InputError("verify: no input samples")
    total = n_seen
    xl = np.concatenate(kept_x, axis=1)
    m = xl.shape[1]
    ref_l = concat(kept_ref)
    lv = lava(flat, xl, dt=dt, plan=plan, batch_size=batch_size,
              on_progress=lambda s, i: emit("lava-float", i["done"], m))
    float_cmp = compare(ref_l, lv, nodes, out)
    comps = [float_cmp]
    per_sample = {ref_name: seconds[ref_name] / n_seen, "lava-float": lv.per_sample_seconds()}
    target_samples = {ref_name: n_seen, "lava-float": m}
    fixed_ok, quant, deviation = None, [], {}
    labels_l = None if any(y is None for y in kept_y) else np.concatenate(kept_y)
    accuracy = {}
    has_labels = labels_l is not None
    if has_labels:
        accuracy[ref_name] = correct[ref_name] / n_seen
        accuracy["lava-float"] = float((lv.output.sum(0).argmax(-1) == labels_l).mean())
    if fixed_point:
        fix_l = concat(kept_fix)
        lf = lava(flat, xl, dt=dt, fixed_point=True, plan=qplan, batch_size=batch_size,
                  on_progress=lambda s, i: emit("lava-fixed", i["done"], m))
        comps.append(ref_vs_fixed.result())
        comps.append(compare(fix_l, lf, nodes, out))
        fixed_ok = comps[1].output >= fixed_tolerance and comps[2].identical
        per_sample["loihi"] = seconds["loihi"] / n_seen
        per_sample["lava-fixed"] = lf.per_sample_seconds()
        target_samples.update({"loihi": n_seen, "lava-fixed": m})
        if has_labels:
            accuracy["loihi"] = correct["loihi"] / n_seen
            accuracy["lava-fixed"] = float((lf.output.sum(0).argmax(-1) == labels_l).mean())
        # the membranes of the Lava sample in float and in fixed point (in thresholds)
        fl = loihi.Engine(plan).run(xl, record=False, record_state=True, batch_size=chunk)["states"]
        fq = loihi.Engine(qplan).run(xl, record=False, record_state=True, batch_size=chunk)["states"]
        deviation = {n: float(np.abs(fl[n]["v"] - fq[n]["v"] / qplan.populations[n].scale).max(initial=0.0))
                     for n in fl}
        qplan = qplan.with_headroom({n: (float(np.abs(s["u"]).max(initial=0)), float(np.abs(s["v"]).max(initial=0)))
                                     for n, s in fq.items()})
        quant = [r.to_dict() for r in qplan.report]
    return Verification(samples=n_seen, steps=steps, dt=dt, reset=plan.reset.describe(), comparisons=comps,
                        fixed_point=fixed_point, fixed_tolerance=fixed_tolerance, float_ok=float_cmp.identical,
                        fixed_ok=fixed_ok, target_samples=target_samples, quantisation=quant,
                        max_membrane_deviation=deviation, wraps=wraps, resources=estimate(plan),
                        seconds_per_sample=per_sample, accuracy=accuracy)


def render_verification(v: Verification) -> str:
    """The verification report as Markdown."""
    runs = ", ".join(f"{k} {n:,}" for k, n in v.target_samples.items())
    lines = [f"# Verification: {v.samples:,} samples x {v.steps} steps, dt = {v.dt:g} s, {v.reset}", "",
             f"Samples run per target: {runs}" + (" (Lava runs a sample of the split)"
                                                 if any(n < v.samples for n in v.target_samples.values()) else ""),
             "", "| comparison | samples | output agreement | identical | first divergence |", "|---|---|---|---|---|"]
    for c in v.comparisons:
        fd = "-" if not c.first_divergence else f"{c.first_divergence['node']} at t={c.first_divergence['time_step']}"
        same = ("yes" if not c.value_tolerance else f"yes (real values within {c.value_tolerance:.0%})") \
            if c.identical else "no"
        lines.append(f"| {c.a} vs {c.b} | {c.samples:,} | {c.output:.4f} | {same} | {fd} |")
    lines += ["", "Spike agreement per population:", "",
              "| node | " + " | ".join(f"{c.a} vs {c.b}" for c in v.comparisons) + " |",
              "|---|" + "---|" * len(v.comparisons)]
    for node in v.comparisons[0].per_node:
        lines.append(f"| {node} | " + " | ".join(f"{c.per_node.get(node, float('nan')):.4f}" for c in v.comparisons) + " |")
    if v.quantisation:
        lines += ["", "## Fixed point (Loihi integer formats)", "",
                  "| population | vth mantissa | tau_mem requested -> realised (ms) | tau_syn requested -> realised (ms) "
                  "| weight exp | max weight error | u headroom | v headroom | u wraps | max membrane deviation |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for q in v.quantisation:
            def ms(a, b):
                return "-" if a is None else f"{a * 1e3:.3g} -> {b * 1e3:.3g}"

            def head(h):
                return "-" if h is None else f"{h:.1f}x"
            lines.append(
                f"| {q['name']} | {q['vth_mant']} | {ms(q['tau_mem_requested_s'], q['tau_mem_realised_s'])} | "
                f"{ms(q['tau_syn_requested_s'], q['tau_syn_realised_s'])} | {q['weight_exp']} | "
                f"{max(q['weight_rel_error'].values(), default=0):.2%} | {head(q['u_headroom'])} | "
                f"{head(q['v_headroom'])} | {v.wraps.get(q['name'], 0)} | "
                f"{v.max_membrane_deviation.get(q['name'], float('nan')):.4f} |")
    if v.accuracy:
        lines += ["", "Accuracy: " + ", ".join(f"{k} {a:.4f} ({v.target_samples.get(k, v.samples):,} samples)"
                                               for k, a in v.accuracy.items())]
    lines += ["", "Per-sample time: " + ", ".join(f"{k} {s * 1e3:.2f} ms" for k, s in v.seconds_per_sample.items()),
              "", f"Verdict: {'PASS' if v.ok else 'FAIL'} (floating point {'identical' if v.float_ok else 'DIFFERS'}"
              + ("" if v.fixed_ok is None else f"; fixed point {'within' if v.fixed_ok else 'OUTSIDE'} "
                 f"tolerance {v.fixed_tolerance:.2f} output agreement, engine and Lava fixed point "
                 f"{'identical' if v.comparisons[2].identical else 'DIFFER'}") + ")"]
    return "\n".join(lines)
