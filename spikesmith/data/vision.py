"""Static CIFAR-10/100 through torchvision (the optional extra ``spikesmith[vision]``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikesmith.errors import DataError, DependencyError, InputError

_CIFAR = {"cifar10": ("CIFAR10", 10, "cifar-10-batches-py"), "cifar100": ("CIFAR100", 100, "cifar-100-python")}


def _torchvision():
    try:
        import torchvision
    except ImportError:
        raise DependencyError("static CIFAR datasets need torchvision: install the extra spikesmith[vision] "
                              "(pip install 'spikesmith[vision]')") from None
    return torchvision


def cifar_loaders(name: str, *, batch_size: int, steps: int, encoding: str = "direct", seed: int = 0,
                  data_dir=None, download: bool = False):
    """Return Loaders over CIFAR-10/100 images in [0, 1]: x (T, B, 3, 32, 32) float32, y (B,) int64.

    ``encoding`` is "direct" or "rate" (spikes of sample i fixed by ``(seed, split, i)``).
    """
    from spikesmith.data.batching import DatasetInfo, build_loaders, check_batch_args
    from spikesmith.data.neuromorphic import DEFAULT_DATA_DIR

    check_batch_args(batch_size=batch_size, steps=steps, seed=seed)
    if encoding not in ("direct", "rate"):
        raise InputError(f"encoding: dataset {name!r} supports direct, rate; got {encoding!r}")
    tv = _torchvision()
    cls_name, num_classes, folder = _CIFAR[name]
    root = DEFAULT_DATA_DIR if data_dir is None else Path(data_dir)
    if not download and not (root / folder).is_dir():
        raise DataError(f"{name}: no extracted data in {root / folder} (expected torchvision's {folder} batches); "
                        f"get it with make_loaders({name!r}, ..., download=True) or from "
                        "https://www.cs.toronto.edu/~kriz/cifar.html and extract it into "
                        f"{root}")
    sets = [getattr(tv.datasets, cls_name)(root=str(root), train=train, download=download) for train in (True, False)]
    samples = [_EncodedImages(s, steps=steps, encoding=encoding, seed=(seed, k)) for k, s in enumerate(sets)]
    info = DatasetInfo(name=name, input_shape=(3, 32, 32), num_classes=num_classes, steps=steps,
                       encoding=encoding, n_train=len(samples[0]), n_test=len(samples[1]))
    return build_loaders(samples[0], samples[1], batch_size=batch_size, seed=seed, info=info)


class _EncodedImages:
    """Map-style dataset: (x (T, 3, H, W) float32, label) from a torchvision dataset of PIL images."""

    def __init__(self, base, *, steps: int, encoding: str, seed: tuple[int, int]) -> None:
        self.base, self.steps, self.encoding, self.seed = base, steps, encoding, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        from spikesmith.data.encode import direct, rate

        image, label = self.base[index]
        x = (np.asarray(image, dtype=np.float32) / 255.0).transpose(2, 0, 1)
        out = direct(x, self.steps) if self.encoding == "direct" else rate(
            x, self.steps, seed=[*self.seed, index])
        return out, int(label)


def _bind(name: str):
    def loaders(*, batch_size: int, steps: int, encoding: str = "direct", seed: int = 0, data_dir=None,
                download: bool = False):
        return cifar_loaders(name, batch_size=batch_size, steps=steps, encoding=encoding, seed=seed,
                             data_dir=data_dir, download=download)

    loaders.__name__ = f"{name}_loaders"
    loaders.__doc__ = f"Return Loaders over static {name}; see :func:`cifar_loaders`."
    return loaders


cifar10_loaders = _bind("cifar10")
cifar100_loaders = _bind("cifar100")
