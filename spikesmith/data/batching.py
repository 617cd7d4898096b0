"""Time-first batching shared by every dataset: DatasetInfo, the loader triple and the collate function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

from spikesmith.errors import InputError


@dataclass(frozen=True, kw_only=True)
class DatasetInfo:
    """What a model needs to know about a dataset: one step's input shape, classes, steps, names."""

    name: str
    input_shape: tuple[int, ...]  # one time step of one sample, e.g. (C, H, W)
    num_classes: int
    steps: int
    encoding: str
    n_train: int
    n_test: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"DatasetInfo.name: expected a non-empty string, got {self.name!r}")
        shape = tuple(self.input_shape)
        if not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
            raise InputError(f"DatasetInfo.input_shape: expected positive integers, got {self.input_shape!r}")
        object.__setattr__(self, "input_shape", shape)
        for field in ("num_classes", "steps"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"DatasetInfo.{field}: expected a positive integer, got {value!r}")
        for field in ("n_train", "n_test"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"DatasetInfo.{field}: expected a non-negative integer, got {value!r}")


class Loaders(NamedTuple):
    """Train and test ``torch.utils.data.DataLoader`` yielding (x (T, B, ...) float32, y (B,) int64), plus info."""

    train: Any
    test: Any
    info: DatasetInfo


def collate_time_first(batch: Sequence[tuple[Any, Any]]):
    """Return (x (T, B, ...) float32, y (B,) int64) from samples (x (T, ...), label).

    Samples are stacked to (B, T, ...) and transposed so that time comes first.
    """
    import numpy as np
    import torch

    if len(batch) == 0:
        raise InputError("batch: cannot collate an empty batch")
    xs = [torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x) for x, _ in batch]
    first = xs[0].shape
    for i, x in enumerate(xs):
        if x.ndim < 1 or x.shape != first:
            raise InputError(f"batch: sample {i} has shape {tuple(x.shape)}, expected {tuple(first)} (T, ...)")
    x = torch.stack(xs).to(torch.float32).transpose(0, 1).contiguous()
    y = torch.as_tensor([int(label) for _, label in batch], dtype=torch.int64)
    return x, y


def check_batch_args(*, batch_size, steps, seed) -> None:
    """Raise InputError unless batch size, steps and seed are usable."""
    for name, value, low in (("batch_size", batch_size, 1), ("steps", steps, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name}: expected an integer >= {low}, got {value!r}")


def build_loaders(train_set, test_set, *, batch_size: int, seed: int, info: DatasetInfo) -> Loaders:
    """Return DataLoaders over map-style datasets: train shuffled by a torch.Generator seeded with ``seed``."""
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator()
    generator.manual_seed(int(seed))
    train = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator,
                       collate_fn=collate_time_first, num_workers=0)
    test = DataLoader(test_set, batch_size=batch_size, shuffle=False,
                      collate_fn=collate_time_first, num_workers=0)
    return Loaders(train=train, test=test, info=info)


class InMemorySamples:
    """Map-style dataset over in-memory encoded samples x (N, T, ...) and labels y (N,)."""

    def __init__(self, x, y) -> None:
        if len(x) != len(y):
            raise InputError(f"samples: {len(x)} inputs but {len(y)} labels")
        self.x = x
        self.y = y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int):
        return self.x[index], self.y[index]
