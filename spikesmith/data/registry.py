"""The dataset registry: name -> function returning Loaders, and :func:`make_loaders` dispatching on it."""

from __future__ import annotations

import inspect
import os
from typing import Callable

from spikesmith.data.cifar import cifar10_loaders, cifar100_loaders
from spikesmith.data.digits import digits_events_loaders, digits_loaders
from spikesmith.data.mnist5k import mnist5k_loaders
from spikesmith.data.neuromorphic import cifar10dvs_loaders, dvsgesture_loaders, nmnist_loaders, shd_loaders
from spikesmith.errors import InputError

DATA_DIR_ENV = "SPIKESMITH_DATA_DIR"

DATASETS: dict[str, Callable] = {
    "digits": digits_loaders,
    "digits-events": digits_events_loaders,
    "mnist5k": mnist5k_loaders,
    "nmnist": nmnist_loaders,
    "dvsgesture": dvsgesture_loaders,
    "cifar10dvs": cifar10dvs_loaders,
    "shd": shd_loaders,
    "cifar10": cifar10_loaders,
    "cifar100": cifar100_loaders,
}


def make_loaders(name: str, *, batch_size: int, steps: int, encoding: str | None = None, seed: int = 0,
                 data_dir=None, **options):
    """Return Loaders(train, test, info) for dataset ``name``; batches are (x (T, B, ...) float32, y (B,) int64).

    ``encoding`` None picks the dataset's default (the first one it supports). The train order is
    shuffled by a torch.Generator seeded with ``seed``; the test order is fixed. ``options`` are
    the dataset's own keywords (see DATASETS[name]); unknown ones raise InputError. ``data_dir``
    None takes the environment variable ``SPIKESMITH_DATA_DIR``, else each dataset's default (``./data``),
    so commands that do not pass a data directory still find data kept elsewhere.
    """
    if name not in DATASETS:
        raise InputError(f"dataset: unknown name {name!r}; known datasets are {', '.join(DATASETS)}")
    loader = DATASETS[name]
    params = inspect.signature(loader).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        accepted = sorted(set(params) - {"batch_size", "steps", "encoding", "seed", "data_dir"})
        raise InputError(f"dataset {name!r}: unknown option(s) {', '.join(unknown)}; "
                         f"it accepts {', '.join(accepted) or 'no options'}")
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or None
    kwargs = dict(batch_size=batch_size, steps=steps, seed=seed, data_dir=data_dir, **options)
    if encoding is not None:
        kwargs["encoding"] = encoding
    return loader(**kwargs)
