"""spikesmith's Lava neuron process: Lava's LIF dynamics with the reset rules NIR graphs need.

``Neurons`` is Lava's ``LIFReset`` (periodic state reset so samples can run back to back)
with four additions, each off by default so that it computes exactly what ``LIFReset``
computes:

- per-neuron ``du``/``dv`` (Lava's LIF has one decay per process), so a NIR node whose time
  constants differ between neurons lowers to one process;
- reset by subtraction (``subtract``): v <- v - vth instead of v <- 0;
- delayed reset (``delayed``): the spike is decided on the unreset voltage and the reset acts
  after the next step's integration (snnTorch's convention; see
  :mod:`spikesmith.compile.units`);
- graded output (``graded``): the neurons never fire and send their voltage every step, as a
  non-spiking NIR neuron (LI, CubaLI, I) does; a synapse after it takes graded messages. In
  fixed point the voltage is shifted right by ``msg_shift`` bits first, so that the 32-bit
  sums of the next synapse cannot overflow.

- recording (``record``): the spikes ("s"), u and v at the end of every step (after the reset)
  are kept in the process and saved to ``{record_path}.{s,u,v}.npy`` after ``record_steps``
  steps, so recording costs no extra Lava process.

The sub-threshold dynamics are inherited unchanged from Lava's LIF models (floating point
and bit-accurate fixed point), so the integer arithmetic is Lava's own. The process shape is
``(N, W)``: N neurons in NIR flat order, W independent copies (samples) side by side, all
elementwise.
"""

from __future__ import annotations

import numpy as np

from spikesmith.targets.lava.compat import ensure_lava

ensure_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.ports import PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.lif.models import AbstractPyLifModelFixed, AbstractPyLifModelFloat  # noqa: E402

from spikesmith.targets.lava.recorder import save_recording  # noqa: E402


class Neurons(AbstractProcess):
    """LIF neurons with per-neuron decays, a periodic state reset and a choice of spike reset.

    Arguments as Lava's ``LIFReset`` (``du``, ``dv`` may be per neuron); ``subtract`` and
    ``delayed`` choose the reset rule. ``reset_interval``/``reset_offset``: u, v and any
    pending reset are cleared at every step ``t`` with ``t % reset_interval == reset_offset``.
    """

    def __init__(self, *, shape: tuple[int, ...], du=0.0, dv=0.0, bias_mant=0.0, bias_exp=0, vth=1.0,
                 reset_interval: int = 1, reset_offset: int = 0, subtract: bool = False, delayed: bool = False,
                 graded: bool = False, msg_shift: int = 0, record: tuple[str, ...] = (), record_path: str = "",
                 record_steps: int = 0, name: str | None = None):
        super().__init__(shape=shape, reset_interval=int(reset_interval), reset_offset=int(reset_offset),
                         subtract=bool(subtract), delayed=bool(delayed), graded=bool(graded),
                         msg_shift=int(msg_shift), record=tuple(record), record_path=str(record_path),
                         record_steps=int(record_steps), name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)
        self.du = Var(shape=shape, init=np.broadcast_to(du, shape).copy())
        self.dv = Var(shape=shape, init=np.broadcast_to(dv, shape).copy())
        self.bias_mant = Var(shape=shape, init=np.broadcast_to(bias_mant, shape).copy())
        self.bias_exp = Var(shape=shape, init=np.broadcast_to(bias_exp, shape).copy())
        self.vth = Var(shape=(1,), init=vth)
        self.pending = Var(shape=shape, init=0)  # spikes whose delayed reset is still due


class _ResetRule:
    """The step shared by both models: periodic reset, integration, delayed or immediate spike reset."""

    def _setup(self, proc_params) -> None:
        self.reset_interval = int(proc_params["reset_interval"])
        self.reset_offset = int(proc_params["reset_offset"]) % self.reset_interval
        self.subtract = bool(proc_params["subtract"])
        self.delayed = bool(proc_params["delayed"])
        self.graded = bool(proc_params["graded"])
        self.msg_shift = int(proc_params["msg_shift"])
        self._steps = int(proc_params["record_steps"])
        self._path = proc_params["record_path"]
        shape = tuple(proc_params["shape"])
        self._rec = {k: np.zeros((self._steps, *shape), dtype=np.int8 if k == "s" else self._state_dtype)
                     for k in proc_params["record"]}

    def _threshold(self):
        raise NotImplementedError

    def _apply_reset(self, mask: np.ndarray) -> None:
        if self.subtract:
            self.v[mask] -= self._threshold()
        else:
            self.v[mask] = 0

    def _step(self) -> None:
        a_in_data = self.a_in.recv()
        if (self.time_step % self.reset_interval) == self.reset_offset:
            self.u *= 0
            self.v *= 0
            self.pending *= 0
        self._before_integration()
        self.subthr_dynamics(activation_in=a_in_data)
        s_out = None
        if self.graded:
            self.s_out.send(self._message())
        else:
            if self.delayed:
                self._apply_reset(self.pending != 0)
            s_out = self.v > self._threshold()
            if self.delayed:
                self.pending[:] = s_out
            else:
                self._apply_reset(s_out)
            self.s_out.send(s_out)
        if self._rec and self.time_step <= self._steps:
            t = self.time_step - 1
            for k, buf in self._rec.items():
                buf[t] = s_out if k == "s" else getattr(self, k)
            if t == self._steps - 1:
                for k, data in self._rec.items():
                    save_recording(f"{self._path}.{k}.npy", data)

    def _before_integration(self) -> None:
        pass

    def _message(self) -> np.ndarray:
        return self.v.copy()


@implements(proc=Neurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyNeuronsModelFloat(_ResetRule, AbstractPyLifModelFloat):
    """Floating point: Lava's LIF integration, then the reset rule."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    _state_dtype = np.float64
    du: np.ndarray = LavaPyType(np.ndarray, float)
    dv: np.ndarray = LavaPyType(np.ndarray, float)
    vth: float = LavaPyType(float, float)
    pending: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._setup(proc_params)

    def _threshold(self):
        return self.vth

    def run_spk(self) -> None:
        self._step()


@implements(proc=Neurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyNeuronsModelFixed(_ResetRule, AbstractPyLifModelFixed):
    """Bit-accurate fixed point: Lava's Loihi LIF arithmetic, then the reset rule."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    _state_dtype = np.int32
    du: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)
    dv: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)
    vth: int = LavaPyType(int, np.int32, precision=17)
    pending: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._setup(proc_params)

    def _threshold(self):
        return np.int32(self.vth) << self.vth_shift  # Loihi MSB-aligns the threshold mantissa by 6 bits

    def _before_integration(self) -> None:
        self.scale_bias()

    def _message(self) -> np.ndarray:
        return np.right_shift(self.v, self.msg_shift)  # arithmetic: rounds toward minus infinity

    def run_spk(self) -> None:
        self._step()
