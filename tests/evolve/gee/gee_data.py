"""Tiny seeded digits-shaped data for the GEE tests (also imported by the resume subprocess)."""

from __future__ import annotations

import torch

from spikesmith.evolve.gee.spatiotemporal import GeeData


def synthetic_data(*, n_train: int = 160, n_val: int = 32, n_test: int = 32, steps: int = 4, seed: int = 0) -> GeeData:
    """Return a GeeData of (T, N, 1, 8, 8) samples: one random prototype per class plus noise."""
    gen = torch.Generator().manual_seed(seed)
    protos = torch.rand(10, 1, 8, 8, generator=gen)

    def split(n):
        y = torch.arange(n) % 10
        x = (protos[y] + 0.3 * torch.rand(n, 1, 8, 8, generator=gen)).clamp(0, 1)
        return x.unsqueeze(0).expand(steps, *x.shape).contiguous(), y

    (xt, yt), (xv, yv), (xs, ys) = split(n_train), split(n_val), split(n_test)
    return GeeData(name="synthetic", x_train=xt, y_train=yt, x_val=xv, y_val=yv, x_test=xs, y_test=ys,
                   num_classes=10)
