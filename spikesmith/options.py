"""Range checks for the numbers users give (command options, config fields): one InputError each,
naming the option and the range, before any work is done.

The limits keep a typo from exhausting memory or time (a population of 10**9, 10**20 epochs) as
well as rejecting 0, negatives, NaN and infinities.
"""

from __future__ import annotations

import math

from spikesmith.errors import InputError

MAX_SEED = 2**32 - 1
MAX_STEPS = 100_000
MAX_SAMPLES = 10_000_000
MAX_EPOCHS = 100_000


def integer(name: str, value, *, low: int, high: int) -> int:
    """``value`` as an int in [low, high]; InputError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{name}: expected an integer in {low}..{high:,}, got {value!r}")
    return int(value)


def optional_integer(name: str, value, *, low: int, high: int) -> int | None:
    """None, or :func:`integer`."""
    return None if value is None else integer(name, value, low=low, high=high)


def number(name: str, value, *, low: float = -math.inf, high: float = math.inf, low_open: bool = False,
           high_open: bool = False) -> float:
    """``value`` as a finite float in the interval; InputError naming ``name`` otherwise."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise InputError(f"{name}: expected a finite number in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return float(value)


def optional_number(name: str, value, **kw) -> float | None:
    """None, or :func:`number`."""
    return None if value is None else number(name, value, **kw)


def seed(name: str, value) -> int:
    """A seed: an integer in 0..2**32-1 (numpy's SeedSequence and torch accept it everywhere)."""
    return integer(name, value, low=0, high=MAX_SEED)


def positive_seconds(name: str, value) -> float:
    """A time in seconds: finite and positive."""
    return number(name, value, low=0.0, low_open=True, high=3600.0)


def device_name(name: str, value) -> str | None:
    """Check a device option: None (pick CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    if value is None:
        return None
    text = str(value)
    if text in ("cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise InputError(f"{name}: expected cpu or cuda, got {value!r}")


def torch_device(name: str, value):
    """The ``torch.device`` of a device option (see :func:`device_name`): None is CUDA when available, else
    the CPU; asking for CUDA where torch has none is an InputError naming the option, not a crash later."""
    import torch

    text = device_name(name, value)
    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"{name} {text}: no CUDA device is available here (use cpu)")
        index = torch.device(text).index
        if index is not None and index >= torch.cuda.device_count():
            raise InputError(f"{name} {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(text)
