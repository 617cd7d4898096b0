"""Lower a :class:`~spikesmith.compile.plan.Plan` to Lava processes and run it.

One Lava process per population (:class:`~spikesmith.targets.lava.neurons.Neurons`: Lava's
``LIFReset`` with per-neuron decays and the reset rules of :mod:`spikesmith.compile.units`), per connection (``Dense`` or ``Conv``),
one ``RingBuffer`` source for the input (and one constant-one source when a synaptic
current needs a bias) and ``RingBuffer`` sinks to record spikes. The network is
compiled once; all samples of a batch run back to back in one Lava run, separated by
the neurons' periodic state reset (every population resets at the step its sample
starts, given its lag), so nothing is recompiled between samples. The Lava runtime is
always stopped, on error too.

Layout: Lava orders feature maps (W, H, C); NIR and torch use (C, H, W). 3-D
populations are created in Lava's order and every dense matrix is permuted to match.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import numpy as np

from spikesmith.compile.plan import Connection, Plan
from spikesmith.errors import GraphError, SpikesmithError
from spikesmith.targets.lava.compat import ensure_lava


def lava_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Lava's shape for a NIR shape: (C, H, W) -> (W, H, C); anything else flat."""
    if len(shape) == 3:
        return (shape[2], shape[1], shape[0])
    return (int(np.prod(shape)),)


def lava_order(shape: tuple[int, ...]) -> np.ndarray:
    """perm such that ``v_lava_flat = v_nir_flat[perm]``."""
    n = int(np.prod(shape))
    if len(shape) == 3:
        return np.arange(n).reshape(shape).transpose(2, 1, 0).reshape(-1)
    return np.arange(n)


