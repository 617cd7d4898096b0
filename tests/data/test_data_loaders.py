import numpy as np
import pytest
import torch

from spikesmith.data import DATASETS, DatasetInfo, direct, load_digits_split, make_loaders
from spikesmith.data.batching import collate_time_first
from spikesmith.errors import InputError


def _epoch(loader):
    xs, ys = zip(*loader)
    return torch.cat(xs, dim=1), torch.cat(ys)


def test_digits_direct_test_loader_matches_split_in_order():
    loaders = make_loaders("digits", batch_size=50, steps=4, encoding="direct", seed=2)
    split = load_digits_split(seed=2)
    x, y = _epoch(loaders.test)
    assert x.shape == (4, len(split.y_test), 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    np.testing.assert_array_equal(x.numpy(), direct(split.x_test, 4))
    np.testing.assert_array_equal(y.numpy(), split.y_test)
    info = loaders.info
    assert (info.name, info.input_shape, info.num_classes, info.steps, info.encoding) == \
        ("digits", (1, 8, 8), 10, 4, "direct")
    assert (info.n_train, info.n_test) == (len(split.y_train), len(split.y_test))


def test_digits_train_order_is_seeded_and_covers_every_sample():
    a = make_loaders("digits", batch_size=64, steps=2, encoding="direct", seed=4)
    b = make_loaders("digits", batch_size=64, steps=2, encoding="direct", seed=4)
    xa, ya = _epoch(a.train)
    xb, yb = _epoch(b.train)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    split = load_digits_split(seed=4)
    assert sorted(ya.tolist()) == sorted(split.y_train.tolist())
    assert not np.array_equal(ya.numpy(), split.y_train)  # shuffled
    # each training input is still paired with its own label
    lookup = {bytes(img.astype(np.float32)): lab for img, lab in zip(split.x_train, split.y_train)}
    for t_img, lab in zip(xa[0].numpy(), ya.tolist()):
        assert lookup[bytes(t_img)] == lab
    xc, yc = _epoch(make_loaders("digits", batch_size=64, steps=2, encoding="direct", seed=5).train)
    assert len(yc) == len(ya) and not torch.equal(ya, yc)


def test_digits_rate_loader_spikes_follow_pixels_and_repeat_with_seed():
    loaders = make_loaders("digits", batch_size=400, steps=200, encoding="rate", seed=0)
    split = load_digits_split(seed=0)
    x, y = _epoch(loaders.test)
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}
    np.testing.assert_array_equal(y.numpy(), split.y_test)
    mean = x.mean(dim=0).numpy()
    assert np.all(mean[split.x_test == 0] == 0) and np.all(mean[split.x_test == 1] == 1)
    assert np.abs(mean - split.x_test).mean() < 0.03
    again, _ = _epoch(make_loaders("digits", batch_size=400, steps=200, encoding="rate", seed=0).test)
    assert torch.equal(x, again)


def test_digits_events_frames_count_events_per_pixel():
    loaders = make_loaders("digits-events", batch_size=128, steps=5, seed=1, max_events_per_pixel=3)
    split = load_digits_split(seed=1)
    x, y = _epoch(loaders.test)
    assert x.shape == (5, len(split.y_test), 2, 8, 8)
    assert loaders.info.input_shape == (2, 8, 8) and loaders.info.encoding == "frames"
    assert torch.all(x[:, :, 0] == 0)  # digits only make ON events
    np.testing.assert_array_equal(x.sum(dim=0)[:, 1].numpy(), np.rint(split.x_test[:, 0] * 3))
    assert x.sum(dim=(1, 2, 3, 4)).min() > 0  # events spread over every bin
    np.testing.assert_array_equal(y.numpy(), split.y_test)


def test_collate_stacks_time_first():
    rng = np.random.default_rng(0)
    samples = [(rng.random((3, 2, 4)).astype(np.float64), i) for i in range(5)]
    x, y = collate_time_first(samples)
    assert x.shape == (3, 5, 2, 4) and x.dtype == torch.float32 and y.dtype == torch.int64
    for b, (s, lab) in enumerate(samples):
        np.testing.assert_allclose(x[:, b].numpy(), s, rtol=1e-6)
        assert y[b] == lab
    with pytest.raises(InputError, match="sample 1"):
        collate_time_first([(np.zeros((3, 2)), 0), (np.zeros((4, 2)), 1)])


def test_make_loaders_rejects_bad_requests():
    with pytest.raises(InputError, match="unknown name"):
        make_loaders("mnist-nope", batch_size=4, steps=2)
    with pytest.raises(InputError, match="encoding"):
        make_loaders("digits", batch_size=4, steps=2, encoding="frames")
    with pytest.raises(InputError, match="colour"):
        make_loaders("digits", batch_size=4, steps=2, colour=True)
    with pytest.raises(InputError, match="batch_size"):
        make_loaders("digits", batch_size=0, steps=2)
    assert {"digits", "digits-events"} <= set(DATASETS)


def test_dataset_info_validates():
    kw = dict(name="x", input_shape=(1, 2), num_classes=2, steps=3, encoding="direct", n_train=1, n_test=1)
    assert DatasetInfo(**kw).input_shape == (1, 2)
    for field, bad in (("input_shape", (0, 2)), ("num_classes", 0), ("steps", 1.5), ("n_test", -1), ("name", "")):
        with pytest.raises(InputError, match=field):
            DatasetInfo(**{**kw, field: bad})
