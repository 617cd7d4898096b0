"""Lower a :class:`~spikesmith.compile.plan.Plan` (float) or a
:class:`~spikesmith.compile.quantise.QuantisedPlan` (bit-accurate fixed point) to Lava processes and run it.

One Lava process per population (:class:`~spikesmith.targets.lava.neurons.Neurons`: Lava's
LIF with per-neuron decays, a periodic state reset and the reset rules of
:mod:`spikesmith.compile.units`), one per connection
(:class:`~spikesmith.targets.lava.synapses.Synapses`: Lava's Dense/DelayDense arithmetic, dense or
convolutional), a :class:`~spikesmith.targets.lava.recorder.Player` for the input (and a
``RingBuffer`` of ones when a synaptic current needs a bias) and a
:class:`~spikesmith.targets.lava.recorder.Recorder` per graph output read through synapses.
Populations record their own spikes, u and v (no extra process: every process costs a round
trip with Lava's runtime per step).

Batching: every process holds W copies of its population or synapses side by side (ports
shaped (N, W), NIR flat order), one sample per copy, computed independently. Samples beyond W
run in groups back to back in the same Lava run, separated by the neurons' periodic state
reset (every population resets at the step its group starts, given its lag) and by the
synapses' clearing of messages that would cross into the next group, so nothing is recompiled
between groups. The Lava runtime is always stopped, on error too.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from typing import Callable

import numpy as np

from spikesmith.compile.plan import BIAS_SOURCE, Connection, Plan
from spikesmith.compile.quantise import QuantisedPlan, QuantisedSynapse, UV_LIMIT
from spikesmith.errors import GraphError, InputError, SpikesmithError
from spikesmith.targets.lava.compat import ensure_lava

MAX_DELAY_FIXED = 63  # Loihi 2 synaptic delays are 6 bits (0..63), as Lava's bit-accurate DelayDense checks
NEVER_FLOAT = 1e300  # threshold of a non-spiking population (LI, CubaLI, I) in floating point
NEVER_FIXED = 2**17 - 1  # largest threshold mantissa: above any 24-bit voltage but the top 64 values
DEFAULT_WIDTH = 128  # copies per process when the caller does not choose

Progress = Callable[[str, dict], None]


class LavaNetwork:
    """Lava processes for a plan; :meth:`run` simulates a batch and returns per-population outputs."""

    def __init__(self, plan: Plan | QuantisedPlan, *, record: bool = True, record_state: bool = False):
        self.fixed_point = isinstance(plan, QuantisedPlan)
        self.qplan = plan if self.fixed_point else None
        self.plan: Plan = plan.plan if self.fixed_point else plan
        self.record = record
        self.record_state = record_state
        self._q: dict[int, QuantisedSynapse] = {id(c): q for c, q in self.qplan.pairs()} if self.fixed_point else {}
        if self.fixed_point:
            for c in self.plan.connections + self.plan.readout_connections:
                if c.lava_delay > MAX_DELAY_FIXED:
                    raise GraphError(
                        f"connection '{c.src}' -> '{c.dst}': delay of {c.lava_delay} steps exceeds Loihi 2's "
                        f"{MAX_DELAY_FIXED} (6-bit synaptic delays)")

    # ------------------------------------------------------------------ processes

    def _message_bound(self, src: str, x_max: float) -> float:
        if src == BIAS_SOURCE:
            return 1.0
        if src == self.plan.input:
            return x_max
        if self.plan.populations[src].spiking:
            return 1.0
        return float(UV_LIMIT >> self.qplan.populations[src].msg_shift) if self.fixed_point else 1.0

    def _synapse(self, c: Connection, width: int, period: int, src_lag: int, dst_lag: int, dst_size: int,
                 x_max: float, name: str):
        """The synapse process of ``c``; it clears, at the first step of the source's next sample,
        the buffer slots from ``dst_lag - src_lag`` on (those due inside the destination's next sample)."""
        from spikesmith.targets.lava.synapses import Synapses

        q = self._q.get(id(c))
        weights = np.asarray(q.weight if q is not None else c.weight)
        src_size = 1 if c.src == BIAS_SOURCE else self.plan.populations[c.src].size
        clear_from = dst_lag - src_lag
        return Synapses(weights=weights, src_size=src_size, dst_size=dst_size, width=width, conv=c.conv,
                        delay=c.lava_delay, weight_exp=q.exp if q is not None else 0, graded=c.graded,
                        message_bound=self._message_bound(c.src, x_max), clear_interval=period,
                        clear_offset=src_lag + 1, clear_from=clear_from if clear_from <= c.lava_delay else None,
                        name=name)

    def _build(self, input_path: str, width: int, period: int, total: int, x_max: float, workdir: str):
        ensure_lava()
        from lava.proc.io.source import RingBuffer

        from spikesmith.targets.lava.neurons import Neurons
        from spikesmith.targets.lava.recorder import Player, Recorder

        plan, fixed = self.plan, self.fixed_point
        sinks: dict[str, str] = {}
        procs: dict[str, object] = {plan.input: Player(shape=(plan.populations[plan.input].size, width),
                                                       path=input_path)}
        wanted = {p.name for p in plan.neurons} if self.record else \
            {r.population for r in plan.readouts if r.population}
        for pop in plan.neurons:
            shape = (pop.size, width)
            if fixed:
                qp = self.qplan.populations[pop.name]
                params = dict(du=qp.du[:, None], dv=qp.dv[:, None], vth=qp.vth_mant if pop.spiking else NEVER_FIXED,
                              bias_mant=qp.bias_mant[:, None], bias_exp=qp.bias_exp[:, None], msg_shift=qp.msg_shift)
            else:
                params = dict(du=pop.du[:, None], dv=pop.dv[:, None], vth=1.0 if pop.spiking else NEVER_FLOAT,
                              bias_mant=pop.bias[:, None])
            record = [k for k, want in (("s", pop.name in wanted and pop.spiking), ("u", self.record_state),
                                        ("v", self.record_state or (pop.name in wanted and not pop.spiking))) if want]
            path = os.path.join(workdir, f"pop{len(procs)}")
            for k in record:
                sinks[pop.name if k == "s" else f"__{k}__{pop.name}"] = f"{path}.{k}.npy"
            procs[pop.name] = Neurons(shape=shape, reset_interval=period, reset_offset=(1 + pop.lag) % period,
                                      subtract=pop.subtract, delayed=pop.delayed, graded=not pop.spiking,
                                      record=tuple(record), record_path=path, record_steps=total, name=pop.name,
                                      **params)
        lags = {n: p.lag for n, p in plan.populations.items()}
        for i, c in enumerate(plan.connections):
            dst = plan.populations[c.dst]
            syn = self._synapse(c, width, period, lags[c.src], dst.lag, dst.size, x_max, f"syn{i}")
            procs[c.src].s_out.connect(syn.s_in)
            syn.a_out.connect(procs[c.dst].a_in)
            procs[f"__syn{i}__"] = syn
        if plan.bias_connections:
            procs[BIAS_SOURCE] = ones = RingBuffer(data=np.ones((1, width, 1), dtype=np.int32 if fixed else np.float64))
            for i, c in enumerate(plan.bias_connections):
                dst = plan.populations[c.dst]
                syn = self._synapse(c, width, period, 0, 1, dst.size, 1.0, f"bias{i}")
                ones.s_out.connect(syn.s_in)
                syn.a_out.connect(procs[c.dst].a_in)
                procs[f"__bias{i}__"] = syn
        for r in plan.readouts:
            if not r.connections:
                continue
            size = int(np.prod(r.shape))
            rec_key = "__readout__" + r.output
            path = os.path.join(workdir, f"rec{len(sinks)}.npy")
            sinks[rec_key] = path
            procs[rec_key] = rec = Recorder(shape=(size, width), steps=total, path=path, dtype="float64")
            for i, c in enumerate(r.connections):
                syn = self._synapse(c, width, period, lags[c.src], r.lag, size, x_max, f"read{i}")
                procs[c.src].s_out.connect(syn.s_in)
                syn.a_out.connect(rec.a_in)
                procs[f"__read{i}__" + r.output] = syn
        return procs, sinks

    # ------------------------------------------------------------------ running

    def run(self, x: np.ndarray, *, batch_size: int | None = None, recording_dir: str | None = None,
            on_progress: Progress | None = None) -> tuple[dict[str, np.ndarray], dict, dict]:
        """Simulate ``x`` (T, B, *input_shape) as groups of ``batch_size`` copies.

        Returns ({population or output: (T, B, *shape)}, {population: {"u", "v": (T, B, N)}}, timing
        info). Recordings go to a fresh temporary directory (``recording_dir``, if given, instead).
        """
        ensure_lava()
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg

        plan = self.plan
        steps, batch = x.shape[:2]
        if batch_size is not None and int(batch_size) < 1:
            raise InputError(f"--batch-size must be a positive number of samples, got {batch_size}")
        width = int(batch_size) if batch_size is not None else min(batch, DEFAULT_WIDTH)
        width = min(width, batch)
        groups = math.ceil(batch / width)
        period = steps  # samples back to back: resets and cleared synapse buffers separate them
        total = groups * period + plan.max_lag
        n_in = plan.populations[plan.input].size
        flat = np.zeros((groups * width, steps, n_in))
        flat[:batch] = np.moveaxis(np.asarray(x, dtype=np.float64).reshape(steps, batch, n_in), 1, 0)
        if self.fixed_point:
            flat = np.round(flat * self.qplan.input_scale)
        # (groups * steps, n_in, width): step g * period + t carries step t of the samples of group g
        data = flat.reshape(groups, width, steps, n_in).transpose(0, 2, 3, 1).reshape(groups * steps, n_in, width)
        x_max = float(np.abs(data).max(initial=0.0))
        t0 = time.perf_counter()
        own_dir = recording_dir is None
        workdir = tempfile.mkdtemp(prefix="spikesmith-lava-") if own_dir else recording_dir
        input_path = os.path.join(workdir, "input.npy")
        outputs: dict[str, np.ndarray] = {}
        raw: dict[str, np.ndarray] = {}
        anchor = None
        try:
            try:
                np.save(input_path, data.astype(np.int32) if self.fixed_point else data)
            except OSError as exc:
                raise SpikesmithError(f"Lava run failed: cannot write its input into {workdir}: {exc.strerror}") from None
            procs, sinks = self._build(input_path, width, period, total, x_max, workdir)
            anchor = procs[plan.input]
            cfg = Loihi2SimCfg(select_tag="fixed_pt" if self.fixed_point else "floating_pt")
            anchor.create_runtime(run_cfg=cfg)  # compiles and starts the processes: not simulation time
            t_build = time.perf_counter() - t0
            t1 = time.perf_counter()
            chunk = total if on_progress is None else max(period, math.ceil(total / 20))
            done = 0
            while done < total:
                n = min(chunk, total - done)
                anchor.run(condition=RunSteps(num_steps=n))
                done += n
                if on_progress is not None:
                    on_progress("lava-fixed" if self.fixed_point else "lava-float",
                                {"done": min(batch, width * (done // period)), "total": batch})
            t_run = time.perf_counter() - t1
            for k, path in sinks.items():
                if not os.path.exists(path):
                    raise SpikesmithError(f"Lava run ended without writing the recording of '{k}'")
                raw[k] = np.load(path)  # (total, N, width)
        except SpikesmithError:
            raise
        except Exception as exc:
            raise SpikesmithError(f"Lava run failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        finally:
            if anchor is not None:
                try:
                    anchor.stop()
                except Exception:
                    pass
            if own_dir:
                shutil.rmtree(workdir, ignore_errors=True)

        def samples(series: np.ndarray, lag: int) -> np.ndarray:
            """(total, N, width) -> (T, B, N): sample g * width + w at step g * period + lag + t."""
            idx = np.arange(groups)[None, :] * period + lag + np.arange(steps)[:, None]  # (T, groups)
            return series[idx].transpose(0, 1, 3, 2).reshape(steps, groups * width, -1)[:, :batch]

        states: dict[str, dict[str, np.ndarray]] = {}
        for key, series in raw.items():
            if key.startswith("__readout__"):
                r = next(r for r in plan.readouts if r.output == key[len("__readout__"):])
                a = samples(series, r.lag)
                vals = self.qplan.readout_values(r, a) if self.fixed_point else a + r.bias
                outputs[r.output] = vals.reshape(steps, batch, *r.shape)
                continue
            kind, name = ("s", key) if not key.startswith("__") else (key[2], key[5:])
            pop = plan.populations[name]
            data = samples(series, pop.lag)
            if kind == "s":
                outputs[name] = data.astype(np.float64).reshape(steps, batch, *pop.shape)
                continue
            if self.record_state:
                states.setdefault(name, {})[kind] = data.astype(np.int64 if self.fixed_point else np.float64)
            if kind == "v" and not pop.spiking and (self.record or any(r.population == name for r in plan.readouts)):
                volts = self.qplan.volts(name, data) if self.fixed_point else data * pop.scale + pop.offset
                outputs[name] = volts.reshape(steps, batch, *pop.shape)
        info = {"build_seconds": t_build, "run_seconds": t_run, "period": period, "lava_steps": total,
                "width": width, "groups": groups, "processes": len(procs)}
        return outputs, states, info
