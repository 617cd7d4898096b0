"""spikesmith's Lava synapse process: Lava's Dense/DelayDense arithmetic for W copies of a network.

``Synapses`` maps messages ``s_in`` (N_src, W) to ``a_out`` (N_dst, W), each of the W columns (one
sample each) on its own, through a dense matrix (``weights`` (N_dst, N_src)) or a convolution
(``weights`` (C_out, C_in / groups, kH, kW) read through a
:class:`~spikesmith.compile.ops.ConvGeometry`; NIR layouts, so no reordering is needed). Its
models compute what Lava's ``Dense`` and ``DelayDense`` models compute, column by column:

- floating point: ``a = weights @ s``;
- bit-accurate fixed point: the weights pass Lava's own ``clip_weights``/``truncate_weights``
  (8 bits); binary spikes are summed in 64 bits, graded messages in 32 bits (Lava's int32 dot
  product); the sum is shifted left by ``weight_exp`` if positive, else arithmetically right;
  the buffer and the output port hold int32. A convolution is a synapse with shared weights and
  the same arithmetic (Lava's own ``Conv`` has no weight exponent and batch of one).

Every message waits ``delay`` steps beyond the one step of latency in a buffer of ``delay + 1``
slots, as in Lava's ``DelayDense``. Samples of consecutive groups run back to back in one Lava
run: at every step ``t`` with ``t % clear_interval == clear_offset`` (the first step of the
source's next sample) the slots from ``clear_from`` on, which would reach the destination inside
its next sample, are zeroed before sending, so every sample starts from rest as in the reference.
"""

from __future__ import annotations

import numpy as np

from spikesmith.targets.lava.compat import ensure_lava

ensure_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights  # noqa: E402

EXACT_FLOAT = 2.0**53


class Synapses(AbstractProcess):
    """Dense or convolutional synapses for W copies; see the module docstring for the arguments."""

    def __init__(self, *, weights: np.ndarray, src_size: int, dst_size: int, width: int, conv=None,
                 delay: int = 0, weight_exp: int = 0, graded: bool = False, message_bound: float = 1.0,
                 clear_interval: int = 1, clear_offset: int = 0, clear_from: int | None = None,
                 name: str | None = None):
        super().__init__(conv=conv, delay=int(delay), weight_exp=int(weight_exp), graded=bool(graded),
                         message_bound=float(message_bound), clear_interval=int(clear_interval),
                         clear_offset=int(clear_offset) % int(clear_interval),
                         clear_from=None if clear_from is None else int(clear_from), name=name)
        self.s_in = InPort(shape=(src_size, width))
        self.a_out = OutPort(shape=(dst_size, width))
        self.weights = Var(shape=weights.shape, init=weights)
        self.a_buff = Var(shape=(delay + 1, dst_size, width), init=0)


class _SynapseStep:
    """Clear, send the due slot, accumulate this step's messages into the slot ``delay`` ahead."""

    def run_spk(self) -> None:
        p = self.proc_params
        if p["clear_from"] is not None and self.time_step % p["clear_interval"] == p["clear_offset"]:
            self.a_buff[p["clear_from"]:] = 0
        self.a_out.send(self.a_buff[0])
        a = self._accumulate(self.s_in.recv())
        self.a_buff[0] = 0
        self.a_buff = np.roll(self.a_buff, -1, axis=0)
        self.a_buff[p["delay"]] += a

    def _product(self, s: np.ndarray, weights: np.ndarray) -> np.ndarray:
        conv = self.proc_params["conv"]
        if conv is None:
            return weights @ s
        import torch

        torch.set_num_threads(1)
        x = torch.from_numpy(np.ascontiguousarray(s.T, dtype=np.float64))
        y = conv.apply_flat(x, torch.from_numpy(np.asarray(weights, dtype=np.float64)))
        return y.numpy().T


@implements(proc=Synapses, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySynapsesFloat(_SynapseStep, PyLoihiProcessModel):
    """Floating point: ``a = weights @ s`` per copy."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buff: np.ndarray = LavaPyType(np.ndarray, float)
    weights: np.ndarray = LavaPyType(np.ndarray, float)

    def _accumulate(self, s: np.ndarray) -> np.ndarray:
        return self._product(np.asarray(s, dtype=np.float64), self.weights)


@implements(proc=Synapses, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PySynapsesBitAcc(_SynapseStep, PyLoihiProcessModel):
    """Bit-accurate fixed point: Lava's Dense weight handling, sums and exponent shift per copy."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=16)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    weights: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._ready = False

    def _accumulate(self, s: np.ndarray) -> np.ndarray:
        p = self.proc_params
        if not self._ready:
            mode = determine_sign_mode(self.weights)
            self.weights = truncate_weights(clip_weights(self.weights, mode, num_bits=8), mode, 8)
            w = np.abs(self.weights.astype(np.float64))
            bound = float(w.reshape(w.shape[0], -1).sum(axis=1).max(initial=0.0)) * p["message_bound"]
            self._exact_float = bound < EXACT_FLOAT
            self._ready = True
        s = np.asarray(s, dtype=np.int64)
        if self._exact_float:  # every partial sum is an integer below 2**53: BLAS is exact
            acc = np.rint(self._product(s.astype(np.float64), self.weights.astype(np.float64))).astype(np.int64)
        else:
            acc = self._product(s, self.weights.astype(np.int64))
        if p["graded"]:  # Lava's Dense: int32 weights dot int32 messages, summed in 32 bits
            acc = acc.astype(np.int32).astype(np.int64)
        e = p["weight_exp"]
        return np.left_shift(acc, e) if e > 0 else np.right_shift(acc, -e)
