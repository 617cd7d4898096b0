"""Regulariser schedules lambda(t) for STE, with t the fraction of evolution done (0..1, >1 after).

Schedules are small frozen objects so a run's configuration says exactly what it used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from spikesmith.errors import InputError


def _check(name: str, value: float, *, low: float = 0.0) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < low:
        raise InputError(f"{name}: expected a finite number >= {low}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Constant:
    """lambda(t) = value for every t."""

    value: float = 0.0

    def __post_init__(self) -> None:
        _check("Constant.value", self.value)

    def __call__(self, t: float) -> float:
        """Return the weight at progress t."""
        return float(self.value)


@dataclass(frozen=True, kw_only=True)
class LinearDecay:
    """lambda(t) = start * (1 - t / until) for t < until, then 0 (default: off after 30% of evolution)."""

    start: float
    until: float = 0.3

    def __post_init__(self) -> None:
        _check("LinearDecay.start", self.start)
        _check("LinearDecay.until", self.until)
        if self.until <= 0:
            raise InputError(f"LinearDecay.until: expected a fraction > 0, got {self.until!r}")

    def __call__(self, t: float) -> float:
        """Return the weight at progress t."""
        return float(self.start) * max(0.0, 1.0 - float(t) / self.until)


@dataclass(frozen=True, kw_only=True)
class CosineDecay:
    """lambda(t) = start * (1 + cos(pi * t / until)) / 2 for t < until, then 0."""

    start: float
    until: float = 0.3

    def __post_init__(self) -> None:
        _check("CosineDecay.start", self.start)
        _check("CosineDecay.until", self.until)
        if self.until <= 0:
            raise InputError(f"CosineDecay.until: expected a fraction > 0, got {self.until!r}")

    def __call__(self, t: float) -> float:
        """Return the weight at progress t."""
        if t >= self.until:
            return 0.0
        return float(self.start) * 0.5 * (1.0 + math.cos(math.pi * float(t) / self.until))


Schedule = Constant | LinearDecay | CosineDecay


def schedule_to_dict(s: Schedule) -> dict:
    """Return a schedule as a JSON-ready dict (type name plus fields)."""
    return {"type": type(s).__name__, **s.__dict__}
