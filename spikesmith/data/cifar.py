"""Static CIFAR-10/100 read from CIFAR's own on-disk format (the "python version" archives), no torchvision.

The archives hold pickled dicts (written by Python 2): CIFAR-10 ``cifar-10-batches-py/`` with
``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and ``batches.meta``; CIFAR-100
``cifar-100-python/`` with ``train``, ``test`` and ``meta``. A batch holds ``data``, a uint8
array (N, 3072) of N images as 1024 red, 1024 green, 1024 blue values in row-major 32x32 order,
and ``labels`` (CIFAR-10) or ``fine_labels``/``coarse_labels`` (CIFAR-100), lists of N ints.

Only those file names are opened, and through an unpickler that builds nothing but numpy arrays,
dtypes and plain values (lists, tuples, strings, numbers), so a file that is not a CIFAR batch is
refused with one DataError line instead of running code.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikesmith.errors import DataError, InputError

SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html"


@dataclass(frozen=True, kw_only=True)
class CifarLayout:
    """Where one CIFAR variant lies on disk and what its files hold."""

    folder: str
    archive: str
    train: tuple[str, ...]
    test: str
    meta: str
    labels: str  # the batches' label key
    names: str  # the meta file's class-name key
    num_classes: int


LAYOUTS = {
    "cifar10": CifarLayout(folder="cifar-10-batches-py", archive="cifar-10-python.tar.gz",
                           train=tuple(f"data_batch_{i}" for i in range(1, 6)), test="test_batch",
                           meta="batches.meta", labels="labels", names="label_names", num_classes=10),
    "cifar100": CifarLayout(folder="cifar-100-python", archive="cifar-100-python.tar.gz", train=("train",),
                            test="test", meta="meta", labels="fine_labels", names="fine_label_names",
                            num_classes=100),
}

IMAGE_SHAPE = (3, 32, 32)


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _latin1_encode(obj, encoding="latin1"):
    # Python 3 pickles of bytes at protocol 2 go through _codecs.encode(text, "latin1")
    if encoding not in ("latin1", "latin-1") or not isinstance(obj, str):
        raise pickle.UnpicklingError(f"_codecs.encode with {encoding!r}")
    return obj.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    """Builds numpy arrays and plain values only; any other class or function is refused."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: _latin1_encode,
    }

    def find_class(self, module: str, name: str):
        make = self.ALLOWED.get((module, name))
        if make is None:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}")
        return make()


_PLAIN = (int, float, str, bytes, np.ndarray)


def read_pickled_dict(path: Path) -> dict[str, object]:
    """The dict in one CIFAR file, keys as str; DataError (one line, naming the file) for anything else:
    a missing or unreadable file, a pickle that refers to other classes, a value that is not a numpy
    array, a list of plain values, a string or a number."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            obj = _ArrayUnpickler(fh, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(f"{path}: file missing") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, MemoryError, UnicodeError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: not a CIFAR batch (unreadable pickle: {why}); only numpy arrays, lists, "
                        "strings and numbers are read") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: not a CIFAR batch (holds a {type(obj).__name__}, expected a dict)")
    out: dict[str, object] = {}
    for key, value in obj.items():
        if isinstance(key, bytes):
            key = key.decode("latin1")
        if not isinstance(key, str):
            raise DataError(f"{path}: not a CIFAR batch (key {key!r} is not a string)")
        items = value if isinstance(value, (list, tuple)) else [value]
        if not all(isinstance(v, _PLAIN) and not isinstance(v, bool) for v in items) or (
                isinstance(value, (list, tuple)) and any(isinstance(v, np.ndarray) for v in value)):
            raise DataError(f"{path}: not a CIFAR batch (entry {key!r} is a {type(value).__name__} of "
                            "something other than numbers and strings)")
        if any(isinstance(v, np.ndarray) and v.dtype.hasobject for v in items):
            raise DataError(f"{path}: not a CIFAR batch (entry {key!r} is an array of Python objects)")
        out[key] = value
    return out


def _field(d: dict, key: str, path: Path):
    if key not in d:
        raise DataError(f"{path}: not a CIFAR batch (no {key!r}; it holds {', '.join(sorted(d)) or 'nothing'})")
    return d[key]


def read_batch(path: Path, *, labels_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) of one CIFAR batch file; DataError when malformed."""
    d = read_pickled_dict(path)
    data = _field(d, "data", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'data' must be a uint8 array (N, 3072), got {got}")
    raw = _field(d, labels_key, path)
    try:
        labels = np.asarray(raw)
    except (TypeError, ValueError):
        labels = np.asarray([])
    if labels.dtype.kind not in "iu" or labels.shape != (len(data),):
        raise DataError(f"{path}: {labels_key!r} must be {len(data)} integers (one per image), "
                        f"got {labels.shape[0] if labels.ndim == 1 else 'malformed'} {labels.dtype}")
    if len(labels) and not (labels.min() >= 0 and labels.max() < num_classes):
        raise DataError(f"{path}: {labels_key!r} must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}")
    return data.reshape(-1, *IMAGE_SHAPE), labels.astype(np.int64)


def read_class_names(path: Path, *, names_key: str, num_classes: int) -> tuple[str, ...]:
    """The class names in a CIFAR meta file; DataError when there are not ``num_classes`` of them."""
    names = _field(read_pickled_dict(path), names_key, path)
    if not isinstance(names, (list, tuple)) or len(names) != num_classes or \
            not all(isinstance(n, (str, bytes)) for n in names):
        raise DataError(f"{path}: {names_key!r} must list {num_classes} class names")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else n for n in names)


