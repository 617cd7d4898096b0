"""Lava synapses that forget a sample's tail when the next sample starts.

Samples run back to back in one Lava run. A recurrent synapse still holds the last step's
spikes when its population starts the next sample, and a delayed synapse holds spikes due
up to ``delay`` steps later. ``ClearedDense`` and ``ClearedDelayDense`` are Lava's ``Dense``
and ``DelayDense`` (same arguments, same float and bit-accurate arithmetic, inherited) that
also zero their activation buffer from slot ``clear_from`` on at every step ``t`` with
``t % clear_interval == clear_offset``, before they send: the network sets these to the
first step of the source population's next sample, so the contributions that would land
inside the destination's next sample are dropped, as in the reference where every sample
starts from rest. No host round trip is needed between samples.
"""

from __future__ import annotations

import numpy as np

from spikesmith.targets.lava.compat import ensure_lava

ensure_lava()

from lava.magma.core.decorator import implements  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.dense.models import (  # noqa: E402
    PyDelayDenseModelBitAcc,
    PyDelayDenseModelFloat,
    PyDenseModelBitAcc,
    PyDenseModelFloat,
)
from lava.proc.dense.process import DelayDense, Dense  # noqa: E402


class ClearedDense(Dense):
    """Lava's Dense that clears its one-step buffer periodically (``clear_from`` 0) or never (1)."""

    def __init__(self, *, clear_interval: int, clear_offset: int, clear_from: int, **kwargs):
        super().__init__(clear_interval=int(clear_interval), clear_offset=int(clear_offset) % int(clear_interval),
                         clear_from=int(clear_from), **kwargs)


class ClearedDelayDense(DelayDense):
    """Lava's DelayDense that clears the slots ``clear_from`` and later of its buffer periodically."""

    def __init__(self, *, clear_interval: int, clear_offset: int, clear_from: int, **kwargs):
        super().__init__(clear_interval=int(clear_interval), clear_offset=int(clear_offset) % int(clear_interval),
                         clear_from=int(clear_from), **kwargs)


class _Clearing:
    """Zero the buffer slots due inside the next sample, then run the inherited synapse step."""

    def run_spk(self) -> None:
        p = self.proc_params
        if self.time_step % p["clear_interval"] == p["clear_offset"]:
            buf = self.a_buff
            if buf.ndim == 1:
                if p["clear_from"] == 0:
                    self.a_buff = np.zeros_like(buf)
            else:
                buf[:, p["clear_from"]:] = 0
        super().run_spk()


# Lava's models declare which process they implement; these implement the subclasses above.
# The inherited declaration is cleared first so that @implements can set the new one.

@implements(proc=ClearedDense, protocol=LoihiProtocol)
class PyClearedDenseFloat(_Clearing, PyDenseModelFloat):
    implements_process = None


@implements(proc=ClearedDense, protocol=LoihiProtocol)
class PyClearedDenseBitAcc(_Clearing, PyDenseModelBitAcc):
    implements_process = None


@implements(proc=ClearedDelayDense, protocol=LoihiProtocol)
class PyClearedDelayDenseFloat(_Clearing, PyDelayDenseModelFloat):
    implements_process = None


@implements(proc=ClearedDelayDense, protocol=LoihiProtocol)
class PyClearedDelayDenseBitAcc(_Clearing, PyDelayDenseModelBitAcc):
    implements_process = None
