"""Lava target: lowering of NIR graphs to Lava processes, simulated Loihi-style.

Lava is imported only inside functions, after :func:`compat.ensure_lava`.
"""

from spikesmith.targets.lava.run import simulate

__all__ = ["simulate"]
