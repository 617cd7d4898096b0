"""Lava processes that play the input from a file and record outputs into files.

Reading a RingBuffer sink back through ``Var.get()`` moves one element per channel
message, which costs seconds for a few hundred thousand values. The recorder instead
keeps the series in its own process and writes one ``.npy`` file (atomically) when the
last step has run; the host reads the file after the run. The player sends step ``t`` of an
``.npy`` file shaped (steps, *shape), read memory-mapped, so a large input is never copied into
the process's parameters.
"""

from __future__ import annotations

import os

import numpy as np

from spikesmith.targets.lava.compat import ensure_lava

ensure_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402


class Recorder(AbstractProcess):
    """Records ``a_in`` (shape ``shape``) for ``steps`` steps into the ``.npy`` file ``path``."""

    def __init__(self, *, shape: tuple[int, ...], steps: int, path: str, dtype: str = "float64", **kwargs):
        super().__init__(shape=shape, steps=steps, path=path, dtype=dtype, **kwargs)
        self.a_in = InPort(shape=shape)


@implements(proc=Recorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt", "fixed_pt", "bit_accurate_loihi")
class PyRecorderModel(PyLoihiProcessModel):
    """Keeps the series in memory and saves it after the last step."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        shape = tuple(proc_params["shape"])
        self._steps = int(proc_params["steps"])
        self._path = proc_params["path"]
        self._buf = np.zeros((self._steps, *shape), dtype=np.dtype(proc_params["dtype"]))

    def run_spk(self) -> None:
        data = self.a_in.recv()
        t = self.time_step - 1
        if t < self._steps:
            self._buf[t] = data
        if t == self._steps - 1:
            save_recording(self._path, self._buf)


def save_recording(path: str, data: np.ndarray) -> None:
    """Save ``data`` to ``path`` atomically, from inside a Lava process model.

    An exception inside a Lava process model stalls Lava's runtime instead of reaching the host,
    so a failed save is left for the host to notice (the file is missing).
    """
    tmp = path + ".tmp.npy"
    try:
        np.save(tmp, data)
        os.replace(tmp, path)
    except OSError:
        pass


class Player(AbstractProcess):
    """Sends ``data[t]`` of the ``.npy`` file ``path`` (steps, *shape) at step t, zeros after its end."""

    def __init__(self, *, shape: tuple[int, ...], path: str, **kwargs):
        super().__init__(shape=shape, path=path, **kwargs)
        self.s_out = OutPort(shape=shape)


class _Play:
    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._data = np.load(proc_params["path"], mmap_mode="r")
        self._zeros = np.zeros(tuple(proc_params["shape"]), dtype=self._data.dtype)

    def run_spk(self) -> None:
        t = self.time_step - 1
        self.s_out.send(np.asarray(self._data[t]) if t < len(self._data) else self._zeros)


@implements(proc=Player, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyPlayerFloat(_Play, PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


@implements(proc=Player, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyPlayerFixed(_Play, PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
