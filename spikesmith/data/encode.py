"""Input encodings: analog repeats, Bernoulli rate spikes, images as event streams, events as frames.

Pure functions. Spike trains come out time first, (T, B, *shape). Event streams follow tonic's
conventions: a structured numpy array with fields ``x``, ``y`` (int16), ``t`` (int64, microseconds)
and ``p`` (bool polarity), sorted by ``t``; a sensor size is ``(W, H, P)``.
"""

from __future__ import annotations

import sys

import numpy as np

from spikesmith.errors import InputError

# tonic.io.events_struct, spelled out so that encoding an image does not import tonic.
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])


def _check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InputError(f"steps: expected a positive integer number of time steps, got {steps!r}")
    return int(steps)


def _torch_or_none():
    # A tensor can only exist once torch is imported, so numpy callers never pay for importing it.
    return sys.modules.get("torch")


def _as_numpy(x, what: str) -> np.ndarray:
    torch = _torch_or_none()
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
        raise InputError(f"{what}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def _like_input(result: np.ndarray, x):
    """Return ``result`` as a tensor on ``x``'s device when ``x`` is a tensor, else as numpy."""
    torch = _torch_or_none()
    if torch is not None and isinstance(x, torch.Tensor):
        return torch.from_numpy(result).to(x.device)
    return result


def direct(x, steps: int):
    """Return ``x`` (B, *shape) repeated at every step as float32 (T, B, *shape); numpy in, numpy out.

    The analog value is the input current at each step ("direct" or "current" coding).
    """
    steps = _check_steps(steps)
    arr = _as_numpy(x, "x").astype(np.float32, copy=False)
    out = np.broadcast_to(arr[None], (steps, *arr.shape)).copy()  # writable also when steps == 1
    return _like_input(out, x)


def rate(x, steps: int, *, seed: int):
    """Return Bernoulli spikes float32 (T, B, *shape) with P(spike at each step) = intensity ``x`` in [0, 1].

    Spikes come from ``numpy.random.default_rng(seed)``, so numpy and torch inputs give the same spikes.
    """
    steps = _check_steps(steps)
    arr = _as_numpy(x, "x").astype(np.float32, copy=False)
    if arr.size and (not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0):
        raise InputError(f"x: rate coding needs finite intensities in [0, 1], got values in "
                         f"[{arr.min()}, {arr.max()}]")
    rng = np.random.default_rng(seed)
    out = (rng.random((steps, *arr.shape), dtype=np.float32) < arr[None]).astype(np.float32)
    return _like_input(out, x)


def to_events(image, *, duration_us: int, seed: int, max_events_per_pixel: int = 4) -> np.ndarray:
    """Return one image (H, W) or (1, H, W) with intensities in [0, 1] as a tonic-style event stream.

    Pixel (y, x) emits ``round(intensity * max_events_per_pixel)`` ON events (p = True) at times
    drawn uniformly from [0, duration_us) microseconds; the stream is sorted by time.
    """
    arr = _as_numpy(image, "image").astype(np.float64, copy=False)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise InputError(f"image: expected one image (H, W) or (1, H, W), got shape {tuple(arr.shape)}")
    if arr.size and (not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0):
        raise InputError(f"image: intensities must lie in [0, 1], got [{arr.min()}, {arr.max()}]")
    if isinstance(duration_us, bool) or not isinstance(duration_us, (int, np.integer)) or duration_us < 1:
        raise InputError(f"duration_us: expected a positive integer number of microseconds, got {duration_us!r}")
    if (isinstance(max_events_per_pixel, bool) or not isinstance(max_events_per_pixel, (int, np.integer))
            or max_events_per_pixel < 1):
        raise InputError(f"max_events_per_pixel: expected a positive integer, got {max_events_per_pixel!r}")
    counts = np.rint(arr * max_events_per_pixel).astype(np.int64)
    ys, xs = np.nonzero(counts)
    reps = counts[ys, xs]
    n = int(reps.sum())
    rng = np.random.default_rng(seed)
    events = np.empty(n, dtype=EVENT_DTYPE)
    events["x"] = np.repeat(xs, reps)
    events["y"] = np.repeat(ys, reps)
    events["t"] = rng.integers(0, int(duration_us), size=n, dtype=np.int64)
    events["p"] = True
    return events[np.argsort(events["t"], kind="stable")]


def _check_events(events) -> np.ndarray:
    names = getattr(getattr(events, "dtype", None), "names", None)
    if names is None or not {"x", "t", "p"} <= set(names):
        raise InputError(
            "events: expected a structured array with fields x, t, p (and y for 2-D sensors), "
            f"got {getattr(events, 'dtype', type(events).__name__)}"
        )
    if events.ndim != 1:
        raise InputError(f"events: expected a 1-D structured array, got shape {events.shape}")
    return events


def events_to_frames(events: np.ndarray, *, sensor_size: tuple[int, int, int], n_time_bins: int,
                     duration_us: float | None = None) -> np.ndarray:
    """Return event counts per time bin as float32 frames (T, P, H, W), or (T, P, W) without a ``y`` field.

    Uses ``tonic.transforms.ToFrame``. ``sensor_size`` is tonic's (W, H, P). With ``duration_us`` the
    bins are ``duration_us / n_time_bins`` long from t = 0 (the same grid for every sample; events
    outside [0, duration_us) are dropped). Without it tonic divides the span from the first to the
    last event into ``n_time_bins`` (tonic leaves out events at the very last timestamp).
    """
    from tonic.transforms import ToFrame

    events = _check_events(events)
    n_time_bins = _check_steps(n_time_bins)
    if len(sensor_size) != 3 or any(int(s) < 1 for s in sensor_size):
        raise InputError(f"sensor_size: expected (W, H, P) positive integers, got {sensor_size!r}")
    sensor_size = tuple(int(s) for s in sensor_size)
    w, h, p = sensor_size
    has_y = "y" in events.dtype.names
    shape = (n_time_bins, p, h, w) if has_y else (n_time_bins, p, w)
    if duration_us is not None and not float(duration_us) > 0:
        raise InputError(f"duration_us: expected a positive duration, got {duration_us!r}")
    if len(events):
        pol = events["p"].astype(np.int64)
        # tonic maps a one-polarity sensor's single polarity value (SHD uses 1) onto channel 0
        bad_p = np.unique(pol).size > 1 if p == 1 else (pol.min() < 0 or pol.max() >= p)
        bad = bad_p or events["x"].min() < 0 or events["x"].max() >= w
        if has_y:
            bad = bad or events["y"].min() < 0 or events["y"].max() >= h
        if bad:
            raise InputError(f"events: coordinates or polarities fall outside sensor_size (W, H, P) = {sensor_size}")
    # ToFrame needs time-sorted events and writes p in place for one-polarity sensors: work on a copy.
    events = events[np.argsort(events["t"], kind="stable")]
    if duration_us is not None:
        events = events[(events["t"] >= 0) & (events["t"] < duration_us)]
    if len(events) == 0:
        # tonic's empty-input frames are (T, P, W, H); ours keep (T, P, H, W).
        return np.zeros(shape, dtype=np.float32)
    if duration_us is None:
        transform = ToFrame(sensor_size=sensor_size, n_time_bins=n_time_bins)
    else:
        # include_incomplete guards against float rounding of duration/bins losing the last bin.
        transform = ToFrame(sensor_size=sensor_size, time_window=float(duration_us) / n_time_bins,
                            start_time=0, end_time=float(duration_us), include_incomplete=True)
    frames = np.asarray(transform(events), dtype=np.float32)[:n_time_bins]
    if frames.shape != shape:
        raise InputError(f"events: tonic's ToFrame made frames {frames.shape}, expected {shape}")
    return frames
