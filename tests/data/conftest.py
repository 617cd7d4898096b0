"""Fixtures with tiny neuromorphic datasets written in their real on-disk formats."""

import numpy as np
import pytest

from event_files import random_events, write_nmnist_bin


@pytest.fixture
def nmnist_dir(tmp_path):
    """Return (data_dir, {split: [(label, x, y, t, p), ...]}) with 2 N-MNIST recordings per digit and split."""
    rng = np.random.default_rng(123)
    written = {}
    for split, folder in (("train", "Train"), ("test", "Test")):
        written[split] = []
        for digit in range(10):
            for k in range(2):
                ev = random_events(rng, int(rng.integers(20, 60)), 34, 34, 2, 300_000)
                write_nmnist_bin(tmp_path / "NMNIST" / folder / str(digit) / f"{k:05d}.bin", *ev)
                written[split].append((digit, *ev))
    return tmp_path, written
