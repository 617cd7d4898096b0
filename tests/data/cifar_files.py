"""Writers of tiny CIFAR-10/100 folders in CIFAR's own format: dicts pickled by Python 2's cPickle
(protocol 2), strings as Python 2 ``str`` (SHORT_BINSTRING/BINSTRING), numpy arrays as Python 2's
numpy pickles them (``numpy.core.multiarray._reconstruct`` then a BUILD with the raw bytes)."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np


def _str(b: bytes) -> bytes:
    """A Python 2 str."""
    if len(b) < 256:
        return pickle.SHORT_BINSTRING + bytes([len(b)]) + b
    return pickle.BINSTRING + struct.pack("<i", len(b)) + b


def _int(v: int) -> bytes:
    return pickle.BININT1 + bytes([v]) if 0 <= v < 256 else pickle.BININT + struct.pack("<i", v)


def _value(v) -> bytes:
    if isinstance(v, str):
        return _str(v.encode())
    if isinstance(v, bytes):
        return _str(v)
    if isinstance(v, bool):
        return pickle.NEWTRUE if v else pickle.NEWFALSE
    if isinstance(v, int):
        return _int(v)
    if isinstance(v, list):
        return pickle.EMPTY_LIST + (pickle.MARK + b"".join(_value(x) for x in v) + pickle.APPENDS if v else b"")
    if isinstance(v, np.ndarray):
        return _array(v)
    raise TypeError(type(v))


def _array(a: np.ndarray) -> bytes:
    assert a.dtype == np.uint8 and a.flags.c_contiguous
    dtype = (pickle.GLOBAL + b"numpy\ndtype\n" + pickle.MARK + _str(b"u1") + _int(0) + _int(1) + pickle.TUPLE
             + pickle.REDUCE + pickle.MARK + _int(3) + _str(b"|") + pickle.NONE + pickle.NONE + pickle.NONE
             + pickle.BININT + struct.pack("<i", -1) + pickle.BININT + struct.pack("<i", -1) + _int(0)
             + pickle.TUPLE + pickle.BUILD)
    shape = pickle.MARK + b"".join(_int(s) for s in a.shape) + pickle.TUPLE
    return (pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n"
            + pickle.MARK + pickle.GLOBAL + b"numpy\nndarray\n" + pickle.MARK + _int(0) + pickle.TUPLE + _str(b"b")
            + pickle.TUPLE + pickle.REDUCE
            + pickle.MARK + _int(1) + shape + dtype + pickle.NEWFALSE + _str(a.tobytes()) + pickle.TUPLE
            + pickle.BUILD)


def python2_pickle(d: dict) -> bytes:
    """The bytes Python 2's ``cPickle.dump(d, f, 2)`` writes for a dict of str keys."""
    body = b"".join(_str(k.encode()) + _value(v) for k, v in d.items())
    return pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.MARK + body + pickle.SETITEMS + pickle.STOP


def write_python2_pickle(path: Path, d: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(python2_pickle(d))


def random_batch(rng, n: int, num_classes: int) -> tuple[np.ndarray, list[int]]:
    """(data (n, 3072) uint8, labels) of random images."""
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, num_classes, n)]


def write_cifar10(root: Path, rng, *, per_batch: int = 3, n_test: int = 4) -> dict:
    """``root/cifar-10-batches-py/`` with five train batches, a test batch and batches.meta;
    returns {"train": [(data, labels)] * 5, "test": (data, labels)}."""
    folder = root / "cifar-10-batches-py"
    written = {"train": []}
    for i in range(1, 6):
        data, labels = random_batch(rng, per_batch, 10)
        write_python2_pickle(folder / f"data_batch_{i}", {
            "batch_label": f"training batch {i} of 5", "labels": labels, "data": data,
            "filenames": [f"img_{i}_{k}.png" for k in range(per_batch)]})
        written["train"].append((data, labels))
    data, labels = random_batch(rng, n_test, 10)
    write_python2_pickle(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": labels,
                                                 "data": data, "filenames": [f"t{k}.png" for k in range(n_test)]})
    written["test"] = (data, labels)
    write_python2_pickle(folder / "batches.meta", {"num_cases_per_batch": per_batch, "num_vis": 3072,
                                                   "label_names": [f"class{k}" for k in range(10)]})
    return written


def write_cifar100(root: Path, rng, *, n_train: int = 6, n_test: int = 3) -> dict:
    """``root/cifar-100-python/`` with train, test and meta; returns {"train": (data, fine), "test": ...}."""
    folder = root / "cifar-100-python"
    written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data, fine = random_batch(rng, n, 100)
        write_python2_pickle(folder / split, {
            "filenames": [f"{split}{k}.png" for k in range(n)], "batch_label": f"{split}ing batch 1 of 1",
            "fine_labels": fine, "coarse_labels": [v // 5 for v in fine], "data": data})
        written[split] = (data, fine)
    write_python2_pickle(folder / "meta", {"fine_label_names": [f"fine{k}" for k in range(100)],
                                           "coarse_label_names": [f"coarse{k}" for k in range(20)]})
    return written