def cifar_folder(name: str, data_dir) -> Path:
    """The folder holding ``name``'s files: ``data_dir/<folder>``, or ``data_dir`` itself when it is
    that folder; DataError (one line) naming what is missing and where to get it."""
    from spikesmith.data.neuromorphic import DEFAULT_DATA_DIR

    layout = LAYOUTS[name]
    root = DEFAULT_DATA_DIR if data_dir is None else Path(data_dir)
    files = (*layout.train, layout.test, layout.meta)
    for folder in (root / layout.folder, root):
        if (folder / layout.test).is_file() or (folder / layout.meta).is_file():
            missing = [f for f in files if not (folder / f).is_file()]
            if missing:
                raise DataError(f"{name}: {folder} lacks {', '.join(missing)} (expected {', '.join(files)})")
            return folder
    raise DataError(f"{name}: no extracted data in {root / layout.folder} (expected {', '.join(files)}); "
                    f"download {layout.archive} (python version) from {SOURCE} and extract it into {root}")


class EncodedImages:
    """Map-style dataset: (x (T, 3, 32, 32) float32 in [0, 1], label) from uint8 images (N, 3, 32, 32)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, steps: int, encoding: str,
                 seed: tuple[int, int]) -> None:
        self.images, self.labels, self.steps, self.encoding, self.seed = images, labels, steps, encoding, seed

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from spikesmith.data.encode import direct, rate

        x = self.images[index].astype(np.float32) / 255.0
        out = direct(x, self.steps) if self.encoding == "direct" else rate(x, self.steps, seed=[*self.seed, index])
        return out, int(self.labels[index])


def cifar_loaders(name: str, *, batch_size: int, steps: int, encoding: str = "direct", seed: int = 0,
                  data_dir=None):
    """Return Loaders over CIFAR-10/100 images in [0, 1]: x (T, B, 3, 32, 32) float32, y (B,) int64.

    ``data_dir`` (default ``./data``) holds the extracted archive's folder (``cifar-10-batches-py``
    or ``cifar-100-python``) or is that folder. ``encoding`` is "direct" or "rate" (spikes of sample
    i fixed by ``(seed, split, i)``). CIFAR-100 uses the 100 fine labels.
    """
    from spikesmith.data.batching import DatasetInfo, build_loaders, check_batch_args

    check_batch_args(batch_size=batch_size, steps=steps, seed=seed)
    if encoding not in ("direct", "rate"):
        raise InputError(f"encoding: dataset {name!r} supports direct, rate; got {encoding!r}")
    layout = LAYOUTS[name]
    folder = cifar_folder(name, data_dir)
    read_class_names(folder / layout.meta, names_key=layout.names, num_classes=layout.num_classes)
    splits = []
    for files in (layout.train, (layout.test,)):
        parts = [read_batch(folder / f, labels_key=layout.labels, num_classes=layout.num_classes) for f in files]
        splits.append((np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])))
    samples = [EncodedImages(x, y, steps=steps, encoding=encoding, seed=(seed, k)) for k, (x, y) in enumerate(splits)]
    info = DatasetInfo(name=name, input_shape=IMAGE_SHAPE, num_classes=layout.num_classes, steps=steps,
                       encoding=encoding, n_train=len(samples[0]), n_test=len(samples[1]))
    return build_loaders(samples[0], samples[1], batch_size=batch_size, seed=seed, info=info)


def _bind(name: str):
    def loaders(*, batch_size: int, steps: int, encoding: str = "direct", seed: int = 0, data_dir=None):
        return cifar_loaders(name, batch_size=batch_size, steps=steps, encoding=encoding, seed=seed,
                             data_dir=data_dir)

    loaders.__name__ = f"{name}_loaders"
    loaders.__doc__ = f"Return Loaders over static {name}; see :func:`cifar_loaders`."
    return loaders


cifar10_loaders = _bind("cifar10")
cifar100_loaders = _bind("cifar100")
