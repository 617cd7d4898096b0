"""Writers of tiny files in each neuromorphic dataset's own on-disk format (as tonic 1.7 reads them)."""

from pathlib import Path

import numpy as np


def random_events(rng, n, width, height, n_pol, t_max):
    """Return (x, y, t, p) int arrays, sorted by t, with distinct t so frame bins are unambiguous."""
    t = np.sort(rng.choice(t_max, size=n, replace=False))
    return rng.integers(0, width, n), rng.integers(0, height, n), t, rng.integers(0, n_pol, n)


def write_nmnist_bin(path: Path, x, y, t, p) -> None:
    """N-MNIST: 5 bytes per event: x, y, p<<7 | t[22:16], t[15:8], t[7:0] (t in microseconds < 2**23)."""
    t = np.asarray(t, np.int64)
    assert t.max() < 2**23 and np.asarray(y).max() < 240  # y == 240 marks a timestamp overflow
    raw = np.zeros((len(t), 5), np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (np.asarray(p) << 7) | ((t >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.tobytes())


def write_dvsgesture_npy(path: Path, x, y, t_ms, p) -> None:
    """DVSGesture (tonic's preprocessed copy): (N, 4) array of x, y, p, t in milliseconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.stack([x, y, p, t_ms], axis=1).astype(np.int64))


def write_shd_h5(path: Path, samples, labels) -> None:
    """SHD: spikes/times (vlen float seconds), spikes/units (vlen uint16), labels, extra/keys, extra/speaker."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as fh:
        times = fh.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32))
        units = fh.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (u, t_s) in enumerate(samples):
            times[i], units[i] = np.asarray(t_s, np.float32), np.asarray(u, np.uint16)
        fh["labels"] = np.asarray(labels, np.uint8)
        fh["extra/keys"] = np.array([f"word{k}".encode() for k in range(20)])
        fh["extra/speaker"] = np.zeros(len(samples), np.uint8)
