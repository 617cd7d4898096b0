import numpy as np
import pytest

from spikesmith.data import make_loaders
from spikesmith.errors import DataError, DependencyError, InputError

from event_files import random_events, write_aedat4, write_dvsgesture_npy, write_shd_h5


def _span_frames(x, y, t, p, n_bins, shape):
    """Reference for tonic's n_time_bins slicing: bins of (t_last - t_first) // n from t_first."""
    t = np.asarray(t)
    width = (t[-1] - t[0]) // n_bins
    frames = np.zeros((n_bins, *shape))
    for xi, yi, ti, pi in zip(x, y, t, p):
        b = (ti - t[0]) // width
        if b < n_bins:
            frames[(b, pi, yi, xi) if len(shape) == 3 else (b, pi, xi)] += 1
    return frames


def _all(loader):
    xs, ys = zip(*loader)
    import torch

    return torch.cat(xs, dim=1).numpy(), torch.cat(ys).numpy()


def test_nmnist_frames_labels_and_content(nmnist_dir):
    data_dir, written = nmnist_dir
    loaders = make_loaders("nmnist", batch_size=7, steps=4, seed=0, data_dir=data_dir)
    info = loaders.info
    assert (info.input_shape, info.num_classes, info.n_train, info.n_test) == ((2, 34, 34), 10, 20, 20)
    x, y = _all(loaders.test)  # test order is tonic's sorted file order, as written
    assert x.shape == (4, 20, 2, 34, 34) and x.dtype == np.float32
    np.testing.assert_array_equal(y, [w[0] for w in written["test"]])
    for b, (_, ex, ey, et, ep) in enumerate(written["test"]):
        np.testing.assert_array_equal(x[:, b], _span_frames(ex, ey, et, ep, 4, (2, 34, 34)))
    xt, yt = _all(loaders.train)
    assert sorted(yt.tolist()) == sorted(w[0] for w in written["train"])