def to_nir_layout(data: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sink data (*lava_shape, steps) -> (steps, *nir_shape)."""
    steps = data.shape[-1]
    if len(shape) == 3:
        return np.moveaxis(data, -1, 0).transpose(0, 3, 2, 1)
    return np.moveaxis(data, -1, 0).reshape(steps, *shape)


MAX_DELAY_FIXED = 63  # Loihi 2 synaptic delays are 6 bits (0..63), as Lava's bit-accurate DelayDense checks
NEVER_FLOAT = 1e300  # threshold of a non-spiking population (LI, CubaLI, I) in floating point
NEVER_FIXED = 2**17 - 1  # largest threshold mantissa: above any 24-bit voltage but the top 64 values


class LavaNetwork:
    """Lava processes for a plan; :meth:`run` simulates a batch and returns per-population outputs."""

    def __init__(self, plan: Plan, *, fixed_point: bool = False, record: bool = True):
        self.plan = plan
        self.fixed_point = fixed_point
        self.record = record
        if fixed_point:
            for c in plan.connections + plan.readout_connections:
                if c.delay > MAX_DELAY_FIXED:
                    raise GraphError(
                        f"connection '{c.src}' -> '{c.dst}': delay of {c.delay} steps exceeds Loihi 2's "
                        f"{MAX_DELAY_FIXED} (6-bit synaptic delays)")

    def _build(self, x_lava: np.ndarray, period: int, total: int, workdir: str):
        ensure_lava()
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import Dense
        from lava.proc.io.source import RingBuffer as Source

        from spikesmith.targets.lava.neurons import Neurons
        from spikesmith.targets.lava.recorder import Recorder

        def Sink(*, shape, key, dtype):
            path = os.path.join(workdir, f"rec{len(sinks)}.npy")
            sinks[key] = path
            return Recorder(shape=shape, steps=total, path=path, dtype=dtype)

        plan = self.plan
        procs: dict[str, object] = {}
        src = Source(data=x_lava)
        procs[plan.input] = src
        for name, pop in plan.populations.items():
            if pop.kind == "input":
                continue
            perm = lava_order(pop.shape)
            shape = lava_shape(pop.shape)
            if self.fixed_point:
                params = dict(du=pop.q_du[perm].reshape(shape), dv=pop.q_dv[perm].reshape(shape), vth=pop.q_vth,
                              bias_mant=pop.q_bias_mant[perm].reshape(shape),
                              bias_exp=pop.q_bias_exp[perm].reshape(shape))
            else:
                params = dict(du=pop.du[perm].reshape(shape), dv=pop.dv[perm].reshape(shape),
                              vth=pop.vth if pop.spiking else NEVER_FLOAT, bias_mant=pop.bias[perm].reshape(shape))
            if not pop.spiking and self.fixed_point:
                params["vth"] = NEVER_FIXED
            procs[name] = Neurons(shape=shape, reset_interval=period, reset_offset=(1 + pop.lag) % period,
                                  subtract=pop.subtract, delayed=pop.delayed, graded=not pop.spiking,
                                  msg_shift=getattr(pop, "q_msg_shift", 0) if self.fixed_point else 0, name=name,
                                  **params)
        self._connect_all(procs, Conv, period)
        ones = None
        for c in plan.bias_connections:
            if ones is None:
                ones = Source(data=np.ones((1, 1), dtype=np.int64 if self.fixed_point else np.float64))
            dst = plan.populations[c.dst]
            d = Dense(num_message_bits=24, **self._dense_weights(c, dst.shape, None))
            ones.s_out.connect(d.s_in)
            self._into(d.a_out, dst.shape).connect(procs[c.dst].a_in)
        sinks: dict[str, str] = {}
        wanted = [n for n, p in plan.populations.items() if p.kind != "input"] if self.record else \
            [r.population for r in plan.readouts if r.population]
        monitors = {}
        for name in wanted:
            pop = plan.populations[name]
            if not pop.spiking:  # a voltage readout: probe v every step
                from lava.proc.monitor.process import Monitor

                mon = Monitor()
                mon.probe(procs[name].v, total)
                monitors[name] = mon
                continue
            sk = Sink(shape=lava_shape(pop.shape), key=name, dtype="int8")
            procs[name].s_out.connect(sk.a_in)
        for r in plan.readouts:
            if r.connection is not None:
                c = r.connection
                srcpop = plan.populations[c.src]
                d = self._synapse(c, self._dense_weights(c, None, srcpop.shape), 24 if c.graded else 0, period,
                                  srcpop.lag, r.lag)
                self._out_of(procs[c.src], srcpop.shape).connect(d.s_in)
                sk = Sink(shape=(int(np.prod(r.shape)),), key="__readout__" + r.output, dtype="float64")
                d.a_out.connect(sk.a_in)
        self._monitors = monitors
        return src, procs, sinks

    def _dense_weights(self, c: Connection, dst_shape, src_shape) -> dict:
        """Dense process arguments for connection ``c``, permuted to Lava's layouts."""
        w = np.asarray(c.q_weight if self.fixed_point else c.weight)
        if dst_shape is not None:
            w = w[lava_order(dst_shape)]
        if src_shape is not None:
            w = w[:, lava_order(src_shape)]
        if self.fixed_point:
            return {"weights": w, "weight_exp": int(c.q_exp), "num_weight_bits": 8}
        return {"weights": w}

    @staticmethod
    def _out_of(proc, shape):
        return proc.s_out.flatten() if len(shape) == 3 else proc.s_out

    @staticmethod
    def _into(port, shape):
        return port.reshape(lava_shape(shape)) if len(shape) == 3 else port

    @staticmethod
    def _synapse(c: Connection, kw: dict, bits: int, period: int, src_lag: int, dst_lag: int):
        """The dense synapse process for ``c``: Lava's Dense, or DelayDense for a delay.

        A recurrent or delayed synapse holds a sample's spikes past the sample's end, so it is
        the clearing variant (:mod:`~spikesmith.targets.lava.synapses`): at the first step of the
        source's next sample (step ``b * period + src_lag + 1``) it drops the buffer slots from
        ``dst_lag - src_lag`` on, those that would reach the destination inside its next sample.
        """
        from lava.proc.dense.process import Dense

        from spikesmith.targets.lava.synapses import ClearedDelayDense, ClearedDense

        if c.delay:
            kw = dict(kw, delays=np.full(kw["weights"].shape, c.delay))
        if not (c.recurrent or c.delay):
            return Dense(num_message_bits=bits, **kw)
        clearing = dict(clear_interval=period, clear_offset=src_lag + 1, clear_from=dst_lag - src_lag)
        if c.delay:
            return ClearedDelayDense(num_message_bits=bits, **clearing, **kw)
        return ClearedDense(num_message_bits=bits, **clearing, **kw)

    def _connect_all(self, procs, Conv, period: int) -> None:
        plan = self.plan
        for c in plan.connections:
            src, dst = plan.populations[c.src], plan.populations[c.dst]
            bits = 24 if c.graded else 0
            if c.kind == "conv":
                w = np.asarray(c.q_weight if self.fixed_point else c.weight)
                w = w.transpose(0, 3, 2, 1)[:, ::-1, ::-1, :].copy()
                cv = c.conv
                proc = Conv(weight=w, input_shape=lava_shape(src.shape),
                            padding=(cv["padding"][1], cv["padding"][0]),
                            stride=(cv["stride"][1], cv["stride"][0]),
                            dilation=(cv["dilation"][1], cv["dilation"][0]),
                            groups=cv["groups"], num_message_bits=bits)
                if tuple(proc.a_out.shape) != lava_shape(dst.shape):
                    raise GraphError(f"connection '{c.src}' -> '{c.dst}': Lava Conv output {proc.a_out.shape} "
                                     f"does not match population shape {lava_shape(dst.shape)}")
                procs[c.src].s_out.connect(proc.s_in)
                proc.a_out.connect(procs[c.dst].a_in)
            else:
                proc = self._synapse(c, self._dense_weights(c, dst.shape, src.shape), bits, period, src.lag, dst.lag)
                self._out_of(procs[c.src], src.shape).connect(proc.s_in)
                self._into(proc.a_out, dst.shape).connect(procs[c.dst].a_in)

    def run(self, x: np.ndarray, *, recording_dir: str | None = None) -> tuple[dict[str, np.ndarray], dict]:
        """Simulate ``x`` (T, B, *input_shape); returns ({name: (T, B, *shape)}, timing info).

        Recordings go to a fresh temporary directory (``recording_dir``, if given, instead).
        """
        from spikesmith.targets.lava.compat import ensure_lava

        ensure_lava()
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg

        plan = self.plan
        steps, batch = x.shape[:2]
        in_shape = plan.populations[plan.input].shape
        period = steps  # samples back to back: resets and cleared recurrent buffers separate them
        total = batch * period + plan.max_lag
        flat_in = np.zeros((int(np.prod(in_shape)), total))
        perm = lava_order(in_shape)
        for b in range(batch):
            flat_in[:, b * period:b * period + steps] = x[:, b].reshape(steps, -1)[:, perm].T
        if self.fixed_point:
            flat_in = np.round(flat_in * plan.q_input_scale).astype(np.int64)
        x_lava = flat_in.reshape(*lava_shape(in_shape), total)
        t0 = time.perf_counter()
        own_dir = recording_dir is None
        workdir = tempfile.mkdtemp(prefix="spikesmith-lava-") if own_dir else recording_dir
        src, procs, sinks = self._build(x_lava, period, total, workdir)
        cfg = Loihi2SimCfg(select_tag="fixed_pt" if self.fixed_point else "floating_pt")
        anchor = src
        outputs: dict[str, np.ndarray] = {}
        t_build = time.perf_counter() - t0
        t1 = time.perf_counter()
        try:
            anchor.run(condition=RunSteps(num_steps=total), run_cfg=cfg)
            t_run = time.perf_counter() - t1
            raw = {}
            for k, mon in self._monitors.items():
                pop = plan.populations[k]
                v = np.asarray(mon.get_data()[procs[k].name]["v"], dtype=np.float64)  # (total, *lava_shape)
                if self.fixed_point:
                    v = v / pop.q_scale
                raw[k] = np.moveaxis(v, 0, -1) * pop.scale[lava_order(pop.shape)].reshape(
                    lava_shape(pop.shape))[..., None] + pop.offset[lava_order(pop.shape)].reshape(
                    lava_shape(pop.shape))[..., None]
            for k, path in sinks.items():
                if not os.path.exists(path):
                    raise SpikesmithError(f"Lava run ended without writing the recording of '{k}'")
                raw[k] = np.moveaxis(np.load(path), 0, -1)
        except SpikesmithError:
            raise
        except Exception as exc:
            raise SpikesmithError(f"Lava run failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
        finally:
            try:
                anchor.stop()
            except Exception:
                pass
            if own_dir:
                shutil.rmtree(workdir, ignore_errors=True)
        for key, data in raw.items():
            if key.startswith("__readout__"):
                out = key[len("__readout__"):]
                r = next(r for r in plan.readouts if r.output == out)
                series = np.moveaxis(data, -1, 0).reshape(total, *r.shape)
                if self.fixed_point:
                    series = series * 64.0 / r.q_scale
                series = series + r.bias.reshape(r.shape)
                lag = r.lag
            else:
                pop = plan.populations[key]
                series = to_nir_layout(data, pop.shape)
                lag = pop.lag
            idx = (np.arange(batch)[None, :] * period + lag + np.arange(steps)[:, None])
            outputs[key] = series[idx]
        info = {"build_seconds": t_build, "run_seconds": t_run, "period": period, "lava_steps": total,
                "processes": len(procs) + len(sinks)}
        return outputs, info
