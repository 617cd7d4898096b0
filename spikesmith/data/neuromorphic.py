"""tonic's neuromorphic datasets (N-MNIST, DVS128-Gesture, CIFAR10-DVS, SHD) as time-first frame loaders.

The data are read from already-extracted files by tonic's own dataset classes. tonic decides
whether data are present from the downloaded archive plus a minimum count of extracted files, and
otherwise downloads; we check the extracted layout ourselves (raising DataError naming the folder)
and open tonic's class with its ``_check_exists`` hook answering from that check, so a missing
archive never triggers a download. ``download=True`` hands control back to tonic's own logic.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from spikesmith.errors import DataError, DependencyError, InputError

DEFAULT_DATA_DIR = Path("data")


def _has_files(folder: Path, pattern: str) -> bool:
    return folder.is_dir() and next(folder.glob(pattern), None) is not None


@dataclass(frozen=True, kw_only=True)
class EventDatasetSpec:
    """How one tonic dataset lies on disk and what it holds."""

    name: str
    tonic_class: str
    sensor_size: tuple[int, int, int]  # tonic's (W, H, P)
    num_classes: int
    has_split: bool  # False: one pool of recordings that we split by seed
    expected: tuple[str, ...]  # paths under <data_dir>/<tonic_class>/ that must hold data
    check: Callable[[Path], bool]  # given <data_dir>/<tonic_class>, is everything extracted?
    source: str


SPECS: dict[str, EventDatasetSpec] = {
    "nmnist": EventDatasetSpec(
        name="nmnist", tonic_class="NMNIST", sensor_size=(34, 34, 2), num_classes=10, has_split=True,
        expected=("Train/<digit>/*.bin", "Test/<digit>/*.bin"),
        check=lambda root: _has_files(root / "Train", "[0-9]/*.bin") and _has_files(root / "Test", "[0-9]/*.bin"),
        source="https://www.garrickorchard.com/datasets/n-mnist (train.zip, test.zip)",
    ),
    "dvsgesture": EventDatasetSpec(
        name="dvsgesture", tonic_class="DVSGesture", sensor_size=(128, 128, 2), num_classes=11, has_split=True,
        expected=("ibmGestureTrain/user<NN>_<lighting>/<label>.npy", "ibmGestureTest/user<NN>_<lighting>/<label>.npy"),
        check=lambda root: _has_files(root / "ibmGestureTrain", "user*_*/*.npy")
        and _has_files(root / "ibmGestureTest", "user*_*/*.npy"),
        source="https://figshare.com/ndownloader/files/38022171 (ibmGestureTrain.tar.gz) and "
               "https://figshare.com/ndownloader/files/38020584 (ibmGestureTest.tar.gz)",
    ),
    "cifar10dvs": EventDatasetSpec(
        name="cifar10dvs", tonic_class="CIFAR10DVS", sensor_size=(128, 128, 2), num_classes=10, has_split=False,
        expected=("<class name>/*.aedat4",),
        check=lambda root: _has_files(root, "*/*.aedat4"),
        source="https://figshare.com/ndownloader/files/38023437 (CIFAR10DVS.zip, then each class zip)",
    ),
    "shd": EventDatasetSpec(
        name="shd", tonic_class="SHD", sensor_size=(700, 1, 1), num_classes=20, has_split=True,
        expected=("shd_train.h5", "shd_test.h5"),
        check=lambda root: (root / "shd_train.h5").is_file() and (root / "shd_test.h5").is_file(),
        source="https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/ (shd_train.h5.zip, shd_test.h5.zip)",
    ),
}


def require_extracted(spec: EventDatasetSpec, data_dir: Path) -> Path:
    """Return ``data_dir/<tonic class>`` or raise DataError (one line) saying what is missing and how to get it."""
    root = Path(data_dir) / spec.tonic_class
    if not spec.check(root):
        raise DataError(
            f"{spec.name}: no extracted data in {root} (expected {' and '.join(spec.expected)}); get it with "
            f"make_loaders({spec.name!r}, ..., download=True) or tonic.datasets.{spec.tonic_class}"
            f"(save_to={str(data_dir)!r}), or download {spec.source} and extract it into {root}"
        )
    return root


@functools.lru_cache(maxsize=None)
def _offline_class(tonic_class: str):
    """Return a subclass of tonic's dataset class that trusts our check and never downloads."""
    import tonic.datasets

    base = getattr(tonic.datasets, tonic_class)

    def _never_download(self) -> None:
        raise DataError(f"{self.location_on_system}: data missing and downloading is off (download=False)")

    # Same class name: tonic reads from <save_to>/<class name>.
    return type(base.__name__, (base,), {
        "_check_exists": lambda self: True,
        "download": _never_download,
        "__module__": __name__,
    })


