"""The deploy bundle: written by compile --to lava, moved, loaded and run on both fixed-point targets without
the model; deterministic weights; bad bundles are one line naming the file, exit 2."""

import json
import shutil

import numpy as np
import pytest

from deploy_graphs import demo_graph
from spikesmith import io
from spikesmith.cli import main
from spikesmith.compile.bundle import MANIFEST, NETWORK, WEIGHTS, npz_bytes, read_bundle


def run(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A bundle of the demo-shaped net (verified on 6 random inputs, 3 of them on Lava), and its NIR file."""
    d = tmp_path_factory.mktemp("bundle")
    g = demo_graph(seed=1)
    g.metadata = {"spikesmith.dt": 1e-3}
    io.write_nir(d / "demo.nir", g)
    assert run("compile", d / "demo.nir", "--to", "lava", "--fixed-point", "--verify", 6, "--steps", 8,
               "--lava-samples", 3, "--calibration-samples", 24, "-o", d / "b") == 0
    return d


def test_a_moved_bundle_runs_on_both_fixed_targets_and_gives_the_verified_spikes(bundle, tmp_path, capsys):
    moved = tmp_path / "elsewhere" / "deploy"
    shutil.copytree(bundle / "b", moved)
    (bundle / "demo.nir").rename(bundle / "demo.hidden")  # the model is gone
    try:
        b = read_bundle(moved)
        assert b.sample_input.shape == (8, 3, 1, 8, 8)
        assert 0 < b.sample_output.mean() < 1  # spikes happened: the comparison can fail
        for target, flags in (("loihi", []), ("lava", ["--fixed-point"])):
            out = tmp_path / f"{target}.npy"
            assert run("run", moved, "--target", target, "-o", out, *flags) == 0
            assert "reproduces the verified outputs" in capsys.readouterr().out
            np.testing.assert_array_equal(np.load(out), b.sample_output)
        # an explicit input runs too, and both targets agree bit for bit on it
        x = (np.random.default_rng(5).random((8, 2, 1, 8, 8)) < 0.3).astype(np.float64)
        io.save_array(tmp_path / "x.npy", x)
        outs = []
        for target, flags in (("loihi", []), ("lava", ["--fixed-point"])):
            assert run("run", moved, "--target", target, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npy",
                       *flags) == 0
            outs.append(np.load(tmp_path / "y.npy"))
        np.testing.assert_array_equal(outs[0], outs[1])
    finally:
        (bundle / "demo.hidden").rename(bundle / "demo.nir")


def test_the_bundle_records_what_deployment_needs(bundle):
    b = read_bundle(bundle / "b")
    net = json.loads((bundle / "b" / NETWORK).read_text())
    assert net["calibration"]["samples"] == 24 and "Bernoulli" in net["calibration"]["source"]
    assert net["resources"]["cores"] >= 3
    assert [p["name"] for p in net["populations"]][0] == b.qplan.plan.input
    assert b.verification["fixed_ok"] is True and b.verification["samples"] == 6
    with np.load(bundle / "b" / WEIGHTS) as z:
        w = [z[k] for k in z.files if k.endswith("/weight")]
    assert w and all(np.abs(a).max() <= 255 for a in w)


def test_weights_do_not_depend_on_the_verification_size(bundle, tmp_path):
    assert run("compile", bundle / "demo.nir", "--to", "lava", "--fixed-point", "--verify", 2, "--steps", 8,
               "--lava-samples", 1, "--calibration-samples", 24, "-o", tmp_path / "b2") == 0
    for name in (WEIGHTS, NETWORK):
        a, b = (bundle / "b" / name).read_bytes(), (tmp_path / "b2" / name).read_bytes()
        if name == NETWORK:  # the network description is identical too
            assert json.loads(a) == json.loads(b)
        assert a == b, name
    # a different calibration split does change them: the comparison can fail
    assert run("compile", bundle / "demo.nir", "--to", "lava", "--verify", 2, "--steps", 8, "--lava-samples", 1,
               "--calibration-samples", 3, "-o", tmp_path / "b3") == 0
    assert (tmp_path / "b3" / NETWORK).read_bytes() != (bundle / "b" / NETWORK).read_bytes()


def test_npz_bytes_are_deterministic_and_loadable(tmp_path):
    arrays = {"b": np.arange(4), "a/w": np.ones((2, 3), dtype=np.int16)}
    data = npz_bytes(arrays)
    assert data == npz_bytes(dict(reversed(arrays.items())))
    io.write_bytes(tmp_path / "x.npz", data)
    with np.load(tmp_path / "x.npz") as z:
        np.testing.assert_array_equal(z["a/w"], arrays["a/w"])


def _broken(bundle, tmp_path, how: str):
    d = tmp_path / "broken"
    shutil.copytree(bundle / "b", d)
    if how == "missing":
        (d / WEIGHTS).unlink()
        return d, WEIGHTS
    if how == "edited":
        net = json.loads((d / NETWORK).read_text())
        net["populations"][1]["vth_mant"] += 1
        (d / NETWORK).write_text(json.dumps(net))
        return d, NETWORK
    if how == "newer":
        m = json.loads((d / MANIFEST).read_text())
        m["bundle_version"] += 1
        (d / MANIFEST).write_text(json.dumps(m))
        return d, MANIFEST
    (d / MANIFEST).unlink()  # no manifest: not a bundle
    return d, MANIFEST


@pytest.mark.parametrize("how", ["missing", "edited", "newer", "no-manifest"])
def test_a_bad_bundle_is_one_line_naming_the_file_exit_2(bundle, tmp_path, capsys, how):
    d, name = _broken(bundle, tmp_path, how)
    assert run("run", d, "--target", "loihi", "-o", tmp_path / "o.npy") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(d / name) in err, err
    assert {"missing": "missing", "edited": "sha256", "newer": "newer", "no-manifest": "not found"}[how] in err
    assert not (tmp_path / "o.npy").exists()


def test_a_bundle_runs_only_on_fixed_point_targets(bundle, tmp_path, capsys):
    for args in (("--target", "lava"), ("--target", "norse")):
        assert run("run", bundle / "b", *args, "-o", tmp_path / "o.npy") == 2
        assert "--fixed-point" in capsys.readouterr().err
    io.save_array(tmp_path / "x.npy", np.zeros((4, 1, 10)))
    assert run("run", bundle / "b", "--target", "loihi", "--input", tmp_path / "x.npy", "-o", tmp_path / "o.npy") == 2
    assert "(T, B, 1, 8, 8)" in capsys.readouterr().err
