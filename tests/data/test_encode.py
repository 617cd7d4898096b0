import numpy as np
import pytest
import torch

from spikesmith.data import direct, events_to_frames, rate, to_events
from spikesmith.errors import InputError


def _images(seed=0, shape=(3, 1, 5, 4)):
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def test_direct_repeats_input_time_first():
    x = _images()
    out = direct(x, 6)
    assert out.shape == (6, *x.shape) and out.dtype == np.float32
    for t in range(6):
        np.testing.assert_array_equal(out[t], x)
    tout = direct(torch.from_numpy(x), 6)
    assert isinstance(tout, torch.Tensor)
    np.testing.assert_array_equal(tout.numpy(), out)


def test_rate_spike_probability_follows_intensity():
    x = np.array([[0.0, 0.1, 0.5, 0.9, 1.0]], np.float32)
    out = rate(x, 4000, seed=11)
    assert out.shape == (4000, 1, 5) and out.dtype == np.float32
    assert set(np.unique(out)) <= {0.0, 1.0}
    mean = out.mean(axis=0)[0]
    assert mean[0] == 0.0 and mean[-1] == 1.0
    np.testing.assert_allclose(mean, x[0], atol=0.03)


def test_rate_is_seeded_and_type_agnostic():
    x = _images()
    a, b, c = rate(x, 20, seed=1), rate(x, 20, seed=1), rate(x, 20, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(rate(torch.from_numpy(x), 20, seed=1).numpy(), a)


@pytest.mark.parametrize("bad", [np.array([1.5]), np.array([-0.1]), np.array([np.nan])])
def test_rate_rejects_out_of_range(bad):
    with pytest.raises(InputError, match="x"):
        rate(bad, 3, seed=0)


def test_steps_validated():
    with pytest.raises(InputError, match="steps"):
        direct(_images(), 0)


def test_to_events_counts_follow_intensity():
    import tonic.io

    img = _images(seed=4, shape=(1, 6, 7))
    ev = to_events(img, duration_us=5000, seed=9, max_events_per_pixel=5)
    assert ev.dtype == tonic.io.events_struct
    assert np.all(ev["p"]) and ev["t"].min() >= 0 and ev["t"].max() < 5000
    assert np.all(np.diff(ev["t"]) >= 0)
    counts = np.zeros((6, 7), np.int64)
    np.add.at(counts, (ev["y"].astype(int), ev["x"].astype(int)), 1)
    np.testing.assert_array_equal(counts, np.rint(img[0] * 5).astype(np.int64))
    again = to_events(img, duration_us=5000, seed=9, max_events_per_pixel=5)
    np.testing.assert_array_equal(ev, again)
    assert not np.array_equal(ev["t"], to_events(img, duration_us=5000, seed=10, max_events_per_pixel=5)["t"])


def test_to_events_rejects_batches_and_bad_values():
    with pytest.raises(InputError, match="image"):
        to_events(_images(), duration_us=100, seed=0)
    with pytest.raises(InputError, match="image"):
        to_events(np.full((2, 2), 2.0), duration_us=100, seed=0)
    with pytest.raises(InputError, match="duration_us"):
        to_events(np.ones((2, 2)), duration_us=0, seed=0)


def _events(rng, n, w, h, p, duration):
    ev = np.zeros(n, dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])
    ev["x"] = rng.integers(0, w, n)
    ev["y"] = rng.integers(0, h, n)
    ev["t"] = np.sort(rng.integers(0, duration, n))
    ev["p"] = rng.integers(0, p, n).astype(bool)
    return ev


def test_events_to_frames_on_fixed_grid_matches_reference_binning():
    rng = np.random.default_rng(2)
    w, h, n_bins, duration = 5, 3, 7, 7000  # non-square sensor catches H/W mix-ups
    ev = _events(rng, 400, w, h, 2, duration)
    frames = events_to_frames(ev, sensor_size=(w, h, 2), n_time_bins=n_bins, duration_us=duration)
    assert frames.shape == (n_bins, 2, h, w) and frames.dtype == np.float32
    ref = np.zeros((n_bins, 2, h, w))
    np.add.at(ref, (ev["t"] * n_bins // duration, ev["p"].astype(int), ev["y"], ev["x"]), 1)
    np.testing.assert_array_equal(frames, ref)


def test_events_to_frames_with_a_duration_that_does_not_divide():
    rng = np.random.default_rng(3)
    ev = _events(rng, 300, 4, 4, 2, 1000)
    frames = events_to_frames(ev, sensor_size=(4, 4, 2), n_time_bins=3, duration_us=1000)
    assert frames.shape == (3, 2, 4, 4) and frames.sum() == len(ev)


def test_events_to_frames_tonic_span_binning_and_unsorted_input():
    rng = np.random.default_rng(4)
    ev = _events(rng, 200, 4, 4, 2, 10_000)
    shuffled = ev[rng.permutation(len(ev))]
    frames = events_to_frames(shuffled, sensor_size=(4, 4, 2), n_time_bins=4)
    assert frames.shape == (4, 2, 4, 4)
    # tonic's span binning leaves out only events at the last timestamp
    assert frames.sum() == np.sum(ev["t"] < ev["t"].max())
    np.testing.assert_array_equal(frames, events_to_frames(ev, sensor_size=(4, 4, 2), n_time_bins=4))


def test_events_to_frames_empty_and_one_dimensional_sensors():
    empty = np.zeros(0, dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])
    np.testing.assert_array_equal(
        events_to_frames(empty, sensor_size=(5, 3, 2), n_time_bins=4), np.zeros((4, 2, 3, 5)))
    audio = np.zeros(3, dtype=[("t", np.int64), ("x", np.int16), ("p", np.int8)])
    audio["t"], audio["x"], audio["p"] = [0, 10, 20], [3, 3, 9], [1, 1, 1]
    frames = events_to_frames(audio, sensor_size=(10, 1, 1), n_time_bins=2, duration_us=30)
    assert frames.shape == (2, 1, 10)
    assert frames[0, 0, 3] == 2 and frames[1, 0, 9] == 1 and frames.sum() == 3


def test_events_to_frames_rejects_events_outside_the_sensor():
    ev = _events(np.random.default_rng(0), 10, 8, 8, 2, 100)
    with pytest.raises(InputError, match="sensor_size"):
        events_to_frames(ev, sensor_size=(4, 4, 2), n_time_bins=2)
    with pytest.raises(InputError, match="events"):
        events_to_frames(np.zeros((3, 4)), sensor_size=(4, 4, 2), n_time_bins=2)