def _open_tonic(spec: EventDatasetSpec, data_dir: Path, *, train: bool | None, download: bool):
    if spec.tonic_class == "CIFAR10DVS":
        try:
            import aedat  # noqa: F401  # tonic reads .aedat4 files with it
        except ImportError:
            raise DependencyError("cifar10dvs: reading .aedat4 files needs the 'aedat' package "
                                  "(pip install aedat)") from None
    import tonic.datasets

    if download:
        cls = getattr(tonic.datasets, spec.tonic_class)
    else:
        require_extracted(spec, data_dir)
        cls = _offline_class(spec.tonic_class)
    kwargs = {"save_to": str(data_dir)}
    if train is not None:
        kwargs["train"] = train
    return cls(**kwargs)


def frame_sensor_size(sensor_size: tuple[int, int, int], downsample: float | None) -> tuple[int, int, int]:
    """Return the (W, H, P) sensor size after tonic's Downsample by ``downsample`` (coordinates are floored)."""
    if downsample is None:
        return tuple(sensor_size)
    w, h, p = sensor_size
    shrink = lambda n: int(np.floor((n - 1) * downsample)) + 1 if n > 1 else n  # noqa: E731
    return (shrink(w), shrink(h), p)


class EventsToFrames:
    """Callable: tonic events -> float32 frames (T, P, H, W), or (T, P, W) for 1-D sensors like SHD.

    Applies, in order, tonic's Denoise (``denoise_us``), Downsample (``downsample``) and ToFrame.
    """

    def __init__(self, *, sensor_size: tuple[int, int, int], n_time_bins: int, denoise_us: float | None = None,
                 downsample: float | None = None, duration_us: float | None = None) -> None:
        self.sensor_size = tuple(sensor_size)
        self.n_time_bins = n_time_bins
        self.denoise_us = denoise_us
        self.downsample = downsample
        self.duration_us = duration_us
        self.frame_sensor_size = frame_sensor_size(self.sensor_size, downsample)

    def key(self) -> str:
        """Return a short hash of the parameters, naming this transform's cache folder."""
        params = [self.sensor_size, self.n_time_bins, self.denoise_us, self.downsample, self.duration_us]
        return hashlib.sha1(json.dumps(params).encode()).hexdigest()[:12]

    def __call__(self, events: np.ndarray) -> np.ndarray:
        from tonic.transforms import Denoise, Downsample

        from spikesmith.data.encode import events_to_frames

        if self.denoise_us is not None and len(events):
            events = Denoise(filter_time=self.denoise_us)(events)
        if self.downsample is not None and len(events):
            events = Downsample(spatial_factor=self.downsample)(events)
        return events_to_frames(events, sensor_size=self.frame_sensor_size, n_time_bins=self.n_time_bins,
                                duration_us=self.duration_us)


class FramedSamples:
    """Map-style dataset: (frames (T, ...) float32, label int) from a tonic dataset and a frame transform."""

    def __init__(self, events_dataset, transform: EventsToFrames, indices=None) -> None:
        self.events_dataset = events_dataset
        self.transform = transform
        self.indices = list(range(len(events_dataset))) if indices is None else list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        events, label = self.events_dataset[self.indices[index]]
        return self.transform(events), int(label)


class CachedSamples:
    """Map-style dataset reading frames through tonic.DiskCachedDataset (HDF5 files, one per sample)."""

    def __init__(self, samples: FramedSamples, cache_path: Path) -> None:
        from tonic import DiskCachedDataset

        self.cache_path = Path(cache_path)
        self.cached = DiskCachedDataset(samples, cache_path=str(self.cache_path))

    def __len__(self) -> int:
        return len(self.cached)

    def __getitem__(self, index: int):
        frames, label = self.cached[index]
        return np.asarray(frames, dtype=np.float32), int(np.asarray(label))


