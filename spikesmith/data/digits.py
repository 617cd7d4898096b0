"""scikit-learn's 8x8 handwritten digits: the embedded default dataset (no download)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikesmith.errors import InputError

DIGITS_NUM_CLASSES = 10
DIGITS_SHAPE = (1, 8, 8)
_DIGITS_MAX = 16.0  # load_digits pixels are integers 0..16


@dataclass(frozen=True, kw_only=True)
class DigitsSplit:
    """A stratified train/test split of the digits: images (N, 1, 8, 8) float32 in [0, 1], labels int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int = DIGITS_NUM_CLASSES
    seed: int = 0

    def __post_init__(self) -> None:
        for xname, yname in (("x_train", "y_train"), ("x_test", "y_test")):
            x, y = getattr(self, xname), getattr(self, yname)
            if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype != np.float32:
                raise InputError(f"DigitsSplit.{xname}: expected a float32 array (N, C, H, W), got "
                                 f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
            if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype != np.int64:
                raise InputError(f"DigitsSplit.{yname}: expected an int64 array (N,), got "
                                 f"{getattr(y, 'dtype', type(y).__name__)} {getattr(y, 'shape', '')}")
            if len(x) != len(y):
                raise InputError(f"DigitsSplit.{xname}/{yname}: {len(x)} images but {len(y)} labels")
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                raise InputError(f"DigitsSplit.{yname}: labels must lie in [0, {self.num_classes}), "
                                 f"got [{y.min()}, {y.max()}]")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise InputError(f"DigitsSplit: x_train images {self.x_train.shape[1:]} differ from "
                             f"x_test images {self.x_test.shape[1:]}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Return the shape of one image, (C, H, W)."""
        return tuple(self.x_train.shape[1:])


def load_digits_split(*, seed: int = 0, test_fraction: float = 0.2) -> DigitsSplit:
    """Return the digits split into train and test sets, stratified by class and fixed by ``seed``.

    Images are (N, 1, 8, 8) float32 scaled from 0..16 to [0, 1]; the same seed gives identical arrays.
    """
    check_split_args(seed, test_fraction)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / np.float32(_DIGITS_MAX)).reshape(-1, *DIGITS_SHAPE)
    return stratified_split(x, bunch.target.astype(np.int64), seed=seed, test_fraction=test_fraction)


def check_split_args(seed, test_fraction) -> None:
    """InputError unless ``seed`` is a non-negative integer and ``test_fraction`` lies in (0, 1)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed: expected a non-negative integer, got {seed!r}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise InputError(f"test_fraction: expected a number strictly between 0 and 1, got {test_fraction!r}")


def stratified_split(x: np.ndarray, y: np.ndarray, *, seed: int, test_fraction: float) -> DigitsSplit:
    """``(x, y)`` split into train and test sets, stratified by class and fixed by ``seed``."""
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=float(test_fraction), stratify=y, random_state=int(seed), shuffle=True
    )
    return DigitsSplit(
        x_train=np.ascontiguousarray(x_train),
        y_train=np.ascontiguousarray(y_train),
        x_test=np.ascontiguousarray(x_test),
        y_test=np.ascontiguousarray(y_test),
        seed=int(seed),
    )


DIGITS_EVENTS_SENSOR = (8, 8, 2)  # tonic's (W, H, P)


def _check_encoding(name: str, encoding: str, allowed: tuple[str, ...]) -> str:
    if encoding not in allowed:
        raise InputError(f"encoding: dataset {name!r} supports {', '.join(allowed)}; got {encoding!r}")
    return encoding


def digits_loaders(*, batch_size: int, steps: int, encoding: str = "direct", seed: int = 0,
                   data_dir=None, test_fraction: float = 0.2):
    """Return Loaders over the digits, encoded once in memory: x (T, B, 1, 8, 8) float32, y (B,).

    ``encoding`` is ``"direct"`` (analog pixel every step) or ``"rate"`` (Bernoulli spikes; each
    sample's spikes are fixed by ``seed``). ``data_dir`` is ignored: the data ship with scikit-learn.
    """
    from spikesmith.data.batching import check_batch_args

    check_batch_args(batch_size=batch_size, steps=steps, seed=seed)
    _check_encoding("digits", encoding, ("direct", "rate"))
    split = load_digits_split(seed=seed, test_fraction=test_fraction)
    return image_split_loaders("digits", split, batch_size=batch_size, steps=steps, encoding=encoding, seed=seed)


def image_split_loaders(name: str, split: DigitsSplit, *, batch_size: int, steps: int, encoding: str, seed: int):
    """Return Loaders over an image split encoded once in memory: x (T, B, C, H, W) float32, y (B,).

    ``encoding`` "direct" repeats the analog image every step; "rate" draws Bernoulli spikes whose
    train and test streams come from ``SeedSequence(seed).spawn(2)``.
    """
    import torch

    from spikesmith.data.batching import DatasetInfo, InMemorySamples, build_loaders
    from spikesmith.data.encode import direct, rate

    train_seq, test_seq = np.random.SeedSequence(seed).spawn(2)

    def encode(x: np.ndarray, seq: np.random.SeedSequence) -> "torch.Tensor":
        tb = direct(x, steps) if encoding == "direct" else rate(x, steps, seed=seq)
        return torch.from_numpy(np.ascontiguousarray(np.swapaxes(tb, 0, 1)))  # (N, T, C, H, W)

    train = InMemorySamples(encode(split.x_train, train_seq), torch.from_numpy(split.y_train))
    test = InMemorySamples(encode(split.x_test, test_seq), torch.from_numpy(split.y_test))
    info = DatasetInfo(name=name, input_shape=split.input_shape, num_classes=split.num_classes,
                       steps=steps, encoding=encoding, n_train=len(train), n_test=len(test))
    return build_loaders(train, test, batch_size=batch_size, seed=seed, info=info)


def digits_event_frames(x: np.ndarray, *, steps: int, seed, duration_us: int = 100_000,
                        max_events_per_pixel: int = 4) -> np.ndarray:
    """Return images (N, 1, H, W) turned into events and binned: float32 event counts (N, T, 2, H, W).

    Image i's events are drawn from ``SeedSequence(seed).spawn(N)[i]``; bins cover [0, duration_us).
    """
    from spikesmith.data.encode import events_to_frames, to_events

    n, _, h, w = x.shape
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    seqs = root.spawn(n)
    out = np.empty((n, steps, 2, h, w), dtype=np.float32)
    for i in range(n):
        events = to_events(x[i], duration_us=duration_us, seed=seqs[i],
                           max_events_per_pixel=max_events_per_pixel)
        out[i] = events_to_frames(events, sensor_size=(w, h, 2), n_time_bins=steps, duration_us=duration_us)
    return out


def digits_events_loaders(*, batch_size: int, steps: int, encoding: str = "frames", seed: int = 0,
                          data_dir=None, test_fraction: float = 0.2, duration_us: int = 100_000,
                          max_events_per_pixel: int = 4):
    """Return Loaders over the digits as event frames: x (T, B, 2, 8, 8) float32 event counts, y (B,).

    Each image becomes a tonic-style event stream (see :func:`spikesmith.data.encode.to_events`)
    binned by tonic's ToFrame into ``steps`` frames over ``duration_us``; computed once, in memory.
    """
    import torch

    from spikesmith.data.batching import DatasetInfo, InMemorySamples, build_loaders, check_batch_args

    check_batch_args(batch_size=batch_size, steps=steps, seed=seed)
    _check_encoding("digits-events", encoding, ("frames",))
    split = load_digits_split(seed=seed, test_fraction=test_fraction)
    train_seq, test_seq = np.random.SeedSequence(seed).spawn(2)
    kw = dict(steps=steps, duration_us=duration_us, max_events_per_pixel=max_events_per_pixel)
    train = InMemorySamples(torch.from_numpy(digits_event_frames(split.x_train, seed=train_seq, **kw)),
                            torch.from_numpy(split.y_train))
    test = InMemorySamples(torch.from_numpy(digits_event_frames(split.x_test, seed=test_seq, **kw)),
                           torch.from_numpy(split.y_test))
    info = DatasetInfo(name="digits-events", input_shape=(2, 8, 8), num_classes=split.num_classes,
                       steps=steps, encoding="frames", n_train=len(train), n_test=len(test))
    return build_loaders(train, test, batch_size=batch_size, seed=seed, info=info)