def test_nmnist_downsample_denoise_and_disk_cache(nmnist_dir, tmp_path):
    data_dir, written = nmnist_dir
    cache = tmp_path / "cache"
    loaders = make_loaders("nmnist", batch_size=20, steps=2, seed=0, data_dir=data_dir, downsample=0.5,
                           duration_us=300_000, cache_dir=cache)
    assert loaders.info.input_shape == (2, 17, 17)
    x, _ = _all(loaders.test)
    assert len(list((cache / "nmnist" / "test").rglob("*.hdf5"))) == 20
    for b, (_, ex, ey, et, ep) in enumerate(written["test"]):
        ref = np.zeros((2, 2, 17, 17))
        np.add.at(ref, (np.asarray(et) * 2 // 300_000, ep, np.asarray(ey) // 2, np.asarray(ex) // 2), 1)
        np.testing.assert_array_equal(x[:, b], ref)
    again, _ = _all(make_loaders("nmnist", batch_size=20, steps=2, seed=0, data_dir=data_dir, downsample=0.5,
                                 duration_us=300_000, cache_dir=cache).test)
    np.testing.assert_array_equal(again, x)
    denoised, _ = _all(make_loaders("nmnist", batch_size=20, steps=2, seed=0, data_dir=data_dir,
                                    denoise_us=1000, duration_us=300_000).test)
    assert denoised.sum() < x.sum()  # sparse random events are mostly isolated noise


def test_dvsgesture_reads_tonic_layout(tmp_path):
    rng = np.random.default_rng(7)
    written = {}
    for split, folder in (("train", "ibmGestureTrain"), ("test", "ibmGestureTest")):
        written[split] = []
        for user in (1, 2):
            for label in (0, 3, 10):
                x, y, t, p = random_events(rng, 80, 128, 128, 2, 2000)
                write_dvsgesture_npy(tmp_path / "DVSGesture" / folder / f"user{user:02d}_led" / f"{label}.npy",
                                     x, y, t, p)
                written[split].append((label, x, y, t * 1000, p))
    loaders = make_loaders("dvsgesture", batch_size=4, steps=3, seed=1, data_dir=tmp_path, downsample=0.25)
    assert loaders.info.input_shape == (2, 32, 32) and loaders.info.num_classes == 11
    x, y = _all(loaders.test)
    assert x.shape == (3, 6, 2, 32, 32)
    assert sorted(y.tolist()) == sorted(w[0] for w in written["test"])
    by_label_user = {}
    for w in written["test"]:
        by_label_user.setdefault(w[0], []).append(w)
    for b in range(len(y)):
        candidates = [_span_frames(np.asarray(wx) // 4, np.asarray(wy) // 4, wt, wp, 3, (2, 32, 32))
                      for _, wx, wy, wt, wp in by_label_user[int(y[b])]]
        assert any(np.array_equal(x[:, b], c) for c in candidates)


def test_shd_reads_hdf5_as_channel_frames(tmp_path):
    rng = np.random.default_rng(3)
    written = {}
    for split in ("train", "test"):
        samples, labels = [], []
        for i in range(5):
            n = int(rng.integers(10, 40))
            units = rng.integers(0, 700, n)
            times = np.sort(rng.choice(1000, n, replace=False)) / 1000.0  # seconds, 1 ms grid
            samples.append((units, times))
            labels.append(int(rng.integers(0, 20)))
        write_shd_h5(tmp_path / "SHD" / f"shd_{split}.h5", samples, labels)
        written[split] = (samples, labels)
    loaders = make_loaders("shd", batch_size=2, steps=5, seed=0, data_dir=tmp_path, duration_us=1_000_000)
    assert loaders.info.input_shape == (1, 700) and loaders.info.num_classes == 20
    x, y = _all(loaders.test)
    samples, labels = written["test"]
    assert x.shape == (5, 5, 1, 700)
    np.testing.assert_array_equal(y, labels)
    for b, (units, times) in enumerate(samples):
        ref = np.zeros((5, 1, 700))
        t_us = np.round(np.asarray(times, np.float32).astype(np.float64) * 1e6).astype(np.int64)
        np.add.at(ref, (t_us * 5 // 1_000_000, 0, units), 1)
        assert x[:, b].sum() == len(units)
        assert np.abs(x[:, b] - ref).sum() <= 2  # float32 seconds may move an event across a bin edge
    with pytest.raises(InputError, match="denoise_us"):
        make_loaders("shd", batch_size=2, steps=5, data_dir=tmp_path, denoise_us=100)


CIFAR10DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def test_cifar10dvs_loads_generated_aedat4_files(tmp_path):
    pytest.importorskip("aedat")
    rng = np.random.default_rng(11)
    written = {}  # file name -> (label, x, y, t, p)
    for label, name in enumerate(CIFAR10DVS_CLASSES):
        for k in range(4):
            x, y, t, p = random_events(rng, int(rng.integers(60, 160)), 128, 128, 2, 1_000_000)
            events = np.zeros(len(t), [("t", np.int64), ("x", np.int16), ("y", np.int16), ("p", bool)])
            events["t"], events["x"], events["y"], events["p"] = t, x, y, p
            file = f"cifar10_{name}_{k}.aedat4"
            write_aedat4(tmp_path / "CIFAR10DVS" / name / file, events)  # several packets per file
            written[file] = (label, x, y, t, p)
    loaders = make_loaders("cifar10dvs", batch_size=6, steps=4, seed=2, data_dir=tmp_path, test_fraction=0.25)
    info = loaders.info
    assert (info.input_shape, info.num_classes, info.n_train, info.n_test) == ((2, 128, 128), 10, 30, 10)
    refs = {file: _span_frames(wx, wy, wt, wp, 4, (2, 128, 128)) for file, (_, wx, wy, wt, wp) in written.items()}
    seen = []
    for split, loader in (("test", loaders.test), ("train", loaders.train)):
        x, y = _all(loader)
        assert x.shape == (4, info.n_test if split == "test" else info.n_train, 2, 128, 128)
        assert x.dtype == np.float32
        for b in range(len(y)):
            match = [f for f, r in refs.items() if written[f][0] == y[b] and np.array_equal(x[:, b], r)]
            assert len(match) == 1, f"{split} sample {b} (label {y[b]}) matches no single written file"
            seen += match
        if split == "test":  # stratified: one recording of each class
            assert sorted(y.tolist()) == list(range(10))
    assert sorted(seen) == sorted(written)  # train and test split the 40 files between them
    small, _ = _all(make_loaders("cifar10dvs", batch_size=10, steps=2, seed=2, data_dir=tmp_path,
                                 test_fraction=0.25, downsample=0.25, duration_us=1_000_000).test)
    assert small.shape == (2, 10, 2, 32, 32)
    assert sorted(small.sum(axis=(0, 2, 3, 4)).tolist()) == sorted(len(written[f][3]) for f in seen[:10])


@pytest.mark.parametrize("name, folder", [("nmnist", "NMNIST"), ("dvsgesture", "DVSGesture"),
                                          ("shd", "SHD"), ("cifar10dvs", "CIFAR10DVS")])
def test_missing_dataset_is_one_line_naming_the_folder(tmp_path, name, folder):
    try:
        make_loaders(name, batch_size=2, steps=2, data_dir=tmp_path)
    except DependencyError as exc:  # cifar10dvs without the aedat reader
        assert "aedat" in str(exc)
        return
    except DataError as exc:
        msg = str(exc)
        assert "\n" not in msg and str(tmp_path / folder) in msg and "download=True" in msg
    else:
        pytest.fail("expected DataError")
    assert not (tmp_path / folder).exists() or not any((tmp_path / folder).iterdir())  # nothing downloaded


def test_partial_nmnist_is_reported(nmnist_dir):
    import shutil

    data_dir, _ = nmnist_dir
    shutil.rmtree(data_dir / "NMNIST" / "Test")
    with pytest.raises(DataError, match="Test/<digit>"):
        make_loaders("nmnist", batch_size=2, steps=2, data_dir=data_dir)