def _check_options(name, denoise_us, downsample, duration_us, spec: EventDatasetSpec) -> None:
    for field, value in (("denoise_us", denoise_us), ("downsample", downsample), ("duration_us", duration_us)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise InputError(f"{field}: expected a positive number or None, got {value!r}")
    if downsample is not None and downsample > 1:
        raise InputError(f"downsample: expected a spatial factor in (0, 1], got {downsample!r}")
    if denoise_us is not None and spec.sensor_size[1] == 1:
        raise InputError(f"denoise_us: dataset {name!r} has a 1-D sensor; tonic's Denoise needs x and y")


def _split_indices(targets, *, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split

    if not 0.0 < float(test_fraction) < 1.0:
        raise InputError(f"test_fraction: expected a number strictly between 0 and 1, got {test_fraction!r}")
    idx = np.arange(len(targets))
    train, test = train_test_split(idx, test_size=float(test_fraction), stratify=np.asarray(targets),
                                   random_state=int(seed), shuffle=True)
    return np.sort(train), np.sort(test)


def event_loaders(name: str, *, batch_size: int, steps: int, encoding: str = "frames", seed: int = 0,
                  data_dir=None, cache_dir=None, denoise_us: float | None = None,
                  downsample: float | None = None, duration_us: float | None = None,
                  download: bool = False, test_fraction: float = 0.2):
    """Return Loaders over a tonic dataset as frames: x (T, B, P, H, W) float32 event counts (SHD: (T, B, 1, 700)).

    ``steps`` frames per sample (tonic's ToFrame n_time_bins, or fixed bins over ``duration_us``),
    after optional Denoise (``denoise_us``) and Downsample (``downsample`` spatial factor). With
    ``cache_dir`` frames are cached by tonic.DiskCachedDataset under
    ``cache_dir/<name>/<train|test>/<parameter hash>``. ``test_fraction`` only applies to datasets
    without an official split (CIFAR10-DVS), split stratified by ``seed``.
    """
    from spikesmith.data.batching import DatasetInfo, build_loaders, check_batch_args

    spec = SPECS[name]
    check_batch_args(batch_size=batch_size, steps=steps, seed=seed)
    if encoding != "frames":
        raise InputError(f"encoding: dataset {name!r} supports frames; got {encoding!r}")
    _check_options(name, denoise_us, downsample, duration_us, spec)
    data_dir = DEFAULT_DATA_DIR if data_dir is None else Path(data_dir)
    transform = EventsToFrames(sensor_size=spec.sensor_size, n_time_bins=steps, denoise_us=denoise_us,
                               downsample=downsample, duration_us=duration_us)
    if spec.has_split:
        train_set = FramedSamples(_open_tonic(spec, data_dir, train=True, download=download), transform)
        test_set = FramedSamples(_open_tonic(spec, data_dir, train=False, download=download), transform)
    else:
        pool = _open_tonic(spec, data_dir, train=None, download=download)
        # tonic lists each class folder in directory order, which differs between filesystems:
        # order the recordings by path so a seed selects the same split everywhere
        order = sorted(range(len(pool.data)), key=lambda i: str(pool.data[i]))
        pool.data = [pool.data[i] for i in order]
        pool.targets = [pool.targets[i] for i in order]
        train_idx, test_idx = _split_indices(pool.targets, test_fraction=test_fraction, seed=seed)
        train_set = FramedSamples(pool, transform, train_idx)
        test_set = FramedSamples(pool, transform, test_idx)
    if cache_dir is not None:
        split_key = "" if spec.has_split else f"-split{seed}-{test_fraction}"
        base = Path(cache_dir) / name
        train_set = CachedSamples(train_set, base / "train" / (transform.key() + split_key))
        test_set = CachedSamples(test_set, base / "test" / (transform.key() + split_key))
    w, h, p = transform.frame_sensor_size
    input_shape = (p, h, w) if h > 1 or spec.sensor_size[1] > 1 else (p, w)
    info = DatasetInfo(name=name, input_shape=input_shape, num_classes=spec.num_classes, steps=steps,
                       encoding="frames", n_train=len(train_set), n_test=len(test_set))
    return build_loaders(train_set, test_set, batch_size=batch_size, seed=seed, info=info)


def _bind(name: str):
    def loaders(*, batch_size: int, steps: int, encoding: str = "frames", seed: int = 0, data_dir=None,
                cache_dir=None, denoise_us: float | None = None, downsample: float | None = None,
                duration_us: float | None = None, download: bool = False, test_fraction: float = 0.2):
        return event_loaders(name, batch_size=batch_size, steps=steps, encoding=encoding, seed=seed,
                             data_dir=data_dir, cache_dir=cache_dir, denoise_us=denoise_us,
                             downsample=downsample, duration_us=duration_us, download=download,
                             test_fraction=test_fraction)

    loaders.__name__ = f"{name}_loaders"
    loaders.__doc__ = f"Return Loaders over {name} frames; see :func:`event_loaders`."
    return loaders


nmnist_loaders = _bind("nmnist")
dvsgesture_loaders = _bind("dvsgesture")
cifar10dvs_loaders = _bind("cifar10dvs")
shd_loaders = _bind("shd")
