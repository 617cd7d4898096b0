"""Fixed probe batches named by (dataset, seed, steps, batch size): what a remote worker loads itself.

A :class:`ProbeRef` is a few bytes to send; :func:`load_probe` turns it into the batches once per
process (cached), so a cluster worker reads the dataset from its own installation instead of
receiving a pickled copy with every task.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from spikesmith.errors import InputError


@dataclass(frozen=True, kw_only=True)
class ProbeRef:
    """The first ``batches`` training batches of dataset ``name`` as :func:`make_loaders` draws them with ``seed``."""

    name: str = "digits"
    seed: int = 0
    steps: int = 8
    batch_size: int = 64
    batches: int = 1
    encoding: str | None = None

    def __post_init__(self) -> None:
        for field in ("steps", "batch_size", "batches"):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise InputError(f"ProbeRef.{field}: expected a positive integer, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise InputError(f"ProbeRef.seed: expected a non-negative integer, got {self.seed!r}")

    def load(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """Return ((x (T, B, ...) float32, y (B,) int64), ...), cached per process (do not modify them)."""
        return load_probe(self)


def load_probe(ref: ProbeRef) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Return the probe batches ``ref`` names (see :class:`ProbeRef`); the same ref returns the same arrays."""
    return _load(ref)[0]


def probe_encoding(ref: ProbeRef) -> str:
    """Return the input encoding the probe batches were made with (the dataset's default when ``ref``
    names none), from the same cached load as :func:`load_probe`."""
    return _load(ref)[1]


@functools.lru_cache(maxsize=8)
def _load(ref: ProbeRef) -> tuple[tuple[tuple[np.ndarray, np.ndarray], ...], str]:
    from spikesmith.data.registry import make_loaders

    train, _, info = make_loaders(ref.name, batch_size=ref.batch_size, steps=ref.steps, seed=ref.seed,
                                  encoding=ref.encoding)
    out = []
    for x, y in train:
        xs = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        ys = np.ascontiguousarray(np.asarray(y, dtype=np.int64))
        out.append((xs, ys))
        if len(out) == ref.batches:
            break
    return tuple(out), info.encoding
