"""Randomness from one explicit seed: derived seeds and a scoped torch RNG (the only place for both).

Library code never sets a global seed: it derives independent seeds with
``numpy.random.SeedSequence`` and either passes a ``torch.Generator`` or runs a block under
:func:`seeded_torch`, which restores the caller's RNG state afterwards.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch


def derive(seed: int, *key: int) -> int:
    """A 32-bit seed that depends only on (``seed``, ``key``): ``SeedSequence(seed, spawn_key=key)``."""
    return int(np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key)).generate_state(1)[0])


def seeds(seed: int, n: int) -> list[int]:
    """``n`` independent integer seeds derived from ``seed``."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def entropy_seed(seed: int, values) -> int:
    """A 32-bit seed that depends only on ``seed`` and a sequence of integers (e.g. a genome)."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *[int(v) for v in values]])
    return int(ss.generate_state(1)[0])


def generator(seed: int | None) -> torch.Generator | None:
    """A CPU ``torch.Generator`` seeded with ``seed`` (None: None, i.e. torch's global RNG)."""
    return None if seed is None else torch.Generator().manual_seed(int(seed) % (2**63))


@contextlib.contextmanager
def seeded_torch(seed: int | None):
    """Run the block with torch's CPU RNG seeded with ``seed``, restoring the caller's state afterwards
    (None: leave the RNG alone)."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) % (2**63))
        yield


def epoch_order(loader, seed: int):
    """``epoch -> loader`` with the loader's shuffling generator (if any) reseeded from (``seed``, epoch),
    so the order of an epoch depends only on them: a resumed run sees the batches an uninterrupted one does."""

    def batches(epoch: int):
        gen = getattr(loader, "generator", None)
        if gen is not None:
            gen.manual_seed(int(seed) * 100_003 + int(epoch))
        return loader

    return batches
