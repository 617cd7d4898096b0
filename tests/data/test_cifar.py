"""CIFAR-10/100 from files in CIFAR's own format (Python 2 pickles), without torchvision."""

import pickle

import numpy as np
import pytest
import torch

from spikesmith.data import make_loaders
from spikesmith.data.cifar import read_batch, read_pickled_dict
from spikesmith.errors import DataError, InputError

from cifar_files import python2_pickle, write_cifar10, write_cifar100, write_python2_pickle


def _all(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs, dim=1).numpy(), torch.cat(ys).numpy()


def _images(data):
    """What the loader must give for CIFAR rows: 1024 red, 1024 green, 1024 blue values, row-major 32x32."""
    out = np.zeros((len(data), 3, 32, 32), np.float32)
    for n, row in enumerate(data):
        for c in range(3):
            for i in range(32):
                out[n, c, i] = row[c * 1024 + i * 32: c * 1024 + (i + 1) * 32] / np.float32(255)
    return out


def test_cifar10_reads_the_python_batches(tmp_path):
    written = write_cifar10(tmp_path, np.random.default_rng(0))
    loaders = make_loaders("cifar10", batch_size=5, steps=3, seed=0, data_dir=tmp_path)
    info = loaders.info
    assert (info.input_shape, info.num_classes, info.n_train, info.n_test) == ((3, 32, 32), 10, 15, 4)
    x, y = _all(loaders.test)
    assert x.shape == (3, 4, 3, 32, 32) and x.dtype == np.float32
    data, labels = written["test"]
    np.testing.assert_array_equal(y, labels)
    for t in range(3):  # direct encoding: the image at every step
        np.testing.assert_array_equal(x[t], _images(data))
    xt, yt = _all(loaders.train)
    train_data = np.concatenate([d for d, _ in written["train"]])
    train_labels = sum((lab for _, lab in written["train"]), [])
    # shuffled: every training image once, with its label
    ref = {_images(train_data[k:k + 1])[0].tobytes(): train_labels[k] for k in range(15)}
    assert sorted(ref[xt[0, b].tobytes()] for b in range(15)) == sorted(train_labels)
    assert len({xt[0, b].tobytes() for b in range(15)}) == 15
    # the folder itself may be given as data_dir
    again, _ = _all(make_loaders("cifar10", batch_size=4, steps=3, data_dir=tmp_path / "cifar-10-batches-py").test)
    np.testing.assert_array_equal(again, x)


def test_cifar10_rate_encoding_is_seeded(tmp_path):
    write_cifar10(tmp_path, np.random.default_rng(1))
    a, _ = _all(make_loaders("cifar10", batch_size=4, steps=8, encoding="rate", seed=3, data_dir=tmp_path).test)
    b, _ = _all(make_loaders("cifar10", batch_size=2, steps=8, encoding="rate", seed=3, data_dir=tmp_path).test)
    c, _ = _all(make_loaders("cifar10", batch_size=4, steps=8, encoding="rate", seed=4, data_dir=tmp_path).test)
    assert set(np.unique(a)) <= {0.0, 1.0} and 0.3 < a.mean() < 0.7
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_cifar100_reads_fine_labels(tmp_path):
    written = write_cifar100(tmp_path, np.random.default_rng(2))
    loaders = make_loaders("cifar100", batch_size=2, steps=1, data_dir=tmp_path)
    assert (loaders.info.num_classes, loaders.info.n_train, loaders.info.n_test) == (100, 6, 3)
    x, y = _all(loaders.test)
    data, fine = written["test"]
    np.testing.assert_array_equal(y, fine)
    np.testing.assert_array_equal(x[0], _images(data))


@pytest.mark.parametrize("protocol", [2, 4])
def test_batches_pickled_by_python3_read_the_same(tmp_path, protocol):
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
    d = {b"data": data, b"labels": [3, 9], b"batch_label": b"x", b"filenames": [b"a.png", b"b.png"]}
    (tmp_path / "p3").write_bytes(pickle.dumps(d, protocol=protocol))
    write_python2_pickle(tmp_path / "p2", {"data": data, "labels": [3, 9], "batch_label": "x"})
    for name in ("p2", "p3"):
        images, labels = read_batch(tmp_path / name, labels_key="labels", num_classes=10)
        np.testing.assert_array_equal(images, data.reshape(2, 3, 32, 32))
        np.testing.assert_array_equal(labels, [3, 9])


class _Boom:
    def __reduce__(self):
        import os

        return os.mkdir, (self.target,)


def test_pickles_of_anything_else_are_refused_without_running_them(tmp_path):
    boom = _Boom()
    boom.target = str(tmp_path / "made-by-the-pickle")
    cases = {
        "code": pickle.dumps({"data": boom}),
        "class": pickle.dumps({"data": np.array([1, 2]), "x": DataError("x")}),
        "objects": pickle.dumps({"data": np.array([object()], dtype=object)}),
        "tuple": pickle.dumps((1, 2), protocol=2),
        "list": pickle.dumps([1, 2, 3], protocol=2),
        "set": pickle.dumps({"data": {1, 2}}),
        "nested": pickle.dumps({"data": [np.zeros(3, np.uint8)]}),
        "truncated": python2_pickle({"data": np.zeros((1, 3072), np.uint8)})[:100],
        "text": b"data_batch_1\n",
    }
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(DataError) as exc:
            read_pickled_dict(tmp_path / name)
        msg = str(exc.value)
        assert "\n" not in msg and str(tmp_path / name) in msg, (name, msg)
    assert not (tmp_path / "made-by-the-pickle").exists()


@pytest.mark.parametrize("batch, match", [
    ({"labels": [1]}, "no 'data'"),
    ({"data": np.zeros((2, 3072), np.uint8)}, "no 'labels'"),
    ({"data": np.zeros((2, 100), np.uint8), "labels": [1, 2]}, r"uint8 array \(N, 3072\)"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [1]}, "2 integers"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": ["a", "b"]}, "2 integers"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [1, 10]}, r"0\.\.9"),
])
def test_malformed_batches_are_one_line_errors(tmp_path, batch, match):
    write_python2_pickle(tmp_path / "b", batch)
    with pytest.raises(DataError, match=match) as exc:
        read_batch(tmp_path / "b", labels_key="labels", num_classes=10)
    assert "\n" not in str(exc.value)


def test_missing_data_names_the_folder_and_the_source(tmp_path):
    with pytest.raises(DataError) as exc:
        make_loaders("cifar10", batch_size=2, steps=2, data_dir=tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg and str(tmp_path / "cifar-10-batches-py") in msg and "cifar-10-python.tar.gz" in msg
    write_cifar10(tmp_path, np.random.default_rng(4))
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataError, match="lacks data_batch_4"):
        make_loaders("cifar10", batch_size=2, steps=2, data_dir=tmp_path)
    with pytest.raises(InputError, match="encoding"):
        make_loaders("cifar100", batch_size=2, steps=2, encoding="frames", data_dir=tmp_path)
    with pytest.raises(InputError, match="unknown option"):
        make_loaders("cifar10", batch_size=2, steps=2, data_dir=tmp_path, download=True)


def test_data_directory_from_the_environment(tmp_path, monkeypatch):
    write_cifar10(tmp_path, np.random.default_rng(5))
    monkeypatch.setenv("SPIKESMITH_DATA_DIR", str(tmp_path))
    assert make_loaders("cifar10", batch_size=2, steps=1).info.n_test == 4
    with pytest.raises(DataError, match="elsewhere"):  # an explicit data_dir wins
        make_loaders("cifar10", batch_size=2, steps=1, data_dir=tmp_path / "elsewhere")
