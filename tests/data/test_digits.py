import numpy as np
import pytest

from spikesmith.data import DigitsSplit, load_digits_split
from spikesmith.errors import InputError


def _raw_digits():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)


def test_split_shapes_dtypes_and_range():
    split = load_digits_split(seed=3, test_fraction=0.25)
    raw_x, _ = _raw_digits()
    assert split.x_train.shape[1:] == (1, 8, 8) and split.x_test.shape[1:] == (1, 8, 8)
    assert split.x_train.dtype == np.float32 and split.y_train.dtype == np.int64
    assert len(split.x_train) + len(split.x_test) == len(raw_x)
    assert len(split.x_test) == int(np.ceil(0.25 * len(raw_x)))
    assert 0.0 <= split.x_train.min() and split.x_train.max() <= 1.0 and split.x_train.max() == 1.0
    assert split.num_classes == 10 and split.input_shape == (1, 8, 8)


def test_split_is_a_partition_of_the_whole_dataset():
    split = load_digits_split(seed=1)
    raw_x, raw_y = _raw_digits()
    ours = np.concatenate([split.x_train, split.x_test]).reshape(len(raw_x), -1)
    labels = np.concatenate([split.y_train, split.y_test])
    key = lambda x, y: sorted(zip(y.tolist(), map(bytes, x)))  # noqa: E731
    assert key(ours, labels) == key(raw_x.reshape(len(raw_x), -1), raw_y)


def test_split_is_stratified():
    split = load_digits_split(seed=5, test_fraction=0.2)
    _, raw_y = _raw_digits()
    expected = np.bincount(raw_y) * 0.2
    got = np.bincount(split.y_test, minlength=10)
    assert np.all(np.abs(got - expected) <= 1.0)


def test_same_seed_same_arrays_other_seed_differs():
    a, b, c = load_digits_split(seed=7), load_digits_split(seed=7), load_digits_split(seed=8)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.y_train, c.y_train)


@pytest.mark.parametrize("kwargs", [dict(test_fraction=0.0), dict(test_fraction=1.0), dict(seed=-1),
                                    dict(seed=1.5)])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(InputError):
        load_digits_split(**kwargs)


def test_split_validates_arrays():
    x = np.zeros((4, 1, 8, 8), np.float32)
    y = np.zeros(4, np.int64)
    with pytest.raises(InputError, match="x_train"):
        DigitsSplit(x_train=x.astype(np.float64), y_train=y, x_test=x, y_test=y)
    with pytest.raises(InputError, match="y_test"):
        DigitsSplit(x_train=x, y_train=y, x_test=x, y_test=y + 10)
    with pytest.raises(InputError, match="labels"):
        DigitsSplit(x_train=x, y_train=y[:3], x_test=x, y_test=y)
